"""The header's unread badge on every page, and the notifications page."""

import re

from sqlalchemy import select

from pbschool.extensions import db
from pbschool.notices import services
from pbschool.notices.models import Notification


def csrf(html):
    found = (re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
             or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', html))
    return found.group(1) if found else ""


def tell(user, n):
    for i in range(n):
        services.notify([user], "month_published", f"month:2025-{i + 1:02d}", subject=f"2025-{i + 1:02d}")
    db.session.commit()


def badge(html):
    found = re.search(r'data-testid="unread-badge">([^<]*)<', html)
    return found.group(1) if found else None


def test_the_badge_shows_my_unread_count_on_pages(client, auth, make):
    member = make.user("liuzq")
    tell(member, 3)
    auth.login("liuzq")
    for path in ("/", "/courses", "/points", "/announcements"):
        assert badge(client.get(path).get_data(as_text=True)) == "3", path
    services.mark_read(member, everything=True)
    db.session.commit()
    assert badge(client.get("/").get_data(as_text=True)) is None


def test_a_big_count_is_99_plus(client, auth, make):
    member = make.user("liuzq")
    tell(member, 12)
    services.notify([member], "announcement", "x", subject="a")  # kinds differ, keys too
    rows = [(member.id, member.branch_id)]
    for i in range(100):
        services.notify(rows, "course_required", f"course:{i}", object_id=i, subject="c")
    db.session.commit()
    auth.login("liuzq")
    assert badge(client.get("/").get_data(as_text=True)) == "99+"


def test_anonymous_pages_have_no_badge_and_do_not_break(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'data-testid="bell"' not in html
    assert client.get("/notifications").status_code in (302, 401)


def test_the_list_opens_one_marks_it_read_and_goes_to_its_url(client, auth, make):
    member = make.user("liuzq")
    tell(member, 2)
    auth.login("liuzq")
    html = client.get("/notifications").get_data(as_text=True)
    assert html.index("2025-02") < html.index("2025-01")  # newest first
    note = db.session.scalar(select(Notification).where(Notification.key == "month:2025-01"))
    response = client.post(f"/notifications/{note.id}/open", data={"csrf_token": csrf(html)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/points/board?period=2025-01")
    assert services.unread_count(member) == 1
    response = client.post("/notifications/read-all", data={"csrf_token": csrf(html)}, follow_redirects=True)
    assert services.unread_count(member) == 0 and "全部已读" not in response.get_data(as_text=True)


def test_opening_another_members_notification_is_404(client, auth, make):
    make.user("liuzq")
    other = make.user()
    tell(other, 1)
    note = db.session.scalar(select(Notification))
    auth.login("liuzq")
    html = client.get("/notifications").get_data(as_text=True)
    assert client.post(f"/notifications/{note.id}/open", data={"csrf_token": csrf(html)}).status_code == 404
    assert services.unread_count(other) == 1


def test_the_list_is_paged(client, auth, make):
    member = make.user("liuzq")
    tell(member, 12)
    rows = [(member.id, member.branch_id)]
    for i in range(15):
        services.notify(rows, "course_required", f"course:{i}", object_id=i, subject=f"课程{i}")
    db.session.commit()
    auth.login("liuzq")
    first = client.get("/notifications").get_data(as_text=True)
    second = client.get("/notifications?page=2").get_data(as_text=True)
    assert first.count('class="note ') == services.PAGE_SIZE
    assert second.count('class="note ') == 27 - services.PAGE_SIZE
    assert client.get("/notifications?page=99999999").status_code == 200
