"""Extra time given while a member sits an exam reaches their open page: the countdown does not hand the
paper in at the old deadline. And the overrides section of the exam's staff page fits a 375 px phone."""

import datetime as dt

from sqlalchemy import select

from pbschool import clock
from pbschool.accounts.models import User
from pbschool.exams import overrides
from pbschool.exams.models import Attempt, Exam
from pbschool.extensions import db
from tests.e2e.conftest import ARTIFACTS, do_login, no_horizontal_scroll
from tests.exams.conftest import make_bank, make_exam
from tests.factories import Factory


def _seed(app):
    with app.app_context():
        make = Factory()
        branch = make.branch("ZC1", "综采一队党支部")
        make.user("liuzq", name="刘志强", branch=branch)
        make.user("zhang", name="张书记", role="secretary", branch=branch)
        make.user("boss", name="王管理", role="admin")
        exam = make_exam(make_bank(), time_limit=600, closes_at=clock.now() + dt.timedelta(days=2))
        exam_id = exam.id
        db.session.remove()
    return exam_id


def test_extra_time_given_mid_exam_keeps_the_page_going(live_server, page, login):
    app = live_server.app
    exam_id = _seed(app)
    login(page, live_server, "liuzq")
    page.goto(f"{live_server.url}/exams/{exam_id}")
    page.click("text=开始考试")
    page.wait_for_url("**/start")  # 考试须知
    page.check("#agreed")
    page.click("button:has-text('开始答题')")
    page.wait_for_url("**/attempts/*")
    attempt_id = int(page.url.rsplit("/", 1)[1])
    with app.app_context():  # nine minutes and 56 seconds have gone
        attempt = db.session.get(Attempt, attempt_id)
        now = clock.now().replace(microsecond=0)
        attempt.started_at, attempt.deadline_at = now - dt.timedelta(seconds=596), now + dt.timedelta(seconds=4)
        db.session.commit()
        db.session.remove()
    page.reload()
    with app.app_context():  # the secretary gives five more minutes
        exam, zhang = db.session.get(Exam, exam_id), db.session.scalar(select(User).where(User.username == "zhang"))
        member = db.session.scalar(select(User).where(User.username == "liuzq"))
        overrides.set_member_override(exam, member, {"extra_minutes": 5}, zhang)
        db.session.commit()
        db.session.remove()
    page.wait_for_timeout(8000)
    assert "/attempts/" in page.url
    minutes = int(page.locator("#countdown").inner_text().split(":")[0])
    assert minutes >= 4
    with app.app_context():
        assert db.session.get(Attempt, attempt_id).state == "in_progress"
        db.session.remove()
    page.screenshot(path=str(ARTIFACTS / "overrides-sitting-375.png"), full_page=True)


def test_the_overrides_section_fits_a_phone(live_server, page, login):
    exam_id = _seed(live_server.app)
    do_login(page, live_server, "zhang")
    page.goto(f"{live_server.url}/admin/exams/{exam_id}?username=liuzq")
    page.fill("#extra_minutes", "15")
    page.fill("#extra_attempts", "1")
    page.click("#overrides button[type=submit]:has-text('保存特殊安排')")
    page.wait_for_load_state("domcontentloaded")
    assert "已为 刘志强 保存考试特殊安排" in page.content()
    page.select_option("#branch", "ZC1")
    page.fill("#extra_minutes", "-5")
    page.click("#overrides button[type=submit]:has-text('保存特殊安排')")
    page.wait_for_load_state("domcontentloaded")
    assert "延长分钟数应为" in page.content()
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "overrides-staff-375.png"), full_page=True)
    page.context.clear_cookies()
    login(page, live_server, "liuzq")
    page.goto(f"{live_server.url}/exams")
    assert "您有额外 15 分钟" in page.content() and "您可多考 1 次" in page.content()
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "overrides-exam-list-375.png"), full_page=True)
