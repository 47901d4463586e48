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
    """Default rules, and a few months of points for the demo members so the charts have a shape."""
    import datetime as dt

    from sqlalchemy import inspect, select

    from pbschool import clock
    from pbschool.accounts.models import User
    from pbschool.extensions import db
    from pbschool.points import services

    if not inspect(db.engine).has_table("ledger_entry"):
        yield "points: skipped, the ledger tables are not in the database yet (pbschool init)"
        return
    services.ensure_default_rules()
    from pbschool import demo

    # Only the demo's own users: never anyone else's ledger (CONTRACT.md).
    members = db.session.scalars(select(User).where(User.branch_id.isnot(None), User.id.in_(demo.user_ids()))
                                 .order_by(User.id)).all()
    written = 0
    today = clock.now()
    for n, user in enumerate(members):
        for back in range(5, -1, -1):
            moment = today - dt.timedelta(days=30 * back + n)
            for k in range(1 + (n + back) % 4):
                if services.record_event(user, "lesson_completed", f"demo:lesson:{back}:{k}:user:{user.id}",
                                         value=1, occurred_at=moment - dt.timedelta(hours=k),
                                         reason="完成课程学习（示例）"):
                    written += 1
            if (n + back) % 2 == 0 and services.record_event(
                    user, "exam_passed", f"demo:exam:{back}:user:{user.id}", points=2, value=85,
                    occurred_at=moment, reason="通过月度应知应会考试（示例）"):
                written += 1
    yield f"points: default rules ready, {written} demo ledger entries added"
