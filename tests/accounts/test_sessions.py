"""Sessions, remember-me and passwords (OWASP ASVS 5.0, V6 authentication and V7 session management).

What is already in test_views.py is not repeated here: logout kills a copied session cookie, a
password change logs out the other devices, a deactivated user is out on the next request, the
session cookie's HttpOnly/SameSite flags in the test config, CSRF on forms, the failed-login audit
entry's username.
"""

import logging

import pytest
from sqlalchemy import func, select

from pbschool import config
from pbschool.accounts import services
from pbschool.accounts.importer import import_users
from pbschool.accounts.models import AuditLog, User
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.tabular import ImportRefused
from tests.factories import PASSWORD

REMEMBER = "remember_token"
NEW_PASSWORD = "brand-new-pass-1"


def login(client, username, password=PASSWORD, remember=False):
    data = {"username": username, "password": password}
    if remember:
        data["remember"] = "y"
    return client.post("/login", data=data)


def logged_in(client):
    return client.get("/").status_code == 200


def device_with(app, **cookies):
    """A fresh browser that carries only these cookies."""
    device = app.test_client()
    for name, value in cookies.items():
        device.set_cookie(name, value)
    return device


def change_password(client, new, current=PASSWORD):
    return client.post("/account/password", data={"current": current, "new": new, "confirm": new})


# -- remember me -----------------------------------------------------------------------------

def test_login_without_remember_me_sets_no_remember_cookie(client, make):
    make.user("liuzq")
    assert login(client, "liuzq").status_code == 302
    assert client.get_cookie(REMEMBER) is None


def _logout(app, client, make, user):
    client.post("/logout")


def _own_password_change(app, client, make, user):
    assert change_password(client, NEW_PASSWORD).status_code == 302


def _password_change_on_another_device(app, client, make, user):
    other = app.test_client()
    login(other, user.username)
    assert change_password(other, NEW_PASSWORD).status_code == 302


def _admin(app, make):
    make.user("boss", role="admin")
    admin = app.test_client()
    assert login(admin, "boss").status_code == 302
    return admin


def _admin_resets_the_password(app, client, make, user):
    page = _admin(app, make).post(f"/admin/users/{user.id}/reset-password")
    assert "只显示这一次" in page.get_data(as_text=True)


def _admin_deactivates_then_reactivates(app, client, make, user):
    admin = _admin(app, make)
    admin.post(f"/admin/users/{user.id}/active", data={"active": "0"})
    assert db.session.get(User, user.id).is_active is False
    # Switching the account back on does not bring the old cookies back to life.
    admin.post(f"/admin/users/{user.id}/active", data={"active": "1"})
    assert db.session.get(User, user.id).is_active is True


def _import_sets_a_new_password(app, client, make, user):
    csv = f"username,name,branch,role,password\n{user.username},{user.name},{user.branch.code},member," \
          f"{NEW_PASSWORD}\n"
    import_users(csv.encode(), "members.csv")
    db.session.commit()


@pytest.mark.parametrize("event", [_logout, _own_password_change, _password_change_on_another_device,
                                   _admin_resets_the_password, _admin_deactivates_then_reactivates,
                                   _import_sets_a_new_password],
                         ids=lambda f: f.__name__.strip("_"))
def test_a_copied_remember_cookie_logs_in_until_the_account_changes(app, client, make, event):
    user = make.user("liuzq")
    assert login(client, "liuzq", remember=True).status_code == 302
    remember = client.get_cookie(REMEMBER).value
    # The cookie alone, with no session, logs in: so the refusals below are the events' doing.
    before = device_with(app, remember_token=remember)
    assert logged_in(before)
    assert logged_in(before)  # and then rides on the session it was given

    event(app, client, make, db.session.get(User, user.id))

    assert not logged_in(device_with(app, remember_token=remember))
    assert not logged_in(before)


def test_the_device_that_changed_the_password_stays_in_and_its_old_cookies_do_not(app, client, make):
    make.user("liuzq")
    login(client, "liuzq", remember=True)
    old_session = client.get_cookie("session").value
    old_remember = client.get_cookie(REMEMBER).value
    assert change_password(client, NEW_PASSWORD).status_code == 302
    assert logged_in(client)
    assert not logged_in(device_with(app, session=old_session))
    assert not logged_in(device_with(app, session=old_session, remember_token=old_remember))


def test_a_remember_cookie_for_one_user_cannot_be_edited_into_another(app, client, make):
    user = make.user("liuzq")
    victim = make.user("victim")
    login(client, "liuzq", remember=True)
    value = client.get_cookie(REMEMBER).value
    forged = value.replace(f"{user.id}:{user.session_nonce}", f"{victim.id}:{victim.session_nonce}")
    assert forged != value
    assert not logged_in(device_with(app, remember_token=forged))
    assert not logged_in(device_with(app, remember_token=f"{victim.id}:{victim.session_nonce}"))


