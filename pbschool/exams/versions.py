"""Question versions: every change to what a member sees of a question is kept.

A flush that inserts a question, or changes its type, stem, options, answer, score or explanation,
also writes a new immutable QuestionVersion and moves ``Question.version`` on. It is done at flush
time so that no path (the form, an import, content sync, a script) can edit a question without a
version; saving identical content makes none. Attempts point at the version they were shown.
"""

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from pbschool.exams.models import Question, QuestionVersion
from pbschool.exams.qtypes import LETTERS, _fresh, prerender
from pbschool.extensions import db

#: What a member sees of a question (and what grades it): a change to any of these is a new version.
CONTENT = ("type", "stem", "options", "answer", "score", "explanation")


def content_of(item):
    return {name: getattr(item, name) for name in CONTENT}


def _same(a, b):
    return all(a[name] == b[name] for name in CONTENT)


def set_author(question, actor):
    """Name who makes the version the next flush writes (the form's or the import's user)."""
    with db.session.no_autoflush:  # reading an expired actor's id must not flush the edit without its author
        question.version_author_id = getattr(actor, "id", None)


def _changed(session, question):
    state = inspect(question)
    if not any(state.attrs[name].history.has_changes() for name in CONTENT):
        return False
    if not question.version:
        return True
    with session.no_autoflush:
        latest = session.scalar(select(QuestionVersion).where(QuestionVersion.question_id == question.id,
                                                              QuestionVersion.number == question.version))
    return latest is None or not _same(content_of(latest), content_of(question))


@event.listens_for(Session, "before_flush")
def _version_questions(session, _context, _instances):
    for question in [*session.new, *session.dirty]:
        if not isinstance(question, Question) or question in session.deleted:
            continue
        if question not in session.new and not _changed(session, question):
            continue
        if question.rendered is None or _fresh(question) is None:
            prerender(question)  # so exam starts never render this version again
        question.version = (question.version or 0) + 1
        session.add(QuestionVersion(question=question, number=question.version,
                                    created_by_id=getattr(question, "version_author_id", None),
                                    rendered=question.rendered, **content_of(question)))


def current_versions(question_ids):
    """{question id: its latest QuestionVersion} in one query."""
    if not question_ids:
        return {}
    stmt = (select(QuestionVersion).join(Question, Question.id == QuestionVersion.question_id)
            .where(Question.id.in_(list(question_ids)), QuestionVersion.number == Question.version))
    return {v.question_id: v for v in db.session.scalars(stmt)}


def current_version_ids(question_ids):
    """{question id: id of its latest version} in one query (an exam start records what it shows)."""
    if not question_ids:
        return {}
    stmt = (select(QuestionVersion.question_id, QuestionVersion.id)
            .join(Question, Question.id == QuestionVersion.question_id)
            .where(Question.id.in_(list(question_ids)), QuestionVersion.number == Question.version))
    return dict(db.session.execute(stmt).all())


def versions_by_id(ids):
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return {v.id: v for v in db.session.scalars(select(QuestionVersion).where(QuestionVersion.id.in_(ids)))}


def translate_answer(value, old, new):
    """A member's canonical answer given under version ``old``, in the option keys of ``new``.

    Choice keys are positions; when a new version reorders options, the key of the option with the
    same text is kept, so a stored answer keeps pointing at the option the member chose. An option
    whose text changed keeps its position (a corrected typo)."""
    if old is None or new is None or old is new or value is None or new.type not in ("single", "multiple") \
            or old.type != new.type:
        return value
    old_options, new_options = list(old.options or []), list(new.options or [])
    if old_options == new_options:
        return value

    def key(k):
        if not isinstance(k, str) or k not in LETTERS[: len(old_options)]:
            return k
        text = old_options[LETTERS.index(k)]
        if text in new_options:
            return LETTERS[new_options.index(text)]
        return k

    if isinstance(value, list):
        return sorted(key(k) for k in value)
    return key(value)
