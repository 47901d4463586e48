"""Question banks and timed exams (在线考试)."""

from flask import Blueprint
from flask_babel import lazy_gettext as _l

from pbschool import registry

bp = Blueprint("exams", __name__, template_folder="templates")


def init_app(app):
    from pbschool.exams import api, autosweep, cli, models, override_api, override_views, views  # noqa: F401  (routes register on import)

    app.register_blueprint(bp)
    autosweep.init_app(app)
    _no_limiter_on_saves()
    app.cli.add_command(cli.bank_cli)
    app.cli.add_command(cli.exams_cli)
    registry.add_nav("exams.my_exams", _l("在线考试"), order=30)
    registry.add_nav("exams.banks", _l("题库"), order=60, roles=("admin", "lecturer"))
    registry.add_nav("exams.admin_exams", _l("考试管理"), order=65, roles=("admin", "secretary", "lecturer"))
    registry.add_demo_loader(cli.demo_loader)
    registry.add_home_panel(views.home_panel, order=30, roles=("member", "lecturer", "secretary", "admin"))


_FILTERED = []


def _no_limiter_on_saves():
    """No rate limit applies to the answer save: skip the limiter's per-request look-up (issue 13).
    The limiter is one object for every app: its filter is added once."""
    if _FILTERED:
        return
    from flask import request

    from pbschool.extensions import limiter

    limiter.request_filter(lambda: request.endpoint == "api.save_answer")
    _FILTERED.append(True)
