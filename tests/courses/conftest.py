import datetime as dt
import io

import pytest

from pbschool import clock
from pbschool.courses import services
from pbschool.courses.models import Course, Lesson
from pbschool.extensions import db

T0 = dt.datetime(2026, 3, 2, 1, 0, 0)  # 09:00 in Beijing


class CourseMaker:
    def course(self, title="安全生产与党建", published=True, programme=None, **kwargs):
        course = Course(title=title, summary=kwargs.pop("summary", "简介"), is_published=published, **kwargs)
        if programme:
            course.programme = services.find_programme(programme)
        db.session.add(course)
        db.session.commit()
        return course

    def lesson(self, course=None, title="第一讲", minutes=20, body="## 导读\n\n学习内容。", state="published",
               author=None):
        course = course or self.course()
        lesson = Lesson(course=course, title=title, minutes=minutes, state=state,
                        author_id=getattr(author, "id", None), position=len(course.lessons) + 1)
        services.set_lesson_body(lesson, body)
        db.session.add(lesson)
        db.session.commit()
        return lesson


@pytest.fixture
def cm(app):
    return CourseMaker()


@pytest.fixture
def t0():
    clock.pin(T0)
    yield T0
    clock.pin(None)


def study(user, lesson, seconds):
    """Open the lesson, let ``seconds`` pass and report them."""
    services.open_lesson(user, lesson)
    clock.advance(seconds=seconds)
    progress = services.heartbeat(user, lesson, seconds)
    db.session.commit()
    return progress


@pytest.fixture
def make_csrf_client(app_factory, backend):
    """A logged-in browser client on an app with CSRF on; returns (client, lesson, csrf token)."""
    import re

    from tests import factories

    csrf_app = app_factory(WTF_CSRF_ENABLED=True)
    with csrf_app.app_context():
        maker = factories.Factory()
        user = maker.user("csrfuser")
        lesson = CourseMaker().lesson()
        client = csrf_app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        client.post("/login", data={"username": user.username, "password": factories.PASSWORD,
                                    "csrf_token": token})
        # login starts a new CSRF secret: the member's pages carry the token that counts now
        page = client.get("/account/password").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        yield client, lesson, token


def upload(client, lesson, data, name="v.mp4", **kwargs):
    """Post a file to the lesson's upload form, as the lesson editor does."""
    return client.post(f"/teach/lessons/{lesson.id}/upload", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data", **kwargs)
