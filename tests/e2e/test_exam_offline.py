"""The exam page on a phone whose signal comes and goes: answers kept on the device, a service worker
that opens the exam without a connection, a queue that is sent when the connection returns, never
under another account, and says plainly what did not reach the server in time."""

import datetime as dt

import pytest
from flask import request_started
from playwright.sync_api import expect

from pbschool import clock
from pbschool.exams import services
from pbschool.exams.models import Attempt
from pbschool.extensions import db
from tests.e2e.conftest import ARTIFACTS, do_login, no_horizontal_scroll
from tests.e2e.test_exams import _answers, _fits, _give, _saved, _seed, _start
from tests.factories import Factory

CACHE_HAS_PAGE = """async () => {
  const cache = await caches.open('pbschool-exam-v1');
  return !!(await cache.match(location.href, {ignoreVary: true}));
}"""


def _server_answers(app, attempt_id):
    """{question id: the saved answer as the page shows it} from the server's database."""
    with app.app_context():
        attempt = db.session.get(Attempt, attempt_id)
        out = {item["id"]: item["saved"] for item in services.paper(attempt) if item["saved"] is not None}
        db.session.remove()
    return out


def _kept(page):
    """The answers this device keeps: {key: entry}."""
    return page.evaluate("""() => Object.fromEntries(Object.keys(localStorage)
        .filter(k => k.startsWith('pbschool-answer:')).map(k => [k, JSON.parse(localStorage.getItem(k))]))""")


def _worker_ready(page):
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.wait_for_function(CACHE_HAS_PAGE, polling=200)


def _answer_current(page, answers):
    section = page.locator(".question.current")
    qid = int(section.get_attribute("data-qid"))
    qtype, value = answers[qid]
    _give(section, qtype, value)
    return qid


@pytest.mark.xfail(strict=False, reason="flaky: 1 run in 4 on CI the offline reopen got net::ERR_FAILED (the worker "
                                       "had the page cached before going offline); under investigation, issue 13")
def test_answers_given_offline_survive_closing_the_page_and_reach_the_server(live_server, page, login):
    exam_id = _seed(live_server.app, questions=4)
    attempt_id = _start(page, live_server, login, exam_id)
    url = page.url
    answers = _answers(live_server.app, attempt_id)
    _worker_ready(page)
    context = page.context

    first = _answer_current(page, answers)
    _saved(page)
    assert _server_answers(live_server.app, attempt_id) == {first: answers[first][1]}

    context.set_offline(True)
    given = [first]
    for _ in range(2):
        page.locator(".question.current button.next").click()
        given.append(_answer_current(page, answers))
    expect(page.locator("#pending-count")).to_have_text("2 题待发送")
    expect(page.locator("#save-state")).to_have_text("离线")
    assert page.locator("#answer-card .cell.waiting").count() == 2
    assert page.locator("#answer-card .cell.saved").count() == 1
    waiting = {k: v for k, v in _kept(page).items() if v["s"] == 0}
    user_id = page.locator("#paper").get_attribute("data-user")
    # kept per user, attempt and question, with when it was given
    assert sorted(waiting) == sorted(f"pbschool-answer:{user_id}:{attempt_id}:{q}" for q in given[1:])
    assert all(isinstance(v["at"], (int, float)) for v in waiting.values())
    assert no_horizontal_scroll(page) and _fits(page)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "exam-offline-waiting-375.png"), full_page=True)
    page.close()

    # Reopened without a signal: the service worker's copy, with every answer given filled in.
    seen = []

    def note(sender, **extra):
        from flask import request

        seen.append(request.path)

    request_started.connect(note, live_server.app)
    again = context.new_page()
    again.goto(url)
    assert again.evaluate("navigator.serviceWorker.controller !== null")
    assert again.evaluate("fetch('/healthz').then(() => 'online', () => 'offline')") == "offline"
    assert not seen  # nothing reached the server: the page came from the device
    expect(again.locator(".question")).to_have_count(4)
    expect(again.locator("#pending-count")).to_have_text("2 题待发送")
    for qid in given:
        section = again.locator(f".question[data-qid='{qid}']")
        assert section.locator("input:checked").count() >= 1 or section.locator("input[type=text]").first.input_value()
    assert again.locator("#answer-card .cell.answered").count() == 3
    again.screenshot(path=str(ARTIFACTS / "exam-offline-reopened-375.png"), full_page=True)

    request_started.disconnect(note, live_server.app)
    context.set_offline(False)
    expect(again.locator("#pending-count")).to_be_hidden(timeout=15000)
    expect(again.locator("#save-state")).to_have_text("已保存")
    saved = _server_answers(live_server.app, attempt_id)
    assert set(saved) == set(given)
    for qid in given:
        assert saved[qid] == answers[qid][1]
    assert again.locator("#answer-card .cell.saved").count() == 3
    assert again.locator("#answer-card .cell.waiting").count() == 0


