"""The real client address (PBSCHOOL_PROXY_COUNT through ProxyFix) and sign-in throttling that an
outsider cannot turn against members (issue 12, item 4; ASVS 5.0 V6.3.1)."""

import datetime as dt
import os
import secrets
import uuid

import pytest
from sqlalchemy import select

from pbschool import clock
from pbschool.accounts.models import AuditLog
from pbschool.extensions import db
from tests.factories import PASSWORD, Factory

NGINX = "10.0.0.2"
ATTACKER, MEMBER = "203.0.113.9", "198.51.100.7"
#: A minute's start and a second: the sliding windows begin empty.
T0 = dt.datetime(2026, 12, 2, 8, 0, 1)


def token(client, username, password, address=None, forwarded=None):
    environ = {"REMOTE_ADDR": address} if address else {}
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post("/api/v1/tokens", json={"username": username, "password": password},
                       environ_base=environ, headers=headers)


def login(client, username, password, address):
    return client.post("/login", data={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address})


@pytest.fixture
def behind_nginx(app_factory):
    app = app_factory(PROXY_COUNT=1)
    with app.app_context():
        yield app
        db.session.rollback()


def test_behind_nginx_one_machines_failures_do_not_shut_out_the_committee(behind_nginx):
    """The issue: 160 failed token requests with random usernames from one machine, then correct
    passwords of other members were refused (429) — every client had nginx's address."""
    Factory().user("liuzq")
    Factory().user("sunlj")
    client = behind_nginx.test_client()
    for _ in range(160):
        status = token(client, "x" + secrets.token_hex(4), "wrong-pass-x", NGINX, ATTACKER).status_code
        assert status in (401, 429)
    assert token(client, "liuzq", PASSWORD, NGINX, ATTACKER).status_code == 429  # the guesser is stopped
    for username, address in (("liuzq", MEMBER), ("sunlj", "198.51.100.8")):
        assert token(client, username, PASSWORD, NGINX, address).status_code == 200, username
    assert login(client, "sunlj", PASSWORD, NGINX).status_code == 302  # nginx's own address: another client


def test_behind_nginx_the_audit_log_names_the_client_not_nginx(behind_nginx):
    client = behind_nginx.test_client()
    token(client, "nobody", "wrong-pass-x", NGINX, MEMBER)
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "auth.failed"))
    assert entry.ip == MEMBER


def test_behind_nginx_only_the_address_nginx_saw_is_believed(behind_nginx):
    """A client's own X-Forwarded-For entries come before nginx's: rotating them gets no new budget."""
    clock.pin(T0)  # one window, however slowly the machine runs the 40 requests
    Factory().user("liuzq")
    client = behind_nginx.test_client()
    refused = 0
    for n in range(40):
        forged = f"192.0.2.{n}, {ATTACKER}"  # what the client wrote, then what nginx appended
        refused += token(client, f"guess{n}", "wrong-pass-x", NGINX, forged).status_code == 429
    assert refused == 10  # the address budget is 30 a minute, whatever was forged


def test_without_a_proxy_x_forwarded_for_is_ignored(client, make):
    clock.pin(T0)
    make.user("liuzq")
    statuses = [token(client, f"guess{n}", "wrong-pass-x", ATTACKER, f"192.0.2.{n}").status_code
                for n in range(31)]
    assert statuses.count(401) == 30 and statuses[-1] == 429


def test_guesses_at_an_account_from_one_address_do_not_lock_the_member_out_elsewhere(client, make):
    make.user("liuzq")
    for _ in range(5):
        assert login(client, "liuzq", "wrong-pass-x", ATTACKER).status_code == 200
    # the guesser is stopped, even with the right password ...
    assert login(client, "liuzq", PASSWORD, ATTACKER).status_code == 429
    assert token(client, "liuzq", PASSWORD, ATTACKER).status_code == 429
    # ... but the member, from their own machine, signs in through either door
    assert token(client, "liuzq", PASSWORD, MEMBER).status_code == 200
    assert login(client, "liuzq", PASSWORD, MEMBER).status_code == 302


