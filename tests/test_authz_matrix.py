"""Every route x every kind of user, generated from the URL map: a route added without a line in
POLICY fails this test. Objects are chosen so that the scope matters: another member of the
secretary's branch (ZC1), that member's attempt, ledger entry and meeting, while a second secretary
(JD) must be refused what the first may see.

A role named in POLICY may use the route (never 401/403/500, never sent to the login page); every
other user is refused (401/403/404/405, or the login page for someone not logged in)."""

import re

import pytest
from sqlalchemy import func, select

from pbschool import demo
from pbschool.accounts.models import Branch, User
from pbschool.extensions import db
from pbschool.notices.models import Notification

EVERYONE = ("member", "lecturer", "secretary", "secretary_jd", "admin")
STAFF_BANKS = ("lecturer", "admin")
OWN_BRANCH = ("secretary", "admin")
SECRETARIES = ("secretary", "secretary_jd", "admin")  # each sees their own branch's rows only
STAFF = ("lecturer", "secretary", "secretary_jd", "admin")  # the object belongs to ZC1, the first secretary's branch
PUBLIC = "public"
NOBODY = ()

#: endpoint (or rule, where one endpoint serves routes of different scope) -> who may use it
POLICY = {
    "web.home": EVERYONE, "web.set_language": PUBLIC, "web.healthz": PUBLIC,
    "accounts.login": PUBLIC, "accounts.logout": EVERYONE, "accounts.change_password": EVERYONE,
    "accounts.branches": ("admin",), "accounts.edit_branch": ("admin",),
    "accounts.users": ("secretary", "secretary_jd", "admin"), "accounts.user_detail": OWN_BRANCH,
    "accounts.set_user_active": ("admin",), "accounts.reset_user_password": ("admin",),
    "accounts.import_users_page": ("admin",), "accounts.import_passwords": ("admin",),
    "accounts.import_template": ("admin",), "accounts.new_user": ("admin",),
    # second factor and my sessions: the session and token in the URL are another member's (member2)
    "accounts.login_2fa": PUBLIC, "accounts.two_factor": EVERYONE, "accounts.new_recovery_codes": EVERYONE,
    "accounts.reset_user_2fa": ("admin",), "accounts.security_settings": ("admin",),
    "accounts.my_sessions": EVERYONE, "accounts.revoke_session": NOBODY, "accounts.revoke_my_token": NOBODY,
    # question banks
    "exams.banks": STAFF_BANKS, "exams.bank": STAFF_BANKS, "exams.export_bank": STAFF_BANKS,
    "exams.edit_question": STAFF_BANKS, "exams.import_bank": STAFF_BANKS, "exams.new_bank": STAFF_BANKS,
    "exams.bank_template": STAFF_BANKS,
    "exams.grant_bank": ("admin",), "exams.revoke_bank": ("admin",),
    # The demo lecturer is granted the demo bank (synced from content/, no author); a lecturer without
    # a grant is refused it: tests/exams/test_keys.py.
    # exams: running them, and sitting them
    "exams.admin_exams": STAFF, "exams.admin_exam": STAFF, "exams.new_exam": ("admin",),
    "exams.edit_exam": ("admin",),
    "exams.marking": STAFF_BANKS, "exams.regrade": ("admin",),
    "exams.results": SECRETARIES, "exams.statistics": SECRETARIES,
    "exams.my_exams": EVERYONE, "exams.exam_detail": EVERYONE, "exams.start": EVERYONE,
    "exams.wrong_book": EVERYONE,
    "exams.attempt_detail": OWN_BRANCH,
    "exams.sit": NOBODY, "exams.result": NOBODY, "exams.submit": NOBODY,  # another member's attempt
    "exams.service_worker": PUBLIC,  # the exam page's service worker script: nothing personal in it
    # courses
    "courses.index": EVERYONE, "courses.course": EVERYONE, "courses.lesson": EVERYONE,
    "courses.comment": EVERYONE, "courses.mark_done": EVERYONE, "courses.my_learning": EVERYONE,
    "courses.media_file": EVERYONE,
    "courses.comment_queue": ("admin",), "courses.moderate": ("admin",),
    "courses.admin_courses": ("admin",), "courses.completion": SECRETARIES, "courses.requirements": ("admin",),
    "courses.review_queue": ("admin",), "courses.review": ("admin",), "courses.review_course": ("admin",),
    "courses.branch_learning": ("secretary", "secretary_jd", "admin"),
    "courses.teach": STAFF_BANKS, "courses.edit_course": STAFF_BANKS, "courses.edit_lesson": STAFF_BANKS,
    "courses.delete_lesson": STAFF_BANKS, "courses.submit": STAFF_BANKS, "courses.upload": STAFF_BANKS,
    "courses.delete_media": STAFF_BANKS, "courses.preview": STAFF_BANKS,
    # ... but a lecturer touches only their own: the demo lesson and course have another author.
    "/teach/courses/<int:course_id>/edit": ("admin",), "/teach/lessons/<int:lesson_id>/edit": ("admin",),
    "/teach/lessons/<int:lesson_id>/delete": ("admin",), "/teach/lessons/<int:lesson_id>/submit": ("admin",),
    "/teach/lessons/<int:lesson_id>/upload": ("admin",),
    # points, meetings, reports
    "points.mine": EVERYONE, "points.board": EVERYONE, "points.board_xlsx": EVERYONE,
    "points.admin": ("admin",), "points.award": ("secretary", "secretary_jd", "admin"),
    "points.reverse": OWN_BRANCH, "points.honours": SECRETARIES, "points.honours_xlsx": SECRETARIES,
    "points.member": OWN_BRANCH, "points.rule": ("admin",), "points.stars": SECRETARIES,
    "points.stars_xlsx": SECRETARIES, "points.rules": EVERYONE,
    "meetings.index": ("secretary", "secretary_jd", "admin"), "meetings.export": ("secretary", "secretary_jd", "admin"),
    "meetings.detail": OWN_BRANCH, "meetings.new": ("secretary", "secretary_jd", "admin"),
    "meetings.settings": ("admin",),
    "reports.branch": ("secretary", "secretary_jd", "admin"),
    "reports.branch_xlsx": ("secretary", "secretary_jd", "admin"),
    "reports.member_record": OWN_BRANCH, "reports.overview": ("admin",), "reports.overview_xlsx": ("admin",),
    # notifications and announcements: the announcement went to ZC1; the notification is member2's
    "notices.notifications": EVERYONE, "notices.read_all": EVERYONE, "notices.open_notification": NOBODY,
    "notices.announcements": EVERYONE, "notices.new_announcement": SECRETARIES,
    "notices.announcement": ("member", "secretary", "admin"), "notices.pin": OWN_BRANCH,
    "search.results": EVERYONE, "api.search": EVERYONE,  # what each may read is tests/search's matter
    "api.my_notifications": EVERYONE, "api.read_my_notifications": EVERYONE,  # {} is a 400, not a refusal
    "api.create_announcement": SECRETARIES,  # {} is a 400 for them, a 403 for the others
    # certificates: <code> is member2's (ZC1); verifying is public, the PDF is the holder's and their overseers'
    "certificates.verify": PUBLIC, "certificates.verify_form": PUBLIC, "certificates.download": OWN_BRANCH,
    "certificates.mine": EVERYONE, "certificates.my_record": EVERYONE,
    "api.certificate_pdf": OWN_BRANCH, "api.my_certificates": EVERYONE, "api.my_record_xlsx": EVERYONE,
    # JSON API
    "api.openapi": PUBLIC, "api.create_token": PUBLIC, "api.revoke_token": EVERYONE, "api.me": EVERYONE,
    "api.change_my_password": EVERYONE,
    "api.list_courses": EVERYONE, "api.get_course": EVERYONE, "api.get_lesson": EVERYONE,
    "api.post_progress": EVERYONE, "api.my_learning": EVERYONE, "api.me_points": EVERYONE,
    "api.leaderboard": EVERYONE, "api.list_exams": EVERYONE, "api.start_attempt": EVERYONE,
    "api.upcoming_exams": EVERYONE,
    "api.create_exam": ("admin",), "api.exam_results": ("secretary", "secretary_jd", "admin"),
    "api.award_points": SECRETARIES, "api.record_meeting": SECRETARIES,
    "api.mark_attempt": STAFF_BANKS,  # the body is checked before the paper: the role decides here
    "api.add_attendees": OWN_BRANCH,
    "api.lesson_review": ("admin",), "api.review_lesson": ("admin",), "api.course_review": ("admin",),
    "api.review_course": ("admin",),
    "api.get_attempt": NOBODY, "api.save_answer": NOBODY, "api.submit_attempt": NOBODY,
    "api.regrade_exam": ("admin",),
    # exam overrides: <username> is member2 (ZC1); <code> names no branch here (tests/exams/test_overrides.py
    # tries each role on real ones); the page's form names its target in the body, checked per object there
    "api.list_overrides": SECRETARIES, "api.member_override": OWN_BRANCH, "api.branch_override": OWN_BRANCH,
    "exams.set_override": SECRETARIES, "exams.remove_override": SECRETARIES,
    "api.attempt_deadline": NOBODY,  # another member's attempt
    # practice and today's tasks: the paper in the URL is another member's (member2)
    "practice.hub": EVERYONE, "practice.start": EVERYONE, "practice.admin_banks": ("admin",),
    "practice.paper": NOBODY, "practice.answer": NOBODY, "practice.finish": NOBODY,
    "api.my_tasks": EVERYONE, "api.start_practice": EVERYONE,
    "api.get_practice": NOBODY, "api.answer_practice": NOBODY, "api.finish_practice": NOBODY,
}

