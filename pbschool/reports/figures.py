"""Figures per branch and per member, read from courses, exams, meetings and the points ledger."""

import datetime as dt
from decimal import Decimal

from sqlalchemy import func, select

from pbschool import clock
from pbschool.accounts.models import Branch, User
from pbschool.courses.models import LessonProgress
from pbschool.courses.services import target_hours, year_bounds
from pbschool.exams.models import Attempt, Exam
from pbschool.extensions import db
from pbschool.meetings import services as meetings
from pbschool.points import periods
from pbschool.points import queries as point_queries
from pbschool.points import services as points
from pbschool.points.models import PointTotal, StarRating

HUNDRED = Decimal("100")


def _pct(part, whole):
    if not whole:
        return None
    return (Decimal(part) * HUNDRED / Decimal(whole)).quantize(Decimal("0.1"))


def _year_share(today=None):
    """How much of the learning year has passed (hours are expected to accrue evenly)."""
    today = today or points.local_date(clock.now())
    return Decimal((today - dt.date(today.year, 1, 1)).days + 1) / Decimal(365)


def hours_by_user(start, end, user_ids=None):
    stmt = (select(LessonProgress.user_id, func.sum(LessonProgress.hours_credited))
            .where(LessonProgress.completed_at >= start, LessonProgress.completed_at < end)
            .group_by(LessonProgress.user_id))
    if user_ids is not None:
        stmt = stmt.where(LessonProgress.user_id.in_(user_ids))
    return {uid: Decimal(str(h or 0)) for uid, h in db.session.execute(stmt)}


def exam_counts_by_user(start, end, user_ids=None):
    """{user_id: (graded attempts, passed attempts)} for attempts submitted in [start, end)."""
    stmt = (select(Attempt.user_id, func.count(Attempt.id),
                   func.sum(db.case((Attempt.passed.is_(True), 1), else_=0)))
            .where(Attempt.state == "submitted", Attempt.is_preview.is_(False),
                   Attempt.submitted_at >= start, Attempt.submitted_at < end)
            .group_by(Attempt.user_id))
    if user_ids is not None:
        stmt = stmt.where(Attempt.user_id.in_(user_ids))
    return {uid: (int(n), int(p or 0)) for uid, n, p in db.session.execute(stmt)}


def _members(branch_id=None):
    stmt = select(User).where(User.is_active_account.is_(True), User.branch_id.isnot(None))
    if branch_id is not None:
        stmt = stmt.where(User.branch_id == branch_id)
    return db.session.scalars(stmt.order_by(User.username)).all()


def _status(ratio):
    if ratio is None:
        return "red"
    return "green" if ratio >= Decimal("0.9") else "amber" if ratio >= Decimal("0.6") else "red"


def member_rows(branch_id, year=None):
    """The branch member by member: hours against target, points, stars, last exam, who is behind."""
    today = points.local_date(clock.now())
    year = year or today.year
    period = points.current_period()
    members = _members(branch_id)
    ids = [m.id for m in members]
    start, end = year_bounds(year)
    hours = hours_by_user(start, end, ids)
    month = {r.user_id: r for r in point_queries.live_standings(period, branch_id)}
    year_points = {r.user_id: r.points for r in point_queries.live_standings(point_queries.year_periods(year),
                                                                              branch_id)}
    last_stars = {}
    for rating in db.session.scalars(select(StarRating).where(StarRating.user_id.in_(ids))
                                     .order_by(StarRating.quarter)):
        last_stars[rating.user_id] = rating
    last_exam = {}
    for attempt, title in db.session.execute(
            select(Attempt, Exam.title).join(Exam, Attempt.exam_id == Exam.id)
            .where(Attempt.user_id.in_(ids), Attempt.state != "in_progress", Attempt.is_preview.is_(False))
            .order_by(Attempt.submitted_at)):
        last_exam[attempt.user_id] = (title, attempt)
    share = _year_share(today) if year == today.year else Decimal(1)
    rows = []
    for m in members:
        target = target_hours(m)
        done = hours.get(m.id, Decimal(0))
        expected = target * share
        ratio = (done / expected) if expected else Decimal(1)
        rows.append({"user": m, "hours": done.quantize(Decimal("0.01")), "target": target,
                     "completion": min(_pct(done, target) or Decimal(0), HUNDRED),
                     "month_points": month[m.id].points if m.id in month else Decimal("0.0"),
                     "rank_in_branch": month[m.id].rank_in_branch if m.id in month else None,
                     "year_points": year_points.get(m.id, Decimal("0.0")),
                     "stars": last_stars.get(m.id), "last_exam": last_exam.get(m.id),
                     "status": _status(ratio)})
    return rows


