"""Browser tests: a live server in a thread and Debian's Chromium driven by Playwright at 375 px.

Fixtures: ``live_server`` (``.url``, ``.app``; seed data inside ``with live_server.app.app_context()``),
``page`` (a Playwright page, 375x812, zh-CN), and ``login(page, live_server, username)``.
Without Chromium the tests are skipped, unless PBSCHOOL_REQUIRE_BROWSER=1 (CI), where they fail.
Screenshots land in test-artifacts/ for a person to look at.
"""

import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from pbschool import create_app
from pbschool.extensions import db
from tests.conftest import make_test_config
from tests.factories import PASSWORD

CHROMIUM = os.environ.get("PBSCHOOL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.e2e


def _require_browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("PBSCHOOL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium fonts-wqy-microhei)")
        pytest.skip("browser tests need Debian's chromium (apt-get install chromium fonts-wqy-microhei)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed")


class LiveServer:
    def __init__(self, app):
        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._thread.join(5)


@pytest.fixture
def live_server(tmp_path):
    _require_browser()
    config = make_test_config(tmp_path, f"sqlite:///{tmp_path / 'e2e.db'}", WTF_CSRF_ENABLED=True,
                              SESSION_COOKIE_SECURE=False)
    app = create_app(config)
    with app.app_context():
        db.create_all()
    server = LiveServer(app)
    server.start()
    yield server
    server.stop()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN",
                                  device_scale_factor=2, is_mobile=True, has_touch=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    _retry_screenshots(page)
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    try:
        page.screenshot(path=str(ARTIFACTS / f"{name}-final.png"), full_page=True)
    except Exception:  # noqa: S110  (a screenshot is a courtesy; the test result stands)
        pass
    context.close()


def _retry_screenshots(page):
    """Headless Chromium on a loaded machine now and then answers "Unable to capture screenshot";
    a second try a moment later works. Screenshots are for people to look at, not assertions."""
    from playwright.sync_api import Error as PlaywrightError

    take = page.screenshot

    def screenshot(*args, **kwargs):
        for attempt in range(3):
            try:
                return take(*args, **kwargs)
            except PlaywrightError:
                if attempt == 2 or page.is_closed():
                    raise
                page.wait_for_timeout(500)

    page.screenshot = screenshot


def no_horizontal_scroll(page):
    """True when the page fits the phone's width (no sideways scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def do_login(page, server, username, password=PASSWORD):
    page.goto(server.url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("domcontentloaded")


@pytest.fixture
def login():
    return do_login
