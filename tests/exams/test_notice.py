"""Before the clock starts: 考试须知 with a required "我已阅读", and exams that open soon on the list."""

import datetime as dt

from sqlalchemy import func, select

from pbschool import clock
from pbschool.exams.models import Attempt
from pbschool.extensions import db
from tests.exams.conftest import T0, make_exam


def _count():
    return db.session.scalar(select(func.count(Attempt.id)))


def test_the_exam_page_leads_to_the_notice_which_says_the_rules(client, auth, make, bank, pinned):
    exam = make_exam(bank, time_limit=1800, max_attempts=2, pass_score=60, points=5,
                     closes_at=T0 + dt.timedelta(days=1))
    make.user("liuzq")
    auth.login("liuzq")
    detail = client.get(f"/exams/{exam.id}").get_data(as_text=True)
    assert f'href="/exams/{exam.id}/start"' in detail
    page = client.get(f"/exams/{exam.id}/start").get_data(as_text=True)
    for text in ("考试须知", "30 分钟", "2 次（共 2 次）", "满分的 60", "保存在本机", "有信号时自动发送",
                 "我已阅读", "开始答题", "2026-06-02 09:00（北京时间）"):
        assert text in page, text
    assert _count() == 0  # reading the notice starts nothing


def test_without_ticking_i_have_read_no_attempt_starts(client, auth, make, bank, pinned):
    exam = make_exam(bank)
    make.user("liuzq")
    auth.login("liuzq")
    for data in ({}, {"agreed": ""}):
        response = client.post(f"/exams/{exam.id}/start", data=data)
        assert response.status_code == 200
        assert "请先阅读考试须知，并勾选“我已阅读”后再开始答题" in response.get_data(as_text=True)
    assert _count() == 0
    started = client.post(f"/exams/{exam.id}/start", data={"agreed": "y"})
    assert started.status_code == 302 and "/attempts/" in started.headers["Location"]
    assert _count() == 1


def test_resuming_skips_the_notice(client, auth, make, bank, pinned):
    exam = make_exam(bank, max_attempts=3)
    make.user("liuzq")
    auth.login("liuzq")
    first = client.post(f"/exams/{exam.id}/start", data={"agreed": "y"}).headers["Location"]
    assert client.get(f"/exams/{exam.id}/start").headers["Location"] == first
    assert client.post(f"/exams/{exam.id}/start").headers["Location"] == first
    assert "继续答题" in client.get(f"/exams/{exam.id}").get_data(as_text=True)
    assert _count() == 1


def test_the_notice_warns_when_the_exam_closes_before_the_time_is_up(client, auth, make, bank, pinned):
    exam = make_exam(bank, time_limit=3600, closes_at=T0 + dt.timedelta(minutes=20))
    make.user("liuzq")
    auth.login("liuzq")
    page = client.get(f"/exams/{exam.id}/start").get_data(as_text=True)
    assert "notice-ends-early" in page and "09:20（北京时间）" in page


def test_the_api_start_has_no_notice_step(api, make, bank, pinned):
    exam = make_exam(bank)
    api.token(make.user())
    assert api.post(f"/exams/{exam.id}/attempts").status_code == 200


def test_closed_exhausted_and_hidden_exams_start_nothing(client, auth, make, bank, pinned):
    later = make_exam(bank, opens_at=T0 + dt.timedelta(days=1))
    over = make_exam(bank, closes_at=T0 - dt.timedelta(hours=1), opens_at=T0 - dt.timedelta(days=1))
    once = make_exam(bank)
    branch = make.branch()
    hidden = make_exam(bank, audience="branches", branches=[branch])
    make.user("liuzq")
    auth.login("liuzq")
    for exam in (later, over):
        assert 'name="agreed"' not in client.get(f"/exams/{exam.id}/start").get_data(as_text=True)
        response = client.post(f"/exams/{exam.id}/start", data={"agreed": "y"})
        assert response.status_code == 302 and "/attempts/" not in response.headers["Location"]
    attempt = client.post(f"/exams/{once.id}/start", data={"agreed": "y"}).headers["Location"]
    client.post(attempt + "/submit")
    assert "您的考试次数已用完" in client.get(f"/exams/{once.id}/start").get_data(as_text=True)
    assert "尚未开始，开放时间" in client.get(f"/exams/{later.id}/start").get_data(as_text=True)
    client.post(f"/exams/{once.id}/start", data={"agreed": "y"})
    assert client.get(f"/exams/{hidden.id}/start").status_code == 404
    assert client.post(f"/exams/{hidden.id}/start", data={"agreed": "y"}).status_code == 404
    assert _count() == 1


def test_exams_that_open_soon_are_listed_with_their_opening_time(client, auth, make, bank, pinned):
    soon = make_exam(bank, title="下周的考试", opens_at=T0 + dt.timedelta(days=2, hours=1))
    make_exam(bank, title="下个月的考试", opens_at=T0 + dt.timedelta(days=30))
    make_exam(bank, title="别的支部的考试", opens_at=T0 + dt.timedelta(days=1), audience="branches",
              branches=[make.branch()])
    make.user("liuzq")
    auth.login("liuzq")
    page = client.get("/exams").get_data(as_text=True)
    assert "即将开放的考试" in page and "下周的考试" in page
    assert "2026-06-03 10:00" in page  # 02:00 UTC is 10:00 in Beijing
    assert "下个月的考试" not in page and "别的支部的考试" not in page
    detail = client.get(f"/exams/{soon.id}").get_data(as_text=True)
    assert "尚未开始，开放时间 2026-06-03 10:00（北京时间）" in detail
    assert 'id="start-exam"' not in detail
    clock.advance(days=3)
    page = client.get("/exams").get_data(as_text=True)
    assert "即将开放的考试" not in page
    assert 'id="start-exam"' in client.get(f"/exams/{soon.id}").get_data(as_text=True)


def test_the_window_is_a_setting(app, client, auth, make, bank, pinned):
    make_exam(bank, title="下个月的考试", opens_at=T0 + dt.timedelta(days=20))
    make.user("liuzq")
    auth.login("liuzq")
    assert "下个月的考试" not in client.get("/exams").get_data(as_text=True)
    app.config["EXAM_OPENS_SOON_DAYS"] = 30
    assert "下个月的考试" in client.get("/exams").get_data(as_text=True)


def test_the_api_lists_exams_opening_soon_beside_the_contracts_list(api, make, bank, pinned):
    now = make_exam(bank, title="正在进行")
    soon = make_exam(bank, title="即将开始", opens_at=T0 + dt.timedelta(days=1))
    api.token(make.user())
    listed = api.get("/exams").get_json()
    assert [e["id"] for e in listed] == [now.id]
    upcoming = api.get("/exams/upcoming").get_json()
    assert [e["id"] for e in upcoming] == [soon.id]
    assert upcoming[0]["opens_at"] == "2026-06-02T01:00:00Z"
