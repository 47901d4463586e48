"""Second factor, my sessions, and the per-request checks that go with them."""

import datetime as dt

from flask import abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from pbschool import auth, clock
from pbschool.accounts import bp, services, sessions, throttle, totp
from pbschool.accounts.forms import ActionForm, SecondFactorForm, SecuritySettingsForm
from pbschool.accounts.models import User
from pbschool.errors import DomainError, show_on_form
from pbschool.extensions import db

#: How long a password stays good for the code that must follow it.
PENDING_SECONDS = 300
_PENDING = "pending_2fa"
#: What an account that must enrol may open before it has: enrolment, signing out, the language.
_OPEN_BEFORE_SECOND_FACTOR = {"accounts.two_factor", "accounts.logout", "accounts.change_password",
                              "web.set_language", "web.healthz", "static"}


def throttled_reply(exc, form, template):
    """The sign-in form again, with the wait, as 429."""
    field = form.password if hasattr(form, "password") else form.code
    field.errors = [*field.errors, _("尝试次数过多，请 %(n)d 秒后再试", n=exc.retry_after)]
    response = render_template(template, form=form)
    return response, 429, {"Retry-After": str(exc.retry_after)}


def complete_login(user, remember):
    """Password (and second factor, if enrolled) are good: sign this browser in and record it."""
    # A CSRF token from before login (perhaps planted with a session cookie) must not authorise the
    # member's writes: the session gets a new one.
    session.pop("csrf_token", None)
    session.pop(_PENDING, None)
    login_user(user, remember=remember)
    session["sid"] = sessions.start(user, request.remote_addr, request.user_agent.string)


def start_second_factor(user, remember, next_url):
    """The password was right for an enrolled user: remember who, briefly, and ask for the code."""
    session.pop("csrf_token", None)
    session[_PENDING] = {"id": user.get_id(), "remember": bool(remember), "next": next_url,
                         "at": clock.now().isoformat()}
    return redirect(url_for("accounts.login_2fa"))


def _pending_user():
    pending = session.get(_PENDING)
    if not isinstance(pending, dict):
        return None, None
    try:
        started = dt.datetime.fromisoformat(pending["at"])
    except (KeyError, TypeError, ValueError):
        return None, None
    if (clock.now() - started).total_seconds() > PENDING_SECONDS:
        session.pop(_PENDING, None)
        return None, None
    user_id, _sep, nonce = str(pending.get("id", "")).partition(":")
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    if user is None or user.session_nonce != nonce or not user.is_active or not totp.enrolled(user):
        return None, None
    return user, pending


@bp.route("/login/2fa", methods=["GET", "POST"])
def login_2fa():
    from pbschool.accounts.views import _safe_next

    if current_user.is_authenticated:
        return redirect(url_for("web.home"))
    user, pending = _pending_user()
    if user is None:
        flash(_("请重新登录"), "info")
        return redirect(url_for("accounts.login"))
    form = SecondFactorForm()
    if form.validate_on_submit():
        try:
            throttle.check(user.username, request.remote_addr)
        except throttle.Throttled as exc:
            return throttled_reply(exc, form, "accounts/login_2fa.html")
        if totp.verify(user, form.code.data):
            complete_login(user, pending.get("remember"))
            db.session.commit()
            # after the commit: the counters' own transaction must not wait on this one (SQLite)
            throttle.succeeded(user.username, request.remote_addr)
            return redirect(_safe_next(pending.get("next")))
        db.session.rollback()
        throttle.failed(user.username, request.remote_addr)
        services.audit(None, "auth.failed_2fa", "user", "", username=user.username)
        db.session.commit()
        form.code.errors.append(_("验证码不正确或已使用"))
    return render_template("accounts/login_2fa.html", form=form)


@bp.route("/account/2fa", methods=["GET", "POST"])
@login_required
def two_factor():
    user = current_user._get_current_object()
    form = SecondFactorForm()
    if totp.enrolled(user):
        return render_template("accounts/two_factor.html", enrolled=True, required=totp.required(user),
                               codes_left=totp.recovery_codes_left(user), form=ActionForm())
    totp.begin_enrolment(user)
    db.session.commit()
    if form.validate_on_submit():
        try:
            codes = totp.confirm_enrolment(user, form.code.data)
        except DomainError as exc:
            db.session.rollback()
            show_on_form(form, exc, "code")
        else:
            db.session.commit()
            return render_template("accounts/recovery_codes.html", codes=codes)
    return render_template("accounts/two_factor.html", enrolled=False, required=totp.required(user), form=form,
                           secret=user.totp_secret, qr=totp.qr_svg_data_uri(user))


