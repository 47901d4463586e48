"""The daily practice on a phone: from the home page's tasks to the points, feedback at once per
question (practice.js), and the home's tasks showing the points afterwards."""

from sqlalchemy import select

from pbschool.extensions import db
from pbschool.practice.models import PracticeBank, PracticeQuestion
from tests.e2e.conftest import ARTIFACTS, no_horizontal_scroll
from tests.exams.conftest import make_bank
from tests.factories import Factory


def _seed(app):
    with app.app_context():
        make = Factory()
        branch = make.branch("ZC1", "综采一队党支部")
        make.user("liuzq", name="刘志强", branch=branch)
        bank = make_bank()
        for q in bank.questions:
            q.explanation = "出自**党章**第一章。"
        db.session.add(PracticeBank(bank_id=bank.id))
        db.session.commit()
        db.session.remove()


def _right(app, practice_id):
    with app.app_context():
        out = []
        for slot in db.session.scalars(select(PracticeQuestion).where(PracticeQuestion.practice_id == practice_id)
                                       .order_by(PracticeQuestion.position)):
            shown = slot.shown
            if shown.type == "blank":
                value = [alts[0] for alts in shown.answer]
            else:
                value = shown.kind.display(shown.answer, slot.option_order)
            out.append((slot.question_id, shown.type, value))
        db.session.remove()
        return out


def test_daily_practice_from_home_to_points(live_server, page, login):
    _seed(live_server.app)
    login(page, live_server, "liuzq")
    tasks = page.locator("#today-tasks")
    assert "今日任务" in tasks.inner_text()
    assert tasks.locator("[data-rule=daily_practice] .task-points").inner_text() == "0.0"
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "practice-home-before-375.png"), full_page=True)
    page.click("#go-practice")
    page.click("#start-daily")
    page.wait_for_selector("#practice")
    assert no_horizontal_scroll(page)
    practice_id = int(page.locator("#practice").get_attribute("data-practice"))
    for qid, qtype, value in _right(live_server.app, practice_id):
        section = page.locator(f"section[data-qid='{qid}']")
        if qtype == "blank":
            for i, text in enumerate(value):
                section.locator("input[type=text]").nth(i).fill(text)
        elif qtype == "multiple":
            for key in value:
                section.locator(f"input[value='{key}']").check()
        elif qtype == "truefalse":
            section.locator(f"input[value='{'true' if value else 'false'}']").check()
        else:
            section.locator(f"input[value='{value}']").check()
        section.locator(".check-answer").click()
        feedback = section.locator(".feedback")
        feedback.wait_for(state="visible")
        assert "回答正确" in feedback.inner_text()
        assert "党章" in feedback.locator(".explanation").inner_text()
    assert "已答 5 / 5" in page.locator("#progress").inner_text()
    page.screenshot(path=str(ARTIFACTS / "practice-feedback-375.png"), full_page=True)
    page.click("#finish")
    page.wait_for_selector("#points-awarded")
    assert "获得 5.0 积分" in page.locator("#points-awarded").inner_text()
    assert no_horizontal_scroll(page)
    page.locator("#result").screenshot(path=str(ARTIFACTS / "practice-points-375.png"))
    page.click("#result a:has-text('返回首页')")
    page.wait_for_selector("#today-tasks")
    row = page.locator("#today-tasks [data-rule=daily_practice]")
    assert row.locator(".task-points").inner_text() == "5.0"
    assert "已满" in row.inner_text()
    assert "连续学习 1 天" in page.locator("#streak").inner_text()
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "practice-home-after-375.png"), full_page=True)
