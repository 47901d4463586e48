import io

from sqlalchemy import select

from pbschool import clock
from pbschool.courses import services
from pbschool.courses.models import Comment, Lesson, MediaFile
from pbschool.extensions import db
from tests.courses.conftest import upload

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 40
PDF = b"%PDF-1.4\n" + b"x" * 2000
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def fetch(client, url, **kwargs):
    """GET a file response and close it (send_file keeps the file open until then)."""
    response = client.get(url, **kwargs)
    response.get_data()
    response.close()
    return response


def test_member_browses_courses_with_required_marks_and_progress(client, auth, make, cm):
    member = make.user(job_post="电工")
    course = cm.course(title="岗位安全确认", programme="安全确认")
    cm.lesson(course=course)
    services.set_requirements(course, job_posts=["电工"])
    db.session.commit()
    auth.login(member.username)
    html = client.get("/courses").get_data(as_text=True)
    assert "岗位安全确认" in html and "必修" in html and "安全确认" in html and "已学 0/1" in html
    home = client.get("/").get_data(as_text=True)
    assert "<strong data-hours>0</strong> / 32 学时" in home and "待完成的必修课" in home and "岗位安全确认" in home


def test_lesson_page_shows_facts_and_why_done_is_not_allowed_yet(client, auth, make, cm, t0):
    member = make.user()
    lesson = cm.lesson(title="理论学习", minutes=30, body="## 导读\n\n| 项目 | 次数 |\n|---|---|\n| 中心组 | 46 |")
    auth.login(member.username)
    html = client.get(f"/lessons/{lesson.id}").get_data(as_text=True)
    assert "理论学习" in html and "30 分钟" in html and "完成可得 1 学时" in html
    assert "<table>" in html and "学习交流" in html and "标记为已学完" in html
    assert 'name="csrf-token"' in html and "courses.js" in html
    assert "还需学习约 15 分钟" in html
    refused = client.post(f"/lessons/{lesson.id}/done", follow_redirects=True).get_data(as_text=True)
    assert "学习时间不足" in refused
    assert services._find_progress(member, lesson).completed_at is None


def test_marking_done_moves_the_hours_bar(app, client, auth, make, cm, t0):
    app.config["COMPLETION_MIN_FRACTION"] = 0
    member = make.user()
    lesson = cm.lesson(minutes=30)
    auth.login(member.username)
    client.get(f"/lessons/{lesson.id}")
    page = client.post(f"/lessons/{lesson.id}/done", follow_redirects=True).get_data(as_text=True)
    assert "获得 1 学时" in page and "本课时已计入 1 学时" in page
    assert "<strong data-hours>1</strong> / 32 学时" in client.get("/").get_data(as_text=True)


def test_unpublished_lessons_are_404_for_members_but_previewable_by_their_author(client, auth, make, cm):
    lecturer = make.user(role="lecturer")
    lesson = cm.lesson(state="submitted", author=lecturer)
    auth.login(make.user().username)
    assert client.get(f"/lessons/{lesson.id}").status_code == 404
    client.post("/logout")
    auth.login(lecturer.username)
    page = client.get(f"/lessons/{lesson.id}")
    assert page.status_code == 200 and "尚未发布" in page.get_data(as_text=True)


def test_comment_is_sanitised_and_waits_for_approval(client, auth, make, cm):
    member = make.user(name="刘志强")
    lesson = cm.lesson()
    auth.login(member.username)
    reply = client.post(f"/lessons/{lesson.id}/comments",
                        data={"body": "体会 <script>alert(1)</script>[x](javascript:alert(2))"})
    assert reply.status_code == 302
    html = client.get(f"/lessons/{lesson.id}").get_data(as_text=True)
    assert "待审核" in html and "<script>alert" not in html and "javascript:" not in html
    empty = client.post(f"/lessons/{lesson.id}/comments", data={"body": ""})
    assert empty.status_code == 400 and "请填写评论内容" in empty.get_data(as_text=True)


def test_no_comment_on_a_hidden_lesson(client, auth, make, cm):
    lesson = cm.lesson(state="draft")
    auth.login(make.user().username)
    assert client.post(f"/lessons/{lesson.id}/comments", data={"body": "好"}).status_code == 404
    assert db.session.scalars(select(Comment)).all() == []


