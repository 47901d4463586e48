"""The Content-Security-Policy has no 'unsafe-inline' (issue 12, item 7), and the pages still work
under it: Chromium reports no violation on the pages that draw bars, grids and charts."""

from tests.e2e.conftest import do_login
from tests.e2e.test_points import _seed

PAGES = {"liuzq": ["/", "/points", "/courses", "/me/learning"],
         "secretary": ["/meetings", "/reports/branch", "/points/board"]}

_LISTEN = """window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' on ' + location.pathname));"""


def test_no_page_breaks_the_content_security_policy(live_server, page):
    _seed(live_server.app)
    console = []
    page.on("console", lambda msg: console.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.add_init_script(_LISTEN)
    header = page.goto(live_server.url + "/login").headers["content-security-policy"]
    assert "unsafe-inline" not in header and "style-src 'self'" in header
    violations = []
    for username, paths in PAGES.items():
        page.context.clear_cookies()
        do_login(page, live_server, username)
        for path in paths:
            response = page.goto(live_server.url + path)
            assert response.status == 200, path
            page.wait_for_load_state("load")
            violations += page.evaluate("window.__csp")
    assert violations == [] and console == [], (violations, console)
    # the 三会一课 grid lays its cells out in month columns (from a class: a style attribute would be blocked)
    page.context.clear_cookies()
    do_login(page, live_server, "secretary")
    page.goto(live_server.url + "/meetings")
    columns = page.eval_on_selector(".rhythm", "el => getComputedStyle(el).gridTemplateColumns.split(' ').length")
    cells = page.locator(".rhythm .cell").count()
    heads = page.locator(".rhythm .cell.head").count()  # the corner, a head a month, a head a kind
    assert cells == columns * (heads - columns + 1), (columns, cells, heads)
