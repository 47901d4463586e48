"""Issue 15: the reports as people see them — the branch page in one piece, charts with their
tables, and spreadsheets that open well in Excel."""

import datetime as dt
import io
import re

import pytest
from openpyxl import load_workbook

from pbschool import clock
from pbschool.courses.models import Course, Lesson, LessonProgress
from pbschool.extensions import db
from pbschool.meetings import services as meetings
from pbschool.points import services as points


@pytest.fixture
def org(app, make):
    clock.pin(dt.datetime(2026, 1, 2, 2, 0))
    people = make.organisation()
    clock.pin(dt.datetime(2026, 4, 10, 2, 0))
    points.record_event(people["member"], "exam_passed", "attempt:1", points=6,
                        occurred_at=dt.datetime(2026, 2, 10, 2, 0))
    meetings.record_meeting(people["member"].branch, "committee", dt.date(2026, 3, 5), "支委会",
                            [people["member"].id], actor=people["secretary"])
    db.session.commit()
    yield people
    clock.pin(None)


def _title(html):
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1)


def test_the_branch_page_has_a_plain_title_and_its_charts_below_the_header(org, client, auth):
    """Reproduction: the 12-month charts were included inside the title and head blocks, so they
    rendered above the site header and the tab title was ~4,800 characters of raw HTML."""
    auth.login("secretary")
    html = client.get("/reports/branch").get_data(as_text=True)
    title = _title(html)
    assert "<" not in title and len(title) < 80 and "综采一队党支部" in title
    head = html[:html.index("<body")]
    assert "<svg" not in head and "近 12 个月" not in head
    assert html.index('class="chart line-chart"') > html.index("</header>")  # (the header's own icons aside)
    assert html.count('class="chart line-chart"') == 3  # points, hours, pass rate
    table = html[html.index('id="series"'):]
    assert "查看数据表" in table and "/reports/branch.xlsx" in table


def test_the_overview_draws_branches_as_bars_and_months_as_lines(org, client, auth):
    auth.login("admin")
    html = client.get("/reports/overview").get_data(as_text=True)
    assert html.count('class="chart bar-chart"') == 3 and html.count('class="chart line-chart"') == 3
    bars = html[html.index('id="branches-chart"'):html.index('id="series"')]
    assert "综采一队党支部" in bars and "机电科党支部" in bars


def test_month_labels_are_short_and_every_label_stays_inside_the_chart(org, client, auth):
    from pbschool import charts

    periods = [f"2025-{m:02d}" for m in range(5, 13)] + [f"2026-{m:02d}" for m in range(1, 5)]
    svg = str(charts.line_svg(periods, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "t"))
    width, height = (float(v) for v in re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg).groups())
    xs = sorted(float(x) for x, label in re.findall(
        r'<text x="([\d.]+)" y="[\d.]+" text-anchor="middle"[^>]*>(\d{1,2})</text>', svg))
    assert len(xs) >= 12 and min(b - a for a, b in zip(xs, xs[1:], strict=False)) >= 20  # 12 labels, apart
    for x, y in re.findall(r'<text x="([\d.]+)" y="([\d.]+)"', svg):
        assert 0 <= float(x) <= width and 0 < float(y) <= height
    assert "2026" in svg and "2025-05" not in re.sub(r"<title>.*?</title>", "", svg)


def _sheet_checks(sheet):
    assert sheet.freeze_panes == "A2", sheet.title
    widths = [sheet.column_dimensions[c.column_letter].width for c in sheet[1]]
    assert all(w and w >= 8 for w in widths), (sheet.title, widths)


def test_every_report_xlsx_has_widths_frozen_headers_and_the_pages_words(org, client, auth):
    """Reproduction: no column widths or frozen header rows in any .xlsx, and the branch sheet said
    明显滞后 where its page says 落后."""
    auth.login("admin")
    book = load_workbook(io.BytesIO(client.get("/reports/overview.xlsx").data))
    assert book.sheetnames == ["网上考核", "近12个月"]
    for sheet in book:
        _sheet_checks(sheet)
    page = client.get("/reports/branch?branch=ZC1").get_data(as_text=True)
    book = load_workbook(io.BytesIO(client.get("/reports/branch.xlsx?branch=ZC1").data))
    members = book.worksheets[0]
    _sheet_checks(members)
    statuses = {row[0].value: row[8].value for row in members.iter_rows(min_row=2)}
    assert statuses["刘志强"] == "落后" and "落后" in page
    assert "明显滞后" not in statuses.values()


def test_the_member_record_is_in_beijing_time_and_says_so(org, client, auth, make):
    """Reproduction: exports said UTC while pages say Beijing time."""
    course = Course(title="课", summary="", is_published=True)
    lesson = Lesson(course=course, title="第一讲", minutes=20, state="published", position=1)
    db.session.add_all([course, lesson])
    db.session.flush()
    db.session.add(LessonProgress(user_id=org["member"].id, lesson_id=lesson.id, credited_seconds=1200,
                                  hours_credited=0.5, completed_at=dt.datetime(2026, 3, 31, 17, 30)))
    db.session.commit()
    auth.login("secretary")
    book = load_workbook(io.BytesIO(client.get(f"/reports/members/{org['member'].id}/record.xlsx").data))
    hours = book["学时"]
    assert hours["A1"].value == "完成时间（北京时间）"
    assert hours["A2"].value == dt.datetime(2026, 4, 1, 1, 30)  # 17:30 UTC is 01:30 the next day in Beijing
    for sheet in book:
        _sheet_checks(sheet)
    assert "UTC" not in " ".join(str(c.value) for s in book for c in s[1])


def test_a_month_without_exams_is_a_gap_not_a_zero_pass_rate(app):
    from pbschool import charts

    with app.test_request_context():
        empty = str(charts.line_svg(["2026-01", "2026-02"], [None, None], "t"))
        gap = str(charts.line_svg(["2026-01", "2026-02", "2026-03"], [80, None, 90], "t"))
    assert "暂无数据" in empty and "<polyline" not in empty and "<circle" not in empty
    assert gap.count("<circle") == 2 and "<polyline" not in gap  # two lone points, no line through the gap


def test_no_place_is_shown_for_a_tie_at_zero_on_the_branch_page(org, client, auth):
    auth.login("secretary")
    html = client.get("/reports/branch").get_data(as_text=True)
    assert "#1" not in html  # nobody has points this month (April): a tie at 0 is no place
