"""GET /api/v1/me/notifications and POST /api/v1/me/notifications/read: own rows only, bounded input."""

import datetime as dt

import pytest
from sqlalchemy import select

from pbschool import clock
from pbschool.extensions import db
from pbschool.notices import services
from pbschool.notices.models import Notification


def told(user, n=3):
    for i in range(n):
        clock.pin(dt.datetime(2026, 5, 1 + i, 1, 0))
        services.notify([user], "month_published", f"month:2026-0{i + 1}", subject=f"2026-0{i + 1}")
    clock.pin(None)
    db.session.commit()
    return db.session.scalars(select(Notification.id).where(Notification.user_id == user.id)
                              .order_by(Notification.id)).all()


def test_my_notifications_newest_first_with_the_contract_shape(app, make, api):
    member = make.user()
    ids = told(member)
    response = api.token(member).get("/me/notifications")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["unread"] == 3
    assert [i["id"] for i in body["items"]] == ids[::-1]
    first = body["items"][0]
    assert set(first) == {"id", "kind", "title", "url", "created_at", "read"}
    assert first["kind"] == "month_published" and first["read"] is False
    assert first["url"] == "/points/board?period=2026-03"
    assert first["created_at"] == "2026-05-03T01:00:00Z"
    assert "2026-03" in first["title"]


def test_marking_read_by_ids_then_all_and_twice_is_fine(app, make, api):
    member = make.user()
    ids = told(member)
    api.token(member)
    response = api.post("/me/notifications/read", json={"ids": [ids[0]]})
    assert response.status_code == 200 and response.get_json() == {"marked": 1, "unread": 2}
    assert api.post("/me/notifications/read", json={"ids": [ids[0]]}).get_json() == {"marked": 0, "unread": 2}
    assert api.post("/me/notifications/read", json={"all": True}).get_json() == {"marked": 2, "unread": 0}
    assert api.post("/me/notifications/read", json={"all": True}).get_json() == {"marked": 0, "unread": 0}
    assert all(i["read"] for i in api.get("/me/notifications").get_json()["items"])


def test_marking_another_members_notification_changes_nothing(app, make, api):
    member, other = make.user(), make.user()
    theirs = told(other)
    response = api.token(member).post("/me/notifications/read", json={"ids": theirs})
    assert response.status_code == 200 and response.get_json()["marked"] == 0
    db.session.expire_all()
    assert db.session.scalars(select(Notification.read_at).where(Notification.user_id == other.id)).all() == [None] * 3
    assert api.get("/me/notifications").get_json() == {"unread": 0, "items": [], "page": 1, "pages": 0}


@pytest.mark.parametrize("body", [
    {"ids": "x"}, {"ids": []}, {"ids": [True]}, {"ids": [1.5]}, {"ids": ["1"]}, {"ids": [0]}, {"ids": [2**40]},
    {"ids": list(range(1, 300))}, {"all": False}, {"all": "yes"}, {"all": True, "ids": [1]}, {}, {"ids": None},
])
def test_bad_read_requests_are_400(app, make, api, body):
    member = make.user()
    response = api.token(member).post("/me/notifications/read", json=body)
    assert response.status_code == 400
    assert set(response.get_json()["error"]) >= {"code", "message"}


def test_a_body_that_is_not_an_object_is_400(app, make, api):
    api.token(make.user())
    assert api.post("/me/notifications/read", json=[1, 2]).status_code == 400
    assert api.post("/me/notifications/read", data="ids", content_type="text/plain").status_code == 400


def test_without_a_token_it_is_401(client):
    assert client.get("/api/v1/me/notifications").status_code == 401
    assert client.post("/api/v1/me/notifications/read", json={"all": True}).status_code == 401
