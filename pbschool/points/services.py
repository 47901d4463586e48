"""Ledger operations. They take models and values, raise DomainError, flush, and never commit.

Every write to the ledger goes through ``_append``: it locks the chain head (one row, SELECT ...
FOR UPDATE), so appends are serialised, the hash chain stays linear, and a cap check made under
the lock sees every entry appended before it — caps hold under parallel requests.
"""

import datetime as dt
import hashlib
import json
import uuid
import zoneinfo
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

from flask import current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from pbschool import clock
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.points.models import CATEGORIES, LedgerEntry, LedgerHead, MonthlyPublication, PointRule

ZERO = Decimal("0.0")
TENTH = Decimal("0.1")
GENESIS = "0" * 64

#: kind -> (name, category, points, unit, daily cap, monthly cap). Every one is an admin setting.
DEFAULT_RULES = {
    "lesson_completed": ("完成课程学习", "学习", "1.0", None, "5.0", None),
    "study_time": ("在线学习时长（每10分钟）", "学习", "0.1", "10", "3.0", None),
    "exam_passed": ("通过考试", "考试", "2.0", None, None, None),
    "meeting_attended": ("参加三会一课", "组织生活", "5.0", None, None, None),
    "comment_approved": ("学习交流发言", "作用发挥", "0.5", None, "2.0", None),
}
#: Kinds written by people (secretary/admin), not by rules: never capped.
MANUAL_KINDS = {"award": "作用发挥", "deduction": "组织生活", "reversal": None}


# -- small helpers -----------------------------------------------------------------------------

