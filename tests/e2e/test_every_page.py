"""Every page as people see it: each role signs in, and every page its menus reach is visited at 375 px
(a phone) and 1366 px (an office PC), in Chinese and in English, on the demo organisation.

A page fails on:
- ``status``: an HTTP status of 400 or more (a menu never leads to a refusal or an error);
- ``sideways``: ``document.documentElement.scrollWidth`` wider than the viewport (sideways scrolling);
- ``title``: a ``<title>`` holding markup (``<`` or ``>``) or longer than 120 characters;
- ``above-header``: anything rendered before the site header (an element in ``<body>`` before
  ``header.topbar`` with a box of non-zero size), or a header not at the top of the page;
- ``small-tap``: a visible tap target under 44 px tall (43.5 px allowed for sub-pixel layout). Tap
  targets are: ``button``; ``input`` of type submit, button or reset; ``a.button``; ``[role=button]``;
  ``summary``; ``.tile``; the links of the top bar, the menu and its dropdowns
  (``.topnav a``, ``.menu-panel a``); ``.pager a``; ``.footer a``; the to-do panel's links. Visible
  means a box of non-zero size, not ``visibility: hidden``, not inside a closed ``<details>``. Links
  inside running text are not tap targets here (WCAG 2.5.8's inline exception).

One server, one browser, one context per role and size (both languages in it); the screenshots land in
``test-artifacts/every-page/`` for a person to look at. A page another helper is fixing is marked
``xfail(strict=False)`` with the check it fails (see ``KNOWN``).
"""

import re
import time

import pytest

from pbschool import demo
from pbschool.extensions import db
from tests.conftest import make_test_config
from tests.e2e.conftest import ARTIFACTS, LiveServer

pytestmark = pytest.mark.e2e

ROLES = {"member": "member", "lecturer": "lecturer", "secretary": "secretary", "admin": "admin"}
SIZES = {"375": {"width": 375, "height": 812}, "1366": {"width": 1366, "height": 768}}
LANGS = ("zh_CN", "en")

#: What each role's menus reach (the menu test below keeps this list honest), plus the home page, the
#: password page, the rules page the points page links to, the search results the courses page's box
#: leads to and, for an admin, the comment queue their to-do panel links to.
PAGES = {
    "member": ["/", "/courses", "/exams", "/points", "/points/board", "/points/rules", "/account/password",
               "/account/sessions", "/notifications", "/practice", "/search?q=党建 学习", "/certificates",
               "/me/record"],
    "lecturer": ["/", "/courses", "/exams", "/points", "/points/board", "/teach", "/admin/banks", "/admin/exams",
                 "/account/password", "/account/sessions", "/notifications", "/practice", "/search?q=党建 学习",
                 "/certificates", "/me/record"],
    "secretary": ["/", "/courses", "/exams", "/points", "/points/board", "/branch/learning", "/reports/branch",
                  "/meetings", "/points/award", "/admin/exams", "/admin/users", "/account/password",
                  "/account/sessions", "/notifications", "/announcements", "/announcements/new", "/practice",
                  "/search?q=党建 学习", "/certificates", "/me/record"],
    "admin": ["/", "/courses", "/exams", "/points", "/points/board", "/teach", "/admin/review", "/admin/courses",
              "/branch/learning", "/meetings", "/admin/banks", "/points/admin", "/admin/exams", "/reports/overview",
              "/admin/users", "/admin/branches", "/account/password", "/admin/comments", "/account/sessions",
              "/admin/security", "/notifications", "/announcements", "/announcements/new", "/practice",
              "/admin/practice", "/search?q=党建 学习", "/certificates", "/me/record"],
}

#: (role, path) -> why that page is expected to fail a check; empty: every page passes every check.
KNOWN = {}  # every page passes every check (the last entries were fixed with issue 15's page defects)

