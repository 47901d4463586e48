"""My record (一人一档): the page and GET /api/v1/me/record.xlsx, the same reader as the staff export;
only my own."""

import datetime as dt
import io
from decimal import Decimal

from openpyxl import load_workbook

from pbschool import clock
from pbschool.certificates import services as certs
from pbschool.courses.models import Course, Lesson, LessonProgress
from pbschool.extensions import db
from pbschool.meetings import services as meetings
from tests.certificates.conftest import sit


def _history(org, cert_exam):
    member = org["member"]
    clock.pin(dt.datetime(2026, 6, 10, 2, 0))
    course = Course(title="课", summary="", is_published=True)
    lesson = Lesson(course=course, title="安全生产第一讲", minutes=30, state="published", position=1)
    db.session.add_all([course, lesson])
    db.session.flush()
    db.session.add(LessonProgress(user_id=member.id, lesson_id=lesson.id, credited_seconds=1800,
                                  hours_credited=Decimal("1"), completed_at=dt.datetime(2025, 12, 31, 17, 0)))
    db.session.commit()
    failed = sit(cert_exam, member, right=False) if cert_exam.max_attempts > 1 else None
    passed = sit(cert_exam, member)
    meetings.record_meeting(member.branch, "theme_day", dt.date(2026, 6, 5), "主题党日：井下安全", [member.id],
                            actor=org["secretary"])
    db.session.commit()
    return member, failed, passed


def test_my_record_page_shows_every_part(client, auth, org, cert_exam):
    cert_exam.max_attempts = 2
    db.session.commit()
    try:
        member, failed, passed = _history(org, cert_exam)
        code = certs.for_attempt(passed.id).display_code
        auth.login("member")
        html = client.get("/me/record").get_data(as_text=True)
    finally:
        clock.pin(None)
    for expected in ("我的档案", "刘志强", "综采一队党支部", "2026 年", "安全生产第一讲", "党章党规知识测试",
                     "最好成绩", "未通过", "主题党日：井下安全", "主题党日", code, "/api/v1/me/record.xlsx"):
        assert expected in html, expected
    # 17:00 UTC on 31 December is already 1 January in Beijing: the hour counts in 2026
    assert "2025 年" not in html


def test_my_record_xlsx_is_mine_only(client, auth, api, org, cert_exam):
    try:
        member, _failed, passed = _history(org, cert_exam)
        code = certs.for_attempt(passed.id).display_code
        api.token(member)
        response = api.get("/me/record.xlsx")
    finally:
        clock.pin(None)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["概况", "学时", "年度学时", "考试", "积分", "月度积分", "组织生活", "评星", "证书"]
    rows = {name: [[c.value for c in row] for row in book[name].iter_rows(min_row=2)] for name in book.sheetnames}
    assert ["姓名", "刘志强"] in rows["概况"]
    assert rows["年度学时"] == [[2026, 1, 1]]
    assert rows["考试"][0][:2] == ["党章党规知识测试", 1] and rows["考试"][0][6:] == ["是", "是"]
    assert rows["组织生活"] == [[dt.datetime(2026, 6, 5), "主题党日", "主题党日：井下安全"]]
    assert rows["证书"][0][0] == code and rows["证书"][0][3] == "有效"
    assert any(period == "2026-06" for period, _points in rows["月度积分"])
    # another member's file holds nothing of this one's
    api.token(org["other"])
    other = load_workbook(io.BytesIO(api.get("/me/record.xlsx").data))
    assert ["姓名", "孙丽娟"] in [[c.value for c in row] for row in other["概况"].iter_rows(min_row=2)]
    assert other["证书"].max_row == 1 and other["组织生活"].max_row == 1
    # no id parameter for members: the query string is ignored, the staff route still decides per member
    assert b"PK" == api.get(f"/me/record.xlsx?user_id={member.id}").data[:2]
    auth.login("other")
    assert client.get(f"/reports/members/{member.id}/record.xlsx").status_code == 403
    assert client.get("/api/v1/me/record.xlsx").status_code == 200  # the page's link works by session too


def test_the_record_needs_a_sign_in(client):
    assert client.get("/me/record").status_code == 302
    assert client.get("/api/v1/me/record.xlsx").status_code == 401
