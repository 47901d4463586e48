import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from pbschool import clock
from pbschool.errors import DomainError
from pbschool.exams import marking, services
from pbschool.exams.models import Attempt, AttemptQuestion, Question
from pbschool.exams.qtypes import get_type, normalise_text
from pbschool.extensions import db
from tests.exams.conftest import T0, make_bank, make_exam, right_value


def _q(qtype, answer, options=("甲", "乙", "丙", "丁"), stem="题干 ____ 和 ____"):
    kind = get_type(qtype)
    options = list(options) if kind.has_options else []
    return Question(type=qtype, stem=stem, options=options, answer=kind.parse_answer(answer, options, stem))


def test_multiple_choice_is_all_or_nothing_unless_partial_credit():
    q = _q("multiple", "ACD")
    kind = q.kind
    two = Decimal("2")
    assert kind.grade(q, ["A", "C", "D"], two)[0] == 2
    assert kind.grade(q, ["A", "C"], two)[0] == 0  # 少选
    assert kind.grade(q, ["A", "B", "C", "D"], two)[0] == 0  # 多选
    assert kind.grade(q, ["A", "C"], two, partial_credit=True)[0] == Decimal("1.3")
    assert kind.grade(q, ["A", "B"], two, partial_credit=True)[0] == 0  # 错选 still nothing
    assert kind.grade(q, None, two)[0] == 0


def test_blanks_compare_trimmed_width_normalised_text_with_alternatives():
    q = _q("blank", "1921|上海/上海市")
    kind = q.kind
    assert kind.grade(q, ["  １９２１ ", "上海市"], Decimal("2"))[0] == 2
    assert kind.grade(q, ["1921", "北京"], Decimal("2"))[0] == 1
    english = _q("blank", "CPC", stem="缩写 ____")
    assert english.kind.grade(english, ["ｃｐｃ"], Decimal("1"))[0] == 1
    assert normalise_text("  Ａ　ｂ  ") == "a b"


def test_truefalse_and_single():
    tf = _q("truefalse", "错")
    assert tf.kind.grade(tf, False, Decimal(1))[0] == 1
    assert tf.kind.grade(tf, True, Decimal(1))[0] == 0
    assert tf.kind.grade(tf, None, Decimal(1))[0] == 0
    single = _q("single", "b")
    assert single.answer == "B"
    assert single.kind.grade(single, "B", Decimal(1))[0] == 1


@pytest.mark.parametrize("qtype,answer", [("single", "E"), ("single", "AB"), ("multiple", "AZ"),
                                          ("truefalse", "也许"), ("blank", "a|b|c")])
def test_bad_answer_cells_are_refused(qtype, answer):
    kind = get_type(qtype)
    with pytest.raises(ValueError):
        kind.parse_answer(answer, ["甲", "乙", "丙", "丁"], "题干 ____ 和 ____")


def test_short_answers_wait_for_marking_then_the_score_is_final(app, make, pinned):
    bank = make_bank(short=True)
    exam = make_exam(bank, pass_score=50, points=4)
    member = make.user()
    attempt = services.start_attempt(exam, member)
    slots = {s.question.type: s for s in attempt.questions}
    for slot in attempt.questions:
        services.save_answer(attempt, slot.question_id, right_value(slot))
    services.submit_attempt(attempt)
    db.session.commit()
    assert attempt.state == "pending_review" and attempt.passed is None and attempt.points_awarded == 0
    marking.mark_answer(attempt, slots["short"].question_id, "1.5", make.user(role="admin"))
    db.session.commit()
    attempt = db.session.get(Attempt, attempt.id)
    assert attempt.state == "submitted"
    assert attempt.score == Decimal("13.5") and attempt.max_score == 14
    assert attempt.passed is True and attempt.points_awarded == 4
    with pytest.raises(DomainError):
        marking.mark_answer(attempt, slots["short"].question_id, "3", make.user(role="admin"))  # marked already


def test_unanswered_short_answer_scores_zero_without_marking(app, make, pinned):
    bank = make_bank(questions=[], short=True)
    exam = make_exam(bank)
    attempt = services.start_attempt(exam, make.user())
    services.submit_attempt(attempt)
    assert attempt.state == "submitted" and attempt.score == 0


