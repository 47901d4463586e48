"""Ledger operations. They take models and values, raise DomainError, flush, and never commit.

Every write to the ledger goes through ``_append``: it locks the chain head (one row, SELECT ...
FOR UPDATE), so appends are serialised, the hash chain stays linear, and a cap check made under
the lock sees every entry appended before it — caps hold under parallel requests.
"""

import datetime as dt
import hashlib
import json
import re
import uuid
import zoneinfo
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from flask import current_app, has_app_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from pbschool import auth, clock, registry
from pbschool.accounts.services import audit
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.points import keys
from pbschool.points.models import (
    CATEGORIES,
    LedgerEntry,
    LedgerHead,
    MonthlyPublication,
    PointRule,
    PointSetting,
    PointTotal,
    PublishedScore,
    StarRating,
)

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
    "daily_practice": ("每日答题（每答对一题）", "学习", "1.0", None, "5.0", None),
}
#: Entries people write (secretary/admin) have the kinds "award", "deduction" and "reversal": no caps.


# -- small helpers -----------------------------------------------------------------------------

#: The name a points field has on the forms, for the reason a value is refused.
POINT_FIELDS = {
    "points": _l("分值"), "daily_cap": _l("每日上限"), "monthly_cap": _l("每月上限"), "bands": _l("分数段积分"),
}


def to_points(raw, field="points"):
    """A points amount as a one-decimal Decimal. Anything else is a DomainError naming the field:
    not a number (``invalid_points``), or more than one decimal (``too_precise``), which is never
    rounded away: 2.55 is refused, not recorded as 2.6. 2.50 is 2.5 (nothing is lost)."""
    label = POINT_FIELDS.get(field, field)
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise DomainError(_("%(f)s应为数字，最多一位小数", f=label), "invalid_points", field=field) from exc
    if not value.is_finite() or abs(value) >= 10000:
        raise DomainError(_("%(f)s超出范围", f=label), "invalid_points", field=field)
    tenths = value.quantize(TENTH)
    if tenths != value:
        raise DomainError(_("%(f)s最多一位小数（收到 %(v)s），请改正后再提交", f=label, v=raw), "too_precise",
                          field=field)
    return tenths


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


def entry_digest(entry, prev_hash, key=None):
    """HMAC-SHA256, under the ledger key the entry names (``key_id``), over the entry's content and the
    previous entry's hash: nobody without the key can re-chain the ledger after changing an entry.
    Entries chained before the ledger had a key (``key_id`` None) keep their plain SHA-256. ``key``
    overrides the configured secret (to show what a wrong key gives)."""
    content = {
        "seq": entry.seq, "user_id": entry.user_id, "branch_id": entry.branch_id, "kind": entry.kind,
        "category": entry.category, "points": str(Decimal(str(entry.points)).quantize(TENTH)),
        "value": _fmt_value(entry.value), "reason": entry.reason or "", "source_key": entry.source_key,
        "occurred_at": entry.occurred_at.isoformat(), "created_at": entry.created_at.isoformat(),
        "day": entry.day.isoformat(), "period": entry.period,
        "is_adjustment": bool(entry.is_adjustment), "is_veto": bool(entry.is_veto),
        "actor_id": entry.actor_id, "rule_id": entry.rule_id, "reverses_id": entry.reverses_id,
    }
    key_id = getattr(entry, "key_id", None)
    if key_id is None and key is None:
        payload = prev_hash + json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()
    content["key_id"] = key_id
    payload = prev_hash + json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return keys.mac(key_id, payload, key=key)


