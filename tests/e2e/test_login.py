from pbschool.extensions import db
from tests.e2e.conftest import ARTIFACTS, no_horizontal_scroll
from tests.factories import Factory


def test_member_logs_in_on_a_phone_and_sees_the_chinese_home_page(live_server, page, login):
    with live_server.app.app_context():
        make = Factory()
        branch = make.branch("ZC1", "综采一队党支部")
        make.user("liuzq", name="刘志强", branch=branch, job_post="采煤机司机")
        db.session.remove()

    page.goto(live_server.url + "/")
    assert page.url.endswith("/login?next=%2F")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "登录网上党校"
    page.screenshot(path=str(ARTIFACTS / "login-375.png"), full_page=True)

    page.fill("input[name=username]", "liuzq")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert "用户名或密码不正确" in page.locator(".error").inner_text()

    login(page, live_server, "liuzq")
    assert page.locator("h1").first.inner_text() == "您好，刘志强"
    assert "综采一队党支部" in page.locator(".hello").inner_text()
    assert no_horizontal_scroll(page)
    # The submit button and the menu are comfortable to tap.
    box = page.locator(".menu summary").bounding_box()
    assert box["height"] >= 44 and box["width"] >= 44
    page.screenshot(path=str(ARTIFACTS / "home-member-375.png"), full_page=True)

    page.click(".menu summary")
    page.click("text=退出登录")
    page.wait_for_url("**/login")
    assert "您已退出登录" in page.content()
