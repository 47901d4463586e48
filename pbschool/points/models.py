"""The points ledger: rules, entries (append-only, hash-chained), monthly publications, stars."""

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pbschool import clock
from pbschool.accounts.models import Branch, User
from pbschool.extensions import db

#: The four fixed categories of 4+X; a rule may name its own "X" category instead.
CATEGORIES = ("学习", "考试", "组织生活", "作用发挥")

POINTS = Numeric(8, 1)


class PointRule(db.Model):
    """How an event of one kind becomes points: amount, caps and category."""

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The event kind callers send, e.g. ``lesson_completed``; custom X rules use ``x_<slug>``.
    kind: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(20))
    points: Mapped[Decimal] = mapped_column(POINTS, default=Decimal("0"))
    #: When set, the event's ``value`` is counted in units of this size (study_time: 10 minutes)
    #: and the rule pays ``points`` per whole unit accumulated over the day.
    unit: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    daily_cap: Mapped[Decimal | None] = mapped_column(POINTS)
    monthly_cap: Mapped[Decimal | None] = mapped_column(POINTS)
    #: Score bands, highest first: ``[[90, "3.0"], [80, "2.0"], [60, "1.0"]]`` — when set, an event's
    #: ``value`` (a score percent) picks its points (exam_passed: points by score band).
    bands: Mapped[list | None] = mapped_column(JSON)
    is_active: Mapped[bool] = mapped_column(default=True)
    #: An admin-defined X rule (not one of the built-in event kinds).
    is_custom: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    @property
    def is_x(self):
        return self.category not in CATEGORIES

    def __repr__(self):
        return f"<PointRule {self.kind}>"


class LedgerEntry(db.Model):
    """One movement of a member's points. Never updated or deleted: a correction is a new entry
    whose ``reverses_id`` names the entry it cancels."""

    __table_args__ = (
        UniqueConstraint("source_key", name="uq_ledger_entry_source_key"),
        UniqueConstraint("seq", name="uq_ledger_entry_seq"),
        UniqueConstraint("reverses_id", name="uq_ledger_entry_reverses_id"),
        Index("ix_ledger_entry_user_kind_day", "user_id", "kind", "day"),
        #: A member's entries, newest first, without scanning the whole chain.
        Index("ix_ledger_entry_user_seq", "user_id", "seq"),
        Index("ix_ledger_entry_period_user", "period", "user_id"),
        CheckConstraint("points > -10000 AND points < 10000", name="points_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Position in the hash chain (1, 2, 3 ...); appends are serialised so it has no gaps.
    seq: Mapped[int] = mapped_column()
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    #: The member's branch when the entry was written (boards group by it).
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(20))
    points: Mapped[Decimal] = mapped_column(POINTS)
    #: What the event measured: hours, minutes, score percent ... (informational, and summed for unit rules).
    value: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    reason: Mapped[str] = mapped_column(Text, default="")
    #: Idempotency key from the source event (``attempt:12``); manual entries get a random one.
    source_key: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[dt.datetime] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    #: Local (committee time zone) day of ``occurred_at``: daily caps count by it.
    day: Mapped[dt.date] = mapped_column(Date)
    #: 'YYYY-MM' the entry counts in. Normally the month of ``day``; an event for a month already
    #: published lands in the next open month as an adjustment.
    period: Mapped[str] = mapped_column(String(7))
    is_adjustment: Mapped[bool] = mapped_column(default=False)
    #: A deduction that bars the member from the year's honours (一票否决).
    is_veto: Mapped[bool] = mapped_column(default=False)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("point_rule.id"))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entry.id"))
    prev_hash: Mapped[str] = mapped_column(String(64))
    #: HMAC-SHA256 under the ledger key ``key_id`` (config, never the database); plain SHA-256 for
    #: entries chained before the ledger had a key (``key_id`` None).
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(16))

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    branch: Mapped[Branch | None] = relationship()
    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    rule: Mapped[PointRule | None] = relationship()
    reverses: Mapped["LedgerEntry | None"] = relationship(remote_side=[id])

    @property
    def is_x(self):
        return self.category not in CATEGORIES

    def __repr__(self):
        return f"<LedgerEntry {self.seq} {self.kind} {self.points}>"