CHECK_JS = r"""
() => {
  const problems = [];
  // A phone's viewport widens to fit content that overflows, so compare with the width asked for.
  const width = Math.min(window.innerWidth, window.__askedWidth || window.innerWidth);
  const scroll = document.documentElement.scrollWidth;
  if (scroll > width) problems.push(`sideways: page is ${scroll}px wide in a ${width}px viewport`);
  const title = document.title;
  if (/[<>]/.test(title) || title.length > 120) problems.push(`title: ${title.slice(0, 80)}…`);
  const header = document.querySelector('header.topbar');
  if (!header) {
    problems.push('above-header: no site header');
  } else {
    for (const el of document.body.children) {
      if (el === header) break;
      const box = el.getBoundingClientRect();
      if (box.width > 0 && box.height > 0) {
        problems.push(`above-header: <${el.tagName.toLowerCase()}> before the header`);
        break;
      }
    }
    const top = header.getBoundingClientRect().top + window.scrollY;
    if (top > 0.5) problems.push(`above-header: the header starts ${Math.round(top)}px down`);
  }
  const targets = 'button, input[type=submit], input[type=button], input[type=reset], a.button, [role=button], '
    + 'summary, .tile, .topnav a, .menu-panel a, .pager a, .footer a, .todo-list a';
  const small = [];
  for (const el of document.querySelectorAll(targets)) {
    const closed = el.closest('details:not([open])');
    if (closed && !(el.tagName === 'SUMMARY' && el.parentElement === closed)) continue;
    if (getComputedStyle(el).visibility === 'hidden') continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    if (box.height < 43.5) {
      const text = (el.innerText || el.value || el.getAttribute('aria-label') || el.className || el.tagName).trim();
      small.push(`${text.slice(0, 20)} (${Math.round(box.height)}px)`);
    }
  }
  const more = small.length > 6 ? ` and ${small.length - 6} more` : '';
  if (small.length) problems.push(`small-tap: ${small.slice(0, 6).join(', ')}${more}`);
  return problems;
}
"""


def _menu_links(page):
    hrefs = page.eval_on_selector_all(".topnav a, .menu-panel a",
                                      "els => els.map(e => new URL(e.href).pathname)")
    return list(dict.fromkeys(hrefs))


def _shot(page, name):
    folder = ARTIFACTS / "every-page"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    except Exception:  # noqa: S110  (a screenshot is for people to look at; the checks stand)
        pass


def _check(page, response, name, key, label, problems):
    found = []
    if response is None or response.status >= 400:
        found.append(f"status: {getattr(response, 'status', 'none')}")
    found += page.evaluate(CHECK_JS)
    _shot(page, name)
    for problem in found:
        problems.setdefault(key, []).append(f"{label}: {problem}")


def _open_the_menu(page, name):
    """On a PC the sections are a bar with dropdowns; on a phone they are in the menu. Opens the bar's
    last section (or the phone's menu), screenshots it, and says what was on screen."""
    state = page.evaluate("""() => {
      const shown = s => { const e = document.querySelector(s); return !!e && e.getClientRects().length > 0; };
      return {bar: shown('.topnav'), hamburger: shown('.menu-icon'),
              sections: [...document.querySelectorAll('.topnav > a, .topnav summary')].map(e => e.innerText.trim())};
    }""")
    opener = page.locator(".topnav summary").last if state["bar"] else page.locator(".menu summary")
    opener.click()
    visible = page.locator(".topnav-group[open] .topnav-panel a, .menu[open] .menu-sections a")
    state["opened"] = sum(1 for k in range(visible.count()) if visible.nth(k).is_visible())
    _shot(page, f"{name}-menu-open")
    opener.click()
    return state


def _sit_an_exam(page, server, size, problems):
    """The page a member spends the longest on: the demo exam, started from the exam list."""
    for lang in LANGS:
        page.goto(f"{server.url}/lang/{lang}")
        page.goto(server.url + "/exams")
        page.click("text=党建知识测试（演示）")
        page.wait_for_load_state("domcontentloaded")
        start = page.locator("a.button.block#start-exam, a.button.block[href*='/attempts/']").first
        start.click()  # 开始考试, or 继续答题 the second time
        page.wait_for_load_state("domcontentloaded")
        if "/start" in page.url:  # 考试须知 first (the crawl checks the page itself: it is a link)
            page.check("#agreed")
            page.click("form button[type=submit].block")
            page.wait_for_load_state("domcontentloaded")
        assert "/attempts/" in page.url, page.url
        response = page.goto(page.url)
        _check(page, response, f"member-{size}-{lang}-exam-sitting", ("member", "sitting"), f"{size}px {lang}",
               problems)


