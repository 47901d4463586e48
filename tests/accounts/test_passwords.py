"""Common and guessable passwords are refused, with the reason in Chinese, by one rule at every door:
the password form, the admin's user form, the API, `pbschool user add`, `pbschool user import` and
the import page (issue 12, item 2; ASVS 5.0 V6.2.4)."""

import io

import pytest
from sqlalchemy import select

from pbschool.accounts import passwords
from pbschool.accounts.models import User
from pbschool.extensions import db
from tests.factories import PASSWORD

REFUSED = ["password", "12345678", "qwertyui", "123456789", "woaini1314", "qq123456", "a123456789", "88888888",
           "1qaz2wsx", "zxcvbnm1", "password1", "iloveyou", "00000000", "11111111", "147258369", "123123123",
           "Password123!", "asdfghjk", "87654321", "woaiwoai", "5201314520"]
ACCEPTED = ["correct-horse-9", "煤矿安全第一2026", "brand-new-pass-1", "zc1-Tongfeng-ok"]


@pytest.mark.parametrize("weak", REFUSED)
def test_common_and_guessable_passwords_are_refused(app, weak):
    with app.test_request_context():
        assert passwords.problem(weak) is not None, weak


def test_the_reason_is_said_in_chinese(app):
    with app.test_request_context():
        assert "常见的密码" in passwords.problem("password")
        assert "连续的数字" in passwords.problem("12345678") and "键盘" in passwords.problem("qwertyui")
        assert "重复" in passwords.problem("aaaaaaaaaa")
        assert "用户名或姓名" in passwords.problem("liuzq-mine-7", username="liuzq")
        assert "用户名或姓名" in passwords.problem("刘志强的密码abc", name="刘志强")
        for good in ACCEPTED:
            assert passwords.problem(good, username="liuzq", name="刘志强") is None, good


def test_the_list_ships_with_the_code_and_holds_the_chinese_leaks(app):
    common = passwords.common_passwords()
    assert len(common) > 10000
    assert {"5201314", "woaini1314", "qq123456", "a123456", "1qaz2wsx", "zxcvbnm", "147258369", "dearbook"} <= common


def test_the_password_form_refuses_a_common_password(client, auth, make):
    make.user("liuzq")
    auth.login("liuzq")
    html = client.post("/account/password", data={"current": PASSWORD, "new": "qwertyui",
                                                  "confirm": "qwertyui"}).get_data(as_text=True)
    assert "键盘上相邻的按键" in html
    client.post("/logout")
    assert auth.login("liuzq").status_code == 302  # the old password still works


def test_the_admin_user_form_refuses_a_common_password(client, auth, make):
    make.user("boss", role="admin")
    make.branch("JD")
    auth.login("boss")
    html = client.post("/admin/users/new", data={"username": "wangwu", "name": "王五", "role": "member",
                                                 "branch": "JD", "password": "password1"}).get_data(as_text=True)
    assert "最常见的密码" in html
    assert db.session.scalar(select(User).where(User.username == "wangwu")) is None


def test_cli_user_add_refuses_a_common_password(runner, make):
    make.branch("ZC1")
    result = runner.invoke(args=["user", "add", "newone", "--name", "新人", "--branch", "ZC1", "--password-stdin"],
                           input="12345678\n")
    assert result.exit_code != 0 and "连续的数字" in result.output
    assert db.session.scalar(select(User).where(User.username == "newone")) is None


def test_cli_import_refuses_the_file_naming_the_row_with_a_common_password(runner, make, tmp_path):
    make.branch("ZC1")
    source = tmp_path / "members.csv"
    source.write_text("用户名,姓名,支部,密码\nzhangsan,张三,ZC1,fine-pass-word-7\nlisi,李四,ZC1,woaini1314\n",
                      encoding="utf-8-sig")
    result = runner.invoke(args=["user", "import", str(source)])
    assert result.exit_code != 0 and "row 3" in result.output and "最常见的密码" in result.output
    assert "row 2" not in result.output
    assert db.session.scalar(select(User).where(User.username == "zhangsan")) is None


def test_the_import_page_refuses_a_common_password_as_a_bad_row(client, auth, make):
    make.user("boss", role="admin")
    make.branch("ZC1")
    auth.login("boss")
    data = "username,name,branch,password\nzhangsan,张三,ZC1,password\n".encode()
    page = client.post("/admin/users/import", data={"file": (io.BytesIO(data), "m.csv")},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert "没有任何数据被导入" in page and "最常见的密码" in page
    assert db.session.scalar(select(User).where(User.username == "zhangsan")) is None
