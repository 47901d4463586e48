"""The staff's to-do panel on the home page: what waits for this person, as counts that link to the
queue. Read only, and a fixed number of small queries however much is waiting."""

import datetime as dt

from flask import render_template, url_for
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import and_, func, or_, select

from pbschool import auth, clock
from pbschool.extensions import db


def reviews_waiting(user):
    """Lessons and course edits submitted for review that this admin may decide (not their own)."""
    from pbschool.courses.models import Course, CourseDraft, Lesson, LessonDraft

    def not_mine(*columns):
        return and_(*[or_(c.is_(None), c != user.id) for c in columns])

    lessons = db.session.scalar(
        select(func.count(Lesson.id)).outerjoin(LessonDraft)
        .where(or_(and_(Lesson.state == "submitted", not_mine(Lesson.author_id)),
                   and_(LessonDraft.state == "submitted", not_mine(Lesson.author_id, LessonDraft.editor_id)))))
    courses = db.session.scalar(
        select(func.count(CourseDraft.id)).join(Course)
        .where(CourseDraft.state == "submitted", not_mine(Course.author_id, CourseDraft.editor_id)))
    return (lessons or 0) + (courses or 0)


def comments_waiting():
    from pbschool.courses.models import Comment

    return db.session.scalar(select(func.count(Comment.id)).where(Comment.is_approved.is_(False),
                                                                  Comment.is_hidden.is_(False))) or 0


def answers_waiting(user):
    """Short answers on finished attempts awaiting marking that this person may mark: never on their
    own paper, and for a lecturer only their banks' questions (as the marking page shows them)."""
    from pbschool.exams.models import Attempt, AttemptQuestion, Question

    stmt = (select(func.count(AttemptQuestion.id)).join(Attempt, AttemptQuestion.attempt_id == Attempt.id)
            .join(Question, AttemptQuestion.question_id == Question.id)
            .where(Attempt.state == "pending_review", Attempt.is_preview.is_(False), Attempt.user_id != user.id,
                   AttemptQuestion.needs_review.is_(True), AttemptQuestion.marked_at.is_(None),
                   Question.type == "short"))
    scope = auth.editable_bank_ids(user)
    if scope is not None:
        if not scope:
            return 0
        stmt = stmt.where(Question.bank_id.in_(scope))
    return db.session.scalar(stmt) or 0


def meetings_missing(branch_id, today=None):
    """Kinds of 三会一课 not yet held in their current period (this month, or this quarter)."""
    from pbschool.meetings.models import MEETING_KINDS, Meeting
    from pbschool.points.services import local_date

    today = today or local_date(clock.now())
    month_start = today.replace(day=1)
    quarter_start = dt.date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    held = set(db.session.execute(select(Meeting.kind, Meeting.held_on).where(
        Meeting.branch_id == branch_id, Meeting.held_on >= quarter_start)).all())
    missing = []
    for kind, (name, every) in MEETING_KINDS.items():
        start = month_start if every == "month" else quarter_start
        if not any(k == kind and day >= start for k, day in held):
            missing.append(name)
    return missing


def members_behind(branch):
    """Active members of the branch behind this year's expected learning hours."""
    from pbschool.courses import services

    return sum(1 for row in services.branch_learning(branch) if row["behind"])


def items_for(user):
    """(label, count, url) for each queue this person works on; counts of 0 are shown as done."""
    items = []
    if auth.is_admin(user):
        items.append((_l("待审核课程"), reviews_waiting(user), url_for("courses.review_queue")))
        items.append((_l("待审评论"), comments_waiting(), url_for("courses.comment_queue")))
    if auth.is_admin(user) or auth.has_role(user, "lecturer"):
        items.append((_l("待阅简答题"), answers_waiting(user), url_for("exams.admin_exams")))
    if auth.has_role(user, "secretary") and user.branch is not None:
        missing = meetings_missing(user.branch_id)
        items.append((_l("本期未开会议"), len(missing), url_for("meetings.index")))
        items.append((_l("学习进度落后"), members_behind(user.branch), url_for("courses.branch_learning")))
    return items


def home_panel(user):
    items = items_for(user)
    if not items:
        return None
    return Markup(render_template("reports/_todo.html", items=items))  # noqa: S704 (autoescaped template)
