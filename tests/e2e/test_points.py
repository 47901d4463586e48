"""Points in a phone browser: the member's chart, a meeting that moves points, publishing a month."""

import datetime as dt

from pbschool import clock
from pbschool.extensions import db
from pbschool.points import services
from tests.e2e.conftest import ARTIFACTS, no_horizontal_scroll
from tests.factories import Factory


def _seed(app):
    with app.app_context():
        make = Factory()
        branch = make.branch("ZC1", "综采一队党支部")
        make.user("secretary", role="secretary", name="张卫东", branch=branch)
        member = make.user("liuzq", name="刘志强", branch=branch)
        make.user("chenxy", name="陈晓燕", branch=branch)
        make.user("admin", role="admin", name="王建国")
        last_month = clock.now().replace(day=1) - dt.timedelta(days=5)
        services.record_event(member, "exam_passed", "attempt:1", points=3, value=92, occurred_at=last_month,
                              reason="通过安全规程考试")
        services.record_event(member, "lesson_completed", "lesson:1:user:1", value=1, reason="完成《安全确认卡》")
        db.session.commit()
        db.session.remove()


def test_member_sees_points_with_chart(live_server, page, login):
    _seed(live_server.app)
    login(page, live_server, "liuzq")
    assert "本月积分" in page.locator(".points-panel").inner_text()
    page.goto(live_server.url + "/points")
    assert page.locator("[data-testid=balance]").inner_text() == "4.0"
    chart = page.locator("[data-testid=points-chart] svg")
    assert chart.is_visible()
    assert page.locator("[data-testid=points-chart] circle").count() == 12  # a line chart, a point a month
    assert "通过安全规程考试" in page.content()
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "points-member-375.png"), full_page=True)


def test_secretary_records_a_meeting_and_attendees_points_move(live_server, page, login):
    _seed(live_server.app)
    login(page, live_server, "secretary")
    page.goto(live_server.url + "/meetings/new")
    assert no_horizontal_scroll(page)
    page.select_option("select[name=kind]", "theme_day")
    page.fill("input[name=topic]", "学习《煤矿安全规程》")
    page.check("label:has-text('刘志强')")
    page.click("button:has-text('保存并记积分')")
    page.wait_for_load_state("domcontentloaded")
    assert "1 名出席党员获得积分" in page.content()
    page.screenshot(path=str(ARTIFACTS / "meeting-recorded-375.png"), full_page=True)
    page.click(".attendee-list a:has-text('刘志强')")
    assert page.locator("[data-testid=balance]").inner_text() == "9.0"
    assert "参加主题党日" in page.content()


def test_admin_publishes_a_month_and_the_board_appears(live_server, page, login):
    _seed(live_server.app)
    login(page, live_server, "admin")
    page.goto(live_server.url + "/points/admin")
    last_month = services.period_of(clock.now().replace(day=1) - dt.timedelta(days=5))
    page.select_option("select[name=pub-period]", last_month)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('发布该月')")
    page.wait_for_load_state("domcontentloaded")
    assert "已发布" in page.content()
    page.goto(live_server.url + f"/points/board?period={last_month}")
    assert "已公布" in page.locator(".page-head").inner_text()
    assert "刘志强" in page.locator("table.board").inner_text()
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "points-board-375.png"), full_page=True)


def test_overview_and_admin_pages_fit_a_phone(live_server, page, login):
    _seed(live_server.app)
    login(page, live_server, "admin")
    for path in ("/reports/overview", "/points/admin", "/points/board", "/meetings", "/points/honours"):
        page.goto(live_server.url + path)
        assert no_horizontal_scroll(page), path
    page.goto(live_server.url + "/reports/overview")
    assert "综采一队党支部" in page.locator("[data-testid=branches]").inner_text()
    page.screenshot(path=str(ARTIFACTS / "overview-admin-375.png"), full_page=True)
    page.context.clear_cookies()
    login(page, live_server, "secretary")
    for path in ("/reports/branch", "/points/award", "/meetings"):
        page.goto(live_server.url + path)
        assert no_horizontal_scroll(page), path
    page.goto(live_server.url + "/reports/branch")
    assert "刘志强" in page.content()
    page.screenshot(path=str(ARTIFACTS / "branch-secretary-375.png"), full_page=True)
