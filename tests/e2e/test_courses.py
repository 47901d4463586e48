import datetime as dt

from pbschool import clock
from pbschool.courses import services
from pbschool.courses.models import Course, Lesson
from pbschool.extensions import db
from tests.e2e.conftest import ARTIFACTS, no_horizontal_scroll
from tests.factories import Factory


def _seed_course(with_lesson=True):
    course = Course(title="强根铸魂抓党建", summary="六讲党建入门", is_published=True)
    course.programme = services.find_programme("政工微课堂")
    db.session.add(course)
    if with_lesson:
        lesson = Lesson(course=course, title="第一讲 理论学习", minutes=30, state="published", position=1)
        services.set_lesson_body(lesson, "## 本课导读\n\n理论学习是党员的**必修课**。\n\n| 形式 | 次数 |\n|---|---|\n"
                                         "| 中心组集中学习 | 46 |\n| 干部学院 | 33 |")
        db.session.add(lesson)
    db.session.commit()
    return course


def test_member_reads_a_lesson_marks_it_done_and_the_hours_bar_moves(live_server, page, login):
    app = live_server.app
    app.config["HEARTBEAT_MAX_SECONDS"] = 3600
    with app.app_context():
        make = Factory()
        make.user("liuzq", name="刘志强", branch=make.branch("ZC1", "综采一队党支部"), job_post="采煤机司机")
        course = _seed_course()
        services.set_requirements(course, for_all=True)
        db.session.commit()
        db.session.remove()
    clock.pin(dt.datetime(2026, 5, 6, 1, 0))
    try:
        login(page, live_server, "liuzq")
        assert "0 / 32 学时" in page.locator(".learning-panel .hours-figures").inner_text()
        assert "强根铸魂抓党建" in page.locator(".learning-panel .todo").inner_text()
        page.click("text=去学习")
        page.click("text=强根铸魂抓党建")
        page.click("text=第一讲 理论学习")
        assert page.locator("h1").inner_text() == "第一讲 理论学习"
        assert "完成可得 1 学时" in page.locator(".lesson-facts").inner_text()
        assert page.locator(".prose table td").nth(1).inner_text() == "46"
        assert no_horizontal_scroll(page)
        button = page.locator("[data-done-button]")
        assert button.bounding_box()["height"] >= 44
        assert "还需学习约 15 分钟" in page.locator("[data-done-hint]").inner_text()
        button.click()
        assert "学习时间不足" in page.locator(".flash-warning").inner_text()

        # Sixteen minutes of reading later, the page's heartbeat (session cookie + CSRF header) reports them.
        clock.advance(minutes=16)
        reply = page.evaluate("""async () => {
            const token = document.querySelector('meta[name="csrf-token"]').content;
            const url = document.querySelector('[data-progress-url]').dataset.progressUrl;
            const r = await fetch(url, {method: 'POST', credentials: 'same-origin',
                headers: {'Content-Type': 'application/json', 'X-CSRFToken': token},
                body: JSON.stringify({seconds: 960})});
            return [r.status, await r.json()];
        }""")
        assert reply == [200, {"credited_seconds": 960, "completed": False, "required_seconds": 900}]
        page.click("[data-done-button]")
        assert "已完成本课时，获得 1 学时" in page.locator(".flash-success").inner_text()
        assert "本课时已计入 1 学时" in page.locator(".done-ok").inner_text()
        page.screenshot(path=str(ARTIFACTS / "lesson-done-375.png"), full_page=True)

        page.goto(live_server.url + "/")
        assert "1 / 32 学时" in page.locator(".learning-panel .hours-figures").inner_text()
        # 1 of 32 hours: the bar's width comes from a class (the CSP allows no style attribute)
        bar = page.locator(".learning-panel .progress > span")
        assert bar.get_attribute("class") == "pct-3"
        share = bar.evaluate("e => e.getBoundingClientRect().width / e.parentElement.getBoundingClientRect().width")
        assert 0.025 < share < 0.035
        assert page.locator(".learning-panel .todo").count() == 0  # the required course is finished
        assert no_horizontal_scroll(page)
    finally:
        clock.pin(None)


def test_a_lecturer_submits_a_lesson_and_an_admin_publishes_it(live_server, page, login):
    with live_server.app.app_context():
        make = Factory()
        make.user("lihm", name="李红梅", role="lecturer")
        make.user("wangjg", name="王建国", role="admin")
        make.user("liuzq", name="刘志强")
        _seed_course(with_lesson=False)
        db.session.remove()
    page.on("dialog", lambda dialog: dialog.accept())

    login(page, live_server, "lihm")
    page.goto(live_server.url + "/teach")
    page.click("text=写新课时")
    page.fill("input[name=title]", "班前会上讲党课")
    page.fill("input[name=minutes]", "12")
    page.locator("textarea[name=body]").press_sequentially("## 要点\n\n**安全第一**")
    page.wait_for_selector("[data-preview] strong")  # the live preview, rendered by the server
    assert page.locator("[data-preview] strong").inner_text() == "安全第一"
    assert no_horizontal_scroll(page)
    page.click("#lesson-form button[type=submit]")
    assert "课时已保存" in page.locator(".flash-success").inner_text()
    page.click("text=提交审核")
    assert "已提交审核" in page.locator(".flash-success").inner_text()
    assert page.locator("[data-lesson-state]").inner_text() == "待审核"
    page.click(".menu summary")
    page.click("text=退出登录")

    login(page, live_server, "wangjg")
    page.click(".menu summary")
    page.click(".menu-panel >> text=课程审核")
    page.click("text=班前会上讲党课")
    assert "安全第一" in page.locator(".prose").inner_text()
    page.click("button[value=publish]")
    assert "已发布《班前会上讲党课》" in page.locator(".flash-success").inner_text()
    page.screenshot(path=str(ARTIFACTS / "review-published-375.png"), full_page=True)
    page.context.clear_cookies()  # log out (the admin's long menu is tested elsewhere)

    login(page, live_server, "liuzq")
    page.goto(live_server.url + "/courses")
    page.click("text=强根铸魂抓党建")
    page.click("text=班前会上讲党课")
    assert "安全第一" in page.locator(".prose").inner_text()
    with live_server.app.app_context():
        assert db.session.query(Lesson).filter_by(title="班前会上讲党课").one().state == "published"
        db.session.remove()


def test_the_lesson_page_sends_heartbeats_while_visible(live_server, page, login):
    app = live_server.app
    app.config["HEARTBEAT_INTERVAL_SECONDS"] = 1
    with app.app_context():
        Factory().user("liuzq", name="刘志强")
        lesson_id = _seed_course().lessons[0].id
        db.session.remove()
    login(page, live_server, "liuzq")
    page.goto(f"{live_server.url}/lessons/{lesson_id}")
    with page.expect_response(lambda r: r.url.endswith(f"/api/v1/lessons/{lesson_id}/progress")) as beat:
        pass
    reply = beat.value
    assert reply.status == 200 and reply.request.headers.get("x-csrftoken")
    page.wait_for_function("Number(document.querySelector('[data-credited-minutes]').textContent) >= 0")
    with app.app_context():
        from pbschool.courses.models import LessonProgress

        progress = db.session.query(LessonProgress).one()
        assert 1 <= progress.credited_seconds <= 5
        db.session.remove()
