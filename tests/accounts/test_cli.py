import io
import os
import subprocess
import sys
from pathlib import Path

from openpyxl import Workbook
from sqlalchemy import select

from pbschool.accounts.models import Branch, User
from pbschool.accounts.services import verify_password
from pbschool.extensions import db

BIN = Path(sys.executable).parent


def test_branch_add_and_duplicate(runner):
    ok = runner.invoke(args=["branch", "add", "ZC1", "--name", "综采一队党支部"])
    assert ok.exit_code == 0, ok.output
    assert db.session.scalar(select(Branch.name).where(Branch.code == "ZC1")) == "综采一队党支部"
    dup = runner.invoke(args=["branch", "add", "zc1", "--name", "again"])
    assert dup.exit_code != 0 and "已存在" in dup.output
    bad = runner.invoke(args=["branch", "add", "has space", "--name", "x"])
    assert bad.exit_code != 0 and "支部代码" in bad.output


def test_user_add_with_password_on_stdin(runner, make):
    make.branch("ZC1")
    result = runner.invoke(args=["user", "add", "liuzq", "--name", "刘志强", "--role", "member",
                                 "--branch", "ZC1", "--password-stdin"], input="a-good-password\n")
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.username == "liuzq"))
    assert user.branch.code == "ZC1" and verify_password(user, "a-good-password")
    assert "password:" not in result.output


def test_user_add_generates_a_password_when_none_is_given(runner):
    result = runner.invoke(args=["user", "add", "boss", "--name", "王建国", "--role", "admin"])
    assert result.exit_code == 0
    generated = result.output.split("password: ")[1].split()[0]
    user = db.session.scalar(select(User).where(User.username == "boss"))
    assert verify_password(user, generated) and user.must_change_password


def test_user_add_bad_input_exits_non_zero_with_one_line(runner, make):
    make.branch("ZC1")
    make.user("taken")
    cases = [
        (["user", "add", "taken", "--name", "x", "--branch", "ZC1"], "已存在"),
        (["user", "add", "newone", "--name", "x", "--branch", "NOPE"], "找不到支部"),
        (["user", "add", "newone", "--name", "x"], "必须属于一个支部"),
        (["user", "add", "newone", "--name", "x", "--role", "king"], "Invalid value"),
    ]
    for args, reason in cases:
        result = runner.invoke(args=args)
        assert result.exit_code != 0, args
        assert reason in result.output, (args, result.output)
    short = runner.invoke(args=["user", "add", "newone", "--name", "x", "--branch", "ZC1", "--password-stdin"],
                          input="short\n")
    assert short.exit_code != 0 and "至少需要 8 个字符" in short.output
    assert db.session.scalar(select(User).where(User.username == "newone")) is None


def test_user_import_writes_generated_passwords_to_a_result_file(runner, make, tmp_path):
    make.branch("ZC1", "综采一队党支部")
    source = tmp_path / "members.csv"
    source.write_text("用户名,姓名,支部,角色,岗位,密码\nzhangsan,张三,ZC1,党员,采煤机司机,\n"
                      "lisi,李四,综采一队党支部,member,,given-password-1\n", encoding="utf-8-sig")
    result = runner.invoke(args=["user", "import", str(source)])
    assert result.exit_code == 0, result.output
    assert "created 2" in result.output
    written = [p for p in tmp_path.iterdir() if "passwords" in p.name]
    assert len(written) == 1 and str(written[0]) in result.output
    lines = written[0].read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "username,name,password" and lines[1].startswith("zhangsan,张三,")
    zhangsan = db.session.scalar(select(User).where(User.username == "zhangsan"))
    assert verify_password(zhangsan, lines[1].split(",")[2])
    assert len(lines) == 2  # lisi had a password in the file
    # neither password was the member's own choice: both must be replaced at first login
    lisi = db.session.scalar(select(User).where(User.username == "lisi"))
    assert zhangsan.must_change_password and lisi.must_change_password


def test_user_import_refuses_a_bad_file_naming_every_bad_row(runner, make, tmp_path):
    make.branch("ZC1")
    source = tmp_path / "bad.csv"
    source.write_text("username,name,branch,role\nok1,好人,ZC1,member\nbad user,坏,ZC1,member\n"
                      "ok2,,ZC1,member\nok3,某,NOPE,member\nok1,重复,ZC1,member\n", encoding="utf-8")
    result = runner.invoke(args=["user", "import", str(source)])
    assert result.exit_code != 0
    for row in ("row 3", "row 4", "row 5", "row 6"):
        assert row in result.output
    assert "row 2:" not in result.output
    assert db.session.scalar(select(User).where(User.username == "ok1")) is None