def _lock_head():
    """The chain head, locked until this transaction ends (created on first use)."""
    if db.session.get_bind().dialect.name == "sqlite":
        # SQLite has no row locks: a write takes the database's write lock now (and opens the
        # transaction, so the SAVEPOINT below nests inside the caller's work).
        db.session.execute(update(LedgerHead).where(LedgerHead.id == 1).values(seq=LedgerHead.seq))
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
    head = _lock_head()
    if _exists(source_key):  # appended by a parallel request while we waited for the lock
        return None
    points = amount(day) if callable(amount) else amount
    if points is None:
        return None
    period = open_period_for(day)
    try:
        with db.session.begin_nested():
            entry = LedgerEntry(
                seq=head.seq + 1, user_id=user.id, branch_id=user.branch_id, kind=kind, category=category,
                points=to_points(points), value=None if value is None else Decimal(str(value)),
                reason=(reason or "")[:500], source_key=source_key, occurred_at=occurred_at,
                created_at=clock.now(), day=day, period=period,
                is_adjustment=period != period_of(day) or (reverses is not None and reverses.period != period),
                is_veto=bool(is_veto), actor_id=getattr(actor, "id", None), rule_id=getattr(rule, "id", None),
                reverses_id=getattr(reverses, "id", None), prev_hash=head.hash, hash="", key_id=keys.current_id())
            entry.hash = entry_digest(entry, head.hash)
            db.session.add(entry)
            head.seq, head.hash = entry.seq, entry.hash
            _add_to_total(user.id, period, entry.points)
            db.session.flush()
        return entry
    except IntegrityError:
        if _exists(source_key):
            return None
        raise


def _add_to_total(user_id, period, points):
    total = db.session.scalar(select(PointTotal).where(PointTotal.user_id == user_id, PointTotal.period == period)
                              .execution_options(populate_existing=True))
    if total is None:
        db.session.add(PointTotal(user_id=user_id, period=period, points=points, entries=1))
    else:
        total.points, total.entries = _dec(total.points) + points, total.entries + 1


def _sum_kind(user, kind, first_day, last_day, column=LedgerEntry.points):
    total = db.session.scalar(select(func.coalesce(func.sum(column), 0)).where(
        LedgerEntry.user_id == user.id, LedgerEntry.kind == kind,
        LedgerEntry.day >= first_day, LedgerEntry.day <= last_day))
    return _dec(total)


def band_points(bands, value):
    """The points of the highest band whose lower bound the value reaches (0 below every band)."""
    for bound, pts in sorted(bands, key=lambda b: -Decimal(str(b[0]))):
        if _dec(value) >= Decimal(str(bound)):
            return to_points(pts)
    return ZERO


def parse_bands(text):
    """'90:3, 80:2, 60:1' -> [[90, "3.0"], [80, "2.0"], [60, "1.0"]]; empty -> None."""
    text = (text or "").replace("，", ",").replace("：", ":").strip()
    if not text:
        return None
    bands = []
    for part in text.split(","):
        bound, sep, pts = part.partition(":")
        try:
            if not sep:
                raise ValueError(part)
            bound = Decimal(bound.strip())
            if not 0 <= bound <= 100:
                raise ValueError(part)
            bands.append([int(bound) if bound == bound.to_integral_value() else float(bound),
                          str(to_points(pts.strip(), "bands"))])
        except DomainError as exc:
            if exc.code == "too_precise":
                raise
            raise DomainError(_("分数段应写成“90:3, 80:2, 60:1”（分数线:积分）"), "invalid_bands",
                              field="bands") from exc
        except (ValueError, InvalidOperation) as exc:
            raise DomainError(_("分数段应写成“90:3, 80:2, 60:1”（分数线:积分）"), "invalid_bands",
                              field="bands") from exc
    return sorted(bands, key=lambda b: -b[0])


def _rule_amount(rule, user, points, value):
    """The closure that computes an event's points under the chain lock, caps applied."""

    def amount(day):
        if rule.bands and value is not None:
            gross = band_points(rule.bands, value)
        elif points is not None:
            gross = to_points(points)
        elif rule.unit and value is not None:
            # Unit rules pay for whole units accumulated over the day (short sessions add up).
            done = _sum_kind(user, rule.kind, day, day, LedgerEntry.value)
            units = ((done + _dec(value)) / _dec(rule.unit)).to_integral_value(rounding=ROUND_DOWN)
            gross = max(_dec(rule.points) * units - _sum_kind(user, rule.kind, day, day), ZERO)
        else:
            gross = _dec(rule.points)
        if gross > 0:
            room = rule_room(rule, user, day)
            if room is not None:
                if room <= 0:
                    return None  # the cap is used up: nothing to write
                gross = min(gross, room)
        return gross

    return amount


def rule_room(rule, user, day):
    """What ``user`` may still earn by ``rule`` on local ``day`` under its daily and monthly caps
    (None: no cap). The one cap arithmetic: appends use it under the chain lock, today's tasks to show it."""
    rooms = []
    if rule.daily_cap is not None:
        rooms.append(_dec(rule.daily_cap) - _sum_kind(user, rule.kind, day, day))
    if rule.monthly_cap is not None:
        first, last = period_bounds(period_of(day))
        rooms.append(_dec(rule.monthly_cap) - _sum_kind(user, rule.kind, first, last))
    return max(min(rooms), ZERO) if rooms else None


