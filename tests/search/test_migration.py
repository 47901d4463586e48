"""The search migration fills the index for the courses and lessons that exist before it."""

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from pbschool import create_app
from pbschool.extensions import db
from pbschool.search import services
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


def test_existing_courses_and_lessons_are_indexed(empty_database_url, tmp_path):
    app = create_app(make_test_config(tmp_path, empty_database_url))
    with app.app_context():
        upgrade(revision="c12b0totp")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO course (id, title, summary, body_source, body_html, is_published, "
                              "position, requirements_from_file, revision, created_at, updated_at) VALUES "
                              "(1, '党的建设', '简介', '', '<p>课程正文</p>', true, 0, false, 1, "
                              "'2026-11-01 00:00:00', '2026-11-01 00:00:00')"))
            conn.execute(text("INSERT INTO lesson (id, course_id, title, minutes, body_source, body_html, position, "
                              "state, review_reason, revision, created_at, updated_at) VALUES "
                              "(1, 1, '第一讲', 20, '学习**党史**', '<p>学习<strong>党史</strong>教育</p>', 1, "
                              "'published', '', 1, '2026-11-01 00:00:00', '2026-11-01 00:00:00')"))
        upgrade()
        assert [(r["type"], r["title"]) for r in services.search("党史")] == [("lesson", "第一讲")]
        assert "<mark>党史</mark>" in str(services.search("党史")[0]["snippet_html"])
        assert [r["title"] for r in services.search("课程正文")] == ["党的建设"]
        db.session.remove()
        downgrade(revision="c12b0totp")
        db.engine.dispose()
