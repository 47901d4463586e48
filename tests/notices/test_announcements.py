"""Announcements (通知公告): who may write to whom, sanitised Markdown, pinned first, who has not read."""

import re

import pytest
from sqlalchemy import func, select

from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.notices import services
from pbschool.notices.models import Announcement, Notification


@pytest.fixture
def org(make):
    people = make.organisation()  # ZC1: secretary, member; JD: other; admin
    people["lecturer"] = make.user("teacher", role="lecturer")
    people["jd_secretary"] = make.user("jdsec", role="secretary", branch=people["other"].branch)
    return people


def post(api, user, **body):
    body = {"title": "关于开展主题党日活动的通知", "body": "请各位党员**准时**参加。", **body}
    return api.token(user).post("/announcements", json=body)


def unread_of(user):
    return services.unread_count(user)


def test_an_admin_writes_to_the_whole_committee(app, org, api):
    response = post(api, org["admin"], audience="all")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["recipients"] == 5  # everyone active but the author
    assert [unread_of(org[k]) for k in ("member", "other", "secretary", "lecturer")] == [1, 1, 1, 1]
    assert unread_of(org["admin"]) == 0


def test_an_admin_writes_to_chosen_branches_only_their_members_now_get_it(app, org, api):
    response = post(api, org["admin"], audience="branches", branches=["JD"])
    assert response.status_code == 200
    assert (unread_of(org["other"]), unread_of(org["jd_secretary"]), unread_of(org["member"])) == (1, 1, 0)


def test_a_secretary_writes_to_their_own_branch(app, org, api):
    response = post(api, org["secretary"], audience="branches", branches=["ZC1"])
    assert response.status_code == 200
    assert (unread_of(org["member"]), unread_of(org["other"])) == (1, 0)


@pytest.mark.parametrize("who, body, status", [
    ("secretary", {"audience": "branches", "branches": ["JD"]}, 403),
    ("secretary", {"audience": "branches", "branches": ["ZC1", "JD"]}, 403),
    ("secretary", {"audience": "all"}, 403),
    ("member", {"audience": "branches", "branches": ["ZC1"]}, 403),
    ("lecturer", {"audience": "all"}, 403),
    ("admin", {"audience": "branches", "branches": ["NOPE"]}, 400),
    ("admin", {"audience": "branches", "branches": []}, 400),
    ("admin", {"audience": "everyone"}, 400),
    ("admin", {"title": ""}, 400),
    ("admin", {"body": "x" * 20_001}, 400),
    ("admin", {"branches": "JD"}, 400),
])
def test_who_may_not_write_what(app, org, api, who, body, status):
    response = post(api, org[who], **body)
    assert response.status_code == status, response.get_json()
    assert db.session.scalar(select(func.count(Announcement.id))) == 0
    assert db.session.scalar(select(func.count(Notification.id))) == 0


def test_a_secretary_targeting_another_branch_on_the_page_is_refused(client, auth, org):
    auth.login("secretary")
    page = client.get("/announcements/new")
    assert page.status_code == 200
    assert "综采一队党支部" in page.get_data(as_text=True) and "机电科党支部" not in page.get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True))
    response = client.post("/announcements/new", data={
        "csrf_token": token.group(1) if token else "", "title": "越权", "body": "正文", "audience": "branches",
        "branches": [str(org["other"].branch_id)]})
    assert response.status_code == 200  # the form again, with the reason
    assert "只能向本支部发布通知" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Announcement.id))) == 0


def test_members_and_lecturers_cannot_open_the_form(client, auth, org):
    for username in ("member", "teacher"):
        auth.login(username)
        assert client.get("/announcements/new").status_code == 403
        auth.logout()


def test_the_body_is_sanitised(app, org, api, client, auth):
    body = "# 通知\n\n<script>alert(1)</script>\n\n[点我](javascript:alert(2)) <img src=x onerror=alert(3)>"
    response = post(api, org["admin"], audience="all", body=body)
    item = db.session.get(Announcement, response.get_json()["id"])
    assert "<script" not in item.body_html and "javascript:" not in item.body_html and "onerror" not in item.body_html
    assert "<h1>通知</h1>" in item.body_html
    auth.login("member")
    html = client.get(f"/announcements/{item.id}").get_data(as_text=True)
    assert "<script>alert(1)" not in html


