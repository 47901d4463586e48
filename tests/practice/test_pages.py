"""Practice pages: the home page's tasks, the hub, a paper answered without JavaScript, the points at
the end, the admin's practice banks; denials for other members and roles."""

import re

from sqlalchemy import select

from pbschool.extensions import db
from pbschool.practice.models import Practice, PracticeBank, PracticeQuestion


def _right_form_value(slot):
    shown = slot.shown
    if shown.type == "blank":
        return [alts[0] for alts in shown.answer]
    value = shown.kind.display(shown.answer, slot.option_order)
    if shown.type == "truefalse":
        return "true" if value else "false"
    return value


def test_home_shows_tasks_and_leads_to_practice(auth, client, make, practice_bank, pinned):
    member = make.user()
    auth.login(member.username)
    home = client.get("/").get_data(as_text=True)
    assert 'id="today-tasks"' in home and "每日答题" in home and 'href="/practice"' in home
    assert "今天开始连续学习" in home
    hub = client.get("/practice")
    assert hub.status_code == 200 and "开始每日答题" in hub.get_data(as_text=True)
    started = client.post("/practice/start", data={"mode": "daily"})
    assert started.status_code == 302
    practice = db.session.scalar(select(Practice).where(Practice.user_id == member.id))
    page = client.get(started.headers["Location"]).get_data(as_text=True)
    assert page.count('class="card question practice-q') == 5 and "完成练习" in page
    assert "<script>" not in page  # CSP: no inline script
    for slot in db.session.scalars(select(PracticeQuestion).where(PracticeQuestion.practice_id == practice.id)):
        reply = client.post(f"/practice/{practice.id}/answer/{slot.question_id}",
                            data={f"q{slot.question_id}": _right_form_value(slot)})
        assert reply.status_code == 302
    page = client.get(f"/practice/{practice.id}").get_data(as_text=True)
    assert page.count("回答正确") == 5
    client.post(f"/practice/{practice.id}/finish")
    client.post(f"/practice/{practice.id}/finish")
    page = client.get(f"/practice/{practice.id}").get_data(as_text=True)
    assert "获得 5.0 积分" in page
    home = client.get("/").get_data(as_text=True)
    assert re.search(r'data-rule="daily_practice".*?task-points">5\.0<', home, re.S)
    assert "连续学习 1 天" in home and "已满" in home


def test_a_wrong_shape_on_the_form_is_a_chinese_error(auth, client, make, practice_bank, pinned):
    member = make.user()
    auth.login(member.username)
    client.post("/practice/start", data={"mode": "daily"})
    practice = db.session.scalar(select(Practice).where(Practice.user_id == member.id))
    slot = practice.questions[0]
    reply = client.post(f"/practice/{practice.id}/answer/{slot.question_id}", data={}, follow_redirects=True)
    assert reply.status_code == 200 and "请先作答" in reply.get_data(as_text=True)
    assert client.post(f"/practice/{practice.id}/answer/99999", data={}).status_code == 404


def test_other_members_papers_are_404(auth, client, make, practice_bank, pinned):
    owner = make.user("owner")
    auth.login(owner.username)
    client.post("/practice/start", data={"mode": "daily"})
    practice = db.session.scalar(select(Practice).where(Practice.user_id == owner.id))
    qid = practice.questions[0].question_id
    auth.logout()
    for role in ("member", "secretary", "lecturer", "admin"):
        other = make.user(role=role)
        auth.login(other.username)
        assert client.get(f"/practice/{practice.id}").status_code == 404
        assert client.post(f"/practice/{practice.id}/answer/{qid}", data={f"q{qid}": "A"}).status_code == 404
        assert client.post(f"/practice/{practice.id}/finish").status_code == 404
        auth.logout()
    db.session.expire_all()
    assert practice.finished_at is None and all(s.answered_at is None for s in practice.questions)


def test_signed_out_is_sent_to_login(client, practice_bank):
    assert client.get("/practice").status_code == 302
    assert client.get("/api/v1/me/tasks").status_code == 401


def test_practice_banks_admin_only(auth, client, make, bank, pinned):
    for role in ("member", "secretary", "lecturer"):
        user = make.user(role=role)
        auth.login(user.username)
        assert client.get("/admin/practice").status_code == 403
        assert client.post("/admin/practice", data={"bank": str(bank.id)}).status_code == 403
        auth.logout()
    assert db.session.scalar(select(PracticeBank)) is None
    admin = make.user(role="admin")
    auth.login(admin.username)
    assert bank.name in client.get("/admin/practice").get_data(as_text=True)
    client.post("/admin/practice", data={"bank": [str(bank.id), "x", "99999999999"]})
    assert db.session.scalars(select(PracticeBank.bank_id)).all() == [bank.id]
    client.post("/admin/practice", data={})
    assert db.session.scalar(select(PracticeBank)) is None
