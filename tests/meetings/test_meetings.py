import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from pbschool import clock
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.meetings import services
from pbschool.meetings.models import Meeting, MeetingAttendance
from pbschool.points import services as points
from pbschool.points.models import LedgerEntry


@pytest.fixture
def branch_people(app, make):
    clock.pin(dt.datetime(2026, 3, 20, 2, 0))
    zc = make.branch(code="ZC1", name="综采一队党支部")
    jd = make.branch(code="JD", name="机电科党支部")
    return {
        "branch": zc, "other_branch": jd,
        "secretary": make.user("secretary", role="secretary", branch=zc, name="张书记"),
        "a": make.user("liu", branch=zc, name="刘志强"),
        "b": make.user("chen", branch=zc, name="陈晓燕"),
        "stranger": make.user("sun", branch=jd, name="孙丽娟"),
        "other_secretary": make.user("zhou", role="secretary", branch=jd, name="周书记"),
    }


def test_recording_a_meeting_credits_attendees_once(branch_people):
    p = branch_people
    meeting, credited = services.record_meeting(p["branch"], "theme_day", dt.date(2026, 3, 18), "学习安全生产法",
                                                [p["a"].id, p["b"].id], actor=p["secretary"])
    db.session.commit()
    assert credited == 2
    assert points.balance(p["a"]) == Decimal("5.0")
    entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.user_id == p["a"].id))
    assert entry.category == "组织生活" and "主题党日" in entry.reason and entry.day == dt.date(2026, 3, 18)
    assert services.add_attendees(meeting, [p["a"].id], actor=p["secretary"]) == 0
    # the secretary's own attendance is recorded, unpaid (nobody credits themself)
    assert services.add_attendees(meeting, [p["secretary"].id], actor=p["secretary"]) == 0
    db.session.commit()
    assert points.balance(p["a"]) == Decimal("5.0") and points.balance(p["secretary"]) == 0
    assert db.session.scalar(select(func.count(MeetingAttendance.id))) == 3


def test_meeting_denials_and_bad_input(branch_people):
    p = branch_people
    with pytest.raises(DomainError) as exc:
        services.record_meeting(p["branch"], "lecture", dt.date(2026, 3, 18), "党课", [], actor=p["other_secretary"])
    assert exc.value.status == 403
    with pytest.raises(DomainError) as exc:
        services.record_meeting(p["branch"], "lecture", dt.date(2026, 3, 18), "党课", [], actor=p["a"])
    assert exc.value.status == 403
    with pytest.raises(DomainError) as exc:
        services.record_meeting(p["branch"], "lecture", dt.date(2026, 3, 18), "党课", [p["stranger"].id],
                                actor=p["secretary"])
    assert exc.value.field == "attendees"
    with pytest.raises(DomainError) as exc:
        services.record_meeting(p["branch"], "party", dt.date(2026, 3, 18), "党课", [], actor=p["secretary"])
    assert exc.value.field == "kind"
    with pytest.raises(DomainError) as exc:
        services.record_meeting(p["branch"], "lecture", dt.date(2026, 4, 18), "党课", [], actor=p["secretary"])
    assert exc.value.field == "held_on"


def test_rhythm_turns_green_when_the_branch_keeps_it(branch_people):
    p = branch_people
    assert services.rhythm(p["branch"].id)["status"] == "red"
    clock.pin(dt.datetime(2026, 1, 10, 2, 0))
    for month in (12, 11, 10):
        for kind in ("committee", "group", "theme_day"):
            services.record_meeting(p["branch"], kind, dt.date(2025, month, 5), f"{kind} {month}", [],
                                    actor=p["secretary"])
    r = services.rhythm(p["branch"].id)
    assert r["status"] == "amber" and (r["kept"], r["slots"]) == (9, 11)
    services.record_meeting(p["branch"], "general", dt.date(2025, 11, 9), "党员大会", [], actor=p["secretary"])
    services.record_meeting(p["branch"], "lecture", dt.date(2025, 12, 9), "党课", [], actor=p["secretary"])
    assert services.rhythm(p["branch"].id)["status"] == "green"
    assert services.rhythm(p["other_branch"].id)["status"] == "red"


