"""Monthly publication (晒分): refusals, the frozen board, later corrections in the next open month."""

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from pbschool import clock
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.points import queries, services
from pbschool.points.models import LedgerEntry, MonthlyPublication
from tests.factories import Factory


@pytest.fixture
def people(app, make):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    branch = make.branch(code="ZC1")
    a = make.user("zhang", branch=branch, name="张三")
    b = make.user("li", branch=branch, name="李四")
    services.record_event(a, "exam_passed", "attempt:1", points=5)
    services.record_event(b, "exam_passed", "attempt:2", points=3)
    db.session.commit()
    return a, b


def test_cli_refuses_a_month_not_ended_and_bad_input(people, runner):
    result = runner.invoke(args=["points", "publish", "2026-03"])
    assert result.exit_code != 0 and "尚未结束" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(args=["points", "publish", "March"])
    assert result.exit_code != 0 and "YYYY-MM" in result.output


def test_publish_freezes_the_board_and_refuses_twice(people, runner):
    a, b = people
    clock.pin(dt.datetime(2026, 4, 1, 1, 0))  # 09:00 on 1 April in the committee's time zone
    result = runner.invoke(args=["points", "publish", "2026-03"])
    assert result.exit_code == 0, result.output
    assert "2 members" in result.output
    again = runner.invoke(args=["points", "publish", "2026-03"])
    assert again.exit_code != 0 and "已经发布" in again.output
    # A late event dated in March goes into April as an adjustment; March's board does not move.
    late = services.record_event(b, "exam_passed", "attempt:3", points=9,
                                 occurred_at=dt.datetime(2026, 3, 20, 2, 0))
    db.session.commit()
    assert late.period == "2026-04" and late.is_adjustment
    pub, rows = queries.board("2026-03")
    assert pub is not None
    assert [(r["username"], r["points"], r["rank"]) for r in rows] == [("zhang", Decimal("5.0"), 1),
                                                                       ("li", Decimal("3.0"), 2)]
    _, april = queries.board("2026-04")
    assert {r["username"]: r["points"] for r in april}["li"] == Decimal("9.0")


def test_month_end_is_counted_in_the_committees_time_zone(people):
    clock.pin(dt.datetime(2026, 3, 31, 15, 0))  # 23:00 on 31 March in Beijing
    with pytest.raises(DomainError) as exc:
        services.publish_month("2026-03")
    assert "尚未结束" in str(exc.value)
    clock.pin(dt.datetime(2026, 3, 31, 16, 30))  # 00:30 on 1 April in Beijing
    assert services.publish_month("2026-03").period == "2026-03"
    assert db.session.query(MonthlyPublication).count() == 1


def test_stars_and_honours(people, make):
    a, b = people
    secretary = make.user(role="secretary", branch=a.branch)
    services.award(b, "-2", "违反安全规程", actor=secretary, category="组织生活", is_veto=True)
    with pytest.raises(DomainError) as exc:
        services.compute_stars("2026-Q1")
    assert "尚未结束" in str(exc.value)
    clock.pin(dt.datetime(2026, 4, 2, 2, 0))
    assert services.compute_stars("2026-Q1") >= 2
    stars = {r.user.username: (r.score, r.stars) for r in queries.stars_of(a) + queries.stars_of(b)}
    assert stars["zhang"] == (Decimal("65.0"), 1)
    assert stars["li"] == (Decimal("61.0"), 1)
    services.save_star_settings(60, [62, 64, 66, 68, 70])
    services.compute_stars("2026-Q1")
    assert queries.stars_of(a)[0].stars == 2 and queries.stars_of(b)[0].stars == 0
    result, vetoed = queries.honours_candidates(2026)
    assert [m.username for m in result["ZC1"]] == ["zhang"]
    assert b.id in vetoed


def test_correcting_a_published_month_is_an_adjustment_in_the_next_open_month(people):
    a, _b = people
    entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.user_id == a.id))
    clock.pin(dt.datetime(2026, 4, 2, 2, 0))
    services.publish_month("2026-03")
    admin = Factory().user(role="admin")
    reversal = services.reverse(entry, "成绩复核后更正", actor=admin)
    db.session.commit()
    assert reversal.period == "2026-04" and reversal.is_adjustment
    _, march = queries.board("2026-03")
    assert {r["username"]: r["points"] for r in march}["zhang"] == Decimal("5.0")


def test_stars_cli(people, runner):
    refused = runner.invoke(args=["points", "stars", "2026-Q1"])
    assert refused.exit_code != 0 and "尚未结束" in refused.output
    assert runner.invoke(args=["points", "stars", "Q1"]).exit_code != 0
    clock.pin(dt.datetime(2026, 4, 1, 1, 0))
    done = runner.invoke(args=["points", "stars", "2026-Q1"])
    assert done.exit_code == 0 and "rated 2 members" in done.output
