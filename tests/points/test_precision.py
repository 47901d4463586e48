"""Points carry one decimal: more than one is refused with a reason naming the field, never rounded
(the issue: 2.55 points were recorded as 2.6 without a word)."""

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from pbschool import clock
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.points import services
from pbschool.points.models import LedgerEntry, PointRule


@pytest.fixture
def org(app, make):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    return make.organisation()


def _entries():
    return db.session.scalar(select(func.count(LedgerEntry.id)))


@pytest.mark.parametrize("raw", ["2.55", 2.55, "0.05", "-1.25", "1e-2"])
def test_more_than_one_decimal_is_refused(app, raw):
    with pytest.raises(DomainError) as refused:
        services.to_points(raw, "points")
    assert refused.value.code == "too_precise" and refused.value.field == "points"
    assert "分值" in refused.value.message and "一位小数" in refused.value.message


@pytest.mark.parametrize("raw, value", [("2.5", "2.5"), (2, "2.0"), ("2.50", "2.5"), (-0.5, "-0.5"), ("3", "3.0")])
def test_one_decimal_or_none_is_taken_as_it_is(app, raw, value):
    assert services.to_points(raw) == Decimal(value)


def test_award_of_2_55_points_through_the_api_is_a_400(org, api):
    api.token(org["secretary"])
    reply = api.post("/points/awards", json={"username": "member", "points": 2.55, "reason": "抢险突击"})
    assert reply.status_code == 400
    error = reply.get_json()["error"]
    assert error["code"] == "too_precise" and error["field"] == "points" and "一位小数" in error["message"]
    assert _entries() == 0
    assert api.post("/points/awards", json={"username": "member", "points": 2.5, "reason": "抢险突击"}) \
        .get_json()["points"] == 2.5


def test_award_of_2_55_points_on_the_page_is_a_form_error(org, client, auth):
    auth.login("secretary")
    for points in ("2.55", "-2.55"):
        reply = client.post("/points/award", data={"member": str(org["member"].id), "points": points,
                                                    "category": "作用发挥", "reason": "抢险突击", "key": "c" * 32})
        html = reply.get_data(as_text=True)
        assert reply.status_code == 200 and "最多一位小数" in html
        assert f'value="{points}"' in html  # what was typed, not a rounded 2.6
    assert _entries() == 0


def test_the_rule_editor_refuses_two_decimals(org, client, auth):
    auth.login("admin")
    for field in ("points", "daily_cap", "monthly_cap"):
        data = {"name": "志愿服务", "category": "作用发挥", "points": "1", "is_active": "y", field: "1.25"}
        reply = client.post("/points/rules/new", data=data)
        assert reply.status_code == 200 and "最多一位小数" in reply.get_data(as_text=True), field
    bands = client.post("/points/rules/new", data={"name": "分段", "category": "考试", "points": "1",
                                                    "bands": "90:2.55"})
    assert bands.status_code == 200 and "分数段" in bands.get_data(as_text=True)
    assert db.session.scalar(select(func.count(PointRule.id)).where(PointRule.is_custom.is_(True))) == 0


def test_the_monthly_and_yearly_targets_refuse_two_decimals(org, client, auth):
    """The targets are points figures too: 12.55 is a form error on the field, never stored."""
    auth.login("admin")
    refused = client.post("/points/admin", data={"action": "settings", "set-base": "60",
                                                 "set-bands": "60,70,80,90,96", "set-month_target": "12.55"})
    assert refused.status_code == 200 and "最多一位小数" in refused.get_data(as_text=True)
    assert services.get_setting("month_target", 10) == 10
    taken = client.post("/points/admin", data={"action": "settings", "set-base": "60",
                                               "set-bands": "60,70,80,90,96", "set-year_target": "150.5"})
    assert taken.status_code == 302 and services.get_setting("year_target", 120) == 150.5
