"""Review that cannot be bypassed (issue 11, item 6): publishing approves exactly the revision the
reviewer was shown, nobody approves their own content, and an edit of anything published waits for
review while members keep the published version."""

import io
import re

import pytest
from sqlalchemy import select

from pbschool.courses import services
from pbschool.courses.models import Course, Lesson, LessonReview, MediaFile
from pbschool.errors import DomainError
from pbschool.extensions import db

PDF = b"%PDF-1.4\n" + b"0" * 200
STALE = "内容在您打开后已被修改，请重新审核"


def shown_revision(page):
    """The revision the review page carries in its form ("" when it carries none)."""
    match = re.search(r'name="revision"[^>]*value="(\d+)"', page) or re.search(
        r'value="(\d+)"[^>]*name="revision"', page)
    return match.group(1) if match else ""


def fetch(client, api, item):
    response = client.get(f"/media/{item.stored_name}", headers=api.headers)
    response.close()
    return response.status_code


def submitted_lesson(make, cm, lecturer=None, body="## 导读\n\n第一稿。"):
    lecturer = lecturer or make.user(role="lecturer")
    lesson = services.create_lesson(cm.course(), "班前会上讲党课", 20, body, lecturer)
    services.submit_lesson(lesson, lecturer)
    db.session.commit()
    return lesson, lecturer


# -- the exact revision -----------------------------------------------------------------------

def test_publishing_a_lesson_changed_after_the_admin_opened_it_is_a_409_on_the_page(client, auth, make, cm):
    """Reproduction: the admin opened the review page, the lecturer then changed the lesson, and the
    admin's publish went through with content the admin never saw."""
    lesson, lecturer = submitted_lesson(make, cm)
    admin = make.user(role="admin")
    auth.login(admin.username)
    page = client.get(f"/admin/review/{lesson.id}").get_data(as_text=True)
    assert "第一稿" in page
    shown = shown_revision(page)
    services.update_lesson(lesson, title=lesson.title, minutes=20, body="## 导读\n\n未经审核的第二稿。", actor=lecturer)
    db.session.commit()
    reply = client.post(f"/admin/review/{lesson.id}", data={"action": "publish", "revision": shown})
    assert reply.status_code == 409 and STALE in reply.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Lesson, lesson.id).state != "published"
    # The lecturer submits the second draft; the admin reviews it afresh and publishes that.
    services.submit_lesson(db.session.get(Lesson, lesson.id), lecturer)
    db.session.commit()
    page = client.get(f"/admin/review/{lesson.id}").get_data(as_text=True)
    assert "未经审核的第二稿" in page
    reply = client.post(f"/admin/review/{lesson.id}", data={"action": "publish", "revision": shown_revision(page)})
    assert reply.status_code == 302
    db.session.expire_all()
    published = db.session.get(Lesson, lesson.id)
    assert published.state == "published" and "第二稿" in published.body_html


def test_publishing_a_stale_revision_through_the_api_is_409_stale_revision(api, make, cm):
    lesson, lecturer = submitted_lesson(make, cm)
    api.token(make.user(role="admin"))
    seen = api.get(f"/lessons/{lesson.id}/review").get_json()
    assert seen["state"] == "submitted" and "第一稿" in seen["body_html"]
    services.update_lesson(lesson, title="改过的标题", minutes=20, body=lesson.body_source, actor=lecturer)
    services.submit_lesson(lesson, lecturer)  # even resubmitted, it is not what the admin saw
    db.session.commit()
    reply = api.post(f"/lessons/{lesson.id}/review", json={"action": "publish", "revision": seen["revision"]})
    assert reply.status_code == 409 and reply.get_json()["error"]["code"] == "stale_revision"
    assert db.session.get(Lesson, lesson.id).state == "submitted"
    fresh = api.get(f"/lessons/{lesson.id}/review").get_json()
    assert fresh["revision"] == seen["revision"] + 1 and fresh["title"] == "改过的标题"
    done = api.post(f"/lessons/{lesson.id}/review", json={"action": "publish", "revision": fresh["revision"]})
    assert done.status_code == 200 and done.get_json()["state"] == "published"


