"""Notifications in a phone browser: the unread badge, the list, 全部已读; a secretary's announcement."""

from pbschool.extensions import db
from pbschool.notices import services
from tests.e2e.conftest import ARTIFACTS, no_horizontal_scroll
from tests.factories import Factory


def _seed(app):
    with app.app_context():
        make = Factory()
        branch = make.branch("ZC1", "综采一队党支部")
        secretary = make.user("secretary", role="secretary", name="张卫东", branch=branch)
        member = make.user("liuzq", name="刘志强", branch=branch)
        services.publish_announcement(secretary, title="关于开展“安全生产月”主题党日的通知",
                                      body="请全体党员于周五 **16:00** 到会议室参加。", audience="branches",
                                      branch_ids=[branch.id])
        services.month_published("2026-10", [(member.id, member.branch_id)])
        db.session.commit()
        db.session.remove()


def test_member_sees_the_badge_reads_all_and_it_goes_to_zero(live_server, page, login):
    _seed(live_server.app)
    login(page, live_server, "liuzq")
    badge = page.locator("[data-testid=unread-badge]")
    assert badge.inner_text() == "2"
    page.screenshot(path=str(ARTIFACTS / "notifications-badge-375.png"))
    page.click("[data-testid=bell]")
    page.wait_for_url("**/notifications")
    items = page.locator("[data-testid=notifications] li")
    assert items.count() == 2
    assert "安全生产月" in page.content()
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "notifications-list-375.png"), full_page=True)
    page.click("[data-testid=read-all]")
    page.wait_for_load_state("domcontentloaded")
    assert page.locator("[data-testid=unread-badge]").count() == 0
    assert page.locator(".note.unread").count() == 0
    page.goto(live_server.url + "/")
    assert page.locator("[data-testid=unread-badge]").count() == 0
    page.screenshot(path=str(ARTIFACTS / "notifications-read-375.png"))


def test_a_member_opens_one_and_the_secretary_sees_who_has_not_read(live_server, page, login):
    _seed(live_server.app)
    login(page, live_server, "liuzq")
    page.click("[data-testid=bell]")
    page.click("text=安全生产月")
    page.wait_for_url("**/announcements/*")
    assert "16:00" in page.locator("[data-testid=announcement-body] strong").inner_text()
    assert page.locator("[data-testid=unread-badge]").inner_text() == "1"
    page.screenshot(path=str(ARTIFACTS / "announcement-member-375.png"), full_page=True)
    page.context.clear_cookies()
    login(page, live_server, "secretary")
    page.goto(live_server.url + "/announcements/new")
    page.fill("input[name=title]", "支部党员大会通知")
    page.fill("textarea[name=body]", "本周四召开支部党员大会。")
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "announcement-form-375.png"), full_page=True)
    page.click("button:has-text('发布')")
    page.wait_for_url("**/announcements/*")
    readers = page.locator("[data-testid=readership]")
    assert "刘志强" in readers.inner_text()
    assert readers.locator("svg").is_visible()
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "announcement-readership-375.png"), full_page=True)
    page.goto(live_server.url + "/announcements")
    assert page.locator("[data-testid=announcements] li").count() == 2
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "announcements-list-375.png"), full_page=True)
