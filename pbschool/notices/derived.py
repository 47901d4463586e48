"""Notifications that depend on time and audience, made when the member reads their notifications:
an exam open now that admits them, a published course required of them. The unique key makes each
once, however often they read; nothing runs per member when an exam is created or opens."""

from sqlalchemy import select

from pbschool import auth, clock
from pbschool.extensions import db
from pbschool.notices.models import Notification
from pbschool.notices.services import notify


def sync(user, now=None):
    """Make the user's missing exam-opened and course-required notifications. Three or four queries."""
    from pbschool.courses.models import Course
    from pbschool.courses.services import required_course_ids
    from pbschool.exams.services import exams_for

    if user is None or not user.is_active:
        return 0
    now = now or clock.now()
    have = set(db.session.execute(select(Notification.kind, Notification.key).where(
        Notification.user_id == user.id, Notification.kind.in_(("exam_open", "course_required")))).all())
    made = 0
    for exam in exams_for(user, now):
        key = f"exam:{exam.id}"
        # staff who would sit it only as a preview are not told it opened for them
        if ("exam_open", key) not in have and not auth.sits_as_preview(user, exam):
            opened = max(exam.opens_at or exam.created_at or now, exam.created_at or now)
            made += notify([user], "exam_open", key, object_id=exam.id, subject=exam.title,
                           created_at=min(opened, now))
    missing = {i for i in required_course_ids(user) if ("course_required", f"course:{i}") not in have}
    if missing:
        for course_id, title in db.session.execute(select(Course.id, Course.title).where(Course.id.in_(missing))):
            made += notify([user], "course_required", f"course:{course_id}", object_id=course_id, subject=title,
                           created_at=now)
    return made