@pytest.mark.parametrize("body", [{}, {"action": "publish"}, {"action": "publish", "revision": "1"},
                                  {"action": "approve", "revision": 1}, {"action": "return", "revision": 1}])
def test_bad_review_requests_are_a_clear_400_and_change_nothing(api, make, cm, body):
    lesson, _lecturer = submitted_lesson(make, cm)
    api.token(make.user(role="admin"))
    reply = api.post(f"/lessons/{lesson.id}/review", json=body)
    assert reply.status_code == 400 and reply.get_json()["error"]["message"]
    assert db.session.get(Lesson, lesson.id).state == "submitted"


def test_every_edit_makes_a_new_revision_and_the_history_names_it(app, make, cm):
    lecturer, admin = make.user(role="lecturer"), make.user(role="admin")
    lesson = services.create_lesson(cm.course(), "新课", 12, "正文", lecturer)
    assert lesson.revision == 1
    services.update_lesson(lesson, title="新课", minutes=12, body="正文", actor=lecturer)
    assert lesson.revision == 1  # nothing changed
    for change in ({"title": "新课二"}, {"minutes": 13}, {"body": "正文二"}):
        before = lesson.revision
        services.update_lesson(lesson, **{"title": lesson.title, "minutes": lesson.minutes,
                                          "body": lesson.body_source, **change}, actor=lecturer)
        assert lesson.revision == before + 1
    item = MediaFile(lesson_id=lesson.id, kind="pdf", mimetype="application/pdf", original_name="a.pdf",
                     stored_name="x1.pdf", sha256="0" * 64)
    db.session.add(item)
    services.media_added(lesson, item, lecturer)
    assert lesson.revision == 5
    services.submit_lesson(lesson, lecturer)
    services.publish_lesson(lesson, admin, 5)
    db.session.commit()
    last = db.session.scalar(select(LessonReview).where(LessonReview.lesson_id == lesson.id)
                             .order_by(LessonReview.id.desc()).limit(1))
    assert (last.to_state, last.revision, last.actor_id) == ("published", 5, admin.id)


# -- a published lesson stays up while its edit is reviewed -----------------------------------

def test_a_lecturers_edit_of_a_published_lesson_keeps_it_up_for_members(client, auth, api, make, cm):
    """Reproduction: the lecturer's edit of a published lesson took it offline for every member."""
    lecturer, admin, member = make.user(role="lecturer"), make.user(role="admin"), make.user()
    lesson = cm.lesson(author=lecturer, body="## 导读\n\n已发布的正文。")
    auth.login(lecturer.username)
    reply = client.post(f"/teach/lessons/{lesson.id}/edit", data={
        "course": lesson.course_id, "title": "第一讲（修订）", "minutes": 25, "body": "## 导读\n\n修订中的正文。"})
    assert reply.status_code == 302
    client.post(f"/teach/lessons/{lesson.id}/submit")
    auth.logout()
    auth.login(member.username)
    page = client.get(f"/lessons/{lesson.id}")
    assert page.status_code == 200
    assert "已发布的正文" in page.get_data(as_text=True) and "修订中" not in page.get_data(as_text=True)
    auth.logout()
    api.token(member)
    seen = api.get(f"/lessons/{lesson.id}").get_json()
    assert seen["title"] == "第一讲" and seen["minutes"] == 20 and "已发布的正文" in seen["body_html"]
    assert [c["title"] for c in api.get(f"/courses/{lesson.course_id}").get_json()["lessons"]] == ["第一讲"]
    # The lecturer's editor shows the draft, and that it awaits review.
    auth.login(lecturer.username)
    editor = client.get(f"/teach/lessons/{lesson.id}/edit").get_data(as_text=True)
    assert "修订中的正文" in editor and "审核通过后才会替换它" in editor and "待审核" in editor
    auth.logout()
    # Once another admin publishes the revision they reviewed, members get it.
    api.token(admin)
    revision = api.get(f"/lessons/{lesson.id}/review").get_json()["revision"]
    assert api.post(f"/lessons/{lesson.id}/review", json={"action": "publish", "revision": revision}).status_code == 200
    api.token(member)
    seen = api.get(f"/lessons/{lesson.id}").get_json()
    assert seen["title"] == "第一讲（修订）" and seen["minutes"] == 25 and "修订中的正文" in seen["body_html"]


