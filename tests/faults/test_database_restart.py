"""PostgreSQL restarts in the middle of exam-day load (saves, submits, points awards): while it is
down the API answers 503 with a JSON error and pages a 503 page; once it is back, gunicorn's
workers (not restarted) answer again within seconds; nothing is left half-written."""

import http.client
import random
import re
import tempfile
import threading
import time
import urllib.parse

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from pbschool.extensions import db
from pbschool.points.models import LedgerEntry
from tests.faults.conftest import (
    PASSWORD,
    Client,
    Cluster,
    Recorder,
    check_consistency,
    make_app,
    postgres_bindir,
    seed,
    server_owner,
    sit_exam,
)
from tests.perf.common import app_env, gunicorn

MEMBERS = 16
AWARDS = 24
DOWN_SECONDS = 3
RECOVERY_SECONDS = 5
UNAVAILABLE = "服务暂时不可用"


def _lost_connection(*args, **kwargs):
    raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection unexpectedly"))


def test_commit_that_loses_the_database_is_a_503_json_and_keeps_nothing(app, make, api, monkeypatch):
    admin, member = make.user(role="admin"), make.user()
    api.token(admin)
    body = {"username": member.username, "points": 2, "reason": "值班", "key": "once"}
    monkeypatch.setattr(db.session, "commit", _lost_connection)
    response = api.post("/points/awards", json=body)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json()["error"]["code"] == "unavailable"
    monkeypatch.undo()
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 0
    assert api.post("/points/awards", json=body).status_code == 200  # the client's retry
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 1


def test_page_while_the_database_is_down_is_a_503_page(app, make, auth, client, monkeypatch):
    member = make.user()
    auth.login(member.username)
    monkeypatch.setattr(db.session, "get", _lost_connection)  # loading the logged-in user fails
    response = client.get("/")
    assert response.status_code == 503 and response.mimetype == "text/html"
    assert UNAVAILABLE in response.get_data(as_text=True)


def test_reply_stands_when_the_database_goes_away_before_the_request_ends(app, backend, make, auth, client):
    if backend != "postgresql":
        pytest.skip("needs PostgreSQL: the test ends the request's server connection")
    going_away = []

    @app.after_request
    def server_goes_away(response):  # the page is made; its transaction is still open
        if going_away:
            pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
            with db.engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        return response

    auth.login(make.user().username)
    going_away.append(True)
    assert client.get("/").status_code == 200
    going_away.clear()
    assert client.get("/").status_code == 200  # the pool let the dead connection go


@pytest.fixture(scope="module")
def cluster():
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    try:
        owner = server_owner()
    except LookupError as exc:
        pytest.skip(str(exc))
    cluster = Cluster(bindir, owner)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope="module")
def site(cluster):
    with tempfile.TemporaryDirectory() as instance:
        app = make_app(cluster.url, instance)
        tokens, admin_token, exam_id, admin_id = seed(app, MEMBERS)
        with gunicorn(app_env(cluster.url, instance), workers=2, threads=4) as server:
            yield server, app, tokens, admin_token, exam_id, admin_id


def page_session(server, username):
    """Log in through the login form as a browser would; returns the session cookie."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    try:
        conn.request("GET", "/login")
        response = conn.getresponse()
        html = response.read().decode()
        cookie = response.getheader("Set-Cookie").split(";")[0]
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
        form = urllib.parse.urlencode({"csrf_token": token, "username": username, "password": PASSWORD})
        conn.request("POST", "/login", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
        response = conn.getresponse()
        response.read()
        assert response.status == 302, response.status
        return response.getheader("Set-Cookie").split(";")[0]
    finally:
        conn.close()


def award_points(server, token, rec, deadline, keys):
    """The branch secretary's script: one points award after another, each retried with its key."""
    client = Client(server, token, rec, deadline, max_backoff=0.3)
    try:
        for i, key in enumerate(keys):
            status, body = client.call("POST", "/api/v1/points/awards", {
                "username": f"f{i % MEMBERS:03d}", "points": 1, "reason": "故障演练加分", "key": key})
            assert status == 200, (status, body)
            with rec.lock:
                rec.awards_acked.add(key)
            time.sleep(0.25)
    except Exception as exc:  # noqa: BLE001 - the test thread reports it
        with rec.lock:
            rec.failures.append(f"awards: {exc!r}")
    finally:
        client.close()


