"""No correctness may depend on process memory: two gunicorn servers (two workers each) on one
PostgreSQL and one Redis keep login throttling, exam deadlines, idempotency and caps between them."""

import threading
from collections import Counter
from decimal import Decimal

from tests.scaleout.conftest import DAILY_CAP, IDEMPOTENCY_MEMBERS, PASSWORD, QUESTIONS, Browser

#: LOGIN_LIMITS_ACCOUNT's default, "5 per minute": failed logins allowed per account.
ACCOUNT_LIMIT = 5


def _try_login(browser, server, username, password):
    token = browser.csrf_token(server)
    status, _html = browser.post(server, "/login", {"username": username, "password": password,
                                                    "csrf_token": token})
    return status


def _failures_until_refused(servers, username):
    """Wrong passwords sent in turn to ``servers`` until one is refused (429): how many went through."""
    browser = Browser()
    for n in range(ACCOUNT_LIMIT * 4 + 1):  # four processes with their own memory would allow 4 x the limit
        status = _try_login(browser, servers[n % len(servers)], username, "wrong-pass-x")
        if status == 429:
            return n
        assert status == 200, f"a wrong password answered {status} on {servers[n % len(servers)]}"
    return n + 1


def test_failed_logins_count_once_across_both_servers(cluster):
    a, b = cluster.a, cluster.b
    # One server alone (its two workers share the count through Redis too): the limit.
    assert _failures_until_refused([a], "so_alone") == ACCOUNT_LIMIT
    # Alternating between the servers gets no further: B saw only two of the failures, yet refuses.
    assert _failures_until_refused([a, b], "so_shared") == ACCOUNT_LIMIT
    # Now even the right password is refused, on whichever server.
    for server in (a, b):
        assert _try_login(Browser(), server, "so_shared", PASSWORD) == 429, server
    # The limit is the account's, not the site's: another member still logs in on B, and the session
    # made on B is good on A (one SECRET_KEY, nothing kept in a process).
    browser = Browser()
    assert _try_login(browser, b, "so_bystander", PASSWORD) == 302
    status, html = browser.get(a, "/")
    assert status == 200 and "so_bystander" in html


def test_failed_token_requests_count_once_across_both_servers(cluster):
    servers = (cluster.a, cluster.b)
    wrong = {"username": "so_api", "password": "wrong-pass-x"}
    for n in range(ACCOUNT_LIMIT):
        status, body = servers[n % 2].api("POST", "/tokens", payload=wrong)
        assert status == 401, body
    for server in servers:
        status, body = server.api("POST", "/tokens", payload={"username": "so_api", "password": PASSWORD})
        assert status == 429 and body["error"]["code"] == "too_many_requests", (server, body)


def _answer_all(servers, token, started, value=True):
    for i, question in enumerate(started["questions"]):
        status, body = servers[i % 2].api("PUT", f"/attempts/{started['attempt_id']}/answers/{question['id']}",
                                          token, {"answer": value})
        assert status == 200, body


def test_a_deadline_stored_on_a_holds_on_b(cluster):
    a, b = cluster.a, cluster.b
    token = a.token("so_deadline")
    status, started = a.api("POST", f"/exams/{cluster.ids.main_exam}/attempts", token)
    assert status == 200, started
    attempt_id = started["attempt_id"]
    first, second, third = (q["id"] for q in started["questions"])
    assert a.api("PUT", f"/attempts/{attempt_id}/answers/{first}", token, {"answer": True})[0] == 200
    assert b.api("PUT", f"/attempts/{attempt_id}/answers/{second}", token, {"answer": True})[0] == 200

    # Time passes: the stored deadline moves an hour into the past (neither server keeps a timer).
    cluster.sql("UPDATE attempt SET started_at = started_at - interval '1 hour', "
                "deadline_at = deadline_at - interval '1 hour' WHERE id = :id", id=attempt_id)
    deadline = cluster.sql("SELECT deadline_at FROM attempt WHERE id = :id", id=attempt_id)[0][0]

    status, body = b.api("PUT", f"/attempts/{attempt_id}/answers/{third}", token, {"answer": True})
    assert status == 409 and body["error"]["code"] == "time_up", body
    status, result = b.api("POST", f"/attempts/{attempt_id}/submit", token)
    assert status == 200, result
    # Graded on what was saved by the deadline: two of three (the late answer is not there).
    assert result["state"] == "submitted"
    assert (result["score"], result["max_score"], result["passed"]) == (2.0, 3.0, True)
    assert result["points_awarded"] == 2.0
    row = cluster.sql("SELECT state, submitted_at, is_auto_submitted FROM attempt WHERE id = :id", id=attempt_id)[0]
    assert row == ("submitted", deadline, True)  # submitted as of the stored deadline, by the clock
    assert cluster.sql("SELECT question_id FROM answer WHERE attempt_id = :id ORDER BY question_id",
                       id=attempt_id) == sorted([(first,), (second,)])
    # A sees the same finished attempt.
    status, seen = a.api("GET", f"/attempts/{attempt_id}", token)
    assert status == 200 and seen["state"] == "submitted" and seen["result"]["score"] == 2.0


