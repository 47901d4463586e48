"""Search (搜索): published courses and lessons by title and text, Chinese without spaces included."""

from flask import Blueprint

bp = Blueprint("search", __name__, template_folder="templates")


def init_app(app):
    from pbschool.search import api, models, services, views  # noqa: F401  (routes register on import)

    services.listen()
    app.register_blueprint(bp)
