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
    registry.add_home_panel(_news_on_home, order=1)
    registry.add_demo_loader(_demo)


def _month_published(period, members=()):
    from pbschool.notices import services

    services.month_published(period, members)


def _news_on_home(user):
    """The home page is where a member lands: the notices that are derived when read (an exam opened to
    me, a course required of me) are made here too, so the header's count includes them. Shows nothing
    itself; the bell does."""
    from pbschool.extensions import db
    from pbschool.notices import derived

    if derived.sync(user):
        db.session.commit()
    return ""


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


def _demo(content_dir):
    """A pinned committee notice and a branch notice, so the bell has something to show."""
    from sqlalchemy import inspect, select

    from pbschool.accounts.models import User
    from pbschool.extensions import db
    from pbschool.notices import services

    if not inspect(db.engine).has_table("announcement"):
        yield "notices: skipped, the notices tables are not in the database yet (pbschool init)"
        return
    people = {u.username: u for u in db.session.scalars(select(User).where(User.username.in_(("admin", "secretary"))))}
    made = 0
    if "admin" in people:
        item = services.publish_announcement(
            people["admin"], title="关于开展“安全生产月”主题党日活动的通知", audience="all", pinned=True,
            key="demo-committee",
            body="各党支部：\n\n请于本月内结合**安全生产月**组织一次主题党日活动，并在三会一课中记录。")
        made += item.recipient_count
    if "secretary" in people and people["secretary"].branch_id:
        item = services.publish_announcement(
            people["secretary"], title="本周四召开支部党员大会", audience="branches", key="demo-branch",
            branch_ids=[people["secretary"].branch_id], body="时间：周四 16:00，地点：综采一队会议室。")
        made += item.recipient_count
    yield f"notices: demo announcements ({made} notifications)"
