"""Courses, lessons and learning progress over /api/v1 (CONTRACT.md)."""

from flask import g, url_for
from flask_babel import gettext as _

from pbschool.api import api_route, field, json_body, ok, require_roles
from pbschool.courses import services
from pbschool.courses.models import Course, Lesson
from pbschool.errors import DomainError, NotFound
from pbschool.extensions import db

COURSE_ITEM = {
    "type": "object", "required": ["id", "title", "summary", "hours", "required"],
    "properties": {"id": {"type": "integer"}, "title": {"type": "string"}, "summary": {"type": "string"},
                   "hours": {"type": "number"}, "required": {"type": "boolean"},
                   "programme": {"type": "string", "nullable": True}},
}
COURSE_DETAIL = {
    "type": "object", "required": ["id", "title", "summary", "lessons"],
    "properties": {
        "id": {"type": "integer"}, "title": {"type": "string"}, "summary": {"type": "string"},
        "lessons": {"type": "array", "items": {
            "type": "object", "required": ["id", "title", "minutes", "completed"],
            "properties": {"id": {"type": "integer"}, "title": {"type": "string"}, "minutes": {"type": "integer"},
                           "completed": {"type": "boolean"}}}},
    },
}
MEDIA_ITEM = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "kind": {"type": "string", "enum": ["video", "audio", "pdf", "image"]},
                   "name": {"type": "string"}, "mimetype": {"type": "string"}, "size": {"type": "integer"},
                   "url": {"type": "string"}},
}
LESSON_DETAIL = {
    "type": "object", "required": ["id", "title", "minutes", "body_html", "media"],
    "properties": {"id": {"type": "integer"}, "title": {"type": "string"}, "minutes": {"type": "integer"},
                   "hours": {"type": "number"}, "course_id": {"type": "integer"},
                   "body_html": {"type": "string", "description": "sanitised HTML"},
                   "media": {"type": "array", "items": MEDIA_ITEM}},
}
PROGRESS_BODY = {
    "type": "object",
    "properties": {"seconds": {"type": "integer", "minimum": 0, "description": "study time since the last report"},
                   "completed": {"type": "boolean"}},
}
PROGRESS_REPLY = {
    "type": "object", "required": ["credited_seconds", "completed"],
    "properties": {"credited_seconds": {"type": "integer"}, "completed": {"type": "boolean"},
                   "required_seconds": {"type": "integer"}},
}
LEARNING = {
    "type": "object", "required": ["year", "hours", "target_hours", "lessons_completed"],
    "properties": {"year": {"type": "integer"}, "hours": {"type": "number"}, "target_hours": {"type": "number"},
                   "lessons_completed": {"type": "integer"}},
}


def _visible_lesson(lesson_id):
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None or not services.is_visible(lesson):
        raise NotFound(_("课时不存在或尚未发布"))
    return lesson


def media_json(media):
    return {"id": media.id, "kind": media.kind, "name": media.original_name, "mimetype": media.mimetype,
            "size": media.size, "url": url_for("courses.media_file", token=media.stored_name)}


@api_route("/courses", summary="Published courses, with whether each is required for me", tag="courses",
           response={"type": "array", "items": COURSE_ITEM})
def list_courses():
    user = g.api_user
    required = services.required_course_ids(user)
    return ok([{"id": c.id, "title": c.title, "summary": c.summary, "hours": float(services.course_hours(c)),
                "required": c.id in required, "programme": c.programme.name if c.programme else None}
               for c in services.published_courses()])


@api_route("/courses/<int:course_id>", summary="A published course and its lessons", tag="courses",
           response=COURSE_DETAIL)
def get_course(course_id):
    course = db.session.get(Course, course_id)
    if course is None or not course.is_published:
        raise NotFound(_("课程不存在或尚未发布"))
    lessons = course.published_lessons()
    done = services.completed_lesson_ids(g.api_user, [lesson.id for lesson in lessons])
    return ok({"id": course.id, "title": course.title, "summary": course.summary,
               "hours": float(services.course_hours(course)),
               "lessons": [{"id": lesson.id, "title": lesson.title, "minutes": lesson.minutes,
                            "completed": lesson.id in done} for lesson in lessons]})


@api_route("/lessons/<int:lesson_id>", summary="A published lesson; opening it starts my study clock",
           tag="courses", response=LESSON_DETAIL)
def get_lesson(lesson_id):
    lesson = _visible_lesson(lesson_id)
    services.open_lesson(g.api_user, lesson)
    return ok({"id": lesson.id, "title": lesson.title, "minutes": lesson.minutes, "course_id": lesson.course_id,
               "hours": float(services.lesson_hours(lesson.minutes)), "body_html": lesson.body_html,
               "media": [media_json(m) for m in lesson.live_media]})


@api_route("/lessons/<int:lesson_id>/progress", methods=("POST",), tag="courses",
           summary="Report study time ({seconds}) or completion ({completed: true}); time credited never "
                   "exceeds the wall-clock time since the last report", body=PROGRESS_BODY,
           response=PROGRESS_REPLY, statuses=(409,))
