"""The one time source. Times are naive UTC datetimes everywhere inside the app."""

import contextlib
import datetime as dt

_pinned = None


def now():
    """Current UTC time (naive), or the pinned time in tests."""
    if _pinned is not None:
        return _pinned
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def today():
    return now().date()


def pin(moment):
    """Pin the clock to ``moment`` (None releases it)."""
    global _pinned
    _pinned = moment


def advance(**delta):
    """Move a pinned clock forward."""
    global _pinned
    if _pinned is None:
        raise RuntimeError("the clock is not pinned")
    _pinned = _pinned + dt.timedelta(**delta)


@contextlib.contextmanager
def pinned(moment):
    previous = _pinned
    pin(moment)
    try:
        yield
    finally:
        pin(previous)


def isoformat(moment):
    """ISO 8601 UTC with a Z, as the API speaks it."""
    if moment is None:
        return None
    return moment.replace(microsecond=0).isoformat() + "Z"
