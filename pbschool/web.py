"""The site's own pages: the home page that features fill with panels, and security headers."""

import unicodedata
from urllib.parse import unquote, urlsplit

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from pbschool import registry

bp = Blueprint("web", __name__)

CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' "
       "'unsafe-inline'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; "
       "form-action 'self'")


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
    if response.mimetype == "text/html":
        headers.setdefault("Cache-Control", "no-store")
    return response
