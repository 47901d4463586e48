"""Grading without cron: the app sweeps overdue attempts itself after a request, at most once a
minute per deployment, one sweep at a time, never slowing or failing the request that triggered it."""

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select, text

from pbschool import clock
from pbschool.exams import autosweep
from pbschool.exams.models import Attempt, SweepMark
from pbschool.extensions import db
from pbschool.points.models import LedgerEntry
from tests.exams.conftest import T0, correct_answers, make_bank, make_exam
from tests.factories import PASSWORD


@pytest.fixture
def swept_app(app):
    """The test app with the in-app sweep on, as in production (the tests' config turns it off)."""
    app.config["EXAM_AUTO_SWEEP_SECONDS"] = 60
    return app


def _abandon(app, make, exam=None):
    """A member who answered everything right and walked away (the phone died): nobody opens it again."""
    exam = exam or make_exam(make_bank(), time_limit=120, points=5)
    member = make.user()
    client = app.test_client()
    token = client.post("/api/v1/tokens", json={"username": member.username, "password": PASSWORD})
    headers = {"Authorization": "Bearer " + token.get_json()["token"]}
    body = client.post(f"/api/v1/exams/{exam.id}/attempts", headers=headers).get_json()
    for qid, value in correct_answers(body["questions"], body["attempt_id"]).items():
        assert client.put(f"/api/v1/attempts/{body['attempt_id']}/answers/{qid}", json={"answer": value},
                          headers=headers).status_code == 200
    return member, body["attempt_id"]


def _visit(app, path="/login"):
    """An unrelated request by someone else; the response is closed as a server closes it."""
    response = app.test_client().get(path)
    response.close()
    return response


def test_an_abandoned_attempt_is_graded_and_paid_by_a_later_unrelated_request(swept_app, make):
    clock.pin(T0)
    member, attempt_id = _abandon(swept_app, make)
    clock.advance(seconds=100)
    _visit(swept_app)  # sweeps: nothing is overdue yet
    assert db.session.get(SweepMark, "exams").swept_at == T0 + dt.timedelta(seconds=100)
    clock.advance(seconds=30)  # past deadline (120 s) + grace (5 s), within the minute since that sweep
    _visit(swept_app)
    assert db.session.get(Attempt, attempt_id).state == "in_progress"
    clock.advance(seconds=30)  # a minute after the last sweep
    _visit(swept_app)
    attempt = db.session.get(Attempt, attempt_id)
    assert attempt.state == "submitted" and attempt.is_auto_submitted and attempt.passed
    assert attempt.submitted_at == attempt.deadline_at
    assert attempt.points_awarded == 5
    assert db.session.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.user_id == member.id)) == 1
    mark = db.session.get(SweepMark, "exams")
    assert mark.swept_at == T0 + dt.timedelta(seconds=160) and mark.graded == 1


def test_off_by_config(app, make):
    clock.pin(T0)
    _member, attempt_id = _abandon(app, make)
    clock.advance(seconds=3600)
    _visit(app)
    assert db.session.get(Attempt, attempt_id).state == "in_progress"
    assert db.session.get(SweepMark, "exams") is None


def test_a_request_when_no_sweep_is_due_sends_no_extra_statement(swept_app, make):
    from sqlalchemy import event

    statements = []  # as tests/conftest.py's ``statements``, on this app's engine

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        clock.pin(T0)
        _visit(swept_app)  # due at start: claims and sweeps
        assert any("sweep_mark" in s for s in statements)
        clock.advance(seconds=59)
        statements.clear()
        _visit(swept_app)
        _visit(swept_app, "/api/v1/exams")
        assert statements == [], statements  # /login and an anonymous API call send none at all
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_a_sweep_that_fails_is_logged_and_the_request_is_unharmed(swept_app, make, monkeypatch, caplog):
    from pbschool.exams import services

    def broken(now=None):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "sweep", broken)
    clock.pin(T0)
    response = _visit(swept_app)
    assert response.status_code == 200
    assert "exam auto sweep failed" in caplog.text