def test_returning_an_edit_leaves_the_published_lesson_up(client, auth, make, cm):
    lecturer, admin, member = make.user(role="lecturer"), make.user(role="admin"), make.user()
    lesson = cm.lesson(author=lecturer, body="已发布的正文。")
    services.update_lesson(lesson, title=lesson.title, minutes=20, body="有问题的修改。", actor=lecturer)
    services.submit_lesson(lesson, lecturer)
    db.session.commit()
    auth.login(admin.username)
    page = client.get(f"/admin/review/{lesson.id}").get_data(as_text=True)
    assert "有问题的修改" in page and "已发布课时的修改" in client.get("/admin/review").get_data(as_text=True)
    client.post(f"/admin/review/{lesson.id}", data={"action": "return", "reason": "数据有误",
                                                    "revision": shown_revision(page)})
    db.session.expire_all()
    lesson = db.session.get(Lesson, lesson.id)
    assert lesson.state == "published" and lesson.draft.state == "returned" and "已发布的正文" in lesson.body_html
    auth.logout()
    auth.login(lecturer.username)
    editor = client.get(f"/teach/lessons/{lesson.id}/edit").get_data(as_text=True)
    assert "审核退回" in editor and "数据有误" in editor and "有问题的修改" in editor
    auth.logout()
    auth.login(member.username)
    assert "已发布的正文" in client.get(f"/lessons/{lesson.id}").get_data(as_text=True)


def test_files_of_a_published_lesson_change_for_members_only_when_the_edit_is_published(
        client, auth, api, make, cm):
    lecturer, admin, member = make.user(role="lecturer"), make.user(role="admin"), make.user()
    lesson = cm.lesson(author=lecturer, state="draft")
    auth.login(lecturer.username)
    client.post(f"/teach/lessons/{lesson.id}/upload", data={"file": (io.BytesIO(PDF), "旧课件.pdf")},
                content_type="multipart/form-data")
    services.submit_lesson(lesson, lecturer)
    services.publish_lesson(lesson, admin, lesson.revision)
    db.session.commit()
    old = db.session.scalar(select(MediaFile).where(MediaFile.original_name == "旧课件.pdf"))
    client.post(f"/teach/lessons/{lesson.id}/upload", data={"file": (io.BytesIO(PDF + b"1"), "新课件.pdf")},
                content_type="multipart/form-data")
    client.post(f"/teach/media/{old.id}/delete")
    new = db.session.scalar(select(MediaFile).where(MediaFile.original_name == "新课件.pdf"))
    auth.logout()
    api.token(member)
    assert [m["name"] for m in api.get(f"/lessons/{lesson.id}").get_json()["media"]] == ["旧课件.pdf"]
    assert fetch(client, api, new) == 404  # not the member's yet
    assert fetch(client, api, old) == 200
    services.submit_lesson(db.session.get(Lesson, lesson.id), lecturer)
    services.publish_lesson(db.session.get(Lesson, lesson.id), admin, db.session.get(Lesson, lesson.id).revision)
    db.session.commit()
    assert [m["name"] for m in api.get(f"/lessons/{lesson.id}").get_json()["media"]] == ["新课件.pdf"]
    assert db.session.get(MediaFile, old.id) is None