def to_points(raw, field="points"):
    """A points amount as a one-decimal Decimal; a DomainError for anything else."""
    try:
        value = Decimal(str(raw)).quantize(TENTH, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise DomainError(_("积分应为数字，最多一位小数"), "invalid_points", field=field) from exc
    if not value.is_finite() or abs(value) >= 10000:
        raise DomainError(_("积分超出范围"), "invalid_points", field=field)
    return value


def _dec(raw):
    return Decimal(str(raw or 0))


def _local_tz():
    name = current_app.config.get("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai") if has_app_context() \
        else "Asia/Shanghai"
    try:
        return zoneinfo.ZoneInfo(name)
    except zoneinfo.ZoneInfoNotFoundError:
        return dt.timezone(dt.timedelta(hours=8))


def local_date(moment):
    """The committee's calendar day of a naive UTC moment (days and months are counted locally)."""
    return moment.replace(tzinfo=dt.UTC).astimezone(_local_tz()).date()


def period_of(day):
    return f"{day.year:04d}-{day.month:02d}"


def next_period(period):
    year, month = int(period[:4]), int(period[5:7])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def period_bounds(period):
    """First and last local day of 'YYYY-MM'."""
    year, month = int(period[:4]), int(period[5:7])
    first = dt.date(year, month, 1)
    nxt = next_period(period)
    last = dt.date(int(nxt[:4]), int(nxt[5:7]), 1) - dt.timedelta(days=1)
    return first, last


def current_period():
    return period_of(local_date(clock.now()))


def published_periods():
    return set(db.session.scalars(select(MonthlyPublication.period)))


def open_period_for(day):
    """The month an entry dated ``day`` counts in: its own, or the next one not yet published."""
    period = period_of(day)
    closed = published_periods()
    while period in closed:
        period = next_period(period)
    return period


# -- rules -------------------------------------------------------------------------------------

def ensure_default_rules():
    """Create the built-in rules that do not exist yet (idempotent, safe in parallel)."""
    existing = set(db.session.scalars(select(PointRule.kind)))
    made = []
    for kind, (name, category, points, unit, daily, monthly) in DEFAULT_RULES.items():
        if kind in existing:
            continue
        try:
            with db.session.begin_nested():
                rule = PointRule(kind=kind, name=name, category=category, points=Decimal(points),
                                 unit=Decimal(unit) if unit else None,
                                 daily_cap=Decimal(daily) if daily else None,
                                 monthly_cap=Decimal(monthly) if monthly else None)
                db.session.add(rule)
            made.append(rule)
        except IntegrityError:
            pass  # another request made it first
    return made


def rule_for(kind):
    rule = db.session.scalar(select(PointRule).where(PointRule.kind == kind))
    if rule is None and kind in DEFAULT_RULES:
        ensure_default_rules()
        rule = db.session.scalar(select(PointRule).where(PointRule.kind == kind))
    return rule


# -- the chain ---------------------------------------------------------------------------------

def _fmt_value(value):
    return None if value is None else str(Decimal(str(value)).quantize(Decimal("0.01")))


def entry_digest(entry, prev_hash):
    """SHA-256 over the entry's content and the previous entry's hash."""
    content = {
        "seq": entry.seq, "user_id": entry.user_id, "branch_id": entry.branch_id, "kind": entry.kind,
        "category": entry.category, "points": str(Decimal(str(entry.points)).quantize(TENTH)),
        "value": _fmt_value(entry.value), "reason": entry.reason or "", "source_key": entry.source_key,
        "occurred_at": entry.occurred_at.isoformat(), "day": entry.day.isoformat(), "period": entry.period,
        "is_adjustment": bool(entry.is_adjustment), "is_veto": bool(entry.is_veto),
        "actor_id": entry.actor_id, "rule_id": entry.rule_id, "reverses_id": entry.reverses_id,
    }
    payload = prev_hash + json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def _lock_head():
    """The chain head, locked for this transaction (created on first use)."""
    stmt = select(LedgerHead).where(LedgerHead.id == 1).with_for_update() \
        .execution_options(populate_existing=True)
    head = db.session.scalar(stmt)
    if head is None:
        try:
            with db.session.begin_nested():
                db.session.add(LedgerHead(id=1, seq=0, hash=GENESIS))
        except IntegrityError:
            pass
        head = db.session.scalar(stmt)
    return head


def _exists(source_key):
    return db.session.scalar(select(LedgerEntry.id).where(LedgerEntry.source_key == source_key)) is not None


def _append(user, *, kind, category, source_key, occurred_at=None, reason="", actor=None, rule=None,
            value=None, reverses=None, is_veto=False, amount):
    """Append one entry. ``amount`` is a Decimal, or a function called under the chain lock that
    returns the Decimal (cap checks) or None to write nothing. Returns the entry, or None for a
    duplicate ``source_key`` or a None amount."""
    if _exists(source_key):
        return None
    occurred_at = occurred_at or clock.now()
    day = local_date(occurred_at)
    try:
        with db.session.begin_nested():
            head = _lock_head()
            if _exists(source_key):  # appended by a parallel request while we waited for the lock
                return None
            points = amount(day) if callable(amount) else amount
            if points is None:
                return None
            period = open_period_for(day)
            entry = LedgerEntry(
                seq=head.seq + 1, user_id=user.id, branch_id=user.branch_id, kind=kind, category=category,
                points=to_points(points), value=None if value is None else Decimal(str(value)),
                reason=reason or "", source_key=source_key, occurred_at=occurred_at, created_at=clock.now(),
                day=day, period=period, is_adjustment=period != period_of(day), is_veto=bool(is_veto),
                actor_id=getattr(actor, "id", None), rule_id=getattr(rule, "id", None),
                reverses_id=getattr(reverses, "id", None), prev_hash=head.hash, hash="")
            entry.hash = entry_digest(entry, head.hash)
            db.session.add(entry)
            head.seq, head.hash = entry.seq, entry.hash
            db.session.flush()
        return entry
    except IntegrityError:
        if _exists(source_key):
            return None
        raise


def _sum_kind(user, kind, first_day, last_day, column=LedgerEntry.points):
    total = db.session.scalar(select(func.coalesce(func.sum(column), 0)).where(
        LedgerEntry.user_id == user.id, LedgerEntry.kind == kind,
        LedgerEntry.day >= first_day, LedgerEntry.day <= last_day))
    return _dec(total)


def _rule_amount(rule, user, points, value):
    """The closure that computes an event's points under the chain lock, caps applied."""

    def amount(day):
        if points is not None:
            gross = to_points(points)
        elif rule.unit and value is not None:
            # Unit rules pay for whole units accumulated over the day (short sessions add up).
            done = _sum_kind(user, rule.kind, day, day, LedgerEntry.value)
            units = ((done + _dec(value)) / _dec(rule.unit)).to_integral_value(rounding=ROUND_DOWN)
            gross = max(_dec(rule.points) * units - _sum_kind(user, rule.kind, day, day), ZERO)
        else:
            gross = _dec(rule.points)
        if gross > 0:
            rooms = []
            if rule.daily_cap is not None:
                rooms.append(_dec(rule.daily_cap) - _sum_kind(user, rule.kind, day, day))
            if rule.monthly_cap is not None:
                first, last = period_bounds(period_of(day))
                rooms.append(_dec(rule.monthly_cap) - _sum_kind(user, rule.kind, first, last))
            if rooms:
                room = min(rooms)
                if room <= 0:
                    return None  # the cap is used up: nothing to write
                gross = min(gross, room)
        return gross

    return amount


def record_event(user, kind, source_key, *, points=None, value=None, occurred_at=None, reason="", actor=None):
    """Something point-worthy happened. Turns it into a ledger entry by the rule for `kind`
    (its points, daily/monthly cap, category). Idempotent: the same `source_key` twice, or in
    parallel, writes one entry (unique constraint, inside a SAVEPOINT so a duplicate does not abort
    the caller's transaction). `points` overrides the rule's points (an exam sets its own
    points_on_pass). Returns the LedgerEntry, or None when it was a duplicate, the rule is off, or a
    cap left nothing. Flushes, never commits.

    A kind without a rule is still written (0 points unless `points` is given, category X) so that
    no event is lost; an admin can add the rule later."""
    if not source_key:
        raise ValueError("record_event needs a source_key")
    rule = rule_for(kind)
    if rule is not None and not rule.is_active:
        return None
    if rule is None:
        amount = to_points(points) if points is not None else ZERO
        category = "X"
    else:
        amount = _rule_amount(rule, user, points, value)
        category = rule.category
    return _append(user, kind=kind, category=category, source_key=str(source_key)[:200],
                   occurred_at=occurred_at, reason=reason or (rule.name if rule else kind), actor=actor,
                   rule=rule, value=value, amount=amount)


def balance(user) -> Decimal:
    """Everything the member has ever been credited, minus deductions and reversals."""
    total = db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.points), 0))
                              .where(LedgerEntry.user_id == user.id))
    return _dec(total).quantize(TENTH)


def new_source_key(prefix="manual"):
    return f"{prefix}:{uuid.uuid4().hex}"


__all__ = ["CATEGORIES", "record_event", "balance", "ensure_default_rules", "rule_for"]
