import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from pbschool import clock
from pbschool.courses import services
from pbschool.courses.models import LessonProgress, LessonReview
from pbschool.errors import DomainError
from pbschool.extensions import db
from tests.courses.conftest import study


@pytest.mark.parametrize("minutes, hours", [(45, "1"), (30, "1"), (29, "0.5"), (15, "0.5"), (14, "0.25"),
                                            (1, "0.25")])
def test_credited_hours_follow_the_domain_rule(app, minutes, hours):
    assert services.lesson_hours(minutes) == Decimal(hours)


def test_the_hours_rule_is_a_setting(app):
    app.config["LESSON_HOURS_RULE"] = [(20, 2), (0, 1)]
    assert services.lesson_hours(25) == 2
    assert services.lesson_hours(5) == 1


def test_targets_are_32_for_members_and_56_for_secretaries(app, make):
    assert services.target_hours(make.user(role="member")) == 32
    assert services.target_hours(make.user(role="secretary")) == 56
    app.config["LEARNING_TARGET_HOURS"] = {"member": 40}
    assert services.target_hours(make.user(role="member")) == 40


def test_rendered_html_is_cached_and_refreshed_when_the_source_changes(app, cm):
    lesson = cm.lesson(body="# 标题\n\n<script>alert(1)</script>正文")
    assert "<h1>标题</h1>" in lesson.body_html and "<script" not in lesson.body_html
    services.set_lesson_body(lesson, "**新内容**")
    assert "<strong>新内容</strong>" in lesson.body_html


def test_heartbeats_never_credit_more_than_wall_clock_time(app, make, cm, t0):
    member = make.user()
    lesson = cm.lesson(minutes=20)
    services.open_lesson(member, lesson)
    clock.advance(seconds=1)
    # A script claims an hour a second after opening: one second is credited.
    assert services.heartbeat(member, lesson, 3600).credited_seconds == 1
    # Repeating at once credits nothing more.
    assert services.heartbeat(member, lesson, 3600).credited_seconds == 1
    clock.advance(seconds=30)
    assert services.heartbeat(member, lesson, 30).credited_seconds == 31
    # Reporting less than elapsed credits what was reported.
    clock.advance(seconds=30)
    assert services.heartbeat(member, lesson, 10).credited_seconds == 41


def test_a_heartbeat_without_opening_starts_the_clock_and_credits_nothing(app, make, cm, t0):
    member = make.user()
    lesson = cm.lesson()
    assert services.heartbeat(member, lesson, 30).credited_seconds == 0
    clock.advance(seconds=20)
    assert services.heartbeat(member, lesson, 30).credited_seconds == 20


def test_reopening_restarts_the_clock_so_time_away_is_not_credited(app, make, cm, t0):
    member = make.user()
    lesson = cm.lesson()
    study(member, lesson, 60)
    clock.advance(hours=5)
    services.open_lesson(member, lesson)
    clock.advance(seconds=2)
    assert services.heartbeat(member, lesson, 300).credited_seconds == 62


def test_completion_needs_half_the_lesson_time(app, make, cm, t0):
    member = make.user()
    lesson = cm.lesson(minutes=20)  # 600 s needed
    study(member, lesson, 300)
    with pytest.raises(DomainError) as refused:
        services.complete_lesson(member, lesson)
    assert refused.value.code == "too_soon" and refused.value.status == 409
    assert "还需学习约 5 分钟" in refused.value.message
    clock.advance(seconds=300)
    services.heartbeat(member, lesson, 300)
    progress = services.complete_lesson(member, lesson)
    assert progress.completed_at == clock.now()
    assert progress.hours_credited == Decimal("0.5")


def test_the_completion_rule_can_be_turned_off(app, make, cm, t0):
    app.config["COMPLETION_MIN_FRACTION"] = 0
    member = make.user()
    lesson = cm.lesson(minutes=45)
    progress = services.complete_lesson(member, lesson)
    assert progress.completed_at is not None and progress.hours_credited == 1


def test_completion_credits_hours_and_points_once(app, make, cm, t0):
    from pbschool.points.models import LedgerEntry

    app.config["COMPLETION_MIN_FRACTION"] = 0
    member = make.user()
    lesson = cm.lesson(minutes=30)
    services.complete_lesson(member, lesson)
    first = services.complete_lesson(member, lesson).completed_at
    clock.advance(days=1)
    assert services.complete_lesson(member, lesson).completed_at == first
    db.session.commit()
    assert services.learning_summary(member)["hours"] == 1
    entries = db.session.scalars(select(LedgerEntry).where(LedgerEntry.user_id == member.id)).all()
    assert [e.source_key for e in entries] == [f"lesson:{lesson.id}:user:{member.id}"]


