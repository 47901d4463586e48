"""A member sits an exam on a 375 px phone; an unfinished attempt is graded by the sweep."""

import datetime as dt

from sqlalchemy import select

from pbschool import clock
from pbschool.exams import services
from pbschool.exams.models import Answer, Attempt, AttemptQuestion
from pbschool.extensions import db
from tests.e2e.conftest import ARTIFACTS, no_horizontal_scroll
from tests.exams.conftest import QUESTIONS, make_bank, make_exam, right_value
from tests.factories import Factory

MORE = [
    ("single", "“三会一课”中的“一课”是指？", ["党课", "团课", "安全课", "技术课"], "A", "组织生活"),
    ("truefalse", "支部委员会一般每月召开一次。", [], "对", "组织生活"),
    ("multiple", "煤矿“一通三防”包括哪些？", ["通风", "防瓦斯", "防煤尘", "防灭火"], "ABCD", "安全"),
    ("single", "入党誓词中“永不叛党”之前是？", ["严守党的纪律", "努力工作", "服从分配", "遵纪守法"], "A", "党章"),
]


def _seed(app, questions=10, time_limit=600):
    with app.app_context():
        make = Factory()
        branch = make.branch("ZC1", "综采一队党支部")
        make.user("liuzq", name="刘志强", branch=branch, job_post="采煤机司机")
        bank = make_bank(questions=(QUESTIONS + MORE)[:questions])
        exam = make_exam(bank, time_limit=time_limit, shuffle=True, points=2)
        exam_id = exam.id
        db.session.remove()
    return exam_id


def _answers(app, attempt_id):
    with app.app_context():
        slots = db.session.scalars(select(AttemptQuestion).where(AttemptQuestion.attempt_id == attempt_id)).all()
        out = {slot.question_id: (slot.question.type, right_value(slot)) for slot in slots}
        db.session.remove()
    return out


def _fits(page):
    """Nothing wider than the 375 px phone (a mobile viewport would otherwise zoom out to fit)."""
    return page.evaluate("document.documentElement.scrollWidth") <= 375


def _give(section, qtype, value):
    """Answer one question on the page the way a member would: tick, or type into each blank."""
    if qtype == "single":
        section.locator(f"input[value='{value}']").check()
    elif qtype == "truefalse":
        section.locator(f"input[value='{'true' if value else 'false'}']").check()
    elif qtype == "multiple":
        for key in value:
            section.locator(f"input[value='{key}']").check()
    elif qtype == "blank":
        inputs = section.locator("input[type=text]")
        for i, text in enumerate(value):
            inputs.nth(i).fill(text)
        inputs.nth(0).dispatch_event("change")


def _saved(page):
    from playwright.sync_api import expect

    expect(page.locator("#save-state")).to_have_text("已保存")


def _start(page, live_server, login, exam_id):
    login(page, live_server, "liuzq")
    page.goto(live_server.url + "/exams")
    assert no_horizontal_scroll(page) and _fits(page)
    page.screenshot(path=str(ARTIFACTS / "exam-list-375.png"), full_page=True)
    page.click("text=党章党规知识测试")
    page.screenshot(path=str(ARTIFACTS / "exam-detail-375.png"), full_page=True)
    page.click("text=开始考试")
    page.wait_for_url("**/start")  # 考试须知 before the clock starts
    assert no_horizontal_scroll(page) and _fits(page)
    page.screenshot(path=str(ARTIFACTS / "exam-notice-375.png"), full_page=True)
    page.check("#agreed")
    page.click("button:has-text('开始答题')")
    page.wait_for_url("**/attempts/*")
    return int(page.url.rsplit("/", 1)[1])