def test_an_answer_the_server_refuses_is_shown_on_its_question_and_dropped(live_server, page, login):
    exam_id = _seed(live_server.app, questions=4)
    attempt_id = _start(page, live_server, login, exam_id)
    _worker_ready(page)
    first = page.locator(".question").nth(0)
    second = page.locator(".question").nth(1)
    first_qid, second_qid = first.get_attribute("data-qid"), second.get_attribute("data-qid")
    user_id = page.locator("#paper").get_attribute("data-user")

    # A kept answer of a shape the server does not take (a device's copy gone bad): 400, shown, dropped.
    page.evaluate("""([key]) => localStorage.setItem(key,
        JSON.stringify({v: {"not": "an answer"}, at: Date.now() + 60000, n: 1, s: 0}))""",
                  [f"pbschool-answer:{user_id}:{attempt_id}:{first_qid}"])
    page.reload()
    expect(first.locator(".q-error")).to_be_visible()
    assert first.locator(".q-error").inner_text()
    expect(page.locator("#answer-card .cell.refused")).to_have_count(1)
    assert not _kept(page)
    expect(page.locator("#pending-count")).to_be_hidden()

    # A question the server says is not in the attempt (404): shown, dropped, asked once only.
    hits = []

    def gone(route):
        hits.append(route.request.url)
        route.fulfill(status=404, content_type="application/json",
                      body='{"error": {"code": "not_found", "message": "本次考试中没有这道题"}}')

    page.route(f"**/api/v1/attempts/{attempt_id}/answers/{second_qid}", gone)
    page.locator(".question.current button.next").click()
    second.locator("input").first.check()
    expect(second.locator(".q-error")).to_have_text("本次考试中没有这道题")
    expect(page.locator("#answer-card .cell.refused")).to_have_count(2)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_timeout(1500)
    assert len(hits) == 1
    assert not _kept(page)
    assert _server_answers(live_server.app, attempt_id) == {}
    page.screenshot(path=str(ARTIFACTS / "exam-refused-375.png"), full_page=True)


def test_signing_out_clears_the_queue_and_the_next_member_never_sends_it(live_server, page, login):
    exam_id = _seed(live_server.app, questions=4)
    with live_server.app.app_context():
        Factory().user("zhangm", name="张敏", branch=db.session.scalars(select_branch()).first())
        db.session.commit()
        db.session.remove()
    attempt_id = _start(page, live_server, login, exam_id)
    _worker_ready(page)
    context = page.context
    page.route("**/api/v1/attempts/*/answers/*", lambda route: route.abort("internetdisconnected"))
    page.locator(".question.current input").first.check()
    first_user = page.locator("#paper").get_attribute("data-user")
    first_qid = page.locator(".question.current").get_attribute("data-qid")
    expect(page.locator("#pending-count")).to_have_text("1 题待发送")
    assert len(_kept(page)) == 1
    page.unroute("**/api/v1/attempts/*/answers/*")

    sent = []
    context.on("request", lambda r: sent.append(r.url) if r.method == "PUT" else None)
    page.click(".menu summary")
    page.click("text=退出登录")
    page.wait_for_url("**/login")
    assert not _kept(page)
    assert page.evaluate("caches.keys()") == []

    do_login(page, live_server, "zhangm")
    page.goto(live_server.url + "/exams")
    page.click("text=党章党规知识测试")
    page.click("text=开始考试")
    page.wait_for_url("**/start")  # 考试须知
    page.check("#agreed")
    page.click("button:has-text('开始答题')")
    page.wait_for_url("**/attempts/*")
    other = int(page.url.rsplit("/", 1)[1])
    assert other != attempt_id
    page.wait_for_timeout(1000)
    assert not any(f"/attempts/{attempt_id}/" in url for url in sent)
    assert _server_answers(live_server.app, attempt_id) == {}
    # Even a copy left behind (a browser that ignored the sign-out) is not this member's to send.
    page.evaluate("""([key]) => localStorage.setItem(key, JSON.stringify({v: "A", at: Date.now(), n: 1, s: 0}))""",
                  [f"pbschool-answer:{first_user}:{attempt_id}:{first_qid}"])
    page.reload()
    page.wait_for_timeout(1000)
    assert not any(f"/attempts/{attempt_id}/" in url for url in sent)
    assert _server_answers(live_server.app, attempt_id) == {}