def today_by_rule(user, day=None):
    """[(rule, points today, room left or None)] for every active rule, by the local ``day`` (today)."""
    day = day or local_date(clock.now())
    ensure_default_rules()
    rules = db.session.scalars(select(PointRule).where(PointRule.is_active.is_(True))
                               .order_by(PointRule.is_custom, PointRule.id)).all()
    return [(rule, _sum_kind(user, rule.kind, day, day), rule_room(rule, user, day)) for rule in rules]


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
    total = db.session.scalar(select(func.coalesce(func.sum(PointTotal.points), 0))
                              .where(PointTotal.user_id == user.id))
    return _dec(total).quantize(TENTH)


def new_source_key(prefix="manual"):
    return f"{prefix}:{uuid.uuid4().hex}"



# -- people's entries: awards, deductions, reversals --------------------------------------------

def can_award(actor, member):
    """A branch secretary for their own branch's members, an admin for anyone's; nobody for themself."""
    return (actor is not None and member is not None and member.branch_id is not None and actor.id != member.id
            and auth.has_role(actor, "secretary", "admin") and auth.can_oversee_branch(actor, member.branch_id))


def require_award_right(actor, member, message=None):
    """Refuse (403) whoever may not write ``member``'s points: themself first, with that reason
    (``own_points``), then anyone outside the member's branch (``forbidden``)."""
    auth.refuse_self(actor, member, "own_points")
    if not can_award(actor, member):
        raise DomainError(message or _("只能为本支部的党员加减分"), "forbidden", 403, field="member")


def _check_reason(reason):
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("请填写理由"), "missing_reason", field="reason")
    if len(reason) > 500:
        raise DomainError(_("理由不能超过 500 个字符"), "invalid_reason", field="reason")
    return reason


def award(member, points, reason, *, actor, category="作用发挥", is_veto=False, source_key=None,
          occurred_at=None, rule=None):
    """A secretary/admin adds (positive) or deducts (negative) points for a member, with a reason.
    A deduction may be a veto item (一票否决). ``source_key`` (the form's one-time key) makes a
    double submit write once. With ``rule`` (a custom X rule), its points, caps and category apply."""
    require_award_right(actor, member)
    reason = _check_reason(reason)
    source_key = source_key or new_source_key()
    if rule is not None:
        if not rule.is_active:
            raise DomainError(_("该积分规则已停用"), "rule_inactive", field="rule")
        entry = _append(member, kind=rule.kind, category=rule.category, source_key=source_key,
                        occurred_at=occurred_at, reason=reason, actor=actor, rule=rule,
                        amount=_rule_amount(rule, member, None, None))
        if entry is None and not _exists(source_key):
            raise DomainError(_("该规则今日（或本月）的积分已达上限"), "cap_reached", 409, field="rule")
    else:
        points = to_points(points)
        if points == 0:
            raise DomainError(_("分值不能为 0"), "invalid_points", field="points")
        if category not in CATEGORIES and category not in custom_categories():
            raise DomainError(_("请选择积分类别"), "invalid_category", field="category")
        if is_veto and points > 0:
            raise DomainError(_("只有扣分可以列为一票否决项"), "invalid_veto", field="is_veto")
        entry = _append(member, kind="award" if points > 0 else "deduction", category=category,
                        source_key=source_key, occurred_at=occurred_at, reason=reason, actor=actor,
                        is_veto=is_veto, amount=points)
    if entry is not None:
        audit(actor, "points.award", entry, f"{member.username} {entry.points} {reason}",
              member=member.username, points=str(entry.points), veto=bool(is_veto))
    return entry


def reverse(entry, reason, *, actor):
    """Cancel an entry with a new one of the opposite amount that points at it (once)."""
    require_award_right(actor, entry.user, _("只能更正本支部党员的积分"))
    reason = _check_reason(reason)
    if entry.reverses_id is not None:
        raise DomainError(_("冲正记录不能再次冲正"), "not_reversible", 409)
    reversal = _append(entry.user, kind="reversal", category=entry.category, source_key=f"reversal:{entry.id}",
                       reason=reason, actor=actor, reverses=entry, amount=-_dec(entry.points))
    if reversal is None:
        raise DomainError(_("这条记录已经冲正过了"), "already_reversed", 409)
    audit(actor, "points.reverse", reversal, f"reverses #{entry.id}: {reason}", entry=entry.id)
    return reversal


