"""Issue 15: the points pages as members see them — boards that open on a published month, entries
in date order with a category filter, and the rules with their caps."""

import datetime as dt
import re

import pytest

from pbschool import clock
from pbschool.extensions import db
from pbschool.points import services


@pytest.fixture
def org(app, make):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    people = make.organisation()
    services.record_event(people["member"], "exam_passed", "attempt:1", points=3, reason="通过安全规程考试")
    db.session.commit()
    yield people
    clock.pin(None)


def _board_table(html):
    return html[html.index('<table class="table board">'):html.index("</table>")]


def test_the_board_opens_on_the_last_published_month_and_labels_live_standings(org, client, auth):
    """Reproduction: on the 1st the board opened on the current, unpublished month, where everyone
    tied at 0 and showed a medal; home said "支部排名 1/4" at 0 points."""
    clock.pin(dt.datetime(2026, 3, 31, 17, 0))  # 01:00 on 1 April in Beijing: nobody has points yet
    services.publish_month("2026-03")
    db.session.commit()
    auth.login("other")
    html = client.get("/points/board").get_data(as_text=True)
    assert "2026-03 晒分榜" in html and "已公布" in html
    assert "刘志强" in _board_table(html) and "看本月实时积分" in html
    live = client.get("/points/board?period=2026-04").get_data(as_text=True)
    assert "2026-04 实时积分" in live and "实时 · 未公布" in live and "晒分榜" not in _h1(live)
    table = _board_table(live)
    assert "medal" not in table  # a tie at 0 is no place
    assert re.search(r'<td class="rank"><span class="muted">—</span></td>', table)
    assert "我的实时名次" not in live and "我的名次" not in live
    home = client.get("/").get_data(as_text=True)
    panel = home[home.index("points-panel"):]
    assert re.search(r"支部排名.*?</span><strong class=\"pt-value\">—</strong>", panel, re.S)


def _h1(html):
    return re.search(r"<h1>(.*?)</h1>", html, re.S).group(1)


def test_a_board_before_any_publication_is_the_live_month_said_so(org, client, auth):
    auth.login("member")
    html = client.get("/points/board").get_data(as_text=True)
    assert "2026-03 实时积分" in html and "实时 · 未公布" in html and "名次以月底公布的晒分榜为准" in html
    assert "我的实时名次：第 1 名，3.0 分" in html


def test_entries_are_newest_first_by_their_day_and_filter_by_category(org, client, auth, make):
    """Reproduction: entries were listed in the ledger's order, so one recorded late for an earlier
    day sat above newer ones; there was no filter by category."""
    member = org["member"]
    services.record_event(member, "meeting_attended", "meeting:9", reason="支部党员大会",
                          occurred_at=dt.datetime(2026, 3, 2, 2, 0))  # recorded now, held on the 2nd
    services.award(member, 2, "帮扶困难职工", actor=org["secretary"], occurred_at=dt.datetime(2026, 3, 8, 2, 0))
    db.session.commit()
    auth.login("member")
    html = client.get("/points").get_data(as_text=True)
    entries = html[html.index('id="entries"'):]
    order = [entries.index(r) for r in ("通过安全规程考试", "帮扶困难职工", "支部党员大会")]
    assert order == sorted(order)  # 10th, 8th, 2nd
    assert "cat-filter" in entries and "?category=%E7%BB%84%E7%BB%87%E7%94%9F%E6%B4%BB" in entries
    only = client.get("/points?category=组织生活").get_data(as_text=True)
    only = only[only.index('id="entries"'):]
    assert "支部党员大会" in only and "通过安全规程考试" not in only and "帮扶困难职工" not in only
    assert 'class="cat-link on"' in only
    unknown = client.get("/points?category=nonsense").get_data(as_text=True)
    assert "通过安全规程考试" in unknown  # an unknown category shows everything


def test_members_see_the_rules_with_their_points_and_caps(org, client, auth):
    """Reproduction: members could not see the rules and caps anywhere."""
    auth.login("member")
    assert "/points/rules" in client.get("/points").get_data(as_text=True)
    html = client.get("/points/rules").get_data(as_text=True)
    table = html[html.index("<table"):]
    assert "完成课程学习" in table and "在线学习时长（每10分钟）" in table and "通过考试" in table
    row = table[table.index("学习交流发言"):]
    row = row[:row.index("</tr>")]
    assert "0.5" in row and "2.0" in row and "不限" in row  # points, daily cap 2.0, no monthly cap
    assert "月度目标 10 分" in html


def test_category_chips_are_translated(org, client, auth):
    auth.login("member")
    html = client.get("/points?lang=en").get_data(as_text=True)
    chips = re.findall(r'<span class="chip cat-exam">([^<]*)</span>', html)
    assert chips and all(c != "考试" for c in chips), chips


def _xlsx(client, url):
    import io

    from openpyxl import load_workbook

    response = client.get(url)
    assert response.status_code == 200, url
    return load_workbook(io.BytesIO(response.data)).active


def test_the_honours_sheet_names_branches_as_the_page_does(org, client, auth):
    """Reproduction: the honours sheet showed branch codes (ZC1) where the page shows names."""
    auth.login("admin")
    sheet = _xlsx(client, "/points/honours.xlsx?year=2026")
    branches = {row[0] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert "综采一队党支部" in branches and "ZC1" not in branches
    assert sheet.freeze_panes == "A2" and sheet.column_dimensions["A"].width >= 16


def test_board_and_stars_sheets_open_well_in_excel_with_the_pages_words(org, client, auth):
    """Reproduction: no column widths or frozen header rows in any .xlsx."""
    auth.login("admin")
    live = _xlsx(client, "/points/board.xlsx?period=2026-03")
    assert live.title == "2026-03 实时积分" and live.freeze_panes == "A2"
    assert [c.value for c in live[1]] == ["名次", "用户名", "姓名", "支部", "积分"]
    assert all(live.column_dimensions[c].width >= 8 for c in "ABCDE")
    ranks = {row[2]: row[0] for row in live.iter_rows(min_row=2, values_only=True)}
    assert ranks["刘志强"] == 1 and ranks["孙丽娟"] is None  # no place at 0, as on the page
    stars = _xlsx(client, "/points/stars.xlsx?quarter=2026-Q1")
    assert stars.freeze_panes == "A2"
