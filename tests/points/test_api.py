import datetime as dt

import pytest

from pbschool import clock
from pbschool.extensions import db
from pbschool.points import services


@pytest.fixture
def board_data(app, make):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    zc = make.branch(code="ZC1", name="综采一队党支部")
    jd = make.branch(code="JD", name="机电科党支部")
    a = make.user("zhang", branch=zc, name="张三")
    b = make.user("li", branch=jd, name="李四")
    make.user("wang", branch=zc, name="王五")
    services.record_event(a, "exam_passed", "attempt:1", points=3, value=90)
    services.record_event(b, "meeting_attended", "meeting:1:user:2")
    services.record_event(a, "lesson_completed", "lesson:1:user:1", value=1)
    db.session.commit()
    return a, b


def test_me_points(board_data, api):
    a, _b = board_data
    body = api.token(a).get("/me/points").get_json()
    assert body["balance"] == 4.0 and body["this_month"] == 4.0
    assert [e["category"] for e in body["entries"]] == ["学习", "考试"]
    assert body["entries"][0]["reason"] and body["entries"][0]["created_at"].endswith("Z")
    assert set(body["entries"][0]) >= {"id", "points", "category", "reason", "created_at"}


def test_leaderboard_committee_and_branch(board_data, api):
    a, _b = board_data
    api.token(a)
    body = api.get("/leaderboard?period=2026-03").get_json()
    assert body["period"] == "2026-03" and body["published"] is False
    assert [(r["rank"], r["username"], r["branch"], r["points"]) for r in body["rows"]] == [
        (1, "li", "JD", 5.0), (2, "zhang", "ZC1", 4.0), (3, "wang", "ZC1", 0.0)]
    branch = api.get("/leaderboard?period=2026-03&branch=ZC1").get_json()
    assert [(r["rank"], r["username"]) for r in branch["rows"]] == [(1, "zhang"), (2, "wang")]
    clock.pin(dt.datetime(2026, 4, 3))
    services.publish_month("2026-03")
    db.session.commit()
    assert api.get("/leaderboard?period=2026-03").get_json()["published"] is True


@pytest.mark.parametrize("query", ["period=2026-13", "period=March", "period=", "period=2026-3"])
def test_leaderboard_bad_period_is_400_json(board_data, api, query):
    response = api.token(board_data[0]).get(f"/leaderboard?{query}")
    if query == "period=":
        assert response.status_code == 200  # empty means this month
        return
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_period"


def test_leaderboard_unknown_branch_is_404_and_auth_is_needed(board_data, api, client):
    assert api.token(board_data[0]).get("/leaderboard?branch=NOPE").status_code == 404
    assert client.get("/api/v1/me/points").status_code == 401
    assert client.get("/api/v1/leaderboard").status_code == 401


