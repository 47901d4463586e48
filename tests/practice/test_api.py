"""Practice through the API: papers never show answers, feedback at once, the first answer counts,
finishing awards once within the daily cap, other members' papers are 404, bad shapes are 400."""

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from pbschool import clock
from pbschool.extensions import db
from pbschool.points import services as points
from pbschool.points.models import LedgerEntry, PointRule
from tests.exams.conftest import QUESTIONS, make_bank
from tests.practice.conftest import a_wrong_answer, open_bank, right_answer


def start(api, **body):
    response = api.post("/practice", json={"mode": "daily", **body})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def answer_all(api, paper, right=True, how_many=None):
    for i, q in enumerate(paper["questions"]):
        good = right if how_many is None else i < how_many
        value = right_answer(paper["practice_id"], q) if good else a_wrong_answer(paper["practice_id"], q)
        reply = api.put(f"/practice/{paper['practice_id']}/answers/{q['id']}", json={"answer": value})
        assert reply.status_code == 200, reply.get_json()
        assert reply.get_json()["correct"] is good


def test_daily_paper_shows_no_answers_and_gives_feedback_at_once(api, make, practice_bank, pinned):
    api.token(make.user())
    paper = start(api)
    assert len(paper["questions"]) == 5
    text = str(paper)
    for q in paper["questions"]:
        assert set(q) >= {"id", "type", "stem_html", "options", "saved"}
        assert q["type"] != "short"
    assert "explanation" not in text and "correct" not in text and "answer" not in text
    q = paper["questions"][0]
    value = right_answer(paper["practice_id"], q)
    reply = api.put(f"/practice/{paper['practice_id']}/answers/{q['id']}", json={"answer": value})
    assert reply.status_code == 200
    body = reply.get_json()
    assert set(body) == {"correct", "answer", "explanation_html"}
    assert body["correct"] is True and body["answer"] == value
    assert reply.headers["Cache-Control"] == "no-store"


def test_first_answer_counts_and_repeats_are_idempotent(api, make, practice_bank, pinned):
    api.token(make.user())
    paper = start(api, count=1)
    q = paper["questions"][0]
    wrong = a_wrong_answer(paper["practice_id"], q)
    first = api.put(f"/practice/{paper['practice_id']}/answers/{q['id']}", json={"answer": wrong}).get_json()
    assert first["correct"] is False
    right = right_answer(paper["practice_id"], q)
    again = api.put(f"/practice/{paper['practice_id']}/answers/{q['id']}", json={"answer": right}).get_json()
    assert again == first  # the first answer counts
    done = api.post(f"/practice/{paper['practice_id']}/finish").get_json()
    assert done == {"correct": 0, "total": 1, "points_awarded": 0.0}


def test_finish_awards_once_and_the_daily_cap_holds_across_papers(api, make, practice_bank, pinned):
    member = make.user()
    api.token(member)
    paper = start(api, count=4)
    answer_all(api, paper)
    done = api.post(f"/practice/{paper['practice_id']}/finish").get_json()
    assert done == {"correct": 4, "total": 4, "points_awarded": 4.0}
    assert api.post(f"/practice/{paper['practice_id']}/finish").get_json() == done  # finish twice: once
    second = start(api, count=4)
    answer_all(api, second)
    assert api.post(f"/practice/{second['practice_id']}/finish").get_json()["points_awarded"] == 1.0
    third = start(api, count=3)
    answer_all(api, third)
    assert api.post(f"/practice/{third['practice_id']}/finish").get_json() == \
        {"correct": 3, "total": 3, "points_awarded": 0.0}
    assert points.balance(member) == Decimal("5.0")
    tasks = api.get("/me/tasks").get_json()
    row = next(i for i in tasks["items"] if i["rule"] == "daily_practice")
    assert row == {"rule": "daily_practice", "title": row["title"], "category": "学习", "points_today": 5.0,
                   "cap_today": 5.0, "left_today": 0.0}
    assert tasks["date"] == "2026-06-01" and tasks["streak"] == 1
    # the next Beijing day earns again
    clock.advance(seconds=24 * 3600)
    fourth = start(api, count=2)
    answer_all(api, fourth)
    assert api.post(f"/practice/{fourth['practice_id']}/finish").get_json()["points_awarded"] == 2.0
    assert api.get("/me/tasks").get_json()["streak"] == 2


