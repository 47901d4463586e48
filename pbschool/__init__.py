"""pbschool: the online party school (网上党校)."""

import os

from flask import Flask, g, has_request_context, request, session
from flask_babel import get_locale
from flask_login import current_user
from werkzeug.routing import IntegerConverter

from pbschool import config, errors, registry
from pbschool.extensions import babel, csrf, db, limiter, login_manager, migrate


def select_locale():
    if not has_request_context():
        return "zh_CN"
    lang = request.args.get("lang")
    if lang in ("zh_CN", "en"):
        session["lang"] = lang
    return session.get("lang", "zh_CN")


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
    if test_config is None:
        app.config.from_mapping(config.load(app.instance_path))
    else:
        app.config.from_mapping(test_config)

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(app.root_path), "migrations"))
    login_manager.init_app(app)
    # Before anything reads a body (CSRF, the NUL check): this request's size limit, and a 413 for a
    # body declared too large, sent before a byte of it is read.
    from pbschool.courses.media import limit_request_body

    app.before_request(limit_request_body)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    limiter.init_app(app)

    from pbschool import api, cli, web
    from pbschool.accounts import init_app as init_accounts
    from pbschool.courses import init_app as init_courses
    from pbschool.exams import init_app as init_exams
    from pbschool.meetings import init_app as init_meetings
    from pbschool.points import init_app as init_points
    from pbschool.reports import init_app as init_reports

    for init_feature in (init_accounts, init_courses, init_exams, init_points, init_meetings, init_reports):
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
                "committee_name": app.config.get("COMMITTEE_NAME", ""),
                "current_locale": str(get_locale()),
            }
        return g.layout_globals

    return app