def test_secretary_records_meeting_through_the_page(branch_people, client, auth):
    p = branch_people
    auth.login("secretary")
    page = client.get("/meetings/new").get_data(as_text=True)
    assert "刘志强" in page and "孙丽娟" not in page and 'type="checkbox"' in page
    response = client.post("/meetings/new", data={"kind": "general", "held_on": "2026-03-19", "topic": "支部党员大会",
                                                  "attendees": [str(p["a"].id), str(p["b"].id)]})
    assert response.status_code == 302
    meeting = db.session.scalar(select(Meeting))
    assert meeting.branch_id == p["branch"].id and len(meeting.attendances) == 2
    assert points.balance(p["b"]) == Decimal("5.0")
    html = client.get("/meetings").get_data(as_text=True)
    assert "支部党员大会" in html and "会议节奏" in html
    bad = client.post("/meetings/new", data={"kind": "general", "held_on": "2026-03-19", "topic": "",
                                             "attendees": [str(p["stranger"].id)]})
    assert bad.status_code == 200 and "请填写会议主题" in bad.get_data(as_text=True)
    bad = client.post("/meetings/new", data={"kind": "general", "held_on": "2026-03-19", "topic": "越权",
                                             "attendees": [str(p["stranger"].id)]})
    assert "只能勾选本支部的党员" in bad.get_data(as_text=True)


def test_meeting_page_denials(branch_people, client, auth, make):
    p = branch_people
    meeting, _ = services.record_meeting(p["branch"], "lecture", dt.date(2026, 3, 18), "党课", [],
                                         actor=p["secretary"])
    db.session.commit()
    auth.login("zhou")
    assert client.get(f"/meetings/{meeting.id}").status_code == 403
    assert client.get("/meetings/new?branch=ZC1").get_data(as_text=True).count("刘志强") == 0  # own branch only
    client.post("/logout")
    auth.login("liu")
    assert client.get("/meetings").status_code == 403
    client.post("/logout")
    make.user("boss", role="admin")
    auth.login("boss")
    html = client.get("/meetings").get_data(as_text=True)
    assert "综采一队党支部" in html and "机电科党支部" in html
    assert client.get("/meetings/new?branch=ZC1").status_code == 200


def test_secretary_home_panel_and_demo_loader(branch_people, client, auth, app):
    from pbschool.meetings import _demo

    p = branch_people
    p["branch"].code = "ZC1"
    db.session.commit()
    auth.login("secretary")
    html = client.get("/").get_data(as_text=True)
    assert "本支部三会一课" in html and "明显滞后" in html
    lines = list(_demo(None))
    db.session.commit()
    assert "demo meetings" in lines[0]
    assert list(_demo(None)) == ["meetings: demo meetings already there"]
    assert services.rhythm(p["branch"].id)["status"] in ("green", "amber")


def test_meetings_export(branch_people, client, auth):
    import io

    from openpyxl import load_workbook

    p = branch_people
    services.record_meeting(p["branch"], "lecture", dt.date(2026, 3, 18), "=HYPERLINK(\"x\")", [p["a"].id],
                            actor=p["secretary"])
    db.session.commit()
    auth.login("secretary")
    rows = list(load_workbook(io.BytesIO(client.get("/meetings.xlsx").data)).active.iter_rows(values_only=True))
    assert rows[0][0] == "日期" and rows[1][1] == "党课" and rows[1][2].startswith("'=")
    assert rows[1][4] == "刘志强"


def test_record_a_meeting_through_the_api(branch_people, api):
    p = branch_people
    api.token(p["secretary"])
    body = {"kind": "group", "held_on": "2026-03-19", "topic": "党小组学习", "attendees": ["liu", "chen"]}
    response = api.post("/meetings", json=body)
    assert response.status_code == 200 and response.get_json()["credited"] == 2
    assert points.balance(p["b"]) == Decimal("5.0")
    assert api.post("/meetings", json={**body, "attendees": ["sun"]}).status_code == 400
    assert api.post("/meetings", json={**body, "attendees": ["ghost"]}).status_code == 404
    assert api.post("/meetings", json={**body, "held_on": "19/03/2026"}).status_code == 400
    assert api.post("/meetings", json={**body, "branch": "JD"}).status_code == 403
    assert api.post("/meetings", json={**body, "kind": "party"}).status_code == 400
    api.token(p["a"])
    assert api.post("/meetings", json=body).status_code == 403


# -- issue 11: nobody credits themself, a meeting is recorded once, attendance pays by the rhythm -------

def _balance(user):
    db.session.expire_all()
    return points.balance(user)


