import datetime as dt
from decimal import Decimal

import pytest

from pbschool import clock
from pbschool.exams import services
from pbschool.exams.models import Question, QuestionBank
from pbschool.extensions import db

T0 = dt.datetime(2026, 6, 1, 1, 0, 0)

#: (type, stem, options, answer as a file writes it, category)
QUESTIONS = [
    ("single", "党的最高理想和最终目标是什么？", ["实现共产主义", "发展经济", "依法治国", "改革开放"], "A", "党章"),
    ("single", "党的根本组织原则是？", ["集体领导", "民主集中制", "个人分工负责", "少数服从多数"], "B", "党章"),
    ("multiple", "“三会一课”的“三会”包括哪些？", ["支部党员大会", "支部委员会", "党小组会", "职代会"], "ABC",
     "组织生活"),
    ("truefalse", "党员的党龄从转为正式党员之日算起。", [], "对", "党章"),
    ("blank", "煤矿安全生产方针：安全第一、____、综合治理。", [], "预防为主/预防", "安全"),
    ("blank", "中国共产党成立于____年，____召开一大。", [], "1921|上海/上海市", "党史"),
]


def make_bank(name="党章题库", questions=QUESTIONS, short=False):
    bank = QuestionBank(name=name)
    db.session.add(bank)
    rows = list(questions)
    if short:
        rows.append(("short", "简述“两学一做”的内容。", [], "学党章党规、学系列讲话，做合格党员", "党的建设"))
    for qtype, stem, options, answer, category in rows:
        kind = services.get_type(qtype)
        db.session.add(Question(bank=bank, type=qtype, stem=stem, stem_key=services.stem_key(stem), options=options,
                                answer=kind.parse_answer(answer, options, stem), score=Decimal("1"),
                                difficulty=3, category=category))
    db.session.commit()
    return bank


def make_exam(bank, count=None, *, time_limit=600, max_attempts=1, pass_score=60, points=5, shuffle=False,
              review="explanations", closes_at=None, opens_at=None, **extra):
    count = count or len(bank.questions)
    data = {"title": "党章党规知识测试", "time_limit_seconds": time_limit, "max_attempts": max_attempts,
            "pass_score": pass_score, "points_on_pass": points, "shuffle": shuffle, "review": review,
            "opens_at": opens_at, "closes_at": closes_at,
            "sections": [{"bank": bank.name, "count": count, "points_each": 2}], **extra}
    exam = services.create_exam(data)
    db.session.commit()
    return exam


def correct_answers(paper, attempt):
    """The right answer for each question of an attempt, in the shown (shuffled) letters."""
    from pbschool.exams.models import AttemptQuestion

    out = {}
    for item in paper:
        slot = db.session.query(AttemptQuestion).filter_by(attempt_id=attempt, question_id=item["id"]).one()
        question = slot.question
        kind = question.kind
        if question.type == "blank":
            out[item["id"]] = [alts[0] for alts in question.answer]
        elif question.type == "short":
            out[item["id"]] = "学党章党规"
        else:
            out[item["id"]] = kind.display(question.answer, slot.option_order)
    return out


@pytest.fixture
def pinned():
    clock.pin(T0)
    yield T0
    clock.pin(None)


@pytest.fixture
def bank(app):
    return make_bank()


def right_value(slot):
    """The right answer for an attempt's question, as the member would send it."""
    q = slot.question
    if q.type == "blank":
        return [alts[0] for alts in q.answer]
    if q.type == "short":
        return "学党章党规，学系列讲话"
    return q.kind.display(q.answer, slot.option_order)
