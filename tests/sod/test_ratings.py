"""Separation of duties for ratings: nobody confirms the star rating of their own branch (星级党支部),
by any path, whatever their role; a member's quarterly stars are computed from the ledger, and there is
no way to set (override) one's own. Each refusal writes nothing."""

import datetime as dt
from decimal import Decimal

import pytest

from pbschool import clock
from pbschool.accounts import services as accounts
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.reports import services
from pbschool.reports.models import BranchRating
from tests.sod.conftest import ROLES

OWN_RATING = "不能评定自己或本人所在支部的星级"


def proposed(branch_id):
    rating = BranchRating(branch_id=branch_id, quarter="2026-Q1", score=Decimal("80.0"), proposed_stars=3,
                          figures={"points": "80.0"})
    db.session.add(rating)
    db.session.commit()
    return rating


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", ["page", "service"])
def test_nobody_confirms_the_rating_of_their_own_branch(role, path, person, unchanged, client, auth):
    clock.pin(dt.datetime(2026, 4, 10, 2, 0))
    actor = person(role)
    rating = proposed(actor.branch_id)
    if path == "page":
        auth.login(actor.username)
        with unchanged():
            response = client.post("/reports/overview", data={"action": "confirm", "rating": rating.id,
                                                              "stars": "5"}, follow_redirects=True)
            if role == "admin":
                assert response.status_code == 200 and OWN_RATING in response.get_data(as_text=True)
            else:
                assert response.status_code == 403
    else:
        with unchanged():
            with pytest.raises(DomainError) as refused:
                services.confirm_rating(rating, 5, actor=actor)
            assert refused.value.status == 403 and refused.value.code == "own_rating"
            assert OWN_RATING in refused.value.message


def test_an_admin_who_belonged_to_the_branch_during_the_quarter_is_refused_too(make, unchanged):
    clock.pin(dt.datetime(2026, 1, 5, 2, 0))
    branch = make.branch(code="ZC1")
    admin, _ = accounts.create_user("office", "组织部", role="admin", branch=branch, password="committee-pass-26")
    db.session.commit()
    clock.pin(dt.datetime(2026, 4, 2, 2, 0))  # moved to the committee office after the quarter
    accounts.update_user(admin, name="组织部", role="admin", branch=None, job_post="")
    db.session.commit()
    rating = proposed(branch.id)
    with unchanged():
        with pytest.raises(DomainError) as refused:
            services.confirm_rating(rating, 5, actor=admin)
        assert refused.value.code == "own_rating"


def test_an_admin_of_no_rated_branch_confirms(make):
    clock.pin(dt.datetime(2026, 4, 10, 2, 0))
    admin = make.user(role="admin")
    rating = proposed(make.branch().id)
    services.confirm_rating(rating, 4, actor=admin)
    assert rating.stars == 4 and rating.confirmed_by_id == admin.id
