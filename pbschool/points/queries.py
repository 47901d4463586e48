"""Read-only questions about the ledger: standings, boards, a member's summary, honours."""

import bisect
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from pbschool import clock
from pbschool.accounts.models import Branch, User
from pbschool.extensions import db
from pbschool.points import services
from pbschool.points.models import (
    LedgerEntry,
    LedgerHead,
    MonthlyPublication,
    PointTotal,
    PublishedScore,
    StarRating,
)

ZERO = Decimal("0.0")
TENTH = Decimal("0.1")


@dataclass
class Standing:
    user_id: int
    username: str
    name: str
    branch_id: int
    branch_code: str
    branch_name: str
    points: Decimal
    rank: int = 0
    rank_in_branch: int = 0


def _board_members(branch_id=None):
    stmt = (select(User.id.label("user_id"), User.username, User.name, Branch.id.label("branch_id"),
                   Branch.code.label("branch_code"), Branch.name.label("branch_name"))
            .join(Branch, User.branch_id == Branch.id)
            .where(User.is_active_account.is_(True)))
    if branch_id is not None:
        stmt = stmt.where(User.branch_id == branch_id)
    return stmt


def live_standings(periods, branch_id=None):
    """Every active member with a branch and their points over ``periods`` (a 'YYYY-MM' or a list),
    ranked (1, 2, 2, 4) in the committee and in their branch by the database's window functions."""
    periods = [periods] if isinstance(periods, str) else list(periods)
    sums = (select(PointTotal.user_id, func.sum(PointTotal.points).label("points"))
            .where(PointTotal.period.in_(periods)).group_by(PointTotal.user_id).subquery())
    total = func.coalesce(sums.c.points, 0)
    ranked = (_board_members().add_columns(
        total.label("points"),
        func.rank().over(order_by=total.desc()).label("rank"),
        func.rank().over(partition_by=User.branch_id, order_by=total.desc()).label("rank_in_branch"))
        .outerjoin(sums, sums.c.user_id == User.id).subquery())
    stmt = select(ranked).order_by(ranked.c.rank, ranked.c.branch_code, ranked.c.username)
    if branch_id is not None:
        stmt = stmt.where(ranked.c.branch_id == branch_id)
    return [Standing(uid, username, name, bid, code, bname, Decimal(str(points)).quantize(TENTH), rank, rank_b)
            for uid, username, name, bid, code, bname, points, rank, rank_b in db.session.execute(stmt)]


def member_totals(periods):
    return [(r.user_id, r.branch_id, r.points) for r in live_standings(periods)]


def category_totals(period, user_id=None):
    """{user_id: {category: "points"}} for one month."""
    stmt = (select(LedgerEntry.user_id, LedgerEntry.category, func.sum(LedgerEntry.points))
            .where(LedgerEntry.period == period).group_by(LedgerEntry.user_id, LedgerEntry.category))
    if user_id is not None:
        stmt = stmt.where(LedgerEntry.user_id == user_id)
    result = {}
    for uid, category, points in db.session.execute(stmt):
        result.setdefault(uid, {})[category] = str(Decimal(str(points)).quantize(Decimal("0.1")))
    return result


def publication(period):
    return db.session.scalar(select(MonthlyPublication).where(MonthlyPublication.period == period))


def last_published_period():
    """The latest published month ('YYYY-MM'), or None before the first publication."""
    return db.session.scalar(select(func.max(MonthlyPublication.period)))


def board(period, branch_id=None):
    """The month's board, the committee's or one branch's: the frozen snapshot once published, else
    live standings. Plain values only (the caches keep it beyond this session)."""
    pub = publication(period)
    if pub is None:
        rows = live_standings(period, branch_id)
        return pub, [{"rank": r.rank_in_branch if branch_id else r.rank, "user_id": r.user_id,
                      "username": r.username, "name": r.name, "branch": r.branch_code,
                      "branch_name": r.branch_name, "points": r.points} for r in rows]
    stmt = (select(PublishedScore, User, Branch).join(User, PublishedScore.user_id == User.id)
            .outerjoin(Branch, PublishedScore.branch_id == Branch.id)
            .where(PublishedScore.publication_id == pub.id))
    if branch_id is not None:
        stmt = stmt.where(PublishedScore.branch_id == branch_id)
    stmt = stmt.order_by(PublishedScore.rank_in_branch if branch_id else PublishedScore.rank, User.username)
    return pub, [{"rank": s.rank_in_branch if branch_id else s.rank, "user_id": u.id, "username": u.username,
                  "name": u.name, "branch": b.code if b else None, "branch_name": b.name if b else "",
                  "points": Decimal(str(s.points))} for s, u, b in db.session.execute(stmt)]


