"""Migrations are the only way the schema is made: upgrading an empty database to head must give
exactly what the models describe, on SQLite and on PostgreSQL."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from pbschool import create_app
from pbschool.extensions import db
from tests.conftest import PG_URL, make_test_config
from tests.databases import scratch_postgres


@pytest.fixture
def empty_database_url(backend, tmp_path):
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL: PBSCHOOL_TEST_DATABASE_URL is not set")
    with scratch_postgres(PG_URL, "pbschool_migrate") as url:
        yield url


def _differences(app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_upgrade_to_head_matches_the_models(empty_database_url, tmp_path):
    app = create_app(make_test_config(tmp_path, empty_database_url))
    with app.app_context():
        upgrade()
        assert _differences(app) == []
        upgrade()  # running it again changes nothing
        assert "alembic_version" in inspect(db.engine).get_table_names()
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()


def test_the_migrated_ledger_refuses_updates_and_deletes_on_postgresql(empty_database_url, tmp_path, backend):
    if backend != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    from sqlalchemy.exc import DBAPIError

    from pbschool.accounts.models import User
    from pbschool.points import services as points
    from tests.factories import Factory

    app = create_app(make_test_config(tmp_path, empty_database_url))
    with app.app_context():
        upgrade()
        member = Factory().user("liuzq")
        entry = points.record_event(db.session.get(User, member.id), "meeting_attended", "meeting:1:user:1")
        entry_id, entry_points = entry.id, entry.points
        db.session.commit()
        db.session.close()  # hold no lock that TRUNCATE would wait for
        for statement in (f"UPDATE ledger_entry SET points = 99 WHERE id = {entry_id}",
                          f"DELETE FROM ledger_entry WHERE id = {entry_id}", "TRUNCATE ledger_entry CASCADE"):
            with pytest.raises(DBAPIError, match="append-only"):
                with db.engine.begin() as conn:
                    conn.execute(text(statement))
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT points FROM ledger_entry")).scalar() == entry_points
        downgrade(revision="base")
        db.engine.dispose()


def test_existing_questions_become_version_one_of_themselves(empty_database_url, tmp_path):
    app = create_app(make_test_config(tmp_path, empty_database_url))
    with app.app_context():
        upgrade(revision="b11a0versions-1")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO question_bank (id, name, description, created_at) "
                              "VALUES (1, '题库', '', '2026-11-01 00:00:00')"))
            conn.execute(text(
                "INSERT INTO question (id, bank_id, type, stem, stem_key, options, answer, score, difficulty, "
                "category, explanation, is_active, created_at, updated_at) VALUES (7, 1, 'single', '题？', 'k', "
                "'[\"甲\", \"乙\"]', '\"B\"', 1, 3, '', '解析', true, '2026-11-01 00:00:00', '2026-11-02 00:00:00')"))
        upgrade(revision="b11a0versions")
        with db.engine.connect() as conn:
            version = conn.execute(text("SELECT question_id, number, stem, answer, explanation FROM question_version"))
            rows = [(*r[:3], r[3].strip('"'), r[4]) for r in version]  # SQLite sends the JSON text
            assert rows == [(7, 1, "题？", "B", "解析")]
            assert conn.execute(text("SELECT version FROM question")).scalar() == 1
        downgrade(revision="base")
        db.engine.dispose()


def test_extra_time_becomes_member_overrides(empty_database_url, tmp_path):
    app = create_app(make_test_config(tmp_path, empty_database_url))
    with app.app_context():
        upgrade(revision="c12b0totp")
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO \"user\" (id, username, name, role, job_post, password_hash, is_active, session_nonce, "
                "must_change_password, created_at) VALUES (3, 'slow', '慢', 'member', '', 'x', true, 'n', false, "
                "'2026-11-01 00:00:00')"))
            conn.execute(text(
                "INSERT INTO exam (id, title, description, time_limit_seconds, max_attempts, grading_method, "
                "pass_score, points_on_pass, shuffle_questions, shuffle_options, partial_credit, review, review_when, "
                "audience, audience_job_posts, is_published, created_at) VALUES (5, '考试', '', 600, 1, 'highest', "
                "60, 0, true, true, false, 'score', 'submit', 'all', '[]', true, '2026-11-01 00:00:00')"))
            conn.execute(text("INSERT INTO extra_time (exam_id, user_id, seconds) VALUES (5, 3, 610)"))
        upgrade(revision="d02b0overrides")
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT exam_id, user_id, branch_id, extra_minutes, extra_attempts "
                                     "FROM exam_override")).all()
            assert [tuple(r) for r in rows] == [(5, 3, None, 11, None)]
        downgrade(revision="c12b0totp")
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT seconds FROM extra_time")).scalar() == 660
        downgrade(revision="base")
        db.engine.dispose()