def test_learning_hours_count_within_the_beijing_calendar_year(app, make, cm):
    app.config["COMPLETION_MIN_FRACTION"] = 0
    member = make.user()
    # 31 Dec 2025 17:00 UTC is already 1 Jan 2026 in Beijing.
    clock.pin(dt.datetime(2025, 12, 31, 15, 0))
    services.complete_lesson(member, cm.lesson(minutes=30))
    clock.pin(dt.datetime(2025, 12, 31, 17, 0))
    services.complete_lesson(member, cm.lesson(minutes=10))
    db.session.commit()
    assert services.learning_summary(member) == {"year": 2026, "hours": Decimal("0.25"),
                                                 "target_hours": 32, "lessons_completed": 1}
    assert services.learning_summary(member, 2025)["hours"] == 1
    clock.pin(None)


def test_unpublished_lessons_take_no_progress(app, make, cm, t0):
    member = make.user()
    draft = cm.lesson(state="submitted")
    hidden_course = cm.lesson(course=cm.course(published=False))
    for lesson in (draft, hidden_course):
        for call, args in ((services.open_lesson, ()), (services.heartbeat, (5,)), (services.complete_lesson, ())):
            with pytest.raises(DomainError) as refused:
                call(member, lesson, *args)
            assert refused.value.status == 404
    assert db.session.scalars(select(LessonProgress)).all() == []


def test_required_courses_by_branch_job_post_and_for_all(app, make, cm):
    branch = make.branch()
    miner = make.user(branch=branch, job_post="采煤机司机")
    clerk = make.user(job_post="文书")
    by_branch, by_post, for_all, none = (cm.course(title=t) for t in ("支部课", "岗位课", "全员课", "选修课"))
    services.set_requirements(by_branch, branch_ids=[branch.id])
    services.set_requirements(by_post, job_posts=["采煤机司机"])
    services.set_requirements(for_all, for_all=True)
    db.session.commit()
    assert services.required_course_ids(miner) == {by_branch.id, by_post.id, for_all.id}
    assert services.required_course_ids(clerk) == {for_all.id}
    assert none.id not in services.required_course_ids(miner)


def test_requirements_are_replaced_not_duplicated(app, make, cm):
    course = cm.course()
    services.set_requirements(course, job_posts=["电工", "电工", "绞车司机"])
    services.set_requirements(course, job_posts=["电工"], for_all=True)
    db.session.commit()
    assert sorted(r.target_key for r in course.requirements) == ["all", "post:电工"]


def test_review_workflow_keeps_history_and_the_reason(app, make, cm):
    lecturer = make.user(role="lecturer")
    admin = make.user(role="admin")
    course = cm.course()
    lesson = services.create_lesson(course, "新课", 12, "正文", lecturer)
    services.submit_lesson(lesson, lecturer)
    with pytest.raises(DomainError):
        services.return_lesson(lesson, admin, "  ")
    with pytest.raises(DomainError):
        services.publish_lesson(lesson, lecturer, lesson.revision)
    services.return_lesson(lesson, admin, "请补充学习要点")
    assert lesson.state == "returned" and lesson.review_reason == "请补充学习要点"
    services.update_lesson(lesson, title="新课", minutes=12, body="正文\n\n## 学习要点", actor=lecturer)
    services.submit_lesson(lesson, lecturer)
    services.publish_lesson(lesson, admin, lesson.revision)
    db.session.commit()
    assert lesson.state == "published" and lesson.review_reason == "" and lesson.revision == 2
    steps = [(r.from_state, r.to_state) for r in db.session.scalars(
        select(LessonReview).where(LessonReview.lesson_id == lesson.id).order_by(LessonReview.id))]
    assert steps == [("", "draft"), ("draft", "submitted"), ("submitted", "returned"),
                     ("returned", "submitted"), ("submitted", "published")]


