"""Separation of duties for meetings: nobody is paid for attendance they recorded themself, by any path.
Members and lecturers may not record meetings at all; a secretary's or an admin's own attendance is
recorded but waits, unpaid, for someone else to confirm it."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from pbschool import clock
from pbschool.extensions import db
from pbschool.meetings import services
from pbschool.meetings.models import Meeting, MeetingAttendance
from pbschool.points.models import LedgerEntry, LedgerHead, PointTotal
from tests.sod.conftest import ROLES, table_contents

RECORDERS = ("secretary", "admin")


@pytest.fixture
def me(app, person, request):
    clock.pin(dt.datetime(2026, 3, 20, 2, 0))
    return person(request.param)


def _ledger():
    db.session.expire_all()
    contents = table_contents()
    return {t: contents[t] for t in (LedgerEntry.__tablename__, PointTotal.__tablename__, LedgerHead.__tablename__)}


def _check(user, reply, ledger_before):
    if user.role in RECORDERS:
        # recorded, and nothing paid: no ledger row at all
        assert _ledger() == ledger_before
        attendance = db.session.scalar(select(MeetingAttendance).where(MeetingAttendance.user_id == user.id))
        assert attendance is not None and attendance.credit == "pending"
    else:
        assert reply.status_code == 403


def _maybe_unchanged(user, unchanged):
    """Refused roles must leave every record table as it was; recorders write the meeting only."""
    import contextlib

    return unchanged() if user.role not in RECORDERS else contextlib.nullcontext()


@pytest.mark.parametrize("me", ROLES, indirect=True)
def test_own_attendance_by_the_api_is_never_paid(me, api, unchanged):
    api.token(me)
    ledger = _ledger()
    with _maybe_unchanged(me, unchanged):
        reply = api.post("/meetings", json={"kind": "group", "held_on": "2026-03-18", "topic": "党小组会",
                                            "attendees": [me.username]})
    _check(me, reply, ledger)
    if me.role in RECORDERS:
        assert reply.status_code == 200 and reply.get_json() | {"id": 0} == {
            "id": 0, "credited": 0, "capped": [], "own_attendance_pending": True, "replayed": False}


@pytest.mark.parametrize("me", ROLES, indirect=True)
def test_own_attendance_by_the_page_is_never_paid(me, client, auth, unchanged):
    auth.login(me.username)
    ledger = _ledger()
    with _maybe_unchanged(me, unchanged):
        reply = client.post(f"/meetings/new?branch={me.branch.code}",
                            data={"kind": "group", "held_on": "2026-03-18", "topic": "党小组会",
                                  "attendees": [str(me.id)], "key": "e" * 32})
    _check(me, reply, ledger)
    if me.role in RECORDERS:
        page = client.get(reply.headers["Location"]).get_data(as_text=True)
        assert "不能为自己记录出席积分" in page


@pytest.mark.parametrize("me", RECORDERS, indirect=True)
def test_confirming_own_attendance_on_the_page_pays_nothing(me, client, auth, unchanged):
    meeting, _credited = services.record_meeting(me.branch, "lecture", dt.date(2026, 3, 18), "党课", [me.id],
                                                 actor=me)
    db.session.commit()
    auth.login(me.username)
    with unchanged():
        reply = client.post(f"/meetings/{meeting.id}", data={"attendees": [str(me.id)]})
        assert reply.status_code in (200, 302)
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 0


@pytest.mark.parametrize("me", ROLES, indirect=True)
def test_ten_meetings_with_only_myself_earn_nothing(me, api):
    api.token(me)
    for day in range(1, 11):
        reply = api.post("/meetings", json={"kind": "theme_day", "held_on": f"2026-03-{day:02d}",
                                            "topic": f"主题党日 {day}", "attendees": [me.username]})
        assert reply.status_code == (200 if me.role in RECORDERS else 403)
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 0
    assert db.session.scalar(select(func.count(Meeting.id))) == (10 if me.role in RECORDERS else 0)



@pytest.mark.parametrize("me", ROLES, indirect=True)
def test_confirming_own_attendance_by_the_api_pays_nothing(me, make, api, unchanged):
    secretary = me if me.role in RECORDERS else make.user(role="secretary", branch=me.branch)
    meeting, _credited = services.record_meeting(me.branch, "lecture", dt.date(2026, 3, 18), "党课", [me.id],
                                                 actor=secretary)
    db.session.commit()
    api.token(me)
    with unchanged():
        reply = api.post(f"/meetings/{meeting.id}/attendees", json={"attendees": [me.username]})
        if me.role in RECORDERS:
            assert reply.status_code == 200
            assert reply.get_json()["credited"] == 0 and reply.get_json()["own_attendance_pending"] is True
        else:
            assert reply.status_code == 403
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == (0 if me.role in RECORDERS else 1)