def test_the_same_key_again_is_the_same_announcement(app, org, api):
    first = post(api, org["admin"], audience="all", key="k-1").get_json()
    again = post(api, org["admin"], audience="all", key="k-1").get_json()
    assert first["id"] == again["id"]
    assert db.session.scalar(select(func.count(Notification.id))) == 5


def test_reading_marks_it_read_and_a_stranger_gets_404(client, auth, org, api):
    item_id = post(api, org["secretary"], audience="branches", branches=["ZC1"]).get_json()["id"]
    auth.login("member")
    assert client.get(f"/announcements/{item_id}").status_code == 200
    assert client.get(f"/announcements/{item_id}").status_code == 200  # twice is fine
    assert unread_of(org["member"]) == 0
    auth.logout()
    for stranger in ("other", "jdsec", "teacher"):
        auth.login(stranger)
        assert client.get(f"/announcements/{item_id}").status_code == 404
        assert "越权" not in client.get("/announcements").get_data(as_text=True)
        auth.logout()


def test_pinned_first_and_only_what_i_may_read_in_the_list(client, auth, org, api):
    post(api, org["admin"], audience="all", title="普通通知甲")
    post(api, org["admin"], audience="all", title="置顶通知乙", pinned=True)
    post(api, org["admin"], audience="all", title="普通通知丙")
    post(api, org["admin"], audience="branches", branches=["JD"], title="机电科专项通知")
    auth.login("member")
    html = client.get("/announcements").get_data(as_text=True)
    assert html.index("置顶通知乙") < html.index("普通通知丙") < html.index("普通通知甲")
    assert "机电科专项通知" not in html


def test_pinning_is_for_the_author_or_an_admin(app, org, api):
    item = db.session.get(Announcement, post(api, org["secretary"], audience="branches",
                                             branches=["ZC1"]).get_json()["id"])
    with pytest.raises(DomainError):
        services.set_pinned(item, org["member"], True)
    with pytest.raises(DomainError):
        services.set_pinned(item, org["jd_secretary"], True)
    services.set_pinned(item, org["admin"], True)
    assert item.is_pinned


def test_who_has_not_read_it_per_branch_for_the_secretary_and_the_admin(client, auth, org, api, make):
    second = make.user("zhaomin", branch=org["member"].branch, name="赵敏")
    item_id = post(api, org["admin"], audience="branches", branches=["ZC1", "JD"]).get_json()["id"]
    auth.login("member")
    client.get(f"/announcements/{item_id}")
    auth.logout()
    auth.login("secretary")
    html = client.get(f"/announcements/{item_id}").get_data(as_text=True)
    assert 'data-testid="readership"' in html and "<svg" in html
    assert second.name in html  # not read yet
    assert "孙丽娟" not in html  # another branch's member: not the secretary's to see
    auth.logout()
    auth.login("admin")
    html = client.get(f"/announcements/{item_id}").get_data(as_text=True)
    assert "孙丽娟" in html and second.name in html
    rows = services.readership(db.session.get(Announcement, item_id), org["admin"])
    # ZC1: the member and the secretary read it
    assert {(r["branch"].code, r["sent"], r["read"]) for r in rows} == {("ZC1", 3, 2), ("JD", 2, 0)}
    auth.logout()
    auth.login("member")
    assert 'data-testid="readership"' not in client.get(f"/announcements/{item_id}").get_data(as_text=True)


def test_a_member_moved_after_publication_keeps_it_under_the_branch_they_were_in(app, org, api):
    from pbschool.accounts import services as accounts

    item_id = post(api, org["admin"], audience="branches", branches=["ZC1"]).get_json()["id"]
    accounts.update_user(org["member"], name=org["member"].name, role="member", branch=org["other"].branch,
                         job_post="", actor=org["admin"])
    db.session.commit()
    rows = services.readership(db.session.get(Announcement, item_id), org["admin"])
    assert [(r["branch"].code, r["sent"]) for r in rows] == [("ZC1", 2)]


def test_a_secretary_sees_their_own_branch_unread_of_a_committee_wide_one(client, auth, org, api):
    item_id = post(api, org["admin"], audience="all").get_json()["id"]
    auth.login("jdsec")
    html = client.get(f"/announcements/{item_id}").get_data(as_text=True)
    assert 'data-testid="readership"' in html
    assert "孙丽娟" in html and "刘志强" not in html  # JD's member, not ZC1's
    auth.logout()
    auth.login("teacher")
    assert 'data-testid="readership"' not in client.get(f"/announcements/{item_id}").get_data(as_text=True)