def test_an_edit_of_a_published_lesson_goes_to_review_while_the_published_one_stays(app, make, cm):
    lecturer = make.user(role="lecturer")
    lesson = cm.lesson(author=lecturer)
    services.update_lesson(lesson, title=lesson.title, minutes=20, body=lesson.body_source, actor=lecturer)
    assert lesson.draft is None and lesson.revision == 1  # saving without a change changes nothing
    services.update_lesson(lesson, title=lesson.title, minutes=45, body=lesson.body_source, actor=lecturer)
    assert lesson.state == "published" and lesson.minutes == 20
    assert lesson.draft.state == "draft" and lesson.draft.minutes == 45 and lesson.revision == 2
    # An admin's edit of a published lesson is reviewed too (by another admin): nobody approves their own.
    admin_edited = cm.lesson(author=lecturer)
    services.update_lesson(admin_edited, title="管理员改了标题", minutes=20, body="x", actor=make.user(role="admin"))
    assert admin_edited.state == "published" and admin_edited.title == "第一讲"
    assert admin_edited.draft.title == "管理员改了标题"


def test_a_lecturer_cannot_edit_someone_elses_lesson(app, make, cm):
    lesson = cm.lesson(author=make.user(role="lecturer"))
    with pytest.raises(DomainError) as refused:
        services.update_lesson(lesson, title="x", minutes=5, body="y", actor=make.user(role="lecturer"))
    assert refused.value.status == 403


def test_comments_wait_for_approval_then_earn_points_once(app, make, cm):
    from pbschool.points.models import LedgerEntry

    member, other, admin = make.user(), make.user(), make.user(role="admin")
    lesson = cm.lesson()
    comment = services.add_comment(member, lesson, "学习体会：<img src=x onerror=alert(1)>")
    db.session.commit()
    assert "onerror" not in comment.body_html
    assert services.visible_comments(lesson, member) == [comment]
    assert services.visible_comments(lesson, other) == []
    services.approve_comment(comment, admin)
    services.approve_comment(comment, admin)
    db.session.commit()
    assert services.visible_comments(lesson, other) == [comment]
    keys = db.session.scalars(select(LedgerEntry.source_key).where(LedgerEntry.user_id == member.id)).all()
    assert keys == [f"comment:{comment.id}"]
    services.hide_comment(comment, admin, "与主题无关")
    assert services.visible_comments(lesson, other) == []
    assert services.visible_comments(lesson, member) == []


def test_no_comment_on_a_hidden_lesson_and_no_empty_or_huge_comment(app, make, cm):
    member = make.user()
    with pytest.raises(DomainError) as refused:
        services.add_comment(member, cm.lesson(state="draft"), "好")
    assert refused.value.status == 404
    lesson = cm.lesson()
    for body in ("   ", "长" * 2001):
        with pytest.raises(DomainError):
            services.add_comment(member, lesson, body)


def test_branch_learning_highlights_members_behind_target(app, make, cm):
    app.config["COMPLETION_MIN_FRACTION"] = 0
    branch = make.branch()
    keen, idle = make.user(branch=branch), make.user(branch=branch)
    make.user(branch=make.branch())  # another branch's member is not listed
    clock.pin(dt.datetime(2026, 1, 2, 2, 0))
    required = cm.course(title="支部必修")
    services.set_requirements(required, branch_ids=[branch.id])
    for n in range(3):
        services.complete_lesson(keen, cm.lesson(course=required, minutes=40, title=f"课{n}"))
    db.session.commit()
    rows = {r["user"].id: r for r in services.branch_learning(branch, 2026)}
    assert rows[keen.id]["hours"] == 3 and not rows[keen.id]["behind"]
    assert (rows[keen.id]["required_done"], rows[keen.id]["required"]) == (1, 1)
    assert rows[idle.id]["hours"] == 0 and rows[idle.id]["behind"]
    assert (rows[idle.id]["required_done"], rows[idle.id]["required"]) == (0, 1)
    clock.pin(None)


def test_comments_are_rate_limited_per_member(app, make, cm, t0):
    member = make.user()
    lesson = cm.lesson()
    for n in range(5):
        services.add_comment(member, lesson, f"体会{n}")
    with pytest.raises(DomainError) as refused:
        services.add_comment(member, lesson, "再来一条")
    assert refused.value.status == 429
    services.add_comment(make.user(), lesson, "别人不受影响")
    clock.advance(minutes=1, seconds=1)
    services.add_comment(member, lesson, "一分钟后可以")