def post_progress(lesson_id):
    data = json_body()
    lesson = _visible_lesson(lesson_id)
    seconds = field(data, "seconds", int, required=False)
    completed = field(data, "completed", bool, required=False)
    if seconds is None and completed is None:
        raise DomainError(_("请提供 seconds 或 completed"), "missing_field", 400, field="seconds")
    if completed is False:
        raise DomainError(_("completed 只能为 true：已完成的课时不能撤销"), "invalid_field", 400, field="completed")
    user = g.api_user
    progress = None
    if seconds is not None:
        progress = services.heartbeat(user, lesson, seconds)
    if completed:
        progress = services.complete_lesson(user, lesson)
    return ok({"credited_seconds": progress.credited_seconds, "completed": progress.completed_at is not None,
               "required_seconds": services.required_seconds(lesson)})


@api_route("/me/learning", summary="My learning hours this year against my target", tag="me", response=LEARNING)
def my_learning():
    summary = services.learning_summary(g.api_user)
    return ok({"year": summary["year"], "hours": float(summary["hours"]),
               "target_hours": float(summary["target_hours"]), "lessons_completed": summary["lessons_completed"]})


REVIEW_BODY = {
    "type": "object", "required": ["action", "revision"],
    "properties": {"action": {"type": "string", "enum": ["publish", "return"]},
                   "revision": {"type": "integer", "description": "the revision reviewed (GET …/review gives it)"},
                   "reason": {"type": "string", "description": "required to return"}},
}
REVIEW_ITEM = {
    "type": "object", "required": ["id", "state", "revision", "published", "pending_edit"],
    "properties": {"id": {"type": "integer"}, "title": {"type": "string"},
                   "state": {"type": "string", "enum": ["draft", "submitted", "returned", "published"],
                             "description": "of what is under review: the pending edit of a published item, "
                                            "else the item itself"},
                   "revision": {"type": "integer"}, "published": {"type": "boolean"},
                   "pending_edit": {"type": "boolean"}, "minutes": {"type": "integer"},
                   "summary": {"type": "string"}, "body_html": {"type": "string"},
                   "media": {"type": "array", "items": MEDIA_ITEM}, "review_reason": {"type": "string"}},
}


def _lesson_review_json(lesson):
    copy = services.working_copy(lesson)
    return {"id": lesson.id, "title": copy.title, "state": copy.state, "revision": lesson.revision,
            "published": lesson.state == "published", "pending_edit": lesson.draft is not None,
            "minutes": copy.minutes, "body_html": copy.body_html, "review_reason": copy.review_reason,
            "media": [media_json(m) for m in lesson.draft_media]}


def _course_review_json(course):
    copy = course.draft or course
    return {"id": course.id, "title": copy.title, "state": course.draft.state if course.draft else
            ("published" if course.is_published else "draft"), "revision": course.revision,
            "published": course.is_published, "pending_edit": course.draft is not None,
            "summary": copy.summary, "body_html": copy.body_html,
            "review_reason": course.draft.review_reason if course.draft else ""}


def _review_input():
    data = json_body()
    action = field(data, "action", str)
    if action not in ("publish", "return"):
        raise DomainError(_("action 应为 publish 或 return"), "invalid_field", 400, field="action")
    return action, field(data, "revision", int), field(data, "reason", str, required=False, default="")


@api_route("/lessons/<int:lesson_id>/review", summary="(admin) What a review of the lesson would approve: the "
           "pending edit of a published lesson, else the lesson, and its revision", tag="review",
           response=REVIEW_ITEM)
def lesson_review(lesson_id):
    require_roles("admin")
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None:
        raise NotFound(_("课时不存在"))
    return ok(_lesson_review_json(lesson))


@api_route("/lessons/<int:lesson_id>/review", methods=("POST",), tag="review",
           summary="(admin) Publish or return the revision reviewed: a newer one is 409 stale_revision; "
                   "one's own lesson is 403 own_review", body=REVIEW_BODY, response=REVIEW_ITEM,
           statuses=(405, 409))  # 405: an id past the integer range matches the GET route's path only
def review_lesson(lesson_id):
    require_roles("admin")
    action, revision, reason = _review_input()
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None:
        raise NotFound(_("课时不存在"))
    if action == "publish":
        services.publish_lesson(lesson, g.api_user, revision)
    else:
        services.return_lesson(lesson, g.api_user, reason, revision)
    return ok(_lesson_review_json(lesson))


@api_route("/courses/<int:course_id>/review", summary="(admin) A published course's pending edit and its "
           "revision", tag="review", response=REVIEW_ITEM)
def course_review(course_id):
    require_roles("admin")
    course = db.session.get(Course, course_id)
    if course is None:
        raise NotFound(_("课程不存在"))
    return ok(_course_review_json(course))


@api_route("/courses/<int:course_id>/review", methods=("POST",), tag="review",
           summary="(admin) Publish or return a published course's pending edit, of the revision reviewed",
           body=REVIEW_BODY, response=REVIEW_ITEM, statuses=(405, 409))
def review_course(course_id):
    require_roles("admin")
    action, revision, reason = _review_input()
    course = db.session.get(Course, course_id)
    if course is None:
        raise NotFound(_("课程不存在"))
    if action == "publish":
        services.publish_course(course, g.api_user, revision)
    else:
        services.return_course(course, g.api_user, reason, revision)
    return ok(_course_review_json(course))
