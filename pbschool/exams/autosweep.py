"""Grading without cron: the app sweeps overdue attempts itself, at most once an interval per
deployment (``EXAM_AUTO_SWEEP_SECONDS``, 60 by default, 0 = off).

Requests trigger it. A request first compares the clock with this process's next due time, which
costs no query; when due, the sweep runs after the response has been sent (``call_on_close``), in an
app context of its own, so it never delays or fails the request: errors are logged. Across processes
one claim decides who sweeps: a conditional update of the ``exam_sweep_mark`` row ("swept more than an
interval ago?"), made while holding, on PostgreSQL, ``pg_try_advisory_xact_lock`` on a connection of its
own for the whole sweep, so two sweeps never run at once; SQLite serialises the claim itself.
Grading one attempt stays idempotent (``services.submit_attempt`` locks the row), so the sweep of
``pbschool exams sweep`` from cron may run beside it.
"""

import datetime as dt
import logging
import threading

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from pbschool import clock
from pbschool.extensions import db

log = logging.getLogger(__name__)

#: The advisory lock's key (any 64-bit number the app uses for nothing else): "exam" in ASCII.
LOCK_KEY = 0x6578616D
MARK = "exams"


class _State:
    """This process's next due time for one app, and a guard so that one thread checks at a time."""

    def __init__(self):
        self.due = None
        self.lock = threading.Lock()


def interval(app):
    return int(app.config.get("EXAM_AUTO_SWEEP_SECONDS", 60) or 0)


def init_app(app):
    app.extensions["exam_autosweep"] = _State()
    app.after_request(_after_request)


def _after_request(response):
    from flask import current_app

    app = current_app._get_current_object()
    seconds = interval(app)
    if seconds <= 0:
        return response
    state = app.extensions["exam_autosweep"]
    now = clock.now()
    if state.due is not None and now < state.due:
        return response  # the hot path: no query, no lock
    if not state.lock.acquire(blocking=False):
        return response  # another thread of this process is checking
    try:
        if state.due is not None and now < state.due:
            return response  # another thread just took it
        state.due = now + dt.timedelta(seconds=seconds)
    finally:
        state.lock.release()
    response.call_on_close(lambda: run(app))
    return response


def run(app):
    """Claim the sweep and run it, in an app context of its own. Never raises. Returns how many
    attempts it graded, or None when another process swept (or is sweeping)."""
    try:
        with app.app_context():
            return sweep_if_due(interval(app) or 60)
    except Exception:  # noqa: BLE001  (a request already answered must never fail afterwards)
        log.exception("exam auto sweep failed")
        return None


def sweep_if_due(seconds, now=None):
    """Sweep when no process swept in the last ``seconds`` and none is sweeping now. Returns how
    many attempts it graded, or None when it did not sweep."""
    from sqlalchemy import text

    from pbschool.exams import services

    now = now or clock.now()
    mark = _mark_table()
    postgres = db.engine.dialect.name == "postgresql"
    with db.engine.connect() as conn:
        # PostgreSQL: this transaction holds the advisory lock (and the mark row) until the sweep
        # is over. SQLite: the committed claim is the lock, since an open write here would block the
        # sweep's own writes.
        if postgres and not conn.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY}):
            conn.rollback()
            return None  # another process is sweeping
        if not _claim(conn, now, seconds):
            conn.rollback()
            return None
        if not postgres:
            conn.commit()
        try:
            graded = services.sweep(now)
        finally:
            db.session.rollback()
        conn.execute(update(mark).where(mark.c.name == MARK).values(graded=graded))
        conn.commit()
    if graded:
        log.info("exam auto sweep graded %d overdue attempt(s)", graded)
    return graded


def _mark_table():
    from pbschool.exams.models import SweepMark

    return SweepMark.__table__


def _claim(conn, now, seconds):
    """True if this process may sweep: the mark is older than ``seconds`` (or missing) and now ours."""
    mark = _mark_table()
    cutoff = now - dt.timedelta(seconds=seconds)
    claimed = conn.execute(update(mark).where(mark.c.name == MARK, mark.c.swept_at <= cutoff)
                           .values(swept_at=now)).rowcount
    if claimed:
        return True
    if conn.scalar(select(mark.c.name).where(mark.c.name == MARK)) is not None:
        return False
    try:
        with conn.begin_nested():
            conn.execute(insert(mark).values(name=MARK, swept_at=now, graded=0))
    except IntegrityError:
        return False  # another process made the row first: it sweeps
    return True


def last_sweep():
    """(swept_at, graded) of the last in-app sweep, or None."""
    from pbschool.exams.models import SweepMark

    row = db.session.get(SweepMark, MARK)
    return None if row is None else (row.swept_at, row.graded)
