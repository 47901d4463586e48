"""Each event tells the right people once: re-running it never duplicates."""

import datetime as dt

from sqlalchemy import func, select

from pbschool import clock
from pbschool.courses import services as courses
from pbschool.exams import marking
from pbschool.extensions import db
from pbschool.notices import derived, services
from pbschool.notices.models import Notification
from pbschool.points import services as points
from tests.courses.conftest import CourseMaker
from tests.exams.conftest import make_exam
from tests.exams.test_marking import finished_short_attempt, short_exam

T0 = dt.datetime(2026, 6, 1, 1, 0, 0)


def notes(user, kind=None):
    stmt = select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
    if kind:
        stmt = stmt.where(Notification.kind == kind)
    return db.session.scalars(stmt).all()


def count(kind):
    return db.session.scalar(select(func.count(Notification.id)).where(Notification.kind == kind))


def test_the_same_event_twice_is_one_notification(app, make):
    member = make.user()
    assert services.notify([member], "month_published", "month:2026-05", subject="2026-05") == 1
    assert services.notify([member, member], "month_published", "month:2026-05", subject="2026-05") == 0
    db.session.commit()
    assert len(notes(member)) == 1


def test_a_lesson_returned_then_published_tells_its_author_each_once(app, make):
    cm = CourseMaker()
    admin = make.user(role="admin")
    lecturer = make.user(role="lecturer")
    lesson = courses.create_lesson(cm.course(), "班前会上讲党课", 20, "第一稿", lecturer)
    courses.submit_lesson(lesson, lecturer)
    courses.return_lesson(lesson, admin, "请补充案例")
    db.session.commit()
    assert [n.kind for n in notes(lecturer)] == ["lesson_returned"]
    courses.submit_lesson(lesson, lecturer)
    courses.publish_lesson(lesson, admin, lesson.revision)
    db.session.commit()
    assert [n.kind for n in notes(lecturer)] == ["lesson_returned", "lesson_published"]
    assert notes(admin) == []  # the reviewer is not told what they did
    services.lesson_reviewed(lesson, "published", editor_id=lecturer.id)  # the hook again
    db.session.commit()
    assert len(notes(lecturer)) == 2


def test_an_approved_comment_tells_its_author_once(app, make):
    cm = CourseMaker()
    admin = make.user(role="admin")
    member = make.user()
    app.config["COMMENTS_PREMODERATED"] = True
    comment = courses.add_comment(member, cm.lesson(), "学习了，很受启发")
    db.session.commit()
    assert notes(member) == []
    courses.approve_comment(comment, admin)
    services.comment_approved(comment)
    db.session.commit()
    assert [n.kind for n in notes(member)] == ["comment_approved"]


def test_a_marked_short_answer_tells_the_member_when_nothing_is_left(app, make):
    clock.pin(T0)
    admin = make.user(role="admin")
    member = make.user()
    _bank, exam = short_exam(make)
    attempt, short = finished_short_attempt(exam, member)
    assert notes(member, "short_marked") == []
    marking.mark_answer(attempt, short.question_id, "2", admin)
    db.session.commit()
    [note] = notes(member, "short_marked")
    assert note.object_id == attempt.id
    services.short_answers_marked(attempt)
    db.session.commit()
    assert len(notes(member, "short_marked")) == 1


def test_publishing_a_month_tells_the_members_on_its_board(app, make):
    clock.pin(dt.datetime(2026, 4, 2, 1, 0))
    members = [make.user() for _ in range(3)]
    points.publish_month("2026-03")
    db.session.commit()
    assert count("month_published") == 3
    assert all(len(notes(m, "month_published")) == 1 for m in members)
    services.month_published("2026-03", [(m.id, m.branch_id) for m in members])
    db.session.commit()
    assert count("month_published") == 3


def test_an_open_exam_and_a_required_course_are_told_when_the_member_reads(app, make):
    clock.pin(T0)
    from tests.exams.conftest import make_bank

    here, there = make.branch(), make.branch()
    member = make.user(branch=here)
    outsider = make.user(branch=there)
    bank = make_bank()
    exam = make_exam(bank, closes_at=T0 + dt.timedelta(days=2), audience="branches", branches=[here])
    later = make_exam(bank, opens_at=T0 + dt.timedelta(days=1))
    course = CourseMaker().course(title="煤矿安全规程")
    courses.set_requirements(course, branch_ids=[here.id])
    db.session.commit()
    assert derived.sync(member) == 2
    assert derived.sync(member) == 0  # reading again makes nothing new
    db.session.commit()
    assert {(n.kind, n.object_id) for n in notes(member)} == {("exam_open", exam.id), ("course_required", course.id)}
    assert derived.sync(outsider) == 0
    clock.pin(T0 + dt.timedelta(days=1, minutes=1))
    assert derived.sync(member) == 1
    assert derived.sync(outsider) == 1  # the later exam is for everyone
    assert derived.sync(make.user(role="admin")) == 0  # ... but an admin would sit it only as a preview
    db.session.commit()
    assert notes(outsider)[0].object_id == later.id


def test_an_exam_that_opened_is_in_the_bell_once_the_member_lands_on_the_home_page(app, make, client, auth):
    """The derived notices were made only when the member opened the notifications, so the bell never
    said that an exam had opened: the home page makes them too."""
    clock.pin(T0)
    from tests.exams.conftest import make_bank
    from tests.notices.test_views import badge

    member = make.user("liuzq", branch=make.branch())
    exam = make_exam(make_bank(), closes_at=T0 + dt.timedelta(days=2))
    db.session.commit()
    auth.login("liuzq")
    assert badge(client.get("/").get_data(as_text=True)) == "1"
    assert [(n.kind, n.object_id) for n in notes(member)] == [("exam_open", exam.id)]
    assert badge(client.get("/").get_data(as_text=True)) == "1"  # landing again makes nothing new