REFUSED = {401, 403, 404, 405}


@pytest.fixture
def world(app, backend):
    if backend == "postgresql":
        pytest.skip("authorisation does not depend on the database; the matrix runs on SQLite")
    for _line in demo.load():
        pass
    user = lambda name: db.session.scalar(select(User).where(User.username == name))  # noqa: E731
    from pbschool.courses.models import Lesson
    from pbschool.exams import services as exams
    from pbschool.exams.models import Exam, Question, QuestionBank
    from pbschool.meetings.models import Meeting
    from pbschool.points.models import LedgerEntry, PointRule

    other = user("member2")  # ZC1, not the member who logs in
    exam = db.session.scalar(select(Exam))
    attempt = exams.start_attempt(exam, other)
    from pbschool.practice import services as practice

    practice_id = practice.start(other, "daily").id
    zc1 = db.session.scalar(select(Branch).where(Branch.code == "ZC1"))
    from pbschool.notices import services as notices

    announcement = notices.publish_announcement(user("admin"), title="通知", body="正文", audience="branches",
                                                 branch_ids=[zc1.id])
    notices.notify([other], "month_published", "month:2026-01", subject="2026-01")
    db.session.commit()
    ids = {
        "user_id": other.id, "branch_id": zc1.id, "attempt_id": attempt.id, "exam_id": exam.id,
        "course_id": db.session.scalar(select(Lesson.course_id)), "lesson_id": db.session.scalar(select(Lesson.id)),
        "bank_id": db.session.scalar(select(QuestionBank.id)), "question_id": db.session.scalar(select(Question.id)),
        "entry_id": db.session.scalar(select(LedgerEntry.id).where(LedgerEntry.user_id == other.id)),
        "meeting_id": db.session.scalar(select(Meeting.id).where(Meeting.branch_id == zc1.id)),
        "rule_id": db.session.scalar(select(PointRule.id)),
        "session_id": _other_session(other).id, "token_id": _other_token(other).id,
        "username": other.username, "override_id": 999999,
        "announcement_id": announcement.id,
        "note_id": db.session.scalar(select(func.max(Notification.id))),
        "practice_id": practice_id,
        "comment_id": 999999, "media_id": 999999, "token": "no-such-token", "fmt": "csv",
        "code": _other_certificate(other).display_code,  # also /lang/<code>: an unknown language changes nothing
    }
    return ids


