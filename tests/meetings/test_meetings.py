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
    assert services.add_attendees(meeting, [p["secretary"].id], actor=p["secretary"]) == 1
    db.session.commit()
    assert points.balance(p["a"]) == Decimal("5.0")
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
