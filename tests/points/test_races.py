"""Parallel requests against PostgreSQL: one entry per source event, caps hold, the chain stays linear."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from pbschool import clock
from pbschool.accounts.models import User
from pbschool.extensions import db
from pbschool.points import services
from pbschool.points.models import LedgerEntry

pytestmark = pytest.mark.postgres_only


def _parallel(app, count, work):
    barrier = threading.Barrier(count)
    errors = []

    def run(i):
        try:
            with app.app_context():
                barrier.wait()
                work(i)
                db.session.commit()
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors


@pytest.fixture
def pg_app(app, backend):
    if backend == "sqlite":
        pytest.skip("SQLite serialises writes and hides races")
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    services.ensure_default_rules()
    db.session.commit()
    return app


def test_same_event_in_parallel_writes_one_entry(pg_app, make):
    member_id = make.user().id
    _parallel(pg_app, 10, lambda i: services.record_event(db.session.get(User, member_id), "exam_passed",
                                                         "attempt:42", points=4, value=90))
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 1
    assert services.balance(db.session.get(User, member_id)) == Decimal("4.0")


def test_daily_cap_holds_under_parallel_requests(pg_app, make):
    member_id = make.user().id

    def complete(i):
        user = db.session.get(User, member_id)
        services.record_event(user, "lesson_completed", f"lesson:{i}:user:{member_id}", value=1)

    _parallel(pg_app, 12, complete)
    assert services.balance(db.session.get(User, member_id)) == Decimal("5.0")
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 5


def test_chain_is_linear_after_parallel_appends(pg_app, make, runner):
    ids = [make.user().id for _ in range(4)]

    def work(i):
        user = db.session.get(User, ids[i % 4])
        services.record_event(user, "meeting_attended", f"meeting:{i}:user:{user.id}")

    _parallel(pg_app, 16, work)
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 0 and "16 entries" in result.output
    seqs = db.session.scalars(select(LedgerEntry.seq).order_by(LedgerEntry.seq)).all()
    assert seqs == list(range(1, 17))


def test_publishing_while_events_arrive_keeps_the_snapshot_whole(pg_app, make):
    from pbschool.points import queries
    from pbschool.points.models import PublishedScore

    ids = [make.user().id for _ in range(3)]
    clock.pin(dt.datetime(2026, 4, 1, 2, 0))
    march = dt.datetime(2026, 3, 25, 2, 0)

    def work(i):
        if i == 0:
            services.publish_month("2026-03")
        else:
            user = db.session.get(User, ids[i % 3])
            services.record_event(user, "exam_passed", f"attempt:{i}", points=1, occurred_at=march)

    _parallel(pg_app, 12, work)
    entries = db.session.scalars(select(LedgerEntry)).all()
    in_march = [e for e in entries if e.period == "2026-03"]
    moved = [e for e in entries if e.period == "2026-04"]
    assert len(in_march) + len(moved) == 11 and all(e.is_adjustment for e in moved)
    snapshot = sum(s.points for s in db.session.scalars(select(PublishedScore)))
    assert snapshot == sum(e.points for e in in_march)
    _, board = queries.board("2026-03")
    assert sum(r["points"] for r in board) == snapshot


def test_rekey_run_twice_at_once_anchors_once(pg_app, make, runner):
    from sqlalchemy import text

    from pbschool.accounts.models import AuditLog
    from pbschool.errors import DomainError
    from pbschool.points import rekey
    from tests.points.test_ledger_key import make_legacy

    member = make.user()
    for n in range(3):
        services.record_event(member, "meeting_attended", f"meeting:{n}")
    db.session.commit()
    make_legacy()
    outcomes = []

    def work(_i):
        try:
            outcomes.append(rekey.rekey())
        except DomainError as exc:
            outcomes.append(exc.code)

    _parallel(pg_app, 4, work)
    assert sorted(map(str, outcomes)) == sorted(["(3, 0)"] + ["already_rekeyed"] * 3)
    assert db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "ledger.rekey")) == 1
    assert db.session.execute(text("SELECT count(*) FROM ledger_head")).scalar() == 1
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0
