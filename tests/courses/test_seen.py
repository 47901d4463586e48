"""Issue 15: what a lecturer sees on the lesson editor and the review history."""

import re

from pbschool.courses import services
from pbschool.extensions import db


def test_editing_a_lesson_preselects_its_course_so_saving_keeps_it_there(client, auth, make, cm):
    """Reproduction: the edit form preselected no course, so saving a one-character change of the
    title moved the lesson to the first course in the list."""
    lecturer = make.user(role="lecturer")
    cm.course(title="A 第一门课")
    home = cm.course(title="Z 本课所在的课程")
    lesson = services.create_lesson(home, "班前会上讲党课", 20, "## 导读\n\n正文。", lecturer)
    db.session.commit()
    auth.login(lecturer.username)
    page = client.get(f"/teach/lessons/{lesson.id}/edit").get_data(as_text=True)
    selected = re.findall(r'<option[^>]*selected[^>]*value="(\d+)"|<option[^>]*value="(\d+)"[^>]*selected', page)
    assert [a or b for a, b in selected] == [str(home.id)]
    form = {"course": str(home.id), "title": "班前会上讲党课！", "minutes": "20", "body": "## 导读\n\n正文。"}
    client.post(f"/teach/lessons/{lesson.id}/edit", data=form)
    db.session.expire_all()
    assert services.working_copy(lesson).course_id == home.id


def test_the_review_history_shows_creation_not_draft_to_draft(client, auth, make, cm):
    """Reproduction: the history logged "草稿 → 草稿" for a new lesson."""
    lecturer = make.user(role="lecturer")
    lesson = services.create_lesson(cm.course(), "班前会上讲党课", 20, "## 导读\n\n正文。", lecturer)
    services.submit_lesson(lesson, lecturer)
    db.session.commit()
    auth.login(lecturer.username)
    page = client.get(f"/teach/lessons/{lesson.id}/edit").get_data(as_text=True)
    history = page[page.index("审核记录"):]
    assert "草稿 → 草稿" not in history
    assert "创建" in history and "草稿 → 待审核" in history


def test_a_refused_uploads_reason_is_shown_next_to_the_upload_field(client, auth, make, cm):
    """Reproduction: the reason flashed at the top of the page while the page jumped down to the
    upload section, out of sight."""
    from tests.courses.conftest import upload

    lecturer = make.user(role="lecturer")
    lesson = services.create_lesson(cm.course(), "班前会上讲党课", 20, "## 导读\n\n正文。", lecturer)
    db.session.commit()
    auth.login(lecturer.username)
    reply = upload(client, lesson, b"plain text, not a video", name="v.mp4")
    assert reply.status_code == 303 and reply.headers["Location"].endswith("#media")
    page = client.get(reply.headers["Location"]).get_data(as_text=True)
    media = page[page.index('id="media"'):]
    media = media[:media.index("</section>")]
    reason = re.search(r'<p class="error" role="alert">([^<]+)</p>', media)
    assert reason and media.index('type="file"') < media.index(reason.group(0))
    assert 'class="flash flash-error"' not in page[:page.index('id="media"')]  # not at the top
    again = client.get(reply.headers["Location"]).get_data(as_text=True)
    assert reason.group(1) not in again  # said once
