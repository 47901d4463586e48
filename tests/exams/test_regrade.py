"""Regrading: explicit, with a dry run; applied, each change of pass/fail is corrected in the ledger by a
new entry (the award or its reversal), never by editing one; repeating it changes nothing."""

import threading

import pytest
from sqlalchemy import select

from pbschool.exams import marking, services
from pbschool.exams.models import Attempt, AttemptQuestion
from pbschool.extensions import db
from pbschool.points.models import LedgerEntry
from pbschool.points.services import balance, verify_chain
from tests.exams.conftest import make_bank, make_exam, right_value

#: One single-choice question whose key is wrong ("A"; the right one is "B") and one true/false.
QUESTIONS = [
    ("single", "党的根本组织原则是？", ["集体领导", "民主集中制", "个人分工负责", "少数服从多数"], "A", "党章"),
    ("truefalse", "党员的党龄从转为正式党员之日算起。", [], "对", "党章"),
]


@pytest.fixture
def bank(app):
    return make_bank("组织原则", QUESTIONS)


def _sit(exam, member, single_key, truefalse=True):
    """An attempt answering the single-choice question with the option of ``single_key`` (its own key)."""
    attempt = services.start_attempt(exam, member)
    for slot in attempt.questions:
        if slot.question.type == "single":
            services.save_answer(attempt, slot.question_id, slot.question.kind.display(single_key, slot.option_order))
        elif truefalse:
            services.save_answer(attempt, slot.question_id, right_value(slot))
    services.submit_attempt(attempt)
    db.session.commit()
    return attempt


def _set_key(bank, key):
    question = next(q for q in bank.questions if q.type == "single")
    question.answer = key
    db.session.commit()


def _entries(member):
    return db.session.scalars(select(LedgerEntry).where(LedgerEntry.user_id == member.id)
                              .order_by(LedgerEntry.seq)).all()


def test_a_regrade_that_fails_a_pass_reverses_its_points(app, make, bank, client, auth):
    """Issue 11: a regrade that turned a pass into a fail left the pass's points in the ledger."""
    exam = make_exam(bank, pass_score=100, points=5)
    member = make.user()
    attempt = _sit(exam, member, "A")  # right by the wrong key: a pass, and 5 points
    assert attempt.passed and balance(member) == 5
    award = _entries(member)[0]
    award_hash = award.hash

    _set_key(bank, "B")
    make.user("boss", role="admin")
    auth.login("boss")
    client.get(f"/admin/exams/{exam.id}/regrade")
    assert balance(member) == 5 and len(_entries(member)) == 1  # a dry run writes nothing
    client.post(f"/admin/exams/{exam.id}/regrade")
    db.session.expire_all()
    attempt = db.session.get(Attempt, attempt.id)
    assert (attempt.passed, attempt.score, attempt.points_awarded) == (False, 2, 0)
    assert balance(member) == 0
    award, reversal = _entries(member)
    assert (award.points, award.hash) == (5, award_hash)  # never edited
    assert (reversal.kind, reversal.points, reversal.reverses_id) == ("reversal", -5, award.id)
    assert verify_chain()[1] is None

    again = services.regrade(exam, dry_run=False)
    db.session.commit()
    assert again.changes == [] and len(_entries(member)) == 2 and balance(member) == 0


def test_a_regrade_that_passes_a_fail_awards_once_and_back_and_forth_stays_right(app, make, bank):
    exam = make_exam(bank, pass_score=100, points=5)
    member = make.user()
    attempt = _sit(exam, member, "B")  # right, but marked wrong by the wrong key
    assert attempt.passed is False and balance(member) == 0
    _set_key(bank, "B")
    outcome = services.regrade(exam, dry_run=False)
    db.session.commit()
    assert [(c.passed_before, c.passed_after, c.points) for c in outcome.changes] == [(False, True, 5)]
    assert balance(member) == 5
    _set_key(bank, "A")  # corrected the wrong way, then back
    services.regrade(exam, dry_run=False)
    db.session.commit()
    assert balance(member) == 0
    _set_key(bank, "B")
    services.regrade(exam, dry_run=False)
    db.session.commit()
    assert balance(member) == 5
    kinds = [(e.kind, e.points) for e in _entries(member)]
    assert kinds == [("exam_passed", 5), ("reversal", -5), ("exam_passed", 5)]
    assert services.regrade(exam, dry_run=False).changes == []


def test_a_member_paid_by_another_attempt_is_not_paid_again(app, make, bank):
    exam = make_exam(bank, pass_score=100, points=5, max_attempts=2)
    member = make.user()
    _sit(exam, member, "A")  # pass by the wrong key, paid
    second = _sit(exam, member, "B")  # fail by the wrong key
    assert balance(member) == 5
    _set_key(bank, "B")
    outcome = services.regrade(exam, dry_run=False)
    db.session.commit()
    # the first no longer passes (its award reversed), the second now does (paid): still 5 in all
    assert sorted((c.attempt.id, c.passed_after) for c in outcome.changes)[-1] == (second.id, True)
    assert balance(member) == 5
    assert [(e.kind, e.points) for e in _entries(member)] == [("exam_passed", 5), ("reversal", -5),
                                                             ("exam_passed", 5)]


