"""Hand marking: only short answers awaiting marking on finished attempts, never one's own paper,
by the page and by POST /api/v1/attempts/{id}/marks through one service (pbschool.exams.marking)."""

import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from pbschool.errors import DomainError
from pbschool.exams import marking, services
from pbschool.exams.models import Attempt, AttemptQuestion, BankGrant
from pbschool.extensions import db
from pbschool.points.models import LedgerEntry
from tests.exams.conftest import make_bank, make_exam, right_value


def ledger_points(user):
    return db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.points), 0))
                             .where(LedgerEntry.user_id == user.id))


def slots_of(attempt):
    return db.session.scalars(select(AttemptQuestion).where(AttemptQuestion.attempt_id == attempt.id)
                              .order_by(AttemptQuestion.position)).all()


def short_exam(make, *, author=None, questions=(), points=5, **extra):
    """A bank of one short answer (plus ``questions``), authored by ``author``, and an exam on it."""
    bank = make_bank(questions=list(questions), short=True)
    if author is not None:
        bank.created_by_id = author.id
        db.session.commit()
    return bank, make_exam(bank, pass_score=50, points=points, **extra)


def finished_short_attempt(exam, member, answer="学党章党规"):
    attempt = services.start_attempt(exam, member)
    short = next(s for s in attempt.questions if s.question.type == "short")
    for slot in attempt.questions:
        services.save_answer(attempt, slot.question_id, answer if slot is short else right_value(slot))
    services.submit_attempt(attempt)
    db.session.commit()
    return attempt, short


# -- the reproductions ----------------------------------------------------------------------

def test_a_lecturer_cannot_mark_their_own_blank_attempt_full_on_the_marking_page(client, auth, make, bank, pinned):
    lecturer = make.user("teacher", role="lecturer", branch=make.branch())
    bank.created_by_id = lecturer.id
    db.session.commit()
    exam = make_exam(bank, points=5)
    attempt = services.start_attempt(exam, lecturer)
    services.submit_attempt(attempt)  # blank
    db.session.commit()
    assert attempt.score == 0
    auth.login("teacher")
    page = client.post(f"/admin/exams/{exam.id}/marking",
                       data={f"score-{s.id}": str(s.points) for s in slots_of(attempt)}, follow_redirects=True)
    attempt = db.session.get(Attempt, attempt.id)
    assert attempt.score == 0 and not attempt.passed
    assert ledger_points(lecturer) == 0
    assert "未保存" in page.get_data(as_text=True)


def test_pre_marking_a_running_attempt_does_not_survive_the_members_blank_submission(client, auth, make, bank,
                                                                                     pinned):
    exam = make_exam(bank, points=5)
    member = make.user()
    attempt = services.start_attempt(exam, member)
    db.session.commit()
    admin = make.user("boss", role="admin")
    auth.login(admin.username)
    page = client.post(f"/admin/exams/{exam.id}/marking",
                       data={f"score-{s.id}": str(s.points) for s in slots_of(attempt)}, follow_redirects=True)
    assert "不是待阅的简答题" in page.get_data(as_text=True)
    services.submit_attempt(db.session.get(Attempt, attempt.id))  # the member hands in a blank paper
    db.session.commit()
    attempt = db.session.get(Attempt, attempt.id)
    assert attempt.score == 0 and attempt.passed is False
    assert ledger_points(member) == 0


# -- the service ------------------------------------------------------------------------------------

def test_marking_the_last_short_answer_makes_the_result_final_and_awards_once(app, make, pinned):
    lecturer = make.user(role="lecturer")
    _bank, exam = short_exam(make, author=lecturer, points=4)
    member = make.user()
    attempt, short = finished_short_attempt(exam, member)
    assert attempt.state == "pending_review" and ledger_points(member) == 0
    marking.mark_answer(attempt, short.question_id, "1.5", lecturer, feedback="要点齐全")
    db.session.commit()
    attempt = db.session.get(Attempt, attempt.id)
    assert (attempt.state, attempt.score, attempt.passed) == ("submitted", Decimal("1.5"), True)
    assert ledger_points(member) == 4
    with pytest.raises(DomainError) as again:  # an already-marked slot
        marking.mark_answer(attempt, short.question_id, "1", lecturer)
    assert (again.value.code, again.value.status) == ("not_awaiting_marking", 409)
    db.session.rollback()
    assert ledger_points(member) == 4


@pytest.mark.parametrize("raw, code", [("3", "out_of_range"), ("-1", "out_of_range"), ("0.25", "too_precise"),
                                       ("1.05", "too_precise"), ("abc", "invalid_number"), ("", "invalid_number"),
                                       ("NaN", "invalid_number"), ("Infinity", "invalid_number"),
                                       (True, "invalid_number"), (None, "invalid_number")])