class _Memo:
    """Values a process keeps for a few seconds. An expired one is still served (for up to ten times
    as long) while one background thread builds its successor, so no request waits for a rebuild.
    ``build`` must use plain values only: it may run in that thread, in its own app context."""

    def __init__(self, limit):
        self.items, self.refreshing, self.limit = {}, set(), limit
        self.lock = threading.Lock()

    def get(self, key, seconds, build):
        with self.lock:
            hit = self.items.get(key)
        age = time.monotonic() - hit[0] if hit else None
        if hit is None or age >= 10 * seconds:  # none yet, or too old to show while the next is built
            value = build()
            self._store(key, value)
            return value
        if age >= seconds:
            with self.lock:
                start = key not in self.refreshing
                self.refreshing.add(key)
            if start:
                threading.Thread(target=self._refresh, daemon=True,
                                 args=(current_app._get_current_object(), key, build)).start()
        return hit[1]

    def clear(self):
        with self.lock:
            self.items.clear()

    def _store(self, key, value):
        with self.lock:
            if len(self.items) >= self.limit:
                self.items.clear()
            self.items[key] = (time.monotonic(), value)

    def _refresh(self, app, key, build):
        try:
            with app.app_context():
                try:
                    self._store(key, build())
                finally:
                    db.session.remove()
        except Exception:  # noqa: BLE001 - the next request retries; the old value stays meanwhile
            app.logger.exception("rebuilding a cached %s failed", key[1])
        finally:
            with self.lock:
                self.refreshing.discard(key)


_boards = _Memo(256)


def board_version(period):
    """What a cached board depends on: the publication, else the chain head (any append moves it)."""
    pub_id = db.session.scalar(select(MonthlyPublication.id).where(MonthlyPublication.period == period))
    if pub_id is not None:
        return ("published", pub_id)
    head = db.session.get(LedgerHead, 1)
    return ("live", head.seq if head else 0, head.hash if head else "")


def cached(kind, period, branch_id, build):
    """``build()`` memoised per process for a few seconds and exactly as long as the board's version
    holds (POINTS_BOARD_CACHE_SECONDS; 0 turns it off, the default under tests)."""
    seconds = current_app.config.get("POINTS_BOARD_CACHE_SECONDS", 0 if current_app.testing else 30)
    if not seconds:
        return build()
    key = (str(db.engine.url), kind, period, branch_id, board_version(period))
    return _boards.get(key, seconds, build)


def last_months(n=12, end=None):
    period = end or services.current_period()
    out = [period]
    year, month = int(period[:4]), int(period[5:7])
    for _ in range(n - 1):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        out.append(f"{year:04d}-{month:02d}")
    return list(reversed(out))


def sum_points(user, periods):
    total = db.session.scalar(select(func.coalesce(func.sum(PointTotal.points), 0))
                              .where(PointTotal.user_id == user.id, PointTotal.period.in_(periods)))
    return Decimal(str(total)).quantize(Decimal("0.1"))


def year_periods(year):
    return [f"{year:04d}-{m:02d}" for m in range(1, 13)]


def current_quarter():
    return services.quarter_of(services.local_date(clock.now()))


def ended_quarters(n=4):
    """The ``n`` quarters before this one, newest first ('2026-Q1', '2025-Q4', ...)."""
    year, q = int(current_quarter()[:4]), int(current_quarter()[-1])
    out = []
    for _i in range(n):
        q -= 1
        if q == 0:
            year, q = year - 1, 4
        out.append(f"{year}-Q{q}")
    return out


class RankSnapshot:
    """Everyone's points in one month, sorted, so that a member's rank is a binary search.

    Built by one query over the active members with a branch; a process keeps it for
    POINTS_RANK_SNAPSHOT_SECONDS (default 10; 0 under tests, so tests see every entry at once).
    The member's own points are always the live figure: only the others' may be that many seconds old."""

    def __init__(self, rows):
        self.points_of = {}
        committee, branches = [], {}
        for user_id, branch_id, points in rows:
            value = Decimal(str(points)).quantize(TENTH)
            self.points_of[user_id] = value
            committee.append(value)
            branches.setdefault(branch_id, []).append(value)
        self.committee = sorted(committee)
        self.branches = {bid: sorted(values) for bid, values in branches.items()}

    def rank(self, user, points, *, branch_only=False):
        """(rank, board size): 1 + how many others have more points than ``points``."""
        if user.branch_id is None or not user.is_active_account:
            return None, 0
        values = self.branches.get(user.branch_id, []) if branch_only else self.committee
        higher = len(values) - bisect.bisect_right(values, points)
        size = len(values)
        own = self.points_of.get(user.id)
        if own is None:  # joined (or moved here) after the snapshot was taken
            size += 1
        elif own > points:  # the snapshot still counts the member's older, higher figure
            higher -= 1
        return higher + 1, size


_ranks = _Memo(32)


def _build_rank_snapshot(period):
    total = func.coalesce(PointTotal.points, 0)
    rows = db.session.execute(
        select(User.id, User.branch_id, total)
        .outerjoin(PointTotal, (PointTotal.user_id == User.id) & (PointTotal.period == period))
        .where(User.is_active_account.is_(True), User.branch_id.isnot(None))).all()
    return RankSnapshot(rows)


def rank_snapshot(period):
    seconds = current_app.config.get("POINTS_RANK_SNAPSHOT_SECONDS", 0 if current_app.testing else 10)
    if not seconds:
        return _build_rank_snapshot(period)
    return _ranks.get((str(db.engine.url), "ranks", period), seconds, lambda: _build_rank_snapshot(period))


