"""Reports (网上考核): read-only figures across features, branch star ratings, one file per member."""

from flask import Blueprint
from flask_babel import lazy_gettext as _l

from pbschool import registry

bp = Blueprint("reports", __name__, template_folder="templates")


def init_app(app):
    from pbschool.reports import models, views  # noqa: F401  (routes and tables register on import)

    app.register_blueprint(bp)
    registry.add_nav("reports.overview", _l("网上考核"), order=65, roles=("admin",))
    registry.add_nav("reports.branch", _l("支部概览"), order=54, roles=("secretary",))
    from pbschool.reports import todo

    registry.add_home_panel(todo.home_panel, order=5, roles=("admin", "secretary", "lecturer"))
