"""Answers that reach the server after the deadline plus grace: 409 time_up as the contract says, kept
as "arrived late" (never in the score), shown to staff and to the member."""

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from pbschool import clock
from pbschool.exams.models import Answer, Attempt, LateAnswer
from pbschool.extensions import db
from tests.exams.conftest import T0, correct_answers, make_exam


def _start(api, exam):
    response = api.post(f"/exams/{exam.id}/attempts")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _late(api, attempt_id, qid, body):
    response = api.put(f"/attempts/{attempt_id}/answers/{qid}", json=body)
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["error"]["code"] == "time_up"
    return response


def test_a_late_answer_is_409_kept_as_late_and_never_scored(api, make, bank, pinned):
    exam = make_exam(bank, time_limit=60, points=5)
    member = make.user()
    api.token(member)
    body = _start(api, exam)
    right = correct_answers(body["questions"], body["attempt_id"])
    first, second = body["questions"][0]["id"], body["questions"][1]["id"]
    assert api.put(f"/attempts/{body['attempt_id']}/answers/{first}",
                   json={"answer": right[first]}).status_code == 200
    clock.advance(seconds=70)
    given = (T0 + dt.timedelta(seconds=30)).isoformat() + "Z"
    _late(api, body["attempt_id"], second, {"answer": right[second], "given_at": given})

    attempt = db.session.get(Attempt, body["attempt_id"])
    assert attempt.state == "submitted" and attempt.is_auto_submitted
    assert attempt.score == 2  # only the answer saved in time
    assert db.session.scalar(select(func.count(Answer.id)).where(Answer.attempt_id == attempt.id)) == 1
    late = db.session.scalars(select(LateAnswer)).all()
    assert len(late) == 1
    assert late[0].question_id == second and late[0].given_at == T0 + dt.timedelta(seconds=30)
    assert late[0].arrived_at == T0 + dt.timedelta(seconds=70)

    # a retry and a changed mind: one row, the latest arrival wins, arrivals counted; the score stays
    clock.advance(seconds=5)
    _late(api, body["attempt_id"], second, {"answer": right[second]})
    other = next(o["key"] for o in body["questions"][1]["options"] if o["key"] != right[second]) \
        if body["questions"][1]["type"] == "single" else right[second]
    _late(api, body["attempt_id"], second, {"answer": other, "given_at": "not a time"})
    late = db.session.scalars(select(LateAnswer)).all()
    assert len(late) == 1 and late[0].arrivals == 3 and late[0].given_at is None
    assert db.session.get(Attempt, body["attempt_id"]).score == 2
    # a second tap on submit still gives the same result
    assert api.post(f"/attempts/{body['attempt_id']}/submit").get_json()["score"] == 2


def test_given_at_is_bounded_by_the_start_and_the_arrival(api, make, bank, pinned):
    exam = make_exam(bank, time_limit=60)
    api.token(make.user())
    body = _start(api, exam)
    qid = body["questions"][0]["id"]
    clock.advance(seconds=120)
    _late(api, body["attempt_id"], qid, {"answer": "A", "given_at": "2099-01-01T00:00:00Z"})
    assert db.session.scalar(select(LateAnswer.given_at)) == T0 + dt.timedelta(seconds=120)
    _late(api, body["attempt_id"], qid, {"answer": "A", "given_at": "1999-01-01T00:00:00+08:00"})
    assert db.session.scalar(select(LateAnswer.given_at)) == T0


def test_only_the_attempts_questions_in_their_shape_are_kept(api, make, bank, pinned):
    exam = make_exam(bank, count=3, time_limit=60)
    api.token(make.user())
    body = _start(api, exam)
    drawn = {q["id"] for q in body["questions"]}
    outside = next(q.id for q in bank.questions if q.id not in drawn)
    clock.advance(seconds=120)
    _late(api, body["attempt_id"], outside, {"answer": "A"})
    single = body["questions"][0]  # no question takes these shapes
    _late(api, body["attempt_id"], single["id"], {"answer": "Z" * 100_000})
    _late(api, body["attempt_id"], single["id"], {"answer": {"deep": [[[]]]}})
    # a body that is not even JSON is still the deadline's 409, and keeps nothing
    response = api.put(f"/attempts/{body['attempt_id']}/answers/{single['id']}", data="{",
                       headers={"Content-Type": "application/json"})
    assert (response.status_code, response.get_json()["error"]["code"]) == (409, "time_up")
    assert db.session.scalar(select(func.count(LateAnswer.id))) == 0


