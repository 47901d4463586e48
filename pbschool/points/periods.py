"""Figures as of their period: who belonged, and what they did, between two local days.

A past quarter's stars, a year's honours candidates and a branch's quarterly figures read the
membership history (``Membership``: a stay per branch, closed by a move or a deactivation) and the
ledger's entries by the day they occurred, never the members' current branch or status: what
happened after the period does not change its figures.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import and_, exists, func, null, or_, select, union_all

from pbschool.accounts.models import Branch, Membership, User
from pbschool.extensions import db
from pbschool.points import services
from pbschool.points.models import LedgerEntry

TENTH = Decimal("0.1")


@dataclass
class Stay:
    """A member's time in a branch within a period (clipped to it)."""

    user_id: int
    branch_id: int
    started_at: dt.datetime
    ended_at: dt.datetime


def moment(day):
    """The naive UTC moment the committee's local ``day`` begins."""
    local = dt.datetime.combine(day, dt.time(), tzinfo=services._local_tz())
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def quarter_days(quarter):
    """First and last local day of 'YYYY-Qn'."""
    periods = services.quarter_periods(quarter)
    return services.period_bounds(periods[0])[0], services.period_bounds(periods[-1])[1]


def year_days(year):
    return dt.date(year, 1, 1), dt.date(year, 12, 31)


def window(first_day, last_day):
    """[start, end) in UTC of the local days first_day..last_day."""
    return moment(first_day), moment(last_day + dt.timedelta(days=1))


def stays_table():
    """Every stay in a branch: the membership history, and for a user it does not cover (made before
    it began, or straight in the database) one open stay from their creation while they are active."""
    recorded = select(Membership.user_id, Membership.branch_id, Membership.started_at, Membership.ended_at) \
        .where(Membership.branch_id.isnot(None))
    unrecorded = (select(User.id, User.branch_id, User.created_at, null())
                  .where(User.branch_id.isnot(None), User.is_active_account.is_(True),
                         ~exists().where(Membership.user_id == User.id)))
    return union_all(recorded, unrecorded).subquery("stay")


def stays(first_day, last_day, branch_id=None, user_id=None):
    """Each member's stays in a branch that overlap the days, clipped to them, oldest first."""
    start, end = window(first_day, last_day)
    stay = stays_table()
    stmt = select(stay).where(stay.c.started_at < end, or_(stay.c.ended_at.is_(None), stay.c.ended_at > start))
    if branch_id is not None:
        stmt = stmt.where(stay.c.branch_id == branch_id)
    if user_id is not None:
        stmt = stmt.where(stay.c.user_id == user_id)
    found = []
    for user_id, bid, started, ended in db.session.execute(stmt.order_by(stay.c.started_at)):
        lo, hi = max(started, start), min(ended or end, end)
        if lo < hi:
            found.append(Stay(user_id, bid, lo, hi))
    return found


def last_branch(found):
    """{user_id: the branch of their latest stay in the period}."""
    branch_of = {}
    for s in sorted(found, key=lambda s: s.started_at):
        branch_of[s.user_id] = s.branch_id
    return branch_of


def points_by_user(first_day, last_day, user_ids=None):
    """{user_id: points of the entries that occurred within the days}."""
    stmt = (select(LedgerEntry.user_id, func.sum(LedgerEntry.points))
            .where(LedgerEntry.day >= first_day, LedgerEntry.day <= last_day).group_by(LedgerEntry.user_id))
    if user_ids is not None:
        stmt = stmt.where(LedgerEntry.user_id.in_(user_ids))
    return {uid: Decimal(str(pts or 0)).quantize(TENTH) for uid, pts in db.session.execute(stmt)}


def points_by_stay(first_day, last_day):
    """{(user_id, branch_id): points} of the entries that occurred within the days, each counted in the
    branch the member was in when it occurred (by the membership history)."""
    stay = stays_table()
    stmt = (select(stay.c.user_id, stay.c.branch_id, func.sum(LedgerEntry.points))
            .join(LedgerEntry, and_(LedgerEntry.user_id == stay.c.user_id,
                                    LedgerEntry.occurred_at >= stay.c.started_at,
                                    or_(stay.c.ended_at.is_(None), LedgerEntry.occurred_at < stay.c.ended_at)))
            .where(LedgerEntry.day >= first_day, LedgerEntry.day <= last_day)
            .group_by(stay.c.user_id, stay.c.branch_id))
    return {(uid, bid): Decimal(str(pts or 0)) for uid, bid, pts in db.session.execute(stmt)}


def vetoed_user_ids(first_day, last_day):
    """Members with a veto deduction that occurred within the days and was not reversed within them."""
    reversal = db.aliased(LedgerEntry)
    later = select(reversal.id).where(reversal.reverses_id == LedgerEntry.id, reversal.day <= last_day)
    stmt = (select(LedgerEntry.user_id)
            .where(LedgerEntry.is_veto.is_(True), LedgerEntry.day >= first_day, LedgerEntry.day <= last_day,
                   ~exists(later)))
    return set(db.session.scalars(stmt))


def standings(first_day, last_day, branch_id=None):
    """Every member who belonged during the days, with the points of entries that occurred within them,
    ranked (1, 2, 2, 4) in the committee and in the branch they were in last in the period."""
    from pbschool.points.queries import Standing

    found = stays(first_day, last_day)
    branch_of = last_branch(found)
    totals = points_by_user(first_day, last_day, None)
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(list(branch_of))))} \
        if branch_of else {}
    branches = {b.id: b for b in db.session.scalars(select(Branch).where(Branch.id.in_(set(branch_of.values()))))} \
        if branch_of else {}
    rows = [Standing(uid, users[uid].username, users[uid].name, bid, branches[bid].code, branches[bid].name,
                     totals.get(uid, Decimal("0.0")))
            for uid, bid in branch_of.items()]
    rows.sort(key=lambda r: (-r.points, r.branch_code, r.username))
    _rank(rows, lambda r: None, "rank")
    _rank(rows, lambda r: r.branch_id, "rank_in_branch")
    if branch_id is not None:
        rows = [r for r in rows if r.branch_id == branch_id]
    return rows


def _rank(rows, group, attr):
    seen, last = {}, {}
    for row in rows:
        key = group(row)
        count = seen.get(key, 0) + 1
        seen[key] = count
        prev = last.get(key)
        setattr(row, attr, prev[1] if prev and prev[0] == row.points else count)
        last[key] = (row.points, getattr(row, attr))