@bp.route("/account/2fa/recovery-codes", methods=["POST"])
@login_required
def new_recovery_codes():
    ActionForm().validate_on_submit() or abort(400)
    user = current_user._get_current_object()
    if not totp.enrolled(user):
        abort(409)
    codes = totp.new_recovery_codes(user)
    services.audit(user, "user.2fa_new_codes", user, user.username)
    db.session.commit()
    return render_template("accounts/recovery_codes.html", codes=codes)


@bp.route("/admin/users/<int:user_id>/reset-2fa", methods=["POST"])
@auth.roles_required("admin")
def reset_user_2fa(user_id):
    user = db.get_or_404(User, user_id)
    ActionForm().validate_on_submit() or abort(400)
    totp.reset(user, actor=current_user)
    db.session.commit()
    flash(_("已重置 %(u)s 的两步验证，其下次登录时需重新设置", u=user.username), "success")
    return redirect(url_for("accounts.user_detail", user_id=user.id))


@bp.route("/admin/security", methods=["GET", "POST"])
@auth.roles_required("admin")
def security_settings():
    roles = totp.required_roles()
    form = SecuritySettingsForm(data=None if request.method == "POST" else
                                {"secretary": "secretary" in roles, "lecturer": "lecturer" in roles})
    if form.validate_on_submit():
        totp.set_required_roles([r for r in ("secretary", "lecturer") if getattr(form, r).data], current_user)
        db.session.commit()
        flash(_("已保存"), "success")
        return redirect(url_for("accounts.security_settings"))
    return render_template("accounts/security_settings.html", form=form,
                           admins_required="admin" in roles)


# -- my sessions -----------------------------------------------------------------------------

@bp.route("/account/sessions")
@login_required
def my_sessions():
    user = current_user._get_current_object()
    return render_template("accounts/my_sessions.html", sessions=sessions.my_sessions(user),
                           tokens=sessions.my_tokens(user), current_sid=session.get("sid"), form=ActionForm())


@bp.route("/account/sessions/<int:session_id>/revoke", methods=["POST"])
@login_required
def revoke_session(session_id):
    ActionForm().validate_on_submit() or abort(400)
    try:
        sessions.revoke_session(current_user, session_id)
    except DomainError as exc:
        abort(exc.status)
    db.session.commit()
    flash(_("已退出该设备上的登录"), "success")
    return redirect(url_for("accounts.my_sessions"))


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_my_token(token_id):
    ActionForm().validate_on_submit() or abort(400)
    try:
        sessions.revoke_token(current_user, token_id)
    except DomainError as exc:
        abort(exc.status)
    db.session.commit()
    flash(_("已撤销该令牌"), "success")
    return redirect(url_for("accounts.my_sessions"))


# -- every request ---------------------------------------------------------------------------

@bp.before_app_request
def _session_record():
    """A browser whose session record was revoked ("sign out there") is signed out. A session made
    before records existed, or restored from a remember-me cookie, gets its record now."""
    if request.endpoint == "static" or (request.blueprint == "api" and "Authorization" in request.headers):
        return None  # a token call has no browser session (and the answer save need not load one)
    if not current_user.is_authenticated or getattr(g, "api_token", None):
        return None
    sid = session.get("sid")
    record = sessions.find(sid)
    if sid and (record is None or record.revoked_at is not None or record.user_id != current_user.id):
        logout_user()
        session.pop("sid", None)
        if request.blueprint == "api":
            return None  # the API then answers 401 itself
        flash(_("此设备上的登录已被退出"), "info")
        return redirect(url_for("accounts.login"))
    if record is None:
        session["sid"] = sessions.start(current_user, request.remote_addr, request.user_agent.string)
        db.session.commit()
    elif record.nonce != current_user.session_nonce:
        # this browser was signed in again under a new nonce (its own password change)
        record.nonce = current_user.session_nonce
        sessions.touch(record, request.remote_addr)
        db.session.commit()
    elif sessions.touch(record, request.remote_addr):
        db.session.commit()
    return None


@bp.before_app_request
def _second_factor_first():
    """An account that must have a second factor opens nothing before enrolling (an own password
    comes first: that gate redirects before this one)."""
    if request.endpoint in _OPEN_BEFORE_SECOND_FACTOR or request.blueprint == "api":
        return None
    if not current_user.is_authenticated or current_user.must_change_password or current_user.role == "member":
        return None
    if totp.required(current_user) and not totp.enrolled(current_user):
        flash(_("请先启用两步验证"), "warning")
        return redirect(url_for("accounts.two_factor"))
    return None