def test_another_users_attempt_is_404_and_keeps_nothing(api, make, bank, pinned):
    exam = make_exam(bank, time_limit=60)
    owner, other = make.user(), make.user()
    api.token(owner)
    body = _start(api, exam)
    qid = body["questions"][0]["id"]
    clock.advance(seconds=120)
    api.token(other)
    response = api.put(f"/attempts/{body['attempt_id']}/answers/{qid}", json={"answer": "A"})
    assert response.status_code == 404
    assert db.session.scalar(select(func.count(LateAnswer.id))) == 0


def test_an_attempt_the_member_handed_in_keeps_no_late_answers(api, make, bank, pinned):
    exam = make_exam(bank, time_limit=60)
    api.token(make.user())
    body = _start(api, exam)
    qid = body["questions"][0]["id"]
    api.post(f"/attempts/{body['attempt_id']}/submit")
    response = api.put(f"/attempts/{body['attempt_id']}/answers/{qid}", json={"answer": "A"})
    assert response.get_json()["error"]["code"] == "already_submitted"
    clock.advance(seconds=120)
    _late(api, body["attempt_id"], qid, {"answer": "A"})
    assert db.session.scalar(select(func.count(LateAnswer.id))) == 0


def test_the_in_time_path_is_unchanged(api, make, bank, pinned):
    exam = make_exam(bank, time_limit=60)
    api.token(make.user())
    body = _start(api, exam)
    qid = next(q["id"] for q in body["questions"] if q["type"] == "single")
    clock.advance(seconds=64)  # within the grace
    ok = api.put(f"/attempts/{body['attempt_id']}/answers/{qid}", json={"answer": "A", "given_at": "x"})
    assert ok.status_code == 200
    assert db.session.scalar(select(func.count(LateAnswer.id))) == 0


def _late_setup(api, make, bank, auth):
    exam = make_exam(bank, time_limit=60)
    org = make.organisation()
    api.token(org["member"])
    body = _start(api, exam)
    qid = body["questions"][0]["id"]
    value = {"single": "B", "multiple": ["A"], "truefalse": True}.get(body["questions"][0]["type"], ["x"])
    clock.advance(seconds=120)
    _late(api, body["attempt_id"], qid, {"answer": value})
    return exam, org, body["attempt_id"]


def test_the_member_and_staff_see_late_answers_with_a_way_to_the_overrides(client, api, make, bank, auth,
                                                                           pinned):
    exam, org, attempt_id = _late_setup(api, make, bank, auth)
    auth.login("member")
    page = client.get(f"/attempts/{attempt_id}/result").get_data(as_text=True)
    assert "以下答案在截止后送达，未计入成绩" in page and "第 1 题" in page
    auth.logout()
    for who in ("admin", "secretary"):
        auth.login(who)
        page = client.get(f"/admin/attempts/{attempt_id}").get_data(as_text=True)
        assert "截止后送达的答案" in page, who
        assert f'href="/admin/exams/{exam.id}#overrides"' in page, who
        auth.logout()


def test_late_answers_are_not_shown_to_anyone_else(client, api, make, bank, auth, pinned):
    _exam, org, attempt_id = _late_setup(api, make, bank, auth)
    make.user("lecturer1", role="lecturer")
    make.user("secretary_jd", role="secretary", branch=org["other"].branch)
    for who in ("other", "lecturer1", "secretary_jd"):
        auth.login(who)
        assert client.get(f"/attempts/{attempt_id}/result").status_code == 404, who
        assert client.get(f"/admin/attempts/{attempt_id}").status_code in (403, 404), who
        auth.logout()


@pytest.mark.postgres_only
def test_the_same_late_answer_sent_at_once_is_one_row(backend, app, api, make, bank, pinned):
    if backend == "sqlite":
        pytest.skip("races need PostgreSQL")
    exam = make_exam(bank, time_limit=60)
    api.token(make.user())
    body = _start(api, exam)
    qid = body["questions"][0]["id"]
    value = {"single": "A", "multiple": ["A"], "truefalse": True}.get(body["questions"][0]["type"], ["x"])
    clock.advance(seconds=120)
    barrier = threading.Barrier(6)
    codes = []

    def send():
        client = app.test_client()
        barrier.wait()
        response = client.put(f"/api/v1/attempts/{body['attempt_id']}/answers/{qid}", json={"answer": value},
                              headers=api.headers)
        codes.append((response.status_code, response.get_json()["error"]["code"]))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(codes) == {(409, "time_up")}
    rows = db.session.scalars(select(LateAnswer)).all()
    assert len(rows) == 1 and rows[0].arrivals == 6
    attempt = db.session.get(Attempt, body["attempt_id"])
    assert attempt.state == "submitted" and attempt.score == 0
