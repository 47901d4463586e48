"""``pbschool demo`` never writes into an organisation it did not make (CONTRACT.md): on a database
holding branches or users it did not make it exits non-zero with one line and writes nothing."""

import pytest
from sqlalchemy import func, select

from pbschool import demo
from pbschool.accounts.models import Branch, User
from pbschool.extensions import db
from pbschool.points.models import LedgerEntry
from tests.sod.conftest import table_contents


def refused(runner):
    """Run ``pbschool demo`` and check it refused in one line and wrote nothing."""
    db.session.expire_all()
    before = table_contents()
    result = runner.invoke(args=["demo"])
    assert result.exit_code != 0, result.output
    assert len(result.output.strip().splitlines()) == 1 and "did not make" in result.output
    db.session.rollback()
    db.session.expire_all()
    assert table_contents() == before
    return result.output


def ledger_of(user):
    return db.session.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.user_id == user.id))


def test_the_demo_refuses_a_real_organisation_and_writes_nothing(app, runner, make, tmp_path):
    """Reproduction: `pbschool demo` on a real organisation wrote 20 "（示例）" entries into every
    member's ledger."""
    csv = tmp_path / "members.csv"
    csv.write_text("username,name,branch,role,job_post,password\n"
                   "liuzq,刘志强,ZC1,member,采煤机司机,a-good-password-1\n"
                   "chenxy,陈晓燕,ZC1,member,液压支架工,a-good-password-2\n", encoding="utf-8")
    assert runner.invoke(args=["branch", "add", "ZC1", "--name", "综采一队党支部"]).exit_code == 0
    assert runner.invoke(args=["user", "import", str(csv)]).exit_code == 0
    output = refused(runner)
    assert "liuzq" in output
    for user in db.session.scalars(select(User)):
        assert ledger_of(user) == 0


def test_users_added_after_the_demo_make_it_refuse(app, runner, make):
    assert runner.invoke(args=["demo"]).exit_code == 0
    branch = db.session.scalar(select(Branch).where(Branch.code == "ZC1"))
    newcomer = make.user("zhangsan", branch=branch)
    assert "zhangsan" in refused(runner)
    assert ledger_of(newcomer) == 0


def test_a_branch_added_after_the_demo_makes_it_refuse(app, runner, make):
    assert runner.invoke(args=["demo"]).exit_code == 0
    make.branch(code="XX9", name="新建支部")
    assert "1 branch(es)" in refused(runner)


def test_a_user_with_a_demo_username_that_the_demo_did_not_make_is_not_the_demos(app, runner, make):
    make.user("admin", role="admin", name="王建国")  # made by hand, before any demo
    refused(runner)


def test_a_demo_user_changed_since_is_no_longer_the_demos(app, runner):
    assert runner.invoke(args=["demo"]).exit_code == 0
    member = db.session.scalar(select(User).where(User.username == "member"))
    member.name = "真实姓名"  # e.g. a member import that reused the demo's username
    db.session.commit()
    assert "member" in refused(runner)


def test_the_demo_is_idempotent_on_what_it_made(app, runner):
    app.config["DEMO_HISTORY"] = True  # its months of history too
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0 and "demo logins" in first.output
    db.session.expire_all()
    before = table_contents()
    entries = db.session.scalar(select(func.count(LedgerEntry.id)))
    assert entries > 0
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0 and "0 user(s) added" in second.output and "0 demo ledger entries" in second.output
    db.session.expire_all()
    after = table_contents()
    changed = sorted(t for t in after if after[t] != before[t])
    assert changed == [], changed


def test_demo_points_go_only_to_the_demos_users(app, make):
    """Even past the refusal (a loader run on its own), the demo's points are for its own users only."""
    for _line in demo.load():
        pass
    outsider = make.user("outsider", branch=db.session.scalar(select(Branch).where(Branch.code == "ZC1")))
    from pbschool.points import _demo as points_demo

    list(points_demo(None))
    db.session.commit()
    assert ledger_of(outsider) == 0


@pytest.mark.parametrize("username", ["admin", "member"])
def test_the_demo_records_what_it_made(app, username):
    for _line in demo.load():
        pass
    assert db.session.scalar(select(User).where(User.username == username)).id in demo.user_ids()
