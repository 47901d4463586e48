"""Courses, lessons and learning progress over /api/v1 (CONTRACT.md)."""

from flask import g, url_for
from flask_babel import gettext as _

from pbschool.api import api_route, field, json_body, ok
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
               "media": [media_json(m) for m in lesson.media]})


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
