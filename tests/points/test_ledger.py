import datetime as dt
from decimal import Decimal

from pbschool import clock
from pbschool.extensions import db
from pbschool.points import services
from pbschool.points.models import LedgerEntry


def test_record_event_is_idempotent(app, make):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    user = make.user()
    first = services.record_event(user, "lesson_completed", f"lesson:1:user:{user.id}", value=1)
    again = services.record_event(user, "lesson_completed", f"lesson:1:user:{user.id}", value=1)
    db.session.commit()
    assert first is not None and first.points == Decimal("1.0") and first.category == "学习"
    assert again is None
    assert services.balance(user) == Decimal("1.0")
    assert db.session.query(LedgerEntry).count() == 1


def test_daily_cap_limits_points(app, make):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    user = make.user()
    entries = [services.record_event(user, "lesson_completed", f"lesson:{n}:user:{user.id}")
               for n in range(7)]
    db.session.commit()
    assert [e is not None for e in entries] == [True] * 5 + [False] * 2
    assert services.balance(user) == Decimal("5.0")
    clock.advance(days=1)
    assert services.record_event(user, "lesson_completed", f"lesson:99:user:{user.id}") is not None


def test_study_time_accumulates_units(app, make):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    user = make.user()
    for n in range(5):
        services.record_event(user, "study_time", f"study:{n}", value=4)  # 20 minutes in all
    db.session.commit()
    assert services.balance(user) == Decimal("0.2")


def test_exam_points_override_and_unknown_kind_kept(app, make):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    user = make.user()
    entry = services.record_event(user, "exam_passed", "attempt:7", points=3, value=88)
    odd = services.record_event(user, "something_new", "x:1")
    db.session.commit()
    assert entry.points == Decimal("3.0") and entry.category == "考试"
    assert odd is not None and odd.points == Decimal("0.0")


def test_duplicate_does_not_abort_callers_transaction(app, make):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    user = make.user()
    services.record_event(user, "meeting_attended", "meeting:1:user:1")
    db.session.commit()
    user.job_post = "掘进工"
    assert services.record_event(user, "meeting_attended", "meeting:1:user:1") is None
    db.session.commit()
    db.session.refresh(user)
    assert user.job_post == "掘进工"
