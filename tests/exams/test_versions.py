"""Question versions: an attempt shows, grades and reviews the question as the member was shown it,
whatever a later form edit, import or content sync changed; only an explicit regrade uses a new key."""

from decimal import Decimal

from sqlalchemy import func, select

from pbschool.exams import services, stats
from pbschool.exams.importer import import_bank_file
from pbschool.exams.models import Attempt, AttemptQuestion, Question
from pbschool.extensions import db
from tests.exams.conftest import make_exam

HEADER = "编号,题型,题干,选项A,选项B,选项C,选项D,答案,分值,难度,分类,解析\n"
FIRST = ("Q1,单选,三会一课中的“一课”指什么？,按时上好党课,按时交纳党费,按时参加劳动,按时学习业务,B,1,3,组织生活,"
         "缴纳党费是义务\n")
#: The same question with its key corrected, its options put in a better order and a new explanation.
CORRECTED = ("Q1,单选,三会一课中的“一课”指什么？,按时参加劳动,按时上好党课,按时交纳党费,按时学习业务,B,1,3,组织生活,"
             "“一课”即按时上好党课\n")
OTHERS = "Q2,判断,党员的党龄从转为正式党员之日算起。,,,,,对,1,3,党章,\n"


def _csv(*rows):
    return (HEADER + "".join(rows)).encode("utf-8")


def _bank():
    result = import_bank_file(_csv(FIRST, OTHERS), "bank.csv", "组织生活题库")
    db.session.commit()
    return result.bank


def _text_at(options, key):
    return next(o["text_html"] for o in options if o["key"] == key)


def test_reimporting_a_corrected_key_leaves_a_past_review_as_the_member_saw_it(app, make, api):
    """Issue 11: re-importing a bank with one answer key corrected changed what a past attempt's
    review shows (the new explanation; your_answer pointing at a different option) without a regrade."""
    bank = _bank()
    exam = make_exam(bank, shuffle=True, max_attempts=1, points=0)
    member = make.user()
    api.token(member)
    body = api.post(f"/exams/{exam.id}/attempts").get_json()
    single = next(q for q in body["questions"] if q["type"] == "single")
    chosen = next(o for o in single["options"] if o["text_html"] == "按时上好党课")
    api.put(f"/attempts/{body['attempt_id']}/answers/{single['id']}", json={"answer": chosen["key"]})
    api.post(f"/attempts/{body['attempt_id']}/submit")
    before = next(r for r in api.get(f"/attempts/{body['attempt_id']}").get_json()["review"]
                  if r["id"] == single["id"])
    assert _text_at(before["options"], before["your_answer"]) == "按时上好党课"
    assert _text_at(before["options"], before["correct_answer"]) == "按时交纳党费"  # the wrong key

    result = import_bank_file(_csv(CORRECTED, OTHERS), "bank.csv", "组织生活题库")
    db.session.commit()
    assert (result.updated, result.unchanged) == (1, 1)

    after = next(r for r in api.get(f"/attempts/{body['attempt_id']}").get_json()["review"]
                 if r["id"] == single["id"])
    assert after == before
    assert _text_at(after["options"], after["your_answer"]) == "按时上好党课"
    assert "缴纳党费是义务" in after["explanation_html"] and not after["regraded"]
    assert api.get(f"/attempts/{body['attempt_id']}").get_json()["result"]["score"] == 0


def test_after_a_regrade_the_review_shows_the_corrected_key_and_says_so(app, make, api):
    bank = _bank()
    exam = make_exam(bank, shuffle=True, points=0)
    member = make.user()
    api.token(member)
    body = api.post(f"/exams/{exam.id}/attempts").get_json()
    single = next(q for q in body["questions"] if q["type"] == "single")
    chosen = next(o for o in single["options"] if o["text_html"] == "按时上好党课")
    api.put(f"/attempts/{body['attempt_id']}/answers/{single['id']}", json={"answer": chosen["key"]})
    api.post(f"/attempts/{body['attempt_id']}/submit")
    import_bank_file(_csv(CORRECTED, OTHERS), "bank.csv", "组织生活题库")
    db.session.commit()
    outcome = services.regrade(exam, dry_run=False)
    db.session.commit()
    assert [(c.score_before, c.score_after) for c in outcome.changes] == [(Decimal("0"), Decimal("2"))]
    item = next(r for r in api.get(f"/attempts/{body['attempt_id']}").get_json()["review"]
                if r["id"] == single["id"])
    # Still the options in the order the member was shown, and their own choice, now right.
    assert [o["text_html"] for o in item["options"]] == [o["text_html"] for o in single["options"]]
    assert item["your_answer"] == item["correct_answer"] == chosen["key"]
    assert item["correct"] and item["regraded"] and item["regraded_note"] == "按更正后的答案重新评分"
    assert "即按时上好党课" in item["explanation_html"]