# -- session cookies replayed after a password change ----------------------------------------

def test_session_cookies_copied_before_a_password_change_are_refused_on_every_device(app, client, make):
    make.user("liuzq")
    phone = app.test_client()
    login(phone, "liuzq")
    login(client, "liuzq")
    copied = {"pc": client.get_cookie("session").value, "phone": phone.get_cookie("session").value}
    assert all(logged_in(device_with(app, session=c)) for c in copied.values())
    assert change_password(phone, NEW_PASSWORD).status_code == 302
    assert logged_in(phone)
    for where, cookie in copied.items():
        assert not logged_in(device_with(app, session=cookie)), where
    assert logged_in(device_with(app, session=phone.get_cookie("session").value))


# -- session fixation ------------------------------------------------------------------------

def test_a_cookie_from_before_the_login_does_not_become_a_logged_in_one(app, make):
    make.user("liuzq")
    attacker = app.test_client()
    attacker.get("/login?lang=zh_CN")  # a pre-login session with something in it
    planted = attacker.get_cookie("session").value
    victim = device_with(app, session=planted)
    assert login(victim, "liuzq").status_code == 302
    after = victim.get_cookie("session").value
    assert after != planted
    assert logged_in(victim)
    # The attacker still holds the pre-login cookie: it stays anonymous.
    assert not logged_in(device_with(app, session=planted))
    assert not logged_in(attacker)


def test_logging_in_on_a_second_device_keeps_the_first_one_in(app, make):
    """Login does not rotate the user's nonce (logout, a password change and deactivation do)."""
    user = make.user("liuzq")
    nonce = user.session_nonce
    first, second = app.test_client(), app.test_client()
    login(first, "liuzq")
    login(second, "liuzq")
    assert logged_in(first) and logged_in(second)
    assert db.session.get(User, user.id).session_nonce == nonce


# -- passwords -------------------------------------------------------------------------------

def test_a_new_password_must_be_8_to_128_characters_with_a_chinese_reason(client, make):
    make.user("liuzq")
    login(client, "liuzq")
    for bad in ("Ab3-xyz", "Ab3-" * 32 + "x"):  # 7 and 129 characters
        response = change_password(client, bad)
        assert response.status_code == 200
        assert "密码长度需为 8–128 个字符" in response.get_data(as_text=True)
    longest = "党" * 64 + "a1" * 32
    assert len(longest) == 128
    assert change_password(client, longest).status_code == 302
    client.post("/logout")
    assert login(client, "liuzq", longest).status_code == 302
    client.post("/logout")
    assert login(client, "liuzq", longest[:-1]).status_code == 200


def test_the_service_refuses_what_the_form_would_let_through(make):
    """Every way in (web form, CLI, import, API) ends in check_password_rules."""
    user = make.user("liuzq")
    for bad, reason in (("Ab3-xyz", "密码至少需要 8 个字符"), ("Ab3-" * 32 + "x", "密码不能超过 128 个字符")):
        with pytest.raises(DomainError) as refused:
            services.change_password(user, PASSWORD, bad)
        assert reason in refused.value.message
    db.session.rollback()


def test_admin_creates_a_user_only_with_an_8_to_128_character_password(client, make):
    make.user("boss", role="admin")
    make.branch("JD", "机电科党支部")
    login(client, "boss")

    def create(username, password):
        return client.post("/admin/users/new", data={"username": username, "name": "孙丽娟", "role": "member",
                                                     "branch": "JD", "password": password})

    for username, bad in (("short", "Ab3-xyz"), ("long", "Ab3-" * 32 + "x")):
        html = create(username, bad).get_data(as_text=True)
        assert "密码长度需为 8–128 个字符" in html
        assert bad not in html  # never echoed back
        assert db.session.scalar(select(User).where(User.username == username)) is None
    longest = "学习强国" * 30 + "abcdefgh"
    assert create("sunlj", longest).status_code == 302
    client.post("/logout")
    assert login(client, "sunlj", longest).status_code == 302


def test_cli_and_import_refuse_a_password_over_128_characters(runner, make):
    make.branch("ZC1")
    long = runner.invoke(args=["user", "add", "newone", "--name", "x", "--branch", "ZC1", "--password-stdin"],
                         input="Ab3-" * 32 + "x\n")
    assert long.exit_code != 0 and "密码不能超过 128 个字符" in long.output
    with pytest.raises(ImportRefused) as exc:
        import_users(("username,name,branch,password\nlisi,李四,ZC1," + "Ab3-" * 32 + "x\n").encode(),
                     "m.csv")
    assert "密码不能超过 128 个字符" in str(exc.value.errors[0].message)
    db.session.rollback()
    assert db.session.scalar(select(func.count(User.id))) == 0


