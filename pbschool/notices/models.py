"""Notifications (通知) and announcements (通知公告)."""

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pbschool import clock
from pbschool.accounts.models import Branch, User
from pbschool.extensions import db

KINDS = ("exam_open", "course_required", "lesson_returned", "lesson_published", "comment_approved",
         "month_published", "short_marked", "announcement")


class Notification(db.Model):
    """One thing one user is told once. ``(user_id, kind, key)`` is unique: an event that happens
    again (a retry, a re-run, a lazy derivation on every read) never tells twice."""

    __table_args__ = (
        UniqueConstraint("user_id", "kind", "key"),
        # the header's unread count and the newest-first list both start from the user
        Index("ix_notification_user_unread", "user_id", "read_at"),
        Index("ix_notification_user_created", "user_id", "created_at"),
        CheckConstraint("kind IN ('exam_open', 'course_required', 'lesson_returned', 'lesson_published', "
                        "'comment_approved', 'month_published', 'short_marked', 'announcement')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    #: What it is about, unique per user and kind: "exam:7", "lesson:3:r2", "month:2026-11".
    key: Mapped[str] = mapped_column(String(120))
    #: The id of the exam, course, lesson, attempt or announcement it links to (None for a month).
    object_id: Mapped[int | None]
    #: The name shown in the title (an exam's title, a month): the title itself is translated when read.
    subject: Mapped[str] = mapped_column(String(200), default="")
    #: The recipient's branch when it was made: who has not read an announcement, per branch.
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id", ondelete="SET NULL"))
    announcement_id: Mapped[int | None] = mapped_column(ForeignKey("announcement.id", ondelete="CASCADE"),
                                                        index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    read_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship()


announcement_branch = db.Table(
    "announcement_branch", db.Model.metadata,
    db.Column("announcement_id", ForeignKey("announcement.id", ondelete="CASCADE"), primary_key=True),
    db.Column("branch_id", ForeignKey("branch.id", ondelete="CASCADE"), primary_key=True),
)


class Announcement(db.Model):
    """A notice (通知公告) to the whole committee or to chosen branches. Published when written and
    never edited afterwards: what members were shown stays what they were shown (a correction is a
    new announcement); only its pin can change."""

    __table_args__ = (CheckConstraint("audience IN ('all', 'branches')", name="audience"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body_source: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    #: "all": the whole committee; "branches": those in ``branches``.
    audience: Mapped[str] = mapped_column(String(16), default="all")
    is_pinned: Mapped[bool] = mapped_column(default=False)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    #: The author's one-time form/API key: the same key again is the same announcement.
    key: Mapped[str | None] = mapped_column(String(64))
    #: How many people it was sent to (their notifications were made at publication).
    recipient_count: Mapped[int] = mapped_column(default=0)
    published_at: Mapped[dt.datetime] = mapped_column(default=clock.now, index=True)

    author: Mapped[User | None] = relationship()
    branches: Mapped[list[Branch]] = relationship(secondary=announcement_branch, order_by="Branch.code")

    __table_args__ = __table_args__ + (UniqueConstraint("author_id", "key"),)
