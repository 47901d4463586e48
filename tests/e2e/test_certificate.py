"""A certificate on a phone: a member with a passed exam downloads it and opens its /verify page,
which confirms it; the record page fits the screen too."""

import shutil
import subprocess

from sqlalchemy import select

from pbschool.certificates.models import Certificate
from pbschool.extensions import db
from tests.e2e.conftest import ARTIFACTS, no_horizontal_scroll
from tests.factories import Factory


def _seed(app):
    from tests.certificates.conftest import QUESTIONS, sit
    from tests.exams.conftest import make_bank, make_exam

    with app.app_context():
        make = Factory()
        branch = make.branch("ZC1", "综采一队党支部")
        member = make.user("liuzq", name="刘志强", branch=branch)
        exam = make_exam(make_bank("组织原则", QUESTIONS), pass_score=60, points=2, certificate=True)
        attempt = sit(exam, member)
        code = db.session.scalar(select(Certificate.code))
        attempt_id = attempt.id
        db.session.remove()
    return attempt_id, "-".join(code[i:i + 4] for i in (0, 4, 8))


def test_member_downloads_the_certificate_and_verifies_it(live_server, page, login):
    attempt_id, code = _seed(live_server.app)
    login(page, live_server, "liuzq")
    page.goto(f"{live_server.url}/attempts/{attempt_id}/result")
    assert code in page.locator("#certificate").inner_text()
    page.goto(live_server.url + "/certificates")
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "certificates-375.png"), full_page=True)
    with page.expect_download() as info:
        page.click(f"[data-code='{code}'] a:has-text('下载 PDF')")
    download = info.value
    assert download.suggested_filename == f"certificate-{code}.pdf"
    path = download.path()
    data = path.read_bytes()
    assert data.startswith(b"%PDF-") and f"/verify/{code}".encode() in data
    if shutil.which("pdftoppm"):  # a picture of the PDF for a person to look at
        ARTIFACTS.mkdir(exist_ok=True)
        subprocess.run(["pdftoppm", "-r", "50", "-png", "-singlefile", str(path), str(ARTIFACTS / "certificate-pdf")],
                       check=True)

    page.click(f"[data-code='{code}'] a:has-text('验证页')")
    page.wait_for_load_state("domcontentloaded")
    assert page.url.endswith(f"/verify/{code}")
    valid = page.locator("#verify-valid")
    text = valid.inner_text()
    assert "证书有效" in text and "刘志强" in text and "综采一队党支部" in text
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "verify-valid-375.png"), full_page=True)

    # the page is public: a fresh browser without a sign-in confirms the same, and types a code in
    context = page.context.browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    stranger = context.new_page()
    stranger.goto(live_server.url + "/verify")
    stranger.fill("#code", code.lower().replace("-", " "))
    stranger.click("button:has-text('验证')")
    stranger.wait_for_load_state("domcontentloaded")
    assert "刘志强" in stranger.locator("#verify-valid").inner_text()
    stranger.goto(live_server.url + "/verify/AAAA-BBBB-CCCC")
    assert "没有这份证书" in stranger.locator("#verify-unknown").inner_text()
    stranger.screenshot(path=str(ARTIFACTS / "verify-unknown-375.png"), full_page=True)
    context.close()

    page.goto(live_server.url + "/me/record")
    assert "党章党规知识测试" in page.content() and code in page.content()
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "my-record-375.png"), full_page=True)