def test_withdrawing_a_lesson_with_a_pending_edit_keeps_the_edit_as_its_draft(app, make, cm):
    lecturer, admin = make.user(role="lecturer"), make.user(role="admin")
    lesson = cm.lesson(author=lecturer, body="已发布。")
    services.update_lesson(lesson, title=lesson.title, minutes=20, body="修改稿。", actor=lecturer)
    services.withdraw_lesson(lesson, admin, "暂停")
    db.session.commit()
    assert lesson.state == "returned" and lesson.draft is None and "修改稿" in lesson.body_html


# -- courses ----------------------------------------------------------------------------------

def test_a_lecturers_edit_of_a_published_course_waits_for_review(client, auth, api, make, cm):
    """Reproduction: the lecturer's edit of a published course went live with no review."""
    lecturer, admin, member = make.user(role="lecturer"), make.user(role="admin"), make.user()
    course = cm.course(title="安全生产与党建", author_id=lecturer.id)
    cm.lesson(course=course, author=lecturer)
    auth.login(lecturer.username)
    reply = client.post(f"/teach/courses/{course.id}/edit", data={"title": "未经审核的课程名", "summary": "新简介",
                                                                  "programme": "", "body": "新的介绍"})
    assert reply.status_code == 302
    auth.logout()
    api.token(member)
    assert [c["title"] for c in api.get("/courses").get_json()] == ["安全生产与党建"]
    assert api.get(f"/courses/{course.id}").get_json()["title"] == "安全生产与党建"
    auth.login(lecturer.username)
    assert "正在等待审核" in client.get(f"/teach/courses/{course.id}/edit").get_data(as_text=True)
    auth.logout()
    auth.login(member.username)
    assert "未经审核的课程名" not in client.get("/courses").get_data(as_text=True)
    auth.logout()
    auth.login(admin.username)
    assert "未经审核的课程名" in client.get("/admin/review").get_data(as_text=True)
    page = client.get(f"/admin/review/courses/{course.id}").get_data(as_text=True)
    assert "新的介绍" in page
    reply = client.post(f"/admin/review/courses/{course.id}", data={"action": "publish",
                                                                    "revision": shown_revision(page)})
    assert reply.status_code == 302
    assert api.get(f"/courses/{course.id}").get_json()["title"] == "未经审核的课程名"


def test_a_course_edit_after_the_review_page_opened_is_409_and_returning_keeps_the_course(api, make, cm):
    lecturer, admin = make.user(role="lecturer"), make.user(role="admin")
    course = cm.course(title="原课程名", author_id=lecturer.id)
    services.update_course(course, title="第一次修改", summary="", programme="", body="", actor=lecturer)
    db.session.commit()
    api.token(admin)
    seen = api.get(f"/courses/{course.id}/review").get_json()
    assert seen["state"] == "submitted" and seen["title"] == "第一次修改"
    services.update_course(course, title="第二次修改", summary="", programme="", body="", actor=lecturer)
    db.session.commit()
    stale = api.post(f"/courses/{course.id}/review", json={"action": "publish", "revision": seen["revision"]})
    assert stale.status_code == 409 and stale.get_json()["error"]["code"] == "stale_revision"
    fresh = api.get(f"/courses/{course.id}/review").get_json()
    returned = api.post(f"/courses/{course.id}/review", json={"action": "return", "revision": fresh["revision"],
                                                             "reason": "名称不规范"})
    assert returned.status_code == 200 and returned.get_json()["state"] == "returned"
    assert db.session.get(Course, course.id).title == "原课程名"


# -- nobody approves their own ------------------------------------------------------------------

def test_an_admin_cannot_publish_a_lesson_they_wrote_or_last_edited(api, make, cm):
    first, second = make.user(role="admin"), make.user(role="admin")
    own, _ = submitted_lesson(make, cm, lecturer=first)
    api.token(first)
    reply = api.post(f"/lessons/{own.id}/review", json={"action": "publish", "revision": own.revision})
    assert reply.status_code == 403 and reply.get_json()["error"]["code"] == "own_review"
    edited, lecturer = submitted_lesson(make, cm)
    services.update_lesson(edited, title="管理员改过", minutes=20, body=edited.body_source, actor=first)
    services.submit_lesson(edited, lecturer)
    db.session.commit()
    reply = api.post(f"/lessons/{edited.id}/review", json={"action": "publish", "revision": edited.revision})
    assert reply.status_code == 403 and reply.get_json()["error"]["code"] == "own_review"
    api.token(second)
    for lesson in (own, edited):
        reply = api.post(f"/lessons/{lesson.id}/review", json={"action": "publish", "revision": lesson.revision})
        assert reply.status_code == 200, reply.get_json()