def reverse_correction(entry, reason, *, actor=None):
    """The reversal of an event entry the system itself corrects (a regrade that failed a passed
    attempt): a new entry of the opposite amount pointing at ``entry``, at most once. The caller has
    decided who may make the correction; ``actor`` is recorded. Returns None if already reversed."""
    if entry.reverses_id is not None or entry.kind in ("award", "deduction", "reversal"):
        raise ValueError("only an event entry is corrected this way")
    reversal = _append(entry.user, kind="reversal", category=entry.category, source_key=f"reversal:{entry.id}",
                       reason=_check_reason(reason), actor=actor, reverses=entry, amount=-_dec(entry.points))
    if reversal is not None:
        audit(actor, "points.reverse", reversal, f"reverses #{entry.id}: {reason}", entry=entry.id)
    return reversal


def custom_categories():
    return sorted({c for c in db.session.scalars(select(PointRule.category).where(PointRule.is_custom.is_(True)))
                   if c not in CATEGORIES})


# -- rules admin ------------------------------------------------------------------------------------

def save_rule(rule, *, name, category, points, unit=None, daily_cap=None, monthly_cap=None, is_active=True,
              bands=None, actor=None):
    """Create (``rule`` None: a custom X rule) or change a rule."""
    name = (name or "").strip()
    category = (category or "").strip()
    if not name or len(name) > 100:
        raise DomainError(_("请填写规则名称（不超过 100 个字符）"), "invalid_name", field="name")
    if not category or len(category) > 20:
        raise DomainError(_("请填写类别（不超过 20 个字符）"), "invalid_category", field="category")
    caps = {}
    for key, raw in (("daily_cap", daily_cap), ("monthly_cap", monthly_cap)):
        caps[key] = None if raw in (None, "") else to_points(raw, key)
        if caps[key] is not None and caps[key] <= 0:
            raise DomainError(_("上限应大于 0"), "invalid_cap", field=key)
    if rule is None:
        rule = PointRule(kind=f"x_{uuid.uuid4().hex[:8]}", is_custom=True)
        db.session.add(rule)
    rule.name, rule.category, rule.points = name, category, to_points(points)
    rule.unit = None if unit in (None, "") else Decimal(str(unit))
    rule.daily_cap, rule.monthly_cap, rule.is_active = caps["daily_cap"], caps["monthly_cap"], bool(is_active)
    rule.bands = parse_bands(bands) if isinstance(bands, str) or bands is None else bands
    db.session.flush()
    audit(actor, "points.rule", rule, f"{rule.kind} {rule.points} {rule.category}")
    return rule


# -- the chain check ----------------------------------------------------------------------------

