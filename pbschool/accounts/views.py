"""Login, password, and the committee office's pages for branches and users."""

import secrets
from pathlib import Path

from flask import Response, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, or_, select
from wtforms.fields.choices import SelectChoice

from pbschool import auth
from pbschool.accounts import bp, security_views, services, sessions, throttle, totp
from pbschool.accounts.forms import (
    ActionForm,
    BranchForm,
    ChangePasswordForm,
    ImportForm,
    LoginForm,
    UserForm,
)
from pbschool.accounts.importer import import_users
from pbschool.accounts.models import Branch, User
from pbschool.errors import DomainError, show_on_form
from pbschool.extensions import db
from pbschool.tabular import import_upload
from pbschool.web import safe_next

PAGE_SIZE = 50


def _safe_next(target):
    return safe_next(target)


# What a user whose password an admin set or generated may open before choosing their own.
_OPEN_BEFORE_OWN_PASSWORD = {"accounts.change_password", "accounts.logout", "web.set_language", "web.healthz",
                             "static"}


@bp.before_app_request
def _own_password_first():
    """An initial or reset password opens only the page that replaces it: it must not become the
    long-term password by the member clicking past the change (ASVS 5.0, V6.4.1)."""
    if request.endpoint in _OPEN_BEFORE_OWN_PASSWORD or request.blueprint == "api":
        return None
    if current_user.is_authenticated and current_user.must_change_password:
        flash(_("请先设置您自己的密码"), "warning")
        return redirect(url_for("accounts.change_password"))
    return None


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("web.home"))
    form = LoginForm()
    if form.validate_on_submit():
        # Shared with POST /api/v1/tokens (accounts.throttle): one allowance per account, not per door.
        try:
            throttle.check(form.username.data, request.remote_addr)
        except throttle.Throttled as exc:
            return security_views.throttled_reply(exc, form, "accounts/login.html")
        user = services.authenticate(form.username.data, form.password.data)
        if user is None:
            throttle.failed(form.username.data, request.remote_addr)
            services.note_failed_login(form.username.data)
            db.session.commit()
            form.password.errors.append(_("用户名或密码不正确，或账号已停用"))
        elif totp.enrolled(user):
            throttle.succeeded(form.username.data, request.remote_addr)
            db.session.commit()
            return security_views.start_second_factor(user, form.remember.data, request.args.get("next"))
        else:
            throttle.succeeded(form.username.data, request.remote_addr)
            security_views.complete_login(user, form.remember.data)
            db.session.commit()
            if user.must_change_password:
                flash(_("请先设置您自己的密码"), "warning")
                return redirect(url_for("accounts.change_password"))
            return redirect(_safe_next(request.args.get("next")))
    return render_template("accounts/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    ActionForm().validate_on_submit() or abort(400)
    # A new nonce makes every copy of the old session or remember-me cookie worthless.
    sessions.end(session.get("sid"))
    current_user.rotate_session_nonce()
    db.session.commit()
    logout_user()
    flash(_("您已退出登录"), "info")
    response = redirect(url_for("accounts.login"))
    # A shared phone keeps nothing of this person's: exam answers kept on the device, the exam page's
    # offline copy, its service worker.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            services.change_password(current_user, form.current.data, form.new.data)
        except DomainError as exc:
            show_on_form(form, exc, "new")
        else:
            db.session.commit()
            login_user(current_user._get_current_object())  # re-issue this session with the new nonce
            flash(_("密码已修改，其他设备上的登录已失效"), "success")
            return redirect(url_for("web.home"))
    return render_template("accounts/password.html", form=form)


# -- branches --------------------------------------------------------------------------------

@bp.route("/admin/branches")
@auth.roles_required("admin")
def branches():
    counts = dict(db.session.execute(
        select(User.branch_id, func.count(User.id)).where(User.is_active_account.is_(True))
        .group_by(User.branch_id)).all())
    rows = db.session.scalars(select(Branch).order_by(Branch.code)).all()
    return render_template("accounts/branches.html", branches=rows, counts=counts)


@bp.route("/admin/branches/new", methods=["GET", "POST"])
@bp.route("/admin/branches/<int:branch_id>", methods=["GET", "POST"])
@auth.roles_required("admin")
def edit_branch(branch_id=None):
    branch = db.get_or_404(Branch, branch_id) if branch_id else None
    form = BranchForm(obj=branch)
    if branch:
        form.code.render_kw = {"readonly": True}
    if form.validate_on_submit():
        try:
            if branch is None:
                branch = services.create_branch(form.code.data, form.name.data, actor=current_user)
                services.update_branch(branch, form.name.data, form.is_active.data, actor=current_user)
            else:
                services.update_branch(branch, form.name.data, form.is_active.data, actor=current_user)
        except DomainError as exc:
            show_on_form(form, exc, "name")
        else:
            db.session.commit()
            flash(_("支部已保存"), "success")
            return redirect(url_for("accounts.branches"))
    return render_template("accounts/branch_form.html", form=form, branch=branch)


# -- users -----------------------------------------------------------------------------------

def _branch_choices():
    rows = db.session.scalars(select(Branch).where(Branch.is_active.is_(True)).order_by(Branch.code))
    return [SelectChoice("", _("（无，委员会层级）"))] + [SelectChoice(b.code, f"{b.name}（{b.code}）") for b in rows]


@bp.route("/admin/users")
@auth.roles_required("admin", "secretary")
def users():
    stmt = auth.scope_to_branch(select(User), current_user, User.branch_id)
    q = (request.args.get("q") or "").strip()
    branch_code = request.args.get("branch") or ""
    role = request.args.get("role") or ""
    status = request.args.get("status") or "active"
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(User.username.ilike(like), User.name.ilike(like), User.job_post.ilike(like)))
    if branch_code:
        stmt = stmt.join(Branch, User.branch_id == Branch.id).where(Branch.code == branch_code)
    if role:
        stmt = stmt.where(User.role == role)
    if status in ("active", "inactive"):
        stmt = stmt.where(User.is_active_account.is_(status == "active"))
    page = db.paginate(stmt.order_by(User.branch_id, User.username), per_page=PAGE_SIZE, error_out=False)
    branch_rows = db.session.scalars(auth.scope_to_branch(select(Branch), current_user, Branch.id)
                                     .order_by(Branch.code)).all()
    return render_template("accounts/users.html", page=page, branches=branch_rows, q=q,
                           branch_code=branch_code, role=role, status=status,
                           role_names=services.ROLE_NAMES, can_manage=auth.can_manage_accounts(current_user))


