"""Separation of duties in exams: nobody marks their own paper, by the marking page or the API
(there is no marking CLI), and staff who sit an exam sit it as a preview that earns no points and no
place in the results. Members and secretaries may not mark at all."""

import pytest
from sqlalchemy import func, select

from pbschool.exams import services
from pbschool.exams.models import Attempt, AttemptQuestion
from pbschool.extensions import db
from pbschool.points.models import LedgerEntry
from tests.exams.conftest import correct_answers, make_bank, make_exam
from tests.factories import ApiClient
from tests.sod.conftest import ROLES

MARKERS = ("lecturer", "admin")


def own_paper(person, role, state):
    """An exam on a bank the person wrote (so a lecturer may mark it) and their own paper at it:
    a finished one whose short answer awaits marking, or one still running."""
    user = person(role)
    bank = make_bank(questions=[], short=True)
    bank.created_by_id = user.id
    db.session.commit()
    exam = make_exam(bank, pass_score=50, points=5)
    attempt = services.start_attempt(exam, user)
    slot = attempt.questions[0]
    services.save_answer(attempt, slot.question_id, "学党章党规")
    if state == "pending_review":
        services.submit_attempt(attempt)
    db.session.commit()
    assert attempt.state == state
    return user, exam, attempt, slot


@pytest.mark.parametrize("state", ["pending_review", "in_progress"])
@pytest.mark.parametrize("role", ROLES)
def test_nobody_marks_their_own_paper_on_the_marking_page(app, client, auth, person, unchanged, role, state):
    user, exam, attempt, slot = own_paper(person, role, state)
    auth.login(user.username)
    with unchanged():
        response = client.post(f"/admin/exams/{exam.id}/marking",
                               data={f"score-{slot.id}": "2", f"feedback-{slot.id}": "满分"}, follow_redirects=True)
        if role in MARKERS:
            assert response.status_code == 200
            assert "不能批改自己的试卷" in response.get_data(as_text=True)
        else:
            assert response.status_code == 403


@pytest.mark.parametrize("state", ["pending_review", "in_progress"])
@pytest.mark.parametrize("role", ROLES)
def test_nobody_marks_their_own_paper_by_the_api(app, person, unchanged, role, state):
    user, _exam, attempt, slot = own_paper(person, role, state)
    api = ApiClient(app.test_client()).token(user)
    with unchanged():
        response = api.post(f"/attempts/{attempt.id}/marks", json={"question_id": slot.question_id, "score": 2})
        assert response.status_code == 403
        if role in MARKERS:
            assert response.get_json()["error"]["code"] == "own_attempt"
            assert "不能批改自己的试卷" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("role", ["member", "secretary"])
def test_members_and_secretaries_mark_nobodys_paper(app, client, auth, person, unchanged, role):
    _other, exam, attempt, slot = own_paper(person, "member", "pending_review")
    user = person(role)
    api = ApiClient(app.test_client()).token(user)
    auth.login(user.username)
    with unchanged():
        assert api.post(f"/attempts/{attempt.id}/marks",
                        json={"question_id": slot.question_id, "score": 1}).status_code == 403
        assert client.post(f"/admin/exams/{exam.id}/marking", data={f"score-{slot.id}": "1"}).status_code == 403
        assert client.get(f"/admin/exams/{exam.id}/marking").status_code == 403
    assert db.session.get(AttemptQuestion, slot.id).marked_at is None


def _ledger(user):
    return db.session.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.user_id == user.id))


@pytest.mark.parametrize("path", ["page", "api"])
@pytest.mark.parametrize("role", ROLES)
def test_staff_who_sit_an_exam_earn_no_points_and_no_place(app, client, auth, person, role, path):
    """A member's pass pays; anyone who could read the answers first (admin, secretary, the bank's
    lecturer) sits a preview: graded and shown, but no points and no row in the results."""
    user = person(role)
    bank = make_bank()
    bank.created_by_id = user.id if role == "lecturer" else None
    db.session.commit()
    exam = make_exam(bank, points=5)
    if path == "api":
        api = ApiClient(app.test_client()).token(user)
        started = api.post(f"/exams/{exam.id}/attempts").get_json()
        attempt_id = started["attempt_id"]
        for qid, value in correct_answers(started["questions"], attempt_id).items():
            api.put(f"/attempts/{attempt_id}/answers/{qid}", json={"answer": value})
        result = api.post(f"/attempts/{attempt_id}/submit").get_json()
        assert result["passed"] is True
    else:
        auth.login(user.username)
        started = client.post(f"/exams/{exam.id}/start", data={"agreed": "y"})
        attempt_id = int(started.headers["Location"].rstrip("/").split("/")[-1])
        attempt = db.session.get(Attempt, attempt_id)
        answers = correct_answers(services.paper(attempt), attempt_id)
        form = {}
        for qid, value in answers.items():
            form[f"q{qid}"] = {True: "true", False: "false"}.get(value, value) if not isinstance(value, list) \
                else value
        client.post(f"/attempts/{attempt_id}/submit", data=form)
    attempt = db.session.get(Attempt, attempt_id)
    assert attempt.state == "submitted" and attempt.passed is True
    staff = role != "member"
    assert attempt.is_preview is staff
    assert _ledger(user) == (0 if staff else 1)
    assert [a.id for a in services.results_query(exam, person("admin"))] == ([] if staff else [attempt_id])
