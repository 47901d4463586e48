"""Courses and micro-lectures (网上党课 · 政工微课堂)."""

from flask import Blueprint
from flask_babel import lazy_gettext as _l

from pbschool import registry

bp = Blueprint("courses", __name__, template_folder="templates")


def init_app(app):
    from pbschool.courses import api, cli, models, views  # noqa: F401  (routes register on import)

    app.register_blueprint(bp)
    app.cli.add_command(cli.content_cli)
    registry.add_nav("courses.index", _l("学习"), order=10)
    registry.add_nav("courses.teach", _l("授课"), order=40, roles=("lecturer", "admin"))
    registry.add_nav("courses.review_queue", _l("课程审核"), order=45, roles=("admin",))
    registry.add_nav("courses.admin_courses", _l("课程管理"), order=46, roles=("admin",))
    registry.add_nav("courses.branch_learning", _l("支部学习"), order=50, roles=("secretary", "admin"))
    registry.add_home_panel(_home_panel, order=10)
    registry.add_demo_loader(cli.demo_loader)


def _home_panel(user):
    from flask import render_template
    from markupsafe import Markup

    from pbschool.courses import services

    summary = services.learning_summary(user)
    return Markup(render_template("courses/_home_panel.html", summary=summary,  # noqa: S704 (autoescaped)
                                  unfinished=services.unfinished_required(user)))
