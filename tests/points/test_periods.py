"""Figures as of their period: a past quarter's member stars, honours candidates and branch star
ratings use only that period's data, and rate a member only for the time they belonged."""

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from pbschool import clock
from pbschool.accounts import services as accounts
from pbschool.exams.models import Attempt, Exam
from pbschool.extensions import db
from pbschool.meetings.models import Meeting
from pbschool.points import queries, services
from pbschool.points.models import StarRating
from pbschool.reports import figures
from pbschool.reports import services as reports
from pbschool.reports.models import BranchRating


def at(month, day, hour=2, year=2026):
    return dt.datetime(year, month, day, hour, 0)


def sat(member, when, passed, exam=None):
    """A graded attempt submitted at ``when``."""
    exam = exam or Exam(title=f"考试{when:%m%d}", time_limit_seconds=600)
    number = (db.session.scalar(select(db.func.count(Attempt.id)).where(Attempt.exam == exam, Attempt.user_id
                                                                      == member.id)) or 0) + 1 if exam.id else 1
    db.session.add(Attempt(exam=exam, user_id=member.id, number=number, attempt_limit=5, state="submitted",
                           started_at=when - dt.timedelta(minutes=5), deadline_at=when, submitted_at=when,
                           score=Decimal(80 if passed else 20), max_score=Decimal(100), passed=passed))
    db.session.flush()
    return exam


@pytest.fixture
def q3(app):
    """An admin (no branch), two branches, a member in each made in July through the accounts service."""
    clock.pin(at(7, 1))
    admin, _ = accounts.create_user("office", "组织部", role="admin", password="committee-pass-26")
    zc = accounts.create_branch("ZC1", "综采一队党支部", actor=admin)
    jd = accounts.create_branch("JD", "机电科党支部", actor=admin)
    liu, _ = accounts.create_user("liu", "刘志强", branch=zc, password="member-pass-26", actor=admin)
    sun, _ = accounts.create_user("sun", "孙丽娟", branch=jd, password="member-pass-26", actor=admin)
    services.record_event(liu, "exam_passed", "q3:liu", points=8, occurred_at=at(8, 10))
    services.record_event(sun, "exam_passed", "q3:sun", points=4, occurred_at=at(9, 10))
    sat(liu, at(8, 10), passed=True)
    sat(sun, at(9, 10), passed=True)
    db.session.add(Meeting(branch_id=zc.id, kind="committee", held_on=dt.date(2026, 8, 5), topic="支委会",
                           recorded_by_id=admin.id, created_at=at(8, 5)))
    db.session.commit()
    return {"admin": admin, "zc": zc, "jd": jd, "liu": liu, "sun": sun}


def stars(quarter):
    return {r.user.username: (r.branch_id, r.score, r.stars)
            for r in db.session.scalars(select(StarRating).where(StarRating.quarter == quarter))}


def ratings(quarter):
    return {r.branch.code: (r.score, r.figures)
            for r in db.session.scalars(select(BranchRating).where(BranchRating.quarter == quarter))}


def test_a_member_created_in_december_gets_no_q3_stars(q3):
    clock.pin(at(12, 3))
    accounts.create_user("newcomer", "新党员", branch=q3["zc"], password="member-pass-26", actor=q3["admin"])
    db.session.commit()
    services.compute_stars("2026-Q3")
    assert set(stars("2026-Q3")) == {"liu", "sun"}


def test_the_q3_branch_rating_does_not_use_exams_taken_in_december(q3):
    clock.pin(at(12, 3))
    for _ in range(3):
        sat(q3["liu"], at(12, 3), passed=False)  # failed in December: not a Q3 figure
    db.session.commit()
    clock.pin(at(12, 20))
    reports.compute_branch_ratings("2026-Q3")
    assert ratings("2026-Q3")["ZC1"][1]["exams"] == "100.0"


