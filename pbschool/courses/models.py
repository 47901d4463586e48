"""Programmes, courses, lessons, media, learning progress and comments."""

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pbschool import clock
from pbschool.accounts.models import Branch, User
from pbschool.extensions import db

LESSON_STATES = ("draft", "submitted", "published", "returned")
MEDIA_KINDS = ("video", "audio", "pdf", "image")


class Programme(db.Model):
    """A group of courses, e.g. 中心组学习, 干部学院, 政工微课堂, 安全确认."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    courses: Mapped[list["Course"]] = relationship(back_populates="programme", order_by="Course.position")


class Course(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    #: The folder name under content/ for synced courses; None for courses made in the UI.
    slug: Mapped[str | None] = mapped_column(String(100), unique=True)
    programme_id: Mapped[int | None] = mapped_column(ForeignKey("programme.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    body_source: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    #: Declared hours (front matter); None means the sum of the lessons' credited hours.
    declared_hours: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    is_published: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(default=0)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    #: sha256 of course.md when synced, to report changed/unchanged.
    source_hash: Mapped[str | None] = mapped_column(String(64))
    #: Synced, and course.md says whom it is required for (required_for): the app does not change that.
    requirements_from_file: Mapped[bool] = mapped_column(default=False)
    #: Bumped by every edit; a reviewer publishes only the revision they were shown.
    revision: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    programme: Mapped[Programme | None] = relationship(back_populates="courses")
    #: An edit of the published course awaiting review; members see the course's own columns meanwhile.
    draft: Mapped["CourseDraft | None"] = relationship(back_populates="course", cascade="all, delete-orphan",
                                                       uselist=False)
    lessons: Mapped[list["Lesson"]] = relationship(back_populates="course", order_by="(Lesson.position, Lesson.id)")
    requirements: Mapped[list["CourseRequirement"]] = relationship(back_populates="course",
                                                                   cascade="all, delete-orphan")
    author: Mapped[User | None] = relationship()

    def published_lessons(self):
        return [lesson for lesson in self.lessons if lesson.state == "published"]


class CourseRequirement(db.Model):
    """A course is required for everyone, for a branch, or for a job post (岗位)."""

    __table_args__ = (
        UniqueConstraint("course_id", "target_key"),
        CheckConstraint("kind IN ('all', 'branch', 'job_post')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id", ondelete="CASCADE"), index=True)
    job_post: Mapped[str] = mapped_column(String(100), default="")
    #: "all", "branch:<id>" or "post:<name>": what the unique constraint keys on.
    target_key: Mapped[str] = mapped_column(String(140))

    course: Mapped[Course] = relationship(back_populates="requirements")
    branch: Mapped[Branch | None] = relationship()

    def applies_to(self, user):
        if self.kind == "all":
            return True
        if self.kind == "branch":
            return user.branch_id is not None and user.branch_id == self.branch_id
        return bool(user.job_post) and user.job_post == self.job_post


class Lesson(db.Model):
    __table_args__ = (
        UniqueConstraint("course_id", "slug"),
        CheckConstraint("state IN ('draft', 'submitted', 'published', 'returned')", name="state"),
        CheckConstraint("minutes >= 1 AND minutes <= 1440", name="minutes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    #: The file name (without .md) for synced lessons.
    slug: Mapped[str | None] = mapped_column(String(120))
    title: Mapped[str] = mapped_column(String(200))
    minutes: Mapped[int] = mapped_column(default=15)
    body_source: Mapped[str] = mapped_column(Text, default="")
    #: render_markdown(body_source), refreshed whenever the source changes.
    body_html: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    #: The reviewer's reason when the lesson was last sent back.
    review_reason: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    #: Who last changed the working copy (this row before publication, else the draft): not its reviewer.
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    source_hash: Mapped[str | None] = mapped_column(String(64))
    #: Bumped by every edit of the working copy (text, title, minutes, media, course); a reviewer
    #: publishes only the revision they were shown.
    revision: Mapped[int] = mapped_column(default=1)
    published_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    course: Mapped[Course] = relationship(back_populates="lessons")
    author: Mapped[User | None] = relationship(foreign_keys=[author_id])
    #: An edit of the published lesson awaiting review; members see the lesson's own columns meanwhile.
    draft: Mapped["LessonDraft | None"] = relationship(back_populates="lesson", cascade="all, delete-orphan",
                                                       uselist=False)
    media: Mapped[list["MediaFile"]] = relationship(back_populates="lesson", order_by="MediaFile.id")
    reviews: Mapped[list["LessonReview"]] = relationship(back_populates="lesson",
                                                         order_by="LessonReview.id.desc()")

    @property
    def is_published(self):
        return self.state == "published"

    @property
    def live_media(self):
        """The files members get: a file added by a pending draft is not among them, a file it removes still is."""
        return [m for m in self.media if m.draft_change != "add"]

    @property
    def draft_media(self):
        """The files of the working copy (the draft's, when there is one)."""
        return [m for m in self.media if m.draft_change != "remove"]

    @property
    def players(self):
        """Video and audio, played on the page."""
        return [m for m in self.live_media if m.kind in ("video", "audio")]

    @property
    def attachments(self):
        """Slides and other downloads."""
        return [m for m in self.live_media if m.kind == "pdf"]


DRAFT_STATES = ("draft", "submitted", "returned")


class LessonDraft(db.Model):
    """The pending edit of a published lesson: reviewed and published over it, or returned, while
    members keep reading the published lesson."""

    __table_args__ = (
        CheckConstraint("state IN ('draft', 'submitted', 'returned')", name="state"),
        CheckConstraint("minutes >= 1 AND minutes <= 1440", name="minutes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lesson.id", ondelete="CASCADE"), unique=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"))
    title: Mapped[str] = mapped_column(String(200))
    minutes: Mapped[int]
    body_source: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="draft")
    review_reason: Mapped[str] = mapped_column(Text, default="")
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    lesson: Mapped[Lesson] = relationship(back_populates="draft")
    course: Mapped[Course] = relationship()


class CourseDraft(db.Model):
    """The pending edit of a published course, submitted for review when saved."""

    __table_args__ = (CheckConstraint("state IN ('submitted', 'returned')", name="state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    programme_id: Mapped[int | None] = mapped_column(ForeignKey("programme.id"))
    body_source: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="submitted")
    review_reason: Mapped[str] = mapped_column(Text, default="")
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    course: Mapped[Course] = relationship(back_populates="draft")
    programme: Mapped[Programme | None] = relationship()
    editor: Mapped[User | None] = relationship()


class LessonReview(db.Model):
    """One step of a lesson's review: who moved it from which state to which, and why."""

    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lesson.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    #: The lesson's revision this step concerned.
    revision: Mapped[int | None]
    #: True for a step of a pending edit of the published lesson (the lesson itself stayed published).
    is_draft: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    lesson: Mapped[Lesson] = relationship(back_populates="reviews")
    actor: Mapped[User | None] = relationship()


class MediaFile(db.Model):
    """An uploaded file stored under MEDIA_DIR by a server-made name; served only after a permission check."""

    __table_args__ = (CheckConstraint("kind IN ('video', 'audio', 'pdf', 'image')", name="kind"),
                      CheckConstraint("draft_change IN ('add', 'remove')", name="draft_change"))

    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int | None] = mapped_column(ForeignKey("lesson.id", ondelete="SET NULL"), index=True)
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    kind: Mapped[str] = mapped_column(String(16))
    mimetype: Mapped[str] = mapped_column(String(100))
    #: The name the uploader gave it, shown and used for downloads only.
    original_name: Mapped[str] = mapped_column(String(255))
    #: Random file name under MEDIA_DIR; also the URL token.
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)
    size: Mapped[int] = mapped_column(default=0)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    #: On a published lesson with a pending edit: "add" (members do not see it yet) or "remove"
    #: (members still do); None: part of the lesson as it is.
    draft_change: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    lesson: Mapped[Lesson | None] = relationship(back_populates="media")
    uploader: Mapped[User | None] = relationship()


