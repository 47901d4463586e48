"""Sign-in throttling that an outsider cannot turn against members (ASVS 5.0 V6.3.1).

Only failures count, and every budget but one names the address it came from, so failures sent from
one address never refuse a sign-in from another:

- per address (``LOGIN_LIMITS_ADDRESS``): one machine guessing at many accounts;
- per account and address (``LOGIN_LIMITS_ACCOUNT``), and a growing delay there: after the
  ``LOGIN_DELAY_AFTER``-th failure in a row the next try waits 2, 4, 8 ... seconds (at most
  ``LOGIN_DELAY_MAX``); a success from that address ends the streak;
- per account over all addresses (``LOGIN_LIMITS_ACCOUNT_ALL``): a ceiling several times the
  per-address budget, so only guessing spread over many machines reaches it.

The counters live where every process sees them: Redis when ``REDIS_URL`` is set, else the database
(one small table, upserted) - never one process's memory. When Redis fails the database takes over.
"""

import datetime as dt
import re
import secrets
import time

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from pbschool import clock
from pbschool.accounts.models import ThrottleCounter
from pbschool.extensions import db

_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT_RE = re.compile(r"^\s*(\d+)\s*(?:per|/)\s*(\d+)?\s*(second|minute|hour|day)s?\s*$")
#: A failure streak is forgotten after a day without failures.
STREAK_TTL = 86400


class Throttled(Exception):
    """Too many failures: try again after ``retry_after`` seconds."""

    def __init__(self, retry_after):
        super().__init__(retry_after)
        self.retry_after = max(1, int(retry_after))


def parse_limits(text):
    """'5 per minute;20 per hour' -> [(5, 60), (20, 3600)]."""
    limits = []
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        match = _LIMIT_RE.match(part)
        if not match:
            raise ValueError(f"not a limit: {part!r}")
        amount, multiple, period = match.groups()
        limits.append((int(amount), int(multiple or 1) * _PERIODS[period]))
    return limits


def _epoch(moment):
    return (moment - dt.datetime(1970, 1, 1)).total_seconds()