def branch_rows(year=None, period=None, quarter_periods=None):
    """Every branch: meeting rhythm, hours completion, exam pass rate, points per member, stars."""
    from pbschool.reports.models import BranchRating

    today = points.local_date(clock.now())
    year = year or today.year
    period = period or points.current_period()
    start, end = year_bounds(year)
    members = _members()
    hours = hours_by_user(start, end)
    exams = exam_counts_by_user(start, end)
    points_periods = quarter_periods or [period]
    standings = {r.user_id: r.points for r in point_queries.live_standings(points_periods)}
    ratings = {}
    for rating in db.session.scalars(select(BranchRating).order_by(BranchRating.quarter)):
        ratings[rating.branch_id] = rating
    by_branch = {}
    for m in members:
        by_branch.setdefault(m.branch_id, []).append(m)
    rows = []
    for branch in db.session.scalars(select(Branch).where(Branch.is_active.is_(True)).order_by(Branch.code)):
        people = by_branch.get(branch.id, [])
        completion = [min((hours.get(p.id, Decimal(0)) / target_hours(p)) if target_hours(p) else Decimal(1),
                          Decimal(1)) for p in people]
        graded = sum(exams.get(p.id, (0, 0))[0] for p in people)
        passed = sum(exams.get(p.id, (0, 0))[1] for p in people)
        total_points = sum((standings.get(p.id, Decimal(0)) for p in people), Decimal(0))
        rhythm = meetings.rhythm(branch.id, today)
        rows.append({
            "branch": branch, "members": len(people),
            "hours_completion": (sum(completion, Decimal(0)) * HUNDRED / len(people)).quantize(Decimal("0.1"))
            if people else None,
            "exam_pass_rate": _pct(passed, graded), "exams_graded": graded,
            "points_per_member": (total_points / len(people)).quantize(Decimal("0.1")) if people else None,
            "rhythm": rhythm, "rating": ratings.get(branch.id),
        })
    return rows


def _in_stays(stays_of, user_id, moment):
    """The branch whose stay of the member holds ``moment``, or None."""
    for stay in stays_of.get(user_id, ()):
        if stay.started_at <= moment < stay.ended_at:
            return stay.branch_id
    return None


