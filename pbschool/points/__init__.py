"""The 4+X points ledger (积分)."""

from flask import Blueprint

bp = Blueprint("points", __name__, template_folder="templates")


def init_app(app):
    from pbschool.points import models  # noqa: F401  (tables register on import)

    app.register_blueprint(bp)