class DatabaseCounters:
    """Counters in the ``throttle_counter`` table, each write its own short transaction: a count must
    survive the request rolling back (a refused sign-in writes nothing else)."""

    def _insert(self, engine):
        return (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(ThrottleCounter)

    def hit(self, key, bucket, now):
        engine = db.engine
        stmt = self._insert(engine).values(key=key, bucket=bucket, count=1, touched_at=now)
        stmt = stmt.on_conflict_do_update(index_elements=["key", "bucket"],
                                          set_={"count": ThrottleCounter.count + 1, "touched_at": now})
        with engine.begin() as conn:
            conn.execute(stmt)
            # the buckets before the previous one can no longer matter
            conn.execute(delete(ThrottleCounter).where(ThrottleCounter.key == key, ThrottleCounter.bucket > 0,
                                                       ThrottleCounter.bucket < bucket - 1))

    def counts(self, key, buckets):
        with db.engine.connect() as conn:
            rows = conn.execute(select(ThrottleCounter.bucket, ThrottleCounter.count, ThrottleCounter.touched_at)
                                .where(ThrottleCounter.key == key, ThrottleCounter.bucket.in_(buckets))).all()
        return {row.bucket: (row.count, row.touched_at) for row in rows}

    def clear(self, key):
        with db.engine.begin() as conn:
            conn.execute(delete(ThrottleCounter).where(ThrottleCounter.key == key))

    def purge(self, before):
        with db.engine.begin() as conn:
            conn.execute(delete(ThrottleCounter).where(ThrottleCounter.touched_at < before))


class RedisCounters:
    """The same counters in Redis (shared across hosts); keys expire by themselves."""

    def __init__(self, url, prefix):
        import redis

        self.url = url
        self.redis = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self.prefix = prefix

    def _key(self, key, bucket):
        return f"{self.prefix}throttle:{key}:{bucket}"

    def hit(self, key, bucket, now):
        name = self._key(key, bucket)
        pipe = self.redis.pipeline()
        pipe.hincrby(name, "count", 1)
        pipe.hset(name, "touched", _epoch(now))
        pipe.expire(name, STREAK_TTL * 2)
        pipe.execute()

    def counts(self, key, buckets):
        pipe = self.redis.pipeline()
        for bucket in buckets:
            pipe.hmget(self._key(key, bucket), "count", "touched")
        found = {}
        for bucket, (count, touched) in zip(buckets, pipe.execute(), strict=True):
            if count is not None:
                found[bucket] = (int(count), dt.datetime(1970, 1, 1) + dt.timedelta(seconds=float(touched or 0)))
        return found

    def clear(self, key):
        self.redis.delete(self._key(key, 0))


#: When Redis last failed in this process: for a while after, the database counts alone, so that a
#: Redis that hangs costs one timeout, not one per counter per sign-in. (Only whether to try Redis
#: is kept in the process; the counts never are.)
_redis_failed_at = {}
REDIS_RETRY_SECONDS = 30
_redis_clients = {}


def _stores():
    """Redis first when configured (and not failing just now), the database always behind it."""
    url = current_app.config.get("REDIS_URL")
    stores = []
    resting = url in _redis_failed_at and time.monotonic() - _redis_failed_at[url] < REDIS_RETRY_SECONDS
    if url and not resting:
        prefix = (current_app.config.get("RATELIMIT_STORAGE_OPTIONS") or {}).get("key_prefix", "")
        if (url, prefix) not in _redis_clients:  # one connection pool per process, not one per call
            _redis_clients[(url, prefix)] = RedisCounters(url, prefix)
        stores.append(_redis_clients[(url, prefix)])
    stores.append(DatabaseCounters())
    return stores


def _call(method, *args):
    error = None
    for store in _stores():
        try:
            return getattr(store, method)(*args)
        except Exception as exc:  # noqa: BLE001 - Redis down: the database still counts
            if isinstance(store, DatabaseCounters):
                raise
            _redis_failed_at[store.url] = time.monotonic()
            error = exc
            current_app.logger.warning("throttle: Redis failed (%s); counting in the database", error)
    return None


def _window_estimate(key, seconds, now):
    """Failures in the last ``seconds``, estimated from this window's and the previous one's counts
    (a sliding window: failures cannot be spread over a boundary to double the allowance)."""
    ts = _epoch(now)
    bucket = int(ts // seconds) + 1  # bucket 0 is the streak's
    found = _call("counts", f"{key}@{seconds}", [bucket, bucket - 1])
    current = found.get(bucket, (0, None))[0]
    previous = found.get(bucket - 1, (0, None))[0]
    elapsed = (ts % seconds) / seconds
    return current + previous * (1 - elapsed), seconds * (1 - elapsed)


def _keys(username, address):
    account = (username or "").strip().lower()[:64]
    address = (address or "-")[:64]
    cfg = current_app.config
    return [
        (f"addr:{address}", parse_limits(cfg.get("LOGIN_LIMITS_ADDRESS"))),
        (f"acct:{account}|{address}", parse_limits(cfg.get("LOGIN_LIMITS_ACCOUNT"))),
        (f"acct:{account}", parse_limits(cfg.get("LOGIN_LIMITS_ACCOUNT_ALL"))),
    ], f"streak:{account}|{address}"


def _delay(failures):
    after = current_app.config.get("LOGIN_DELAY_AFTER", 5)
    if failures < after:
        return 0
    return min(2 ** (failures - after + 1), current_app.config.get("LOGIN_DELAY_MAX", 900))


def check(username, address):
    """Raise Throttled when a sign-in as ``username`` from ``address`` must wait."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    now = clock.now()
    budgets, streak_key = _keys(username, address)
    waits = []
    for key, limits in budgets:
        for amount, seconds in limits:
            used, reset_in = _window_estimate(key, seconds, now)
            if used >= amount:
                waits.append(reset_in)
    streak = _call("counts", streak_key, [0]).get(0)
    if streak is not None:
        failures, last = streak
        if (now - last).total_seconds() < STREAK_TTL:
            wait = _delay(failures) - (now - last).total_seconds()
            if wait > 0:
                waits.append(wait)
    if waits:
        raise Throttled(max(waits))


def failed(username, address):
    """Count one failed sign-in (wrong password, unknown user, wrong second factor)."""
    now = clock.now()
    budgets, streak_key = _keys(username, address)
    for key, limits in budgets:
        for _amount, seconds in limits:
            _call("hit", f"{key}@{seconds}", int(_epoch(now) // seconds) + 1, now)
    streak = _call("counts", streak_key, [0]).get(0)
    if streak is not None and (now - streak[1]).total_seconds() >= STREAK_TTL:
        _call("clear", streak_key)
    _call("hit", streak_key, 0, now)
    if secrets.randbelow(200) == 0:
        # now and then: guessed usernames leave keys nobody touches again
        purge_database(now)


def succeeded(username, address):
    """A good sign-in from this address ends its failure streak (the budgets keep their counts)."""
    _call("clear", _keys(username, address)[1])


def purge_database(now=None):
    """Drop counters nobody has touched for two days."""
    DatabaseCounters().purge((now or clock.now()) - dt.timedelta(seconds=STREAK_TTL * 2))


__all__ = ["Throttled", "check", "failed", "succeeded", "parse_limits", "purge_database"]