def select_branch():
    from sqlalchemy import select

    from pbschool.accounts.models import Branch

    return select(Branch)


def test_the_deadline_passing_with_answers_waiting_says_which_did_not_count(live_server, page, login):
    exam_id = _seed(live_server.app, questions=4, time_limit=60)
    page.clock.install()
    attempt_id = _start(page, live_server, login, exam_id)
    answers = _answers(live_server.app, attempt_id)
    _worker_ready(page)
    first = _answer_current(page, answers)
    _saved(page)
    page.context.set_offline(True)
    page.locator(".question.current button.next").click()
    late = _answer_current(page, answers)
    expect(page.locator("#pending-count")).to_have_text("1 题待发送")

    page.clock.run_for("01:05")
    note = page.locator("#late-note")
    expect(note).to_contain_text("第 2 题的答案还没有送达服务器")
    assert "/attempts/" in page.url and not page.url.endswith("/result")  # no browser error page
    page.screenshot(path=str(ARTIFACTS / "exam-offline-deadline-375.png"), full_page=True)

    try:
        clock.pin(dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=2))
        page.context.set_offline(False)
        expect(note).to_contain_text("第 2 题的答案在截止之后才送达服务器", timeout=15000)
        expect(note.locator("a")).to_be_visible()
        expect(page.locator("#pending-count")).to_be_hidden()
        assert page.locator("#answer-card .cell.late").count() == 1
        page.screenshot(path=str(ARTIFACTS / "exam-offline-late-375.png"), full_page=True)
        with live_server.app.app_context():
            attempt = db.session.get(Attempt, attempt_id)
            assert attempt.state == "submitted" and attempt.score == 2  # only the answer that arrived in time
            db.session.remove()
        assert late != first and not _kept(page)
        note.locator("a").click()
        page.wait_for_url("**/result")
    finally:
        clock.pin(None)


def test_answers_still_waiting_when_the_attempt_ended_are_sent_once_from_the_result_page(live_server, page, login):
    exam_id = _seed(live_server.app, questions=4, time_limit=60)
    attempt_id = _start(page, live_server, login, exam_id)
    url = page.url
    answers = _answers(live_server.app, attempt_id)
    _worker_ready(page)
    context = page.context
    _answer_current(page, answers)
    _saved(page)
    context.set_offline(True)
    page.locator(".question.current button.next").click()
    _answer_current(page, answers)
    expect(page.locator("#pending-count")).to_have_text("1 题待发送")
    page.close()

    puts = []
    context.on("request", lambda r: puts.append(r.url) if r.method == "PUT" else None)
    try:
        clock.pin(dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=2))
        context.set_offline(False)
        again = context.new_page()
        again.goto(url)  # the server has graded the attempt: the result page
        again.wait_for_url("**/result")
        expect(again.locator("#late-outbox")).to_have_text(
            "第 2 题的答案在考试结束后才送达服务器，已记录，但不计入成绩。")
        assert len(puts) == 1  # sent once, not retried
        assert not _kept(again)
        assert not again.evaluate(CACHE_HAS_PAGE.replace("location.href", repr(url)))  # the kept copy is gone
        assert no_horizontal_scroll(again)
        again.screenshot(path=str(ARTIFACTS / "exam-late-result-375.png"), full_page=True)
        with live_server.app.app_context():
            assert db.session.get(Attempt, attempt_id).score == 2
            db.session.remove()
    finally:
        clock.pin(None)
