"""The overrides section of an exam's staff page: set or remove a member's or a branch's own terms."""

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from pbschool import auth
from pbschool.accounts.models import Branch, User
from pbschool.errors import DomainError, show_on_form
from pbschool.exams import bp, overrides, services
from pbschool.exams.forms import ActionForm, OverrideForm
from pbschool.exams.models import Exam, ExamOverride
from pbschool.extensions import db


def _branches():
    return db.session.scalars(auth.scope_to_branch(select(Branch).where(Branch.is_active.is_(True)),
                                                   current_user, Branch.id).order_by(Branch.code)).all()


def _form(formdata=None):
    form = OverrideForm(formdata=formdata) if formdata is not None else OverrideForm()
    form.branch.choices = [SelectChoice("", _("（不选，按用户名设置个人）"))] + [
        SelectChoice(b.code, b.name) for b in _branches()]
    return form


def override_section(exam, form=None):
    """What the exam page's overrides section needs (empty for roles that may not set any)."""
    if not auth.has_role(current_user, "admin", "secretary") or auth.branch_scope(current_user) == set():
        return {"override_form": None, "overrides": [], "remove_form": None}
    if form is None:
        form = _form()
        if request.args.get("username"):  # linked from a member's paper ("give them more time")
            form.username.data = request.args["username"][:64]
    return {"override_form": form, "overrides": overrides.overrides_of(exam, current_user), "remove_form": ActionForm()}


@bp.route("/admin/exams/<int:exam_id>/overrides", methods=["POST"])
@auth.roles_required("admin", "secretary")
def set_override(exam_id):
    from pbschool.exams.views import render_admin_exam

    exam = db.get_or_404(Exam, exam_id)
    form = _form(request.form)
    if not form.validate_on_submit():
        return render_admin_exam(exam, form, 400)
    username, code = services.clean(form.username.data or "").strip(), services.clean(form.branch.data or "")
    if bool(username) == bool(code):
        form.username.errors.append(_("请填写一位党员的用户名，或选择一个支部（二选一）"))
        return render_admin_exam(exam, form, 400)
    data = {"extra_minutes": form.extra_minutes.data, "extra_attempts": form.extra_attempts.data,
            "closes_at": _local_to_utc(form.closes_at.data)}
    try:
        if username:
            user = db.session.scalar(select(User).where(User.username == username))
            if user is None or not auth.can_set_exam_terms(current_user, user.branch_id):
                raise DomainError(_("找不到本支部的党员 %(u)s", u=username), "not_found", 404, field="username")
            overrides.set_member_override(exam, user, data, current_user)
            who = user.name
        else:
            branch = db.session.scalar(select(Branch).where(Branch.code == code))
            if branch is None or not auth.can_set_exam_terms(current_user, branch.id):
                raise DomainError(_("请选择您管理的支部"), "not_found", 404, field="branch")
            overrides.set_branch_override(exam, branch, data, current_user)
            who = branch.name
    except DomainError as exc:
        show_on_form(form, exc, "username")
        return render_admin_exam(exam, form, 400)
    db.session.commit()
    flash(_("已为 %(n)s 保存考试特殊安排，即时生效", n=who), "success")
    return redirect(url_for("exams.admin_exam", exam_id=exam.id, _anchor="overrides"))


@bp.route("/admin/exams/<int:exam_id>/overrides/<int:override_id>/remove", methods=["POST"])
@auth.roles_required("admin", "secretary")
def remove_override(exam_id, override_id):
    exam = db.get_or_404(Exam, exam_id)
    ActionForm().validate_on_submit() or auth.require(False)
    row = db.session.get(ExamOverride, override_id)
    if row is None or row.exam_id != exam.id:
        flash(_("这项安排已被删除"), "warning")
        return redirect(url_for("exams.admin_exam", exam_id=exam.id, _anchor="overrides"))
    try:
        if row.user_id is not None:
            auth.require(auth.can_set_exam_terms(current_user, row.user.branch_id))
            overrides.remove_member_override(exam, row.user, current_user)
        else:
            auth.require(auth.can_set_exam_terms(current_user, row.branch_id))
            overrides.remove_branch_override(exam, row.branch, current_user)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("exams.admin_exam", exam_id=exam.id, _anchor="overrides"))
    db.session.commit()
    flash(_("已删除考试特殊安排"), "success")
    return redirect(url_for("exams.admin_exam", exam_id=exam.id, _anchor="overrides"))


def _local_to_utc(moment):
    from flask_babel import to_utc

    return to_utc(moment).replace(tzinfo=None) if moment else None