def test_every_edit_is_a_new_version_and_an_identical_one_is_not(app, make):
    from pbschool.exams.models import QuestionVersion

    bank = _bank()
    question = db.session.scalar(select(Question).where(Question.type == "single"))
    assert question.version == 1
    import_bank_file(_csv(FIRST, OTHERS), "bank.csv", "组织生活题库")  # the same file again
    db.session.commit()
    assert db.session.scalar(select(func.count(QuestionVersion.id))) == 2
    admin = make.user(role="admin")
    services.save_question(bank, {"type": "single", "stem": question.stem, "answer": "A",
                                  "options": list(question.options), "score": "1", "difficulty": "3",
                                  "explanation": question.explanation}, question=question, actor=admin)
    db.session.commit()
    versions = db.session.scalars(select(QuestionVersion).where(QuestionVersion.question_id == question.id)
                                  .order_by(QuestionVersion.number)).all()
    assert [(v.number, v.answer) for v in versions] == [(1, "B"), (2, "A")]
    assert versions[1].created_by_id == admin.id and question.version == 2
    question.difficulty = 5  # not something a member sees: no new version
    question.category = "党章"
    db.session.commit()
    assert question.version == 2


def test_an_edit_while_the_attempt_runs_changes_neither_its_paper_nor_its_grading(app, make, bank):
    exam = make_exam(bank, points=0)
    member = make.user()
    attempt = services.start_attempt(exam, member)
    db.session.commit()
    slot = next(s for s in attempt.questions if s.question.type == "single")
    right = slot.question.kind.display(slot.question.answer, slot.option_order)
    paper_before = services.paper(attempt)
    slot.question.answer = next(k for k in "ABCD" if k != slot.question.answer)
    slot.question.stem = "改过的题干？"
    db.session.commit()
    assert services.paper(attempt) == paper_before
    services.save_answer(attempt, slot.question_id, right)
    services.submit_attempt(attempt)
    db.session.commit()
    graded = db.session.get(AttemptQuestion, slot.id)
    assert graded.score == graded.points and graded.graded_version_id == graded.version_id


def test_statistics_and_the_wrong_answer_book_show_the_version_shown(app, make, bank, client, auth):
    exam = make_exam(bank, points=0, review="explanations")
    member = make.user("wrongbook")
    attempt = services.start_attempt(exam, member)
    slot = next(s for s in attempt.questions if s.question.type == "single")
    original_stem = slot.question.stem
    wrong = next(k for k in "ABCD" if k != slot.question.answer)
    services.save_answer(attempt, slot.question_id, slot.question.kind.display(wrong, slot.option_order))
    services.submit_attempt(attempt)
    db.session.commit()
    slot.question.stem = "后来改写的题干？"
    db.session.commit()
    rows = stats.question_stats([db.session.get(Attempt, attempt.id)])
    row = next(r for r in rows if r["question_id"] == slot.question_id)
    assert row["question"].stem == original_stem
    auth.login("wrongbook")
    page = client.get("/exams/wrong-answers").get_data(as_text=True)
    assert original_stem in page and "后来改写的题干" not in page


def test_the_staff_answer_sheet_shows_the_version_the_member_saw(app, make, bank, client, auth):
    exam = make_exam(bank, points=0)
    member = make.user()
    attempt = services.start_attempt(exam, member)
    services.submit_attempt(attempt)
    db.session.commit()
    question = next(s.question for s in attempt.questions if s.question.type == "truefalse")
    original = question.stem
    question.stem = "改写后的判断题。"
    question.answer = not question.answer
    db.session.commit()
    make.user("boss", role="admin")
    auth.login("boss")
    page = client.get(f"/admin/attempts/{attempt.id}").get_data(as_text=True)
    assert original in page and "改写后的判断题" not in page
