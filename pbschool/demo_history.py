"""A few months of the demo organisation's life, so a newcomer sees what the product does: lessons
studied and completed, monthly exams taken (the latest one's short answers still awaiting marking),
meetings, awards, comments, published months and the last quarter's stars.

Everything goes through the services with the clock pinned to each moment, in time order, so every
rule holds as it would have: one learning clock per member, nobody credits or marks themselves, a
month is published only after its last day, and ``pbschool ledger verify`` passes. Written once
(recorded in ``demo_record``); a second run adds nothing."""

import datetime as dt
import random
from decimal import Decimal

from sqlalchemy import select

from pbschool import clock
from pbschool.accounts.models import DemoRecord, User
from pbschool.extensions import db

#: Topics of the monthly exams, one bank category each (every category holds one short answer).
EXAM_TOPICS = ["理论学习", "主体责任", "标准化建设", "人才队伍", "廉洁作风", "舆论引导"]
COMMENTS = ["结合班组实际，安全确认要落实到每一个环节。", "学了这一课，对支部标准化建设有了新的认识。",
            "建议把手指口述的要点做成口袋卡片，方便井下随时看。", "廉洁从业要从小事做起，从身边做起。"]
AWARDS = [("1.5", "井下隐患排查中主动发现并报告重大隐患（示例）"), ("1.0", "带头参加抢险救灾突击队（示例）"),
          ("0.5", "在班前会上讲安全微党课（示例）")]


def _month_add(year, month, delta):
    index = year * 12 + month - 1 + delta
    return index // 12, index % 12 + 1


def _local(day, hour, minute=0):
    """A Beijing-time moment on ``day`` as the app's naive UTC."""
    return dt.datetime(day.year, day.month, day.day, hour, minute) - dt.timedelta(hours=8)