def test_a_regrade_follows_the_option_the_member_chose_when_options_are_reordered(app, make, bank):
    exam = make_exam(bank, pass_score=100, points=0)
    member = make.user()
    attempt = _sit(exam, member, "B")  # chose 民主集中制, marked wrong
    question = next(q for q in bank.questions if q.type == "single")
    question.options = ["民主集中制", "集体领导", "个人分工负责", "少数服从多数"]
    question.answer = "A"  # the right option, now first
    db.session.commit()
    services.regrade(exam, dry_run=False)
    db.session.commit()
    assert db.session.get(Attempt, attempt.id).passed is True


def test_a_short_answer_marked_by_hand_keeps_its_mark(app, make):
    bank = make_bank("简答", QUESTIONS[:1], short=True)
    exam = make_exam(bank, pass_score=50, points=0)
    member = make.user()
    marker = make.user(role="admin")
    attempt = services.start_attempt(exam, member)
    for slot in attempt.questions:
        services.save_answer(attempt, slot.question_id, right_value(slot) if slot.question.type == "short" else "B")
    services.submit_attempt(attempt)
    short = next(s for s in attempt.questions if s.question.type == "short")
    marking.mark_answer(attempt, short.question_id, "1.5", marker)
    db.session.commit()
    short.question.answer = "新的参考答案"
    _set_key(bank, "B")
    services.regrade(exam, dry_run=False)
    db.session.commit()
    assert db.session.get(AttemptQuestion, short.id).score == 1.5
    assert db.session.get(Attempt, attempt.id).score == 3.5


def test_the_api_dry_run_then_apply(app, make, bank, api):
    exam = make_exam(bank, pass_score=100, points=5)
    member = make.user("liuzq")
    attempt = _sit(exam, member, "A")
    _set_key(bank, "B")
    admin = make.user("boss", role="admin")
    api.token(admin)
    dry = api.post(f"/exams/{exam.id}/regrade", json={"dry_run": True})
    assert dry.status_code == 200
    change = {"attempt_id": attempt.id, "username": "liuzq", "score_before": 4.0, "score_after": 2.0,
              "passed_before": True, "passed_after": False}
    assert [{k: c[k] for k in change} for c in dry.get_json()["changes"]] == [change]
    assert balance(member) == 5
    applied = api.post(f"/exams/{exam.id}/regrade", json={"dry_run": False}).get_json()
    assert [{k: c[k] for k in change} for c in applied["changes"]] == [change]
    assert applied["changes"][0]["points"] == -5 and balance(member) == 0
    assert api.post(f"/exams/{exam.id}/regrade", json={"dry_run": False}).get_json()["changes"] == []
    assert api.post(f"/exams/{exam.id}/regrade", json={}).status_code == 400
    assert api.post("/exams/99999/regrade", json={"dry_run": True}).status_code == 404
    api.token(member)
    assert api.post(f"/exams/{exam.id}/regrade", json={"dry_run": False}).status_code == 403


def test_the_page_lists_the_dry_run_and_applies_it(app, make, bank, client, auth):
    exam = make_exam(bank, pass_score=100, points=5)
    member = make.user("liuzq", name="刘志强")
    _sit(exam, member, "A")
    _set_key(bank, "B")
    make.user("boss", role="admin")
    auth.login("boss")
    page = client.get(f"/admin/exams/{exam.id}/regrade").get_data(as_text=True)
    assert "预演" in page and "刘志强" in page and balance(member) == 5
    done = client.post(f"/admin/exams/{exam.id}/regrade", follow_redirects=True).get_data(as_text=True)
    assert "积分台账中记入更正" in done and "-5.0" in done
    assert balance(member) == 0


def test_parallel_regrades_write_one_correction(backend, app, make, bank, api):
    if backend == "sqlite":
        pytest.skip("races need PostgreSQL")
    exam = make_exam(bank, pass_score=100, points=5)
    members = [make.user() for _ in range(3)]
    for member in members:
        _sit(exam, member, "A")
    _set_key(bank, "B")
    admin = make.user("boss", role="admin")
    api.token(admin)
    api.get("/me")  # the token's last use is written now, not by every thread at once (a row lock)
    threads, results = 6, []
    barrier = threading.Barrier(threads)
    path, headers = f"/api/v1/exams/{exam.id}/regrade", dict(api.headers)

    def run():
        client = app.test_client()
        barrier.wait()
        response = client.post(path, json={"dry_run": False}, headers=headers)
        results.append((response.status_code, len(response.get_json().get("changes", []))))

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert sorted(results) == [(200, 0)] * (threads - 1) + [(200, 3)]
    db.session.expire_all()
    for member in members:
        assert balance(member) == 0
        assert [e.kind for e in _entries(member)] == ["exam_passed", "reversal"]