@bp.route("/admin/users/new", methods=["GET", "POST"])
@auth.roles_required("admin")
def new_user():
    form = UserForm()
    form.branch.choices = _branch_choices()
    if form.validate_on_submit():
        try:
            user, generated = services.create_user(
                form.username.data, form.name.data, form.role.data, form.branch.data or None,
                form.job_post.data, form.password.data or None, actor=current_user,
                must_change_password=True)  # the office chose it: the member replaces it first
        except DomainError as exc:
            show_on_form(form, exc, "username")
        else:
            db.session.commit()
            if generated:
                return render_template("accounts/password_shown.html", user=user, password=generated)
            flash(_("已添加用户 %(u)s", u=user.username), "success")
            return redirect(url_for("accounts.users"))
    return render_template("accounts/user_form.html", form=form, user=None)


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@auth.roles_required("admin", "secretary")
def user_detail(user_id):
    user = db.get_or_404(User, user_id)
    auth.require(auth.can_view_user(current_user, user))
    if not auth.can_manage_accounts(current_user):
        return render_template("accounts/user_view.html", user=user, role_names=services.ROLE_NAMES)
    form = UserForm(obj=user, data={"branch": user.branch.code if user.branch else ""}
                    if request.method == "GET" else None)
    form.branch.choices = _branch_choices()
    form.username.render_kw = {"readonly": True}
    if form.validate_on_submit():
        try:
            services.update_user(user, name=form.name.data, role=form.role.data,
                                 branch=form.branch.data or None, job_post=form.job_post.data,
                                 actor=current_user)
        except DomainError as exc:
            show_on_form(form, exc, "name")
        else:
            db.session.commit()
            flash(_("已保存 %(u)s", u=user.username), "success")
            return redirect(url_for("accounts.users"))
    return render_template("accounts/user_form.html", form=form, user=user, action_form=ActionForm())


@bp.route("/admin/users/<int:user_id>/active", methods=["POST"])
@auth.roles_required("admin")
def set_user_active(user_id):
    user = db.get_or_404(User, user_id)
    ActionForm().validate_on_submit() or abort(400)
    active = request.form.get("active") == "1"
    try:
        services.set_active(user, active, actor=current_user)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash(_("已启用 %(u)s", u=user.username) if active else _("已停用 %(u)s", u=user.username), "success")
    return redirect(url_for("accounts.user_detail", user_id=user.id))


@bp.route("/admin/users/<int:user_id>/reset-password", methods=["POST"])
@auth.roles_required("admin")
def reset_user_password(user_id):
    user = db.get_or_404(User, user_id)
    ActionForm().validate_on_submit() or abort(400)
    password = services.reset_password(user, actor=current_user)
    db.session.commit()
    return render_template("accounts/password_shown.html", user=user, password=password)


def _results_dir():
    path = Path(current_app.instance_path) / "import-results"
    path.mkdir(parents=True, exist_ok=True)
    return path


@bp.route("/admin/users/import", methods=["GET", "POST"])
@auth.roles_required("admin")
def import_users_page():
    form = ImportForm()
    result = errors = None
    result_token = None
    if form.validate_on_submit():
        result, errors = import_upload(form.file, lambda data, name: import_users(data, name, actor=current_user))
        if result is not None:
            db.session.commit()
            if result.passwords:
                result_token = secrets.token_urlsafe(16)
                _write_passwords(_results_dir() / f"{result_token}-{current_user.id}.csv", result.passwords)
    return render_template("accounts/import.html", form=form, result=result, errors=errors,
                           result_token=result_token)


def _write_passwords(path, rows):
    import csv

    with open(path, "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(["用户名", "姓名", "初始密码"])
        writer.writerows(rows)
    path.chmod(0o600)


@bp.route("/admin/users/import/<token>.csv")
@auth.roles_required("admin")
def import_passwords(token):
    if not token.replace("-", "").replace("_", "").isalnum():
        abort(404)
    path = _results_dir() / f"{token}-{current_user.id}.csv"
    if not path.exists():
        abort(404)
    return Response(path.read_bytes(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=initial-passwords.csv",
                             "Cache-Control": "no-store"})


@bp.route("/admin/users/import/template.csv")
@auth.roles_required("admin")
def import_template():
    body = "\ufeff用户名,姓名,支部,角色,岗位,密码\nzhangsan,张三,ZC1,党员,综采工,\n"
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=members-template.csv"})