def first_month(today):
    """The history starts with the last ended quarter, so that quarter gets its stars."""
    return _month_add(today.year, (today.month - 1) // 3 * 3 + 1, -3)


def joined_at():
    """When the demo's people joined: a month before the history starts (so they belong in it)."""
    from pbschool.points.services import local_date

    year, month = _month_add(*first_month(local_date(clock.now())), -1)
    return _local(dt.date(year, month, 1), 9)


def _done():
    return db.session.scalar(select(DemoRecord.id).where(DemoRecord.kind == "history")) is not None


def _answer(slot, right):
    q = slot.question
    if q.type == "short":
        return "学党章党规、学系列讲话，做合格党员；结合岗位，把安全生产责任落到实处。"
    if not right:
        return None
    if q.type == "blank":
        return [alts[0] for alts in q.answer]
    return q.kind.display(q.answer, slot.option_order)


def _exam_month(bank, admin, learners, rng, index, first, last, span, current, mark):
    """A monthly exam open for the whole month, sat by most; its short answers are marked by the admin
    at the month's end when ``mark``, else they wait in the marking queue. Returns the attempts."""
    from pbschool.exams import marking
    from pbschool.exams import services as exams

    topic = EXAM_TOPICS[index % len(EXAM_TOPICS)]
    with clock.pinned(_local(first, 8)):
        exam = exams.create_exam({
            "title": f"{first.year}年{first.month}月应知应会测试（{topic}）", "time_limit_seconds": 20 * 60,
            "max_attempts": 2, "pass_score": 60, "points_on_pass": 2,
            "opens_at": _local(first, 8), "closes_at": None if current else _local(last, 22),
            "description": "每月一次的应知应会测试（演示数据）",
            "sections": [{"bank": bank, "category": topic,
                          "count": len(exams._available(bank.id, topic, None)), "points_each": 1}]},
            actor=admin)
    skill = {u.id: 0.55 + 0.4 * rng.random() for u in learners}
    sat = 0
    for n, user in enumerate(learners):
        if n % 9 == 5:
            continue  # did not sit it
        moment = _local(first + dt.timedelta(days=(n * 2 + 4) % span), 12, 10)
        with clock.pinned(moment):
            attempt = exams.start_attempt(exam, user, now=moment)
            for slot in attempt.questions:
                value = _answer(slot, rng.random() < skill[user.id])
                if value is not None:
                    exams.save_answer(attempt, slot.question_id, value, now=moment)
        done = moment + dt.timedelta(minutes=9 + n % 8)
        with clock.pinned(done):
            exams.submit_attempt(attempt, now=done)
        sat += 1
    if mark:
        with clock.pinned(_local(last, 18)):
            for slot in marking.awaiting_marking(exam, admin):
                marking.mark_answer(slot.attempt, slot.question_id,
                                    (slot.points * Decimal("0.8")).quantize(Decimal("0.1")), admin,
                                    feedback="要点基本齐全（示例）")
    return sat


def load(user_ids):
    """Write the history once for the demo's own users (``user_ids``). Yields lines to print."""
    from pbschool.courses import services as courses
    from pbschool.courses.models import Course, Lesson
    from pbschool.exams import services as exams
    from pbschool.meetings import services as meetings
    from pbschool.points import services as points
    from pbschool.points.models import LedgerEntry

    if _done():
        yield "history: already there, 0 demo ledger entries added"
        return
    bank = exams.find_bank("党建知识")
    lessons = db.session.scalars(select(Lesson).join(Course).where(Lesson.state == "published",
                                                                  Course.is_published.is_(True))
                                 .order_by(Course.position, Course.id, Lesson.position, Lesson.id)).all()
    people = {u.username: u for u in db.session.scalars(select(User).where(User.id.in_(user_ids or [0])))}
    if bank is None or not lessons or "admin" not in people:
        yield "history: skipped (no demo bank, lessons or admin)"
        return
    entries_before = db.session.scalar(select(db.func.count(LedgerEntry.id)))
    admin = people["admin"]
    learners = sorted((u for u in people.values() if u.branch_id and u.role in ("member", "secretary")),
                      key=lambda u: u.username)
    recorder = {u.branch_id: u for u in people.values() if u.role == "secretary"}
    rng = random.Random(2026)  # the same history on every machine
    now = clock.now()
    today = points.local_date(now)
    quarter_first = first_month(today)
    months = []
    ym = quarter_first
    while ym <= (today.year, today.month):
        months.append(ym)
        ym = _month_add(*ym, 1)
    done_lessons = {u.id: 0 for u in learners}
    stats = {"lessons": 0, "attempts": 0, "meetings": 0, "published": 0}
    for index, (year, month) in enumerate(months):
        first = dt.date(year, month, 1)
        last = dt.date(*_month_add(year, month, 1), 1) - dt.timedelta(days=1)
        current = (year, month) == (today.year, today.month)
        end = min(last, today - dt.timedelta(days=1)) if current else last
        if end < first:
            continue
        span = (end - first).days + 1
        # study: a member keeps one lesson going at a time (one learning clock); some fall behind
        for n, user in enumerate(learners):
            if n % 7 == 3:
                continue  # behind on learning: shows amber/red on the branch pages
            for k in range(1 + (n + index) % 2):
                if done_lessons[user.id] >= len(lessons):
                    break
                lesson = lessons[done_lessons[user.id]]
                day = first + dt.timedelta(days=min(span - 1, (n * 3 + 2) % max(1, span - 2) + k))  # in time order
                start = _local(day, 19 + 2 * k)
                with clock.pinned(start):
                    courses.open_lesson(user, lesson)
                need, step = courses.required_seconds(lesson), int(courses._setting("HEARTBEAT_MAX_SECONDS", 300))
                moment, progress = start, None
                for _beat in range(need // step + 3):  # one clock: never more than the wall-clock time
                    if progress is not None and progress.credited_seconds >= need:
                        break
                    moment += dt.timedelta(seconds=step)
                    with clock.pinned(moment):
                        progress = courses.heartbeat(user, lesson, step)
                if progress.credited_seconds < need:
                    break  # the clock was taken (cannot happen in time order; never force it)
                with clock.pinned(moment + dt.timedelta(seconds=30)):
                    courses.complete_lesson(user, lesson)
                done_lessons[user.id] += 1
                stats["lessons"] += 1
                if (n + index) % 5 == 0:
                    with clock.pinned(moment + dt.timedelta(seconds=90)):
                        courses.add_comment(user, lesson, COMMENTS[(n + index) % len(COMMENTS)])
        if index >= len(months) - 3:  # exams in the last three months: statistics and a queue, loaded quickly
            stats["attempts"] += _exam_month(bank, admin, learners, rng, index, first, last, span, current,
                                             mark=(year, month) not in months[-2:])
        # meetings of the branches the meetings loader does not cover, and awards by secretaries/admin
        for branch_id, actor in sorted(recorder.items()) + [(admin.branch_id, admin)]:
            if actor.branch and actor.branch.code == "ZC1":
                continue  # the meetings loader writes ZC1's
            members = [u.id for u in learners if u.branch_id == branch_id]
            kinds = [("committee", "研究本月党建和安全生产重点工作", 5), ("theme_day", "主题党日：重温入党誓词", 18)]
            if actor is admin and index % 2:
                kinds = kinds[:1]  # the office branch slips: its rhythm shows amber
            if (month - 1) % 3 == 1:
                kinds.append(("general", "支部党员大会：季度工作总结", 22))
                kinds.append(("lecture", "书记讲党课：安全就是最大的政治", 23))
            for kind, topic_name, day in kinds:
                held = first + dt.timedelta(days=min(day, span) - 1)
                with clock.pinned(_local(held, 16)):
                    meetings.record_meeting(actor.branch, kind, held, topic_name, members, actor=actor)
                stats["meetings"] += 1
        for branch_id, actor in sorted(recorder.items()) + [(admin.branch_id, admin)]:
            others = [u for u in learners if u.branch_id == branch_id and u.id != actor.id]
            for k, member in enumerate(others[index % 3::4][:2]):
                amount, reason = AWARDS[(index + k) % len(AWARDS)]
                with clock.pinned(_local(first + dt.timedelta(days=(k * 7 + 9) % span), 10)):
                    points.award(member, amount, reason, actor=actor, source_key=f"demo:award:{year}-{month}:"
                                 f"{member.username}")
        if not current:
            with clock.pinned(min(now, _local(last + dt.timedelta(days=1), 9))):
                points.publish_month(f"{year:04d}-{month:02d}", actor=admin)
            stats["published"] += 1
        db.session.flush()
    # comments: the older ones approved by the admin, the last few wait for moderation
    from pbschool.courses.models import Comment

    pending = db.session.scalars(select(Comment).where(Comment.is_approved.is_(False))
                                 .order_by(Comment.created_at)).all()
    for comment in pending[:-3]:
        with clock.pinned(comment.created_at + dt.timedelta(hours=2)):
            courses.approve_comment(comment, admin)
    lecturer = people.get("lecturer")
    if lecturer is not None:  # a new micro-lecture waiting for the admin's review
        with clock.pinned(now - dt.timedelta(hours=3)):
            course = courses.create_course("班组安全微课堂", "授课人编写的班前会微课（演示数据）", actor=lecturer)
            lesson = courses.create_lesson(course, "第一讲：班前会上的安全确认", 15,
                                           "## 班前会怎么开\n\n1. 点名、查看精神状态\n2. 讲清当班风险和安全措施\n"
                                           "3. 手指口述，逐项确认", lecturer)
            courses.submit_lesson(lesson, lecturer)
    quarter = points.quarter_of(dt.date(*quarter_first, 1))
    with clock.pinned(_local(dt.date(*_month_add(*quarter_first, 3), 1), 10)):
        rated = points.compute_stars(quarter, actor=admin)
    db.session.add(DemoRecord(kind="history", object_id=0, key=quarter))
    db.session.flush()
    added = db.session.scalar(select(db.func.count(LedgerEntry.id))) - entries_before
    yield (f"history: {stats['lessons']} lessons completed, {stats['attempts']} exam attempts, "
           f"{stats['meetings']} meetings, {stats['published']} months published, {rated} stars for {quarter}, "
           f"{added} demo ledger entries added")
