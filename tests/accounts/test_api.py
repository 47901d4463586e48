import datetime as dt

from pbschool import clock
from pbschool.accounts.models import ApiToken
from pbschool.extensions import db
from tests.factories import PASSWORD


def error_code(response):
    body = response.get_json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    return body["error"]["code"]


def test_token_then_me(api, make):
    member = make.user("liuzq", name="刘志强")
    response = api.token(member).get("/me")
    assert response.status_code == 200
    assert response.get_json() == {"username": "liuzq", "name": "刘志强", "role": "member",
                                   "branch": member.branch.code}


def test_me_for_an_admin_without_a_branch(api, make):
    make.user("boss", role="admin")
    assert api.token("boss").get("/me").get_json()["branch"] is None


def test_wrong_password_unknown_user_and_missing_fields(client, make):
    make.user("liuzq")
    wrong = client.post("/api/v1/tokens", json={"username": "liuzq", "password": "nope-nope"})
    assert wrong.status_code == 401 and error_code(wrong) == "invalid_credentials"
    unknown = client.post("/api/v1/tokens", json={"username": "ghost", "password": PASSWORD})
    assert unknown.status_code == 401 and error_code(unknown) == "invalid_credentials"
    missing = client.post("/api/v1/tokens", json={"username": "liuzq"})
    assert missing.status_code == 400 and error_code(missing) == "missing_field"
    wrong_type = client.post("/api/v1/tokens", json={"username": "liuzq", "password": 12345678})
    assert wrong_type.status_code == 400 and error_code(wrong_type) == "invalid_field"


def test_malformed_bodies_are_400_json_not_500(client):
    cases = [
        dict(data="{not json", content_type="application/json"),
        dict(data="[1, 2]", content_type="application/json"),
        dict(data="username=x", content_type="application/x-www-form-urlencoded"),
        dict(data=b"\xff\xfe\x00garbage", content_type="application/json"),
        dict(data='"just a string"', content_type="application/json"),
    ]
    for kwargs in cases:
        response = client.post("/api/v1/tokens", **kwargs)
        assert response.status_code == 400, kwargs
        assert error_code(response) == "bad_json"


def test_huge_body_is_413_json(app_factory):
    app = app_factory(MAX_CONTENT_LENGTH=1024)
    response = app.test_client().post("/api/v1/tokens", data="x" * 5000, content_type="application/json")
    assert response.status_code == 413 and error_code(response) == "too_large"


def test_missing_bad_and_revoked_tokens(api, client, make):
    make.user("liuzq")
    missing = client.get("/api/v1/me")
    assert missing.status_code == 401 and error_code(missing) == "unauthorized"
    bad = client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401 and error_code(bad) == "invalid_token"
    basic = client.get("/api/v1/me", headers={"Authorization": "Basic bGl1enE6eA=="})
    assert basic.status_code == 401
    api.token("liuzq")
    assert api.delete("/tokens/current").status_code == 200
    revoked = api.get("/me")
    assert revoked.status_code == 401 and error_code(revoked) == "invalid_token"


def test_tokens_are_stored_hashed_and_expire(api, make):
    make.user("liuzq")
    api.token("liuzq")
    raw = api.headers["Authorization"].split()[1]
    row = db.session.scalar(db.select(ApiToken))
    assert row.token_hash != raw and len(row.token_hash) == 64
    clock.pin(clock.now() + dt.timedelta(days=31))
    assert api.get("/me").status_code == 401


def test_deactivated_users_token_stops_working(api, make):
    user = make.user("liuzq")
    api.token(user)
    user.is_active_account = False
    db.session.commit()
    assert api.get("/me").status_code == 401


def test_password_change_revokes_tokens(api, client, auth, make):
    make.user("liuzq")
    api.token("liuzq")
    auth.login("liuzq")
    client.post("/account/password", data={"current": PASSWORD, "new": "another-pass-7",
                                           "confirm": "another-pass-7"})
    assert api.get("/me").status_code == 401


def test_token_endpoint_is_throttled_per_account(client, make):
    make.user("liuzq")
    for _ in range(5):
        assert client.post("/api/v1/tokens", json={"username": "liuzq", "password": "x" * 9}).status_code == 401
    throttled = client.post("/api/v1/tokens", json={"username": "liuzq", "password": PASSWORD})
    assert throttled.status_code == 429 and error_code(throttled) == "too_many_requests"


def test_unknown_api_paths_and_methods_are_json(api, client, make):
    make.user("liuzq")
    api.token("liuzq")
    assert error_code(api.get("/no-such-thing")) in ("not_found", "unauthorized")
    response = api.post("/me", json={})
    assert response.status_code == 405 and error_code(response) == "method_not_allowed"


