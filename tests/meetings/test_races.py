import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from pbschool import clock
from pbschool.accounts.models import User
from pbschool.extensions import db
from pbschool.meetings import services
from pbschool.meetings.models import Meeting, MeetingAttendance
from pbschool.points import services as points

pytestmark = pytest.mark.postgres_only


def test_marking_the_same_attendee_in_parallel_credits_once(app, make, backend):
    if backend == "sqlite":
        pytest.skip("SQLite serialises writes and hides races")
    clock.pin(dt.datetime(2026, 3, 20, 2, 0))
    secretary = make.user(role="secretary")
    member = make.user(branch=secretary.branch)
    meeting, _ = services.record_meeting(secretary.branch, "lecture", dt.date(2026, 3, 18), "党课", [],
                                         actor=secretary)
    db.session.commit()
    ids = (secretary.id, member.id, meeting.id)
    barrier = threading.Barrier(8)
    errors = []

    def run():
        try:
            with app.app_context():
                barrier.wait()
                services.add_attendees(db.session.get(Meeting, ids[2]), [ids[1]],
                                       actor=db.session.get(User, ids[0]))
                db.session.commit()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert db.session.scalar(select(func.count(MeetingAttendance.id))) == 1
    assert points.balance(db.session.get(User, ids[1])) == Decimal("5.0")


def _ten_at_once(app, work):
    barrier = threading.Barrier(10)
    results, errors = [], []

    def run():
        try:
            with app.app_context():
                barrier.wait(10)
                results.append(work())
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


@pytest.mark.parametrize("key", [None, "same-key"])
def test_the_same_meeting_posted_ten_times_at_once_is_one_record(app, make, backend, key):
    if backend == "sqlite":
        pytest.skip("SQLite serialises writes and hides races")
    from pbschool.errors import DomainError

    clock.pin(dt.datetime(2026, 3, 20, 2, 0))
    secretary = make.user(role="secretary")
    member = make.user(branch=secretary.branch)
    ids = (secretary.id, member.id, secretary.branch_id)

    def post():
        secretary = db.session.get(User, ids[0])
        try:
            meeting, credited = services.record_meeting(secretary.branch, "theme_day", dt.date(2026, 3, 18),
                                                        "主题党日", [ids[1]], actor=secretary, key=key)
        except DomainError as exc:
            db.session.rollback()
            return exc.code
        db.session.commit()
        return meeting.id

    results = _ten_at_once(app, post)
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Meeting.id))) == 1
    meeting_id = db.session.scalar(select(Meeting.id))
    if key:
        assert results == [meeting_id] * 10
    else:
        assert sorted(results, key=str) == sorted([meeting_id] + ["duplicate_meeting"] * 9, key=str)
    assert db.session.scalar(select(func.count(MeetingAttendance.id))) == 1
    assert points.balance(db.session.get(User, ids[1])) == Decimal("5.0")


def test_two_meetings_of_one_kind_in_a_month_at_once_pay_once(app, make, backend):
    if backend == "sqlite":
        pytest.skip("SQLite serialises writes and hides races")
    clock.pin(dt.datetime(2026, 3, 20, 2, 0))
    secretary = make.user(role="secretary")
    member = make.user(branch=secretary.branch)
    ids = (secretary.id, member.id)
    days = iter(range(1, 11))
    lock = threading.Lock()

    def post():
        with lock:
            day = next(days)
        secretary = db.session.get(User, ids[0])
        services.record_meeting(secretary.branch, "group", dt.date(2026, 3, day), f"党小组会 {day}", [ids[1]],
                                actor=secretary)
        db.session.commit()

    _ten_at_once(app, post)
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Meeting.id))) == 10
    assert points.balance(db.session.get(User, ids[1])) == Decimal("5.0")