def test_openapi_documents_the_points_endpoints(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "/me/points" in paths and "/leaderboard" in paths


def test_leaderboard_cache_follows_appends_and_publication(app_factory, make, api):
    from pbschool.extensions import db as _db
    from pbschool.points import queries

    app = app_factory(POINTS_BOARD_CACHE_SECONDS=60)
    with app.app_context():
        queries._boards.clear()
        clock.pin(dt.datetime(2026, 3, 10, 2, 0))
        member = make.user("zhang")
        api.client = app.test_client()
        api.token(member)
        assert api.get("/leaderboard?period=2026-03").get_json()["rows"][0]["points"] == 0.0
        services.record_event(member, "meeting_attended", "meeting:1:user:1")
        _db.session.commit()
        assert api.get("/leaderboard?period=2026-03").get_json()["rows"][0]["points"] == 5.0
        clock.pin(dt.datetime(2026, 4, 2))
        services.publish_month("2026-03")
        _db.session.commit()
        assert api.get("/leaderboard?period=2026-03").get_json()["published"] is True
        queries._boards.clear()


def test_an_expired_board_is_served_while_it_is_rebuilt_behind(app_factory, make, api, monkeypatch):
    """A rename does not move the ledger: the board shows it once the cache's seconds have run out,
    and the request that finds the board expired does not wait for the rebuild."""
    import time

    from pbschool.extensions import db as _db
    from pbschool.points import queries

    app = app_factory(POINTS_BOARD_CACHE_SECONDS=60)
    with app.app_context():
        queries._boards.clear()
        clock.pin(dt.datetime(2026, 3, 10, 2, 0))
        member = make.user("zhang", name="张三", branch=make.branch(code="ZC1"))
        api.client = app.test_client()
        api.token(member)
        assert api.get("/leaderboard?period=2026-03").get_json()["rows"][0]["name"] == "张三"
        member.name = "张叁"
        _db.session.commit()
        assert api.get("/leaderboard?period=2026-03").get_json()["rows"][0]["name"] == "张三"  # cached
        later = time.monotonic() + 61
        monkeypatch.setattr(queries.time, "monotonic", lambda: later)
        assert api.get("/leaderboard?period=2026-03").get_json()["rows"][0]["name"] == "张三"  # expired, shown
        for _ in range(100):
            if not queries._boards.refreshing:
                break
            time.sleep(0.05)
        assert api.get("/leaderboard?period=2026-03").get_json()["rows"][0]["name"] == "张叁"
        queries._boards.clear()


def test_award_through_the_api(board_data, api, make):
    a, b = board_data
    secretary = make.user("sec", role="secretary", branch=a.branch)
    api.token(secretary)
    body = {"username": "zhang", "points": -2, "reason": "无故缺席", "category": "组织生活", "veto": True, "key": "k1"}
    first = api.post("/points/awards", json=body)
    assert first.status_code == 200 and first.get_json()["points"] == -2.0 and first.get_json()["is_veto"]
    again = api.post("/points/awards", json=body)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert services.balance(a) == 2.0
    assert api.post("/points/awards", json={**body, "username": "li", "key": "k2"}).status_code == 403
    assert api.post("/points/awards", json={**body, "username": "nobody"}).status_code == 404
    assert api.post("/points/awards", json={**body, "points": "2"}).status_code == 400
    assert api.post("/points/awards", json={**body, "reason": " ", "key": "k3"}).status_code == 400
    api.token(a)
    assert api.post("/points/awards", json={**body, "username": "wang", "key": "k4"}).status_code == 403


def test_leaderboard_pages_compresses_and_revalidates(board_data, api, monkeypatch):
    import gzip
    import json

    from pbschool.points import api as points_api

    monkeypatch.setattr(points_api, "GZIP_ABOVE", 10)  # the test board is small
    api.token(board_data[0])
    whole = api.get("/leaderboard?period=2026-03")
    assert whole.get_json()["total"] == 3 and len(whole.get_json()["rows"]) == 3
    page = api.get("/leaderboard?period=2026-03&limit=2&offset=1").get_json()
    assert page["total"] == 3 and [r["username"] for r in page["rows"]] == ["zhang", "wang"]
    for bad in ("limit=0", "limit=x", "offset=-1", "limit=10001"):
        refused = api.get(f"/leaderboard?period=2026-03&{bad}")
        assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_page"
    # a phone that accepts gzip gets the same board, compressed
    zipped = api.get("/leaderboard?period=2026-03", headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["Vary"]
    assert json.loads(gzip.decompress(zipped.get_data())) == whole.get_json()
    # asking again with the ETag costs nothing while the board stands ...
    etag = whole.headers["ETag"]
    again = api.get("/leaderboard?period=2026-03", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    # ... and gives the new board once a point moves it
    services.record_event(board_data[1], "meeting_attended", "meeting:etag:user:b")
    db.session.commit()
    moved = api.get("/leaderboard?period=2026-03", headers={"If-None-Match": etag})
    assert moved.status_code == 200 and moved.headers["ETag"] != etag