def test_a_score_outside_the_points_or_with_two_decimals_is_refused_not_rounded(app, make, pinned, raw, code):
    lecturer = make.user(role="lecturer")
    _bank, exam = short_exam(make, author=lecturer)
    attempt, short = finished_short_attempt(exam, make.user())
    with pytest.raises(DomainError) as refused:
        marking.mark_answer(attempt, short.question_id, raw, lecturer)
    assert (refused.value.code, refused.value.status) == (code, 400)
    db.session.rollback()
    assert db.session.get(AttemptQuestion, short.id).marked_at is None


def test_only_short_answers_awaiting_marking_on_finished_attempts_can_be_marked(app, make, pinned):
    from tests.exams.conftest import QUESTIONS

    admin = make.user(role="admin")
    _bank, exam = short_exam(make, questions=QUESTIONS[:2], max_attempts=2)
    member = make.user()
    attempt, _short = finished_short_attempt(exam, member)
    choice = next(s for s in attempt.questions if s.question.type == "single")
    with pytest.raises(DomainError) as other_type:
        marking.mark_answer(attempt, choice.question_id, "1", admin)
    assert other_type.value.code == "not_awaiting_marking"
    running = services.start_attempt(exam, member)
    db.session.commit()
    short = next(s for s in running.questions if s.question.type == "short")
    with pytest.raises(DomainError) as in_progress:
        marking.mark_answer(running, short.question_id, "1", admin)
    assert (in_progress.value.code, in_progress.value.status) == ("not_awaiting_marking", 409)
    with pytest.raises(DomainError) as missing:
        marking.mark_answer(attempt, 999999, "1", admin)
    assert missing.value.status == 404


def test_nobody_marks_their_own_paper(app, make, pinned):
    admin = make.user(role="admin", branch=make.branch())
    _bank, exam = short_exam(make)
    attempt, short = finished_short_attempt(exam, admin)
    with pytest.raises(DomainError) as own:
        marking.mark_answer(attempt, short.question_id, "1", admin)
    assert (own.value.code, own.value.status) == ("own_attempt", 403)


def test_a_lecturer_marks_only_exams_on_banks_they_may_edit(app, make, pinned):
    author, stranger, granted = (make.user(role="lecturer") for _ in range(3))
    bank, exam = short_exam(make, author=author)
    attempt, short = finished_short_attempt(exam, make.user())
    for nobody in (stranger, make.user(), make.user(role="secretary")):
        with pytest.raises(DomainError) as refused:
            marking.mark_answer(attempt, short.question_id, "1", nobody)
        assert refused.value.status == 403
    db.session.add(BankGrant(bank_id=bank.id, user_id=granted.id))
    db.session.commit()
    marking.mark_answer(attempt, short.question_id, "1", granted)
    assert attempt.state == "submitted"


# -- the page ---------------------------------------------------------------------------------------

def test_the_marking_page_lists_only_what_awaits_marking_and_never_the_markers_own(client, auth, make, pinned):
    lecturer = make.user("teacher", role="lecturer", branch=make.branch())
    _bank, exam = short_exam(make, author=lecturer, max_attempts=2)
    finished_short_attempt(exam, make.user(name="陈晓燕"), answer="第一份答卷")
    finished_short_attempt(exam, lecturer, answer="自己的答卷")
    running = services.start_attempt(exam, make.user(name="李建国"))
    services.save_answer(running, running.questions[0].question_id, "还在作答")
    db.session.commit()
    auth.login("teacher")
    html = client.get(f"/admin/exams/{exam.id}/marking").get_data(as_text=True)
    assert "第一份答卷" in html and "陈晓燕" in html
    assert "自己的答卷" not in html and "还在作答" not in html and "李建国" not in html


def test_the_marking_page_and_the_api_refuse_in_chinese(client, auth, api, make, pinned):
    lecturer = make.user("teacher", role="lecturer", branch=make.branch())
    _bank, exam = short_exam(make, author=lecturer)
    attempt, short = finished_short_attempt(exam, make.user())
    auth.login("teacher")
    page = client.post(f"/admin/exams/{exam.id}/marking", data={f"score-{short.id}": "0.55"},
                       follow_redirects=True).get_data(as_text=True)
    assert "一位小数" in page
    auth.logout()
    body = api.token(lecturer).post(f"/attempts/{attempt.id}/marks",
                                    json={"question_id": short.question_id, "score": 9})
    assert body.status_code == 400 and body.get_json()["error"]["code"] == "out_of_range"
    assert db.session.get(Attempt, attempt.id).state == "pending_review"


# -- the API ----------------------------------------------------------------------------------------

