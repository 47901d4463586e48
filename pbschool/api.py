"""The /api/v1 blueprint: token auth, JSON helpers and the OpenAPI document.

Features add their endpoints with ``@api_route(...)`` in their own ``api.py``; each call also
records the endpoint in the OpenAPI document served at /api/v1/openapi.json.
"""

import re

from flask import Blueprint, current_app, g, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy.exc import OperationalError
from wtforms import ValidationError

from pbschool import clock
from pbschool.errors import DomainError, database_down
from pbschool.extensions import db

api_bp = Blueprint("api", __name__, url_prefix="/api/v1")

_paths = {}
_public_endpoints = set()
#: What a user whose password someone else set may call before choosing their own.
OPEN_BEFORE_OWN_PASSWORD = {"api.create_token", "api.change_my_password", "api.revoke_token", "api.openapi"}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def _openapi_path(rule):
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def api_route(rule, methods=("GET",), *, summary, public=False, body=None, response=None,
              statuses=(), tag=None, query=(), media_type="application/json"):
    """Register an API endpoint and describe it in the OpenAPI document.

    ``body`` and ``response`` are JSON Schemas; ``statuses`` lists the error statuses it may give;
    ``query`` lists OpenAPI query parameters (so the schema fuzz sends them too); ``media_type`` is
    what a 200 answers with (a file download: its type, as a binary string).
    """

    def decorator(view):
        endpoint = view.__name__
        api_bp.add_url_rule(rule, endpoint, view, methods=list(methods))
        if public:
            _public_endpoints.add(f"api.{endpoint}")
        path = _openapi_path(rule)
        params = [
            {"name": name, "in": "path", "required": True,
             "schema": {"type": "integer" if conv == "int" else "string"}}
            for conv, name in re.findall(r"<(?:([a-z]+):)?([a-z_]+)>", rule)
        ] + list(query)
        for method in methods:
            op = {
                "operationId": endpoint if len(methods) == 1 else f"{endpoint}_{method.lower()}",
                "summary": summary,
                "tags": [tag or rule.strip("/").split("/")[0]],
                "responses": {
                    "200": {"description": "OK", "content": {media_type: {"schema": response or (
                        {"type": "object"} if media_type == "application/json"
                        else {"type": "string", "format": "binary"})}}},
                },
            }
            if params:
                op["parameters"] = params
            if body is not None:
                op["requestBody"] = {"required": True,
                                     "content": {"application/json": {"schema": body}}}
            if not public:
                op["security"] = [{"bearer": []}]
            for status in sorted({400, 404, 429, *statuses} | (set() if public else {401, 403})):
                op["responses"][str(status)] = {
                    "description": "error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            _paths.setdefault(path, {})[method.lower()] = op
        return view

    return decorator


def openapi_document():
    return {
        "openapi": "3.0.3",
        "info": {"title": "pbschool API", "version": "1.0.0",
                 "description": "网上党校 JSON API. Times are ISO 8601 UTC."},
        "servers": [{"url": "/api/v1"}],
        "paths": {path: _paths[path] for path in sorted(_paths)},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_SCHEMA},
        },
    }


@api_bp.before_request
def authenticate():
    """Bearer token first; a logged-in browser session also works, with a CSRF header for writes."""
    g.api_user = None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise DomainError("Authorization 头应为 Bearer 令牌", "invalid_token", 401)
        from pbschool.accounts.models import ApiToken

        if request.endpoint in LEAN_ENDPOINTS:
            g.api_user = _lean_caller(token.strip())
        else:
            row = ApiToken.find_valid(token.strip())
            if row is None or not row.user.is_active:
                raise DomainError("令牌无效、已过期或已撤销", "invalid_token", 401)
            now = clock.now()
            # Keep the hot path (answer saves) free of a write per request: note use once a minute.
            if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
                row.last_used_at = now
                row.last_ip = (request.remote_addr or "")[:64] or None
            g.api_user = row.user
            g.api_token = row
    elif current_user.is_authenticated:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            try:
                validate_csrf(request.headers.get("X-CSRFToken"))
            except (ValidationError, CSRFError) as exc:
                raise DomainError("缺少或无效的 CSRF 令牌", "csrf", 400) from exc
        g.api_user = current_user._get_current_object()
    if g.api_user is None and request.endpoint not in _public_endpoints:
        if request.endpoint is None:
            return None  # let routing answer 404/405
        raise DomainError("请先获取令牌并以 Bearer 方式发送", "unauthorized", 401)
    if g.api_user is not None and g.api_user.must_change_password and request.endpoint not in OPEN_BEFORE_OWN_PASSWORD:
        # As on the pages (accounts.views._own_password_first): a password someone else set opens nothing else.
        raise DomainError("请先修改密码（POST /api/v1/me/password）：当前密码由他人设置",
                          "password_change_required", 403)
    return None


