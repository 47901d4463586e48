"""The membership history: every way a user is made, moved or (de)activated records when they belonged
where, so that a past period's figures count them only for that time."""

import datetime as dt

from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text

from pbschool import clock, create_app
from pbschool.accounts import services
from pbschool.accounts.importer import import_users
from pbschool.accounts.models import Membership, User
from pbschool.extensions import db
from tests.conftest import make_test_config


def history(user):
    return [(m.branch_id, m.started_at, m.ended_at) for m in db.session.scalars(
        select(Membership).where(Membership.user_id == user.id).order_by(Membership.started_at, Membership.id))]


def test_create_move_deactivate_and_reactivate_are_recorded(app, make):
    one, two = make.branch(code="A1"), make.branch(code="A2")
    t0, t1, t2, t3 = (dt.datetime(2026, m, 1, 2, 0) for m in (1, 3, 5, 7))
    clock.pin(t0)
    user, _ = services.create_user("liu", "刘志强", branch=one, password="member-pass-26")
    assert history(user) == [(one.id, t0, None)]
    clock.pin(t1)
    services.update_user(user, name="刘志强", role="member", branch=two, job_post="")
    clock.pin(t2)
    services.set_active(user, False)
    clock.pin(t3)
    services.set_active(user, True)
    assert history(user) == [(one.id, t0, t1), (two.id, t1, t2), (two.id, t3, None)]
    services.update_user(user, name="刘志强二", role="member", branch=two, job_post="")  # no move: no new stay
    assert len(history(user)) == 3


def test_a_user_made_before_the_history_gets_their_stay_so_far_when_moved(app, make):
    one, two = make.branch(code="A1"), make.branch(code="A2")
    clock.pin(dt.datetime(2026, 1, 1, 2, 0))
    user = make.user("zhang", branch=one)  # written straight to the table: no history yet
    clock.pin(dt.datetime(2026, 6, 1, 2, 0))
    services.update_user(user, name=user.name, role="member", branch=two, job_post="")
    assert history(user) == [(one.id, dt.datetime(2026, 1, 1, 2, 0), dt.datetime(2026, 6, 1, 2, 0)),
                             (two.id, dt.datetime(2026, 6, 1, 2, 0), None)]


def test_import_records_new_members_and_moves(app, make):
    one, two = make.branch(code="A1"), make.branch(code="A2")
    clock.pin(dt.datetime(2026, 2, 1, 2, 0))
    import_users("username,name,branch\nwang,王五,A1\n".encode(), "m.csv")
    clock.pin(dt.datetime(2026, 4, 1, 2, 0))
    import_users("username,name,branch\nwang,王五,A2\n".encode(), "m.csv")
    wang = db.session.scalar(select(User).where(User.username == "wang"))
    assert [(b, s.month, e and e.month) for b, s, e in history(wang)] == [(one.id, 2, 4), (two.id, 4, None)]


def test_the_migration_backfills_one_stay_per_existing_user(tmp_path):
    app = create_app(make_test_config(tmp_path, f"sqlite:///{tmp_path / 'backfill.db'}"))
    with app.app_context():
        upgrade(revision="0a8f37797340")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO branch (id, code, name, is_active, created_at) "
                              "VALUES (1, 'A1', 'A1', 1, '2026-01-01 00:00:00')"))
            for uid, active in ((1, 1), (2, 0)):
                conn.execute(text(
                    "INSERT INTO user (id, username, name, role, branch_id, job_post, password_hash, is_active, "
                    "session_nonce, must_change_password, created_at) VALUES (:id, :u, 'x', 'member', 1, '', 'h', "
                    ":a, 'n', 0, '2026-01-05 00:00:00')"), {"id": uid, "u": f"u{uid}", "a": active})
            conn.execute(text("INSERT INTO audit_log (created_at, action, object_type, object_id, summary) "
                              "VALUES ('2026-03-01 00:00:00', 'user.deactivate', 'user', '2', '')"))
        upgrade()
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT user_id, branch_id, started_at, ended_at FROM membership "
                                     "ORDER BY user_id")).all()
        assert [(r[0], r[1], str(r[2])[:10], r[3] and str(r[3])[:10]) for r in rows] == [
            (1, 1, "2026-01-05", None), (2, 1, "2026-01-05", "2026-03-01")]
        downgrade(revision="base")
        db.engine.dispose()