def verify_chain():
    """Walk the chain, then the monthly totals, then every published month's seal. Returns (entries
    checked, None) or (position, message) at the first problem. Each entry's digest is checked under
    the key it names; an entry without one (chained before the ledger key) passes only below the
    anchor ``pbschool ledger rekey`` sealed once under the key."""
    head = db.session.get(LedgerHead, 1)
    legacy_seq = head.legacy_seq if head is not None else None
    prev, expected, checked = GENESIS, 1, 0
    while True:  # keyset batches: memory stays flat on millions of entries
        # Plain rows, not ORM objects: the digest reads the same attribute names, ten times faster.
        batch = db.session.execute(select(*LedgerEntry.__table__.c).where(LedgerEntry.seq >= expected)
                                   .order_by(LedgerEntry.seq).limit(5000)).all()
        if not batch:
            break
        for entry in batch:
            if entry.seq != expected:
                return checked, f"entry seq {expected} is missing (next is #{entry.id}, seq {entry.seq})"
            if entry.prev_hash != prev:
                return checked, f"entry #{entry.id} (seq {entry.seq}) does not follow the previous entry's hash"
            if entry.key_id is None and legacy_seq is None:
                return checked, (f"entry #{entry.id} (seq {entry.seq}) is not chained with the ledger key: "
                                 "if the ledger predates the key, run `pbschool ledger rekey` once")
            if entry.key_id is None and entry.seq > legacy_seq:
                return checked, (f"entry #{entry.id} (seq {entry.seq}) is not chained with the ledger key "
                                 f"(only entries up to seq {legacy_seq} predate it)")
            try:
                digest = entry_digest(entry, prev)
            except keys.LedgerKeyError as exc:
                return checked, f"entry #{entry.id} (seq {entry.seq}): {exc}"
            if not keys.same(digest, entry.hash):
                return checked, (f"entry #{entry.id} (seq {entry.seq}) was changed: "
                                 "its content does not match its hash")
            if entry.seq == legacy_seq:
                problem = _check_legacy_seal(head, entry)
                if problem:
                    return checked, problem
            prev, expected, checked = entry.hash, expected + 1, checked + 1
    if legacy_seq and checked < legacy_seq:
        return checked, f"the chain ends at seq {checked} but `ledger rekey` sealed it up to seq {legacy_seq}"
    if head is not None and (head.seq != checked or head.hash != prev):
        return checked, f"the chain ends at seq {checked} but its head says seq {head.seq}: entries were removed"
    sums = {(u, p): _dec(v) for u, p, v in db.session.execute(
        select(LedgerEntry.user_id, LedgerEntry.period, func.sum(LedgerEntry.points))
        .group_by(LedgerEntry.user_id, LedgerEntry.period))}
    totals = {(t.user_id, t.period): _dec(t.points) for t in db.session.scalars(select(PointTotal))}
    for key in sorted(set(sums) | set(totals), key=lambda k: (k[1], k[0])):
        if sums.get(key, ZERO) != totals.get(key, ZERO):
            return checked, (f"the monthly total of user {key[0]} for {key[1]} is {totals.get(key, ZERO)} "
                             f"but the entries add up to {sums.get(key, ZERO)}")
    problem = keys.check_seals(rekeyed=head is not None and head.rekeyed_at is not None)
    if problem:
        return checked, problem
    return checked, None


def legacy_seal_text(seq, digest):
    return f"pbschool-ledger-legacy|{seq}|{digest}"


def _check_legacy_seal(head, entry):
    try:
        expected = keys.mac(head.legacy_key_id, legacy_seal_text(entry.seq, entry.hash))
    except keys.LedgerKeyError as exc:
        return f"the seal of the entries before the ledger key: {exc}"
    if not keys.same(expected, head.legacy_seal):
        return (f"entries up to #{entry.id} (seq {entry.seq}), chained before the ledger key, were changed "
                "after `pbschool ledger rekey` sealed them")
    return None


# -- monthly publication ------------------------------------------------------------------------

PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_period(raw):
    if not isinstance(raw, str) or not PERIOD_RE.match(raw.strip()):
        raise DomainError(_("月份格式应为 YYYY-MM，例如 2026-03"), "invalid_period", 400, field="period")
    return raw.strip()


def publish_month(period, *, actor=None):
    """Freeze a month: snapshot every member's points and ranks. Later events for it land in the
    next open month as adjustments."""
    period = parse_period(period)
    last_day = period_bounds(period)[1]
    if local_date(clock.now()) <= last_day:
        raise DomainError(_("%(p)s 尚未结束，不能发布", p=period), "month_not_ended", 409)
    if db.session.scalar(select(MonthlyPublication.id).where(MonthlyPublication.period == period)):
        raise DomainError(_("%(p)s 已经发布过了", p=period), "already_published", 409)
    head = _lock_head()  # no entry slips in between the snapshot and the freeze
    try:
        with db.session.begin_nested():
            publication = MonthlyPublication(period=period, published_by_id=getattr(actor, "id", None),
                                             last_seq=head.seq if head else 0, published_at=clock.now())
            db.session.add(publication)
            db.session.flush()
    except IntegrityError as exc:
        raise DomainError(_("%(p)s 已经发布过了", p=period), "already_published", 409) from exc
    from pbschool.points import queries

    rows = queries.live_standings(period)
    by_cat = queries.category_totals(period)
    if rows:
        db.session.execute(PublishedScore.__table__.insert(), [
            {"publication_id": publication.id, "user_id": r.user_id, "branch_id": r.branch_id,
             "points": r.points, "rank": r.rank, "rank_in_branch": r.rank_in_branch,
             "by_category": by_cat.get(r.user_id)} for r in rows])
    publication.entry_count = db.session.scalar(select(func.count(LedgerEntry.id))
                                                .where(LedgerEntry.period == period)) or 0
    publication.total_points = sum((r.points for r in rows), Decimal("0"))
    db.session.flush()
    keys.seal(publication)
    registry.emit("points.month_published", period=period, members=[(r.user_id, r.branch_id) for r in rows])
    audit(actor, "points.publish", publication, f"published {period}: {len(rows)} members")
    return publication


