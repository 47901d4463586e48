"""Question banks and timed exams (在线考试)."""

from flask import Blueprint

bp = Blueprint("exams", __name__, template_folder="templates")


def init_app(app):
    app.register_blueprint(bp)
