"""pbschool: the online party school (网上党校)."""

import os

from babel import Locale
from flask import Flask, g, has_request_context, request, session
from flask_babel import get_locale, get_translations
from flask_login import current_user
from werkzeug.routing import IntegerConverter

from pbschool import config, errors, registry
from pbschool.extensions import babel, csrf, db, limiter, login_manager, migrate

#: The two locales, parsed once: Babel's Locale.parse of a string scans every locale it knows.
LOCALES = {code: Locale.parse(code) for code in ("zh_CN", "en")}


def select_locale():
    if not has_request_context():
        return LOCALES["zh_CN"]
    lang = request.args.get("lang")
    if lang in LOCALES:
        session["lang"] = lang
    return LOCALES.get(session.get("lang"), LOCALES["zh_CN"])


def _page_translations():
    """This request's translations, looked up once: Flask-Babel's own template gettext goes through
    several context proxies for each of the dozens of strings on a page."""
    translations = g.get("_page_translations")
    if translations is None:
        translations = g._page_translations = get_translations()
    return translations


def _install_template_gettext(app):
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _page_translations().ugettext(s),
        ngettext=lambda s, p, n: _page_translations().ungettext(s, p, n),
        pgettext=lambda c, s: _page_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _page_translations().unpgettext(c, s, p, n),
        newstyle=True)


class BoundedIntConverter(IntegerConverter):
    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


def create_app(test_config=None):
    """Application factory: config, extensions, blueprints, CLI, error handlers."""
    instance_path = (test_config or {}).get("INSTANCE_PATH") or os.environ.get("PBSCHOOL_INSTANCE_DIR")
    app = Flask(__name__, instance_path=instance_path or None, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    # Ids beyond a database integer are 404s, not overflow errors deep in the driver.
    app.url_map.converters["int"] = BoundedIntConverter
    from pbschool.web import Request

    app.request_class = Request  # bodies' nesting and numbers, and int query values, kept in range
    if test_config is None:
        app.config.from_mapping(config.load(app.instance_path))
    else:
        app.config.from_mapping(test_config)

    proxies = app.config.get("PROXY_COUNT", 0)
    if proxies:
        # The client address (throttling, the audit log, sessions) is the one the last ``proxies``
        # hops saw; what a client writes into X-Forwarded-For beyond them is not believed.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(app.root_path), "migrations"))
    login_manager.init_app(app)
    # Before anything reads a body (CSRF, the NUL check): this request's size limit, and a 413 for a
    # body declared too large, sent before a byte of it is read.
    from pbschool.courses.media import limit_request_body

    app.before_request(limit_request_body)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    _install_template_gettext(app)
    limiter.init_app(app)

    from pbschool import api, cli, web
    from pbschool.accounts import init_app as init_accounts
    from pbschool.certificates import init_app as init_certificates
    from pbschool.courses import init_app as init_courses
    from pbschool.exams import init_app as init_exams
    from pbschool.meetings import init_app as init_meetings
    from pbschool.notices import init_app as init_notices
    from pbschool.points import init_app as init_points
    from pbschool.practice import init_app as init_practice
    from pbschool.reports import init_app as init_reports
    from pbschool.search import init_app as init_search

    for init_feature in (init_accounts, init_courses, init_exams, init_points, init_meetings, init_reports,
                         init_notices, init_practice, init_search, init_certificates):
        init_feature(app)
    csrf.exempt(api.api_bp)  # the API checks CSRF itself, for cookie-authenticated writes only
    app.register_blueprint(api.api_bp)
    app.register_blueprint(web.bp)
    errors.register(app)
    cli.register(app)

    @app.context_processor
    def layout_globals():
        # once per request: the home page renders a template per panel, each asking again
        if "layout_globals" not in g:
            g.layout_globals = {
                "nav_items": registry.nav_for(current_user),
                "nav_groups": registry.nav_groups_for(current_user),
                "committee_name": app.config.get("COMMITTEE_NAME", ""),
                "current_locale": str(get_locale()),
            }
        return g.layout_globals

    return app
