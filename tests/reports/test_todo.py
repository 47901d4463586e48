"""The staff's to-do panel on the home page: counts of what waits for this person, each a link to its
queue; the viewer's own paper is never counted; a fixed number of queries however much waits."""

import re

import pytest

from pbschool import clock
from pbschool.courses.models import Comment, Course, Lesson
from pbschool.extensions import db
from tests.exams.conftest import T0, make_bank, make_exam
from tests.exams.test_marking import finished_short_attempt


def todo(html):
    """{label: (count, href)} from the home page's to-do panel."""
    panel = html.split('class="card todo"', 1)
    assert len(panel) == 2, "no to-do panel"
    body = panel[1].split("</section>", 1)[0]
    return {label: (int(count), href) for href, label, count in re.findall(
        r'<a href="([^"]+)"><span>([^<]+)</span><span class="todo-count">(\d+)</span>', body)}


@pytest.fixture
def pinned():
    clock.pin(T0)
    yield T0
    clock.pin(None)


def waiting_work(make):
    branch = make.branch()
    admin = make.user("boss", role="admin", branch=branch)
    other_admin = make.user("boss2", role="admin", branch=branch)
    members = [make.user(f"m{k}", branch=branch) for k in range(3)]
    course = Course(title="安全生产", slug="anquan", author_id=other_admin.id, is_published=True)
    db.session.add(course)
    db.session.flush()
    for k, author in enumerate((other_admin, other_admin, admin)):
        db.session.add(Lesson(course_id=course.id, title=f"第{k}课", slug=f"l{k}", minutes=10, state="submitted",
                              author_id=author.id))
    db.session.flush()
    lesson = db.session.scalars(db.select(Lesson)).first()
    for member in members[:2]:
        db.session.add(Comment(lesson_id=lesson.id, author_id=member.id, body="学习了", body_html="<p>学习了</p>",
                               is_approved=False))
    db.session.commit()
    exam = make_exam(make_bank(short=True), pass_score=50)
    for member in members:
        finished_short_attempt(exam, member)
    finished_short_attempt(exam, admin)  # the admin's own paper is not theirs to mark
    return admin, exam


def test_an_admin_sees_what_waits_with_links_to_the_queues(client, auth, make, pinned):
    """Reproduction: admins had no to-do (reviews, comments, marking waiting) on the home page."""
    waiting_work(make)
    auth.login("boss")
    items = todo(client.get("/").get_data(as_text=True))
    assert items["待审核课程"] == (2, "/admin/review")  # their own lesson is another admin's to review
    assert items["待审评论"][0] == 2 and items["待审评论"][1].startswith("/admin/comments")
    assert items["待阅简答题"] == (3, "/admin/exams")  # not the admin's own paper
    for _count, href in items.values():
        assert client.get(href).status_code == 200


def test_a_secretary_sees_their_branchs_missing_meetings_and_members_behind(client, auth, make, pinned):
    branch = make.branch()
    make.user("shuji", role="secretary", branch=branch)
    for k in range(4):
        make.user(f"m{k}", branch=branch)
    make.user("elsewhere", branch=make.branch())
    auth.login("shuji")
    items = todo(client.get("/").get_data(as_text=True))
    assert items["本期未开会议"] == (5, "/meetings")  # nothing held yet: every kind missing
    assert items["学习进度落后"] == (5, "/branch/learning")  # 4 members and the secretary, not the other branch
    assert "待阅简答题" not in items and "待审核课程" not in items


def test_a_member_has_no_to_do_panel(client, auth, make, pinned):
    make.user("liuzq", branch=make.branch())
    auth.login("liuzq")
    assert 'class="card todo"' not in client.get("/").get_data(as_text=True)


def test_the_to_do_panel_queries_do_not_grow_with_the_work(client, auth, make, pinned, statements):
    admin, exam = waiting_work(make)

    def home_statements():
        auth.login("boss")
        statements.clear()
        html = client.get("/").get_data(as_text=True)
        auth.logout()
        return len(statements), todo(html)["待阅简答题"][0]

    home_statements()  # the first home page writes the default points rules (today's tasks need them)
    few, three = home_statements()
    branch = admin.branch
    for k in range(3, 8):
        finished_short_attempt(exam, make.user(f"m{k}", branch=branch))
    many, eight = home_statements()
    assert (three, eight) == (3, 8)
    assert many == few