def _other_certificate(user):
    from pbschool.certificates.models import Certificate
    from pbschool.certificates.services import _insert

    certificate = _insert(Certificate(kind="hours", year=2026, title="2026年度学习学时", user_id=user.id,
                                      holder_name=user.name, branch_name=user.branch.name))
    db.session.commit()
    return certificate


def _other_session(user):
    from pbschool.accounts import sessions

    sessions.start(user, "10.0.0.9", "another browser")
    db.session.commit()
    return sessions.my_sessions(user)[0]


def _other_token(user):
    from pbschool.accounts import services, sessions

    services.issue_token(user)
    db.session.commit()
    return sessions.my_tokens(user)[0]


def _url(rule, ids):
    def value(match):
        name = match.group(1)
        assert name in ids, f"no test value for the URL parameter <{name}> in {rule.rule}"
        return str(ids[name])

    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", value, rule.rule)


def _call(app, identity, rule, url):
    client = app.test_client()
    headers = {}
    if identity != "anonymous":
        username = {"secretary_jd": "secretary2"}.get(identity, identity)
        if rule.rule.startswith("/api/"):
            token = client.post("/api/v1/tokens", json={"username": username, "password": demo.DEMO_PASSWORD})
            headers["Authorization"] = "Bearer " + token.get_json()["token"]
        else:
            login = client.post("/login", data={"username": username, "password": demo.DEMO_PASSWORD})
            assert login.status_code == 302, identity
    methods = rule.methods - {"HEAD", "OPTIONS"}
    method = "GET" if "GET" in methods else sorted(methods)[0]
    kwargs = {"json": {}} if rule.rule.startswith("/api/") and method != "GET" else {}
    return client.open(url, method=method, headers=headers, **kwargs)


def test_every_route_has_a_rule(app):
    endpoints = {r.endpoint for r in app.url_map.iter_rules() if r.endpoint != "static"}
    missing = sorted(endpoints - set(POLICY))
    assert not missing, f"routes with no line in the authorisation matrix: {missing}"


def test_the_matrix(app, world):
    problems = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static" or rule.endpoint not in POLICY:
            continue
        allowed = POLICY.get(rule.rule, POLICY[rule.endpoint])
        url = _url(rule, world)
        for identity in ("anonymous", *EVERYONE):
            response = _call(app, identity, rule, url)
            status = response.status_code
            to_login = status == 302 and "/login" in response.headers.get("Location", "") \
                and not (rule.endpoint == "accounts.logout" and identity != "anonymous")
            may = allowed == PUBLIC or identity in allowed
            if may and (status in (401, 403) or status >= 500 or (to_login and identity != "anonymous")):
                problems.append(f"{identity:<12} {rule.rule} ({rule.endpoint}) refused: {status}")
            if not may and not (status in REFUSED or to_login):
                problems.append(f"{identity:<12} {rule.rule} ({rule.endpoint}) allowed: {status}")
            db.session.rollback()
    assert not problems, "\n" + "\n".join(problems)