def rank_of(user, period, points, *, branch_only=False):
    """(rank, board size) of the member on the month's live board."""
    return rank_snapshot(period).rank(user, points, branch_only=branch_only)


def last_published_line(user, period):
    """The member's line on last month's board, once that month is published (晒分)."""
    previous = last_months(2, period)[0]
    row = db.session.execute(
        select(PublishedScore.rank, PublishedScore.rank_in_branch, PublishedScore.points)
        .join(MonthlyPublication, PublishedScore.publication_id == MonthlyPublication.id)
        .where(MonthlyPublication.period == previous, PublishedScore.user_id == user.id)).first()
    if row is None:
        return None
    return {"period": previous, "rank": row[0], "rank_in_branch": row[1], "points": Decimal(str(row[2]))}


def member_summary(user, *, by_category=True):
    """What the member's points page and home panel show (a handful of small queries); the home
    panel, which shows no categories, leaves their query out."""
    period = services.current_period()
    year = int(period[:4])
    quarter = current_quarter()
    months = dict(db.session.execute(select(PointTotal.period, PointTotal.points)
                                     .where(PointTotal.user_id == user.id)).all())

    def total(periods):
        return sum((Decimal(str(months.get(p, 0))) for p in periods), Decimal(0)).quantize(TENTH)

    this_month = total([period])
    rank, committee_size = rank_of(user, period, this_month)
    rank_in_branch, branch_size = rank_of(user, period, this_month, branch_only=True)
    quarter_points = total(services.quarter_periods(quarter))
    settings = services.all_settings()
    quarter_score = services.quarter_score(quarter_points, settings.get("star_base", services.DEFAULT_STAR_BASE))
    return {
        "period": period,
        "year": year,
        "quarter": quarter,
        "balance": total(months),
        "this_month": this_month,
        "this_year": total(year_periods(year)),
        "by_category": category_totals(period, user.id).get(user.id, {}) if by_category else {},
        "rank": rank,
        "rank_in_branch": rank_in_branch,
        "committee_size": committee_size,
        "branch_size": branch_size,
        "quarter_points": quarter_points,
        "quarter_score": quarter_score,
        "quarter_stars": services.stars_for(quarter_score, settings.get("star_bands", services.DEFAULT_STAR_BANDS)),
        "last_board": last_published_line(user, period),
        "by_month": {p: Decimal(str(v)).quantize(TENTH) for p, v in months.items()},
        "month_target": Decimal(str(settings.get("month_target", 10))),
        "year_target": Decimal(str(settings.get("year_target", 120))),
    }


def entries_of(user, limit=None, offset=0, category=None):
    """The member's entries, newest day first (an entry recorded late sits at its own day), one
    category's only when ``category`` is given."""
    stmt = (select(LedgerEntry).where(LedgerEntry.user_id == user.id)
            .order_by(LedgerEntry.day.desc(), LedgerEntry.occurred_at.desc(), LedgerEntry.seq.desc())
            .options(selectinload(LedgerEntry.actor)))
    if category:
        stmt = stmt.where(LedgerEntry.category == category)
    if limit:
        stmt = stmt.limit(limit).offset(offset)
    return db.session.scalars(stmt).all()


def stars_of(user, limit=8):
    return db.session.scalars(select(StarRating).where(StarRating.user_id == user.id)
                              .order_by(StarRating.quarter.desc()).limit(limit)).all()


def vetoed_user_ids(year):
    """Members with a veto deduction dated in the year that was not reversed within the year."""
    from pbschool.points import periods

    return periods.vetoed_user_ids(*periods.year_days(year))


def honours_candidates(year, *, top_n=None, top_percent=None, branch_id=None):
    """Per branch, the year's best members (top N, or top % rounded up, at least one), leaving out
    anyone with a veto item. Only the year's own data counts: members who belonged during it, entries
    that occurred in it, in the branch each was in last in the year. Returns {branch_code:
    [Standing...]}, plus the excluded ids."""
    from pbschool.points import periods

    top_n = top_n if top_n is not None else (None if top_percent else int(services.get_setting("honours_top_n", 3)))
    vetoed = vetoed_user_ids(year)
    rows = periods.standings(*periods.year_days(year), branch_id=branch_id)
    by_branch = {}
    for row in rows:
        by_branch.setdefault(row.branch_code, []).append(row)
    result = {}
    for code, members in sorted(by_branch.items()):
        eligible = [m for m in members if m.user_id not in vetoed and m.points > 0]
        if top_percent:
            count = max(1, -(-len(members) * int(top_percent) // 100))
        else:
            count = top_n
        result[code] = eligible[:count]
    return result, vetoed


def branch_points_per_member(period):
    """{branch_id: average points per active member} for one month."""
    rows = live_standings(period)
    acc = {}
    for row in rows:
        total, n = acc.get(row.branch_id, (ZERO, 0))
        acc[row.branch_id] = (total + row.points, n + 1)
    return {bid: (total / n).quantize(Decimal("0.1")) if n else ZERO for bid, (total, n) in acc.items()}


