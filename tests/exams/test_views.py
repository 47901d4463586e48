import datetime as dt
import io
import re

from openpyxl import load_workbook
from sqlalchemy import select

from pbschool import clock
from pbschool.exams import services
from pbschool.exams.models import Attempt, Exam, Question, QuestionBank
from pbschool.extensions import db
from tests.exams.conftest import T0, make_bank, make_exam, right_value
from tests.exams.test_importer import GOOD


def _sit(client, auth, make, exam, member=None):
    member = member or make.user("liuzq", name="刘志强")
    auth.login(member.username)
    page = client.get(f"/exams/{exam.id}")
    assert page.status_code == 200
    started = client.post(f"/exams/{exam.id}/start", data={"agreed": "y"})
    assert started.status_code == 302
    attempt_id = int(started.headers["Location"].rsplit("/", 1)[1])
    return member, attempt_id


def test_member_sees_open_exams_with_closing_time_and_attempts_left(client, auth, make, bank, pinned):
    make_exam(bank, closes_at=T0 + dt.timedelta(hours=3), max_attempts=2)
    make.user("liuzq")
    auth.login("liuzq")
    html = client.get("/exams").get_data(as_text=True)
    assert "党章党规知识测试" in html
    assert "2026-06-01 12:00" in html  # 04:00 UTC shown in Beijing time
    assert ">2<" in html
    home = client.get("/").get_data(as_text=True)
    assert "正在进行的考试" in home and "党章党规知识测试" in home


def test_home_counts_only_the_members_own_attempts(client, auth, make, bank, pinned):
    exam = make_exam(bank, closes_at=T0 + dt.timedelta(hours=3), max_attempts=2)
    _sit(client, auth, make, exam, member=make.user("zhangwd"))  # another member uses one of theirs
    assert "剩余 1 次" in client.get("/").get_data(as_text=True)
    auth.logout()
    member = make.user("liuzq")
    auth.login("liuzq")
    assert "剩余 2 次" in client.get("/").get_data(as_text=True)
    auth.logout()
    _sit(client, auth, make, exam, member=member)
    assert "剩余 1 次" in client.get("/").get_data(as_text=True)


def test_exam_list_queries_do_not_grow_with_the_exams(client, auth, make, bank, pinned, statements):
    member = make.user("liuzq")

    def page_statements():
        auth.login("liuzq")
        statements.clear()
        html = client.get("/exams").get_data(as_text=True)
        auth.logout()
        return len(statements), html

    exams = [make_exam(bank, closes_at=T0 + dt.timedelta(hours=3), max_attempts=3)]
    _sit(client, auth, make, exams[0], member=member)
    auth.logout()
    one, _html = page_statements()
    exams += [make_exam(bank, closes_at=T0 + dt.timedelta(hours=h), max_attempts=3) for h in (4, 5)]
    for exam in exams[1:]:
        _sit(client, auth, make, exam, member=member)
        auth.logout()
    three, html = page_statements()
    assert html.count("继续答题") == 3  # each exam's open attempt is found
    assert three == one


