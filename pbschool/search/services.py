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
from sqlalchemy import Text, bindparam, case, delete, event, insert, literal, select, text, union_all, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from pbschool.courses.models import Course, Lesson
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.search import text as search_text
from pbschool.search.models import SearchDoc

MAX_RESULTS = 20
#: Candidates checked per round for terms of three or more characters (PostgreSQL).
BATCH = 2 * MAX_RESULTS
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
    """Rebuild every index row from the courses and lessons (e.g. after rows were loaded around the
    ORM). Returns the number of rows."""
    db.session.execute(delete(SearchDoc))
    rows = [{"course_id": course_id, "lesson_id": None, **search_text.doc_values(title, body_html, summary)}
            for course_id, title, summary, body_html in db.session.execute(
                select(Course.id, Course.title, Course.summary, Course.body_html))]
    rows += [{"course_id": None, "lesson_id": lesson_id, **search_text.doc_values(title, body_html)}
             for lesson_id, title, body_html in db.session.execute(select(Lesson.id, Lesson.title, Lesson.body_html))]
    for start in range(0, len(rows), 500):
        db.session.execute(insert(SearchDoc), rows[start:start + 500])
    return len(rows)


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


def _ranked(terms, postgres):
    """Every matching published course and lesson as (doc_id, item_id, title, hits, kind, at), in
    the order shown: more of the terms in the title first, a course before lessons, then the newest."""
    hits = _title_hits(terms)
    courses = (select(SearchDoc.id.label("doc_id"), Course.id.label("item_id"), Course.title.label("title"),
                      hits.label("hits"), literal(0).label("kind"), Course.updated_at.label("at"))
               .join(Course, Course.id == SearchDoc.course_id)
               .where(Course.is_published.is_(True)))
    # is_visible(lesson), as a query: a published lesson of a published course
    lessons = (select(SearchDoc.id, Lesson.id, Lesson.title, hits, literal(1), Lesson.published_at)
               .join(Lesson, Lesson.id == SearchDoc.lesson_id).join(Course, Course.id == Lesson.course_id)
               .where(Lesson.state == "published", Course.is_published.is_(True)))
    found = union_all(_matching(courses, terms, postgres), _matching(lessons, terms, postgres)).subquery()
    return found, (found.c.hits.desc(), found.c.kind, found.c.at.desc().nulls_last(), found.c.item_id.desc())


def _page(terms, postgres, limit, offset=0):
    """One page of the ranking, with each row's text: [(kind, item_id, title, body_text, folded)]."""
    found, order = _ranked(terms, postgres)
    top = select(found).order_by(*order).limit(limit).offset(offset).subquery()
    stmt = (select(top.c.kind, top.c.item_id, top.c.title, SearchDoc.body_text, SearchDoc.folded)
            .join(SearchDoc, SearchDoc.id == top.c.doc_id)
            .order_by(top.c.hits.desc(), top.c.kind, top.c.at.desc().nulls_last(), top.c.item_id.desc()))
    return db.session.execute(stmt).all()


def _found(terms, postgres, limit):
    long_terms = [t for t in terms if len(t) > 2] if postgres else []
    if not long_terms:
        return _page(terms, postgres, limit)
    # the grams narrowed the rows; a term of three or more characters is checked in their text
    found, offset = [], 0
    while len(found) < limit:
        rows = _page(terms, postgres, BATCH, offset)
        found += [r for r in rows if all(t in r.folded for t in long_terms)]
        if len(rows) < BATCH:
            break
        offset += BATCH
    return found[:limit]


def search(q, limit=MAX_RESULTS):
    """[{"type", "id", "title", "title_html", "snippet_html"}] for the published courses and lessons
    matching every term of ``q``, best first. Nothing for an empty query."""
    terms = parse(q)
    if not terms:
        return []
    postgres = db.session.get_bind().dialect.name == "postgresql"
    if postgres:
        # The planner must use the GIN index, and plan for this query's own grams: a gram found in
        # most rows makes it scan the table and unpack every row's gram array instead (0.7 s over
        # 5,000 lessons, against a few ms), and so does a plan made once for any grams (psycopg
        # prepares a statement run five times). For this transaction only, one round trip each way.
        db.session.execute(text("SELECT set_config('enable_seqscan', 'off', true), "
                                "set_config('plan_cache_mode', 'force_custom_plan', true)"))
    try:
        rows = _found(terms, postgres, limit)
    finally:
        if postgres:
            db.session.execute(text("SELECT set_config('enable_seqscan', 'on', true), "
                                    "set_config('plan_cache_mode', 'auto', true)"))
    return [{"type": "course" if row.kind == 0 else "lesson", "id": row.item_id, "title": row.title,
             "title_html": search_text.highlight(row.title, terms),
             # the folded column ends with the folded body (fold keeps lengths for nearly every text)
             "snippet_html": search_text.snippet_html(row.body_text, terms,
                                                      row.folded[len(row.folded) - len(row.body_text):])}
            for row in rows]
