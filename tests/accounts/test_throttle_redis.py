"""Login throttling shared through Redis (REDIS_URL), and what happens when Redis is down."""

import os
import uuid

import pytest

from tests.factories import PASSWORD, Factory

REDIS_URL = os.environ.get("PBSCHOOL_REDIS_TEST_URL")


def _login(client, username, password):
    return client.post("/login", data={"username": username, "password": password})


@pytest.fixture
def redis_url():
    if not REDIS_URL:
        pytest.skip("Redis: PBSCHOOL_REDIS_TEST_URL is not set")
    return REDIS_URL


def test_failed_logins_count_across_processes_sharing_redis(app_factory, redis_url, backend):
    if backend == "postgresql":
        pytest.skip("the limiter's storage does not depend on the database")
    prefix = {"key_prefix": f"t{uuid.uuid4().hex[:8]}"}
    config = dict(REDIS_URL=redis_url, RATELIMIT_STORAGE_URI=redis_url, RATELIMIT_STORAGE_OPTIONS=prefix)
    first = app_factory(**config)
    with first.app_context():
        Factory().user("liuzq")
    second = app_factory(**config)  # a second process: its own memory, the same Redis
    a, b = first.test_client(), second.test_client()
    for i in range(5):
        assert _login(a if i % 2 else b, "liuzq", "wrong-pass-x").status_code == 200
    assert _login(a, "liuzq", PASSWORD).status_code == 429
    assert _login(b, "liuzq", PASSWORD).status_code == 429


def test_redis_down_degrades_to_per_process_limits_not_none(app_factory, backend):
    if backend == "postgresql":
        pytest.skip("the limiter's storage does not depend on the database")
    dead = "redis://127.0.0.1:1/0"
    app = app_factory(REDIS_URL=dead, RATELIMIT_STORAGE_URI=dead,
                      RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 0.2, "socket_timeout": 0.2})
    with app.app_context():
        Factory().user("liuzq")
    client = app.test_client()
    assert _login(client, "liuzq", PASSWORD).status_code == 302  # the site still serves
    client.post("/logout")
    for _ in range(5):
        assert _login(client, "liuzq", "wrong-pass-x").status_code == 200
    assert _login(client, "liuzq", PASSWORD).status_code == 429  # brute force still stops
