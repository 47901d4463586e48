import pytest

from pbschool.exams.models import AttemptQuestion
from pbschool.extensions import db
from pbschool.practice.models import PracticeBank, PracticeQuestion
from tests.exams.conftest import bank, pinned  # noqa: F401  (the exams' fixtures, re-used)


def open_bank(question_bank):
    db.session.add(PracticeBank(bank_id=question_bank.id))
    db.session.commit()
    return question_bank


@pytest.fixture
def practice_bank(bank):  # noqa: F811  (the exams' bank fixture)
    return open_bank(bank)


def right_answer(practice_id, question):
    """The right answer of one practice question, in the letters it was shown."""
    slot = db.session.query(PracticeQuestion).filter_by(practice_id=practice_id, question_id=question["id"]).one()
    shown = slot.shown
    if shown.type == "blank":
        return [alts[0] for alts in shown.answer]
    return shown.kind.display(shown.answer, slot.option_order)


def wrong_answer(question):
    return {"single": "Z", "multiple": ["Z"], "truefalse": None, "blank": None}[question["type"]]


def a_wrong_answer(practice_id, question):
    right = right_answer(practice_id, question)
    if question["type"] == "truefalse":
        return not right
    if question["type"] == "blank":
        return ["错误答案"] * question["blanks"]
    keys = [o["key"] for o in question["options"]]
    if question["type"] == "single":
        return next(k for k in keys if k != right)
    return [k for k in keys if k not in right][:1]


def exam_slot(attempt_id, question_id):
    return db.session.query(AttemptQuestion).filter_by(attempt_id=attempt_id, question_id=question_id).one()