def test_sitting_page_works_without_javascript(client, auth, make, bank, pinned):
    exam = make_exam(bank, shuffle=True)
    member, attempt_id = _sit(client, auth, make, exam)
    page = client.get(f"/attempts/{attempt_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<meta name="csrf-token"' in html
    assert html.count('class="question card"') == 6
    assert "答题卡" in html and "已保存" in html
    assert "<script>" not in html  # the CSP forbids inline scripts; data lives in a JSON block
    for secret in ("预防为主", "1921"):
        assert secret not in html
    attempt = db.session.get(Attempt, attempt_id)
    form = {"action": "submit"}
    for slot in attempt.questions:
        value = right_value(slot)
        if isinstance(value, bool):
            value = "true" if value else "false"
        form[f"q{slot.question_id}"] = value
    done = client.post(f"/attempts/{attempt_id}/submit", data=form)
    assert done.status_code == 302 and done.headers["Location"].endswith("/result")
    result = client.get(f"/attempts/{attempt_id}/result").get_data(as_text=True)
    assert "12.0" in result and "通过" in result
    assert "正确答案" in result
    assert client.get(f"/attempts/{attempt_id}").status_code == 302  # finished: to the result


def test_plain_form_can_save_without_submitting(client, auth, make, bank, pinned):
    exam = make_exam(bank)
    _member, attempt_id = _sit(client, auth, make, exam)
    attempt = db.session.get(Attempt, attempt_id)
    single = next(s for s in attempt.questions if s.question.type == "single")
    saved = client.post(f"/attempts/{attempt_id}/submit", data={"action": "save", f"q{single.question_id}": "B"})
    assert saved.status_code == 302
    assert db.session.get(Attempt, attempt_id).state == "in_progress"
    assert 'value="B" checked' in client.get(f"/attempts/{attempt_id}").get_data(as_text=True)


def test_time_up_page_shows_the_result(client, auth, make, bank, pinned):
    exam = make_exam(bank, time_limit=60)
    _member, attempt_id = _sit(client, auth, make, exam)
    clock.advance(minutes=3)
    page = client.get(f"/attempts/{attempt_id}", follow_redirects=True).get_data(as_text=True)
    assert "自动交卷" in page
    assert "0.0" in page


def test_other_member_cannot_see_my_attempt(client, auth, make, bank, pinned):
    exam = make_exam(bank)
    _member, attempt_id = _sit(client, auth, make, exam)
    client.post("/logout")
    make.user("other")
    auth.login("other")
    assert client.get(f"/attempts/{attempt_id}").status_code == 404
    assert client.get(f"/attempts/{attempt_id}/result").status_code == 404
    assert client.post(f"/attempts/{attempt_id}/submit").status_code == 404


def test_wrong_answer_book_lists_what_i_got_wrong(client, auth, make, bank, pinned):
    exam = make_exam(bank)
    _member, attempt_id = _sit(client, auth, make, exam)
    client.post(f"/attempts/{attempt_id}/submit", data={"action": "submit"})
    html = client.get("/exams/wrong-answers").get_data(as_text=True)
    assert "错题本" in html
    assert html.count("review-item wrong") == 6
    assert "预防为主" in html  # after submitting, the answers may be shown


def test_wrong_book_hides_answers_of_score_only_exams(client, auth, make, bank, pinned):
    exam = make_exam(bank, review="score")
    _member, attempt_id = _sit(client, auth, make, exam)
    client.post(f"/attempts/{attempt_id}/submit", data={"action": "submit"})
    assert "预防为主" not in client.get("/exams/wrong-answers").get_data(as_text=True)
    assert "预防为主" not in client.get(f"/attempts/{attempt_id}/result").get_data(as_text=True)


def test_lecturer_keeps_banks_and_member_cannot(client, auth, make):
    make.user("member1")
    auth.login("member1")
    assert client.get("/admin/banks").status_code == 403
    client.post("/logout")
    make.user("teacher", role="lecturer")
    auth.login("teacher")
    assert client.get("/admin/banks").status_code == 200
    template = client.get("/admin/banks/template.xlsx")
    assert template.status_code == 200
    assert load_workbook(io.BytesIO(template.data)).active["A1"].value == "题型"
    imported = client.post("/admin/banks/import", data={"bank": "党章题库",
                                                         "file": (io.BytesIO(GOOD.encode()), "q.csv")},
                           content_type="multipart/form-data")
    assert "新增 5 题" in imported.get_data(as_text=True)
    bad_file = io.BytesIO("题型,题干,答案\n单选,题,Z\n".encode())
    bad = client.post("/admin/banks/import", data={"bank": "党章题库", "file": (bad_file, "q.csv")},
                      content_type="multipart/form-data")
    assert "导入被拒绝" in bad.get_data(as_text=True)
    bank = db.session.scalar(select(QuestionBank))
    assert "党的根本宗旨" in client.get(f"/admin/banks/{bank.id}").get_data(as_text=True)
    export = client.get(f"/admin/banks/{bank.id}/export.xlsx")
    assert export.status_code == 200


def test_question_form_adds_and_edits_with_errors_by_the_field(client, auth, make):
    bank = make_bank(questions=[])
    bank.created_by_id = make.user("teacher", role="lecturer").id  # a lecturer edits only their own banks
    db.session.commit()
    auth.login("teacher")
    form = {"type": "single", "stem": "新题？", "option_A": "甲", "option_B": "乙", "answer": "C", "score": "1",
            "difficulty": "3"}
    refused = client.post(f"/admin/banks/{bank.id}/questions/new", data=form)
    assert refused.status_code == 200
    assert "单选题答案应为一个选项字母" in refused.get_data(as_text=True)
    assert 'value="新题？"' in refused.get_data(as_text=True) or "新题？" in refused.get_data(as_text=True)
    assert client.post(f"/admin/banks/{bank.id}/questions/new", data={**form, "answer": "B"}).status_code == 302
    question = db.session.scalar(select(Question))
    assert question.answer == "B"
    page = client.get(f"/admin/questions/{question.id}").get_data(as_text=True)
    assert 'value="B"' in page
    edited = client.post(f"/admin/questions/{question.id}", data={**form, "answer": "A", "is_active": "y"})
    assert edited.status_code == 302
    db.session.expire_all()
    assert db.session.get(Question, question.id).answer == "A"


def test_admin_creates_an_exam_with_the_form(client, auth, make, bank):
    make.user("boss", role="admin")
    auth.login("boss")
    assert client.get("/admin/exams/new").status_code == 200
    data = {"title": "七一测试", "time_limit_minutes": "20", "max_attempts": "1", "grading_method": "highest",
            "pass_score": "60", "points_on_pass": "2", "review": "explanations", "review_when": "submit",
            "audience": "all", "opens_at": "2026-07-01T08:00", "closes_at": "2026-07-01T20:00",
            "sections-0-bank": str(bank.id), "sections-0-count": "50", "sections-0-points_each": "2",
            "sections-0-difficulty": ""}
    refused = client.post("/admin/exams/new", data=data)
    assert "不够抽" in refused.get_data(as_text=True)
    unknown = client.post("/admin/exams/new", data={**data, "sections-0-bank": "x'1", "sections-0-count": "4"})
    assert unknown.status_code == 200 and "找不到题库" in unknown.get_data(as_text=True)
    created = client.post("/admin/exams/new", data={**data, "sections-0-count": "4"})
    assert created.status_code == 302, created.get_data(as_text=True)
    exam = db.session.scalar(select(Exam))
    assert exam.opens_at == dt.datetime(2026, 7, 1, 0, 0)  # 08:00 Beijing = 00:00 UTC
    assert exam.max_score == 8
    client.post("/logout")
    make.user("sec", role="secretary")
    auth.login("sec")
    assert client.get("/admin/exams/new").status_code == 403


def _finished_attempts(make, exam, branches):
    users = []
    for branch in branches:
        user = make.user(branch=branch)
        attempt = services.start_attempt(exam, user)
        for slot in attempt.questions[:3]:
            services.save_answer(attempt, slot.question_id, right_value(slot))
        services.submit_attempt(attempt)
        users.append(user)
    db.session.commit()
    return users


def test_results_by_branch_scope_export_and_statistics(client, auth, make, bank, pinned):
    exam = make_exam(bank, pass_score=40)
    one, two = make.branch(name="综采一队党支部"), make.branch(name="机电科党支部")
    _finished_attempts(make, exam, [one, one, two])
    make.user("sec", role="secretary", branch=one)
    auth.login("sec")
    html = client.get(f"/admin/exams/{exam.id}/results").get_data(as_text=True)
    assert "综采一队党支部" in html and "机电科党支部" not in html
    assert "<svg" in html
    assert client.get(f"/admin/exams/{exam.id}/results?branch={two.id}").status_code == 403
    export = client.get(f"/admin/exams/{exam.id}/results?format=xlsx")
    rows = list(load_workbook(io.BytesIO(export.data)).active.iter_rows(values_only=True))
    assert len(rows) == 3 and rows[1][0] == "综采一队党支部"
    stats = client.get(f"/admin/exams/{exam.id}/statistics").get_data(as_text=True)
    assert "难度系数" in stats and "区分度" in stats
    sheet = client.get(f"/admin/exams/{exam.id}/statistics?format=xlsx")
    assert load_workbook(io.BytesIO(sheet.data)).active["E1"].value == "难度系数%"
    client.post("/logout")
    make.user("boss", role="admin")
    auth.login("boss")
    html = client.get(f"/admin/exams/{exam.id}/results").get_data(as_text=True)
    assert "机电科党支部" in html
    assert re.search(r"合计</td><td[^>]*>3</td>", html)
    client.post("/logout")
    make.user("m9")
    auth.login("m9")
    assert client.get(f"/admin/exams/{exam.id}/results").status_code == 403


def test_marking_short_answers_finalises_the_score(client, auth, make, pinned):
    bank = make_bank(questions=[], short=True)
    exam = make_exam(bank, pass_score=50)
    member = make.user(name="陈晓燕")
    attempt = services.start_attempt(exam, member)
    slot = attempt.questions[0]
    services.save_answer(attempt, slot.question_id, "学党章党规")
    services.submit_attempt(attempt)
    bank.created_by_id = make.user("teacher", role="lecturer").id  # a lecturer marks their own bank's exams
    db.session.commit()
    auth.login("teacher")
    page = client.get(f"/admin/exams/{exam.id}/marking?hide=1").get_data(as_text=True)
    assert "学党章党规" in page and "陈晓燕" not in page
    assert "陈晓燕" in client.get(f"/admin/exams/{exam.id}/marking").get_data(as_text=True)
    too_high = client.post(f"/admin/exams/{exam.id}/marking", data={f"score-{slot.id}": "9"}, follow_redirects=True)
    assert "超出允许范围" in too_high.get_data(as_text=True)
    client.post(f"/admin/exams/{exam.id}/marking", data={f"score-{slot.id}": "1.5", f"feedback-{slot.id}": "要点齐全"})
    attempt = db.session.get(Attempt, attempt.id)
    assert attempt.state == "submitted" and attempt.score == 1.5 and attempt.passed is True


def test_regrade_shows_a_dry_run_before_it_changes_anything(client, auth, make, bank, pinned):
    exam = make_exam(bank)
    member = make.user()
    attempt = services.start_attempt(exam, member)
    single = next(s for s in attempt.questions if s.question.type == "single")
    wrong = next(k for k in "ABCD" if k != single.question.answer)
    services.save_answer(attempt, single.question_id, single.question.kind.display(wrong, single.option_order))
    services.submit_attempt(attempt)
    single.question.answer = wrong
    db.session.commit()
    make.user("boss", role="admin")
    auth.login("boss")
    dry = client.get(f"/admin/exams/{exam.id}/regrade").get_data(as_text=True)
    assert "预演" in dry and "2.0" in dry
    assert db.session.get(Attempt, attempt.id).score == 0
    client.post(f"/admin/exams/{exam.id}/regrade")
    assert db.session.get(Attempt, attempt.id).score == 2


def test_admin_grants_extra_time(client, auth, make, bank, pinned):
    exam = make_exam(bank)
    make.user("slow")
    make.user("boss", role="admin")
    auth.login("boss")
    response = client.post(f"/admin/exams/{exam.id}/overrides", data={"username": "slow", "extra_minutes": "10"})
    assert response.status_code == 302
    assert "10 分钟" in client.get(f"/admin/exams/{exam.id}").get_data(as_text=True)
    assert "找不到本支部的党员" in client.post(f"/admin/exams/{exam.id}/overrides",
                                       data={"username": "nobody", "extra_minutes": "5"}).get_data(as_text=True)


def test_admin_changes_the_window_and_unpublishes(client, auth, make, bank, pinned):
    exam = make_exam(bank)
    make.user("liuzq")
    make.user("boss", role="admin")
    auth.login("boss")
    page = client.get(f"/admin/exams/{exam.id}/edit")
    assert page.status_code == 200
    data = {"title": "改名后的测试", "max_attempts": "2", "review": "answers", "review_when": "close",
            "opens_at": "2026-06-01T08:00", "closes_at": ""}
    refused = client.post(f"/admin/exams/{exam.id}/edit", data=data)
    assert "需要设置结束时间" in refused.get_data(as_text=True)
    saved = client.post(f"/admin/exams/{exam.id}/edit", data={**data, "closes_at": "2026-06-02T08:00"})
    assert saved.status_code == 302
    exam = db.session.get(Exam, exam.id)
    assert exam.title == "改名后的测试" and exam.max_attempts == 2 and not exam.is_published
    assert exam.closes_at == dt.datetime(2026, 6, 2, 0, 0)
    client.post("/logout")
    auth.login("liuzq")
    assert "改名后的测试" not in client.get("/exams").get_data(as_text=True)
    assert client.get(f"/exams/{exam.id}").status_code == 404


def test_staff_see_a_members_answer_sheet_within_their_scope(client, auth, make, bank, pinned):
    exam = make_exam(bank, review="score")
    one, two = make.branch(), make.branch()
    users = _finished_attempts(make, exam, [one, two])
    mine = db.session.scalar(select(Attempt).where(Attempt.user_id == users[0].id))
    other = db.session.scalar(select(Attempt).where(Attempt.user_id == users[1].id))
    make.user("sec", role="secretary", branch=one)
    auth.login("sec")
    html = client.get(f"/admin/attempts/{mine.id}").get_data(as_text=True)
    # the member's answers, but the key only once the exam has closed (it has no close: never while open)
    assert "作答" in html and "正确答案" not in html
    assert client.get(f"/admin/attempts/{other.id}").status_code == 403
    client.post("/logout")
    make.user("boss", role="admin")
    auth.login("boss")
    html = client.get(f"/admin/attempts/{mine.id}").get_data(as_text=True)
    assert "正确答案" in html and "预防为主" in html  # admins see answers whatever the member's setting
    client.post("/logout")
    auth.login(users[0].username)
    assert client.get(f"/admin/attempts/{mine.id}").status_code == 403
