"""一人一档: one member's record — hours by year, lessons, exams, points by month, meetings
attended, stars and certificates. The one reader behind the staff export
(/reports/members/<id>/record.xlsx), the member's own page and GET /api/v1/me/record.xlsx."""

from collections import defaultdict
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import select

from pbschool.certificates.models import Certificate
from pbschool.courses.models import Lesson, LessonProgress
from pbschool.exams.models import Attempt, Exam
from pbschool.extensions import db
from pbschool.meetings.models import MEETING_KINDS, Meeting, MeetingAttendance
from pbschool.points import queries as point_queries
from pbschool.tabular import beijing, xlsx_book


def _num(value):
    return None if value is None else float(value)


def member_record(member):
    """Everything the record shows, read in a handful of queries."""
    lessons = db.session.execute(
        select(LessonProgress, Lesson.title).join(Lesson, LessonProgress.lesson_id == Lesson.id)
        .where(LessonProgress.user_id == member.id, LessonProgress.completed_at.isnot(None))
        .order_by(LessonProgress.completed_at)).all()
    hours_by_year = defaultdict(lambda: [Decimal(0), 0])
    for progress, _title in lessons:
        year = beijing(progress.completed_at).year
        hours_by_year[year][0] += progress.hours_credited or Decimal(0)
        hours_by_year[year][1] += 1
    attempts = db.session.execute(
        select(Attempt, Exam.title).join(Exam, Attempt.exam_id == Exam.id)
        .where(Attempt.user_id == member.id, Attempt.is_preview.is_(False))
        .order_by(Attempt.started_at)).all()
    best = {}
    for attempt, _title in attempts:
        if attempt.score is not None and attempt.state == "submitted":
            held = best.get(attempt.exam_id)
            if held is None or (attempt.percent or 0) > (held.percent or 0):
                best[attempt.exam_id] = attempt
    meetings = db.session.scalars(
        select(Meeting).join(MeetingAttendance, MeetingAttendance.meeting_id == Meeting.id)
        .where(MeetingAttendance.user_id == member.id).order_by(Meeting.held_on.desc())).all()
    summary = point_queries.member_summary(member, by_category=False)
    certificates = db.session.scalars(select(Certificate).where(Certificate.user_id == member.id)
                                      .order_by(Certificate.issued_at.desc())).all()
    return {
        "member": member,
        "summary": summary,
        "hours_by_year": sorted(((y, h.quantize(Decimal("0.01")), n) for y, (h, n) in hours_by_year.items()),
                                reverse=True),
        "lessons": lessons,
        "attempts": attempts,
        "best_ids": {a.id for a in best.values()},
        "points_by_month": sorted(summary["by_month"].items(), reverse=True),
        "meetings": meetings,
        "meeting_kinds": MEETING_KINDS,
        "stars": point_queries.stars_of(member, limit=100),
        "entries": point_queries.entries_of(member),
        "certificates": certificates,
    }


def _yes(value):
    return "" if value is None else (_("是") if value else _("否"))


def record_workbook(member):
    """The record as an .xlsx (bytes), one sheet per part."""
    r = member_record(member)
    s = r["summary"]
    return xlsx_book([
        (_("概况"), [_("项目"), _("内容")], [
            (_("姓名"), member.name), (_("用户名"), member.username),
            (_("支部"), member.branch.name if member.branch else ""), (_("岗位"), member.job_post),
            (_("总积分"), float(s["balance"])), (_("本年积分"), float(s["this_year"]))]),
        (_("学时"), [_("完成时间（北京时间）"), _("课时"), _("学时")],
         [(p.completed_at, title, float(p.hours_credited)) for p, title in r["lessons"]]),
        (_("年度学时"), [_("年度"), _("学时"), _("完成课时数")],
         [(year, float(hours), count) for year, hours, count in r["hours_by_year"]]),
        (_("考试"), [_("考试"), _("第几次"), _("交卷时间（北京时间）"), _("得分"), _("满分"), _("得分率%"), _("通过"),
                   _("最好成绩")],
         [(title, a.number, a.submitted_at, _num(a.score), _num(a.max_score), _num(a.percent), _yes(a.passed),
           _("是") if a.id in r["best_ids"] else "") for a, title in r["attempts"]]),
        (_("积分"), [_("日期"), _("计入月份"), _("类别"), _("事由"), _("积分"), _("一票否决")],
         [(e.day, e.period, e.category, e.reason, float(e.points), _("是") if e.is_veto else "")
          for e in reversed(r["entries"])]),
        (_("月度积分"), [_("月份"), _("积分")], [(p, float(v)) for p, v in r["points_by_month"]]),
        (_("组织生活"), [_("日期"), _("会议"), _("主题")],
         [(m.held_on, _(MEETING_KINDS[m.kind][0]) if m.kind in MEETING_KINDS else m.kind, m.topic)
          for m in r["meetings"]]),
        (_("评星"), [_("季度"), _("得分"), _("星级")],
         [(st.quarter, float(st.score), st.stars) for st in r["stars"]]),
        (_("证书"), [_("证书编号"), _("事项"), _("颁发时间（北京时间）"), _("状态")],
         [(c.display_code, c.title, c.issued_at, _("已撤销") if c.is_revoked else _("有效"))
          for c in r["certificates"]]),
    ])
