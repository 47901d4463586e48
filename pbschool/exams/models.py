"""Question banks, exams, attempts and answers."""

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pbschool import clock
from pbschool.extensions import db

QUESTION_TYPES = ("single", "multiple", "truefalse", "blank", "short")
ATTEMPT_STATES = ("in_progress", "submitted", "pending_review")
REVIEW_LEVELS = ("score", "answers", "explanations")
REVIEW_WHEN = ("submit", "close")
AUDIENCES = ("all", "branches", "job_posts")
GRADING_METHODS = ("highest", "last")


class QuestionBank(db.Model):
    """A named pool of questions (题库) that exams draw from."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    questions: Mapped[list["Question"]] = relationship(back_populates="bank", order_by="Question.id")

    def __repr__(self):
        return f"<QuestionBank {self.name}>"


class BankGrant(db.Model):
    """A lecturer an admin lets read and edit a bank they did not write (auth.can_edit_bank)."""

    __table_args__ = (UniqueConstraint("bank_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("question_bank.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    user: Mapped["User"] = relationship(foreign_keys=[user_id])  # noqa: F821


class Question(db.Model):
    """One question. Choice keys are the letters A… by position in ``options``."""

    __table_args__ = (
        UniqueConstraint("bank_id", "stem_key"),
        CheckConstraint("difficulty BETWEEN 1 AND 5", name="difficulty_range"),
        CheckConstraint("score > 0", name="score_positive"),
        Index("ix_question_draw", "bank_id", "is_active", "category", "difficulty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("question_bank.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    stem: Mapped[str] = mapped_column(Text)
    #: SHA-256 of the whitespace-normalised stem: re-importing a question updates it in place.
    stem_key: Mapped[str] = mapped_column(String(64))
    #: Choice texts in order (A, B, …); empty for the other types.
    options: Mapped[list] = mapped_column(JSON, default=list)
    #: The correct answer in the type's canonical form: "B", ["A", "C"], true, [["a", "alt"], ["b"]],
    #: or the reference text of a short answer.
    answer: Mapped[object] = mapped_column(JSON)
    score: Mapped[Decimal] = mapped_column(Numeric(8, 1), default=Decimal("1"))
    difficulty: Mapped[int] = mapped_column(default=3)
    category: Mapped[str] = mapped_column(String(100), default="")
    explanation: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    #: Number of the current QuestionVersion (0 until the first flush makes version 1).
    version: Mapped[int] = mapped_column(default=0)
    #: Where the question is kept when not in the app: "content:banks/<file>.csv" for a question
    #: that ``pbschool content sync`` owns (edits go to the file, not the form); None otherwise.
    source: Mapped[str | None] = mapped_column(String(200))
    #: The file's own stable id of the row (column ``id``/``编号``), so a corrected stem updates it.
    source_ref: Mapped[str | None] = mapped_column(String(64))
    #: Sanitised HTML of stem and options, made when the question is saved, so that hundreds of
    #: exam starts do not run Markdown and the sanitiser again: {"source_key", "stem", "options"}.
    rendered: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    bank: Mapped[QuestionBank] = relationship(back_populates="questions")

    @property
    def kind(self):
        from pbschool.exams.qtypes import get_type

        return get_type(self.type)

    def __repr__(self):
        return f"<Question {self.id} {self.type}>"


class QuestionVersion(db.Model):
    """What a question said at one time, never changed: an attempt keeps the version it was shown.

    Written by the flush that inserts a question or changes what members see of it (see
    ``exams/versions.py``); the Question row stays the identity and holds the latest content."""

    __table_args__ = (UniqueConstraint("question_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("question.id", ondelete="CASCADE"))
    number: Mapped[int]
    type: Mapped[str] = mapped_column(String(16))
    stem: Mapped[str] = mapped_column(Text)
    options: Mapped[list] = mapped_column(JSON, default=list)
    answer: Mapped[object] = mapped_column(JSON)
    score: Mapped[Decimal] = mapped_column(Numeric(8, 1))
    explanation: Mapped[str] = mapped_column(Text, default="")
    rendered: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    question: Mapped[Question] = relationship()

    @property
    def kind(self):
        from pbschool.exams.qtypes import get_type

        return get_type(self.type)

    def __repr__(self):
        return f"<QuestionVersion {self.question_id}v{self.number}>"


exam_branch = Table(
    "exam_branch", db.Model.metadata,
    Column("exam_id", ForeignKey("exam.id", ondelete="CASCADE"), primary_key=True),
    Column("branch_id", ForeignKey("branch.id", ondelete="CASCADE"), primary_key=True),
)


class Exam(db.Model):
    """A timed paper drawn at random per attempt from banks (see ExamSection)."""

    __table_args__ = (
        CheckConstraint("time_limit_seconds > 0", name="time_limit_positive"),
        CheckConstraint("max_attempts >= 1", name="max_attempts_positive"),
        CheckConstraint("pass_score >= 0 AND pass_score <= 100", name="pass_score_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    time_limit_seconds: Mapped[int]
    opens_at: Mapped[dt.datetime | None]
    closes_at: Mapped[dt.datetime | None]
    max_attempts: Mapped[int] = mapped_column(default=1)
    #: Which attempt is the member's result: "highest" or "last".
    grading_method: Mapped[str] = mapped_column(String(16), default="highest")
    #: Percentage of the maximum needed to pass.
    pass_score: Mapped[Decimal] = mapped_column(Numeric(5, 1), default=Decimal("60"))
    points_on_pass: Mapped[Decimal] = mapped_column(Numeric(8, 1), default=Decimal("0"))
    shuffle_questions: Mapped[bool] = mapped_column(default=True)
    shuffle_options: Mapped[bool] = mapped_column(default=True)
    #: Multiple choice earns a share for a correct subset (no wrong choice) instead of all-or-nothing.
    partial_credit: Mapped[bool] = mapped_column(default=False)
    #: What a member sees after submitting: "score", "answers" or "explanations".
    review: Mapped[str] = mapped_column(String(16), default="explanations")
    #: From when answers/explanations are shown: "submit" or "close" (after closes_at).
    review_when: Mapped[str] = mapped_column(String(16), default="submit")
    audience: Mapped[str] = mapped_column(String(16), default="all")
    #: Job posts (岗位) that may sit the exam when ``audience`` is "job_posts".
    audience_job_posts: Mapped[list] = mapped_column(JSON, default=list)
    is_published: Mapped[bool] = mapped_column(default=True)
    #: A passed attempt gets a certificate (pbschool/certificates) with a code checked on /verify.
    issues_certificate: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    sections: Mapped[list["ExamSection"]] = relationship(
        back_populates="exam", order_by="ExamSection.position", cascade="all, delete-orphan")
    audience_branches: Mapped[list["Branch"]] = relationship(secondary=exam_branch)  # noqa: F821

    @property
    def max_score(self):
        return sum((s.points_each * s.count for s in self.sections), Decimal("0"))

    @property
    def question_count(self):
        return sum(s.count for s in self.sections)

    def is_open(self, now):
        return (self.is_published and (self.opens_at is None or self.opens_at <= now)
                and (self.closes_at is None or now < self.closes_at))

    def admits(self, user):
        """May ``user`` sit this exam (ignoring the time window)?"""
        if user is None or not user.is_active:
            return False
        if self.audience == "branches":
            return user.branch_id is not None and any(b.id == user.branch_id for b in self.audience_branches)
        if self.audience == "job_posts":
            return bool(user.job_post) and user.job_post in (self.audience_job_posts or [])
        return True

    def __repr__(self):
        return f"<Exam {self.id} {self.title}>"


class ExamSection(db.Model):
    """Draw ``count`` questions at random from a bank, optionally of one category/difficulty."""

    __table_args__ = (CheckConstraint("count >= 1", name="count_positive"),
                      CheckConstraint("points_each > 0", name="points_positive"))

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    bank_id: Mapped[int] = mapped_column(ForeignKey("question_bank.id"))
    category: Mapped[str | None] = mapped_column(String(100))
    difficulty: Mapped[int | None]
    count: Mapped[int]
    points_each: Mapped[Decimal] = mapped_column(Numeric(8, 1))

    exam: Mapped[Exam] = relationship(back_populates="sections")
    bank: Mapped[QuestionBank] = relationship()


class ExamOverride(db.Model):
    """One member's, or one branch's, own terms for one exam (see ``exams/overrides.py``).

    A field left None is not overridden here: a member's own row wins over their branch's row field
    by field, and the exam's setting applies where neither says anything."""

    __table_args__ = (
        UniqueConstraint("exam_id", "user_id"),
        UniqueConstraint("exam_id", "branch_id"),
        CheckConstraint("(user_id IS NULL) <> (branch_id IS NULL)", name="member_or_branch"),
        CheckConstraint("extra_minutes IS NULL OR extra_minutes BETWEEN 0 AND 10080", name="extra_minutes_range"),
        CheckConstraint("extra_attempts IS NULL OR extra_attempts BETWEEN 0 AND 100", name="extra_attempts_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id", ondelete="CASCADE"), index=True)
    #: Minutes added to the exam's time limit.
    extra_minutes: Mapped[int | None]
    #: A later close than the exam's own, for this member or branch.
    closes_at: Mapped[dt.datetime | None]
    #: Attempts on top of the exam's max_attempts.
    extra_attempts: Mapped[int | None]
    #: Who last changed it; a branch override never applies to them (nobody extends their own exam).
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    user: Mapped["User | None"] = relationship(foreign_keys=[user_id])  # noqa: F821
    branch: Mapped["Branch | None"] = relationship()  # noqa: F821
    set_by: Mapped["User | None"] = relationship(foreign_keys=[set_by_id])  # noqa: F821


