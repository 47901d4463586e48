"""My sessions (issue 12, item 6; ASVS 5.0 V7.4.5): my signed-in browsers and API tokens, when and
from where, each with "sign out there" — for my own only."""

import datetime as dt

import pytest
from sqlalchemy import select

from pbschool import clock
from pbschool.accounts.models import ApiToken, UserSession
from pbschool.extensions import db
from tests.factories import PASSWORD

PHONE = "Mozilla/5.0 (Linux; Android 14) Mobile"
OFFICE = "Mozilla/5.0 (Windows NT 10.0) Desktop"
T0 = dt.datetime(2026, 12, 2, 8, 0, 1)


def device(app, agent, address):
    client = app.test_client()
    client.environ_base.update({"HTTP_USER_AGENT": agent, "REMOTE_ADDR": address})
    return client


def login(client, username):
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_my_devices_are_listed_and_one_is_signed_out_there(app, make):
    make.user("liuzq")
    phone = login(device(app, PHONE, "10.1.2.3"), "liuzq")
    office = login(device(app, OFFICE, "10.9.8.7"), "liuzq")
    page = phone.get("/account/sessions").get_data(as_text=True)
    assert PHONE in page and OFFICE in page and "10.1.2.3" in page and "10.9.8.7" in page
    assert "本设备" in page
    office_row = db.session.scalar(select(UserSession).where(UserSession.user_agent == OFFICE))
    assert phone.post(f"/account/sessions/{office_row.id}/revoke").status_code == 302
    after = office.get("/")
    assert after.status_code == 302 and after.headers["Location"].startswith("/login")
    assert office.get("/").status_code == 302  # and stays signed out
    assert phone.get("/").status_code == 200
    assert OFFICE not in phone.get("/account/sessions").get_data(as_text=True)


def test_a_copied_session_cookie_is_worthless_once_signed_out_there(app, make):
    make.user("liuzq")
    office = login(device(app, OFFICE, "10.9.8.7"), "liuzq")
    thief = device(app, OFFICE, "203.0.113.9")
    thief.set_cookie("session", office.get_cookie("session").value)
    assert thief.get("/").status_code == 200
    phone = login(device(app, PHONE, "10.1.2.3"), "liuzq")
    office_row = db.session.scalar(select(UserSession).where(UserSession.ip == "203.0.113.9"))
    assert office_row is not None  # last seen from the thief's address: the member can tell
    phone.post(f"/account/sessions/{office_row.id}/revoke")
    assert thief.get("/").status_code == 302


def test_logout_revokes_the_record(app, make):
    make.user("liuzq")
    phone = login(device(app, PHONE, "10.1.2.3"), "liuzq")
    phone.post("/logout")
    row = db.session.scalar(select(UserSession))
    assert row.revoked_at is not None


def test_last_seen_moves_at_most_once_a_minute(app, make):
    make.user("liuzq")
    clock.pin(T0)
    phone = login(device(app, PHONE, "10.1.2.3"), "liuzq")
    clock.advance(seconds=30)
    phone.get("/")
    assert db.session.scalar(select(UserSession.last_seen_at)) == T0
    clock.advance(seconds=31)
    phone.get("/")
    assert db.session.scalar(select(UserSession.last_seen_at)) == T0 + dt.timedelta(seconds=61)


def test_my_api_tokens_are_listed_with_where_from_and_revoked_one_by_one(app, make):
    make.user("liuzq")
    script = device(app, "python-requests/2.32", "10.5.5.5")
    issued = [script.post("/api/v1/tokens", json={"username": "liuzq", "password": PASSWORD}).get_json()["token"]
              for _ in range(2)]
    phone = login(device(app, PHONE, "10.1.2.3"), "liuzq")
    page = phone.get("/account/sessions").get_data(as_text=True)
    assert page.count("python-requests/2.32") == 2 and "10.5.5.5" in page
    first = db.session.scalar(select(ApiToken).order_by(ApiToken.id))
    assert phone.post(f"/account/tokens/{first.id}/revoke").status_code == 302
    assert script.get("/api/v1/me", headers={"Authorization": "Bearer " + issued[0]}).status_code == 401
    assert script.get("/api/v1/me", headers={"Authorization": "Bearer " + issued[1]}).status_code == 200


def test_a_session_from_before_the_records_gets_one(app, make):
    """Sessions signed in before this release (or restored from remember-me) are listed too."""
    user = make.user("liuzq")
    client = device(app, PHONE, "10.1.2.3")
    with client.session_transaction() as sess:
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True
    assert client.get("/").status_code == 200
    assert db.session.scalar(select(UserSession.user_agent)) == PHONE


@pytest.mark.parametrize("role", ["member", "lecturer", "secretary", "admin"])
def test_nobody_signs_out_anyone_else(app, make, role):
    """Per object: another's session or token is 403 for every role, and stays in force."""
    victim_user = make.user("victim")
    victim = login(device(app, OFFICE, "10.9.8.7"), "victim")
    script = device(app, "curl/8", "10.9.8.7")
    token = script.post("/api/v1/tokens", json={"username": "victim", "password": PASSWORD}).get_json()["token"]
    make.user("actor", role=role, branch=victim_user.branch if role == "secretary" else None)
    actor = login(device(app, PHONE, "10.1.2.3"), "actor")
    session_id = db.session.scalar(select(UserSession.id).where(UserSession.user_id == victim_user.id))
    token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.user_id == victim_user.id))
    assert actor.post(f"/account/sessions/{session_id}/revoke").status_code == 403
    assert actor.post(f"/account/tokens/{token_id}/revoke").status_code == 403
    assert actor.post("/account/sessions/999999/revoke").status_code == 404
    page = actor.get("/account/sessions").get_data(as_text=True)
    assert OFFICE not in page and "curl/8" not in page
    assert victim.get("/").status_code == 200
    assert script.get("/api/v1/me", headers={"Authorization": "Bearer " + token}).status_code == 200
    db.session.expire_all()
    assert db.session.get(UserSession, session_id).revoked_at is None
    assert db.session.get(ApiToken, token_id).revoked_at is None