def test_user_import_unknown_file_type_and_missing_file(runner, tmp_path):
    txt = tmp_path / "x.txt"
    txt.write_text("hello")
    result = runner.invoke(args=["user", "import", str(txt)])
    assert result.exit_code != 0 and ".xlsx" in result.output
    missing = runner.invoke(args=["user", "import", str(tmp_path / "nope.csv")])
    assert missing.exit_code != 0


def test_pbschool_console_script_runs_init_and_commands(tmp_path):
    """The real console script against a real migrated database, as an operator would run it."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "PBSCHOOL_INSTANCE_DIR": str(tmp_path / "instance"), "PBSCHOOL_ENV": "development"}
    env.pop("SECRET_KEY", None)

    def run(*args, stdin=None):
        return subprocess.run([str(BIN / "pbschool"), *args], env=env, input=stdin, capture_output=True,
                              text=True, timeout=120)

    assert run("init").returncode == 0
    assert run("branch", "add", "ZC1", "--name", "综采一队党支部").returncode == 0
    added = run("user", "add", "liuzq", "--name", "刘志强", "--branch", "ZC1", "--password-stdin",
                stdin="a-good-password\n")
    assert added.returncode == 0, added.stderr
    again = run("user", "add", "liuzq", "--name", "刘志强", "--branch", "ZC1")
    assert again.returncode != 0
    assert len(again.stderr.strip().splitlines()) == 1 and "已存在" in again.stderr
    # The demo never writes into an organisation it did not make (tests/test_demo.py has the rest).
    demo = run("demo")
    assert demo.returncode != 0 and len(demo.stderr.strip().splitlines()) == 1 and "liuzq" in demo.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {**os.environ, "PBSCHOOL_ENV": "production", "PBSCHOOL_INSTANCE_DIR": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"}
    env.pop("SECRET_KEY", None)
    result = subprocess.run([sys.executable, "-c", "import wsgi"], env=env, capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def password_link(page):
    import re

    return re.search(r'href="/admin/users/import/([\w-]+\.csv)"[^>]*>下载初始密码表', page).group(1)


def xlsx_file(rows):
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_admin_imports_xlsx_in_the_ui_and_updates_on_reimport(client, auth, make):
    make.user("boss", role="admin")
    make.branch("ZC1", "综采一队党支部")
    make.branch("JD", "机电科党支部")
    auth.login("boss")
    data = xlsx_file([["用户名", "姓名", "支部", "角色", "岗位", "密码"],
                      ["zhangsan", "张三", "ZC1", "党员", "采煤机司机", None],
                      ["wangwu", "王五", "JD", "支部书记", "", "chosen-pass-1"]])
    page = client.post("/admin/users/import", data={"file": (io.BytesIO(data), "名单.xlsx")},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert "新增 2 人" in page and "下载初始密码表" in page
    link = password_link(page)
    download = client.get("/admin/users/import/" + link)
    assert download.status_code == 200 and "zhangsan" in download.get_data(as_text=True)
    assert db.session.scalar(select(User).where(User.username == "wangwu")).role == "secretary"

    moved = xlsx_file([["username", "name", "branch", "role", "job_post"],
                       ["zhangsan", "张三", "JD", "member", "电工"]])
    page = client.post("/admin/users/import", data={"file": (io.BytesIO(moved), "again.xlsx")},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert "更新 1 人" in page
    zhangsan = db.session.scalar(select(User).where(User.username == "zhangsan"))
    assert zhangsan.branch.code == "JD" and zhangsan.job_post == "电工"
    assert db.session.scalar(select(db.func.count(User.id))) == 3


def test_ui_import_shows_every_bad_row(client, auth, make):
    make.user("boss", role="admin")
    auth.login("boss")
    data = b"username,name,branch\nx,,NOPE\n"
    page = client.post("/admin/users/import", data={"file": (io.BytesIO(data), "bad.csv")},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert "没有任何数据被导入" in page and "找不到支部：NOPE" in page and "缺少姓名" in page


def test_import_of_a_damaged_xlsx_is_a_clear_error(client, auth, make):
    make.user("boss", role="admin")
    auth.login("boss")
    page = client.post("/admin/users/import", data={"file": (io.BytesIO(b"PK\x03\x04junk"), "x.xlsx")},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert "无法读取 Excel 文件" in page


def test_another_admins_password_file_is_not_served(app, client, auth, make):
    make.user("boss", role="admin")
    make.user("boss2", role="admin")
    make.branch("ZC1")
    auth.login("boss")
    page = client.post("/admin/users/import", data={"file": (io.BytesIO(
        "username,name,branch\nzhangsan,张三,ZC1\n".encode()), "m.csv")},
        content_type="multipart/form-data").get_data(as_text=True)
    link = password_link(page)
    client.post("/logout")
    auth.login("boss2")
    assert client.get("/admin/users/import/" + link).status_code == 404
