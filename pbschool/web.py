"""The site's own pages: the home page that features fill with panels, and security headers."""

import array
import itertools
import json
import math
import re
import unicodedata
from urllib.parse import unquote, urlsplit

import flask
from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import BadRequest

from pbschool import registry
from pbschool.errors import DomainError

bp = Blueprint("web", __name__)

# No 'unsafe-inline' anywhere: an injected style attribute or element is not applied either (bars take
# their width from a class, see the pct filter).
CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
       "script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")


@bp.route("/")
@login_required
def home():
    panels = []
    for panel in registry.panels_for(current_user):
        html = panel.render(current_user)  # features return Markup they rendered from templates
        if html:
            panels.append(html)
    return render_template("home.html", panels=panels)


def safe_next(target, default=None):
    r"""``target`` when it is a path on this site, else ``default`` (the home page).

    Every redirect whose target comes from the request goes through here. Browsers forgive what a
    parser does not: they drop tabs and newlines inside a URL and read a backslash as a slash, so
    "/\t/evil.example" or "/\\evil.example" lands on another site, and a newline in a Location header
    is a 500. A target with a scheme, a host, a control or space character or a backslash is refused,
    and so is a path that decodes to one (a query may hold encoded spaces)."""
    fallback = default or url_for("web.home")
    if not isinstance(target, str) or not target.startswith("/") or len(target) > 2048:
        return fallback
    if target.startswith("//") or "\\" in target or any(_unsafe_char(c) for c in target):
        return fallback
    parts = urlsplit(target)
    path = unquote(parts.path)
    if parts.scheme or parts.netloc or path.startswith("//") or "\\" in path or any(_unsafe_char(c) for c in path):
        return fallback
    return target


def _unsafe_char(char):
    return char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Zs")


@bp.route("/lang/<code>")
def set_language(code):
    from flask import session

    if code in ("zh_CN", "en"):
        session["lang"] = code
    # back to the page the switch was on, when it was one of ours
    referrer = urlsplit(request.referrer or "")
    target = None
    if referrer.netloc == request.host and referrer.scheme in ("http", "https"):
        target = referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return redirect(safe_next(target))


@bp.app_template_filter("month_label")
def month_label(period):
    """A month column's heading from "YYYY-MM": 7月 in Chinese, Jul in English."""
    import datetime as dt

    from flask_babel import format_date

    try:
        year, month = (int(part) for part in str(period).split("-")[:2])
        return format_date(dt.date(year, month, 1), "MMM")
    except (TypeError, ValueError):
        return str(period)


