"""Answer keys: secretaries see branch papers without the key until the exam has closed; lecturers
read only the banks they author or are granted; admins see everything."""

import datetime as dt
import io

import pytest
from sqlalchemy import select

from pbschool import auth as rules
from pbschool.accounts.models import AuditLog
from pbschool.exams import services
from pbschool.exams.models import BankGrant, Question
from pbschool.extensions import db
from tests.exams.conftest import T0, make_bank, make_exam, right_value

CLOSES = T0 + dt.timedelta(days=2)


def finished_attempt(exam, member):
    attempt = services.start_attempt(exam, member)
    for slot in attempt.questions:
        services.save_answer(attempt, slot.question_id, right_value(slot))
    services.submit_attempt(attempt)
    db.session.commit()
    return attempt


def key_texts(attempt):
    """What gives the key away on the staff page: each question's correct answer."""
    return [s.question.kind.describe(s.question, s.question.answer, s.option_order) for s in attempt.questions
            if s.question.type in ("single", "multiple")]


def test_a_secretary_does_not_see_the_key_while_the_exam_is_open(client, auth, make, bank, pinned):
    """The issue: a secretary opened a branch member's paper with every correct answer while the exam
    was still open and the member had attempts left."""
    bank.questions[0].explanation = "党章总纲的解析"
    db.session.commit()
    exam = make_exam(bank, max_attempts=3, closes_at=CLOSES)
    branch = make.branch()
    make.user("sec", role="secretary", branch=branch)
    attempt = finished_attempt(exam, make.user(branch=branch))
    auth.login("sec")
    html = client.get(f"/admin/attempts/{attempt.id}").get_data(as_text=True)
    assert "正确答案" not in html and "党章总纲的解析" not in html
    assert "考试结束后" in html
    assert all(f"<strong>{text}</strong>" not in html for text in key_texts(attempt))


def test_the_secretary_sees_the_key_once_the_exam_has_closed(client, auth, make, bank, pinned):
    from pbschool import clock

    exam = make_exam(bank, max_attempts=3, closes_at=CLOSES)
    branch = make.branch()
    make.user("sec", role="secretary", branch=branch)
    attempt = finished_attempt(exam, make.user(branch=branch))
    clock.pin(CLOSES + dt.timedelta(minutes=1))
    auth.login("sec")
    html = client.get(f"/admin/attempts/{attempt.id}").get_data(as_text=True)
    assert "正确答案" in html


def test_an_exam_without_a_close_shows_no_key_to_a_secretary_while_it_is_open(app, make, bank, pinned):
    exam = make_exam(bank)
    secretary = make.user(role="secretary", branch=make.branch())
    assert not rules.can_see_answer_key(secretary, exam)
    assert rules.can_see_answer_key(make.user(role="admin"), exam)
    exam.is_published = False
    assert rules.can_see_answer_key(secretary, exam)


def test_an_admin_sees_the_key_at_any_time(client, auth, make, bank, pinned):
    exam = make_exam(bank, max_attempts=3, closes_at=CLOSES)
    attempt = finished_attempt(exam, make.user())
    make.user("boss", role="admin")
    auth.login("boss")
    assert "正确答案" in client.get(f"/admin/attempts/{attempt.id}").get_data(as_text=True)


# -- banks ------------------------------------------------------------------------------------------

def test_a_lecturer_cannot_download_a_bank_they_did_not_write(client, auth, make, bank):
    """The issue: a lecturer downloaded any bank's answers."""
    make.user("teacher", role="lecturer")
    auth.login("teacher")
    response = client.get(f"/admin/banks/{bank.id}/export.xlsx")
    assert response.status_code == 403