def _storm(calls):
    """Run (server, method, path, token) calls all at once from threads; their (status, body) in order."""
    results = [None] * len(calls)
    gate = threading.Barrier(len(calls))

    def run(i, server, method, path, token):
        try:
            gate.wait(timeout=60)
            results[i] = server.api(method, path, token)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[i] = (0, repr(exc))

    threads = [threading.Thread(target=run, args=(i, *call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not any(t.is_alive() for t in threads), "a request hung"
    return results


def test_one_attempt_submitted_many_times_on_both_servers_grades_and_pays_once(cluster):
    a, b = cluster.a, cluster.b
    servers = (a, b)
    attempts = {}
    for i in range(IDEMPOTENCY_MEMBERS):
        username = f"so_idem{i}"
        token = servers[i % 2].token(username)
        status, started = servers[(i + 1) % 2].api("POST", f"/exams/{cluster.ids.main_exam}/attempts", token)
        assert status == 200, started
        _answer_all(servers, token, started)
        attempts[started["attempt_id"]] = (username, token)
    # Every attempt submitted eight times at once, four times on each server, all attempts together.
    calls = [(servers[k % 2], "POST", f"/attempts/{attempt_id}/submit", token)
             for attempt_id, (_u, token) in attempts.items() for k in range(8)]
    results = _storm(calls)

    assert [status for status, _ in results] == [200] * len(calls), results
    by_attempt = {}
    for (_server, _m, path, _t), (_status, body) in zip(calls, results, strict=True):
        by_attempt.setdefault(path, []).append(body)
    expected = {"score": float(QUESTIONS), "max_score": float(QUESTIONS), "passed": True,
                "points_awarded": 2.0, "state": "submitted"}
    for path, bodies in by_attempt.items():
        assert bodies == [expected] * 8, (path, bodies)  # every caller got the one result
    for attempt_id, (username, _t) in attempts.items():
        entries = cluster.sql("SELECT points FROM ledger_entry WHERE source_key = :key", key=f"attempt:{attempt_id}")
        assert entries == [(Decimal("2.0"),)], (username, entries)
        assert cluster.sql("SELECT count(*), sum(l.points) FROM ledger_entry l JOIN \"user\" u ON u.id = l.user_id "
                           "WHERE u.username = :u", u=username) == [(1, Decimal("2.0"))]
        assert cluster.sql("SELECT t.points, t.entries FROM point_total t JOIN \"user\" u ON u.id = t.user_id "
                           "WHERE u.username = :u", u=username) == [(Decimal("2.0"), 1)]
    assert cluster.verify_ledger()[1] is None


def test_a_daily_cap_holds_when_both_servers_pay_at_once(cluster):
    a, b = cluster.a, cluster.b
    servers = (a, b)
    token = b.token("so_caps")
    attempt_ids = []
    for i, exam_id in enumerate(cluster.ids.cap_exams):
        status, started = servers[i % 2].api("POST", f"/exams/{exam_id}/attempts", token)
        assert status == 200, started
        _answer_all(servers, token, started)
        attempt_ids.append(started["attempt_id"])
    # Six passes worth 1.0 each against a daily cap of 3.5, each submitted on both servers at once.
    calls = [(server, "POST", f"/attempts/{attempt_id}/submit", token)
             for attempt_id in attempt_ids for server in servers]
    results = _storm(calls)
    assert [status for status, _ in results] == [200] * len(calls), results
    assert all(body["passed"] for _status, body in results)
    assert results[0::2] == results[1::2]  # A and B answered each submission alike

    days = cluster.sql("SELECT l.day, sum(l.points), count(*) FROM ledger_entry l JOIN \"user\" u "
                       "ON u.id = l.user_id WHERE u.username = 'so_caps' AND l.kind = 'exam_passed' GROUP BY l.day")
    assert all(total <= DAILY_CAP for _day, total, _n in days), days
    if len(days) == 1:  # (a run across the committee's midnight would fill two days)
        assert days[0][1:] == (DAILY_CAP, 4), days  # 1 + 1 + 1 + the remaining 0.5, never more
    awarded = Counter(body["points_awarded"] for _status, body in results[::2])
    if len(days) == 1:
        assert awarded == Counter({1.0: 3, 0.5: 1, 0.0: 2}), awarded
    status, mine = a.api("GET", "/me/points", token)
    assert status == 200 and Decimal(str(mine["balance"])) == sum(total for _d, total, _n in days)
    assert cluster.verify_ledger()[1] is None
