"""Search over published courses and lessons, and the index that keeps their text.

The index (SearchDoc) follows the course and lesson rows by itself: after every flush that changed a
lesson's or course's title or text (an edit of a draft, a publication that applies a pending edit,
content sync), its row is rewritten in the same transaction. The rows hold the published text, since
pending edits live in LessonDraft/CourseDraft; who may see a row is decided at query time by the
same rule as everywhere else (``courses.services.is_visible``: a published lesson of a published
course; a published course), so withdrawing a lesson or a course hides it at once.

Matching: the query is split on spaces into terms (folded: NFKC, case-folded); a row matches when
its title or text contains every term anywhere (Chinese needs no spaces: 党史 finds 学习党史教育).
PostgreSQL narrows the rows with a GIN index over each row's 1- and 2-character grams (exact for
terms of one or two characters) and checks longer terms in the text of the candidates; SQLite uses
LIKE with the wildcards escaped. Ranking: rows whose title holds more of the terms first, a course
before its lessons, then the newest.
"""

from flask_babel import gettext as _
from sqlalchemy import Text, bindparam, case, delete, event, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from pbschool.courses.models import Course, Lesson
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.search import text as search_text
from pbschool.search.models import SearchDoc

MAX_RESULTS = 20
#: Candidates checked per round for terms of three or more characters (PostgreSQL).
BATCH = 100
_WATCHED = {Lesson: ("title", "body_html"), Course: ("title", "summary", "body_html")}


# -- the index -------------------------------------------------------------------------------

def _values_of(item):
    if isinstance(item, Course):
        return search_text.doc_values(item.title, item.body_html, item.summary)
    return search_text.doc_values(item.title, item.body_html)


def _key(item):
    return (SearchDoc.course_id if isinstance(item, Course) else SearchDoc.lesson_id), item.id


def _write(connection, item):
    column, item_id = _key(item)
    values = _values_of(item)
    done = connection.execute(update(SearchDoc).where(column == item_id).values(**values)).rowcount
    if not done:
        connection.execute(insert(SearchDoc).values(**{column.key: item_id}, **values))


def _changed(item):
    state = db.inspect(item)
    return any(state.attrs[name].history.has_changes() for name in _WATCHED[type(item)])


def _after_flush(session, _context):
    """Rewrite the index rows of the courses and lessons this flush added, changed or deleted."""
    touched = [o for o in session.new if type(o) in _WATCHED]
    touched += [o for o in session.dirty if type(o) in _WATCHED and _changed(o)]
    gone = [o for o in session.deleted if type(o) in _WATCHED]
    if not touched and not gone:
        return
    connection = session.connection()
    for item in gone:
        column, item_id = _key(item)
        connection.execute(delete(SearchDoc).where(column == item_id))
    for item in touched:
        if item.id is not None:
            _write(connection, item)


_listening = False


def listen():
    global _listening
    if not _listening:
        event.listen(Session, "after_flush", _after_flush)
        _listening = True


def reindex_all():
    """Rewrite every index row (e.g. after rows were loaded around the ORM). Returns the count."""
    connection = db.session.connection()
    count = 0
    for item in db.session.scalars(select(Course)).all() + db.session.scalars(select(Lesson)).all():
        _write(connection, item)
        count += 1
    return count


# -- the query -------------------------------------------------------------------------------

def parse(q):
    """The terms of a query string; a DomainError (400) when it is too long."""
    q = q or ""
    if len(q) > search_text.MAX_QUERY_CHARS:
        raise DomainError(_("搜索内容不能超过 %(n)d 个字", n=search_text.MAX_QUERY_CHARS), "too_long", 400,
                          field="q")
    return search_text.parse_query(q)


def _title_hits(terms):
    return sum(case((SearchDoc.title_folded.like(search_text.like_pattern(t), escape="\\"), 1), else_=0)
               for t in terms)


def _matching(stmt, terms, postgres):
    if postgres:
        wanted = sorted({g for t in terms for g in search_text.grams_for_term(t)})
        return stmt.where(text("search_doc.grams @> :grams").bindparams(
            bindparam("grams", wanted, type_=ARRAY(Text))))
    for term in terms:
        stmt = stmt.where(SearchDoc.folded.like(search_text.like_pattern(term), escape="\\"))
    return stmt


def _candidates(kind, terms, postgres):
    hits = _title_hits(terms).label("hits")
    if kind == "course":
        stmt = (select(SearchDoc.id, Course.id, Course.title, hits).join(Course, Course.id == SearchDoc.course_id)
                .where(Course.is_published.is_(True))
                .order_by(hits.desc(), Course.position, Course.id))
    else:
        # is_visible(lesson), as a query: a published lesson of a published course
        stmt = (select(SearchDoc.id, Lesson.id, Lesson.title, hits).join(Lesson, Lesson.id == SearchDoc.lesson_id)
                .join(Course, Course.id == Lesson.course_id)
                .where(Lesson.state == "published", Course.is_published.is_(True))
                .order_by(hits.desc(), Lesson.published_at.desc().nulls_last(), Lesson.id.desc()))
    return _matching(stmt, terms, postgres)


def _found(kind, terms, postgres, limit):
    """Up to ``limit`` (doc id, item id, title, title hits) of one kind, best first."""
    stmt = _candidates(kind, terms, postgres)
    long_terms = [t for t in terms if len(t) > 2] if postgres else []
    if not long_terms:
        return db.session.execute(stmt.limit(limit)).all()
    # the grams narrowed the rows; a term of three or more characters is checked in their text
    found, offset = [], 0
    while len(found) < limit:
        rows = db.session.execute(stmt.limit(BATCH).offset(offset)).all()
        if not rows:
            break
        texts = dict(db.session.execute(select(SearchDoc.id, SearchDoc.folded)
                                        .where(SearchDoc.id.in_([r[0] for r in rows]))).all())
        found += [r for r in rows if all(t in texts.get(r[0], "") for t in long_terms)]
        offset += BATCH
    return found[:limit]


def search(q, limit=MAX_RESULTS):
    """[{"type", "id", "title", "title_html", "snippet_html"}] for the published courses and lessons
    matching every term of ``q``, best first. Nothing for an empty query."""
    terms = parse(q)
    if not terms:
        return []
    postgres = db.session.get_bind().dialect.name == "postgresql"
    rows = [("course", r) for r in _found("course", terms, postgres, limit)]
    rows += [("lesson", r) for r in _found("lesson", terms, postgres, limit)]
    rows.sort(key=lambda kr: (-kr[1][3], kr[0] != "course"))  # stable: each kind keeps its own order
    rows = rows[:limit]
    bodies = dict(db.session.execute(select(SearchDoc.id, SearchDoc.body_text)
                                     .where(SearchDoc.id.in_([r[0] for _k, r in rows] or [0]))).all())
    return [{"type": kind, "id": item_id, "title": title,
             "title_html": search_text.highlight(title, terms),
             "snippet_html": search_text.snippet_html(bodies.get(doc_id, ""), terms)}
            for kind, (doc_id, item_id, title, _hits) in rows]
