"""Meetings of 三会一课: recorded by branch secretaries, attendance credits points."""

from flask import Blueprint
from flask_babel import lazy_gettext as _l

from pbschool import registry

bp = Blueprint("meetings", __name__, template_folder="templates")


def init_app(app):
    from pbschool.meetings import models, views  # noqa: F401  (routes and tables register on import)

    app.register_blueprint(bp)
    registry.add_nav("meetings.index", _l("三会一课"), order=55, roles=("secretary", "admin"))
