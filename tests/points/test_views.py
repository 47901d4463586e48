import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from pbschool import clock
from pbschool.extensions import db
from pbschool.points import services
from pbschool.points.models import LedgerEntry, MonthlyPublication


@pytest.fixture
def org(app, make):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    people = make.organisation()
    services.record_event(people["member"], "exam_passed", "attempt:1", points=3, value=88,
                          reason="通过安全规程考试")
    db.session.commit()
    return people


def test_member_points_page_has_chart_table_entries_and_ranks(org, client, auth):
    auth.login("member")
    html = client.get("/points").get_data(as_text=True)
    assert "我的积分" in html and "<svg" in html and "查看数据表" in html
    assert "2026-03" in html and "通过安全规程考试" in html
    assert "cat-exam" in html
    assert "第 1 / 2 名" in html  # in the branch
    assert "/points/board?period=2026-03&amp;branch=ZC1" in html


def test_home_panel_shows_month_points_rank_and_stars(org, client, auth):
    auth.login("member")
    html = client.get("/").get_data(as_text=True)
    assert "本月积分" in html and "支部排名" in html and "本季度星级" in html
    assert '<section class="card points-panel">' in html  # rendered, not escaped
    # how far from this month's target (3 of the default 10), and the place in the whole committee
    assert "月度目标 <strong>3.0</strong> / 10" in html and "还差 7.0 分" in html
    assert 'aria-valuenow="3.0"' in html and "pct-30" in html  # the bar is 30% wide, by a class (CSP)
    assert "党委排名 第 1 / 3 名" in html


def test_board_page_and_xlsx(org, client, auth):
    auth.login("other")  # every member reads every board (晒分 is open within the committee)
    html = client.get("/points/board?period=2026-03&branch=ZC1").get_data(as_text=True)
    table = html[html.index('<table class="table board">'):]
    assert "刘志强" in table and "孙丽娟" not in table and "实时 · 未公布" in html
    response = client.get("/points/board.xlsx?period=2026-03")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "名次" and rows[1][2] == "刘志强"
    assert client.get("/points/board?period=2026-99").status_code == 400


def test_secretary_awards_and_deducts_for_own_branch(org, client, auth):
    auth.login("secretary")
    page = client.get("/points/award").get_data(as_text=True)
    assert "刘志强" in page and "孙丽娟" not in page
    response = client.post("/points/award", data={
        "member": str(org["member"].id), "points": "-2", "category": "组织生活", "reason": "无故缺席支部大会",
        "is_veto": "y", "key": "a" * 32})
    assert response.status_code == 302
    entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.kind == "deduction"))
    assert entry.is_veto and entry.actor_id == org["secretary"].id
    # the same form submitted twice writes once
    client.post("/points/award", data={"member": str(org["member"].id), "points": "-2", "category": "组织生活",
                                       "reason": "无故缺席支部大会", "is_veto": "y", "key": "a" * 32})
    assert len(db.session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "deduction")).all()) == 1
    html = client.get(f"/points/members/{org['member'].id}").get_data(as_text=True)
    assert "一票否决" in html and "无故缺席支部大会" in html


def test_award_denials(org, client, auth):
    auth.login("secretary")
    response = client.post("/points/award", data={
        "member": str(org["other"].id), "points": "5", "category": "学习", "reason": "跨支部"})
    assert response.status_code == 200 and "只能为本支部的党员加减分" in response.get_data(as_text=True)
    response = client.post("/points/award", data={
        "member": str(org["member"].id), "points": "", "category": "学习", "reason": "没有分值"})
    assert "请填写分值" in response.get_data(as_text=True)
    assert client.get(f"/points/members/{org['other'].id}").status_code == 403
    client.post("/logout")
    auth.login("member")
    assert client.get("/points/award").status_code == 403
    assert client.get("/points/admin").status_code == 403
    assert client.get(f"/points/members/{org['member'].id}").status_code == 403


def test_reverse_from_member_page(org, client, auth):
    entry = db.session.scalar(select(LedgerEntry))
    auth.login("admin")
    response = client.post(f"/points/entries/{entry.id}/reverse", data={"reason": "成绩更正"})
    assert response.status_code == 302
    assert services.balance(org["member"]) == 0
    client.post("/logout")
    auth.login("secretary")
    other_entry = services.record_event(org["other"], "meeting_attended", "meeting:9:user:9")
    db.session.commit()
    assert client.post(f"/points/entries/{other_entry.id}/reverse", data={"reason": "x"}).status_code == 403


def test_admin_publishes_with_the_button(org, client, auth):
    clock.pin(dt.datetime(2026, 4, 2, 2, 0))
    auth.login("admin")
    page = client.get("/points/admin").get_data(as_text=True)
    assert "发布该月" in page and 'value="2026-03"' in page
    response = client.post("/points/admin", data={"action": "publish", "pub-period": "2026-03"})
    assert response.status_code == 302
    assert db.session.scalar(select(MonthlyPublication.period)) == "2026-03"
    html = client.get("/points/board?period=2026-03").get_data(as_text=True)
    assert "已发布" in html
    response = client.post("/points/admin", data={"action": "publish", "pub-period": "2026-04"})
    assert "尚未结束" in response.get_data(as_text=True)


def test_admin_settings_stars_honours_rules(org, client, auth):
    clock.pin(dt.datetime(2026, 4, 2, 2, 0))
    auth.login("admin")
    bad = client.post("/points/admin", data={"action": "settings", "set-base": "60", "set-bands": "90,80"})
    assert "五个分数线" in bad.get_data(as_text=True)
    ok = client.post("/points/admin", data={"action": "settings", "set-base": "60", "set-bands": "61,62,63,64,65",
                                            "set-honours_top_n": "2"})
    assert ok.status_code == 302
    assert client.post("/points/admin", data={"action": "stars", "stars-quarter": "2026-Q1"}).status_code == 302
    html = client.get("/points/stars?quarter=2026-Q1").get_data(as_text=True)
    assert "刘志强" in html and "★" in html
    assert client.get("/points/stars.xlsx?quarter=2026-Q1").status_code == 200
    html = client.get("/points/honours?year=2026").get_data(as_text=True)
    assert "刘志强" in html
    assert client.get("/points/honours.xlsx?year=2026").status_code == 200
    response = client.post("/points/rules/new", data={"name": "义务献血", "category": "志愿服务", "points": "2",
                                                      "is_active": "y"})
    assert response.status_code == 302
    assert "义务献血" in client.get("/points/admin").get_data(as_text=True)
    bad = client.post("/points/rules/new", data={"name": "", "category": "x", "points": "2"})
    assert bad.status_code == 200 and "请填写规则名称" in bad.get_data(as_text=True)


def test_points_pages_for_someone_without_a_branch(org, client, auth):
    auth.login("admin")
    html = client.get("/points").get_data(as_text=True)
    assert "我的积分" in html and "—" in html
    assert client.get("/").status_code == 200
    assert client.get("/points/board").status_code == 200


def test_home_panel_announces_last_months_board(org, client, auth):
    clock.pin(dt.datetime(2026, 4, 2, 2, 0))
    services.publish_month("2026-03")
    db.session.commit()
    auth.login("member")
    html = client.get("/").get_data(as_text=True)
    assert "2026-03 晒分榜已发布：您得 3.0 分，支部第 1 名，党委第 1 名" in html
