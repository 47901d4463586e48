"""Separation of duties: the matrix of every action that writes a score, a mark, points, a meeting,
a star or a publication, tried by each role on their own record. Each area has a file here
(``test_exams.py``, ``test_points.py``, ...) whose actions all use ``unchanged``: the refusal must
leave every table that holds a record as it was: no row added, removed or changed."""

import pytest
from sqlalchemy import select

from pbschool.extensions import db

ROLES = ("member", "lecturer", "secretary", "admin")

#: Tables whose rows a refusal may still add: the audit trail and sign-in bookkeeping.
BOOKKEEPING = {"audit_log", "api_token", "login_attempt"}


def table_contents():
    """Every row of every record table, as sorted tuples of strings (the test databases are small)."""
    contents = {}
    for table in db.metadata.sorted_tables:
        if table.name in BOOKKEEPING:
            continue
        rows = db.session.execute(select(table)).all()
        contents[table.name] = sorted(tuple(str(v) for v in row) for row in rows)
    return contents


class Unchanged:
    """``with unchanged():`` fails the test if any record table gained, lost or changed a row inside."""

    def __call__(self):
        return self

    def __enter__(self):
        db.session.expire_all()
        self.before = table_contents()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            return False
        db.session.rollback()
        db.session.expire_all()
        after = table_contents()
        changed = sorted(t for t in after if after[t] != self.before.get(t))
        assert not changed, f"a refused action wrote to: {', '.join(changed)}"
        return False


@pytest.fixture
def unchanged(app):
    return Unchanged()


@pytest.fixture
def person(make):
    """person(role): a user of that role with a branch (admins and lecturers get one too, since a
    committee's staff are members of some branch), so every role has a record to deal with."""

    def build(role, branch=None):
        return make.user(role=role, branch=branch or make.branch())

    return build