def test_marks_api_finalises_the_attempt(app, api, make, pinned):
    lecturer = make.user(role="lecturer")
    _bank, exam = short_exam(make, author=lecturer, points=3)
    member = make.user()
    attempt, short = finished_short_attempt(exam, member)
    response = api.token(lecturer).post(f"/attempts/{attempt.id}/marks",
                                        json={"question_id": short.question_id, "score": 1.5, "feedback": "好"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["state"], body["score"], body["passed"], body["points_awarded"]) == ("submitted", 1.5, True, 3)
    slot = db.session.get(AttemptQuestion, short.id)
    assert slot.feedback == "好" and slot.marked_by_id == lecturer.id
    again = api.post(f"/attempts/{attempt.id}/marks", json={"question_id": short.question_id, "score": 1})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "not_awaiting_marking"
    assert ledger_points(member) == 3


@pytest.mark.parametrize("body", [{}, {"question_id": "x", "score": 1}, {"question_id": 1},
                                  {"question_id": 1, "score": "1"}, {"question_id": 1, "score": 1, "feedback": 3}])
def test_marks_api_bad_bodies_are_400(app, api, make, pinned, body):
    admin = make.user(role="admin")
    _bank, exam = short_exam(make)
    attempt, short = finished_short_attempt(exam, make.user())
    if body.get("question_id") == 1:
        body = {**body, "question_id": short.question_id}
    response = api.token(admin).post(f"/attempts/{attempt.id}/marks", json=body)
    assert response.status_code == 400
    assert db.session.get(Attempt, attempt.id).state == "pending_review"


def test_marks_api_unknown_attempt_is_404_and_members_are_403(app, api, make, pinned):
    _bank, exam = short_exam(make)
    attempt, short = finished_short_attempt(exam, make.user())
    assert api.token(make.user(role="admin")).post("/attempts/999999/marks",
                                                   json={"question_id": 1, "score": 1}).status_code == 404
    for role in ("member", "secretary"):
        response = api.token(make.user(role=role)).post(f"/attempts/{attempt.id}/marks",
                                                        json={"question_id": short.question_id, "score": 1})
        assert response.status_code == 403


# -- races ------------------------------------------------------------------------------------------

def _mark_while_submitting(app, marker_id, attempt_id, question_id, markers=3):
    """One thread submits the attempt while ``markers`` threads mark its short answer; returns what
    each marker got ("marked" or the refusal's code)."""
    from pbschool.accounts.models import User

    barrier = threading.Barrier(markers + 1)
    outcomes = []

    def mark():
        with app.app_context():
            barrier.wait()
            try:
                marking.mark_answer(db.session.get(Attempt, attempt_id), question_id, "1",
                                    db.session.get(User, marker_id))
                db.session.commit()
                outcomes.append("marked")
            except DomainError as exc:
                db.session.rollback()
                outcomes.append(exc.code)

    def submit():
        with app.app_context():
            barrier.wait()
            services.submit_attempt(db.session.get(Attempt, attempt_id))
            db.session.commit()

    threads = [threading.Thread(target=submit)] + [threading.Thread(target=mark) for _ in range(markers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_marking_while_the_member_submits_never_marks_a_running_attempt(backend, app, make, pinned):
    if backend == "sqlite":
        pytest.skip("races need PostgreSQL (SQLite serialises writers)")
    admin = make.user(role="admin")
    _bank, exam = short_exam(make, max_attempts=1)
    for _round in range(4):
        attempt = services.start_attempt(exam, make.user())
        short = attempt.questions[0]
        services.save_answer(attempt, short.question_id, "学党章党规")
        db.session.commit()
        outcomes = _mark_while_submitting(app, admin.id, attempt.id, short.question_id)
        db.session.expire_all()
        final = db.session.get(Attempt, attempt.id)
        slot = db.session.get(AttemptQuestion, short.id)
        assert set(outcomes) <= {"marked", "not_awaiting_marking"}
        assert outcomes.count("marked") <= 1
        if "marked" in outcomes:
            assert (final.state, final.score, slot.marked_by_id) == ("submitted", Decimal("1"), admin.id)
            assert slot.marked_at >= final.submitted_at
        else:
            assert final.state == "pending_review" and slot.marked_at is None and slot.needs_review


def test_the_marking_page_shows_the_question_as_the_member_was_shown_it(client, auth, make, pinned):
    """A question edited after the member answered it: the marker reads the answer against the
    stem and reference answer the member saw, not the edit."""
    from pbschool.exams.models import Question

    admin = make.user("boss", role="admin")
    bank, exam = short_exam(make)
    _attempt, short = finished_short_attempt(exam, make.user(name="陈晓燕"), answer="按时交纳党费")
    question = db.session.get(Question, short.question_id)
    shown_stem, shown_key = question.stem, question.answer
    services.save_question(bank, {"type": "short", "stem": "改过的题干：党员的四项权利？",
                                  "answer": "改过的参考答案", "score": "1", "difficulty": "3"},
                           question=question, actor=admin)
    db.session.commit()
    auth.login("boss")
    html = client.get(f"/admin/exams/{exam.id}/marking").get_data(as_text=True)
    assert "按时交纳党费" in html
    assert shown_stem in html and str(shown_key) in html
    assert "改过的题干" not in html and "改过的参考答案" not in html
