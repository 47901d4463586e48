"""The 错题本: exam wrong answers enter once the attempt's review shows answers (never earlier), the
spaced schedule (1, 3, 7 days), mastery after right answers on two different days."""

import datetime as dt

from sqlalchemy import select

from pbschool import clock
from pbschool.exams import services as exams
from pbschool.extensions import db
from pbschool.practice import services
from pbschool.practice.models import WrongItem
from tests.exams.conftest import T0, make_exam
from tests.practice.conftest import a_wrong_answer, right_answer


def sit_wrong(member, exam):
    """An attempt with every question answered wrong (left empty)."""
    attempt = exams.start_attempt(exam, member)
    exams.submit_attempt(attempt)
    db.session.commit()
    return attempt


def items(member):
    return db.session.scalars(select(WrongItem).where(WrongItem.user_id == member.id)).all()


def test_wrong_answers_wait_while_attempts_remain(make, bank, pinned):
    member = make.user()
    exam = make_exam(bank, max_attempts=2)
    sit_wrong(member, exam)
    assert services.sync_wrong_book(member) == 0  # another attempt would be given the answers
    sit_wrong(member, exam)
    assert services.sync_wrong_book(member) == len(bank.questions)
    assert services.sync_wrong_book(member) == 0  # once


def test_review_when_close_waits_for_the_close(make, bank, pinned):
    member = make.user()
    exam = make_exam(bank, review_when="close", closes_at=T0 + dt.timedelta(hours=2))
    sit_wrong(member, exam)
    assert services.sync_wrong_book(member) == 0
    clock.advance(seconds=3 * 3600)
    assert services.sync_wrong_book(member) == len(bank.questions)


def test_score_only_review_never_enters(make, bank, pinned):
    member = make.user()
    sit_wrong(member, make_exam(bank, review="score"))
    assert services.sync_wrong_book(member) == 0


def test_the_page_leaks_nothing_before_review(auth, client, make, bank, pinned):
    member = make.user()
    exam = make_exam(bank, max_attempts=2)
    sit_wrong(member, exam)
    auth.login(member.username)
    page = client.get("/exams/wrong-answers").get_data(as_text=True)
    assert "还没有错题" in page and "实现共产主义" not in page
    assert client.post("/practice/start", data={"mode": "wrong_book"}).status_code in (302, 400)
    assert items(member) == []


def test_spaced_schedule_and_mastery(api, make, bank, pinned):
    member = make.user()
    sit_wrong(member, make_exam(bank))
    api.token(member)
    page_due = lambda: len(services.due_items(member))  # noqa: E731
    services.sync_wrong_book(member)
    db.session.commit()
    assert page_due() == len(bank.questions)

    def review(right):
        paper = api.post("/practice", json={"mode": "wrong_book", "count": 20}).get_json()
        target = next(q for q in paper["questions"] if q["id"] == bank.questions[0].id)
        value = right_answer(paper["practice_id"], target) if right else a_wrong_answer(paper["practice_id"], target)
        api.put(f"/practice/{paper['practice_id']}/answers/{target['id']}", json={"answer": value})
        api.post(f"/practice/{paper['practice_id']}/finish")
        db.session.expire_all()
        return db.session.scalar(select(WrongItem).where(WrongItem.user_id == member.id,
                                                          WrongItem.question_id == target["id"]))

    day0 = dt.date(2026, 6, 1)
    item = review(right=False)
    assert item.due_day == day0 + dt.timedelta(days=1) and item.right_days == 0
    clock.advance(seconds=24 * 3600)
    item = review(right=True)
    assert item.due_day == day0 + dt.timedelta(days=1 + 3) and item.right_days == 1 and item.mastered_at is None
    # not due before its day: a 错题本 paper that day does not draw it
    clock.advance(seconds=24 * 3600)
    assert bank.questions[0].id not in [i.question_id for i in services.due_items(member)]
    clock.advance(seconds=2 * 24 * 3600)
    item = review(right=True)
    assert item.mastered_at is not None  # right on two different days: 已掌握
    assert bank.questions[0].id not in [i.question_id for i in services.book(member)[0]]


def test_two_rights_the_same_day_are_not_mastery(api, make, bank, pinned):
    member = make.user()
    sit_wrong(member, make_exam(bank))
    services.sync_wrong_book(member)
    db.session.commit()
    api.token(member)
    for _ in range(2):
        paper = api.post("/practice", json={"mode": "wrong_book", "count": 20}).get_json()
        for q in paper["questions"]:
            api.put(f"/practice/{paper['practice_id']}/answers/{q['id']}",
                    json={"answer": right_answer(paper["practice_id"], q)})
        api.post(f"/practice/{paper['practice_id']}/finish")
        if api.post("/practice", json={"mode": "wrong_book"}).status_code == 409:
            break
    db.session.expire_all()
    assert all(i.mastered_at is None and i.right_days == 1 for i in items(member))
    assert api.post("/practice", json={"mode": "wrong_book"}).get_json()["error"]["code"] == "nothing_due"


def test_wrong_book_page_shows_due_items_and_the_button(auth, client, make, bank, pinned):
    member = make.user()
    sit_wrong(member, make_exam(bank))
    auth.login(member.username)
    page = client.get("/exams/wrong-answers").get_data(as_text=True)
    assert "练习错题" in page and "今日复习" in page and "实现共产主义" in page
    reply = client.post("/practice/start", data={"mode": "wrong_book", "csrf_token": ""})
    assert reply.status_code in (302, 400)


def test_mastered_item_comes_back_when_a_later_exam_gets_it_wrong(make, bank, pinned):
    member = make.user()
    sit_wrong(member, make_exam(bank))
    services.sync_wrong_book(member)
    for item in items(member):
        item.mastered_at = clock.now()
    db.session.commit()
    assert services.sync_wrong_book(member) == 0  # the same exam slot does not bring it back
    sit_wrong(member, make_exam(bank, title="补考"))
    assert services.sync_wrong_book(member) == len(bank.questions)
    assert all(i.mastered_at is None and i.right_days == 0 for i in items(member))
