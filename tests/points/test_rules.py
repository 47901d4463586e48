"""Ledger rules: append-only corrections, awards and their denials, caps, the chain check."""

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from pbschool import clock
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.points import queries, services
from pbschool.points.models import LedgerEntry, PointRule


@pytest.fixture
def march(app):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))


def test_reversal_points_at_the_entry_and_happens_once(march, make):
    secretary = make.user(role="secretary")
    member = make.user(branch=secretary.branch)
    entry = services.award(member, "2.5", "抢险突击队表现突出", actor=secretary)
    db.session.commit()
    reversal = services.reverse(entry, "录入错误", actor=secretary)
    db.session.commit()
    assert reversal.reverses_id == entry.id and reversal.points == Decimal("-2.5")
    assert services.balance(member) == Decimal("0.0")
    with pytest.raises(DomainError) as exc:
        services.reverse(entry, "再来一次", actor=secretary)
    assert exc.value.code == "already_reversed"
    with pytest.raises(DomainError):
        services.reverse(reversal, "冲正的冲正", actor=secretary)
    # the original entry was never touched
    db.session.refresh(entry)
    assert entry.points == Decimal("2.5")


def test_no_update_or_delete_path_exists_for_entries():
    import inspect

    from pbschool.points import api, services, views

    for module in (services, views, api):
        source = inspect.getsource(module)
        assert "delete(LedgerEntry" not in source and "update(LedgerEntry" not in source
        assert "session.delete" not in source


def test_secretary_awards_own_branch_only(march, make):
    secretary = make.user(role="secretary")
    mine = make.user(branch=secretary.branch)
    other = make.user()
    member = make.user(branch=secretary.branch)
    admin = make.user(role="admin")
    assert services.award(mine, "1", "志愿服务", actor=secretary).points == Decimal("1.0")
    for actor, target in ((secretary, other), (member, mine), (secretary, secretary)):
        with pytest.raises(DomainError) as exc:
            services.award(target, "1", "不该成功", actor=actor)
        assert exc.value.status == 403
    assert services.award(other, "-3", "无故缺席三会一课", actor=admin, category="组织生活",
                          is_veto=True).is_veto


def test_award_needs_reason_and_veto_only_on_deductions(march, make):
    secretary = make.user(role="secretary")
    member = make.user(branch=secretary.branch)
    with pytest.raises(DomainError) as exc:
        services.award(member, "1", "  ", actor=secretary)
    assert exc.value.field == "reason"
    with pytest.raises(DomainError) as exc:
        services.award(member, "1", "好事", actor=secretary, is_veto=True)
    assert exc.value.field == "is_veto"
    with pytest.raises(DomainError):
        services.award(member, "abc", "好事", actor=secretary)
    with pytest.raises(DomainError):
        services.award(member, "1", "好事", actor=secretary, category="乱写")


def test_points_carry_one_decimal(march, make):
    secretary = make.user(role="secretary")
    member = make.user(branch=secretary.branch)
    assert services.award(member, "0.5", "半分项", actor=secretary).points == Decimal("0.5")
    # a second decimal is refused, never rounded (issue 11: 2.55 was recorded as 2.6)
    with pytest.raises(DomainError) as refused:
        services.award(member, "0.55", "半分项", actor=secretary)
    assert refused.value.code == "too_precise"


def test_monthly_cap(march, make):
    services.ensure_default_rules()
    rule = services.rule_for("comment_approved")
    rule.daily_cap, rule.monthly_cap = None, Decimal("1.0")
    member = make.user()
    got = [services.record_event(member, "comment_approved", f"comment:{n}") for n in range(3)]
    clock.advance(days=3)
    got.append(services.record_event(member, "comment_approved", "comment:9"))
    assert [g is not None for g in got] == [True, True, False, False]
    clock.pin(dt.datetime(2026, 4, 2, 2, 0))
    assert services.record_event(member, "comment_approved", "comment:10") is not None


def test_rule_off_writes_nothing(march, make):
    services.ensure_default_rules()
    services.rule_for("meeting_attended").is_active = False
    assert services.record_event(make.user(), "meeting_attended", "meeting:1:user:1") is None


def test_custom_x_rule(march, make):
    admin = make.user(role="admin")
    secretary = make.user(role="secretary")
    member = make.user(branch=secretary.branch)
    rule = services.save_rule(None, name="井下隐患排查", category="安全生产", points="1.5", daily_cap="1.5",
                              actor=admin)
    entry = services.award(member, None, "发现顶板隐患", actor=secretary, rule=rule)
    assert entry.category == "安全生产" and entry.points == Decimal("1.5") and entry.is_x
    with pytest.raises(DomainError) as exc:
        services.award(member, None, "又发现一个", actor=secretary, rule=rule)
    assert exc.value.code == "cap_reached"
    assert "安全生产" in services.custom_categories()