def test_an_admin_reset_gives_a_policy_conforming_password_that_must_be_replaced(app, client, make):
    user = make.user("liuzq")
    make.user("boss", role="admin")
    login(client, "boss")
    html = client.post(f"/admin/users/{user.id}/reset-password").get_data(as_text=True)
    generated = html.split('data-testid="generated-password">')[1].split("<")[0]
    assert services.PASSWORD_MIN <= len(generated) <= services.PASSWORD_MAX
    member = app.test_client()
    assert not logged_in(member) and login(member, "liuzq", PASSWORD).status_code == 200
    response = login(member, "liuzq", generated)
    assert response.headers["Location"] == "/account/password"
    # Clicking past the change does not work: the generated password must not become the long-term one.
    for page in ("/", "/courses", "/admin/users", "/no/such/page"):
        skipped = member.get(page)
        assert skipped.status_code == 302 and skipped.headers["Location"] == "/account/password", page
    assert change_password(member, "Ab3-xyz", current=generated).status_code == 200
    assert change_password(member, NEW_PASSWORD, current=generated).status_code == 302
    assert db.session.get(User, user.id).must_change_password is False
    assert logged_in(member)


@pytest.mark.parametrize("common", ["correct-horse-battery-staple-" * 3, "共产党员先锋模范作用" * 3])
def test_passwords_are_not_truncated_after_72_bytes(client, make, common):
    """bcrypt ignores everything after byte 72; argon2 hashes the whole password."""
    assert len(common.encode()) > 72
    user = make.user("liuzq")
    login(client, "liuzq")
    assert change_password(client, common + "A").status_code == 302
    client.post("/logout")
    assert login(client, "liuzq", common + "B").status_code == 200
    assert login(client, "liuzq", common).status_code == 200
    assert login(client, "liuzq", common + "A").status_code == 302
    assert db.session.get(User, user.id).password_hash.startswith("$argon2id$")


def test_chinese_passwords_work_and_are_told_apart(client, make):
    make.user("liuzq")
    login(client, "liuzq")
    chinese = "我爱学习党史知识"  # 8 characters, 24 bytes
    assert change_password(client, chinese).status_code == 302
    client.post("/logout")
    assert login(client, "liuzq", "我爱学习党史知道").status_code == 200
    assert login(client, "liuzq", chinese).status_code == 302


def test_a_password_is_never_echoed_back_into_the_page(client, make):
    make.user("liuzq")
    typed = "Secret-Typed-Pass-42"
    html = login(client, "liuzq", typed).get_data(as_text=True)
    assert "用户名或密码不正确" in html and typed not in html
    login(client, "liuzq")
    html = client.post("/account/password", data={"current": typed, "new": "Another-Typed-7",
                                                  "confirm": "Another-Typed-8"}).get_data(as_text=True)
    assert "当前密码不正确" in html or "两次输入的新密码不一致" in html
    for secret in (typed, "Another-Typed-7", "Another-Typed-8"):
        assert secret not in html
    html = client.post("/account/password", data={"current": PASSWORD, "new": "Ab3-xyz",
                                                  "confirm": "Ab3-xyz"}).get_data(as_text=True)
    assert "密码长度需为" in html and PASSWORD not in html and "Ab3-xyz" not in html


# -- failed logins in the audit log ----------------------------------------------------------

def test_failed_logins_are_audited_without_the_password(client, make, caplog):
    make.user("liuzq")
    make.user("gone", active=False)
    typed = "Typed-Wrong-Pass-9"
    caplog.set_level(logging.DEBUG)
    login(client, "liuzq", typed)
    login(client, "ghost", typed)
    login(client, "gone", PASSWORD)  # the right password of a deactivated account
    client.post("/api/v1/tokens", json={"username": "liuzq", "password": typed})
    rows = db.session.scalars(select(AuditLog).where(AuditLog.action == "auth.failed")
                              .order_by(AuditLog.id)).all()
    assert [r.details["username"] for r in rows] == ["liuzq", "ghost", "gone", "liuzq"]
    assert all(r.ip == "127.0.0.1" and r.created_at is not None for r in rows)
    for row in rows:
        stored = repr((row.summary, row.details, row.object_id))
        assert typed not in stored and PASSWORD not in stored
    assert typed not in caplog.text and PASSWORD not in caplog.text
    # A successful login writes no failure.
    login(client, "liuzq")
    assert db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "auth.failed")) == 4


# -- no known passwords outside demo mode ----------------------------------------------------

def test_production_refuses_to_load_the_demo_users(app_factory):
    app = app_factory(PBSCHOOL_ENV="production", DEMO_MODE=False)
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["demo"])
        assert result.exit_code != 0
        assert len(result.output.strip().splitlines()) == 1 and "PBSCHOOL_DEMO=1" in result.output
        assert db.session.scalar(select(func.count(User.id))) == 0


