"""Courses and micro-lectures (网上党课 · 政工微课堂)."""

from flask import Blueprint

bp = Blueprint("courses", __name__, template_folder="templates")


def init_app(app):
    app.register_blueprint(bp)