def probe(server, token, cookie, rec, stop):
    """Ask for my account (API) and the home page (HTML) ten times a second, without retrying."""
    api, page = Client(server, token, rec, 0), Client(server, None, rec, 0)
    while not stop.is_set():
        api.once("GET", "/api/v1/me")
        page.once("GET", "/", headers={"Cookie": cookie})
        time.sleep(0.1)
    api.close()
    page.close()


def test_database_restart_gives_503_then_recovers_with_nothing_half_written(site, cluster):
    server, app, tokens, admin_token, exam_id, admin_id = site
    workers = server.workers()
    cookie = page_session(server, "f000")
    rec = Recorder()
    deadline = time.monotonic() + 45
    stop = threading.Event()
    keys = [f"restart-{i}" for i in range(AWARDS)]

    def member(token):
        time.sleep(random.uniform(0, 5))  # noqa: S311 - some start, some submit while the database is down
        sit_exam(server, token, exam_id, rec, deadline, pause=0.3, max_backoff=0.3)

    threads = [threading.Thread(target=member, args=(token,), daemon=True) for token in tokens]
    threads.append(threading.Thread(target=award_points, args=(server, admin_token, rec, deadline, keys),
                                    daemon=True))
    prober = threading.Thread(target=probe, args=(server, admin_token, cookie, rec, stop), daemon=True)
    for thread in [*threads, prober]:
        thread.start()
    try:
        time.sleep(2.5)
        cluster.stop("fast")
        down_at = time.monotonic()
        time.sleep(DOWN_SECONDS)
        restarting_at = time.monotonic()
        cluster.start()
        up_at = time.monotonic()
        for thread in threads:
            thread.join(max(1.0, deadline + 10 - time.monotonic()))
        time.sleep(max(0.0, up_at + RECOVERY_SECONDS + 1 - time.monotonic()))
    finally:
        stop.set()
        prober.join(20)

    assert not rec.failures, rec.failures[:5]
    assert len(rec.finished) == MEMBERS and rec.awards_acked == set(keys)
    replies = list(rec.replies)
    by_status = rec.statuses()
    print(f"replies by status: {by_status}")
    # Never a server error other than 503, nor a dropped connection.
    assert set(by_status) <= {200, 503}, by_status
    for _sent, _received, _method, path, status, ctype, body in replies:
        if path.startswith("/api/") and status != 200:
            assert ctype.startswith("application/json"), (path, status, ctype, body)
            assert b'"code":"unavailable"' in body.replace(b" ", b""), (path, body)
        elif status == 503:
            assert ctype.startswith("text/html") and UNAVAILABLE in body.decode(errors="replace"), (path, body)

    # While the database was down, everything that needs it was refused with a 503.
    while_down = [r for r in replies if r[0] >= down_at + 0.2 and r[1] <= restarting_at]
    assert {r[4] for r in while_down} == {503}, {(r[3], r[4]) for r in while_down}
    assert any(r[3] == "/api/v1/me" for r in while_down) and any(r[3] == "/" for r in while_down)
    assert any(r[3].startswith("/api/v1/attempts/") for r in while_down)

    # Back within seconds, with the same gunicorn workers (the pool's pre-ping replaced dead connections).
    after = [r for r in replies if r[0] >= up_at and r[3] in ("/api/v1/me", "/")]
    first_ok = min(r[1] for r in after if r[4] == 200)
    assert first_ok - up_at < RECOVERY_SECONDS
    assert all(r[4] == 200 for r in after if r[0] >= up_at + RECOVERY_SECONDS), "still failing after restart"
    assert server.workers() == workers
    assert not server.log_errors(), server.log_errors()[:5]

    award_sources = {f"api:{admin_id}:{key}" for key in keys}
    attempts = check_consistency(app, rec, exam_id, award_keys=award_sources)
    assert len(attempts) == MEMBERS and all(a.state == "submitted" for a in attempts.values())