def test_processes_sweep_at_most_once_a_minute_together(swept_app, make):
    """Two processes (two apps on one database): the second, due in its own memory, finds the mark
    fresh and does not sweep."""
    clock.pin(T0)
    assert autosweep.sweep_if_due(60) == 0
    assert autosweep.sweep_if_due(60) is None  # "another process", 0 s later
    clock.advance(seconds=59)
    assert autosweep.sweep_if_due(60) is None
    clock.advance(seconds=1)
    assert autosweep.sweep_if_due(60) == 0


def test_the_cli_sweep_stays(app, make, runner):
    clock.pin(T0)
    _member, attempt_id = _abandon(app, make)
    clock.advance(seconds=200)
    result = runner.invoke(args=["exams", "sweep"])
    assert result.exit_code == 0 and "graded 1" in result.output
    assert db.session.get(Attempt, attempt_id).state == "submitted"


@pytest.mark.postgres_only
def test_the_advisory_lock_keeps_a_second_sweep_out(backend, swept_app, make):
    if backend == "sqlite":
        pytest.skip("the advisory lock is PostgreSQL's")
    clock.pin(T0)
    _member, attempt_id = _abandon(swept_app, make)
    clock.advance(seconds=300)
    with db.engine.connect() as other:  # a sweep in progress elsewhere holds the lock
        other.begin()
        assert other.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": autosweep.LOCK_KEY})
        assert autosweep.sweep_if_due(60) is None
        assert db.session.get(Attempt, attempt_id).state == "in_progress"
        other.rollback()
    assert autosweep.sweep_if_due(60) == 1


@pytest.mark.postgres_only
def test_parallel_requests_that_find_the_sweep_due_grade_once_and_pay_once(backend, swept_app, make):
    if backend == "sqlite":
        pytest.skip("races need PostgreSQL")
    clock.pin(T0)
    exam = make_exam(make_bank(), time_limit=120, points=5)
    members = [_abandon(swept_app, make, exam) for _ in range(3)]
    clock.advance(seconds=300)
    # eight processes, each due in its own memory, at the same moment
    apps = [swept_app] * 8
    barrier = threading.Barrier(len(apps))
    results = []

    def sweep(app):
        barrier.wait()
        results.append(autosweep.run(app))

    threads = [threading.Thread(target=sweep, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r for r in results if r is not None) == [3]
    assert results.count(None) == 7
    for member, attempt_id in members:
        attempt = db.session.get(Attempt, attempt_id)
        assert attempt.state == "submitted" and attempt.points_awarded == 5
        assert db.session.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.user_id == member.id)) == 1


@pytest.mark.postgres_only
def test_parallel_sweeps_beside_the_cli_grade_once(backend, swept_app, make, runner):
    """The in-app sweep and `pbschool exams sweep` from cron at the same moment: each attempt graded
    and paid once."""
    if backend == "sqlite":
        pytest.skip("races need PostgreSQL")
    clock.pin(T0)
    exam = make_exam(make_bank(), time_limit=120, points=5)
    members = [_abandon(swept_app, make, exam) for _ in range(3)]
    clock.advance(seconds=300)
    barrier = threading.Barrier(2)
    outcome = {}

    def in_app():
        barrier.wait()
        outcome["app"] = autosweep.run(swept_app)

    def cli():
        with swept_app.app_context():
            from pbschool.exams import services

            barrier.wait()
            outcome["cli"] = services.sweep()

    threads = [threading.Thread(target=in_app), threading.Thread(target=cli)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcome["app"] is not None  # the lock is the in-app sweeps' own: cron's run goes beside it
    for member, attempt_id in members:
        assert db.session.get(Attempt, attempt_id).points_awarded == 5
        assert db.session.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.user_id == member.id)) == 1
