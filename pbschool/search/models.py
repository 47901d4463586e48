"""The search index: one row per course and per lesson, holding the text members read there (the
published version: pending edits live in CourseDraft/LessonDraft and never reach it)."""

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from pbschool.extensions import db


class Grams(TypeDecorator):
    """A text array on PostgreSQL (GIN-indexed); on SQLite, which matches with LIKE on the folded
    text instead, an empty string."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(Text))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value, dialect):
        if dialect.name == "postgresql":
            return list(value or [])
        return ""

    def process_result_value(self, value, dialect):
        return list(value) if isinstance(value, list) else []


class SearchDoc(db.Model):
    __table_args__ = (
        # PostgreSQL finds the rows holding every gram of a query through this index; SQLite's copy
        # indexes empty strings.
        Index("ix_search_doc_grams", "grams", postgresql_using="gin"),
        # the texts go out of line (TOAST), so the rows a query scans stay small: 76 pages for
        # 5,000 lessons instead of 950
        {"postgresql_with": {"toast_tuple_target": 128}},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Exactly one of lesson_id / course_id is set: whose text this is.
    lesson_id: Mapped[int | None] = mapped_column(ForeignKey("lesson.id", ondelete="CASCADE"), unique=True)
    course_id: Mapped[int | None] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"), unique=True)
    #: The title, folded (text.fold), to rank title matches first.
    title_folded: Mapped[str] = mapped_column(Text, default="")
    #: What a reader sees of the body (a course's summary and body), plain text for snippets.
    body_text: Mapped[str] = mapped_column(Text, default="")
    #: fold(title + body_text): what LIKE matches on SQLite and what longer terms are checked against.
    folded: Mapped[str] = mapped_column(Text, default="")
    #: text.grams(folded): the 1- and 2-character grams (PostgreSQL only).
    grams: Mapped[list] = mapped_column(Grams, default=list)