def branch_quarter_rows(quarter):
    """Every branch's figures for one quarter, from that quarter's data alone: members are those who
    belonged to the branch during it (a member who moved counts in each branch for their time there),
    points are the entries that occurred while they were in the branch, learning hours the lessons
    completed then against the share of the yearly target for that time, the exam pass rate the
    attempts submitted then, and the meeting rhythm the meetings held in the quarter. Nothing that
    happened after the quarter changes them."""
    first, last = periods.quarter_days(quarter)
    start, end = periods.window(first, last)
    found = periods.stays(first, last)
    stays_of, members_of = {}, {}
    for stay in found:
        stays_of.setdefault(stay.user_id, []).append(stay)
        members_of.setdefault(stay.branch_id, set()).add(stay.user_id)
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(list(stays_of))))} if stays_of else {}
    stay_points = periods.points_by_stay(first, last)
    hours, exams = {}, {}
    for user_id, completed_at, credited in db.session.execute(
            select(LessonProgress.user_id, LessonProgress.completed_at, LessonProgress.hours_credited)
            .where(LessonProgress.completed_at >= start, LessonProgress.completed_at < end)):
        bid = _in_stays(stays_of, user_id, completed_at)
        if bid is not None:
            hours[(user_id, bid)] = hours.get((user_id, bid), Decimal(0)) + Decimal(str(credited or 0))
    for user_id, submitted_at, passed in db.session.execute(
            select(Attempt.user_id, Attempt.submitted_at, Attempt.passed)
            .where(Attempt.state == "submitted", Attempt.submitted_at >= start, Attempt.submitted_at < end)):
        bid = _in_stays(stays_of, user_id, submitted_at)
        if bid is not None:
            graded, ok = exams.get(bid, (0, 0))
            exams[bid] = (graded + 1, ok + (1 if passed else 0))
    year_seconds = Decimal((dt.date(first.year + 1, 1, 1) - dt.date(first.year, 1, 1)).days * 86400)
    after = last + dt.timedelta(days=1)
    branches = db.session.scalars(select(Branch).where(Branch.created_at < end).order_by(Branch.code)).all()
    rows = []
    for branch in branches:
        people = sorted(members_of.get(branch.id, ()))
        if not people and not branch.is_active:
            continue
        completion = []
        for uid in people:
            seconds = sum(Decimal(int((s.ended_at - s.started_at).total_seconds()))
                          for s in stays_of[uid] if s.branch_id == branch.id)
            expected = target_hours(users[uid]) * seconds / year_seconds
            done = hours.get((uid, branch.id), Decimal(0))
            completion.append(min(done / expected, Decimal(1)) if expected else Decimal(1))
        graded, passed = exams.get(branch.id, (0, 0))
        total_points = sum((stay_points.get((uid, branch.id), Decimal(0)) for uid in people), Decimal(0))
        rows.append({
            "branch": branch, "members": len(people),
            "hours_completion": (sum(completion, Decimal(0)) * HUNDRED / len(people)).quantize(Decimal("0.1"))
            if people else None,
            "exam_pass_rate": _pct(passed, graded), "exams_graded": graded,
            "points_per_member": (total_points / len(people)).quantize(Decimal("0.1")) if people else None,
            # the day after the quarter: its last three months and itself are the "last full" ones
            "rhythm": meetings.rhythm(branch.id, after),
        })
    return rows


def committee_series(months, branch_id=None):
    """Per month: points per member, learning hours per member and the exam pass rate (of the
    committee, or of one branch), for the 12-month charts."""
    members = _members(branch_id)
    count = len(members) or 1
    ids = [m.id for m in members]
    stmt = (select(PointTotal.period, func.sum(PointTotal.points))
            .where(PointTotal.period.in_(months), PointTotal.user_id.in_(ids)).group_by(PointTotal.period))
    pts = {p: Decimal(str(v)) for p, v in db.session.execute(stmt)}
    series = []
    for period in months:
        year, month = int(period[:4]), int(period[5:7])
        nxt = points.next_period(period)
        start = dt.datetime(year, month, 1) - dt.timedelta(hours=8)
        end = dt.datetime(int(nxt[:4]), int(nxt[5:7]), 1) - dt.timedelta(hours=8)
        hrs = db.session.scalar(select(func.coalesce(func.sum(LessonProgress.hours_credited), 0)).where(
            LessonProgress.completed_at >= start, LessonProgress.completed_at < end,
            LessonProgress.user_id.in_(ids)))
        graded, passed = db.session.execute(
            select(func.count(Attempt.id), func.coalesce(func.sum(db.case((Attempt.passed.is_(True), 1), else_=0)), 0))
            .where(Attempt.state == "submitted", Attempt.is_preview.is_(False), Attempt.submitted_at >= start,
                   Attempt.submitted_at < end, Attempt.user_id.in_(ids))).one()
        series.append({"period": period, "pass_rate": _pct(int(passed or 0), int(graded or 0)),
                       "points": (pts.get(period, Decimal(0)) / count).quantize(Decimal("0.1")),
                       "hours": (Decimal(str(hrs)) / count).quantize(Decimal("0.01"))})
    return series

