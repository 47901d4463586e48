"""The 4+X points ledger (积分): daily points by rule, monthly boards, quarterly stars, honours."""

from flask import Blueprint
from flask_babel import lazy_gettext as _l

from pbschool import registry

bp = Blueprint("points", __name__, template_folder="templates")


def init_app(app):
    from pbschool.points import api, cli, models, views  # noqa: F401  (routes and tables register on import)

    app.register_blueprint(bp)
    app.cli.add_command(cli.points_cli)
    app.cli.add_command(cli.ledger_cli)
    registry.add_nav("points.mine", _l("我的积分"), order=30)
    registry.add_nav("points.board", _l("晒分榜"), order=31)
    registry.add_nav("points.award", _l("加分扣分"), order=60, roles=("secretary",))
    registry.add_nav("points.admin", _l("积分管理"), order=60, roles=("admin",))
    registry.add_home_panel(views.home_panel, order=20)
    registry.add_demo_loader(_demo)


def _demo(content_dir):
    """Default rules. The demo's points come from its history (pbschool.demo_history): lessons really
    studied, exams really taken, meetings and awards, each through its service."""
    from sqlalchemy import inspect

    from pbschool.extensions import db
    from pbschool.points import services

    if not inspect(db.engine).has_table("ledger_entry"):
        yield "points: skipped, the ledger tables are not in the database yet (pbschool init)"
        return
    services.ensure_default_rules()
    yield "points: default rules ready"
