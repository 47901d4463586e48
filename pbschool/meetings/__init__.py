"""Meetings of 三会一课: recorded by branch secretaries, attendance credits points."""

from flask import Blueprint
from flask_babel import lazy_gettext as _l

from pbschool import registry

bp = Blueprint("meetings", __name__, template_folder="templates")


def init_app(app):
    from pbschool.meetings import api, models, views  # noqa: F401  (routes and tables register on import)

    app.register_blueprint(bp)
    registry.add_nav("meetings.index", _l("三会一课"), order=55, roles=("secretary", "admin"))
    registry.add_home_panel(_home_panel, order=15, roles=("secretary",))
    registry.add_demo_loader(_demo)


def _home_panel(user):
    from flask import render_template
    from markupsafe import Markup

    from pbschool.meetings import services

    if user.branch_id is None:
        return None
    return Markup(render_template("meetings/_home_panel.html",  # noqa: S704 (autoescaped template)
                                  branch=user.branch, rhythm=services.rhythm(user.branch_id)))


def _demo(content_dir):
    """A few months of meetings for the first demo branch, so its rhythm has a colour."""
    import datetime as dt

    from sqlalchemy import inspect, select

    from pbschool import clock
    from pbschool.accounts.models import User
    from pbschool.accounts.services import find_branch
    from pbschool.extensions import db
    from pbschool.meetings import services
    from pbschool.meetings.models import Meeting
    from pbschool.points.services import local_date

    if not inspect(db.engine).has_table("meeting"):
        yield "meetings: skipped, the meeting tables are not in the database yet (pbschool init)"
        return
    branch = find_branch("ZC1")
    secretary = db.session.scalar(select(User).where(User.username == "secretary"))
    if branch is None or secretary is None or secretary.branch_id != branch.id:
        return
    if db.session.scalar(select(Meeting.id).where(Meeting.branch_id == branch.id)):
        yield "meetings: demo meetings already there"
        return
    today = local_date(clock.now())
    from pbschool import demo

    made = set(demo.user_ids())  # only the demo's own users get attendance
    members = [m.id for m in services.branch_members(branch.id) if m.id in made]
    made = 0
    for back in (3, 2, 1):
        index = today.year * 12 + today.month - 1 - back
        first = dt.date(index // 12, index % 12 + 1, 1)
        for kind, topic, day in (("committee", "研究本月安全生产和党建工作", 3), ("group", "学习《煤矿安全规程》", 10),
                                 ("theme_day", "主题党日：党员先锋岗在井下", 20)):
            services.record_meeting(branch, kind, first.replace(day=day), topic, members, actor=secretary)
            made += 1
        if back == 2:
            services.record_meeting(branch, "general", first.replace(day=25), "支部党员大会", members, actor=secretary)
            services.record_meeting(branch, "lecture", first.replace(day=26), "书记讲党课：安全就是最大的政治",
                                    members, actor=secretary)
            made += 2
    yield f"meetings: {made} demo meetings for {branch.code} with attendance"
