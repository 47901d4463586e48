from flask import after_this_request, g, request

from pbschool.accounts import services, throttle, totp
from pbschool.api import api_bp, api_route, field, json_body, ok
from pbschool.errors import DomainError
from pbschool.extensions import db

ME_SCHEMA = {
    "type": "object",
    "required": ["username", "name", "role", "branch"],
    "properties": {
        "username": {"type": "string"},
        "name": {"type": "string"},
        "role": {"type": "string", "enum": ["member", "lecturer", "secretary", "admin"]},
        "branch": {"type": "string", "nullable": True},
    },
}


@api_route("/tokens", methods=("POST",), summary="Exchange a username and password (and, once enrolled in the "
           "second factor, a TOTP or recovery code as `otp`) for a bearer token",
           public=True, statuses=(401,), tag="auth",
           body={"type": "object", "required": ["username", "password"],
                 "properties": {"username": {"type": "string"}, "password": {"type": "string"},
                                "otp": {"type": "string"}}},
           response={"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}})
def create_token():
    data = json_body()
    username = field(data, "username", str)
    password = field(data, "password", str)
    address = request.remote_addr
    # The same allowances as the login form (accounts.throttle): one per account, not one per door.
    try:
        throttle.check(username, address)
    except throttle.Throttled as exc:
        wait = exc.retry_after
        after_this_request(lambda response: _retry_after(response, wait))
        raise DomainError(f"尝试次数过多，请 {wait} 秒后再试", "too_many_requests", 429) from None
    user = services.authenticate(username, password)
    if user is None:
        throttle.failed(username, address)
        services.note_failed_login(username)
        db.session.commit()
        raise DomainError("用户名或密码不正确，或账号已停用", "invalid_credentials", 401)
    if totp.enrolled(user):
        code = field(data, "otp", str, required=False)
        if not code:
            db.session.commit()
            raise DomainError("此账号已启用两步验证：请在 otp 字段提供验证码或恢复码", "otp_required", 401)
        if not totp.verify(user, code):
            db.session.rollback()
            throttle.failed(username, address)
            services.note_failed_login(username)
            db.session.commit()
            raise DomainError("验证码不正确或已使用", "invalid_otp", 401)
    # the code is spent whatever follows; and the counters' own transaction must not wait on this one
    db.session.commit()
    throttle.succeeded(username, address)
    return ok({"token": services.issue_token(user)})


def _retry_after(response, seconds):
    response.headers["Retry-After"] = str(seconds)
    return response


@api_bp.before_request
def _second_factor_first():
    """An account that must have a second factor but has none is refused every call but the token
    ones until it enrols (in the browser, at /account/2fa): a password alone is not enough for staff."""
    user = g.get("api_user")
    if user is None or request.endpoint in ("api.create_token", "api.revoke_token", "api.openapi"):
        return None
    if user.role != "member" and totp.required(user) and not totp.enrolled(user):
        raise DomainError("此账号须先在网页上启用两步验证（/account/2fa）", "second_factor_required", 403)
    return None


@api_route("/tokens/current", methods=("DELETE",), summary="Revoke the token this request carries",
           tag="auth", response={"type": "object"})
def revoke_token():
    from pbschool import clock

    token = getattr(g, "api_token", None)
    if token is None:
        raise DomainError("此请求没有使用令牌", "no_token", 400)
    token.revoked_at = clock.now()
    return ok({"revoked": True})


@api_route("/me", summary="Who I am", tag="me", response=ME_SCHEMA)
def me():
    user = g.api_user
    return ok({"username": user.username, "name": user.name, "role": user.role,
               "branch": user.branch.code if user.branch else None})


@api_route("/me/password", methods=("POST",), summary="Change my password", tag="me",
           body={"type": "object", "required": ["current", "new"],
                 "properties": {"current": {"type": "string"}, "new": {"type": "string"}}},
           response={"type": "object", "required": ["changed"], "properties": {"changed": {"type": "boolean"}}})
def change_my_password():
    data = json_body()
    services.change_password(g.api_user, field(data, "current", str), field(data, "new", str))
    # A new password revokes every token, this one too: the client signs in again with it.
    return ok({"changed": True})


def _config(key):
    from flask import current_app

    return current_app.config[key]
