"""The role the web application runs as cannot change or delete ledger rows (PostgreSQL privileges,
beside the append-only trigger), yet can do all the application does."""

import datetime as dt
import os
import secrets
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from pbschool import clock
from pbschool.extensions import db
from pbschool.points import services
from tests.conftest import LEDGER_KEYS


def test_grant_refuses_sqlite_and_bad_names(app, backend):
    runner = app.test_cli_runner()
    if backend == "sqlite":
        result = runner.invoke(args=["ledger", "grant", "pbschool_app"])
        assert result.exit_code != 0 and "PostgreSQL" in result.output
        return
    result = runner.invoke(args=["ledger", "grant", "app; DROP TABLE user"])
    assert result.exit_code != 0 and "not a plain role name" in result.output
    result = runner.invoke(args=["ledger", "grant", "no_such_role_here"])
    assert result.exit_code != 0 and "no such role" in result.output


def test_the_app_role_can_append_but_not_change_the_ledger(app, backend, make, tmp_path):
    if backend != "postgresql":
        pytest.skip("roles and privileges are PostgreSQL's")
    role = f"pbschool_app_{secrets.token_hex(4)}"
    owner_url = db.engine.url
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
    try:
        clock.pin(dt.datetime(2026, 3, 10, 2, 0))
        member = make.user("zhang", branch=make.branch(code="ZC1"))
        services.record_event(member, "meeting_attended", "meeting:1:user:1")
        db.session.commit()
        result = app.test_cli_runner().invoke(args=["ledger", "grant", role])
        assert result.exit_code == 0, result.output

        role_url = owner_url.set(username=role, password=None)
        engine = create_engine(role_url)
        try:
            for statement in ("UPDATE ledger_entry SET points = 99", "DELETE FROM ledger_entry",
                              "TRUNCATE ledger_entry CASCADE"):
                with engine.begin() as conn, pytest.raises(ProgrammingError, match="permission denied"):
                    conn.execute(text(statement))
            with engine.begin() as conn:
                assert conn.execute(text("SELECT count(*) FROM ledger_entry")).scalar() == 1
        finally:
            engine.dispose()

        # the application itself, connected as that role, still awards points (append + chain head)
        script = (
            "from pbschool import create_app\n"
            "from pbschool.accounts.models import User\n"
            "from pbschool.extensions import db\n"
            "from pbschool.points import services\n"
            "with create_app().app_context():\n"
            f"    user = db.session.get(User, {member.id})\n"
            "    assert services.record_event(user, 'meeting_attended', 'meeting:2:user:1')\n"
            "    db.session.commit()\n"
            "    print(services.balance(user), services.verify_chain()[1])\n")
        env = {**os.environ, "DATABASE_URL": role_url.render_as_string(hide_password=False),
               "PBSCHOOL_INSTANCE_DIR": str(tmp_path), "PBSCHOOL_ENV": "development",
               "PBSCHOOL_LEDGER_KEYS": LEDGER_KEYS}
        env.pop("REDIS_URL", None)
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,  # noqa: S603
                              timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.split() == ["10.0", "None"]
    finally:
        db.session.remove()
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
