"""Second factor for staff (issue 12, item 5; ASVS 5.0 V6.3.3): TOTP with real codes from pyotp,
recovery codes, required for admins, a setting for secretaries and lecturers."""

import datetime as dt
import re

import pyotp
import pytest
from sqlalchemy import select

from pbschool import clock
from pbschool.accounts.models import RecoveryCode, User
from pbschool.extensions import db
from tests.factories import PASSWORD, Factory

T0 = dt.datetime(2026, 12, 2, 8, 0, 1)


def code_at(secret, moment):
    return pyotp.TOTP(secret).at(moment.replace(tzinfo=dt.UTC))


@pytest.fixture
def app(app_factory):
    app = app_factory(REQUIRE_2FA_FOR_ADMINS=True)
    with app.app_context():
        clock.pin(T0)
        yield app
        db.session.rollback()


def login(client, username, password=PASSWORD):
    return client.post("/login", data={"username": username, "password": password})


def enrol(client, user):
    """Open the enrolment page, read the secret shown there, confirm with a real code."""
    page = client.get("/account/2fa").get_data(as_text=True)
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page).group(1)
    done = client.post("/account/2fa", data={"code": code_at(secret, clock.now())})
    assert done.status_code == 200
    codes = re.findall(r"<code>([a-z0-9-]{19})</code>", done.get_data(as_text=True))
    clock.advance(seconds=30)  # the code used to enrol is spent: the next sign-in needs the next one
    return secret, codes


def test_an_admin_without_a_second_factor_is_sent_to_enrol_before_anything_else(client, make):
    make.user("boss", role="admin")
    assert login(client, "boss").status_code == 302
    for path in ("/", "/admin/users", "/account/sessions"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"] == "/account/2fa", path
    page = client.get("/account/2fa").get_data(as_text=True)
    assert 'src="data:image/svg+xml' in page  # the QR code is drawn here, not fetched from elsewhere
    assert "须启用两步验证" in page
    wrong = client.post("/account/2fa", data={"code": "000000"})
    assert wrong.status_code == 200 and "验证码不正确" in wrong.get_data(as_text=True)
    assert client.get("/").status_code == 302
    _secret, codes = enrol(client, None)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert client.get("/admin/users").status_code == 200


def test_enrolled_login_asks_for_the_code_after_the_password(client, make):
    make.user("boss", role="admin")
    login(client, "boss")
    secret, _codes = enrol(client, None)
    client.post("/logout")
    response = login(client, "boss")
    assert response.status_code == 302 and response.headers["Location"] == "/login/2fa"
    assert client.get("/").status_code == 302  # the password alone signs nobody in
    assert client.post("/login/2fa", data={"code": "123456"}).status_code == 200
    good = client.post("/login/2fa", data={"code": code_at(secret, clock.now())})
    assert good.status_code == 302 and good.headers["Location"] == "/"
    assert client.get("/admin/users").status_code == 200


def test_the_same_code_is_refused_a_second_time_within_its_window(app, make):
    make.user("boss", role="admin")
    first = app.test_client()
    login(first, "boss")
    secret, _codes = enrol(first, None)
    code = code_at(secret, clock.now())
    second = app.test_client()
    login(first, "boss")
    first.post("/logout")
    login(first, "boss")
    assert first.post("/login/2fa", data={"code": code}).status_code == 302
    login(second, "boss")
    replay = second.post("/login/2fa", data={"code": code})
    assert replay.status_code == 200 and "验证码不正确或已使用" in replay.get_data(as_text=True)
    assert second.get("/").status_code == 302
    # an earlier step's code is refused too, once a later one was taken
    assert second.post("/login/2fa", data={"code": code_at(secret, clock.now() - dt.timedelta(seconds=30))}
                       ).status_code == 200
    clock.advance(seconds=30)
    assert second.post("/login/2fa", data={"code": code_at(secret, clock.now())}).status_code == 302


def test_a_recovery_code_signs_in_once_and_is_stored_hashed(client, make):
    boss = make.user("boss", role="admin")
    login(client, "boss")
    _secret, codes = enrol(client, None)
    stored = db.session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == boss.id)).all()
    assert len(stored) == 10 and not set(codes) & set(stored)
    client.post("/logout")
    login(client, "boss")
    assert client.post("/login/2fa", data={"code": codes[3].upper()}).status_code == 302
    client.post("/logout")
    login(client, "boss")
    used = client.post("/login/2fa", data={"code": codes[3]})
    assert used.status_code == 200 and client.get("/").status_code == 302
    assert "剩余恢复码：8 个" in _signed_in_with(client, codes[4]).get("/account/2fa").get_data(as_text=True)


def _signed_in_with(client, code):
    assert client.post("/login/2fa", data={"code": code}).status_code == 302
    return client


def test_guessing_codes_is_throttled_like_passwords(client, make):
    make.user("boss", role="admin")
    login(client, "boss")
    secret, _codes = enrol(client, None)
    client.post("/logout")
    login(client, "boss")
    for _ in range(5):
        assert client.post("/login/2fa", data={"code": "000000"}).status_code == 200
    assert client.post("/login/2fa", data={"code": code_at(secret, clock.now())}).status_code == 429