def test_a_lecturer_works_only_on_banks_they_author_or_are_granted(client, auth, make):
    mine, granted, theirs = make_bank("我的题库"), make_bank("授权题库"), make_bank("别人的题库")
    teacher = make.user("teacher", role="lecturer")
    mine.created_by_id = teacher.id
    db.session.add(BankGrant(bank_id=granted.id, user_id=teacher.id))
    db.session.commit()
    auth.login("teacher")
    listing = client.get("/admin/banks").get_data(as_text=True)
    assert "我的题库" in listing and "授权题库" in listing and "别人的题库" not in listing
    for bank in (mine, granted):
        assert client.get(f"/admin/banks/{bank.id}").status_code == 200
        assert client.get(f"/admin/banks/{bank.id}/export.xlsx").status_code == 200
        assert client.get(f"/admin/questions/{bank.questions[0].id}").status_code == 200
    question = theirs.questions[0]
    stem = question.stem
    assert client.get(f"/admin/banks/{theirs.id}").status_code == 403
    assert client.get(f"/admin/banks/{theirs.id}/questions/new").status_code == 403
    assert client.get(f"/admin/questions/{question.id}").status_code == 403
    posted = client.post(f"/admin/questions/{question.id}",
                         data={"type": "single", "stem": "改过的题干", "option_A": "甲", "option_B": "乙",
                               "answer": "A", "score": "1", "difficulty": "3"})
    assert posted.status_code == 403
    assert db.session.get(Question, question.id).stem == stem


def test_a_lecturer_cannot_import_into_a_bank_they_may_not_edit(client, auth, make):
    theirs = make_bank("别人的题库")
    make.user("teacher", role="lecturer")
    auth.login("teacher")
    data = "题型,题干,选项A,选项B,答案\n单选,新的题目,甲,乙,A\n".encode()
    response = client.post("/admin/banks/import", data={"bank": theirs.name,
                                                        "file": (io.BytesIO(data), "q.csv")},
                           content_type="multipart/form-data")
    assert response.status_code == 403
    assert len(db.session.get(type(theirs), theirs.id).questions) == len(theirs.questions)
    fresh = client.post("/admin/banks/import", data={"bank": "新题库", "file": (io.BytesIO(data), "q.csv")},
                        content_type="multipart/form-data")
    assert fresh.status_code == 200
    created = services.find_bank("新题库")
    assert created is not None and client.get(f"/admin/banks/{created.id}").status_code == 200


def test_an_admin_grants_and_revokes_a_lecturer(client, auth, make):
    bank = make_bank("别人的题库")
    teacher = make.user("teacher", role="lecturer")
    make.user("boss", role="admin")
    auth.login("boss")
    assert "teacher" in client.get(f"/admin/banks/{bank.id}").get_data(as_text=True)
    client.post(f"/admin/banks/{bank.id}/grants", data={"username": "teacher"})
    assert rules.can_edit_bank(teacher, bank)
    again = client.post(f"/admin/banks/{bank.id}/grants", data={"username": "teacher"}, follow_redirects=True)
    assert again.status_code == 200
    assert db.session.scalar(select(BankGrant).where(BankGrant.bank_id == bank.id)) is not None
    refused = client.post(f"/admin/banks/{bank.id}/grants", data={"username": "nobody"}, follow_redirects=True)
    assert "找不到授课人" in refused.get_data(as_text=True)
    client.post(f"/admin/banks/{bank.id}/grants/{teacher.id}/revoke")
    assert not rules.can_edit_bank(teacher, bank)
    actions = db.session.scalars(select(AuditLog.action).where(AuditLog.action.like("bank.%"))).all()
    assert "bank.grant" in actions and "bank.revoke" in actions
    auth.logout()
    auth.login("teacher")
    assert client.post(f"/admin/banks/{bank.id}/grants", data={"username": "teacher"}).status_code == 403


@pytest.mark.parametrize("role", ["member", "secretary"])
def test_only_admins_and_lecturers_may_edit_banks(app, make, role):
    bank = make_bank()
    assert not rules.can_edit_bank(make.user(role=role), bank)
    assert rules.can_edit_bank(make.user(role="admin"), bank)
