"""Certificates: an exam setting, one per passed attempt (also after marking), revoked by a regrade
that fails the pass and reinstated by one that passes it again; the year's 学时证明; the PDF; the
public /verify page; nobody sees another member's certificate."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from pbschool import clock
from pbschool.certificates import services as certs
from pbschool.certificates.models import Certificate, CertificateEvent
from pbschool.courses.models import Course, Lesson, LessonProgress
from pbschool.exams import marking, services
from pbschool.exams.models import Attempt, Exam
from pbschool.extensions import db
from tests.certificates.conftest import pdf_text, sit
from tests.exams.conftest import make_bank, make_exam, right_value


def _events(certificate):
    return [e.action for e in db.session.scalars(select(CertificateEvent).where(
        CertificateEvent.certificate_id == certificate.id).order_by(CertificateEvent.id))]


def _count():
    return db.session.scalar(select(func.count(Certificate.id)))


# -- the exam setting -------------------------------------------------------------------------------

def test_post_exams_accepts_certificate(api, make, org):
    make_bank("组织原则", [("truefalse", "党员的党龄从转为正式党员之日算起。", [], "对", "党章")])
    api.token(org["admin"])
    body = {"title": "证书考试", "time_limit_seconds": 600, "max_attempts": 1, "pass_score": 60,
            "points_on_pass": 0, "certificate": True, "sections": [{"bank": "组织原则", "count": 1, "points_each": 1}]}
    exam = db.session.get(Exam, api.post("/exams", json=body).get_json()["id"])
    assert exam.issues_certificate is True
    plain = db.session.get(Exam, api.post("/exams", json={**body, "certificate": False}).get_json()["id"])
    assert plain.issues_certificate is False
    assert api.post("/exams", json={**body, "certificate": "yes"}).status_code == 400


def test_the_exam_forms_set_it(client, auth, org):
    bank = make_bank("组织原则", [("truefalse", "党员的党龄从转为正式党员之日算起。", [], "对", "党章")])
    auth.login("admin")
    form = {"title": "表单证书考试", "time_limit_minutes": "10", "max_attempts": "1", "grading_method": "highest",
            "pass_score": "60", "points_on_pass": "0", "review": "explanations", "review_when": "submit",
            "audience": "all", "certificate": "y", "sections-0-bank": str(bank.id), "sections-0-count": "1",
            "sections-0-points_each": "1"}
    assert "通过后颁发证书" in client.get("/admin/exams/new").get_data(as_text=True)
    response = client.post("/admin/exams/new", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    exam = db.session.scalar(select(Exam).where(Exam.title == "表单证书考试"))
    assert exam.issues_certificate
    page = client.get(f"/admin/exams/{exam.id}/edit").get_data(as_text=True)
    assert re.search(r'<input checked[^>]*name="certificate"', page)
    client.post(f"/admin/exams/{exam.id}/edit", data={"title": exam.title, "max_attempts": "1",
                                                       "review": "explanations", "review_when": "submit",
                                                       "is_published": "y"})
    db.session.refresh(exam)
    assert exam.issues_certificate is False


# -- issuing ----------------------------------------------------------------------------------------

def test_a_pass_gets_one_certificate_in_the_attempt_api(api, org, cert_exam):
    member = org["member"]
    attempt = sit(cert_exam, member)
    assert attempt.passed
    api.token(member)
    body = api.get(f"/attempts/{attempt.id}").get_json()
    code = body["certificate"]["code"]
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", code)
    assert body["certificate"]["pdf_url"] == f"/api/v1/certificates/{code}.pdf"
    # submitting again, and syncing again, change nothing: one certificate, one 'issue' event
    assert api.post(f"/attempts/{attempt.id}/submit").status_code == 200
    certs.sync_attempt(db.session.get(Attempt, attempt.id))
    db.session.commit()
    assert _count() == 1
    certificate = certs.for_attempt(attempt.id)
    assert certificate.display_code == code and _events(certificate) == ["issue"]
    assert (certificate.holder_name, certificate.branch_name, certificate.title) == ("刘志强", "综采一队党支部",
                                                                                     "党章党规知识测试")
    listed = api.get("/me/certificates").get_json()
    assert [c["code"] for c in listed] == [code] and listed[0]["revoked"] is False


def test_a_fail_or_an_exam_without_certificates_gets_none(api, org, cert_exam):
    failed = sit(cert_exam, org["member"], right=False)
    assert failed.passed is False
    plain = make_exam(make_bank("另一个题库", [("truefalse", "党员应当遵守党的纪律。", [], "对", "党章")]), points=0)
    passed = sit(plain, org["member"])
    assert passed.passed
    api.token(org["member"])
    for attempt in (failed, passed):
        assert "certificate" not in api.get(f"/attempts/{attempt.id}").get_json()
    assert _count() == 0


def test_a_staff_preview_gets_none(make, cert_exam):
    # the bank's author sits a preview (auth.sits_as_preview): graded, never certified
    lecturer = make.user("teacher", role="lecturer", branch=make.branch())
    cert_exam.sections[0].bank.created_by_id = lecturer.id
    db.session.commit()
    attempt = sit(cert_exam, lecturer)
    assert attempt.is_preview and attempt.passed
    assert _count() == 0


def test_the_certificate_comes_when_the_last_short_answer_is_marked(api, make, org):
    bank = make_bank(questions=[], short=True)
    exam = make_exam(bank, pass_score=50, points=0, certificate=True)
    attempt = services.start_attempt(exam, org["member"])
    for slot in attempt.questions:
        services.save_answer(attempt, slot.question_id, right_value(slot))
    services.submit_attempt(attempt)
    db.session.commit()
    assert attempt.state == "pending_review" and _count() == 0
    api.token(org["member"])
    assert "certificate" not in api.get(f"/attempts/{attempt.id}").get_json()
    slot = attempt.questions[0]
    marking.mark_answer(attempt, slot.question_id, slot.points, org["admin"])
    db.session.commit()
    assert api.get(f"/attempts/{attempt.id}").get_json()["certificate"]["code"]
    assert _count() == 1


# -- regrade: revoke, never delete; back to a pass reinstates -----------------------------------------

def _set_single_key(exam, key):
    question = next(q for q in exam.sections[0].bank.questions if q.type == "single")
    question.answer = key
    db.session.commit()


def test_a_regrade_that_fails_the_pass_revokes_and_a_regrade_back_reinstates(api, client, org, cert_exam):
    member = org["member"]
    attempt = sit(cert_exam, member)
    certificate = certs.for_attempt(attempt.id)
    code = certificate.display_code
    _set_single_key(cert_exam, "A")  # the member's "B" is now wrong: a fail
    services.regrade(cert_exam, dry_run=True, actor=org["admin"])
    db.session.commit()
    assert not certs.for_attempt(attempt.id).is_revoked  # a dry run revokes nothing

    api.token(org["admin"])
    changes = api.post(f"/exams/{cert_exam.id}/regrade", json={"dry_run": False}).get_json()["changes"]
    assert [c["passed_after"] for c in changes] == [False]
    db.session.expire_all()
    certificate = certs.for_attempt(attempt.id)
    assert certificate.is_revoked and certificate.display_code == code and _count() == 1  # recorded, not deleted
    assert _events(certificate) == ["issue", "revoke"]
    page = client.get(f"/verify/{code}")
    assert page.status_code == 200 and "证书已撤销" in page.get_data(as_text=True)
    api.token(member)
    assert "certificate" not in api.get(f"/attempts/{attempt.id}").get_json()
    # the PDF of a revoked certificate is still the member's to read, but the list says it is revoked
    assert api.get("/me/certificates").get_json()[0]["revoked"] is True

    again = services.regrade(cert_exam, dry_run=False, actor=org["admin"])
    certs.sync_attempt(db.session.get(Attempt, attempt.id))
    db.session.commit()
    assert again.changes == [] and _events(certificate) == ["issue", "revoke"]  # idempotent

    _set_single_key(cert_exam, "B")
    services.regrade(cert_exam, dry_run=False, actor=org["admin"])
    db.session.commit()
    db.session.expire_all()
    certificate = certs.for_attempt(attempt.id)
    assert not certificate.is_revoked and certificate.display_code == code and _count() == 1
    assert _events(certificate) == ["issue", "revoke", "reinstate"]
    assert "证书有效" in client.get(f"/verify/{code}").get_data(as_text=True)


# -- the public verify page ---------------------------------------------------------------------------

def test_verify_confirms_name_branch_what_and_when_without_the_username(client, org, cert_exam):
    attempt = sit(cert_exam, org["member"])
    code = certs.for_attempt(attempt.id).display_code
    for typed in (code, code.lower(), code.replace("-", "")):
        response = client.get(f"/verify/{typed}")
        html = response.get_data(as_text=True)
        assert response.status_code == 200 and 'id="verify-valid"' in html
        assert "刘志强" in html and "综采一队党支部" in html and "党章党规知识测试" in html
        assert "4.0 分（满分 4.0 分）" in html and code in html
        assert ">member<" not in html and "member" not in re.sub(r"<[^>]+>", "", html)
    assert client.get(f"/verify?code={code}").headers["Location"].endswith(f"/verify/{code}")
    assert client.get(f"/verify?code={code.lower().replace('-', ' ')}").headers["Location"].endswith(f"/verify/{code}")
    typed = client.get("/verify?code=../../etc/passwd")
    assert typed.status_code == 404 and "没有这份证书" in typed.get_data(as_text=True)
    assert client.get("/verify").status_code == 200


@pytest.mark.parametrize("typed", ["AAAA-BBBB-CCCC", "ABCD", "x" * 5000, "<script>alert(1)", "%00",
                                   "党党党党党党党党党党党党", "0000-1111-IIII", "'; drop table certificate;--"])
def test_verify_says_plainly_that_no_such_certificate_exists(client, org, typed):
    response = client.get("/verify/" + typed)
    html = response.get_data(as_text=True)
    assert response.status_code in (400, 404)
    if response.status_code == 404:
        assert "没有这份证书" in html and "<script>alert" not in html
        assert len(html) < 20000  # the typed input is shown cut short


def test_verify_is_rate_limited(app_factory, make):
    app = app_factory(VERIFY_LIMIT="3 per minute")
    client = app.test_client()
    statuses = [client.get("/verify/AAAA-BBBB-CCCC").status_code for _i in range(5)]
    assert statuses[:3] == [404] * 3 and statuses[3:] == [429, 429]


# -- the PDF and who may have it -----------------------------------------------------------------------

def test_the_pdf_states_who_what_when_and_the_code(client, auth, org, cert_exam):
    clock.pin(dt.datetime(2026, 6, 1, 2, 0))
    try:
        attempt = sit(cert_exam, org["member"])
    finally:
        clock.pin(None)
    code = certs.for_attempt(attempt.id).display_code
    auth.login("member")
    response = client.get(f"/certificates/{code}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    data = response.data
    assert data.startswith(b"%PDF-") and b"/MediaBox [ 0 0 595.2756 841.8898 ]" in data  # A4
    assert b"/Encoding /UniGB-UCS2-H" in data and b"FontFile" not in data  # Chinese without an embedded font
    text = pdf_text(data)
    for expected in ("刘志强", "综采一队党支部", "党章党规知识测试", "测试矿党委", "2026年6月1日", code,
                     f"http://localhost/verify/{code}", "4.0 分（满分 4.0 分）"):
        assert expected in text, expected
    assert f"/URI (http://localhost/verify/{code})".encode() in data  # the QR code is a link too


def test_pdftotext_reads_the_chinese_when_poppler_is_installed(client, auth, org, cert_exam):
    import shutil
    import subprocess

    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) is not installed")
    attempt = sit(cert_exam, org["member"])
    code = certs.for_attempt(attempt.id).display_code
    auth.login("member")
    out = subprocess.run(["pdftotext", "-", "-"], input=client.get(f"/certificates/{code}.pdf").data,
                         capture_output=True, check=True).stdout.decode()
    assert "刘志强" in out and "合格证书" in out and code in out


@pytest.mark.parametrize("who,status", [("member", 200), ("other", 404), ("secretary", 200), ("admin", 200),
                                         ("secretary_jd", 404), ("lecturer", 404)])
def test_who_may_download_a_certificate(client, auth, api, make, org, cert_exam, who, status):
    make.user("secretary_jd", role="secretary", branch=org["other"].branch)
    make.user("lecturer", role="lecturer", branch=make.branch())
    attempt = sit(cert_exam, org["member"])
    code = certs.for_attempt(attempt.id).display_code
    auth.login(who)
    assert client.get(f"/certificates/{code}.pdf").status_code == status
    auth.logout()
    api.token(who)
    response = api.get(f"/certificates/{code}.pdf")
    assert response.status_code == status
    if status == 404:
        assert response.get_json()["error"]["code"] == "not_found"
        # the same answer as for a code that does not exist: nothing tells them it is there
        assert api.get("/certificates/AAAA-BBBB-CCCC.pdf").status_code == 404
    else:
        assert response.data.startswith(b"%PDF-")


def test_another_members_attempt_shows_no_certificate(api, org, cert_exam):
    attempt = sit(cert_exam, org["member"])
    api.token(org["other"])
    assert api.get(f"/attempts/{attempt.id}").status_code == 404
    assert api.get("/me/certificates").get_json() == []


def test_my_certificates_page_lists_and_links_the_download(client, auth, org, cert_exam):
    attempt = sit(cert_exam, org["member"])
    code = certs.for_attempt(attempt.id).display_code
    auth.login("member")
    html = client.get("/certificates").get_data(as_text=True)
    assert code in html and f"/certificates/{code}.pdf" in html and f"/verify/{code}" in html
    result = client.get(f"/attempts/{attempt.id}/result", follow_redirects=True).get_data(as_text=True)
    assert f"/certificates/{code}.pdf" in result
    auth.logout()
    auth.login("other")
    assert code not in client.get("/certificates").get_data(as_text=True)


# -- the year's 学时证明 ----------------------------------------------------------------------------------

def _hours(member, hours, when):
    course = Course(title="课", summary="", is_published=True)
    lesson = Lesson(course=course, title=f"第{when.day}讲", minutes=30, state="published", position=when.day)
    db.session.add_all([course, lesson])
    db.session.flush()
    db.session.add(LessonProgress(user_id=member.id, lesson_id=lesson.id, credited_seconds=1800,
                                  hours_credited=Decimal(hours), completed_at=when))
    db.session.commit()


def test_the_years_hours_certificate_once_the_target_is_reached(client, auth, org):
    member = org["member"]
    clock.pin(dt.datetime(2026, 6, 1, 2, 0))
    try:
        _hours(member, "31.5", dt.datetime(2026, 3, 1, 2, 0))
        auth.login("member")
        assert "学时证明" not in client.get("/certificates").get_data(as_text=True)
        assert _count() == 0
        _hours(member, "1", dt.datetime(2026, 5, 1, 2, 0))
        html = client.get("/certificates").get_data(as_text=True)
        client.get("/certificates")
        assert _count() == 1  # once a year, however often the page is opened
        certificate = db.session.scalar(select(Certificate))
        assert (certificate.kind, certificate.year, certificate.hours, certificate.target_hours) == (
            "hours", 2026, Decimal("32.50"), Decimal("32.00"))
        assert "学时证明" in html and certificate.display_code in html
        text = pdf_text(client.get(f"/certificates/{certificate.display_code}.pdf").data)
        assert "学时证明" in text and "2026 年度学习学时达到目标" in text and "32.5 学时（年度目标 32）" in text
        verify = client.get(f"/verify/{certificate.display_code}").get_data(as_text=True)
        assert "2026 年度学习学时达到目标" in verify
    finally:
        clock.pin(None)


def test_completing_the_lesson_that_reaches_the_target_issues_it(app_factory, make):
    app = app_factory(LEARNING_TARGET_HOURS={"member": 0.5}, COMPLETION_MIN_FRACTION=0)
    from pbschool.courses import services as courses

    with app.app_context():
        member = make.user("learner")
        course = Course(title="课", summary="", is_published=True)
        lesson = Lesson(course=course, title="第一讲", minutes=20, state="published", position=1)
        db.session.add_all([course, lesson])
        db.session.commit()
        courses.complete_lesson(member, lesson)
        db.session.commit()
        certificate = db.session.scalar(select(Certificate))
        assert certificate is not None and certificate.kind == "hours" and certificate.user_id == member.id


# -- codes ----------------------------------------------------------------------------------------------

def test_codes_are_random_typeable_and_normalised():
    codes = {certs.new_code() for _i in range(2000)}
    assert len(codes) == 2000
    assert all(len(c) == 12 and not set(c) & set("01ILO") for c in codes)
    assert certs.normalise_code(" abcd-efgh-jkmn ") == "ABCDEFGHJKMN"
    for bad in (None, 12, "", "ABCD-EFGH-JKM", "ABCD-EFGH-JKMN-P", "ABCD EFGH JKM0", "x" * 1000):
        assert certs.normalise_code(bad) is None
