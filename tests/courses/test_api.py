from pbschool import clock
from pbschool.courses import services
from pbschool.extensions import db


def test_courses_list_marks_required_ones(api, make, cm):
    member = make.user(job_post="电工")
    safety = cm.course(title="安全确认", programme="安全确认")
    cm.lesson(course=safety, minutes=30)
    cm.lesson(course=safety, minutes=10)
    other = cm.course(title="党课")
    cm.course(title="草稿课程", published=False)
    services.set_requirements(safety, job_posts=["电工"])
    db.session.commit()
    body = api.token(member).get("/courses").get_json()
    assert [c["title"] for c in body] == ["安全确认", "党课"]
    assert body[0] == {"id": safety.id, "title": "安全确认", "summary": "简介", "hours": 1.25, "required": True,
                       "programme": "安全确认"}
    assert body[1]["id"] == other.id and body[1]["required"] is False


def test_course_detail_lists_published_lessons_with_completion(app, api, make, cm):
    app.config["COMPLETION_MIN_FRACTION"] = 0
    member = make.user()
    course = cm.course()
    first = cm.lesson(course=course, title="一")
    cm.lesson(course=course, title="待审", state="submitted")
    api.token(member)
    assert api.post(f"/lessons/{first.id}/progress", json={"completed": True}).status_code == 200
    body = api.get(f"/courses/{course.id}").get_json()
    assert body["lessons"] == [{"id": first.id, "title": "一", "minutes": 20, "completed": True}]
    assert api.get(f"/courses/{cm.course(published=False).id}").status_code == 404
    assert api.get("/courses/999999").get_json()["error"]["code"] == "not_found"


def test_lesson_detail_is_sanitised_and_starts_the_clock(api, make, cm, t0):
    member = make.user()
    lesson = cm.lesson(body="正文 [链接](javascript:alert(1)) <iframe src=x></iframe>")
    body = api.token(member).get(f"/lessons/{lesson.id}").get_json()
    assert set(body) >= {"id", "title", "minutes", "body_html", "media"}
    assert "javascript:" not in body["body_html"] and "<iframe" not in body["body_html"]
    progress = services._find_progress(member, lesson)
    assert progress.opened_at == t0


def test_progress_cannot_claim_an_hour_in_a_second(api, make, cm, t0):
    member = make.user()
    lesson = cm.lesson(minutes=60)
    api.token(member).get(f"/lessons/{lesson.id}")
    clock.advance(seconds=1)
    reply = api.post(f"/lessons/{lesson.id}/progress", json={"seconds": 3600})
    assert reply.status_code == 200
    assert reply.get_json()["credited_seconds"] == 1 and reply.get_json()["completed"] is False


def test_completing_too_soon_is_409_with_what_remains(api, make, cm, t0):
    member = make.user()
    lesson = cm.lesson(minutes=20)
    api.token(member).get(f"/lessons/{lesson.id}")
    clock.advance(seconds=120)
    reply = api.post(f"/lessons/{lesson.id}/progress", json={"seconds": 120, "completed": True})
    assert reply.status_code == 409
    error = reply.get_json()["error"]
    assert error["code"] == "too_soon" and "还需学习约 8 分钟" in error["message"]
    for _ in range(4):
        clock.advance(seconds=150)
        assert api.post(f"/lessons/{lesson.id}/progress", json={"seconds": 150}).status_code == 200
    reply = api.post(f"/lessons/{lesson.id}/progress", json={"completed": True})
    assert reply.status_code == 200 and reply.get_json()["completed"] is True
    assert reply.get_json()["credited_seconds"] == 600
    learning = api.get("/me/learning").get_json()
    assert learning == {"year": 2026, "hours": 0.5, "target_hours": 32.0, "lessons_completed": 1}


def test_progress_bad_input_is_a_clear_400(api, make, cm):
    member = make.user()
    lesson = cm.lesson()
    api.token(member)
    for body in ({}, {"seconds": -5}, {"seconds": "30"}, {"seconds": True}, {"completed": "yes"},
                 {"completed": False}, {"seconds": 10 ** 9}):
        reply = api.post(f"/lessons/{lesson.id}/progress", json=body)
        assert reply.status_code == 400, body
        assert reply.get_json()["error"]["message"]
    assert api.post(f"/lessons/{lesson.id}/progress", data="x", content_type="text/plain").status_code == 400


def test_no_progress_on_an_unpublished_lesson(api, make, cm):
    member = make.user()
    lesson = cm.lesson(state="submitted")
    api.token(member)
    assert api.get(f"/lessons/{lesson.id}").status_code == 404
    assert api.post(f"/lessons/{lesson.id}/progress", json={"seconds": 5}).status_code == 404


def test_a_members_progress_is_their_own(api, make, cm, t0):
    alice, bob = make.user(), make.user()
    lesson = cm.lesson()
    api.token(alice).get(f"/lessons/{lesson.id}")
    clock.advance(seconds=60)
    api.post(f"/lessons/{lesson.id}/progress", json={"seconds": 60})
    # Bob cannot add to Alice's clock: his report starts his own.
    api.token(bob)
    assert api.post(f"/lessons/{lesson.id}/progress", json={"seconds": 60}).get_json()["credited_seconds"] == 0
    assert services._find_progress(alice, lesson).credited_seconds == 60


def test_cookie_session_needs_the_csrf_header_for_heartbeats(make_csrf_client):
    client, lesson, token = make_csrf_client
    assert client.post(f"/api/v1/lessons/{lesson.id}/progress", json={"seconds": 1}).status_code == 400
    reply = client.post(f"/api/v1/lessons/{lesson.id}/progress", json={"seconds": 1},
                        headers={"X-CSRFToken": token})
    assert reply.status_code == 200


def test_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/courses", "/courses/{course_id}", "/lessons/{lesson_id}", "/lessons/{lesson_id}/progress",
                 "/me/learning"):
        assert path in paths
    assert "409" in paths["/lessons/{lesson_id}/progress"]["post"]["responses"]


def test_api_needs_a_login(client, cm):
    assert client.get("/api/v1/courses").status_code == 401


def test_lesson_media_is_listed_and_fetchable_with_the_bearer_token(app, api, make, cm):
    import io

    from tests.courses.test_views import MP4

    lecturer = make.user(role="lecturer")
    lesson = cm.lesson(author=lecturer)
    from werkzeug.datastructures import FileStorage

    from pbschool.courses import media

    with app.test_request_context():
        media.save_upload(FileStorage(io.BytesIO(MP4), "讲座.mp4"), lecturer, lesson)
    db.session.commit()
    body = api.token(make.user()).get(f"/lessons/{lesson.id}").get_json()
    [item] = body["media"]
    assert item["kind"] == "video" and item["name"] == "讲座.mp4" and item["size"] == len(MP4)
    reply = api.client.get(item["url"], headers={**api.headers, "Range": "bytes=0-9"})
    assert reply.status_code == 206 and reply.data == MP4[:10]
    reply.close()
    anonymous = api.client.get(item["url"], headers={"Authorization": "Bearer nonsense"})
    assert anonymous.status_code == 302
    anonymous.close()
