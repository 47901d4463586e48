import tarfile
from pathlib import Path

from sqlalchemy import select

from pbschool import cli
from pbschool.accounts.models import User
from pbschool.extensions import db


def test_backup_and_restore_round_trip(app, runner, make, tmp_path):
    import datetime as dt

    from pbschool import clock
    from pbschool.points import services as points
    from pbschool.points.models import LedgerEntry

    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    member = make.user("liuzq", name="刘志强", branch=make.branch(code="ZC1"))
    for n in range(5):  # a populated ledger: its hash chain must survive the trip
        points.record_event(member, "meeting_attended", f"meeting:{n}:user:{member.id}")
    points.award(member, -2, "缺席扣分", actor=make.user("admin", role="admin"))
    db.session.commit()
    entries = db.session.scalar(select(db.func.count(LedgerEntry.id)))
    make.user("wangfang", name="王芳")
    media = Path(app.config["MEDIA_DIR"])
    (media / "lessons").mkdir(parents=True)
    (media / "lessons" / "video.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 video bytes")
    target = tmp_path / "backups"

    made = runner.invoke(cli.cli, args=["backup", str(target) + "/"])
    assert made.exit_code == 0, made.output
    archive = next(target.glob("pbschool-*.tar.gz"))
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "manifest.json" in names and "media/lessons/video.mp4" in names

    # Damage: a user deleted, another added, the video gone.
    db.session.delete(db.session.scalar(select(User).where(User.username == "wangfang")))
    db.session.commit()
    make.user("intruder")
    (media / "lessons" / "video.mp4").unlink()
    db.session.remove()

    restored = runner.invoke(cli.cli, args=["restore", str(archive), "--yes"])
    assert restored.exit_code == 0, restored.output
    usernames = set(db.session.scalars(select(User.username)))
    assert {"liuzq", "wangfang"} <= usernames and "intruder" not in usernames
    assert (media / "lessons" / "video.mp4").read_bytes().endswith(b"video bytes")
    assert db.session.scalar(select(db.func.count(LedgerEntry.id))) == entries
    verified = runner.invoke(cli.cli, args=["ledger", "verify"])
    assert verified.exit_code == 0 and f"ledger ok: {entries} entries" in verified.output
    assert points.balance(db.session.scalar(select(User).where(User.username == "liuzq"))) == 23


def test_restore_refuses_what_is_not_a_backup(runner, tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tarball")
    result = runner.invoke(cli.cli, args=["restore", str(junk), "--yes"])
    assert result.exit_code != 0 and "not a pbschool backup" in result.output
    missing = runner.invoke(cli.cli, args=["restore", str(tmp_path / "nope.tar.gz"), "--yes"])
    assert missing.exit_code != 0 and "no such backup file" in missing.output


def test_restore_refuses_an_archive_that_escapes_its_folder(runner, tmp_path):
    evil = tmp_path / "evil.tar.gz"
    payload = tmp_path / "payload"
    payload.write_text("x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(payload, arcname="../../escaped")
    result = runner.invoke(cli.cli, args=["restore", str(evil), "--yes"])
    assert result.exit_code != 0 and "unsafe path" in result.output