class Attempt(db.Model):
    """One sitting of an exam by one member."""

    __table_args__ = (
        UniqueConstraint("exam_id", "user_id", "number"),
        CheckConstraint("number >= 1 AND number <= attempt_limit", name="number_within_limit"),
        CheckConstraint("state IN ('in_progress', 'submitted', 'pending_review')", name="state_known"),
        # At most one unfinished attempt per member and exam: parallel starts collide here.
        Index("uq_attempt_one_open", "exam_id", "user_id", unique=True,
              sqlite_where=db.text("state = 'in_progress'"),
              postgresql_where=db.text("state = 'in_progress'")),
        Index("ix_attempt_sweep", "state", "deadline_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    #: The exam's max_attempts when this attempt began; the check constraint keeps number within it.
    attempt_limit: Mapped[int]
    state: Mapped[str] = mapped_column(String(16), default="in_progress")
    started_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    #: The server's deadline: start + time limit + override minutes, capped at the (overridden) close;
    #: setting or removing an override moves it (exams/overrides.py), so saves read only this row.
    deadline_at: Mapped[dt.datetime]
    submitted_at: Mapped[dt.datetime | None]
    #: Submitted by the deadline (sweep or a late access), not by the member.
    is_auto_submitted: Mapped[bool] = mapped_column(default=False)
    score: Mapped[Decimal | None] = mapped_column(Numeric(8, 1))
    max_score: Mapped[Decimal | None] = mapped_column(Numeric(8, 1))
    passed: Mapped[bool | None]
    points_awarded: Mapped[Decimal] = mapped_column(Numeric(8, 1), default=Decimal("0"))
    #: Sat by someone who could read the answers first (auth.sits_as_preview): graded and shown to
    #: them, but never in results, statistics, reports, boards or points.
    is_preview: Mapped[bool] = mapped_column(default=False, server_default=false())

    exam: Mapped[Exam] = relationship()
    user: Mapped["User"] = relationship()  # noqa: F821
    questions: Mapped[list["AttemptQuestion"]] = relationship(
        back_populates="attempt", order_by="AttemptQuestion.position", cascade="all, delete-orphan")

    @property
    def percent(self):
        if self.score is None or not self.max_score:
            return None
        return (self.score * 100 / self.max_score).quantize(Decimal("0.1"))

    def __repr__(self):
        return f"<Attempt {self.id} exam={self.exam_id} user={self.user_id} #{self.number}>"


class AttemptQuestion(db.Model):
    """A question as drawn for one attempt: its place, its option order and its points."""

    __table_args__ = (UniqueConstraint("attempt_id", "question_id"),
                      UniqueConstraint("attempt_id", "position"))

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempt.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("question.id"), index=True)
    position: Mapped[int]
    #: Original option keys in the order shown: ["C", "A", "D", "B"] shows C's text as "A".
    option_order: Mapped[list] = mapped_column(JSON, default=list)
    points: Mapped[Decimal] = mapped_column(Numeric(8, 1))
    #: The version of the question the member was shown (set at start, never changed).
    version_id: Mapped[int | None] = mapped_column(ForeignKey("question_version.id"), index=True)
    #: The version whose key gave ``score``: the shown one, or a later one an explicit regrade used.
    graded_version_id: Mapped[int | None] = mapped_column(ForeignKey("question_version.id"))
    score: Mapped[Decimal | None] = mapped_column(Numeric(8, 1))
    #: A short answer waiting to be marked by hand.
    needs_review: Mapped[bool] = mapped_column(default=False)
    marked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    marked_at: Mapped[dt.datetime | None]
    feedback: Mapped[str] = mapped_column(Text, default="")

    attempt: Mapped[Attempt] = relationship(back_populates="questions")
    question: Mapped[Question] = relationship()
    version: Mapped[QuestionVersion | None] = relationship(foreign_keys=[version_id])
    graded_version: Mapped[QuestionVersion | None] = relationship(foreign_keys=[graded_version_id])

    @property
    def shown(self):
        """The question as the member saw it (the Question itself for a slot from before versions)."""
        return self.version if self.version_id is not None else self.question


class Answer(db.Model):
    """The member's saved answer to one question of an attempt (one row, updated on each save).

    ``value`` uses the question's own option keys, not the shuffled letters shown."""

    __table_args__ = (UniqueConstraint("attempt_id", "question_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempt.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("question.id"))
    value: Mapped[object | None] = mapped_column(JSON)
    saved_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    #: Number of saves, so a lost save would show up in the benchmark.
    revision: Mapped[int] = mapped_column(default=1)


class LateAnswer(db.Model):
    """An answer that reached the server after the attempt's deadline plus grace (a phone that was
    offline): kept for staff to see, never graded. One row per attempt and question; the latest
    arrival wins (``arrivals`` counts them)."""

    __table_args__ = (UniqueConstraint("attempt_id", "question_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempt.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("question.id"))
    #: As the device sent it (the shown letters), bounded in size; never canonicalised or graded.
    value: Mapped[object | None] = mapped_column(JSON)
    #: When the device says it was given (``given_at`` in the body), clamped to the attempt's
    #: start … arrival; shown to staff, never trusted for scoring.
    given_at: Mapped[dt.datetime | None]
    arrived_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    arrivals: Mapped[int] = mapped_column(default=1)


class SweepMark(db.Model):
    """When the in-app sweep of overdue attempts last ran (exams/autosweep.py): one row per job, so
    that every process of a deployment together sweeps at most once an interval."""

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    swept_at: Mapped[dt.datetime]
    #: Attempts graded by that run.
    graded: Mapped[int] = mapped_column(default=0)
