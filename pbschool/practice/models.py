"""Practice papers (每日答题, 专项练习, 错题本练习) and the wrong-answer book's items."""

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pbschool import clock
from pbschool.exams.models import Question, QuestionVersion
from pbschool.extensions import db

MODES = ("daily", "category", "wrong_book")


class PracticeBank(db.Model):
    """A question bank an admin opened to practice (its answers are shown at once to every member)."""

    bank_id: Mapped[int] = mapped_column(ForeignKey("question_bank.id", ondelete="CASCADE"), primary_key=True)
    opened_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))


class Practice(db.Model):
    """One practice paper of one member."""

    __table_args__ = (
        CheckConstraint("mode IN ('daily', 'category', 'wrong_book')", name="mode_known"),
        Index("ix_practice_user_day", "user_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(100))
    #: The Beijing day the paper was drawn.
    day: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    finished_at: Mapped[dt.datetime | None]
    correct: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    points_awarded: Mapped[Decimal] = mapped_column(Numeric(8, 1), default=Decimal("0"))

    questions: Mapped[list["PracticeQuestion"]] = relationship(
        back_populates="practice", order_by="PracticeQuestion.position", cascade="all, delete-orphan")


class PracticeQuestion(db.Model):
    """A question as drawn for a practice: the version shown, its option order, and the first answer."""

    __table_args__ = (UniqueConstraint("practice_id", "question_id"), UniqueConstraint("practice_id", "position"))

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practice.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("question.id", ondelete="CASCADE"), index=True)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("question_version.id"))
    position: Mapped[int]
    option_order: Mapped[list] = mapped_column(JSON, default=list)
    #: The first answer given (canonical, the question's own keys); later answers do not replace it.
    answer: Mapped[object | None] = mapped_column(JSON)
    correct: Mapped[bool | None]
    answered_at: Mapped[dt.datetime | None]

    practice: Mapped[Practice] = relationship(back_populates="questions")
    question: Mapped[Question] = relationship()
    version: Mapped[QuestionVersion | None] = relationship()

    @property
    def shown(self):
        return self.version if self.version_id is not None else self.question


class WrongItem(db.Model):
    """A question in a member's wrong-answer book (错题本), with its spaced review schedule."""

    __table_args__ = (UniqueConstraint("user_id", "question_id"), Index("ix_wrong_item_due", "user_id", "due_day"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("question.id", ondelete="CASCADE"))
    #: The exam slot (AttemptQuestion) that put it in the book most recently.
    slot_id: Mapped[int | None] = mapped_column(ForeignKey("attempt_question.id", ondelete="SET NULL"))
    added_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    #: The Beijing day it is due for review next.
    due_day: Mapped[dt.date] = mapped_column(Date)
    reviews: Mapped[int] = mapped_column(default=0)
    #: Days on which it was answered right in a 错题本 practice (two different days: mastered).
    right_days: Mapped[int] = mapped_column(default=0)
    last_right_day: Mapped[dt.date | None] = mapped_column(Date)
    last_review_day: Mapped[dt.date | None] = mapped_column(Date)
    mastered_at: Mapped[dt.datetime | None]

    question: Mapped[Question] = relationship()
