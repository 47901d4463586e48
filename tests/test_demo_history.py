"""The demo shows the product: three branches, about thirty members with months of study, exams taken
(statistics, and short answers waiting in the marking queue), meetings, published months and stars —
all written through the services, so every rule of the record holds after it."""

import datetime as dt
from decimal import Decimal

from sqlalchemy import func, select

from pbschool import clock
from pbschool.accounts.models import Branch, User
from pbschool.courses.models import Comment, Lesson, LessonProgress
from pbschool.exams import marking
from pbschool.exams.models import Attempt, Exam
from pbschool.extensions import db
from pbschool.meetings.models import Meeting
from pbschool.points.models import LedgerEntry, MonthlyPublication, StarRating


def count(column, *where):
    return db.session.scalar(select(func.count(column)).where(*where))


def test_the_demo_shows_months_of_a_working_organisation_and_keeps_every_rule(app, runner):
    """Reproduction: the demo left most pages empty or contradictory (0 hours but lesson points, no
    attempts, empty statistics)."""
    app.config["DEMO_HISTORY"] = True
    clock.pin(dt.datetime(2026, 12, 2, 2, 0))  # Beijing 10:00 on the 2nd: Q3 ended, November too
    try:
        result = runner.invoke(args=["demo"])
        assert result.exit_code == 0, result.output
        assert count(Branch.id) == 3
        assert count(User.id, User.role == "member") >= 25
        # study: completions with hours, and the ledger's lesson points match them one for one
        completed = count(LessonProgress.id, LessonProgress.completed_at.is_not(None))
        assert completed >= 100
        assert count(LessonProgress.id, LessonProgress.completed_at.is_not(None),
                     LessonProgress.hours_credited > 0) == completed
        assert count(LedgerEntry.id, LedgerEntry.kind == "lesson_completed") == completed
        # exams: taken, some passed, and the latest months' short answers awaiting marking
        assert count(Attempt.id, Attempt.is_preview.is_(False)) >= 50
        assert count(Attempt.id, Attempt.passed.is_(True)) > 0
        admin = db.session.scalar(select(User).where(User.username == "admin"))
        waiting = sum(len(marking.awaiting_marking(exam, admin)) for exam in db.session.scalars(select(Exam)))
        assert waiting >= 10
        # a lecturer's lesson waiting for review
        assert count(Lesson.id, Lesson.state == "submitted") == 1
        # meetings in every branch, published months, the last quarter's stars, comments to moderate
        assert count(func.distinct(Meeting.branch_id)) == 3
        assert count(MonthlyPublication.id) >= 3
        assert count(StarRating.id, StarRating.quarter == "2026-Q3") >= 25
        assert 0 < count(Comment.id, Comment.is_approved.is_(False)) <= 3
        # the record's rules: nobody credits themselves, points to one decimal, the chain verifies
        assert count(LedgerEntry.id, LedgerEntry.actor_id == LedgerEntry.user_id) == 0
        for points in db.session.scalars(select(LedgerEntry.points)):
            assert points == points.quantize(Decimal("0.1"))
        verify = runner.invoke(args=["ledger", "verify"])
        assert verify.exit_code == 0 and "ledger ok" in verify.output, verify.output
        # and a second run adds nothing
        entries = count(LedgerEntry.id)
        again = runner.invoke(args=["demo"])
        assert again.exit_code == 0 and "0 demo ledger entries" in again.output
        assert count(LedgerEntry.id) == entries
    finally:
        clock.pin(None)