def test_admin_approves_and_hides_comments(client, auth, make, cm):
    author, reader, admin = make.user(), make.user(), make.user(role="admin")
    lesson = cm.lesson()
    comment = services.add_comment(author, lesson, "井下心得一则")
    db.session.commit()
    auth.login(admin.username)
    assert "井下心得一则" in client.get("/admin/comments").get_data(as_text=True)
    client.post(f"/admin/comments/{comment.id}", data={"action": "approve"})
    client.post("/logout")
    auth.login(reader.username)
    assert "井下心得一则" in client.get(f"/lessons/{lesson.id}").get_data(as_text=True)
    assert client.post(f"/admin/comments/{comment.id}", data={"action": "hide"}).status_code == 403
    client.post("/logout")
    auth.login(admin.username)
    client.post(f"/admin/comments/{comment.id}", data={"action": "hide", "reason": "跑题"})
    client.post("/logout")
    auth.login(reader.username)
    assert "井下心得一则" not in client.get(f"/lessons/{lesson.id}").get_data(as_text=True)


def test_lecturer_writes_uploads_and_submits_then_admin_publishes(client, auth, make, cm):
    lecturer, admin = make.user(role="lecturer"), make.user(role="admin")
    course = cm.course(title="政工微课堂")
    auth.login(lecturer.username)
    reply = client.post("/teach/lessons/new", data={"course": course.id, "title": "班前会上讲党课",
                                                    "minutes": 12, "body": "# 要点\n\n- 一\n- 二"})
    assert reply.status_code == 302
    lesson = db.session.scalar(select(Lesson).where(Lesson.title == "班前会上讲党课"))
    assert lesson.state == "draft" and lesson.author_id == lecturer.id
    preview = client.post("/teach/preview", data={"body": "**粗体** <script>x</script>"})
    assert preview.get_data(as_text=True).startswith("<p><strong>粗体</strong>")
    assert "<script" not in preview.get_data(as_text=True)
    up = upload(client, lesson, MP4, "讲座.mp4")
    assert up.status_code == 303
    video = db.session.scalar(select(MediaFile))
    assert video.kind == "video" and video.original_name == "讲座.mp4" and video.stored_name.endswith(".mp4")
    assert "讲座" not in video.stored_name
    client.post(f"/teach/lessons/{lesson.id}/submit")
    db.session.refresh(lesson)
    assert lesson.state == "submitted"
    client.post("/logout")
    auth.login(admin.username)
    assert "班前会上讲党课" in client.get("/admin/review").get_data(as_text=True)
    refused = client.post(f"/admin/review/{lesson.id}", data={"action": "return", "reason": ""})
    assert "请写明退回理由" in refused.get_data(as_text=True)
    client.post(f"/admin/review/{lesson.id}", data={"action": "return", "reason": "请补充案例"})
    client.post("/logout")
    auth.login(lecturer.username)
    page = client.get(f"/teach/lessons/{lesson.id}/edit").get_data(as_text=True)
    assert "审核退回" in page and "请补充案例" in page
    history = page.split("审核记录", 1)[1]  # the history names who returned it, and why
    assert admin.name in history and "（请补充案例）" in history
    client.post(f"/teach/lessons/{lesson.id}/submit")
    client.post("/logout")
    auth.login(admin.username)
    review_page = client.get(f"/admin/review/{lesson.id}").get_data(as_text=True)
    assert "（请补充案例）" in review_page.split("审核记录", 1)[1]
    client.post(f"/admin/review/{lesson.id}", data={"action": "publish", "revision": lesson.revision})
    db.session.refresh(lesson)
    assert lesson.state == "published"


def test_members_cannot_reach_lecturer_or_admin_pages(client, auth, make, cm):
    lesson = cm.lesson()
    auth.login(make.user().username)
    for url in ("/teach", "/teach/lessons/new", f"/teach/lessons/{lesson.id}/edit", "/admin/review",
                "/admin/comments", f"/admin/courses/{lesson.course_id}/required", "/branch/learning"):
        assert client.get(url).status_code == 403, url
    assert client.post("/teach/preview", data={"body": "x"}).status_code == 403
    assert client.post(f"/admin/review/{lesson.id}", data={"action": "publish"}).status_code == 403