def test_sweep_grades_overdue_attempts_only(app, make, bank, runner, pinned):
    exam = make_exam(bank, time_limit=120)
    late = services.start_attempt(exam, make.user())
    clock.advance(seconds=100)
    fresh = services.start_attempt(exam, make.user())
    db.session.commit()
    clock.advance(seconds=30)
    result = runner.invoke(args=["exams", "sweep"])
    assert result.exit_code == 0, result.output
    assert "graded 1" in result.output
    db.session.expire_all()
    assert db.session.get(Attempt, late.id).state == "submitted"
    assert db.session.get(Attempt, late.id).is_auto_submitted
    assert db.session.get(Attempt, fresh.id).state == "in_progress"


def test_highest_or_last_attempt_counts(app, make, bank, pinned):
    exam = make_exam(bank, max_attempts=2)
    member = make.user()
    first = services.start_attempt(exam, member)
    for slot in first.questions:
        services.save_answer(first, slot.question_id, right_value(slot))
    services.submit_attempt(first)
    second = services.start_attempt(exam, member)
    services.submit_attempt(second)
    db.session.commit()
    attempts = services.attempts_of(exam, member)
    assert services.counted_attempts(exam, attempts)[member.id].id == first.id
    exam.grading_method = "last"
    assert services.counted_attempts(exam, attempts)[member.id].id == second.id


def test_points_are_awarded_once_per_member_and_exam(app, make, bank, pinned):
    from pbschool.points.services import balance

    exam = make_exam(bank, max_attempts=2, pass_score=0, points=3)
    member = make.user()
    for _ in range(2):
        services.submit_attempt(services.start_attempt(exam, member))
    db.session.commit()
    assert balance(member) == 3


def test_regrade_dry_run_shows_changes_and_changes_nothing(app, make, bank, pinned):
    exam = make_exam(bank)
    member = make.user()
    attempt = services.start_attempt(exam, member)
    single = next(s for s in attempt.questions if s.question.type == "single")
    wrong = next(k for k in "ABCD" if k != single.question.answer)
    services.save_answer(attempt, single.question_id, single.question.kind.display(wrong, single.option_order))
    services.submit_attempt(attempt)
    db.session.commit()
    assert attempt.score == 0
    single.question.answer = wrong  # the key was wrong; fix it
    changes = services.regrade(exam, dry_run=True).changes
    assert [(c.attempt.id, c.score_before, c.score_after) for c in changes] == [(attempt.id, 0, 2)]
    assert db.session.get(Attempt, attempt.id).score == 0
    services.regrade(exam, dry_run=False)
    db.session.commit()
    assert db.session.get(Attempt, attempt.id).score == 2


def test_exam_window_and_start(app, make, bank, pinned):
    exam = make_exam(bank, opens_at=T0 + dt.timedelta(hours=1))
    with pytest.raises(DomainError) as info:
        services.start_attempt(exam, make.user())
    assert info.value.code == "exam_closed"


def test_options_are_shuffled_per_attempt_but_stay_fixed_within_it(app, make, pinned):
    bank = make_bank()
    exam = make_exam(bank, shuffle=True, max_attempts=1)
    orders = set()
    for _ in range(8):
        attempt = services.start_attempt(exam, make.user())
        orders.add(tuple(s.question_id for s in attempt.questions))
    db.session.commit()
    assert len(orders) > 1
    slot = db.session.scalars(select(AttemptQuestion)).first()
    assert sorted(slot.option_order) == slot.option_order or len(slot.option_order) in (0, 4)


def test_question_html_is_stored_when_saved_and_never_stale(app):
    from pbschool.exams.qtypes import render_stem

    bank = make_bank(questions=[])
    question = services.save_question(bank, {"type": "blank", "stem": "安全第一、____、综合治理 <script>x</script>",
                                             "answer": "预防为主"})
    assert "<script>" not in question.rendered["stem"] and "（1）" in question.rendered["stem"]
    question.stem = "改过的题干 ____"  # changed behind the service's back: rendered afresh
    assert "改过的题干" in render_stem(question)
    single = services.save_question(bank, {"type": "single", "stem": "选？", "options": ["**甲**", "乙"],
                                           "answer": "A"})
    assert single.kind.render_options(single, ["B", "A"])[1]["text_html"] == "<strong>甲</strong>"
