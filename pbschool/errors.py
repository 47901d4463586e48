"""Domain errors and the app-wide error handlers: JSON under /api/, HTML pages elsewhere."""

import logging

from flask import current_app, g, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from pbschool.extensions import db

log = logging.getLogger(__name__)

# English code -> status, and the message shown when an HTTP error carries none of its own.
HTTP_CODES = {
    400: ("bad_request", _l("请求格式不正确")),
    401: ("unauthorized", _l("请先登录或提供有效的令牌")),
    403: ("forbidden", _l("没有权限执行此操作")),
    404: ("not_found", _l("找不到请求的内容")),
    405: ("method_not_allowed", _l("不支持此请求方法")),
    409: ("conflict", _l("与当前状态冲突")),
    413: ("too_large", _l("上传内容超过大小限制")),
    415: ("unsupported_media_type", _l("不支持的内容类型")),
    429: ("too_many_requests", _l("尝试次数过多，请稍后再试")),
    503: ("unavailable", _l("服务暂时不可用，请稍后重试")),
}


class DomainError(Exception):
    """A rule of the domain said no. Services raise it; views and the API turn it into a reply."""

    status = 400

    def __init__(self, message, code="invalid", status=None, field=None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
        if status is not None:
            self.status = status


class NotFound(DomainError):
    status = 404

    def __init__(self, message=_l("找不到请求的内容"), code="not_found"):
        super().__init__(message, code)


def wants_json():
    return request.path.startswith("/api/")


def json_error(status, code, message, **extra):
    body = {"error": {"code": code, "message": message, **extra}}
    return jsonify(body), status


def _http_error(exc):
    status = exc.code or 500
    code, default_message = HTTP_CODES.get(status, ("error", "请求失败"))
    if wants_json():
        message = str(default_message)
        if exc.description and exc.description != type(exc).description:
            message = str(exc.description)
        response, status = json_error(status, code, message)
        if status == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response, status
    return render_template("errors/error.html", status=status, message=default_message), status


def _domain_error(exc):
    if wants_json():
        extra = {"field": exc.field} if exc.field else {}
        return json_error(exc.status, exc.code, str(exc.message), **extra)
    return render_template("errors/error.html", status=exc.status, message=exc.message), exc.status


def database_down(exc):
    log.warning("database unavailable: %s", exc.__class__.__name__)
    db.session.rollback()
    code, message = HTTP_CODES[503]
    if wants_json():
        response, status = json_error(503, code, str(message))
    else:
        # The page must not ask the database who is logged in (it would fail again, as a 500):
        # it is shown as to a visitor.
        g._login_user = current_app.login_manager.anonymous_user()
        response, status = render_template("errors/error.html", status=503, message=message), 503
    return response, status, {"Retry-After": "5"}


def _unexpected(exc):
    if current_app.testing:
        raise exc  # a test sees the real error, not a page that hides it
    log.exception("unhandled error on %s %s", request.method, request.path)
    db.session.rollback()
    if wants_json():
        return json_error(500, "internal_error", str(_l("服务器内部错误")))
    return render_template("errors/error.html", status=500, message=_l("服务器内部错误")), 500


def _close_session(exc):
    """End the request's session before Flask-SQLAlchemy's teardown does. When the database went
    away while a transaction was open, the rollback fails: the pool drops the connection and the
    reply already made stands, instead of the server answering 500."""
    try:
        db.session.close()
    except OperationalError as error:
        log.warning("database unavailable at the end of a request: %s", error.__class__.__name__)


def show_on_form(form, exc, default):
    """A service refused what a form asked: undo the request's writes and show the reason next to the
    field the error names, or next to ``default`` when this form has no such field."""
    db.session.rollback()
    name = exc.field if exc.field and exc.field in form else default
    field = form[name]
    field.errors = [*field.errors, exc.message]  # a tuple until the form has been validated


def register(app):
    app.teardown_appcontext(_close_session)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(OperationalError, database_down)
    app.register_error_handler(Exception, _unexpected)