def test_the_review_page_of_ones_own_lesson_offers_no_publish_button(client, auth, make, cm):
    admin = make.user(role="admin")
    lesson, _ = submitted_lesson(make, cm, lecturer=admin)
    auth.login(admin.username)
    page = client.get(f"/admin/review/{lesson.id}").get_data(as_text=True)
    assert "须由另一位管理员审核发布" in page and 'value="publish"' not in page
    reply = client.post(f"/admin/review/{lesson.id}", data={"action": "publish", "revision": lesson.revision})
    assert reply.status_code == 403 and "不能审核自己编写的内容" in reply.get_data(as_text=True)


def test_publish_needs_a_submitted_revision(app, make, cm):
    lecturer, admin = make.user(role="lecturer"), make.user(role="admin")
    lesson = services.create_lesson(cm.course(), "草稿", 12, "正文", lecturer)
    with pytest.raises(DomainError) as refused:
        services.publish_lesson(lesson, admin, lesson.revision)
    assert refused.value.code == "bad_state" and lesson.state == "draft"


# -- races (PostgreSQL) -------------------------------------------------------------------------

@pytest.mark.postgres_only
def test_admins_publishing_at_once_publish_once(app, backend, make, cm):
    if backend == "sqlite":
        pytest.skip("SQLite serialises writes and would hide the race")
    from tests.courses.test_races import _in_parallel

    lesson, _lecturer = submitted_lesson(make, cm)
    admins = [make.user(role="admin").id for _ in range(6)]
    lesson_id, revision = lesson.id, lesson.revision
    from pbschool.accounts.models import User

    def publish():
        services.publish_lesson(db.session.get(Lesson, lesson_id), db.session.get(User, admins.pop()), revision)

    _in_parallel(app, 6, publish)
    db.session.expire_all()
    steps = db.session.scalars(select(LessonReview).where(LessonReview.lesson_id == lesson_id,
                                                          LessonReview.to_state == "published")).all()
    assert len(steps) == 1 and db.session.get(Lesson, lesson_id).state == "published"


@pytest.mark.postgres_only
def test_an_edit_racing_a_publish_is_never_published_unreviewed(app, backend, make, cm):
    if backend == "sqlite":
        pytest.skip("SQLite serialises writes and would hide the race")
    from pbschool.accounts.models import User
    from tests.courses.test_races import _in_parallel

    for _round in range(3):
        lesson, lecturer = submitted_lesson(make, cm)
        admin = make.user(role="admin")
        lesson_id, revision, ids = lesson.id, lesson.revision, [("admin", admin.id), ("lecturer", lecturer.id)]

        def act(ids=ids, lesson_id=lesson_id, revision=revision):
            role, user_id = ids.pop()
            current = db.session.get(Lesson, lesson_id)
            if role == "admin":
                services.publish_lesson(current, db.session.get(User, user_id), revision)
            else:
                services.update_lesson(current, title=current.title, minutes=20, body="未经审核的修改",
                                       actor=db.session.get(User, user_id))

        _in_parallel(app, 2, act)
        db.session.expire_all()
        result = db.session.get(Lesson, lesson_id)
        assert result.revision == revision + 1  # the edit always lands
        if result.state == "published":  # the publish went first: the edit waits in a draft
            assert "第一稿" in result.body_html and "未经审核" in result.draft.body_html
        else:  # the edit went first: the publish was refused as stale
            assert result.state == "draft" and "未经审核" in result.body_html