def test_admin_changes_the_rule(api, make, practice_bank, pinned):
    points.ensure_default_rules()
    rule = db.session.scalar(select(PointRule).where(PointRule.kind == "daily_practice"))
    points.save_rule(rule, name=rule.name, category=rule.category, points="0.5", daily_cap="1.0")
    db.session.commit()
    api.token(make.user())
    paper = start(api, count=3)
    answer_all(api, paper)
    assert api.post(f"/practice/{paper['practice_id']}/finish").get_json()["points_awarded"] == 1.0


@pytest.mark.parametrize("mode", ["category", "wrong_book"])
def test_other_modes_earn_nothing(api, make, practice_bank, pinned, mode):
    member = make.user()
    api.token(member)
    if mode == "wrong_book":
        from pbschool.practice.models import WrongItem

        for q in practice_bank.questions[:2]:
            db.session.add(WrongItem(user_id=member.id, question_id=q.id, due_day=dt.date(2026, 6, 1)))
        db.session.commit()
        paper = start(api, mode=mode)
        assert len(paper["questions"]) == 2
    else:
        paper = start(api, mode=mode, category="党章")
        assert {q["id"] for q in paper["questions"]} == {q.id for q in practice_bank.questions if q.category == "党章"}
    answer_all(api, paper)
    assert api.post(f"/practice/{paper['practice_id']}/finish").get_json()["points_awarded"] == 0.0
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 0


def test_only_practice_banks_are_drawn(api, make, pinned):
    make_bank("考试专用题库")  # not opened to practice
    api.token(make.user())
    reply = api.post("/practice", json={"mode": "daily"})
    assert reply.status_code == 409 and reply.get_json()["error"]["code"] == "no_questions"
    opened = open_bank(make_bank("练习题库", questions=[(t, s + "？练习", o, a, c) for t, s, o, a, c in QUESTIONS]))
    paper = start(api, count=20)
    assert {q["id"] for q in paper["questions"]} == {q.id for q in opened.questions}


@pytest.mark.parametrize("body", [
    {"mode": "weekly"}, {"mode": 3}, {}, {"mode": "daily", "count": 0}, {"mode": "daily", "count": 21},
    {"mode": "daily", "count": "5"}, {"mode": "daily", "count": True}, {"mode": "category"},
    {"mode": "category", "category": "x" * 101},
])
def test_bad_start_is_400(api, make, practice_bank, pinned, body):
    api.token(make.user())
    reply = api.post("/practice", json=body)
    assert reply.status_code == 400, reply.get_json()
    assert set(reply.get_json()["error"]) >= {"code", "message"}


def test_wrong_shape_is_400_and_changes_nothing(api, make, practice_bank, pinned):
    api.token(make.user())
    paper = start(api, count=20)
    bad = {"single": ["A"], "multiple": "A", "truefalse": "对", "blank": "预防为主"}
    for q in paper["questions"]:
        url = f"/practice/{paper['practice_id']}/answers/{q['id']}"
        for value in (bad[q["type"]], None, {"x": 1}, "Z" * 6000):
            reply = api.put(url, json={"answer": value})
            assert reply.status_code == 400, (q["type"], value, reply.get_json())
        assert api.put(url, json={}).status_code == 400
        assert api.put(url, data="nope", content_type="application/json").status_code == 400
    assert api.put(f"/practice/{paper['practice_id']}/answers/999999", json={"answer": "A"}).status_code == 404
    assert api.post(f"/practice/{paper['practice_id']}/finish").get_json()["correct"] == 0


