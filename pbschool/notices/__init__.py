"""Notifications (通知) and announcements (通知公告): the header's unread count on every page."""

from flask import Blueprint, g
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from pbschool import registry

bp = Blueprint("notices", __name__, template_folder="templates")


def init_app(app):
    from pbschool.notices import api, models, views  # noqa: F401  (routes and tables register on import)

    app.register_blueprint(bp)
    registry.add_nav("notices.announcements", _l("通知公告"), order=58, roles=("secretary", "admin"))
    registry.listen("points.month_published", _month_published)
    app.context_processor(_badge)


def _month_published(period, members=()):
    from pbschool.notices import services

    services.month_published(period, members)


def unread_badge():
    """The signed-in user's unread count for the header, counted once a request (None: no badge)."""
    if "notice_badge" not in g:
        g.notice_badge = None
        if current_user and current_user.is_authenticated:
            from sqlalchemy.exc import SQLAlchemyError

            from pbschool.notices import services

            try:
                g.notice_badge = services.unread_count(current_user, cap=services.BADGE_CAP)
            except SQLAlchemyError:  # an error page while the database is down still renders
                g.notice_badge = None
    return g.notice_badge


def _badge():
    return {"unread_badge": unread_badge}
