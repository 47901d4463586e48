"""Meetings of 三会一课 and who attended them."""

import datetime as dt

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pbschool import clock
from pbschool.accounts.models import Branch, User
from pbschool.extensions import db

#: kind -> (name, how often the rhythm asks for it: "month" or "quarter"), after DOMAIN.md.
MEETING_KINDS = {
    "general": ("党员大会", "quarter"),
    "committee": ("支委会", "month"),
    "group": ("党小组会", "month"),
    "lecture": ("党课", "quarter"),
    "theme_day": ("主题党日", "month"),
}


class Meeting(db.Model):
    """One meeting a branch held, recorded by its secretary."""

    __table_args__ = (
        Index("ix_meeting_branch_held_on", "branch_id", "held_on"),
        # a branch holds one meeting of a kind a day: the same meeting posted twice is refused here
        UniqueConstraint("branch_id", "kind", "held_on"),
        # the recorder's one-time key (form or API): the same key again is the same meeting
        UniqueConstraint("recorded_by_id", "key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    kind: Mapped[str] = mapped_column(String(16))
    #: The local (committee time zone) date it was held.
    held_on: Mapped[dt.date] = mapped_column(Date)
    topic: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text, default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    #: The recorder's idempotency key (the form's one-time key, or the API's ``key``).
    key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    branch: Mapped[Branch] = relationship()
    recorded_by: Mapped[User | None] = relationship()
    attendances: Mapped[list["MeetingAttendance"]] = relationship(back_populates="meeting",
                                                                  order_by="MeetingAttendance.id")

    @property
    def kind_name(self):
        return MEETING_KINDS.get(self.kind, (self.kind,))[0]


#: What an attendance earned: ``paid`` (points credited), ``capped`` (the rhythm's allowance for the
#: kind and period was used up, or the rule pays nothing), ``pending`` (the recorder's own attendance,
#: unpaid until another secretary or admin confirms it).
ATTENDANCE_CREDITS = ("paid", "capped", "pending")


class MeetingAttendance(db.Model):
    __table_args__ = (
        UniqueConstraint("meeting_id", "user_id"),
        CheckConstraint("credit IN ('paid', 'capped', 'pending')", name="credit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    credit: Mapped[str] = mapped_column(String(8), default="paid", server_default="paid")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    meeting: Mapped[Meeting] = relationship(back_populates="attendances")
    user: Mapped[User] = relationship()
