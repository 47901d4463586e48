"""Separation of duties for publication: nobody publishes their own lesson or their own edit of a
course, by the review page or the API; only admins publish at all. (There is no CLI path that
publishes: `pbschool content sync` brings in files reviewed where they are kept, per the contract.)"""

import pytest

from pbschool.courses import services
from pbschool.courses.models import Course, CourseDraft, Lesson
from pbschool.extensions import db
from tests import factories
from tests.sod.conftest import ROLES

PATHS = ("page", "api")
OWN_REVIEW = "不能审核自己编写的内容"


def own_lesson(author):
    course = Course(title="安全生产与党建", is_published=True)
    lesson = Lesson(course=course, title="我写的课时", minutes=20, state="submitted", author_id=author.id,
                    editor_id=author.id, revision=3)
    services.set_lesson_body(lesson, "## 导读\n\n正文。")
    db.session.add(lesson)
    db.session.commit()
    return lesson


def own_course_edit(editor):
    course = Course(title="已发布的课程", is_published=True, author_id=editor.id, revision=2)
    course.draft = CourseDraft(title="我改的课程名", state="submitted", editor_id=editor.id)
    db.session.add(course)
    db.session.commit()
    return course


def signed_in(app, user, path):
    """A function that asks to publish, by the page or the API, as ``user`` (signed in beforehand:
    signing in is not part of what the refusal must leave unchanged)."""
    client = app.test_client()
    if path == "page":
        client.post("/login", data={"username": user.username, "password": factories.PASSWORD})
        return lambda url_page, url_api, revision: client.post(url_page, data={"action": "publish",
                                                                                "revision": revision})
    token = client.post("/api/v1/tokens", json={"username": user.username, "password": factories.PASSWORD})
    headers = {"Authorization": "Bearer " + token.get_json()["token"]}
    return lambda url_page, url_api, revision: client.post(url_api, json={"action": "publish", "revision": revision},
                                                           headers=headers)


def assert_refused(response, role, path):
    assert 400 <= response.status_code < 500, response.status_code
    if role == "admin":  # may publish, but not their own
        assert response.status_code == 403
        if path == "api":
            assert response.get_json()["error"]["code"] == "own_review"
        else:
            assert OWN_REVIEW in response.get_data(as_text=True)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("role", ROLES)
def test_nobody_publishes_their_own_lesson(app, person, unchanged, role, path):
    actor = person(role)
    lesson = own_lesson(actor)
    publish = signed_in(app, actor, path)
    with unchanged():
        response = publish(f"/admin/review/{lesson.id}", f"/api/v1/lessons/{lesson.id}/review",
                           lesson.revision)
        assert_refused(response, role, path)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("role", ROLES)
def test_nobody_publishes_their_own_edit_of_a_published_course(app, person, unchanged, role, path):
    actor = person(role)
    course = own_course_edit(actor)
    publish = signed_in(app, actor, path)
    with unchanged():
        response = publish(f"/admin/review/courses/{course.id}",
                           f"/api/v1/courses/{course.id}/review", course.revision)
        assert_refused(response, role, path)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("role", ("member", "lecturer", "secretary"))
def test_only_admins_publish_anyones_lesson(app, person, unchanged, role, path):
    lesson = own_lesson(person("lecturer"))
    publish = signed_in(app, person(role), path)
    with unchanged():
        response = publish(f"/admin/review/{lesson.id}", f"/api/v1/lessons/{lesson.id}/review",
                           lesson.revision)
        assert response.status_code == 403


def test_another_admin_may_publish_it(app, person):
    lesson = own_lesson(person("admin"))
    response = signed_in(app, person("admin"), "api")(None, f"/api/v1/lessons/{lesson.id}/review", lesson.revision)
    assert response.status_code == 200 and response.get_json()["state"] == "published"