def test_member_sits_a_ten_question_exam_and_sees_the_score(live_server, page, login):
    exam_id = _seed(live_server.app)
    attempt_id = _start(page, live_server, login, exam_id)
    answers = _answers(live_server.app, attempt_id)
    assert len(answers) == 10
    assert page.locator(".exam-bar").is_visible()
    assert page.locator("#save-state").inner_text() == "已保存"
    assert ":" in page.locator("#countdown").inner_text()
    assert page.locator(".question:visible").count() == 1  # one question per screen on a phone
    assert page.locator("#answer-card .cell").count() == 10
    assert no_horizontal_scroll(page) and _fits(page)
    page.screenshot(path=str(ARTIFACTS / "exam-sitting-375.png"), full_page=True)

    for index in range(10):
        section = page.locator(".question.current")
        qid = int(section.get_attribute("data-qid"))
        qtype, value = answers[qid]
        _give(section, qtype, value)
        if index < 9:
            section.locator("button.next").click()
    _saved(page)
    assert page.locator("#answer-card .cell.answered").count() == 10

    with live_server.app.app_context():
        assert len(db.session.scalars(select(Answer).where(Answer.attempt_id == attempt_id)).all()) == 10
        db.session.remove()

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#submit-exam")
    page.wait_for_url("**/result")
    assert "20.0" in page.locator("#score").inner_text()
    assert "通过" in page.content()
    assert "获得 2.0 积分" in page.content()
    assert no_horizontal_scroll(page) and _fits(page)
    page.screenshot(path=str(ARTIFACTS / "exam-result-375.png"), full_page=True)
    page.goto(live_server.url + "/exams")
    assert "我的考试记录" in page.content()
    page.screenshot(path=str(ARTIFACTS / "exam-list-after-375.png"), full_page=True)


def test_submit_confirmation_names_the_unanswered_count(live_server, page, login):
    exam_id = _seed(live_server.app, questions=4)
    _start(page, live_server, login, exam_id)
    messages = []

    def dismiss(dialog):
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.click("#submit-exam")
    for _ in range(50):
        if messages:
            break
        page.wait_for_timeout(100)
    assert messages and "还有 4 道题未作答" in messages[0]
    assert "/attempts/" in page.url and not page.url.endswith("/result")


def test_time_runs_out_with_the_page_closed_and_the_sweep_grades_it(live_server, page, login):
    exam_id = _seed(live_server.app, questions=4, time_limit=60)
    attempt_id = _start(page, live_server, login, exam_id)
    answers = _answers(live_server.app, attempt_id)
    section = page.locator(".question.current")
    qid = int(section.get_attribute("data-qid"))
    qtype, value = answers[qid]
    _give(section, qtype, value)
    _saved(page)
    page.close()

    app = live_server.app
    try:
        with app.app_context():
            clock.pin(dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=2))
            assert services.sweep() == 1
            attempt = db.session.get(Attempt, attempt_id)
            assert attempt.state == "submitted" and attempt.is_auto_submitted
            assert attempt.score == 2  # the one saved answer counts
            db.session.remove()
    finally:
        clock.pin(None)


def test_admin_sees_results_and_the_statistics_report_on_a_phone(live_server, page, login):
    exam_id = _seed(live_server.app, questions=6)
    with live_server.app.app_context():
        from pbschool.exams.models import Exam

        make = Factory()
        make.user("boss", role="admin", name="王建国")
        exam = db.session.get(Exam, exam_id)
        for good in (True, False, True):
            attempt = services.start_attempt(exam, make.user())
            for slot in attempt.questions:
                if good:
                    services.save_answer(attempt, slot.question_id, right_value(slot))
            services.submit_attempt(attempt)
        db.session.commit()
        db.session.remove()
    login(page, live_server, "boss")
    page.goto(f"{live_server.url}/admin/exams/{exam_id}/results")
    assert page.locator("svg.chart").is_visible()
    assert "66.7%" in page.locator("#pass-rates").inner_text()
    assert no_horizontal_scroll(page) and _fits(page)
    page.screenshot(path=str(ARTIFACTS / "exam-results-375.png"), full_page=True)
    page.click("text=试题分析")
    assert page.locator("#question-stats tbody tr").count() == 6
    assert "66.7%" in page.locator("#question-stats").inner_text()
    assert no_horizontal_scroll(page) and _fits(page)
    page.screenshot(path=str(ARTIFACTS / "exam-statistics-375.png"), full_page=True)
    for path, name in (("/admin/banks", "banks"), ("/admin/banks/1", "bank"),
                       ("/admin/banks/1/questions/new", "question-form"), ("/admin/banks/import", "bank-import"),
                       ("/admin/exams", "admin-exams"), ("/admin/exams/new", "exam-form"),
                       (f"/admin/exams/{exam_id}", "admin-exam"), (f"/admin/exams/{exam_id}/marking", "marking")):
        page.goto(live_server.url + path)
        assert no_horizontal_scroll(page) and _fits(page), path
        page.screenshot(path=str(ARTIFACTS / f"exam-{name}-375.png"), full_page=True)