def test_session_cookie_writes_need_the_csrf_header(app_factory):
    from tests.factories import Factory

    app = app_factory(WTF_CSRF_ENABLED=True)
    with app.app_context():
        Factory().user("liuzq")
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post("/login", data={"username": "liuzq", "password": PASSWORD, "csrf_token": token})
    assert client.get("/api/v1/me").status_code == 200  # reads work with the cookie alone
    # the token from before login is void after it (login starts a new CSRF secret)
    stale = client.delete("/api/v1/tokens/current", headers={"X-CSRFToken": token})
    assert stale.status_code == 400 and stale.get_json()["error"]["code"] == "csrf"
    page = client.get("/account/password").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    refused = client.delete("/api/v1/tokens/current")
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "csrf"
    allowed = client.delete("/api/v1/tokens/current", headers={"X-CSRFToken": token})
    assert allowed.status_code == 400 and allowed.get_json()["error"]["code"] == "no_token"


def test_openapi_document_lists_the_contract(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert {"/tokens", "/me", "/openapi.json"} <= set(doc["paths"])
    assert "post" in doc["paths"]["/tokens"] and "get" in doc["paths"]["/me"]
    assert doc["paths"]["/me"]["get"]["security"] == [{"bearer": []}]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_nul_bytes_are_a_400_everywhere(client, make):
    make.user("liuzq")
    assert client.post("/api/v1/tokens", json={"username": "liu\x00zq", "password": "x" * 9}).status_code == 400
    assert client.post("/login", data={"username": "liu\x00zq", "password": "x"}).status_code == 400
    assert client.get("/login?next=/\x00").status_code == 400


# -- a password someone else set is changed first, in the API too (issue 12, item 1) ---------------

def _must_change(user):
    user.must_change_password = True
    db.session.commit()


def test_a_generated_password_gets_a_token_but_nothing_else_until_it_is_changed(api, make):
    """Reproduction: with a generated password, a token started exams, recorded study time and
    answered /me; only the HTML pages forced the change."""
    from tests.exams.conftest import make_bank, make_exam

    exam = make_exam(make_bank())
    user = make.user("liuzq")
    _must_change(user)
    assert api.token("liuzq").headers  # the token is still issued
    for call in (lambda: api.get("/me"), lambda: api.post(f"/exams/{exam.id}/attempts"),
                 lambda: api.post("/lessons/1/progress", json={"seconds": 30}), lambda: api.get("/me/points"),
                 lambda: api.get("/exams")):
        response = call()
        assert response.status_code == 403 and error_code(response) == "password_change_required"
    assert api.get("/exams").get_json()["error"]["message"].startswith("请先修改密码")
    changed = api.post("/me/password", json={"current": PASSWORD, "new": "my-own-choice-7"})
    assert changed.status_code == 200 and changed.get_json() == {"changed": True}
    assert api.get("/me").status_code == 401  # a new password revokes every token, this one too
    assert api.token("liuzq", "my-own-choice-7").get("/me").status_code == 200
    assert db.session.get(type(user), user.id).must_change_password is False


def test_a_browser_session_with_an_office_password_is_held_at_the_api_too(client, auth, make):
    user = make.user("liuzq")
    _must_change(user)
    auth.login("liuzq")
    response = client.get("/api/v1/me")
    assert response.status_code == 403 and error_code(response) == "password_change_required"


def test_api_password_change_refuses_a_wrong_current_and_a_common_new_one(api, make):
    make.user("liuzq")
    api.token("liuzq")
    wrong = api.post("/me/password", json={"current": "not-my-password", "new": "my-own-choice-7"})
    assert wrong.status_code == 400 and error_code(wrong) == "wrong_password"
    for weak in ("password", "12345678", "qwertyui", "woaini1314", "liuzq-2026"):
        response = api.post("/me/password", json={"current": PASSWORD, "new": weak})
        assert response.status_code == 400 and error_code(response) == "weak_password", weak
    assert api.get("/me").status_code == 200  # nothing changed: the token still works
    assert api.post("/me/password", json={"current": PASSWORD}).status_code == 400


def test_an_admin_typed_password_must_be_replaced_too(client, auth, make):
    make.user("boss", role="admin")
    make.branch("JD")
    auth.login("boss")
    response = client.post("/admin/users/new", data={"username": "wangwu", "name": "王五", "role": "member",
                                                     "branch": "JD", "job_post": "", "password": "office-chose-7"})
    assert response.status_code == 302
    user = db.session.scalar(db.select(ApiToken.user.property.mapper.class_).filter_by(username="wangwu"))
    assert user.must_change_password
