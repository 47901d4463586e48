"""Overrides: a member's or a branch's own terms for an exam, in force at once (exams/overrides.py)."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from pbschool import clock
from pbschool.accounts.models import AuditLog
from pbschool.exams.models import Attempt, ExamOverride
from pbschool.extensions import db
from tests.exams.conftest import T0, make_exam


@pytest.fixture
def org(make):
    people = make.organisation()
    people["lecturer"] = make.user("lecturer", role="lecturer")
    people["jd_secretary"] = make.user("jdsec", role="secretary", branch=people["other"].branch)
    people["mate"] = make.user("mate", branch=people["member"].branch, name="同支部党员")
    return people


def _start(api, who, exam):
    api.token(who)
    response = api.post(f"/exams/{exam.id}/attempts")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _deadline(attempt_id):
    db.session.expire_all()
    return db.session.get(Attempt, attempt_id).deadline_at


def _answer(api, body):
    q = body["questions"][0]
    value = {"single": "A", "multiple": ["A"], "truefalse": True, "blank": ["x"] * q.get("blanks", 1),
             "short": "x"}[q["type"]]
    return api.put(f"/attempts/{body['attempt_id']}/answers/{q['id']}", json={"answer": value})


def _audits(action=None):
    stmt = select(func.count(AuditLog.id)).where(AuditLog.action.like("exam.override%"))
    if action:
        stmt = stmt.where(AuditLog.action == action)
    return db.session.scalar(stmt)


def test_put_get_list_delete_a_member_override(api, org, bank, pinned):
    exam = make_exam(bank, closes_at=T0 + dt.timedelta(hours=2), max_attempts=1)
    api.token(org["admin"])
    body = {"extra_minutes": 5, "closes_at": "2026-06-02T01:00:00Z", "extra_attempts": 1}
    put = api.put(f"/exams/{exam.id}/overrides/member", json=body)
    assert put.status_code == 200, put.get_json()
    got = put.get_json()
    assert got["kind"] == "member" and got["username"] == "member" and got["branch"] is None
    assert (got["extra_minutes"], got["closes_at"], got["extra_attempts"]) == (5, "2026-06-02T01:00:00Z", 1)
    assert got["set_by"] == "admin"
    assert got["effective"] == {"time_limit_seconds": 900, "closes_at": "2026-06-02T01:00:00Z", "attempts_left": 2}
    assert api.get(f"/exams/{exam.id}/overrides/member").get_json() == got
    assert [o["username"] for o in api.get(f"/exams/{exam.id}/overrides").get_json()] == ["member"]
    # PUT replaces: what is left out is no longer overridden
    again = api.put(f"/exams/{exam.id}/overrides/member", json={"extra_minutes": 5}).get_json()
    assert (again["closes_at"], again["extra_attempts"]) == (None, None)
    assert api.delete(f"/exams/{exam.id}/overrides/member").get_json() == {"removed": True}
    assert api.delete(f"/exams/{exam.id}/overrides/member").get_json() == {"removed": False}
    gone = api.get(f"/exams/{exam.id}/overrides/member")
    assert gone.status_code == 404 and gone.get_json()["error"]["code"] == "no_override"
    assert api.get(f"/exams/{exam.id}/overrides/nobody").status_code == 404
    assert api.put("/exams/999/overrides/member", json=body).status_code == 404


def test_the_same_put_twice_is_one_state_and_one_audit_entry(api, org, bank, pinned):
    exam = make_exam(bank)
    api.token(org["admin"])
    for _ in range(2):
        assert api.put(f"/exams/{exam.id}/overrides/member", json={"extra_minutes": 7}).status_code == 200
    assert db.session.scalar(select(func.count(ExamOverride.id))) == 1
    assert _audits("exam.override") == 1
    api.put(f"/exams/{exam.id}/overrides/member", json={"extra_minutes": 8})
    assert _audits("exam.override") == 2
    entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "exam.override")
                               .order_by(AuditLog.id.desc())).first()
    assert entry.actor_id == org["admin"].id and entry.object_id == str(exam.id) and entry.summary == "member"
    assert entry.details["before"]["extra_minutes"] == 7 and entry.details["after"]["extra_minutes"] == 8
    api.delete(f"/exams/{exam.id}/overrides/member")
    api.delete(f"/exams/{exam.id}/overrides/member")
    assert _audits("exam.override_removed") == 1


def test_extra_minutes_move_the_running_attempt(api, org, bank, pinned):
    exam = make_exam(bank, time_limit=600)
    body = _start(api, org["member"], exam)
    assert body["deadline"] == "2026-06-01T01:10:00Z"
    api.token(org["admin"])
    api.put(f"/exams/{exam.id}/overrides/member", json={"extra_minutes": 5})
    assert _deadline(body["attempt_id"]) == T0 + dt.timedelta(minutes=15)
    api.token(org["member"])
    assert api.get(f"/attempts/{body['attempt_id']}").get_json()["deadline"] == "2026-06-01T01:15:00Z"
    clock.pin(T0 + dt.timedelta(minutes=12))  # after the old deadline and its grace
    assert _answer(api, body).status_code == 200
    clock.pin(T0 + dt.timedelta(minutes=15, seconds=6))  # after the new one and its grace
    late = _answer(api, body)
    assert late.status_code == 409 and late.get_json()["error"]["code"] == "time_up"


def test_taking_time_back_shrinks_the_deadline_but_never_below_a_minute_from_now(api, org, bank, pinned):
    exam = make_exam(bank, time_limit=600)
    body = _start(api, org["member"], exam)
    api.token(org["admin"])
    api.put(f"/exams/{exam.id}/overrides/member", json={"extra_minutes": 30})
    assert _deadline(body["attempt_id"]) == T0 + dt.timedelta(minutes=40)
    clock.pin(T0 + dt.timedelta(minutes=2))
    api.put(f"/exams/{exam.id}/overrides/member", json={"extra_minutes": 10})  # lowered, still ahead
    assert _deadline(body["attempt_id"]) == T0 + dt.timedelta(minutes=20)
    clock.pin(T0 + dt.timedelta(minutes=15))
    api.delete(f"/exams/{exam.id}/overrides/member")  # back to 01:10, which has passed: now + 1 minute
    assert _deadline(body["attempt_id"]) == T0 + dt.timedelta(minutes=16)
    api.token(org["member"])
    assert _answer(api, body).status_code == 200
    clock.pin(T0 + dt.timedelta(minutes=16, seconds=6))
    assert _answer(api, body).status_code == 409


def test_a_finished_attempt_is_never_reopened(api, org, bank, pinned):
    exam = make_exam(bank, time_limit=600)
    body = _start(api, org["member"], exam)
    api.post(f"/attempts/{body['attempt_id']}/submit")
    before = _deadline(body["attempt_id"])
    api.token(org["admin"])
    api.put(f"/exams/{exam.id}/overrides/member", json={"extra_minutes": 60})
    assert _deadline(body["attempt_id"]) == before
    assert db.session.get(Attempt, body["attempt_id"]).state == "submitted"


def test_extra_attempts_allow_a_new_start(api, org, bank, pinned):
    exam = make_exam(bank, max_attempts=1)
    body = _start(api, org["member"], exam)
    api.post(f"/attempts/{body['attempt_id']}/submit")
    refused = api.post(f"/exams/{exam.id}/attempts")
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "no_attempts_left"
    api.token(org["admin"])
    api.put(f"/exams/{exam.id}/overrides/member", json={"extra_attempts": 1})
    api.token(org["member"])
    assert api.get("/exams").get_json()[0]["attempts_left"] == 1
    second = _start(api, org["member"], exam)
    assert db.session.get(Attempt, second["attempt_id"]).number == 2
    api.post(f"/attempts/{second['attempt_id']}/submit")
    assert api.post(f"/exams/{exam.id}/attempts").status_code == 409


def test_a_later_close_lets_one_member_start_after_the_exam_closed(api, org, bank, pinned):
    exam = make_exam(bank, time_limit=1800, closes_at=T0 + dt.timedelta(hours=1))
    api.token(org["admin"])
    api.put(f"/exams/{exam.id}/overrides/member", json={"closes_at": "2026-06-01T03:10:00Z"})
    clock.pin(T0 + dt.timedelta(hours=2))
    api.token(org["mate"])
    assert api.get("/exams").get_json() == []
    assert api.post(f"/exams/{exam.id}/attempts").get_json()["error"]["code"] == "exam_closed"
    api.token(org["member"])
    listed = api.get("/exams").get_json()
    assert [(e["id"], e["closes_at"]) for e in listed] == [(exam.id, "2026-06-01T03:10:00Z")]
    body = _start(api, org["member"], exam)
    assert body["deadline"] == "2026-06-01T03:10:00Z"  # capped at their own close


def test_a_branch_override_applies_to_its_members_only_while_they_belong(api, org, bank, pinned):
    from pbschool.accounts import services as accounts

    exam = make_exam(bank, time_limit=600, max_attempts=1)
    api.token(org["secretary"])  # ZC1's secretary, for ZC1
    put = api.put(f"/exams/{exam.id}/overrides/branch/ZC1", json={"extra_minutes": 10, "extra_attempts": 2})
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["kind"] == "branch" and put.get_json()["branch"] == "ZC1"
    assert api.get(f"/exams/{exam.id}/overrides/branch/ZC1").get_json()["extra_minutes"] == 10
    api.token(org["other"])  # JD: not for them
    assert api.get("/exams").get_json()[0]["time_limit_seconds"] == 600
    api.token(org["mate"])
    assert api.get("/exams").get_json()[0] == {**api.get("/exams").get_json()[0], "time_limit_seconds": 1200,
                                               "attempts_left": 3}
    # the member's own row wins field by field: minutes from them, attempts still from the branch
    api.token(org["admin"])
    api.put(f"/exams/{exam.id}/overrides/member", json={"extra_minutes": 0})
    api.token(org["member"])
    assert api.get("/exams").get_json()[0]["time_limit_seconds"] == 600
    assert api.get("/exams").get_json()[0]["attempts_left"] == 3
    # a member who moves to another branch leaves its override behind
    mate = org["mate"]
    accounts.update_user(mate, name=mate.name, role=mate.role, branch=org["other"].branch, job_post="",
                         actor=org["admin"])
    db.session.commit()
    api.token(org["mate"])
    assert api.get("/exams").get_json()[0]["time_limit_seconds"] == 600


def test_a_branch_override_moves_its_members_running_attempts(api, org, bank, pinned):
    exam = make_exam(bank, time_limit=600)
    mine = _start(api, org["mate"], exam)
    theirs = _start(api, org["other"], exam)
    api.token(org["admin"])
    api.put(f"/exams/{exam.id}/overrides/branch/ZC1", json={"extra_minutes": 20})
    assert _deadline(mine["attempt_id"]) == T0 + dt.timedelta(minutes=30)
    assert _deadline(theirs["attempt_id"]) == T0 + dt.timedelta(minutes=10)
    api.delete(f"/exams/{exam.id}/overrides/branch/ZC1")
    assert _deadline(mine["attempt_id"]) == T0 + dt.timedelta(minutes=10)


@pytest.mark.parametrize("body, code", [
    ({"extra_minutes": -1}, "invalid_extra_minutes"),
    ({"extra_minutes": 1440 * 7 + 1}, "invalid_extra_minutes"),
    ({"extra_minutes": 2.5}, "invalid_extra_minutes"),
    ({"extra_minutes": True}, "invalid_extra_minutes"),
    ({"extra_minutes": "5"}, "invalid_extra_minutes"),
    ({"extra_attempts": -1}, "invalid_extra_attempts"),
    ({"extra_attempts": 101}, "invalid_extra_attempts"),
    ({"closes_at": "next tuesday"}, "invalid_closes_at"),
    ({"closes_at": 12}, "invalid_closes_at"),
    ({"closes_at": "2026-06-01T00:30:00Z"}, "invalid_closes_at"),  # before the exam opens
    ({"closes_at": "2026-06-01T02:00:00Z"}, "invalid_closes_at"),  # not later than its own close
    ({"closes_at": "2030-01-01T00:00:00Z"}, "invalid_closes_at"),  # absurdly later
    ({}, "empty_override"),
    ({"extra_minutes": None}, "empty_override"),
])
def test_bad_values_are_400_with_a_code(api, org, bank, pinned, body, code):
    exam = make_exam(bank, opens_at=T0 - dt.timedelta(minutes=10), closes_at=T0 + dt.timedelta(hours=2))
    api.token(org["admin"])
    for path in (f"/exams/{exam.id}/overrides/member", f"/exams/{exam.id}/overrides/branch/ZC1"):
        response = api.put(path, json=body)
        assert response.status_code == 400, (path, response.get_json())
        assert response.get_json()["error"]["code"] == code
    assert api.put(f"/exams/{exam.id}/overrides/member", data="[]", content_type="application/json") \
        .status_code == 400
    assert db.session.scalar(select(func.count(ExamOverride.id))) == 0


def test_a_later_close_needs_an_exam_that_closes(api, org, bank, pinned):
    exam = make_exam(bank)
    api.token(org["admin"])
    response = api.put(f"/exams/{exam.id}/overrides/member", json={"closes_at": "2026-06-02T00:00:00Z"})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "exam_has_no_close"


def test_denials_per_role(api, org, bank, pinned):
    exam = make_exam(bank)
    member_path = f"/exams/{exam.id}/overrides/member"  # a ZC1 member
    branch_path = f"/exams/{exam.id}/overrides/branch/ZC1"
    body = {"extra_minutes": 5}
    for who in ("member", "lecturer", "other"):
        api.token(org[who])
        for path in (member_path, branch_path, f"/exams/{exam.id}/overrides"):
            assert api.get(path).status_code == 403, (who, path)
        for path in (member_path, branch_path):
            assert api.put(path, json=body).status_code == 403, (who, path)
            assert api.delete(path).status_code == 403, (who, path)
    api.token(org["jd_secretary"])  # another branch's secretary learns nothing of ZC1
    for path in (member_path, branch_path):
        assert api.get(path).status_code == 404
        assert api.put(path, json=body).status_code == 404
        assert api.delete(path).status_code == 404
    assert db.session.scalar(select(func.count(ExamOverride.id))) == 0
    # the secretary's list shows their own branch's rows only
    api.token(org["admin"])
    api.put(member_path, json=body)
    api.put(f"/exams/{exam.id}/overrides/other", json=body)
    api.token(org["jd_secretary"])
    assert [o["username"] for o in api.get(f"/exams/{exam.id}/overrides").get_json()] == ["other"]
    api.token(org["secretary"])
    assert [o["username"] for o in api.get(f"/exams/{exam.id}/overrides").get_json()] == ["member"]
    assert api.put(f"/exams/{exam.id}/overrides/other", json=body).status_code == 404


@pytest.mark.parametrize("role", ["admin", "secretary"])
def test_nobody_sets_their_own_override(api, make, bank, pinned, role):
    branch = make.branch(code="ZC9")
    me = make.user("me", role=role, branch=branch)
    exam = make_exam(bank, time_limit=600)
    api.token(me)
    for body in ({"extra_minutes": 30}, {"extra_attempts": 3}):
        refused = api.put(f"/exams/{exam.id}/overrides/me", json=body)
        assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "own_override"
    assert api.delete(f"/exams/{exam.id}/overrides/me").get_json()["error"]["code"] == "own_override"
    # a branch override they set for their own branch leaves them out
    assert api.put(f"/exams/{exam.id}/overrides/branch/ZC9", json={"extra_minutes": 30}).status_code == 200
    assert api.get("/exams").get_json()[0]["time_limit_seconds"] == 600
    assert db.session.scalar(select(func.count(ExamOverride.id)).where(ExamOverride.user_id == me.id)) == 0


def test_the_exam_pages_tell_the_member(client, auth, api, org, bank, pinned):
    exam = make_exam(bank, closes_at=T0 + dt.timedelta(hours=1), max_attempts=1)
    api.token(org["admin"])
    api.put(f"/exams/{exam.id}/overrides/member",
            json={"extra_minutes": 5, "closes_at": "2026-06-01T04:00:00Z", "extra_attempts": 1})
    auth.login("member")
    for path in ("/exams", f"/exams/{exam.id}"):
        page = client.get(path).get_data(as_text=True)
        assert "您有额外 5 分钟" in page and "您的截止时间延至 2026-06-01 12:00" in page and "您可多考 1 次" in page
    detail = client.get(f"/exams/{exam.id}").get_data(as_text=True)
    assert "2 / 2" in detail
    clock.pin(T0 + dt.timedelta(hours=2))  # closed for everyone else: still on their home page, with their close
    assert "截止 2026-06-01 12:00" in client.get("/").get_data(as_text=True)
    clock.pin(T0)
    client.post(f"/exams/{exam.id}/start", data={"agreed": "y"})
    attempt = db.session.scalar(select(Attempt))
    sitting = client.get(f"/attempts/{attempt.id}").get_data(as_text=True)
    assert "您有额外 5 分钟" in sitting
    auth.logout()
    auth.login("mate")
    assert "您有额外" not in client.get("/exams").get_data(as_text=True)


def test_staff_page_sets_and_removes_overrides(client, auth, org, bank, pinned):
    exam = make_exam(bank, closes_at=T0 + dt.timedelta(hours=1))
    auth.login("secretary")
    page = client.get(f"/admin/exams/{exam.id}?username=member").get_data(as_text=True)
    assert 'id="overrides"' in page and 'value="member"' in page
    bad = client.post(f"/admin/exams/{exam.id}/overrides", data={"username": "member", "extra_minutes": "-3"})
    assert bad.status_code == 400 and "延长分钟数应为" in bad.get_data(as_text=True)
    bad = client.post(f"/admin/exams/{exam.id}/overrides", data={"username": "member", "extra_minutes": "abc"})
    assert "请填写整数" in bad.get_data(as_text=True)
    both = client.post(f"/admin/exams/{exam.id}/overrides", data={"username": "member", "branch": "ZC1",
                                                                   "extra_minutes": "3"})
    assert "二选一" in both.get_data(as_text=True)
    foreign = client.post(f"/admin/exams/{exam.id}/overrides", data={"username": "other", "extra_minutes": "3"})
    assert foreign.status_code == 400 and "找不到本支部的党员" in foreign.get_data(as_text=True)
    own = client.post(f"/admin/exams/{exam.id}/overrides", data={"username": "secretary", "extra_minutes": "3"})
    assert "不能为自己设置" in own.get_data(as_text=True)
    early = client.post(f"/admin/exams/{exam.id}/overrides", data={"username": "member",
                                                                    "closes_at": "2026-06-01T08:30"})
    assert "应晚于考试原定的结束时间" in early.get_data(as_text=True)
    ok = client.post(f"/admin/exams/{exam.id}/overrides", data={"username": "member", "extra_minutes": "15",
                                                                 "closes_at": "2026-06-01T12:00"})
    assert ok.status_code == 302
    row = db.session.scalar(select(ExamOverride))
    assert row.extra_minutes == 15 and row.closes_at == T0 + dt.timedelta(hours=3)  # Beijing 12:00 = 04:00 UTC
    listed = client.get(f"/admin/exams/{exam.id}").get_data(as_text=True)
    assert "刘志强" in listed and "15 分钟" in listed and "张书记" in listed
    branch = client.post(f"/admin/exams/{exam.id}/overrides", data={"branch": "ZC1", "extra_attempts": "1"})
    assert branch.status_code == 302
    assert db.session.scalar(select(func.count(ExamOverride.id))) == 2
    client.post(f"/admin/exams/{exam.id}/overrides/{row.id}/remove")
    assert db.session.scalar(select(func.count(ExamOverride.id))) == 1
    auth.logout()
    auth.login("jdsec")  # another branch's secretary neither sees nor removes ZC1's
    other_row = db.session.scalar(select(ExamOverride))
    page = client.get(f"/admin/exams/{exam.id}").get_data(as_text=True)
    assert 'id="overrides"' in page and f"/overrides/{other_row.id}/remove" not in page
    assert client.post(f"/admin/exams/{exam.id}/overrides/{other_row.id}/remove").status_code == 403
    auth.logout()
    auth.login("lecturer")
    assert 'id="overrides"' not in client.get(f"/admin/exams/{exam.id}").get_data(as_text=True)
    assert client.post(f"/admin/exams/{exam.id}/overrides", data={"branch": "ZC1", "extra_attempts": "1"}) \
        .status_code == 403


def test_answers_stay_hidden_while_someone_may_still_sit_it(api, org, bank, pinned):
    exam = make_exam(bank, closes_at=T0 + dt.timedelta(hours=1), review_when="close")
    body = _start(api, org["mate"], exam)
    api.post(f"/attempts/{body['attempt_id']}/submit")
    api.token(org["admin"])
    api.put(f"/exams/{exam.id}/overrides/member", json={"closes_at": "2026-06-01T05:00:00Z"})
    clock.pin(T0 + dt.timedelta(hours=2))
    api.token(org["mate"])
    assert api.get(f"/attempts/{body['attempt_id']}").get_json()["review"] is None
    clock.pin(T0 + dt.timedelta(hours=5))
    assert api.get(f"/attempts/{body['attempt_id']}").get_json()["review"]


@pytest.mark.postgres_only
def test_parallel_puts_end_in_one_consistent_row(backend, app, api, org, bank, pinned):
    import threading

    if backend == "sqlite":
        pytest.skip("races need PostgreSQL")
    exam = make_exam(bank, time_limit=600)
    running = _start(api, org["member"], exam)
    api.token(org["admin"])
    headers, exam_id = api.headers, exam.id
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    results = [None] * threads_n

    def run(i):
        client = app.test_client()
        barrier.wait()
        path = f"/api/v1/exams/{exam_id}/overrides/" + ("member" if i % 2 else "branch/ZC1")
        response = client.put(path, headers=headers, json={"extra_minutes": 5 + i // 2, "extra_attempts": 1})
        results[i] = response.status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * threads_n
    db.session.expire_all()
    rows = db.session.scalars(select(ExamOverride)).all()
    assert sorted(r.user_id is None for r in rows) == [False, True]  # one for the member, one for the branch
    member_row = next(r for r in rows if r.user_id is not None)
    assert member_row.extra_minutes in {5, 6, 7, 8} and member_row.extra_attempts == 1
    # the running attempt's deadline matches the row that won (the member's own minutes)
    assert _deadline(running["attempt_id"]) == T0 + dt.timedelta(minutes=10 + member_row.extra_minutes)
    assert _audits() >= 2


def test_the_sitting_page_can_ask_for_its_moved_deadline(api, org, bank, pinned):
    exam = make_exam(bank, time_limit=600)
    body = _start(api, org["member"], exam)
    path = f"/attempts/{body['attempt_id']}/deadline"
    assert api.get(path).get_json() == {"deadline": "2026-06-01T01:10:00Z", "server_now": "2026-06-01T01:00:00Z",
                                        "state": "in_progress"}
    api.token(org["admin"])
    api.put(f"/exams/{exam.id}/overrides/member", json={"extra_minutes": 5})
    assert api.get(path).status_code == 404  # not the admin's attempt
    api.token(org["member"])
    response = api.get(path)
    assert response.get_json()["deadline"] == "2026-06-01T01:15:00Z"
    assert response.headers["Cache-Control"] == "no-store"


def test_nul_bytes_and_long_names_are_harmless(client, auth, api, org, bank, pinned):
    exam = make_exam(bank, closes_at=T0 + dt.timedelta(hours=1))
    api.token(org["admin"])
    for path in (f"/exams/{exam.id}/overrides/me%00x", f"/exams/{exam.id}/overrides/branch/Z%00",
                 f"/exams/{exam.id}/overrides/{'x' * 300}", f"/exams/{exam.id}/overrides/branch/{'x' * 300}"):
        assert api.put(path, json={"extra_minutes": 1}).status_code in (400, 404)
        assert api.get(path).status_code in (400, 404)
    bad = api.put(f"/exams/{exam.id}/overrides/member", json={"closes_at": "2026-06-01T03:00:00\x00Z"})
    assert bad.status_code == 400
    auth.login("admin")
    page = client.post(f"/admin/exams/{exam.id}/overrides", data={"username": "mem\x00ber", "extra_minutes": "1",
                                                                   "branch": "Z\x00"})
    assert page.status_code == 400