class PointTotal(db.Model):
    """A member's points in one month, kept up to date by every append (under the chain lock), so
    boards and home pages read thousands of rows, not millions. ``ledger verify`` re-checks it."""

    __table_args__ = (UniqueConstraint("user_id", "period"), Index("ix_point_total_period_points", "period", "points"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    period: Mapped[str] = mapped_column(String(7))
    points: Mapped[Decimal] = mapped_column(Numeric(12, 1), default=Decimal("0"))
    entries: Mapped[int] = mapped_column(default=0)


class LedgerHead(db.Model):
    """The single row at the end of the hash chain. Appends lock it (SELECT ... FOR UPDATE), which
    keeps the chain linear and makes cap checks see every earlier append."""

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    hash: Mapped[str] = mapped_column(String(64), default="0" * 64)
    #: Set once by ``pbschool ledger rekey``: entries up to this seq were chained before the ledger
    #: key, and ``legacy_seal`` (an HMAC of that entry's hash under ``legacy_key_id``) vouches for them.
    legacy_seq: Mapped[int | None] = mapped_column()
    legacy_seal: Mapped[str | None] = mapped_column(String(64))
    legacy_key_id: Mapped[str | None] = mapped_column(String(16))
    rekeyed_at: Mapped[dt.datetime | None] = mapped_column()


class MonthlyPublication(db.Model):
    """A published (frozen) month: its board is the snapshot rows, not a live query."""

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(7), unique=True)
    published_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    #: The chain position at publication: the snapshot covers entries up to it.
    last_seq: Mapped[int] = mapped_column(default=0)
    entry_count: Mapped[int] = mapped_column(default=0)
    total_points: Mapped[Decimal] = mapped_column(Numeric(12, 1), default=Decimal("0"))
    #: The chain head's digest at ``last_seq`` when the month was published.
    head_hash: Mapped[str | None] = mapped_column(String(64))
    #: HMAC over the period, the head and the published scores (keys.seal_text), under ``seal_key_id``.
    seal: Mapped[str | None] = mapped_column(String(64))
    seal_key_id: Mapped[str | None] = mapped_column(String(16))

    published_by: Mapped[User | None] = relationship()
    scores: Mapped[list["PublishedScore"]] = relationship(back_populates="publication",
                                                          order_by="PublishedScore.rank")


class PublishedScore(db.Model):
    """One member's line on a published month's board."""

    __table_args__ = (UniqueConstraint("publication_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("monthly_publication.id", ondelete="CASCADE"),
                                                index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))
    points: Mapped[Decimal] = mapped_column(POINTS)
    #: Points by category at publication, ``{"学习": "3.0", ...}``.
    by_category: Mapped[dict | None] = mapped_column(JSON)
    rank: Mapped[int] = mapped_column()
    rank_in_branch: Mapped[int] = mapped_column()

    publication: Mapped[MonthlyPublication] = relationship(back_populates="scores")
    user: Mapped[User] = relationship()
    branch: Mapped[Branch | None] = relationship()


class StarRating(db.Model):
    """A member's stars for one quarter (评星), computed from the quarter's points."""

    __table_args__ = (UniqueConstraint("user_id", "quarter"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))
    #: 'YYYY-Qn'
    quarter: Mapped[str] = mapped_column(String(7), index=True)
    score: Mapped[Decimal] = mapped_column(POINTS)
    #: 0 = unqualified (不合格), 1..5 stars.
    stars: Mapped[int] = mapped_column()
    computed_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    user: Mapped[User] = relationship()


class PointSetting(db.Model):
    """Admin settings of the points system (star bands, honours quota ...), one JSON value per key."""

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[dict | list | None] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)
