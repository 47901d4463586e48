"""Parallel requests on PostgreSQL: finishing one paper many times awards once, and parallel papers
of one member never pass the daily cap."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from pbschool.accounts.models import User
from pbschool.extensions import db
from pbschool.points import services as points
from pbschool.points.models import LedgerEntry
from pbschool.practice import services
from pbschool.practice.models import Practice, PracticeQuestion
from tests.points.test_races import _parallel

pytestmark = pytest.mark.postgres_only


def _answered_paper(member, count):
    practice = services.start(member, "daily", count=count)
    for slot in services.slots(practice):
        shown = slot.shown
        value = [a[0] for a in shown.answer] if shown.type == "blank" else \
            shown.kind.display(shown.answer, slot.option_order)
        services.answer(practice, slot.question_id, value, member)
    db.session.commit()
    return practice.id


@pytest.fixture
def pg(app, backend, practice_bank, pinned):
    if backend == "sqlite":
        pytest.skip("SQLite serialises writes and hides races")
    points.ensure_default_rules()
    db.session.commit()
    return app


def test_finish_in_parallel_awards_once(pg, make):
    member = make.user()
    practice_id = _answered_paper(member, 4)
    member_id = member.id

    def finish(_i):
        user = db.session.get(User, member_id)
        services.finish(services.own_practice(practice_id, user), user)

    _parallel(pg, 8, finish)
    db.session.expire_all()
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 1
    assert points.balance(db.session.get(User, member_id)) == Decimal("4.0")
    assert db.session.get(Practice, practice_id).points_awarded == Decimal("4.0")


def test_daily_cap_holds_under_parallel_papers(pg, make):
    member = make.user()
    ids = [_answered_paper(member, 3) for _ in range(6)]  # 18 correct answers, cap 5
    member_id = member.id

    def finish(i):
        user = db.session.get(User, member_id)
        services.finish(services.own_practice(ids[i], user), user)

    _parallel(pg, 6, finish)
    db.session.expire_all()
    assert points.balance(db.session.get(User, member_id)) == Decimal("5.0")
    awarded = db.session.scalars(select(Practice.points_awarded)).all()
    assert sum(awarded) == Decimal("5.0")


def test_same_answer_in_parallel_keeps_the_first(pg, make):
    member = make.user()
    practice = services.start(member, "daily", count=1)
    slot = services.slots(practice)[0]
    db.session.commit()
    member_id, practice_id, qid = member.id, practice.id, slot.question_id
    keys = [o["key"] for o in services.question_payload(slot)["options"]] or [True, False]

    def answer(i):
        user = db.session.get(User, member_id)
        value = keys[i % len(keys)]
        if slot.shown.type == "multiple":
            value = [value]
        if slot.shown.type == "truefalse":
            value = bool(i % 2)
        if slot.shown.type == "blank":
            value = [str(i)] * len(slot.shown.answer)
        services.answer(services.own_practice(practice_id, user), qid, value, user)

    _parallel(pg, 8, answer)
    db.session.expire_all()
    rows = db.session.scalars(select(PracticeQuestion).where(PracticeQuestion.practice_id == practice_id)).all()
    assert len(rows) == 1 and rows[0].answered_at is not None
