from sqlalchemy import select

from pbschool.accounts.models import AuditLog, Branch, User
from pbschool.extensions import db
from tests.factories import PASSWORD


def test_login_page_is_chinese_and_mobile_ready(client):
    page = client.get("/login")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in html
    assert "登录网上党校" in html
    assert 'name="viewport"' in html
    assert "http://" not in html and "https://" not in html  # nothing from an outside host


def test_english_is_the_second_locale(client):
    html = client.get("/login?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Sign in" in html


def test_each_request_speaks_the_language_chosen_last(client):
    """Translations are looked up once per request: switching back and forth changes every page after."""
    assert "Sign in" in client.get("/login?lang=en").get_data(as_text=True)
    assert "Sign in" in client.get("/login").get_data(as_text=True)  # remembered in the session
    client.get("/lang/zh_CN")
    html = client.get("/login").get_data(as_text=True)
    assert "登录网上党校" in html and "Sign in" not in html


def test_home_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_member_logs_in_and_sees_their_home(client, auth, make):
    member = make.user("liuzq", name="刘志强", job_post="采煤机司机")
    response = auth.login("liuzq")
    assert response.status_code == 302
    html = client.get("/").get_data(as_text=True)
    assert "您好，刘志强" in html
    assert member.branch.name in html
    assert "采煤机司机" in html
    assert db.session.get(User, member.id).last_login_at is not None


def test_wrong_password_is_refused_with_a_chinese_error_and_logged(client, auth, make):
    make.user("liuzq")
    response = auth.login("liuzq", "wrong-password")
    assert response.status_code == 200
    assert "用户名或密码不正确" in response.get_data(as_text=True)
    assert 'value="liuzq"' in response.get_data(as_text=True)  # what was typed is kept
    assert client.get("/").status_code == 302
    failed = db.session.scalars(select(AuditLog).where(AuditLog.action == "auth.failed")).all()
    assert [f.details["username"] for f in failed] == ["liuzq"]


def test_deactivated_user_cannot_log_in(auth, make):
    make.user("gone", active=False)
    assert auth.login("gone").status_code == 200


def test_login_ignores_an_outside_next_url(client, auth, make):
    make.user("liuzq")
    response = client.post("/login?next=https://evil.example/", data={"username": "liuzq", "password": PASSWORD})
    assert response.headers["Location"] == "/"


def test_login_is_throttled_per_account(client, auth, make):
    make.user("liuzq")
    for _ in range(5):
        assert auth.login("liuzq", "nope-nope-nope").status_code == 200
    throttled = auth.login("liuzq", PASSWORD)
    assert throttled.status_code == 429
    assert "尝试次数过多" in throttled.get_data(as_text=True)
    # Another account from the same address is not locked out by it.
    make.user("other")
    assert auth.login("other").status_code == 302


def test_successful_logins_do_not_count_against_the_limit(client, auth, make):
    make.user("liuzq")
    for _ in range(8):
        assert auth.login("liuzq").status_code == 302
        client.post("/logout")


def test_logout_invalidates_a_copied_session_cookie(client, app, auth, make):
    make.user("liuzq")
    auth.login("liuzq")
    stolen = client.get_cookie("session").value
    auth.logout()
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get("/").status_code == 302


def test_change_password_logs_out_other_devices(app, client, auth, make):
    user = make.user("liuzq")
    other_device = app.test_client()
    other_device.post("/login", data={"username": "liuzq", "password": PASSWORD})
    assert other_device.get("/").status_code == 200
    auth.login("liuzq")
    response = client.post("/account/password", data={"current": PASSWORD, "new": "brand-new-pass-1",
                                                      "confirm": "brand-new-pass-1"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200  # this device stays in
    assert other_device.get("/").status_code == 302  # the other is out
    client.post("/logout")
    assert auth.login("liuzq", "brand-new-pass-1").status_code == 302
    assert db.session.get(User, user.id).must_change_password is False


def test_change_password_errors_are_shown_next_to_the_field(client, auth, make):
    make.user("liuzq")
    auth.login("liuzq")
    html = client.post("/account/password", data={"current": "wrong-one", "new": "brand-new-pass-1",
                                                  "confirm": "brand-new-pass-1"}).get_data(as_text=True)
    assert "当前密码不正确" in html
    html = client.post("/account/password", data={"current": PASSWORD, "new": "short",
                                                  "confirm": "short"}).get_data(as_text=True)
    assert "密码长度需为 8–128 个字符" in html
    html = client.post("/account/password", data={"current": PASSWORD, "new": "brand-new-pass-1",
                                                  "confirm": "brand-new-pass-2"}).get_data(as_text=True)
    assert "两次输入的新密码不一致" in html


def test_deactivated_user_is_out_on_the_next_request(client, auth, make):
    user = make.user("liuzq")
    auth.login("liuzq")
    assert client.get("/").status_code == 200
    user.is_active_account = False
    db.session.commit()
    assert client.get("/").status_code == 302


def test_security_headers_and_cookie_flags(client, auth, make):
    make.user("liuzq")
    response = auth.login("liuzq")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/")
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


def test_forms_need_a_csrf_token(app_factory, make):
    app = app_factory(WTF_CSRF_ENABLED=True)
    with app.app_context():
        from tests.factories import Factory

        Factory().user("liuzq")
    client = app.test_client()
    response = client.post("/login", data={"username": "liuzq", "password": PASSWORD})
    assert response.status_code == 400


# -- admin: branches and users ---------------------------------------------------------------

def test_admin_creates_a_branch_and_a_duplicate_code_is_refused(client, auth, make):
    make.user("boss", role="admin")
    auth.login("boss")
    response = client.post("/admin/branches/new", data={"code": "ZC2", "name": "综采二队党支部",
                                                        "is_active": "y"})
    assert response.status_code == 302
    assert db.session.scalar(select(Branch).where(Branch.code == "ZC2")).name == "综采二队党支部"
    html = client.post("/admin/branches/new", data={"code": "zc2", "name": "重复"}).get_data(as_text=True)
    assert "支部代码 zc2 已存在" in html


def test_admin_adds_a_user_with_a_generated_password_shown_once(client, auth, make):
    make.user("boss", role="admin")
    branch = make.branch("JD", "机电科党支部")
    auth.login("boss")
    response = client.post("/admin/users/new", data={"username": "sunlj", "name": "孙丽娟", "role": "member",
                                                     "branch": "JD", "job_post": "电工", "password": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "只显示这一次" in html
    user = db.session.scalar(select(User).where(User.username == "sunlj"))
    assert user.branch_id == branch.id and user.must_change_password


def test_admin_form_errors_keep_what_was_typed(client, auth, make):
    make.user("boss", role="admin")
    make.user("taken")
    auth.login("boss")
    html = client.post("/admin/users/new", data={"username": "taken", "name": "某人", "role": "member",
                                                 "branch": ""}).get_data(as_text=True)
    assert "党员和支部书记必须属于一个支部" in html or "用户名 taken 已存在" in html
    assert 'value="某人"' in html


def test_admin_moves_a_member_to_another_branch_and_it_is_audited(client, auth, make):
    admin = make.user("boss", role="admin")
    member = make.user("liuzq")
    target = make.branch("JD", "机电科党支部")
    auth.login("boss")
    response = client.post(f"/admin/users/{member.id}", data={
        "username": "liuzq", "name": member.name, "role": "member", "branch": "JD", "job_post": "电工"})
    assert response.status_code == 302
    db.session.refresh(member)
    assert member.branch_id == target.id and member.job_post == "电工"
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "user.update"))
    assert entry.actor_id == admin.id and entry.details["branch"][1] == "JD"


def test_admin_deactivates_and_resets_a_password(app, client, auth, make):
    make.user("boss", role="admin")
    member = make.user("liuzq")
    member_device = app.test_client()
    member_device.post("/login", data={"username": "liuzq", "password": PASSWORD})
    auth.login("boss")
    html = client.post(f"/admin/users/{member.id}/reset-password").get_data(as_text=True)
    assert "只显示这一次" in html
    assert member_device.get("/").status_code == 302  # the reset logged them out
    client.post(f"/admin/users/{member.id}/active", data={"active": "0"})
    db.session.refresh(member)
    assert member.is_active is False


def test_admin_cannot_deactivate_themself(client, auth, make):
    boss = make.user("boss", role="admin")
    auth.login("boss")
    client.post(f"/admin/users/{boss.id}/active", data={"active": "0"})
    db.session.refresh(boss)
    assert boss.is_active


def test_members_and_lecturers_cannot_reach_admin_pages(client, auth, make):
    victim = make.user("victim")
    make.user("liuzq")
    make.user("teacher", role="lecturer")
    for username in ("liuzq", "teacher"):
        auth.login(username)
        for url in ("/admin/users", "/admin/branches", "/admin/users/new", "/admin/users/import",
                    f"/admin/users/{victim.id}"):
            assert client.get(url).status_code == 403, (username, url)
        assert client.post(f"/admin/users/{victim.id}/active", data={"active": "0"}).status_code == 403
        assert client.post(f"/admin/users/{victim.id}/reset-password").status_code == 403
        client.post("/logout")
    assert db.session.get(User, victim.id).is_active


def test_secretary_sees_only_their_branch(client, auth, make):
    own = make.branch("ZC1", "综采一队党支部")
    other = make.branch("JD", "机电科党支部")
    make.user("sec", role="secretary", branch=own)
    mine = make.user("mine", branch=own, name="本支部党员")
    theirs = make.user("theirs", branch=other, name="外支部党员")
    auth.login("sec")
    html = client.get("/admin/users").get_data(as_text=True)
    assert "本支部党员" in html and "外支部党员" not in html
    html = client.get("/admin/users?branch=JD").get_data(as_text=True)
    assert "外支部党员" not in html
    assert client.get(f"/admin/users/{mine.id}").status_code == 200
    assert client.get(f"/admin/users/{theirs.id}").status_code == 403
    # Read only: the secretary cannot change the member through the form either.
    client.post(f"/admin/users/{mine.id}", data={"username": "mine", "name": "改名", "role": "admin",
                                                 "branch": "ZC1"})
    assert db.session.get(User, mine.id).role == "member"
    assert client.get("/admin/branches").status_code == 403


def test_unknown_ids_are_404_not_500(client, auth, make):
    make.user("boss", role="admin")
    auth.login("boss")
    assert client.get("/admin/users/999999").status_code == 404
    assert client.get("/admin/branches/999999").status_code == 404
    assert client.get("/no/such/page").status_code == 404


def test_the_login_form_and_the_token_api_share_one_allowance(client, auth, make):
    make.user("liuzq")
    for _ in range(3):
        assert auth.login("liuzq", "nope-nope-nope").status_code == 200
    wrong = {"username": "liuzq", "password": "nope-nope-nope"}
    for _ in range(2):
        assert client.post("/api/v1/tokens", json=wrong).status_code == 401
    # five failures in all, through two doors: both are shut now, even for the right password
    assert client.post("/api/v1/tokens", json={"username": "liuzq", "password": PASSWORD}).status_code == 429
    assert auth.login("liuzq", PASSWORD).status_code == 429
