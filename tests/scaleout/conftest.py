"""Scale-out: the app as two gunicorn servers (two workers each) on different ports, sharing one
PostgreSQL database and one Redis, as production would run it behind a load balancer.

The ``cluster`` fixture (module scope) makes a scratch database, migrates it, seeds it through the
app's own services, flushes the test Redis database and starts both servers. Tests talk to them
over HTTP only (``cluster.a``, ``cluster.b``) and look at the database through ``cluster.sql()``.
Needs PBSCHOOL_TEST_DATABASE_URL, PBSCHOOL_REDIS_TEST_URL and gunicorn; skipped with a reason otherwise.
"""

import http.client
import json
import os
import re
import urllib.parse
from contextlib import ExitStack
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, text

from tests.databases import psycopg_url, scratch_postgres

PG_URL = os.environ.get("PBSCHOOL_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("PBSCHOOL_REDIS_TEST_URL")
PASSWORD = "scale-out-pass-1"
TIMEOUT = 60  # seconds per request: generous, for a loaded two-core machine
BANK = "扩容测试题库"
QUESTIONS = 3
#: The exam_passed rule's daily cap for these tests (the built-in rule has none); 3.5 is not a
#: multiple of the 1.0 an exam pays, so an overshoot or a lost remainder both show.
DAILY_CAP = Decimal("3.5")
CAP_EXAMS = 6
IDEMPOTENCY_MEMBERS = 6
MEMBERS = ["so_alone", "so_shared", "so_bystander", "so_api", "so_deadline", "so_caps",
           *(f"so_idem{i}" for i in range(IDEMPOTENCY_MEMBERS))]


class Server:
    """One gunicorn server, spoken to over plain HTTP, a fresh connection per request (thread-safe)."""

    def __init__(self, name, url):
        self.name, self.url = name, url
        host, port = url.split("//")[1].split(":")
        self.host, self.port = host, int(port)

    def __repr__(self):
        return f"<server {self.name} {self.url}>"

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def api(self, method, path, token=None, payload=None):
        """(status, decoded JSON) of a /api/v1 call."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = None if payload is None else json.dumps(payload).encode()
        status, _headers, data = self.request(method, "/api/v1" + path, body, headers)
        return status, json.loads(data) if data else None

    def token(self, username, password=PASSWORD):
        status, body = self.api("POST", "/tokens", payload={"username": username, "password": password})
        assert status == 200, (self, username, status, body)
        return body["token"]


class Browser:
    """A browser's cookie jar, kept by hand: production cookies are Secure, and these servers speak
    plain HTTP on the loopback, where a real cookie jar would not send them back."""

    def __init__(self):
        self.jar = {}

    def _headers(self, extra=None):
        headers = dict(extra or {})
        if self.jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        return headers

    def _keep(self, headers):
        for value in headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.jar[name.strip()] = rest.split(";", 1)[0]

    def get(self, server, path):
        status, headers, data = server.request("GET", path, headers=self._headers())
        self._keep(headers)
        return status, data.decode()

    def post(self, server, path, fields):
        body = urllib.parse.urlencode(fields)
        status, headers, data = server.request(
            "POST", path, body, self._headers({"Content-Type": "application/x-www-form-urlencoded"}))
        self._keep(headers)
        return status, data.decode()

    def csrf_token(self, server, path="/login"):
        status, html = self.get(server, path)
        assert status == 200, (server, path, status)
        return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def _bank_csv():
    rows = ["type,stem,answer,score,category"]
    rows += [f"truefalse,扩容测试第{i}题：数据放在数据库里，任何一台服务器都读得到。,对,1,扩容" for i in range(1, 9)]
    return ("\n".join(rows) + "\n").encode()


def _seed(database_url, instance_dir):
    """Schema by migrations, then members, a bank, exams and the capped rule through the services."""
    from flask_migrate import upgrade

    from pbschool import create_app
    from pbschool.accounts import services as accounts
    from pbschool.exams import importer
    from pbschool.exams import services as exams
    from pbschool.extensions import db
    from pbschool.points import services as points
    from tests.conftest import make_test_config

    app = create_app(make_test_config(instance_dir, database_url))
    with app.app_context():
        upgrade()
        branch = accounts.create_branch("SO1", "扩容测试党支部")
        for username in MEMBERS:
            accounts.create_user(username, f"党员{username}", "member", branch, "", PASSWORD)
        importer.import_bank_file(_bank_csv(), "bank.csv", BANK)
        section = {"bank": BANK, "count": QUESTIONS, "points_each": 1}
        main = exams.create_exam({"title": "扩容测试考试", "time_limit_seconds": 1800, "max_attempts": 1,
                                  "pass_score": 60, "points_on_pass": 2, "sections": [section]})
        capped = [exams.create_exam({"title": f"上限测试考试{n}", "time_limit_seconds": 1800, "max_attempts": 1,
                                     "pass_score": 60, "points_on_pass": 1, "sections": [section]})
                  for n in range(1, CAP_EXAMS + 1)]
        points.ensure_default_rules()
        rule = points.rule_for("exam_passed")
        points.save_rule(rule, name=rule.name, category=rule.category, points=rule.points, unit=rule.unit,
                         daily_cap=DAILY_CAP, monthly_cap=rule.monthly_cap, bands=rule.bands)
        db.session.commit()
        ids = SimpleNamespace(main_exam=main.id, cap_exams=[e.id for e in capped])
        db.session.remove()
        db.engine.dispose()
    return app, ids


def _flush_redis():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


class Cluster(SimpleNamespace):
    def sql(self, statement, **params):
        """Rows of a statement run straight on the shared database (outside both servers)."""
        with self.engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return result.all() if result.returns_rows else result.rowcount

    def verify_ledger(self):
        """``pbschool ledger verify``'s check: (entries checked, None) or the first problem."""
        from pbschool.extensions import db
        from pbschool.points.services import verify_chain

        with self.app.app_context():
            try:
                return verify_chain()
            finally:
                db.session.remove()
                db.engine.dispose()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not PG_URL:
        pytest.skip("scale-out: PBSCHOOL_TEST_DATABASE_URL is not set (needs PostgreSQL)")
    if not REDIS_URL:
        pytest.skip("scale-out: PBSCHOOL_REDIS_TEST_URL is not set (needs Redis)")
    from tests.perf.common import BIN, app_env, gunicorn

    if not (BIN / "gunicorn").exists():
        pytest.skip(f"scale-out: gunicorn is not installed in {BIN}")
    tmp = tmp_path_factory.mktemp("scaleout")
    with ExitStack() as stack:
        database_url = stack.enter_context(scratch_postgres(PG_URL, "pbschool_scaleout"))
        app, ids = _seed(database_url, tmp)
        _flush_redis()
        servers = []
        for name in ("A", "B"):
            # Each server has an instance folder of its own: nothing may be shared through local files.
            env = app_env(database_url, tmp / f"instance-{name}")
            env["REDIS_URL"] = REDIS_URL  # app_env drops it; sharing Redis is the point here
            for key in ("PBSCHOOL_LOGIN_LIMIT_ACCOUNT", "PBSCHOOL_LOGIN_LIMIT_ADDRESS", "PBSCHOOL_EXAM_GRACE_SECONDS"):
                env.pop(key, None)  # the defaults the tests count on
            servers.append(Server(name, stack.enter_context(gunicorn(env, workers=2)).url))
        engine = create_engine(psycopg_url(database_url))
        stack.callback(engine.dispose)
        yield Cluster(a=servers[0], b=servers[1], app=app, engine=engine, ids=ids)