def test_a_lecturer_cannot_edit_or_upload_to_another_lecturers_lesson(client, auth, make, cm):
    lesson = cm.lesson(author=make.user(role="lecturer"), state="draft")
    auth.login(make.user(role="lecturer").username)
    assert client.get(f"/teach/lessons/{lesson.id}/edit").status_code == 403
    up = upload(client, lesson, PDF, "a.pdf")
    assert up.status_code == 403
    assert client.post(f"/teach/lessons/{lesson.id}/submit").status_code == 403


def test_mislabelled_and_unsupported_uploads_are_refused(client, auth, make, cm):
    lecturer = make.user(role="lecturer")
    lesson = cm.lesson(author=lecturer, state="draft")
    auth.login(lecturer.username)
    for data, name, message in ((b"<html><script>alert(1)</script>" + b" " * 64, "slides.pdf", "文件内容与扩展名"),
                                (PNG, "video.mp4", "文件内容与扩展名"),
                                (b"MZ" + b"\x00" * 100, "tool.exe", "不支持的文件类型"),
                                (b"<svg onload=alert(1)>" + b" " * 64, "x.svg", "不支持的文件类型")):
        reply = upload(client, lesson, data, name, follow_redirects=True)
        assert message in reply.get_data(as_text=True), name
    assert db.session.scalars(select(MediaFile)).all() == []


def test_oversized_upload_is_refused(app, client, auth, make, cm, tmp_path):
    app.config["MAX_UPLOAD_MB"] = 1
    lecturer = make.user(role="lecturer")
    lesson = cm.lesson(author=lecturer, state="draft")
    auth.login(lecturer.username)
    big = MP4 + b"\x00" * (1024 * 1024)
    reply = upload(client, lesson, big, "big.mp4", follow_redirects=True)
    assert "超过 1 MB" in reply.get_data(as_text=True)
    assert db.session.scalars(select(MediaFile)).all() == []
    import os
    assert os.listdir(app.config["MEDIA_DIR"]) == []