def test_chain_verifies_and_names_a_row_changed_behind_the_apps_back(march, make, runner):
    member = make.user()
    for n in range(4):
        services.record_event(member, "meeting_attended", f"meeting:{n}:user:{member.id}")
    db.session.commit()
    ok = runner.invoke(args=["ledger", "verify"])
    assert ok.exit_code == 0 and "4 entries" in ok.output
    third = db.session.scalar(select(LedgerEntry).where(LedgerEntry.seq == 3))
    db.session.execute(text("UPDATE ledger_entry SET points = 50 WHERE id = :id"), {"id": third.id})
    db.session.commit()
    bad = runner.invoke(args=["ledger", "verify"])
    assert bad.exit_code != 0
    assert f"entry #{third.id}" in bad.output and "changed" in bad.output


def test_chain_check_finds_a_removed_entry(march, make, runner):
    member = make.user()
    for n in range(3):
        services.record_event(member, "meeting_attended", f"meeting:{n}:user:{member.id}")
    db.session.commit()
    db.session.execute(text("DELETE FROM ledger_entry WHERE seq = 3"))
    db.session.commit()
    bad = runner.invoke(args=["ledger", "verify"])
    assert bad.exit_code != 0 and "removed" in bad.output
    db.session.execute(text("DELETE FROM ledger_entry WHERE seq = 1"))
    db.session.commit()
    bad = runner.invoke(args=["ledger", "verify"])
    assert bad.exit_code != 0 and "seq 1 is missing" in bad.output


def test_standings_rank_ties_alike(march, make):
    branch = make.branch()
    a, b, c = (make.user(branch=branch) for _ in range(3))
    services.record_event(a, "exam_passed", "attempt:1", points=3)
    services.record_event(b, "exam_passed", "attempt:2", points=3)
    services.record_event(c, "exam_passed", "attempt:3", points=1)
    ranks = {r.user_id: r.rank for r in queries.live_standings("2026-03")}
    assert ranks[a.id] == ranks[b.id] == 1 and ranks[c.id] == 3


def test_default_rules_are_seeded_once(app):
    services.ensure_default_rules()
    services.ensure_default_rules()
    kinds = db.session.scalars(select(PointRule.kind)).all()
    assert sorted(kinds) == sorted(services.DEFAULT_RULES)


def test_chain_check_finds_a_monthly_total_changed_behind_the_apps_back(march, make, runner):
    member = make.user()
    services.record_event(member, "meeting_attended", f"meeting:1:user:{member.id}")
    db.session.commit()
    assert services.balance(member) == Decimal("5.0")
    db.session.execute(text("UPDATE point_total SET points = 500"))
    db.session.commit()
    bad = runner.invoke(args=["ledger", "verify"])
    assert bad.exit_code != 0 and "monthly total" in bad.output and "2026-03" in bad.output


def test_a_deduction_rule(march, make):
    admin = make.user(role="admin")
    secretary = make.user(role="secretary")
    member = make.user(branch=secretary.branch)
    rule = services.save_rule(None, name="无故缺席学习", category="组织生活", points="-3", actor=admin)
    entry = services.award(member, None, "3月12日集中学习缺席", actor=secretary, rule=rule)
    assert entry.points == Decimal("-3.0") and entry.kind == rule.kind
    assert services.balance(member) == Decimal("-3.0")


def test_exam_points_by_score_band(march, make, client, auth):
    admin = make.user("boss", role="admin")
    member = make.user()
    services.ensure_default_rules()
    rule = services.rule_for("exam_passed")
    db.session.commit()
    auth.login("boss")
    bad = client.post(f"/points/rules/{rule.id}", data={"name": rule.name, "category": "考试", "points": "2",
                                                        "bands": "九十:3", "is_active": "y"})
    assert "分数段应写成" in bad.get_data(as_text=True)
    ok = client.post(f"/points/rules/{rule.id}", data={"name": rule.name, "category": "考试", "points": "2",
                                                       "bands": "90:3, 60：1，80:2", "is_active": "y"})
    assert ok.status_code == 302
    db.session.refresh(rule)
    assert rule.bands == [[90, "3.0"], [80, "2.0"], [60, "1.0"]]
    assert "按分数段" in client.get("/points/admin").get_data(as_text=True)
    got = [services.record_event(member, "exam_passed", f"attempt:{n}", points=5, value=score)
           for n, score in enumerate((95, 85, 70, 40))]
    assert [g.points for g in got] == [Decimal("3.0"), Decimal("2.0"), Decimal("1.0"), Decimal("0.0")]
    assert admin.id