# -- quarterly stars ------------------------------------------------------------------------------

DEFAULT_STAR_BANDS = [60, 70, 80, 90, 96]  # lower bounds of ★1..★5; below the first: 不合格
DEFAULT_STAR_BASE = 60


def get_setting(key, default):
    row = db.session.get(PointSetting, key)
    return default if row is None or row.value is None else row.value


def all_settings():
    return {row.key: row.value for row in db.session.scalars(select(PointSetting)) if row.value is not None}


def set_setting(key, value, actor=None):
    row = db.session.get(PointSetting, key)
    if row is None:
        row = PointSetting(key=key)
        db.session.add(row)
    row.value = value
    row.updated_at = clock.now()
    db.session.flush()
    audit(actor, "points.setting", key, f"{key} = {value}")


def star_bands():
    return list(get_setting("star_bands", DEFAULT_STAR_BANDS))


def save_star_settings(base, bands, actor=None):
    try:
        base = int(base)
        bands = [int(b) for b in bands]
    except (TypeError, ValueError) as exc:
        raise DomainError(_("请填写整数"), "invalid_bands", field="bands") from exc
    if len(bands) != 5 or bands != sorted(bands) or len(set(bands)) != 5 or not 0 <= bands[0] <= bands[-1] <= 100:
        raise DomainError(_("五个分数线应从低到高、各不相同，在 0–100 之间"), "invalid_bands", field="bands")
    if not 0 <= base <= 100:
        raise DomainError(_("基础分应在 0–100 之间"), "invalid_base", field="base")
    set_setting("star_bands", bands, actor)
    set_setting("star_base", base, actor)


def stars_for(score, bands=None):
    bands = bands or star_bands()
    return sum(1 for bound in bands if Decimal(str(score)) >= bound)


def quarter_of(day):
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def quarter_periods(quarter):
    match = re.match(r"^(\d{4})-Q([1-4])$", quarter or "")
    if not match:
        raise DomainError(_("季度格式应为 YYYY-Qn，例如 2026-Q1"), "invalid_quarter", 400, field="quarter")
    year, q = int(match.group(1)), int(match.group(2))
    return [f"{year:04d}-{m:02d}" for m in range(3 * q - 2, 3 * q + 1)]


def quarter_score(points, base=None):
    """Base + the quarter's points, at most 100 (base + additions − deductions)."""
    base = Decimal(str(base if base is not None else get_setting("star_base", DEFAULT_STAR_BASE)))
    return max(min(base + _dec(points), Decimal("100")), Decimal("0")).quantize(TENTH)


def compute_stars(quarter, *, actor=None):
    """Rate, for an ended quarter, every member who belonged during it, by the entries that occurred
    within it, in the branch they were in (last) in it. A member who joined after the quarter gets no
    rating for it; a later move or deactivation does not change it. Recomputing gives the same
    figures unless the quarter's own data changed (then it replaces the earlier rating)."""
    periods_ = quarter_periods(quarter)
    if local_date(clock.now()) <= period_bounds(periods_[-1])[1]:
        raise DomainError(_("%(q)s 尚未结束，不能评星", q=quarter), "quarter_not_ended", 409)
    from pbschool.points import periods

    rows = periods.standings(*periods.quarter_days(quarter))
    bands = star_bands()
    existing = {r.user_id: r for r in db.session.scalars(select(StarRating).where(StarRating.quarter == quarter))}
    for row in rows:
        score = quarter_score(row.points)
        rating = existing.get(row.user_id) or StarRating(user_id=row.user_id, quarter=quarter)
        if rating.id is None or (rating.branch_id, rating.score, rating.stars) != \
                (row.branch_id, score, stars_for(score, bands)):
            rating.branch_id, rating.score, rating.stars = row.branch_id, score, stars_for(score, bands)
            rating.computed_at = clock.now()
        db.session.add(rating)
    db.session.flush()
    audit(actor, "points.stars", quarter, f"stars for {quarter}: {len(rows)} members")
    return len(rows)
