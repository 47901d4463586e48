import datetime as dt
from contextlib import contextmanager
from decimal import Decimal

from pbschool import clock
from pbschool.extensions import db
from pbschool.points import services
from pbschool.points.models import LedgerEntry


def test_record_event_is_idempotent(app, make):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    user = make.user()
    first = services.record_event(user, "lesson_completed", f"lesson:1:user:{user.id}", value=1)
    again = services.record_event(user, "lesson_completed", f"lesson:1:user:{user.id}", value=1)
    db.session.commit()
    assert first is not None and first.points == Decimal("1.0") and first.category == "学习"
    assert again is None
    assert services.balance(user) == Decimal("1.0")
    assert db.session.query(LedgerEntry).count() == 1


def test_daily_cap_limits_points(app, make):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    user = make.user()
    entries = [services.record_event(user, "lesson_completed", f"lesson:{n}:user:{user.id}")
               for n in range(7)]
    db.session.commit()
    assert [e is not None for e in entries] == [True] * 5 + [False] * 2
    assert services.balance(user) == Decimal("5.0")
    clock.advance(days=1)
    assert services.record_event(user, "lesson_completed", f"lesson:99:user:{user.id}") is not None


def test_study_time_accumulates_units(app, make):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    user = make.user()
    for n in range(5):
        services.record_event(user, "study_time", f"study:{n}", value=4)  # 20 minutes in all
    db.session.commit()
    assert services.balance(user) == Decimal("0.2")


def test_exam_points_override_and_unknown_kind_kept(app, make):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    user = make.user()
    entry = services.record_event(user, "exam_passed", "attempt:7", points=3, value=88)
    odd = services.record_event(user, "something_new", "x:1")
    db.session.commit()
    assert entry.points == Decimal("3.0") and entry.category == "考试"
    assert odd is not None and odd.points == Decimal("0.0")


def test_duplicate_does_not_abort_callers_transaction(app, make):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    user = make.user()
    services.record_event(user, "meeting_attended", "meeting:1:user:1")
    db.session.commit()
    user.job_post = "掘进工"
    assert services.record_event(user, "meeting_attended", "meeting:1:user:1") is None
    db.session.commit()
    db.session.refresh(user)
    assert user.job_post == "掘进工"


@contextmanager
def snapshot_members(app_factory, make, seconds):
    """Inside an app whose rank snapshots are kept ``seconds``, on 10 March 2026: a branch and two of
    its members. The process's snapshot cache is emptied before and after, even when a test fails."""
    from pbschool.points import queries

    app = app_factory(POINTS_RANK_SNAPSHOT_SECONDS=seconds)
    with app.app_context():
        queries._ranks.clear()
        try:
            clock.pin(dt.datetime(2026, 3, 10, 2, 0))
            branch = make.branch(code="ZC1")
            yield branch, make.user("zhang", branch=branch), make.user("li", branch=branch)
        finally:
            queries._ranks.clear()


def test_rank_snapshot_keeps_the_members_own_points_live(app_factory, make):
    """Ranks come from a snapshot of everyone's points kept a few seconds; a member who has just
    earned points sees their new rank at once, and a newcomer is counted."""
    from pbschool.points import queries

    with snapshot_members(app_factory, make, 600) as (branch, a, b):
        services.record_event(a, "meeting_attended", "m:1:a")  # 5 points
        services.record_event(b, "lesson_completed", "l:1:b", value=1)  # 1 point
        db.session.commit()
        assert queries.member_summary(b)["rank"] == 2  # the snapshot is taken here
        services.record_event(b, "meeting_attended", "m:1:b")  # b: 6 points, a: 5
        db.session.commit()
        assert queries.member_summary(b)["rank"] == 1  # b's own points are live
        admin = make.user("admin", role="admin")
        services.award(b, -5.5, "扣分示例", actor=admin)  # b: 0.5, below a's 5; the snapshot still says 1
        db.session.commit()
        assert (queries.member_summary(b)["rank"], queries.member_summary(b)["committee_size"]) == (2, 2)
        c = make.user("wang", branch=branch)
        db.session.commit()
        summary = queries.member_summary(c)
        assert summary["rank"] == 3 and summary["committee_size"] == 3  # joined after the snapshot


def test_an_expired_rank_snapshot_is_rebuilt_off_the_request_path(app_factory, make, monkeypatch):
    import time

    from pbschool.points import queries

    with snapshot_members(app_factory, make, 10) as (_branch, a, b):
        services.record_event(a, "meeting_attended", "m:1:a")
        db.session.commit()
        first = queries.rank_snapshot("2026-03")
        assert first.points_of[b.id] == 0
        services.record_event(b, "meeting_attended", "m:1:b")
        services.record_event(b, "lesson_completed", "l:1:b", value=1)
        db.session.commit()
        later = time.monotonic() + 11
        monkeypatch.setattr(queries.time, "monotonic", lambda: later)
        assert queries.rank_snapshot("2026-03") is first  # expired: shown once more, rebuilt behind
        for _ in range(100):
            if not queries._ranks.refreshing:
                break
            time.sleep(0.05)
        fresh = queries.rank_snapshot("2026-03")
        assert fresh is not first and fresh.points_of[b.id] == 6
        monkeypatch.setattr(queries.time, "monotonic", lambda: later + 200)  # far too old: built now
        assert queries.rank_snapshot("2026-03") is not fresh


def test_ended_quarters_run_back_across_the_year(app):
    from pbschool.points import queries

    clock.pin(dt.datetime(2026, 2, 10, 2, 0))
    assert queries.ended_quarters() == ["2025-Q4", "2025-Q3", "2025-Q2", "2025-Q1"]
    clock.pin(dt.datetime(2026, 3, 31, 17, 0))  # 1 April in Beijing: the first quarter has ended
    assert queries.ended_quarters(2) == ["2026-Q1", "2025-Q4"]