#: Endpoints that need of their caller only who they are: the exam-day answer save (issue 13). Their
#: token and user are read as one row, into a Caller rather than ORM objects.
LEAN_ENDPOINTS = {"api.save_answer"}


class Caller:
    """The user behind a token, as a lean endpoint sees them (what the API's own gates read)."""

    __slots__ = ("id", "role", "branch_id", "must_change_password", "totp_secret", "totp_enabled_at")
    is_active = is_authenticated = True

    def __init__(self, row):
        (self.id, self.role, self.branch_id, self.must_change_password, self.totp_secret,
         self.totp_enabled_at) = row


_LEAN = []


def _lean_statement():
    if not _LEAN:
        from sqlalchemy import bindparam, select

        from pbschool.accounts.models import ApiToken, User

        token, user = ApiToken.__table__, User.__table__
        _LEAN.append(select(user.c.id, user.c.role, user.c.branch_id, user.c.must_change_password,
                            user.c.totp_secret, user.c.totp_enabled_at, user.c.is_active,
                            token.c.id, token.c.revoked_at, token.c.expires_at, token.c.last_used_at)
                     .select_from(token.join(user, user.c.id == token.c.user_id))
                     .where(token.c.token_hash == bindparam("token_hash")))
    return _LEAN[0]


def _lean_caller(token):
    """ApiToken.find_valid and the user's checks in one Core statement; the token's use is noted
    once a minute, as for every other endpoint."""
    from pbschool.accounts.models import ApiToken

    now = clock.now()
    row = db.session.connection().execute(_lean_statement(), {"token_hash": ApiToken.hash(token)}).first()
    if row is None or not row[6] or row[8] is not None or (row[9] is not None and row[9] <= now):
        raise DomainError("令牌无效、已过期或已撤销", "invalid_token", 401)
    if row[10] is None or (now - row[10]).total_seconds() > 60:
        table = ApiToken.__table__
        db.session.connection().execute(table.update().where(table.c.id == row[7]).values(
            last_used_at=now, last_ip=(request.remote_addr or "")[:64] or None))
    return Caller(row[:6])


@api_bp.after_request
def commit_request(response):
    """One commit per request: services flush, the request commits (or the handler rolls back)."""
    if response.status_code < 400:
        try:
            db.session.commit()
        except OperationalError as exc:
            # The database went away at the commit: a 503 the client retries, as for any outage (not a 500).
            return current_app.make_response(database_down(exc))
    else:
        db.session.rollback()
    return response


def json_body():
    """The request's JSON object, or a 400 that says what is wrong."""
    if not request.is_json:
        raise DomainError("请求体应为 JSON（Content-Type: application/json）", "bad_json", 400)
    data = request.get_json(silent=True)
    if data is None:
        raise DomainError("请求体不是有效的 JSON", "bad_json", 400)
    if not isinstance(data, dict):
        raise DomainError("请求体应为 JSON 对象", "bad_json", 400)
    return data


_TYPES = {str: "字符串", int: "整数", bool: "布尔值", list: "数组", dict: "对象", float: "数字"}


def field(data, name, kind, *, required=True, default=None):
    """One field of a JSON body, checked for type. bool is never accepted as int."""
    if name not in data or data[name] is None:
        if required:
            raise DomainError(f"缺少字段 {name}", "missing_field", 400, field=name)
        return default
    value = data[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        ok = False
    elif float in kinds and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    else:
        ok = isinstance(value, kinds)
    if not ok:
        names = "或".join(_TYPES.get(k, k.__name__) for k in kinds)
        raise DomainError(f"字段 {name} 应为{names}", "invalid_field", 400, field=name)
    return value


def require_roles(*roles):
    """403 unless the API caller has one of ``roles`` — checked before the body is even read."""
    from pbschool import auth

    if not auth.has_role(g.api_user, *roles):
        raise DomainError("没有权限执行此操作", "forbidden", 403)


def ok(payload, status=200):
    return jsonify(payload), status


@api_route("/openapi.json", summary="This document", public=True, tag="meta")
def openapi():
    return jsonify(openapi_document())
