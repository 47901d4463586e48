import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from pbschool import clock
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.meetings import services as meetings
from pbschool.points import services as points
from pbschool.reports import figures, services
from pbschool.reports.models import BranchRating


@pytest.fixture
def org(app, make):
    clock.pin(dt.datetime(2026, 1, 2, 2, 0))  # the organisation exists before Q1, which gets rated
    people = make.organisation()
    clock.pin(dt.datetime(2026, 4, 10, 2, 0))
    points.record_event(people["member"], "exam_passed", "attempt:1", points=6,
                        occurred_at=dt.datetime(2026, 2, 10, 2, 0))
    meetings.record_meeting(people["member"].branch, "committee", dt.date(2026, 3, 5), "支委会", [people["member"].id],
                            actor=people["secretary"])
    db.session.commit()
    return people


def test_branch_rows_and_member_rows(org):
    rows = {r["branch"].code: r for r in figures.branch_rows()}
    assert rows["ZC1"]["members"] == 2 and rows["JD"]["members"] == 1
    assert rows["ZC1"]["rhythm"]["kept"] == 1
    members = {r["user"].username: r for r in figures.member_rows(org["member"].branch_id)}
    assert set(members) == {"secretary", "member"}
    assert members["member"]["year_points"] == 11  # 6 for the exam + 5 for the meeting
    assert members["member"]["status"] == "red"  # no learning hours yet


def test_branch_ratings_proposed_then_confirmed(org):
    with pytest.raises(DomainError) as exc:
        services.compute_branch_ratings("2026-Q2")
    assert "尚未结束" in str(exc.value)
    assert services.compute_branch_ratings("2026-Q1") == 2
    rating = db.session.scalar(select(BranchRating).join(BranchRating.branch).where(BranchRating.quarter == "2026-Q1")
                               .order_by(BranchRating.score.desc()))
    assert rating.branch.code == "ZC1" and rating.stars is None
    services.confirm_rating(rating, 4, actor=org["admin"])
    assert services.compute_branch_ratings("2026-Q1") == 1  # the confirmed one stays
    db.session.refresh(rating)
    assert rating.stars == 4
    with pytest.raises(DomainError):
        services.save_weights({"points": -1, "hours": 1, "exams": 1, "meetings": 1})


def test_overview_pages_and_exports(org, client, auth):
    auth.login("admin")
    html = client.get("/reports/overview").get_data(as_text=True)
    assert "综采一队党支部" in html and "机电科党支部" in html and "近 12 个月" in html and "line-chart" in html
    sheet = load_workbook(io.BytesIO(client.get("/reports/overview.xlsx").data)).active
    assert [c.value for c in sheet[1]][:3] == ["支部", "党员数", "三会一课"]
    response = client.post("/reports/overview", data={"action": "compute", "quarter": "2026-Q1"})
    assert response.status_code == 302
    rating = db.session.scalars(select(BranchRating)).first()
    client.post("/reports/overview", data={"action": "confirm", "rating": rating.id, "stars": "3"})
    db.session.refresh(rating)
    assert rating.stars == 3
    branch_page = client.get("/reports/branch?branch=ZC1").get_data(as_text=True)
    assert "刘志强" in branch_page and "近 12 个月" in branch_page


def test_secretary_sees_own_branch_only_and_member_record(org, client, auth):
    auth.login("secretary")
    html = client.get("/reports/branch").get_data(as_text=True)
    table = html[html.index("<table"):]
    assert "刘志强" in table and "孙丽娟" not in table
    assert client.get("/reports/branch?branch=JD").get_data(as_text=True).count("孙丽娟") == 0
    assert client.get("/reports/overview").status_code == 403
    book = load_workbook(io.BytesIO(client.get(f"/reports/members/{org['member'].id}/record.xlsx").data))
    assert book.sheetnames == ["概况", "学时", "年度学时", "考试", "积分", "月度积分", "组织生活", "评星", "证书"]
    assert client.get(f"/reports/members/{org['other'].id}/record.xlsx").status_code == 403
    client.post("/logout")
    auth.login("member")
    assert client.get(f"/reports/members/{org['member'].id}/record.xlsx").status_code == 200
    assert client.get("/reports/branch").status_code == 403
