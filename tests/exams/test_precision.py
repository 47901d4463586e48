"""Exam numbers that become points or scores carry one decimal: more is refused, never rounded."""

import pytest

from pbschool.errors import DomainError
from pbschool.exams.services import to_decimal


@pytest.mark.parametrize("field, label", [("points_on_pass", "通过奖励积分"), ("pass_score", "及格线"),
                                          ("points_each", "每题分值")])
def test_to_decimal_refuses_two_decimals_naming_the_field(app, field, label):
    with pytest.raises(DomainError) as refused:
        to_decimal("2.55", field)
    assert refused.value.code == "too_precise" and refused.value.field == field
    assert label in refused.value.message and "一位小数" in refused.value.message
    assert str(to_decimal("2.5", field)) == "2.5"


def test_creating_an_exam_with_2_55_points_is_a_400(api, make, bank):
    api.token(make.user(role="admin"))
    body = {"title": "安全知识", "time_limit_seconds": 900, "max_attempts": 2, "pass_score": 80,
            "points_on_pass": 2.55, "sections": [{"bank": bank.name, "count": 2, "points_each": 5}]}
    reply = api.post("/exams", json=body)
    assert reply.status_code == 400 and reply.get_json()["error"]["code"] == "too_precise"
    body = {**body, "points_on_pass": 2, "sections": [{"bank": bank.name, "count": 2, "points_each": 0.25}]}
    assert api.post("/exams", json=body).get_json()["error"]["code"] == "too_precise"
    assert api.post("/exams", json={**body, "pass_score": 60.55}).status_code == 400