def test_ten_meetings_with_only_the_secretary_present_pay_nothing(branch_people, api):
    """The issue: a secretary recorded ten meetings with themself as the only attendee: +50 points."""
    p = branch_people
    api.token(p["secretary"])
    replies = []
    for day in range(1, 11):
        replies.append(api.post("/meetings", json={"kind": "group", "held_on": f"2026-03-{day:02d}",
                                                   "topic": f"党小组会 {day}", "attendees": ["secretary"]}))
    assert [r.status_code for r in replies] == [200] * 10
    assert _balance(p["secretary"]) == 0
    assert all(r.get_json()["credited"] == 0 and r.get_json()["own_attendance_pending"] for r in replies)
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 0


def test_the_same_meeting_posted_twice_pays_once(branch_people, api):
    """The issue: the same meeting posted twice (a double tap) pays twice."""
    p = branch_people
    api.token(p["secretary"])
    body = {"kind": "theme_day", "held_on": "2026-03-18", "topic": "主题党日", "attendees": ["liu"]}
    first = api.post("/meetings", json=body)
    second = api.post("/meetings", json=body)
    assert first.status_code == 200 and first.get_json()["credited"] == 1
    assert second.status_code == 409 and second.get_json()["error"]["code"] == "duplicate_meeting"
    assert "已经记录过" in second.get_json()["error"]["message"]
    assert db.session.scalar(select(func.count(Meeting.id))) == 1
    assert _balance(p["a"]) == Decimal("5.0")


def test_the_same_key_returns_the_first_record(branch_people, api):
    p = branch_people
    api.token(p["secretary"])
    body = {"kind": "committee", "held_on": "2026-03-18", "topic": "支委会", "attendees": ["liu", "chen"],
            "key": "tap-1"}
    first = api.post("/meetings", json=body)
    again = api.post("/meetings", json=body)
    assert first.status_code == again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"] and again.get_json()["replayed"] is True
    assert again.get_json()["credited"] == 2
    assert db.session.scalar(select(func.count(Meeting.id))) == 1
    assert _balance(p["a"]) == _balance(p["b"]) == Decimal("5.0")
    assert api.post("/meetings", json={**body, "key": ""}).status_code == 400
    assert api.post("/meetings", json={**body, "key": "k" * 65}).status_code == 400


def test_the_page_form_cannot_double_submit(branch_people, client, auth):
    p = branch_people
    auth.login("secretary")
    page = client.get("/meetings/new").get_data(as_text=True)
    import re

    key = re.search(r'name="key"[^>]*value="([0-9a-f]{32})"', page).group(1)
    assert "data-busy" in page
    data = {"kind": "group", "held_on": "2026-03-19", "topic": "党小组会", "attendees": [str(p["a"].id)], "key": key}
    first = client.post("/meetings/new", data=data)
    second = client.post("/meetings/new", data=data)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert db.session.scalar(select(func.count(Meeting.id))) == 1
    assert _balance(p["a"]) == Decimal("5.0")
    assert "这次提交已经记录过了" in client.get(second.headers["Location"]).get_data(as_text=True)
    # a second form (new key) for the same branch, kind and day: the reason on the form, nothing written
    again = client.post("/meetings/new", data={**data, "key": "b" * 32})
    assert again.status_code == 200 and "这一天已经记录过" in again.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Meeting.id))) == 1


def test_attendance_pays_as_often_as_the_rhythm_asks(branch_people, api):
    p = branch_people
    api.token(p["secretary"])

    def post(kind, day, topic):
        reply = api.post("/meetings", json={"kind": kind, "held_on": day, "topic": topic, "attendees": ["liu"]})
        assert reply.status_code == 200, reply.get_json()
        return reply.get_json()

    assert post("theme_day", "2026-03-05", "主题党日一")["credited"] == 1
    second = post("theme_day", "2026-03-12", "主题党日二")
    assert second["credited"] == 0 and second["capped"] == ["liu"]
    assert post("group", "2026-03-12", "党小组会")["credited"] == 1  # another kind has its own allowance
    assert post("theme_day", "2026-02-26", "二月主题党日")["credited"] == 1  # another month
    assert post("general", "2026-01-10", "党员大会")["credited"] == 1
    assert post("general", "2026-03-10", "又一次党员大会")["credited"] == 0  # the same quarter
    assert _balance(p["a"]) == Decimal("20.0")
    # the capped attendance is recorded all the same
    assert db.session.scalar(select(func.count(MeetingAttendance.id))) == 6


