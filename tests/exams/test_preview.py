"""Staff who can read an exam's answers sit it as a preview: graded and shown to them, never in
results, statistics, reports, boards or points."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from pbschool import auth as rules
from pbschool.exams import services, stats
from pbschool.exams.models import Attempt, BankGrant
from pbschool.extensions import db
from pbschool.points.models import LedgerEntry
from tests.exams.conftest import QUESTIONS, T0, correct_answers, make_bank, make_exam


def ledger_points(user):
    return db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.points), 0))
                             .where(LedgerEntry.user_id == user.id))


def sit_right(api, user, exam):
    """Start and submit with every answer right, by the API, as the user would."""
    api.token(user)
    started = api.post(f"/exams/{exam.id}/attempts").get_json()
    attempt_id = started["attempt_id"]
    for qid, value in correct_answers(started["questions"], attempt_id).items():
        assert api.put(f"/attempts/{attempt_id}/answers/{qid}", json={"answer": value}).status_code == 200
    result = api.post(f"/attempts/{attempt_id}/submit").get_json()
    return db.session.get(Attempt, attempt_id), result


def test_an_admin_who_sits_an_exam_is_neither_ranked_nor_paid(app, api, make, bank, pinned):
    """The issue: an admin sat an exam with the key in hand, was ranked with the members and paid."""
    exam = make_exam(bank, points=5)
    branch = make.branch()
    admin = make.user("boss", role="admin", branch=branch)
    member = make.user("m1", branch=branch)
    sit_right(api, member, exam)
    attempt, result = sit_right(api, admin, exam)
    assert result["passed"] is True and result["points_awarded"] == 0
    assert attempt.is_preview
    assert ledger_points(admin) == 0 and ledger_points(member) == 5
    rows = api.get(f"/exams/{exam.id}/results").get_json()
    assert [r["username"] for r in rows] == ["m1"]


def test_who_sits_as_preview(app, make, pinned):
    authored = make_bank("作者的题库")
    other = make_bank("别人的题库", questions=QUESTIONS[:3])
    author, granted, stranger = (make.user(role="lecturer") for _ in range(3))
    authored.created_by_id = author.id
    db.session.add(BankGrant(bank_id=other.id, user_id=granted.id))
    db.session.commit()
    exam = make_exam(authored, count=2)
    other_exam = make_exam(other, count=2)
    assert rules.sits_as_preview(make.user(role="admin"), exam)
    assert rules.sits_as_preview(make.user(role="secretary"), exam)
    assert rules.sits_as_preview(author, exam) and not rules.sits_as_preview(author, other_exam)
    assert rules.sits_as_preview(granted, other_exam) and not rules.sits_as_preview(granted, exam)
    assert not rules.sits_as_preview(stranger, exam)
    assert not rules.sits_as_preview(make.user(), exam)


def test_previews_stay_out_of_results_statistics_and_reports(client, auth, api, make, bank, pinned):
    from pbschool.reports import figures

    exam = make_exam(bank, points=5)
    branch = make.branch(code="ZC1")
    make.user("admin0", role="admin")
    secretary = make.user("shuji7", role="secretary", branch=branch)
    member = make.user("m1", branch=branch)
    sit_right(api, member, exam)
    preview, _result = sit_right(api, secretary, exam)
    assert preview.is_preview and ledger_points(secretary) == 0
    attempts = services.results_query(exam, secretary)
    assert [a.user.username for a in attempts] == ["m1"]
    counted = services.counted_attempts(exam, [preview, *attempts])
    assert list(counted) == [member.id]
    assert sum(row["n"] for row in stats.question_stats([preview])) == 0
    start, end = T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=1)
    assert set(figures.exam_counts_by_user(start, end)) == {member.id}
    rows = figures.member_rows(branch.id)
    assert {r["user"].username: bool(r["last_exam"]) for r in rows} == {"shuji7": False, "m1": True}
    auth.login("admin0")
    html = client.get(f"/admin/exams/{exam.id}/results").get_data(as_text=True)
    assert "m1" in html and "shuji7" not in html
    book = client.get(f"/admin/exams/{exam.id}/results?format=xlsx")
    import io

    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(book.data)).active
    assert [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["m1"]


def test_the_previewer_sees_their_result_marked_as_a_preview(client, auth, make, bank, pinned):
    exam = make_exam(bank, points=5)
    make.user("boss", role="admin", branch=make.branch())
    auth.login("boss")
    response = client.post(f"/exams/{exam.id}/start", data={"agreed": "y"})
    attempt_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    assert "预览作答" in client.get(f"/attempts/{attempt_id}").get_data(as_text=True)
    client.post(f"/attempts/{attempt_id}/submit")
    page = client.get(f"/attempts/{attempt_id}/result").get_data(as_text=True)
    assert "预览作答，不计入成绩和积分" in page


def test_a_member_attempt_is_not_a_preview(app, make, bank, pinned):
    exam = make_exam(bank)
    attempt = services.start_attempt(exam, make.user())
    assert attempt.is_preview is False


@pytest.mark.parametrize("role", ["lecturer", "secretary", "admin"])
def test_a_preview_pass_never_pays(app, make, pinned, role):
    bank = make_bank()
    user = make.user(role=role, branch=make.branch())
    if role == "lecturer":
        bank.created_by_id = user.id
        db.session.commit()
    exam = make_exam(bank, points=5)
    attempt = services.start_attempt(exam, user)
    paper = services.paper(attempt)
    for qid, value in correct_answers(paper, attempt.id).items():
        services.save_answer(attempt, qid, value)
    services.submit_attempt(attempt)
    db.session.commit()
    assert attempt.is_preview and attempt.passed is True and attempt.points_awarded == 0
    assert ledger_points(user) == 0