@pytest.fixture(scope="module")
def crawl(tmp_path_factory, browser):
    """Visit every page once per role, size and language, in the session's browser (a second Playwright
    in one process is refused); returns {"problems": {(role, path): [...]}, "menus": {role: [paths]},
    "seconds": n}."""

    started = time.monotonic()
    tmp = tmp_path_factory.mktemp("every-page")
    app = __import__("pbschool").create_app(make_test_config(
        tmp, f"sqlite:///{tmp / 'crawl.db'}", WTF_CSRF_ENABLED=True, SESSION_COOKIE_SECURE=False,
        COMMITTEE_NAME="示范矿党委", DEMO_HISTORY=True, LOGIN_LIMITS_ACCOUNT="50 per minute",
        LOGIN_LIMITS_ADDRESS="200 per minute"))
    with app.app_context():
        db.create_all()
        for _line in demo.load():
            pass
        db.session.remove()
    server = LiveServer(app)
    server.start()
    problems, menus, navs = {}, {}, {}
    try:
        for role, username in ROLES.items():
            for size, viewport in SIZES.items():
                phone = size == "375"
                context = browser.new_context(viewport=viewport, locale="zh-CN", device_scale_factor=1,
                                              is_mobile=phone, has_touch=phone)
                context.set_default_timeout(15_000)
                context.add_init_script(f"window.__askedWidth = {viewport['width']};")
                page = context.new_page()
                page.goto(server.url + "/login")
                page.fill("input[name=username]", username)
                page.fill("input[name=password]", demo.DEMO_PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_load_state("domcontentloaded")
                menus.setdefault(role, _menu_links(page))
                navs[(role, size)] = _open_the_menu(page, f"{role}-{size}")
                for lang in LANGS:
                    page.goto(f"{server.url}/lang/{lang}")
                    for path in PAGES[role]:
                        response = page.goto(server.url + path)
                        name = f"{role}-{size}-{lang}{re.sub(r'[^a-z0-9]+', '-', path).rstrip('-') or '-home'}"
                        _check(page, response, name, (role, path), f"{size}px {lang}", problems)
                if role == "member":
                    _sit_an_exam(page, server, size, problems)
                context.close()
    finally:
        server.stop()
        with app.app_context():
            db.engine.dispose()
    return {"problems": problems, "menus": menus, "navs": navs, "seconds": time.monotonic() - started}


@pytest.mark.parametrize("role", list(ROLES))
def test_the_menus_reach_the_pages_this_test_visits(crawl, role):
    # the bell in the header (not the menu) leads to /notifications; a button to /announcements/new; the
    # courses page's search box to /search
    listed = [p for p in PAGES[role] if p not in ("/", "/account/password", "/admin/comments", "/points/rules",
                                                  "/notifications", "/announcements/new")
              and not p.startswith("/search")]
    assert sorted(p for p in crawl["menus"][role] if p not in ("/", "/account/password")) == sorted(listed)


def _cases():
    for role, paths in [("member", ["sitting"]), *PAGES.items()]:
        for path in paths:
            marks = []
            if (role, path) in KNOWN:
                marks.append(pytest.mark.xfail(strict=False, reason=KNOWN[(role, path)]))
            yield pytest.param(role, path, id=f"{role}{path}" if path != "sitting" else "member-sitting-the-demo-exam",
                               marks=marks)


@pytest.mark.parametrize(("role", "path"), list(_cases()))
def test_every_page_fits_the_phone_and_the_pc_in_both_languages(crawl, role, path):
    found = crawl["problems"].get((role, path), [])
    assert not found, "\n".join(found)


@pytest.mark.parametrize("role", list(ROLES))
def test_a_pc_gets_a_bar_of_sections_and_a_phone_the_menu(crawl, role):
    """Reproduction: on a PC the only navigation was a hamburger of 18 items."""
    pc, phone = crawl["navs"][(role, "1366")], crawl["navs"][(role, "375")]
    assert pc["bar"] and not pc["hamburger"] and pc["opened"] >= 1
    assert len(pc["sections"]) <= 5  # 首页 and at most 学习 / 考试 / 积分 / 管理
    assert phone["hamburger"] and not phone["bar"] and phone["opened"] >= 4