def test_the_cap_is_an_admin_setting(branch_people, client, auth, make):
    p = branch_people
    make.user("boss", role="admin")
    auth.login("boss")
    page = client.get("/meetings/settings").get_data(as_text=True)
    assert "主题党日" in page and "每月" in page and "每季度" in page
    bad = client.post("/meetings/settings", data={"general": "1", "committee": "1", "group": "1",
                                                  "lecture": "1", "theme_day": "1.5"})
    assert bad.status_code == 200 and "整数" in bad.get_data(as_text=True)
    assert services.attendance_caps()["theme_day"] == 1
    ok = client.post("/meetings/settings", data={"general": "1", "committee": "1", "group": "1",
                                                 "lecture": "1", "theme_day": "2"})
    assert ok.status_code == 302
    assert services.attendance_caps()["theme_day"] == 2
    for day in (5, 12, 19):
        services.record_meeting(p["branch"], "theme_day", dt.date(2026, 3, day), f"主题党日 {day}", [p["a"].id],
                                actor=p["secretary"])
    db.session.commit()
    assert _balance(p["a"]) == Decimal("10.0")
    client.post("/logout")
    auth.login("secretary")
    assert client.get("/meetings/settings").status_code == 403


def test_own_attendance_waits_for_another_to_confirm_it(branch_people, make):
    p = branch_people
    boss = make.user("boss", role="admin")
    meeting, credited = services.record_meeting(p["branch"], "lecture", dt.date(2026, 3, 18), "党课",
                                                [p["secretary"].id, p["a"].id], actor=p["secretary"])
    assert credited == 1
    assert services.add_attendees(meeting, [p["secretary"].id], actor=p["secretary"]) == 0
    assert points.balance(p["secretary"]) == 0
    assert services.pending_attendees(meeting) == [p["secretary"]]
    assert services.add_attendees(meeting, [p["secretary"].id], actor=boss) == 1
    assert services.add_attendees(meeting, [p["secretary"].id], actor=boss) == 0
    db.session.commit()
    assert points.balance(p["secretary"]) == Decimal("5.0")
    entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.user_id == p["secretary"].id))
    assert entry.actor_id == boss.id
    assert services.pending_attendees(meeting) == []


def test_another_recorder_confirms_own_attendance_through_the_api(branch_people, api, make):
    p = branch_people
    make.user("boss", role="admin")
    api.token(p["secretary"])
    first = api.post("/meetings", json={"kind": "general", "held_on": "2026-03-18", "topic": "党员大会",
                                        "attendees": ["secretary", "liu"]}).get_json()
    assert first["credited"] == 1 and first["own_attendance_pending"] is True
    assert api.post(f"/meetings/{first['id']}/attendees", json={"attendees": ["secretary"]}).get_json()["credited"] == 0
    assert api.post(f"/meetings/{first['id']}/attendees", json={"attendees": ["ghost"]}).status_code == 404
    assert api.post("/meetings/999999/attendees", json={"attendees": []}).status_code == 404
    api.token(p["other_secretary"])
    assert api.post(f"/meetings/{first['id']}/attendees", json={"attendees": ["secretary"]}).status_code == 404
    api.token("boss")
    reply = api.post(f"/meetings/{first['id']}/attendees", json={"attendees": ["secretary", "chen"]}).get_json()
    assert reply["credited"] == 2 and reply["own_attendance_pending"] is False
    assert _balance(p["secretary"]) == _balance(p["b"]) == Decimal("5.0")


def test_the_admin_confirms_own_attendance_on_the_page(branch_people, client, auth, make):
    p = branch_people
    make.user("boss", role="admin")
    meeting, _ = services.record_meeting(p["branch"], "lecture", dt.date(2026, 3, 18), "党课", [p["secretary"].id],
                                         actor=p["secretary"])
    db.session.commit()
    auth.login("secretary")
    html = client.get(f"/meetings/{meeting.id}").get_data(as_text=True)
    assert "待他人确认" in html and "确认出席" not in html  # nobody confirms themself
    client.post("/logout")
    auth.login("boss")
    html = client.get(f"/meetings/{meeting.id}").get_data(as_text=True)
    assert "张书记（确认出席）" in html
    reply = client.post(f"/meetings/{meeting.id}", data={"attendees": [str(p["secretary"].id)]})
    assert reply.status_code == 302
    assert _balance(p["secretary"]) == Decimal("5.0")
    assert "待他人确认" not in client.get(f"/meetings/{meeting.id}").get_data(as_text=True)