def test_a_save_lost_to_the_network_is_retried_until_it_lands(live_server, page, login):
    from playwright.sync_api import expect

    exam_id = _seed(live_server.app, questions=4)
    attempt_id = _start(page, live_server, login, exam_id)
    failed = []

    def flaky(route):
        if not failed:
            failed.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route("**/api/v1/attempts/*/answers/*", flaky)
    section = page.locator(".question.current")
    section.locator("input").first.check()
    expect(page.locator("#save-state")).to_have_text("未保存，正在重试")
    expect(page.locator("#save-state")).to_have_text("已保存", timeout=8000)
    assert failed
    with live_server.app.app_context():
        assert db.session.scalars(select(Answer).where(Answer.attempt_id == attempt_id)).first() is not None
        db.session.remove()


def test_a_long_paper_opens_the_answer_card_on_demand_on_a_phone(live_server, page, login):
    with live_server.app.app_context():
        make = Factory()
        make.user("liuzq", name="刘志强", branch=make.branch("ZC1", "综采一队党支部"))
        rows = QUESTIONS + MORE
        first = make_bank("题库一", questions=rows)
        second = make_bank("题库二", questions=[(t, "（二）" + s, o, a, c) for t, s, o, a, c in rows])
        exam = services.create_exam({
            "title": "党章党规知识测试", "time_limit_seconds": 1800, "max_attempts": 1, "pass_score": 60,
            "points_on_pass": 0, "sections": [{"bank": first, "count": 10, "points_each": 1},
                                              {"bank": second, "count": 10, "points_each": 1}]})
        db.session.commit()
        exam_id = exam.id
        db.session.remove()
    _start(page, live_server, login, exam_id)
    assert page.locator("#answer-card").is_hidden()
    page.click("#card-toggle")
    assert page.locator("#answer-card").is_visible()
    page.click("#answer-card .cell >> text=15")
    assert page.locator(".question.current").get_attribute("id") == "q-15"
    assert page.locator("#answer-card").is_hidden()
    assert no_horizontal_scroll(page) and _fits(page)


def test_the_exam_works_without_javascript(live_server, browser, login):
    exam_id = _seed(live_server.app, questions=4)
    context = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN",
                                  java_script_enabled=False)
    page = context.new_page()
    try:
        attempt_id = _start(page, live_server, login, exam_id)
        assert page.locator(".question:visible").count() == 4  # all on one page without script
        answers = _answers(live_server.app, attempt_id)
        for qid, (qtype, value) in answers.items():
            section = page.locator(f".question[data-qid='{qid}']")
            _give(section, qtype, value)
        page.click("button[value=submit]")
        page.wait_for_url("**/result")
        assert "8.0" in page.locator("#score").inner_text()
        assert no_horizontal_scroll(page) and _fits(page)
    finally:
        context.close()


def test_countdown_warns_at_five_and_one_minute_and_submits_at_zero(live_server, page, login):
    from playwright.sync_api import expect

    exam_id = _seed(live_server.app, questions=4, time_limit=6 * 60)
    page.clock.install()
    _start(page, live_server, login, exam_id)
    warning = page.locator("#time-warning")
    assert warning.is_hidden()
    page.clock.run_for("01:05")
    expect(warning).to_have_text("距离交卷还有 5 分钟")
    assert "low" in page.locator("#countdown").get_attribute("class")
    page.clock.run_for("04:00")
    expect(warning).to_contain_text("1 分钟")
    page.clock.run_for("01:00")
    page.wait_for_url("**/result")
    assert "0.0" in page.locator("#score").inner_text()