def test_the_api_wants_the_code_once_enrolled(app, client, make):
    make.user("boss", role="admin")
    login(client, "boss")
    secret, codes = enrol(client, None)
    api = app.test_client()
    body = {"username": "boss", "password": PASSWORD}
    missing = api.post("/api/v1/tokens", json=body)
    assert missing.status_code == 401 and missing.get_json()["error"]["code"] == "otp_required"
    code = code_at(secret, clock.now())
    good = api.post("/api/v1/tokens", json={**body, "otp": code})
    assert good.status_code == 200
    replay = api.post("/api/v1/tokens", json={**body, "otp": code})
    assert replay.status_code == 401 and replay.get_json()["error"]["code"] == "invalid_otp"
    assert api.post("/api/v1/tokens", json={**body, "otp": codes[0]}).status_code == 200
    headers = {"Authorization": "Bearer " + good.get_json()["token"]}
    assert api.get("/api/v1/me", headers=headers).status_code == 200


def test_an_admin_not_enrolled_gets_a_token_but_no_api_call(app, make):
    make.user("boss", role="admin")
    api = app.test_client()
    issued = api.post("/api/v1/tokens", json={"username": "boss", "password": PASSWORD})
    assert issued.status_code == 200
    me = api.get("/api/v1/me", headers={"Authorization": "Bearer " + issued.get_json()["token"]})
    assert me.status_code == 403 and me.get_json()["error"]["code"] == "second_factor_required"


def test_the_admin_setting_makes_secretaries_enrol_and_not_lecturers(app, make):
    make.user("boss", role="admin")
    make.user("sec", role="secretary")
    make.user("lec", role="lecturer")
    sec, lec = app.test_client(), app.test_client()
    login(sec, "sec")
    assert sec.get("/").status_code == 200  # not required yet
    admin = app.test_client()
    login(admin, "boss")
    enrol(admin, None)
    assert admin.post("/admin/security", data={"secretary": "y"}).status_code == 302
    assert sec.get("/").headers["Location"] == "/account/2fa"
    login(lec, "lec")
    assert lec.get("/").status_code == 200
    assert "两步验证" in lec.get("/account/2fa").get_data(as_text=True)  # may enrol by choice


def test_a_member_may_not_change_the_setting_and_the_setting_ignores_unknown_roles(app, make):
    make.user("liuzq")
    member = app.test_client()
    login(member, "liuzq")
    assert member.post("/admin/security", data={"secretary": "y"}).status_code == 403
    from pbschool.accounts import totp

    assert totp.set_required_roles(["admin", "member", "lecturer"], None) == ["lecturer"]


def test_an_admin_resets_a_lost_second_factor(app, make):
    make.user("boss", role="admin")
    lost = make.user("sec2", role="secretary")
    db.session.commit()
    sec = app.test_client()
    login(sec, "sec2")
    enrol(sec, None)
    admin = app.test_client()
    login(admin, "boss")
    enrol(admin, None)
    assert admin.post(f"/admin/users/{lost.id}/reset-2fa").status_code == 302
    assert sec.get("/").status_code == 302  # signed out everywhere
    assert login(sec, "sec2").headers["Location"] == "/"  # no code asked: they may enrol again
    assert db.session.get(User, lost.id).totp_enabled_at is None


def test_enrolment_confirmed_at_once_from_two_tabs_takes_one_code(app, make):
    Factory().user("boss", role="admin")
    client = app.test_client()
    login(client, "boss")
    page = client.get("/account/2fa").get_data(as_text=True)
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page).group(1)
    code = code_at(secret, clock.now())
    assert client.post("/account/2fa", data={"code": code}).status_code == 200
    again = client.post("/account/2fa", data={"code": code})
    assert "已启用" in again.get_data(as_text=True)  # the page of an enrolled user: no second set of codes
    assert len(db.session.scalars(select(RecoveryCode.id)).all()) == 10


@pytest.mark.postgres_only
@pytest.mark.parametrize("kind", ["totp", "recovery"])
def test_one_code_sent_at_once_from_eight_places_is_taken_once(app, backend, make, kind):
    if backend == "sqlite":
        pytest.skip("SQLite serialises writes and would hide the race")
    import threading

    from pbschool.accounts import totp

    boss = make.user("boss", role="admin")
    totp.begin_enrolment(boss)
    codes = totp.confirm_enrolment(boss, code_at(boss.totp_secret, clock.now()))
    db.session.commit()
    clock.advance(seconds=30)
    code = code_at(boss.totp_secret, clock.now()) if kind == "totp" else codes[0]
    user_id, barrier, taken = boss.id, threading.Barrier(8), []

    def run():
        with app.app_context():
            try:
                barrier.wait(5)
                taken.append(totp.verify(db.session.get(User, user_id), code))
                db.session.commit()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(taken) == [False] * 7 + [True]


def test_the_cli_resets_a_lost_second_factor_of_the_only_admin(app, make, runner):
    from pbschool.accounts import totp

    boss = make.user("boss", role="admin")
    totp.begin_enrolment(boss)
    totp.confirm_enrolment(boss, code_at(boss.totp_secret, clock.now()))
    db.session.commit()
    result = runner.invoke(args=["user", "reset-2fa", "BOSS"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert not totp.enrolled(db.session.get(User, boss.id))
    missing = runner.invoke(args=["user", "reset-2fa", "nobody"])
    assert missing.exit_code != 0 and "no such user" in missing.output