def test_each_failure_beyond_a_few_doubles_the_wait(app_factory):
    app = app_factory(LOGIN_LIMITS_ACCOUNT="1000 per hour", LOGIN_LIMITS_ADDRESS="1000 per hour",
                      LOGIN_LIMITS_ACCOUNT_ALL="1000 per hour")
    with app.app_context():
        Factory().user("liuzq")
        client = app.test_client()
        clock.pin(T0)
        for _ in range(5):
            assert token(client, "liuzq", "wrong-pass-x", ATTACKER).status_code == 401
        for wait in (2, 4, 8, 16):
            refused = token(client, "liuzq", PASSWORD, ATTACKER)
            assert refused.status_code == 429 and refused.headers["Retry-After"] == str(wait)
            clock.advance(seconds=wait - 1)
            assert token(client, "liuzq", "wrong-pass-x", ATTACKER).status_code == 429  # not yet
            clock.advance(seconds=1)
            assert token(client, "liuzq", "wrong-pass-x", ATTACKER).status_code == 401
        # the member elsewhere was never slowed down, and a good sign-in ends the guesser's streak only
        assert token(client, "liuzq", PASSWORD, MEMBER).status_code == 200
        assert token(client, "liuzq", PASSWORD, ATTACKER).status_code == 429
        clock.advance(seconds=32)
        assert token(client, "liuzq", PASSWORD, ATTACKER).status_code == 200
        assert token(client, "liuzq", "wrong-pass-x", ATTACKER).status_code == 401
        assert token(client, "liuzq", PASSWORD, ATTACKER).status_code == 200  # the streak started again


def test_many_machines_together_meet_a_ceiling_for_the_account(app_factory):
    """Only guessing spread over many addresses reaches the account's own ceiling."""
    app = app_factory(LOGIN_LIMITS_ACCOUNT_ALL="12 per hour")
    with app.app_context():
        Factory().user("liuzq")
        client = app.test_client()
        clock.pin(T0)
        for n in range(12):
            assert token(client, "liuzq", "wrong-pass-x", f"203.0.113.{n // 4}").status_code == 401
        assert token(client, "liuzq", PASSWORD, MEMBER).status_code == 429


def _fail_in_another_process(tmp_path, url, times):
    """A second worker: its own interpreter and memory, the same database."""
    from pbschool import create_app
    from tests.conftest import make_test_config

    app = create_app(make_test_config(tmp_path, url))
    client = app.test_client()
    with app.app_context():
        return [login(client, "liuzq", "wrong-pass-x", ATTACKER).status_code for _ in range(times)]


def test_two_processes_on_one_database_count_the_same_failures(app, backend, tmp_path):
    """The issue: without Redis each worker counted on its own (18 guesses in half a second against
    "5 per minute"). Here a second process, sharing only the database, guesses first."""
    import multiprocessing

    Factory().user("liuzq")
    db.session.commit()
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        other = pool.apply(_fail_in_another_process, (tmp_path, app.config["SQLALCHEMY_DATABASE_URI"], 4))
    assert other == [200] * 4
    client = app.test_client()
    assert login(client, "liuzq", "wrong-pass-x", ATTACKER).status_code == 200  # the fifth in all
    assert login(client, "liuzq", "wrong-pass-x", ATTACKER).status_code == 429
    assert login(client, "liuzq", PASSWORD, ATTACKER).status_code == 429


REDIS_URL = os.environ.get("PBSCHOOL_REDIS_TEST_URL")


def test_two_processes_sharing_redis_count_the_same_failures(app_factory, backend):
    if not REDIS_URL:
        pytest.skip("Redis: PBSCHOOL_REDIS_TEST_URL is not set")
    if backend == "postgresql":
        pytest.skip("the counters are in Redis, not the database")
    prefix = {"key_prefix": f"t{uuid.uuid4().hex[:8]}"}
    first = app_factory(REDIS_URL=REDIS_URL, RATELIMIT_STORAGE_OPTIONS=prefix)
    second = app_factory(REDIS_URL=REDIS_URL, RATELIMIT_STORAGE_OPTIONS=prefix)
    with first.app_context():
        Factory().user("liuzq")
        assert not db.session.scalars(select(AuditLog.id).where(AuditLog.action == "x")).all()
    a, b = first.test_client(), second.test_client()
    for n in range(5):
        assert login(a if n % 2 else b, "liuzq", "wrong-pass-x", ATTACKER).status_code == 200
    assert login(b, "liuzq", PASSWORD, ATTACKER).status_code == 429
    with first.app_context():
        from pbschool.accounts.models import ThrottleCounter

        assert db.session.scalar(select(ThrottleCounter.key)) is None  # counted in Redis, not here
