"""Fixtures after flaskr: ``app``, ``client``, ``runner`` and a login helper.

Every test that uses ``app`` runs twice: on a fresh SQLite file and, when
PBSCHOOL_TEST_DATABASE_URL is set, on PostgreSQL (a database of its own per test run, emptied
between tests). Without the variable the PostgreSQL runs are reported as skipped.
"""

import os
import shutil

import pytest
from flask import has_app_context
from flask.testing import FlaskClient
from sqlalchemy import text

from pbschool import clock, create_app
from pbschool.config import parse_ledger_keys
from pbschool.extensions import db
from tests import factories
from tests.databases import scratch_postgres

PG_URL = os.environ.get("PBSCHOOL_TEST_DATABASE_URL")


def _redis_db_per_worker():
    """Under pytest-xdist each worker gets a Redis database of its own (15, 14, ...), so one worker's
    FLUSHDB never empties another's counters."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    url = os.environ.get("PBSCHOOL_REDIS_TEST_URL")
    if not url or not worker.startswith("gw"):
        return
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 15)
    os.environ["PBSCHOOL_REDIS_TEST_URL"] = urlunsplit(parts._replace(path=f"/{base - int(worker[2:])}"))


_redis_db_per_worker()
#: The ledger key of every test app, as PBSCHOOL_LEDGER_KEYS spells it (servers started by tests get it too).
LEDGER_KEYS = "t1:test-ledger-key-0123456789"


@pytest.fixture(scope="session")
def pg_database():
    """A PostgreSQL database created for this test run, dropped at its end."""
    if not PG_URL:
        pytest.skip("PostgreSQL: PBSCHOOL_TEST_DATABASE_URL is not set")
    with scratch_postgres(PG_URL) as url:
        yield url


_pg_schema_ready = set()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """An SQLite file with the whole schema, made once; each test starts from a copy of it (creating
    the schema anew took a fifth of a second a test)."""
    where = tmp_path_factory.mktemp("template")
    path = where / "schema.db"
    app = create_app(make_test_config(where, f"sqlite:///{path}"))
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    return path


def make_test_config(tmp_path, database_url, **overrides):
    media = tmp_path / "media"
    media.mkdir(exist_ok=True)
    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "PBSCHOOL_ENV": "testing",
        "SECRET_KEY": "test-secret",
        "LEDGER_KEYS": parse_ledger_keys(LEDGER_KEYS),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": None,
        "MEDIA_DIR": str(media),
        "MAX_UPLOAD_MB": 20,
        "MAX_CONTENT_LENGTH": 20 * 1024 * 1024,
        "EXAM_GRACE_SECONDS": 5,
        "EXAM_AUTO_SWEEP_SECONDS": 0,  # tests/exams/test_sweep_auto.py turns the in-app sweep on
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STRATEGY": "moving-window",
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_HEADERS_ENABLED": True,
        "LOGIN_LIMITS_ACCOUNT": "5 per minute;20 per hour",
        "LOGIN_LIMITS_ADDRESS": "30 per minute;300 per hour",
        "LOGIN_LIMITS_ACCOUNT_ALL": "100 per hour",
        # Admins signing in here have no phone: tests/accounts/test_totp.py turns the requirement on.
        "REQUIRE_2FA_FOR_ADMINS": False,
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_KIB": 64,
        "WTF_CSRF_ENABLED": False,
        "WTF_CSRF_TIME_LIMIT": None,  # as production: the session's lifetime
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
        "LANGUAGES": ["zh_CN", "en"],
        "COMMITTEE_NAME": "测试矿党委",
        "DEMO_MODE": False,
        "DEMO_HISTORY": False,  # the demo's months of history take seconds; the tests that need it turn it on
    }
    config.update(overrides)
    return config


def _reset_postgres(url):
    """Empty every table (fast) once the schema exists; create it the first time."""
    if url not in _pg_schema_ready:
        db.drop_all()
        db.create_all()
        _pg_schema_ready.add(url)
        return
    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


class Client(FlaskClient):
    """Each request gets an app context (and so a database session and ``g``) of its own, as in
    production, even though the test holds one open; afterwards the test's session re-reads rows."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            response = super().open(*args, **kwargs)
        if has_app_context():
            db.session.expire_all()
        return response


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture
def app_factory(backend, tmp_path, request):
    """Make an app on this test's backend with config overrides; its schema is fresh."""
    if backend == "postgresql":
        url = request.getfixturevalue("pg_database")
    else:
        path = tmp_path / "test.db"
        if not path.exists():
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    made = []

    def make(**overrides):
        app = create_app(make_test_config(tmp_path, url, **overrides))
        app.test_client_class = Client
        with app.app_context():
            if backend == "postgresql":
                _reset_postgres(url)
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    clock.pin(None)


@pytest.fixture
def app(app_factory):
    app = app_factory()
    with app.app_context():
        yield app
        db.session.rollback()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make(app):
    """Factory functions bound to the test's database: make.branch(), make.user(), ..."""
    return factories.Factory()


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, username, password=factories.PASSWORD, follow=False):
        return self._client.post("/login", data={"username": username, "password": password},
                                 follow_redirects=follow)

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def api(client):
    """A small JSON client: api.token(user) then api.get/post/put/delete with it."""
    return factories.ApiClient(client)


@pytest.fixture
def statements(app):
    """A list that collects the SQL statements the app sends while the test runs, to check that a page
    does not query once per row."""
    from sqlalchemy import event

    sent = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine, "before_cursor_execute", record)
