from flask import g

from pbschool.accounts import services
from pbschool.api import api_route, field, json_body, ok
from pbschool.errors import DomainError
from pbschool.extensions import db, limiter

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


def _failed(response):
    return response.status_code == 401


def _token_account_key():
    from flask import request

    data = request.get_json(silent=True)
    username = data.get("username") if isinstance(data, dict) else None
    return "account:" + (username if isinstance(username, str) else "").strip().lower()[:64]


@api_route("/tokens", methods=("POST",), summary="Exchange a username and password for a bearer token",
           public=True, statuses=(401,), tag="auth",
           body={"type": "object", "required": ["username", "password"],
                 "properties": {"username": {"type": "string"}, "password": {"type": "string"}}},
           response={"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}})
# The same allowances as the login form (shared scopes): see accounts.views.login.
@limiter.shared_limit(lambda: _config("LOGIN_LIMITS_ACCOUNT"), scope="login-account", key_func=_token_account_key,
                      deduct_when=_failed)
@limiter.shared_limit(lambda: _config("LOGIN_LIMITS_ADDRESS"), scope="login-address", deduct_when=_failed)
def create_token():
    data = json_body()
    username = field(data, "username", str)
    password = field(data, "password", str)
    user = services.authenticate(username, password)
    if user is None:
        services.note_failed_login(username)
        db.session.commit()
        raise DomainError("用户名或密码不正确，或账号已停用", "invalid_credentials", 401)
    return ok({"token": services.issue_token(user)})


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