def test_another_members_practice_is_404(api, make, practice_bank, pinned):
    owner = make.user("owner")
    api.token(owner)
    paper = start(api, count=1)
    q = paper["questions"][0]
    for role in ("member", "secretary", "lecturer", "admin"):
        api.token(make.user(role=role))
        assert api.get(f"/practice/{paper['practice_id']}").status_code == 404
        assert api.put(f"/practice/{paper['practice_id']}/answers/{q['id']}",
                       json={"answer": right_answer(paper["practice_id"], q)}).status_code == 404
        assert api.post(f"/practice/{paper['practice_id']}/finish").status_code == 404
    api.token(owner)
    assert api.get(f"/practice/{paper['practice_id']}").get_json()["questions"][0]["saved"] is None


def test_answer_after_finish_is_409_unless_a_retry(api, make, practice_bank, pinned):
    api.token(make.user())
    paper = start(api, count=2)
    q1, q2 = paper["questions"]
    api.put(f"/practice/{paper['practice_id']}/answers/{q1['id']}",
            json={"answer": right_answer(paper["practice_id"], q1)})
    api.post(f"/practice/{paper['practice_id']}/finish")
    retry = api.put(f"/practice/{paper['practice_id']}/answers/{q1['id']}",
                    json={"answer": right_answer(paper["practice_id"], q1)})
    assert retry.status_code == 200 and retry.get_json()["correct"] is True
    late = api.put(f"/practice/{paper['practice_id']}/answers/{q2['id']}",
                   json={"answer": right_answer(paper["practice_id"], q2)})
    assert late.status_code == 409


def test_answer_is_checked_against_the_version_shown(api, make, practice_bank, pinned):
    from pbschool.exams import services as exams

    api.token(make.user())
    target = next(q for q in practice_bank.questions if q.stem.startswith("党的根本组织原则"))
    paper = start(api, count=20)
    q = next(x for x in paper["questions"] if x["id"] == target.id)
    shown_right = right_answer(paper["practice_id"], q)
    # the key is corrected after the paper was drawn: the member is judged by what they were shown
    exams.save_question(target.bank, {"type": "single", "stem": target.stem, "options": target.options,
                                      "answer": "C", "category": target.category}, question=target)
    db.session.commit()
    reply = api.put(f"/practice/{paper['practice_id']}/answers/{q['id']}", json={"answer": shown_right})
    assert reply.get_json()["correct"] is True


def test_tasks_shape_and_no_store(api, make, pinned):
    api.token(make.user())
    reply = api.get("/me/tasks")
    assert reply.status_code == 200 and reply.headers["Cache-Control"] == "no-store"
    body = reply.get_json()
    assert body["date"] == "2026-06-01" and body["streak"] == 0
    rules = {i["rule"]: i for i in body["items"]}
    assert rules["lesson_completed"] == {"rule": "lesson_completed", "title": "完成课程学习", "category": "学习",
                                         "points_today": 0.0, "cap_today": 5.0, "left_today": 5.0}
    assert rules["meeting_attended"]["cap_today"] is None and rules["meeting_attended"]["left_today"] is None


def test_tasks_use_the_points_caps(api, make, pinned):
    member = make.user()
    for i in range(3):
        points.record_event(member, "lesson_completed", f"lesson:{i}")
    points.record_event(member, "comment_approved", "comment:1")
    db.session.commit()
    api.token(member)
    rules = {i["rule"]: i for i in api.get("/me/tasks").get_json()["items"]}
    assert (rules["lesson_completed"]["points_today"], rules["lesson_completed"]["left_today"]) == (3.0, 2.0)
    assert (rules["comment_approved"]["points_today"], rules["comment_approved"]["left_today"]) == (0.5, 1.5)


def test_beijing_day_decides_today(api, make, practice_bank):
    clock.pin(dt.datetime(2026, 6, 1, 15, 30))  # 23:30 in Beijing
    try:
        member = make.user()
        api.token(member)
        paper = start(api, count=5)
        answer_all(api, paper)
        api.post(f"/practice/{paper['practice_id']}/finish")
        clock.pin(dt.datetime(2026, 6, 1, 16, 30))  # 00:30 the next Beijing day
        body = api.get("/me/tasks").get_json()
        assert body["date"] == "2026-06-02"
        assert next(i for i in body["items"] if i["rule"] == "daily_practice")["points_today"] == 0.0
        assert body["streak"] == 1  # yesterday studied, today not yet: the streak stands
    finally:
        clock.pin(None)
