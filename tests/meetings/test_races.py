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
