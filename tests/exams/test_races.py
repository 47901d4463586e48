"""Parallel starts and submits, with real threads against PostgreSQL (SQLite would serialise them)."""

import threading

import pytest
from sqlalchemy import func, select

from pbschool.exams.models import Attempt
from pbschool.extensions import db
from tests.exams.conftest import correct_answers, make_exam

pytestmark = pytest.mark.postgres_only
THREADS = 8


def _skip_on_sqlite(backend):
    if backend == "sqlite":
        pytest.skip("races need PostgreSQL")


def _parallel(app, headers, method, path):
    barrier = threading.Barrier(THREADS)
    results = [None] * THREADS

    def run(i):
        client = app.test_client()
        barrier.wait()
        response = getattr(client, method)("/api/v1" + path, headers=headers)
        results[i] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_parallel_starts_give_one_attempt(backend, app, api, make, bank):
    _skip_on_sqlite(backend)
    exam = make_exam(bank, max_attempts=3)
    member = make.user()
    api.token(member)
    results = _parallel(app, api.headers, "post", f"/exams/{exam.id}/attempts")
    assert {status for status, _body in results} == {200}
    assert len({body["attempt_id"] for _status, body in results}) == 1
    assert db.session.scalar(select(func.count(Attempt.id))) == 1


def test_parallel_starts_never_exceed_the_limit(backend, app, api, make, bank):
    _skip_on_sqlite(backend)
    exam = make_exam(bank, max_attempts=2)
    member = make.user()
    api.token(member)
    for _round in range(3):
        results = _parallel(app, api.headers, "post", f"/exams/{exam.id}/attempts")
        for status, body in results:
            if status == 200:
                api.post(f"/attempts/{body['attempt_id']}/submit")
            else:
                assert (status, body["error"]["code"]) == (409, "no_attempts_left")
    assert db.session.scalar(select(func.count(Attempt.id))) == 2


def test_parallel_submits_grade_once_and_award_once(backend, app, api, make, bank):
    _skip_on_sqlite(backend)
    from pbschool.points.models import LedgerEntry

    exam = make_exam(bank, points=5)
    member = make.user()
    api.token(member)
    body = api.post(f"/exams/{exam.id}/attempts").get_json()
    for qid, value in correct_answers(body["questions"], body["attempt_id"]).items():
        api.put(f"/attempts/{body['attempt_id']}/answers/{qid}", json={"answer": value})
    results = _parallel(app, api.headers, "post", f"/attempts/{body['attempt_id']}/submit")
    assert {status for status, _b in results} == {200}
    assert all(b == results[0][1] for _s, b in results)
    assert results[0][1]["passed"] is True and results[0][1]["points_awarded"] == 5.0
    entries = db.session.scalars(select(LedgerEntry).where(LedgerEntry.user_id == member.id)).all()
    assert len(entries) == 1 and entries[0].points == 5


def test_parallel_saves_of_one_question_leave_one_row(backend, app, api, make, bank):
    _skip_on_sqlite(backend)
    from pbschool.exams.models import Answer

    exam = make_exam(bank)
    api.token(make.user())
    body = api.post(f"/exams/{exam.id}/attempts").get_json()
    single = next(q for q in body["questions"] if q["type"] == "single")
    barrier = threading.Barrier(THREADS)
    statuses = []

    def run(letter):
        client = app.test_client()
        barrier.wait()
        response = client.put(f"/api/v1/attempts/{body['attempt_id']}/answers/{single['id']}",
                              headers=api.headers, json={"answer": letter})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=run, args=("ABCD"[i % 4],)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * THREADS
    rows = db.session.scalars(select(Answer).where(Answer.attempt_id == body["attempt_id"])).all()
    assert len(rows) == 1 and rows[0].revision == THREADS