def test_video_is_served_with_range_after_a_permission_check(client, auth, make, cm):
    lecturer = make.user(role="lecturer")
    lesson = cm.lesson(author=lecturer, state="draft")
    auth.login(lecturer.username)
    upload(client, lesson, MP4, "v.mp4")
    video = db.session.scalar(select(MediaFile))
    url = f"/media/{video.stored_name}"
    whole = fetch(client, url)
    assert whole.status_code == 200 and whole.data == MP4 and whole.headers["Accept-Ranges"] == "bytes"
    part = fetch(client, url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == MP4[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(MP4)}"
    assert fetch(client, url, headers={"Range": f"bytes={len(MP4) + 10}-"}).status_code == 416
    client.post("/logout")
    # A member cannot fetch media of an unpublished lesson, even knowing the name.
    member = make.user()
    auth.login(member.username)
    assert fetch(client, url).status_code == 404
    lesson.state = "published"
    db.session.commit()
    assert fetch(client, url).status_code == 200
    client.post("/logout")
    assert fetch(client, url).status_code == 302  # to the login page


def test_attachments_download_with_their_name(client, auth, make, cm):
    lecturer = make.user(role="lecturer")
    lesson = cm.lesson(author=lecturer, state="draft")
    auth.login(lecturer.username)
    upload(client, lesson, PDF, "课件.pdf")
    pdf = db.session.scalar(select(MediaFile))
    reply = fetch(client, f"/media/{pdf.stored_name}")
    assert reply.headers["Content-Disposition"].startswith("attachment")
    assert "filename*=UTF-8''%E8%AF%BE%E4%BB%B6.pdf" in reply.headers["Content-Disposition"]
    assert "课件.pdf" in client.get(f"/lessons/{lesson.id}").get_data(as_text=True)


def test_admin_assigns_required_courses_and_sees_completion_by_branch(app, client, auth, make, cm):
    app.config["COMPLETION_MIN_FRACTION"] = 0
    admin = make.user(role="admin")
    zc, jd = make.branch("ZC9", "综采九队党支部"), make.branch("JD9", "机电九党支部")
    done, notyet = make.user(branch=zc), make.user(branch=zc)
    make.user(branch=jd)
    lesson = cm.lesson()
    services.complete_lesson(done, lesson)
    db.session.commit()
    auth.login(admin.username)
    client.post(f"/admin/courses/{lesson.course_id}/required", data={"branches": [str(zc.id)],
                                                                     "job_posts": "电工\n绞车司机"})
    assert sorted(r.target_key for r in lesson.course.requirements) == [f"branch:{zc.id}", "post:电工", "post:绞车司机"]
    html = client.get(f"/admin/courses/{lesson.course_id}/completion").get_data(as_text=True)
    assert "综采九队党支部" in html and "50%" in html and "机电九党支部" in html
    assert notyet.id


def test_secretary_sees_only_their_branch_and_exports_it(app, client, auth, make, cm):
    app.config["COMPLETION_MIN_FRACTION"] = 0
    mine, other = make.branch("ZC8", "综采八队党支部"), make.branch("JD8", "机电八党支部")
    secretary = make.user(role="secretary", branch=mine)
    make.user(branch=mine, name="张落后")
    make.user(branch=other, name="外支部成员")
    auth.login(secretary.username)
    html = client.get("/branch/learning").get_data(as_text=True)
    assert "张落后" in html and "落后" in html and "外支部成员" not in html
    assert client.get("/branch/learning?branch=JD8").status_code == 403
    export = client.get("/branch/learning?format=xlsx")
    assert export.status_code == 200 and export.data[:2] == b"PK"
    assert "attachment" in export.headers["Content-Disposition"]
    from openpyxl import load_workbook
    rows = list(load_workbook(io.BytesIO(export.data)).active.iter_rows(values_only=True))
    assert rows[0][1] == "姓名" and {r[1] for r in rows[1:]} == {secretary.name, "张落后"}


def test_pages_render_for_every_role(client, auth, make, cm, t0):
    lesson = cm.lesson()
    for role in ("member", "lecturer", "secretary", "admin"):
        user = make.user(role=role)
        auth.login(user.username)
        for url in ("/", "/courses", f"/courses/{lesson.course_id}", f"/lessons/{lesson.id}"):
            assert client.get(url).status_code == 200, (role, url)
        client.post("/logout")
    clock.pin(None)


def test_every_staff_page_renders_in_both_locales(client, auth, make, cm):
    admin, lecturer = make.user(role="admin"), make.user(role="lecturer")
    lesson = cm.lesson(author=lecturer, state="draft")
    services.submit_lesson(lesson, lecturer)
    services.add_comment(make.user(), cm.lesson(course=lesson.course, title="第二讲"), "体会")
    db.session.commit()
    for user in (lecturer, admin):
        auth.login(user.username)
        for lang in ("zh_CN", "en"):
            client.get(f"/lang/{lang}")
            urls = ["/teach", "/teach/lessons/new", f"/teach/lessons/{lesson.id}/edit", "/teach/courses/new",
                    f"/courses/{lesson.course_id}"]
            if user is admin:
                urls += [f"/teach/courses/{lesson.course_id}/edit",
                         "/admin/review", "/admin/courses", f"/admin/review/{lesson.id}", "/admin/comments",
                         "/admin/comments?show=all",
                         f"/admin/courses/{lesson.course_id}/required",
                         f"/admin/courses/{lesson.course_id}/completion", "/branch/learning",
                         "/branch/learning?year=2025"]
            for url in urls:
                assert client.get(url).status_code == 200, (user.role, lang, url)
        # Someone else's course is not the lecturer's to edit.
        assert client.get(f"/teach/courses/{lesson.course_id}/edit").status_code == (200 if user is admin else 403)
        client.post("/logout")


def test_a_lecturers_new_file_on_a_published_lesson_waits_for_review(client, auth, make, cm):
    lecturer = make.user(role="lecturer")
    lesson = cm.lesson(author=lecturer, state="published")
    auth.login(lecturer.username)
    upload(client, lesson, PDF, "新课件.pdf")
    db.session.refresh(lesson)
    assert lesson.state == "published" and lesson.draft.state == "draft"
    assert lesson.media[0].original_name == "新课件.pdf" and lesson.live_media == []


def test_an_upload_past_the_request_limit_is_a_413_page(app, client, auth, make, cm):
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    lecturer = make.user(role="lecturer")
    lesson = cm.lesson(author=lecturer, state="draft")
    auth.login(lecturer.username)
    reply = client.post(f"/teach/lessons/{lesson.id}/upload",
                        data={"file": (io.BytesIO(MP4 + b"\x00" * 100_000), "big.mp4")},
                        content_type="multipart/form-data")
    assert reply.status_code == 413 and "上传内容超过大小限制" in reply.get_data(as_text=True)


def test_admin_withdraws_a_published_lesson_with_a_reason(client, auth, make, cm):
    admin = make.user(role="admin")
    lesson = cm.lesson()
    auth.login(admin.username)
    refused = client.post(f"/admin/review/{lesson.id}", data={"action": "withdraw", "reason": ""})
    assert "请写明撤回理由" in refused.get_data(as_text=True)
    client.post(f"/admin/review/{lesson.id}", data={"action": "withdraw", "reason": "数据需要更新"})
    db.session.refresh(lesson)
    assert lesson.state == "returned" and lesson.review_reason == "数据需要更新"
    client.post("/logout")
    auth.login(make.user().username)
    assert client.get(f"/lessons/{lesson.id}").status_code == 404


def test_a_lecturer_deletes_an_unstudied_draft_but_not_a_studied_or_published_one(client, auth, make, cm):
    lecturer = make.user(role="lecturer")
    draft = cm.lesson(author=lecturer, state="draft")
    published = cm.lesson(author=lecturer, state="published")
    auth.login(lecturer.username)
    upload(client, draft, PDF, "a.pdf")
    draft_id = draft.id
    assert client.post(f"/teach/lessons/{draft_id}/delete").status_code == 302
    assert db.session.scalar(select(Lesson.id).where(Lesson.id == draft_id)) is None
    assert db.session.scalars(select(MediaFile)).all() == []
    reply = client.post(f"/teach/lessons/{published.id}/delete", follow_redirects=True)
    assert "不能删除" in reply.get_data(as_text=True) and db.session.get(Lesson, published.id)
    studied = cm.lesson(author=lecturer, state="published")
    services.open_lesson(make.user(), studied)
    studied.state = "draft"
    db.session.commit()
    reply = client.post(f"/teach/lessons/{studied.id}/delete", follow_redirects=True)
    assert "已有党员学习过此课时" in reply.get_data(as_text=True)
    other = cm.lesson(author=make.user(role="lecturer"), state="draft")
    assert client.post(f"/teach/lessons/{other.id}/delete").status_code == 403


def test_a_secretary_sees_completion_for_their_own_branch_only(client, auth, make, cm):
    mine, other = make.branch("ZC7", "综采七队党支部"), make.branch("JD7", "机电七党支部")
    secretary = make.user(role="secretary", branch=mine)
    make.user(branch=other)
    lesson = cm.lesson()
    auth.login(secretary.username)
    html = client.get(f"/admin/courses/{lesson.course_id}/completion").get_data(as_text=True)
    assert "综采七队党支部" in html and "机电七党支部" not in html
    assert client.get(f"/admin/courses/{lesson.course_id}/required").status_code == 403


def test_bad_lesson_form_input_is_shown_next_to_the_field(client, auth, make, cm):
    lecturer = make.user(role="lecturer")
    course = cm.course()
    auth.login(lecturer.username)
    good = {"course": course.id, "title": "标题", "minutes": 10, "body": "正文"}
    for change, message in (({"title": ""}, "请填写课时标题"), ({"minutes": 0}, "时长应为 1 到 1440 分钟"),
                            ({"minutes": 99999}, "时长应为 1 到 1440 分钟"), ({"minutes": "半小时"}, None),
                            ({"course": 99999}, None), ({"title": "长" * 300}, None),
                            ({"body": "x" * 100_001}, None), ({"body": "行\n" * 6000}, "正文不能超过 6000 行")):
        reply = client.post("/teach/lessons/new", data={**good, **change})
        assert reply.status_code == 200, change
        html = reply.get_data(as_text=True)
        assert 'class="error"' in html, change
        if message:
            assert message in html
        if "title" in change and change["title"]:
            assert "长" * 50 in html  # what was typed is kept
    assert db.session.scalars(select(Lesson)).all() == []


def test_my_learning_lists_this_years_completed_lessons(app, client, auth, make, cm, t0):
    app.config["COMPLETION_MIN_FRACTION"] = 0
    member = make.user()
    services.complete_lesson(member, cm.lesson(title="理论学习第一讲", minutes=30))
    db.session.commit()
    auth.login(member.username)
    html = client.get("/me/learning").get_data(as_text=True)
    assert "理论学习第一讲" in html and "2026-03-02 09:00" in html  # Beijing time
    assert "理论学习第一讲" not in client.get("/me/learning?year=2025").get_data(as_text=True)
    assert client.get("/me/learning?year=1").status_code == 400