def test_recomputing_q3_after_december_changes_gives_the_same_figures(q3):
    clock.pin(at(10, 2))
    services.compute_stars("2026-Q3")
    reports.compute_branch_ratings("2026-Q3")
    db.session.commit()
    before_stars, before_ratings = stars("2026-Q3"), ratings("2026-Q3")
    db.session.execute(db.delete(StarRating))
    db.session.execute(db.delete(BranchRating))

    clock.pin(at(12, 3))
    # December: new members, a move, a deactivation, points, exams, study and a meeting.
    late, _ = accounts.create_user("late", "后来者", branch=q3["zc"], password="member-pass-26", actor=q3["admin"])
    services.record_event(late, "exam_passed", "dec:late", points=9)
    accounts.update_user(q3["liu"], name="刘志强", role="member", branch=q3["jd"], job_post="", actor=q3["admin"])
    accounts.set_active(q3["sun"], False, actor=q3["admin"])
    services.record_event(q3["liu"], "exam_passed", "dec:liu", points=7)
    sat(q3["liu"], at(12, 3), passed=False)
    sat(late, at(12, 3), passed=False)
    db.session.commit()

    clock.pin(at(12, 20))
    services.compute_stars("2026-Q3")
    reports.compute_branch_ratings("2026-Q3")
    db.session.commit()
    assert stars("2026-Q3") == before_stars
    assert ratings("2026-Q3") == before_ratings


def test_a_member_who_moved_counts_in_the_branch_they_were_in(q3):
    clock.pin(at(11, 15))
    accounts.update_user(q3["liu"], name="刘志强", role="member", branch=q3["jd"], job_post="", actor=q3["admin"])
    db.session.commit()
    clock.pin(at(12, 1))
    services.compute_stars("2026-Q3")
    reports.compute_branch_ratings("2026-Q3")
    assert stars("2026-Q3")["liu"][0] == q3["zc"].id
    figures = ratings("2026-Q3")
    # liu's 8 points stay with ZC1 (its only member in Q3); JD's Q3 is sun's 4 alone
    assert figures["ZC1"][1]["points"] == "100.0" and figures["JD"][1]["points"] == "50.0"


def test_a_member_who_moved_mid_quarter_is_rated_for_each_branch_only_while_there(q3):
    clock.pin(at(8, 20))  # liu moves to JD after his August exam and points
    accounts.update_user(q3["liu"], name="刘志强", role="member", branch=q3["jd"], job_post="", actor=q3["admin"])
    services.record_event(q3["liu"], "exam_passed", "q3:liu:jd", points=2, occurred_at=at(9, 1))
    db.session.commit()
    clock.pin(at(10, 2))
    rows = {r["branch"].id: r for r in figures.branch_quarter_rows("2026-Q3")}
    zc, jd = rows[q3["zc"].id], rows[q3["jd"].id]
    assert zc["members"] == 1 and jd["members"] == 2
    assert zc["points_per_member"] == Decimal("8.0")  # earned while in ZC1
    assert jd["points_per_member"] == Decimal("3.0")  # (sun 4 + liu 2 while in JD) / 2


def test_a_member_deactivated_in_december_keeps_their_q3_rating_and_one_deactivated_in_q3_is_rated(q3):
    clock.pin(at(8, 20))
    accounts.set_active(q3["sun"], False, actor=q3["admin"])
    db.session.commit()
    clock.pin(at(10, 2))
    services.compute_stars("2026-Q3")
    assert set(stars("2026-Q3")) == {"liu", "sun"}


def test_a_member_deactivated_before_the_quarter_is_not_rated(q3):
    clock.pin(at(9, 30))
    sun = q3["sun"]
    accounts.set_active(sun, False, actor=q3["admin"])
    db.session.commit()
    clock.pin(at(1, 5, year=2027))
    services.compute_stars("2026-Q4")
    assert "sun" not in stars("2026-Q4") and "liu" in stars("2026-Q4")


def test_honours_use_the_years_entries_by_date(q3):
    clock.pin(at(12, 10))
    secretary, _ = accounts.create_user("zhang", "张书记", role="secretary", branch=q3["zc"],
                                        password="member-pass-26", actor=q3["admin"])
    veto = services.award(q3["liu"], "-1", "违反安全规程", actor=secretary, category="组织生活", is_veto=True)
    db.session.commit()
    clock.pin(at(1, 3, year=2027))
    services.publish_month("2026-12")
    # a reversal in the next year does not rewrite 2026's honours
    services.reverse(veto, "复核撤销", actor=secretary)
    # an event dated in December lands in January's board (December is published) but counts for 2026
    services.record_event(q3["sun"], "exam_passed", "late:sun", points=5, occurred_at=at(12, 30))
    db.session.commit()
    result, vetoed = queries.honours_candidates(2026)
    assert q3["liu"].id in vetoed
    assert {m.username: m.points for m in result["JD"]} == {"sun": Decimal("9.0")}
