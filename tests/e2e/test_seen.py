"""Issue 15, what only a browser shows: at 375 px the points page is compact, 支部概览 in English has
no sideways scrolling, and small buttons are touch targets of at least 44 px."""

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
        secretary = make.user("secretary", role="secretary", name="张卫东", branch=branch)
        member = make.user("liuzq", name="刘志强", branch=branch)
        today = clock.now()
        for n in range(27):  # a busy member's month: 27 entries
            services.award(member, 1, f"参加义务劳动第 {n + 1} 次，清理巷道积水", actor=secretary,
                           occurred_at=today - dt.timedelta(hours=n))
        db.session.commit()
        db.session.remove()


def _fits_375(page):
    # a mobile context widens the layout viewport to the content, so compare with the phone's width
    return page.evaluate("document.documentElement.scrollWidth") <= 375


def _small_targets(page, selector):
    return page.evaluate("""(sel) => [...document.querySelectorAll(sel)]
        .filter(e => e.offsetParent !== null)
        .map(e => [e.innerText.trim(), Math.round(e.getBoundingClientRect().height)])
        .filter(([_t, h]) => h < 44)""", selector)


def test_the_pages_fit_a_phone_with_compact_entries_and_44px_targets(live_server, page, login):
    """Reproduction: 27 entries were 5,448 px at 375 px; 支部概览 in English overflowed to 392 px;
    只看必修, year arrows and footer links were under 44 px."""
    _seed(live_server.app)
    login(page, live_server, "liuzq")
    page.goto(live_server.url + "/points")
    table = page.locator("table.entries")
    assert table.locator("tbody tr").count() == 27
    height = table.bounding_box()["height"]
    assert height < 2200, height  # two short lines an entry, not four
    assert no_horizontal_scroll(page) and _fits_375(page)
    page.screenshot(path=str(ARTIFACTS / "points-entries-375.png"), full_page=True)
    for path in ("/courses", "/me/learning"):  # 只看必修; the year arrows
        page.goto(live_server.url + path)
        assert _small_targets(page, "a.button, button.button, .footer a") == [], path
    page.context.clear_cookies()
    login(page, live_server, "secretary")
    page.goto(live_server.url + "/reports/branch?lang=en")
    assert _fits_375(page), page.evaluate("document.documentElement.scrollWidth")
    assert page.locator("svg.line-chart").count() == 3
    assert _small_targets(page, "a.button, button.button, .footer a") == []
    page.screenshot(path=str(ARTIFACTS / "branch-overview-en-375.png"), full_page=True)
