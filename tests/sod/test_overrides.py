"""Separation of duties for exam overrides: nobody gives themself more time, a later close or more
attempts — by the API or the exam's staff page, whatever their role, their own attempt running or not.
A branch override its setter belongs to leaves the setter out."""

import datetime as dt

import pytest

from pbschool import clock
from pbschool.exams import services
from pbschool.exams.models import Attempt
from pbschool.extensions import db
from tests.exams.conftest import T0, make_bank, make_exam
from tests.factories import ApiClient
from tests.sod.conftest import ROLES

BODIES = ({"extra_minutes": 30}, {"extra_attempts": 2}, {"closes_at": "2026-06-02T01:00:00Z"},
          {"extra_minutes": 5, "extra_attempts": 1})


@pytest.fixture
def sitting(person):
    """(user, exam, their running attempt) for a role."""

    def build(role):
        clock.pin(T0)
        user = person(role)
        exam = make_exam(make_bank(name=f"题库{user.id}"), time_limit=600, closes_at=T0 + dt.timedelta(hours=1))
        attempt = services.start_attempt(exam, user)
        db.session.commit()
        return user, exam, attempt

    yield build
    clock.pin(None)


@pytest.mark.parametrize("role", ROLES)
def test_nobody_sets_their_own_override_by_the_api(app, sitting, unchanged, role):
    user, exam, attempt = sitting(role)
    api = ApiClient(app.test_client()).token(user)
    with unchanged():
        for body in BODIES:
            response = api.put(f"/exams/{exam.id}/overrides/{user.username}", json=body)
            assert response.status_code == 403, (role, body, response.get_json())
            if role in ("admin", "secretary"):
                assert response.get_json()["error"]["code"] == "own_override"
        assert api.delete(f"/exams/{exam.id}/overrides/{user.username}").status_code == 403
    assert db.session.get(Attempt, attempt.id).deadline_at == T0 + dt.timedelta(minutes=10)


@pytest.mark.parametrize("role", ROLES)
def test_nobody_sets_their_own_override_on_the_page(app, client, auth, sitting, unchanged, role):
    user, exam, attempt = sitting(role)
    auth.login(user.username)
    with unchanged():
        response = client.post(f"/admin/exams/{exam.id}/overrides",
                               data={"username": user.username, "extra_minutes": "30"})
        assert response.status_code in (400, 403)
        if role in ("admin", "secretary"):
            assert "不能为自己设置" in response.get_data(as_text=True)


@pytest.mark.parametrize("role", ["admin", "secretary"])
def test_a_branch_override_leaves_out_whoever_set_it(app, sitting, role):
    user, exam, attempt = sitting(role)
    api = ApiClient(app.test_client()).token(user)
    response = api.put(f"/exams/{exam.id}/overrides/branch/{user.branch.code}", json={"extra_minutes": 30,
                                                                                     "extra_attempts": 3})
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(Attempt, attempt.id).deadline_at == T0 + dt.timedelta(minutes=10)
    assert services.attempts_left(exam, user) == 0