class LessonProgress(db.Model):
    """One member's study of one lesson."""

    __table_args__ = (
        UniqueConstraint("user_id", "lesson_id"),
        CheckConstraint("credited_seconds >= 0", name="credited_seconds"),
        Index("ix_lesson_progress_completed", "completed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lesson.id", ondelete="CASCADE"), index=True)
    opened_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    #: The last heartbeat, or the last time the lesson was opened: time is credited from here.
    last_heartbeat_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    credited_seconds: Mapped[int] = mapped_column(default=0)
    completed_at: Mapped[dt.datetime | None]
    #: Learning hours credited on completion (the lesson's hours then).
    hours_credited: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("0"))

    user: Mapped[User] = relationship()
    lesson: Mapped[Lesson] = relationship()


class LearningClock(db.Model):
    """A member's one learning clock, shared by every lesson, tab and device: study time before
    ``credited_until`` has been credited to some lesson already and is never credited again."""

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    #: The moment up to which the member's study time has been credited (UTC).
    credited_until: Mapped[dt.datetime] = mapped_column(default=clock.now)


class Comment(db.Model):
    """A comment under a lesson (学习交流). Shown to all once approved; an admin may hide it."""

    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lesson.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    is_approved: Mapped[bool] = mapped_column(default=False)
    is_hidden: Mapped[bool] = mapped_column(default=False)
    moderated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    moderated_at: Mapped[dt.datetime | None]
    hidden_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now, index=True)

    lesson: Mapped[Lesson] = relationship()
    author: Mapped[User] = relationship(foreign_keys=[author_id])
    moderated_by: Mapped[User | None] = relationship(foreign_keys=[moderated_by_id])
