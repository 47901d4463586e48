"""Separation of duties for points: nobody awards, deducts or reverses their own points, by any path."""

import datetime as dt

import pytest

from pbschool import clock
from pbschool.extensions import db
from pbschool.points import services
from tests.sod.conftest import ROLES

OWN_POINTS = "不能给自己加减积分"


@pytest.fixture
def me(app, person, request):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    user = person(request.param)
    entry = services.record_event(user, "meeting_attended", f"meeting:0:user:{user.id}")
    db.session.commit()
    return user, entry


def _page(client, auth, user):
    auth.login(user.username)
    return client


@pytest.mark.parametrize("me", ROLES, indirect=True)
@pytest.mark.parametrize("points", ["2", "-2"])
def test_own_points_by_the_page_are_refused(me, points, client, auth, unchanged):
    user, _entry = me
    auth.login(user.username)
    with unchanged():
        reply = client.post("/points/award", data={"member": str(user.id), "points": points, "category": "作用发挥",
                                                   "reason": "给自己加分", "key": "d" * 32})
        if user.role in ("secretary", "admin"):
            assert reply.status_code == 200 and OWN_POINTS in reply.get_data(as_text=True)
        else:
            assert reply.status_code == 403


@pytest.mark.parametrize("me", ROLES, indirect=True)
@pytest.mark.parametrize("points", [2, -2])
def test_own_points_by_the_api_are_refused(me, points, api, unchanged):
    user, _entry = me
    api.token(user)
    with unchanged():
        reply = api.post("/points/awards", json={"username": user.username, "points": points, "reason": "给自己加分",
                                                 "key": "self"})
        assert reply.status_code == 403
        if user.role in ("secretary", "admin"):
            assert reply.get_json()["error"]["code"] == "own_points"
            assert reply.get_json()["error"]["message"] == OWN_POINTS


@pytest.mark.parametrize("me", ROLES, indirect=True)
def test_reversing_own_entry_by_the_page_is_refused(me, client, auth, unchanged):
    user, entry = me
    auth.login(user.username)
    with unchanged():
        reply = client.post(f"/points/entries/{entry.id}/reverse", data={"reason": "扣掉不如冲掉"})
        assert reply.status_code == 403
        if user.role in ("secretary", "admin"):
            assert OWN_POINTS in reply.get_data(as_text=True)


@pytest.mark.parametrize("me", ROLES, indirect=True)
@pytest.mark.parametrize("action", ["award", "deduct", "reverse"])
def test_own_points_by_the_service_are_refused_with_the_reason(me, action, unchanged):
    from pbschool.errors import DomainError

    user, entry = me
    with unchanged():
        with pytest.raises(DomainError) as refused:
            if action == "reverse":
                services.reverse(entry, "冲正", actor=user)
            else:
                services.award(user, "2" if action == "award" else "-2", "自己", actor=user)
        assert refused.value.status == 403 and refused.value.code == "own_points"
