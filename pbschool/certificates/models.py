"""Certificates and what happened to them (issued, revoked, reinstated)."""

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pbschool import clock
from pbschool.extensions import db

KINDS = ("exam", "hours")
ACTIONS = ("issue", "revoke", "reinstate")


class Certificate(db.Model):
    """One certificate: for a passed attempt (one per attempt) or a year's hours (one per member and year).

    What it says of the holder is kept as it was when issued (name, branch, title), so a later move
    to another branch does not change a printed certificate's meaning."""

    __table_args__ = (
        UniqueConstraint("attempt_id"),
        # NULL years (exam certificates) never collide: one hours certificate per member and year
        UniqueConstraint("user_id", "year"),
        CheckConstraint("kind IN ('exam', 'hours')", name="kind_known"),
        CheckConstraint("(kind = 'exam' AND attempt_id IS NOT NULL AND year IS NULL)"
                        " OR (kind = 'hours' AND attempt_id IS NULL AND year IS NOT NULL)", name="kind_fields"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: 12 characters of an alphabet without look-alikes (no 0/O, 1/I/L), shown in groups of four.
    code: Mapped[str] = mapped_column(String(12), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("attempt.id", ondelete="CASCADE"))
    year: Mapped[int | None]
    holder_name: Mapped[str] = mapped_column(String(100))
    branch_name: Mapped[str] = mapped_column(String(100), default="")
    #: The exam's title, or "2026年度学时" for hours.
    title: Mapped[str] = mapped_column(String(200))
    #: The hours credited when an hours certificate was issued (an exam's score is read from its attempt).
    hours: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    target_hours: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    issued_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    #: Set while revoked (a regrade failed the pass), cleared by a reinstatement; the events keep both.
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped["User"] = relationship()  # noqa: F821
    attempt: Mapped["Attempt | None"] = relationship()  # noqa: F821
    events: Mapped[list["CertificateEvent"]] = relationship(back_populates="certificate",
                                                            order_by="CertificateEvent.id")

    @property
    def display_code(self):
        return "-".join(self.code[i:i + 4] for i in range(0, len(self.code), 4))

    @property
    def is_revoked(self):
        return self.revoked_at is not None

    def __repr__(self):
        return f"<Certificate {self.code} {self.kind}>"


class CertificateEvent(db.Model):
    """An issue, revocation or reinstatement: never edited, never deleted."""

    __table_args__ = (CheckConstraint("action IN ('issue', 'revoke', 'reinstate')", name="action_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificate.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(String(300), default="")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    certificate: Mapped[Certificate] = relationship(back_populates="events")