def test_a_demo_server_in_production_says_so_with_pbschool_demo(app_factory, monkeypatch, tmp_path):
    monkeypatch.setenv("PBSCHOOL_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    monkeypatch.setenv("PBSCHOOL_LEDGER_KEYS", "1:" + "y" * 32)
    monkeypatch.setenv("PBSCHOOL_DEMO", "1")
    loaded = config.load(str(tmp_path))
    assert loaded["DEMO_MODE"] is True
    monkeypatch.delenv("PBSCHOOL_DEMO")
    assert config.load(str(tmp_path))["DEMO_MODE"] is False
    app = app_factory(PBSCHOOL_ENV="production", DEMO_MODE=True)
    from pbschool import demo

    with app.app_context():
        monkeypatch.setattr("pbschool.registry.demo_loaders", [])  # the accounts are what matters here
        result = app.test_cli_runner().invoke(args=["demo"])
        assert result.exit_code == 0, result.output
        admin = db.session.scalar(select(User).where(User.username == "admin"))
        assert services.verify_password(admin, demo.DEMO_PASSWORD)


def test_init_creates_no_user(backend, tmp_path, request):
    from pbschool import create_app
    from tests.conftest import PG_URL, make_test_config
    from tests.databases import scratch_postgres

    def check(url):
        app = create_app(make_test_config(tmp_path, url))
        with app.app_context():
            result = app.test_cli_runner().invoke(args=["init"])
            assert result.exit_code == 0, result.output
            assert db.session.scalar(select(func.count(User.id))) == 0
            db.session.remove()
            db.engine.dispose()

    if backend == "sqlite":
        check(f"sqlite:///{tmp_path / 'init.db'}")
        return
    if not PG_URL:
        pytest.skip("PostgreSQL: PBSCHOOL_TEST_DATABASE_URL is not set")
    with scratch_postgres(PG_URL, "pbschool_init") as url:
        check(url)


# -- cookie flags in the production configuration --------------------------------------------

def test_production_cookies_are_secure_httponly_and_samesite_lax(app_factory, monkeypatch, tmp_path):
    monkeypatch.setenv("PBSCHOOL_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    monkeypatch.setenv("PBSCHOOL_LEDGER_KEYS", "1:" + "y" * 32)
    production = config.load(str(tmp_path))
    flags = {k: v for k, v in production.items() if k.startswith(("SESSION_COOKIE_", "REMEMBER_COOKIE_"))}
    app = app_factory(**flags)
    with app.app_context():
        from tests.factories import Factory

        Factory().user("liuzq")
    client = app.test_client()
    response = login(client, "liuzq", remember=True)
    assert response.status_code == 302
    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    # __Host- cookies (issue 12): the browser keeps them only if Secure, Path=/ and without Domain
    assert {"__Host-session", "__Host-" + REMEMBER} <= set(cookies)
    for name in ("__Host-session", "__Host-" + REMEMBER):
        attributes = [a.strip().lower() for a in cookies[name].split(";")]
        assert "secure" in attributes, name
        assert "httponly" in attributes, name
        assert "samesite=lax" in attributes, name
        assert "path=/" in attributes, name
        assert not any(a.startswith("domain=") for a in attributes), name
    # and the signed-in pages read them back
    assert client.get("/").status_code == 200


def test_a_password_set_by_import_also_revokes_the_members_api_tokens(api, make):
    user = make.user("liuzq")
    api.token("liuzq")
    assert api.get("/me").status_code == 200
    _import_sets_a_new_password(None, None, make, user)
    assert api.get("/me").status_code == 401
    # the new password signs in, but the office chose it: it must be replaced before anything else
    held = api.token("liuzq", NEW_PASSWORD).get("/me")
    assert held.status_code == 403 and held.get_json()["error"]["code"] == "password_change_required"


def test_a_csrf_token_outlives_the_longest_exam_sitting(app_factory, monkeypatch, tmp_path):
    """An exam may last 24 hours plus extra time; the answers saved at its end carry the token the
    page got at its start, so that token must still be good (production config, not just tests)."""
    import time

    from flask_wtf.csrf import generate_csrf, validate_csrf

    from pbschool import config

    limit = config.load(str(tmp_path))["WTF_CSRF_TIME_LIMIT"]
    app = app_factory(WTF_CSRF_ENABLED=True, WTF_CSRF_TIME_LIMIT=limit)
    with app.test_request_context("/"):
        token = generate_csrf()
        later = time.time() + 30 * 3600
        monkeypatch.setattr(time, "time", lambda: later)
        validate_csrf(token)  # raises ValidationError once expired