@bp.app_template_filter("pct")
def pct_class(value):
    """The class that gives a bar ``value`` per cent of its track (app.css has pct-0 … pct-100):
    the CSP allows no style attributes."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if not math.isfinite(number):
        number = 0.0
    return f"pct-{max(0, min(100, round(number)))}"


@bp.route("/healthz")
def healthz():
    return {"status": "ok"}


def _has_nul(value):
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


@bp.before_app_request
def refuse_nul_bytes():
    """No text people type contains NUL, and PostgreSQL refuses it: one 400 here, not a 500 anywhere."""
    if "\x00" in request.path or any("\x00" in v for v in request.args.values()):
        abort(400)
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        if request.is_json:
            if _has_nul(request.get_json(silent=True)):
                abort(400)
        elif any("\x00" in v for v in request.form.values()):
            abort(400)


@bp.after_app_request
def security_headers(response):
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if response.mimetype == "text/html" or request.blueprint == "api" or _personal():
        headers.setdefault("Cache-Control", "no-store")
    return response


def _personal():
    """Whether this answer was made for a signed-in person: a shared or browser cache must not
    keep it. Asks only what the request already loaded (no query, even with the database down)."""
    user = g.get("_login_user")
    return request.endpoint != "static" and user is not None and user.is_authenticated


# -- bounds on what a request carries ----------------------------------------------------------

#: The largest id or number any request may carry: a database integer (PostgreSQL's int4).
INT_MAX = 2**31 - 1
#: Nesting deeper than any body we accept, far below what would exhaust Python's recursion limit.
JSON_MAX_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
# "[" and "{" to +1, "]" and "}" to -1 (as a signed byte)
_STEPS = bytes.maketrans(_BRACKETS, bytes([1, 255, 1, 255]))


_ID_TEXT = re.compile(r"[0-9]{1,10}")


def in_range(value):
    return -INT_MAX <= value <= INT_MAX


def int_id(value):
    """An id that came as text (a form field, a select's value): the whole number, when a database
    integer can hold it, else None. str.isdigit() let "99999999999" through to a query (an error on
    PostgreSQL) and "²" through to int() (a ValueError)."""
    text = "" if value is None else str(value).strip()
    if _ID_TEXT.fullmatch(text) and int(text) <= INT_MAX:
        return int(text)
    return None


def _max_depth(data):
    steps = array.array("b", data.translate(None, _NOT_BRACKETS).translate(_STEPS))
    return max(itertools.accumulate(steps), default=0)


def _json_depth_ok(data):
    """True when ``data`` (JSON text) nests at most JSON_MAX_DEPTH deep; read before parsing.

    Counted over the brackets alone, in C-speed passes (a 2 MB body costs a fraction of a second,
    not a Python loop per byte); only when that says too deep are strings, whose brackets do not
    count, taken out and the count made again."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if data.count(b"[") + data.count(b"{") <= JSON_MAX_DEPTH or _max_depth(data) <= JSON_MAX_DEPTH:
        return True
    return b'"' in data and _max_depth(_JSON_STRING.sub(b"", data)) <= JSON_MAX_DEPTH


def _bounded_int(text):
    value = int(text)
    if not in_range(value):
        raise DomainError(f"数字 {text[:20]} 超出范围（绝对值不超过 {INT_MAX}）", "out_of_range", 400)
    return value


def _bounded_float(text):
    value = float(text)
    if not math.isfinite(value) or not in_range(value):
        raise DomainError(f"数字 {text[:20]} 超出范围（绝对值不超过 {INT_MAX}）", "out_of_range", 400)
    return value


def _no_constant(name):
    raise DomainError(f"JSON 中不能有 {name}", "bad_json", 400)


class _BoundedJSON:
    """Request bodies are parsed through this: too deep a nesting is refused before the parser
    recurses into it (a RecursionError was a 500 on every JSON endpoint), and a number beyond a
    database integer, NaN or Infinity never reaches a query. The errors are DomainErrors, not
    ValueErrors, so that get_json(silent=True) does not quietly turn them into "no body"."""

    @staticmethod
    def loads(data, **kwargs):
        if not _json_depth_ok(data):
            raise DomainError(f"JSON 嵌套过深（最多 {JSON_MAX_DEPTH} 层）", "too_deep", 400)
        return json.loads(data, parse_int=_bounded_int, parse_float=_bounded_float,
                          parse_constant=_no_constant, **kwargs)

    @staticmethod
    def dumps(obj, **kwargs):
        return flask.json.dumps(obj, **kwargs)


class BoundedMultiDict(ImmutableMultiDict):
    """Query strings and forms: ``get(..., type=int)`` beyond a database integer is a 400, never an
    overflow in the database (``?branch=2147483648`` on the results page was a 500)."""

    def get(self, key, default=None, type=None):  # noqa: A002 (werkzeug's own signature)
        value = super().get(key, default, type)
        if type is int and isinstance(value, int) and not in_range(value):
            raise BadRequest(f"参数 {key} 超出范围")
        return value


class Request(flask.Request):
    parameter_storage_class = BoundedMultiDict

    @property
    def json_module(self):
        return _BoundedJSON

    @json_module.setter
    def json_module(self, value):
        pass  # Flask hands each request the app's JSON provider; bodies are parsed through ours
