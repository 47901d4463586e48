"""A ledger that even the database owner cannot re-chain: entry digests are HMACs under a key kept
outside the database, each published month is sealed, and ``pbschool ledger verify`` checks both."""

import datetime as dt
import hashlib
import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, text

from pbschool import clock, config
from pbschool.accounts.models import AuditLog
from pbschool.extensions import db
from pbschool.points import keys, services
from pbschool.points.models import LedgerEntry, LedgerHead, MonthlyPublication, PublishedScore


@pytest.fixture
def ledger(app, make):
    clock.pin(dt.datetime(2026, 3, 10, 2, 0))
    member = make.user("zhang", branch=make.branch(code="ZC1"), name="张三")
    other = make.user("li", branch=member.branch, name="李四")
    for n in range(4):
        services.record_event(member if n % 2 == 0 else other, "meeting_attended", f"meeting:{n}")
    db.session.commit()
    return member, other


def plain_sha256(row, prev):
    """What the digest was before the key, and what anyone can compute: SHA-256 of the content."""
    content = {
        "seq": row.seq, "user_id": row.user_id, "branch_id": row.branch_id, "kind": row.kind,
        "category": row.category, "points": str(Decimal(str(row.points)).quantize(Decimal("0.1"))),
        "value": None if row.value is None else str(Decimal(str(row.value)).quantize(Decimal("0.01"))),
        "reason": row.reason or "", "source_key": row.source_key, "occurred_at": row.occurred_at.isoformat(),
        "created_at": row.created_at.isoformat(), "day": row.day.isoformat(), "period": row.period,
        "is_adjustment": bool(row.is_adjustment), "is_veto": bool(row.is_veto), "actor_id": row.actor_id,
        "rule_id": row.rule_id, "reverses_id": row.reverses_id,
    }
    payload = prev + json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def rechain(digest, from_seq=1):
    """What a database owner does after changing an entry: recompute every hash from ``from_seq`` on
    with ``digest(row, prev)``, and the head, straight in SQL."""
    rows = db.session.execute(select(*LedgerEntry.__table__.c).order_by(LedgerEntry.seq)).all()
    prev = keys.GENESIS
    for row in rows:
        if row.seq >= from_seq:
            new = digest(row, prev)
            db.session.execute(text("UPDATE ledger_entry SET prev_hash = :p, hash = :h WHERE id = :id"),
                               {"p": prev, "h": new, "id": row.id})
            prev = new
        else:
            prev = row.hash
    db.session.execute(text("UPDATE ledger_head SET hash = :h"), {"h": prev})
    db.session.commit()


def test_entries_are_chained_with_the_key_they_name(ledger, runner):
    entries = db.session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)).all()
    assert {e.key_id for e in entries} == {"t1"}
    assert all(e.hash != plain_sha256(e, e.prev_hash) for e in entries)
    ok = runner.invoke(args=["ledger", "verify"])
    assert ok.exit_code == 0 and "4 entries" in ok.output


@pytest.mark.parametrize("how", ["plain SHA-256 from the changed entry", "plain SHA-256, every entry",
                                 "a wrong key"])
def test_a_database_owner_cannot_rechain_the_ledger_after_changing_an_entry(ledger, runner, how):
    third = db.session.scalar(select(LedgerEntry).where(LedgerEntry.seq == 3))
    db.session.execute(text("UPDATE ledger_entry SET points = 50 WHERE id = :id"), {"id": third.id})
    db.session.execute(text("UPDATE point_total SET points = points + 45 WHERE user_id = :u"),
                       {"u": third.user_id})
    db.session.commit()
    if how == "a wrong key":
        rechain(lambda row, prev: services.entry_digest(row, prev, key=b"a-guessed-ledger-key"), from_seq=3)
        first_bad = third
    elif how == "plain SHA-256, every entry":
        rechain(plain_sha256)
        first_bad = db.session.scalar(select(LedgerEntry).where(LedgerEntry.seq == 1))
    else:
        rechain(plain_sha256, from_seq=3)
        first_bad = third
    bad = runner.invoke(args=["ledger", "verify"])
    assert bad.exit_code != 0, bad.output
    assert f"entry #{first_bad.id} " in bad.output
    assert len(bad.output.strip().splitlines()) == 1


def test_marking_entries_as_unkeyed_does_not_get_through(ledger, runner):
    db.session.execute(text("UPDATE ledger_entry SET points = 50, key_id = NULL WHERE seq = 3"))
    db.session.commit()
    rechain(lambda row, prev: plain_sha256(row, prev) if row.key_id is None else services.entry_digest(row, prev),
            from_seq=3)
    bad = runner.invoke(args=["ledger", "verify"])
    assert bad.exit_code != 0 and "not chained with the ledger key" in bad.output


def test_rotation_keeps_old_entries_verifiable_and_a_lost_key_is_named(ledger, app):
    member, _other = ledger
    app.config["LEDGER_KEYS"] = config.parse_ledger_keys("t2:the-next-ledger-key-2027,t1:test-ledger-key-0123456789")
    services.record_event(member, "meeting_attended", "meeting:after-rotation")
    db.session.commit()
    newest = db.session.scalar(select(LedgerEntry).order_by(LedgerEntry.seq.desc()))
    assert newest.key_id == "t2"
    assert services.verify_chain() == (5, None)
    app.config["LEDGER_KEYS"] = config.parse_ledger_keys("t2:the-next-ledger-key-2027")
    checked, problem = services.verify_chain()
    assert checked == 0 and "key id t1" in problem


# -- configuration -------------------------------------------------------------------------------

def test_production_refuses_to_start_without_a_ledger_key(tmp_path):
    env = {"PBSCHOOL_ENV": "production", "PBSCHOOL_INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "s" * 32,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", "import wsgi"], env=env, capture_output=True, text=True,  # noqa: S603
                            cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert result.returncode != 0 and "PBSCHOOL_LEDGER_KEYS" in result.stderr


def test_the_secret_key_does_not_double_as_the_ledger_key(monkeypatch, tmp_path):
    monkeypatch.setenv("PBSCHOOL_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "the-same-secret-for-both")
    monkeypatch.setenv("PBSCHOOL_LEDGER_KEYS", "1:the-same-secret-for-both")
    with pytest.raises(config.ConfigError, match="SECRET_KEY"):
        config.load(str(tmp_path))
    monkeypatch.setenv("PBSCHOOL_LEDGER_KEYS", "2:a-ledger-key-of-its-own,1:an-older-ledger-key")
    assert config.load(str(tmp_path))["LEDGER_KEYS"] == [("2", "a-ledger-key-of-its-own"),
                                                         ("1", "an-older-ledger-key")]
    for bad in ("1:short", "1:a-ledger-key-of-its-own,1:an-older-ledger-key", ":a-ledger-key-of-its-own"):
        monkeypatch.setenv("PBSCHOOL_LEDGER_KEYS", bad)
        with pytest.raises(config.ConfigError):
            config.load(str(tmp_path))


def test_development_keeps_a_generated_ledger_key_under_instance(monkeypatch, tmp_path):
    monkeypatch.setenv("PBSCHOOL_ENV", "development")
    monkeypatch.delenv("PBSCHOOL_LEDGER_KEYS", raising=False)
    monkeypatch.delenv("PBSCHOOL_LEDGER_KEY", raising=False)
    first = config.load(str(tmp_path))["LEDGER_KEYS"]
    assert (tmp_path / "ledger_key").stat().st_mode & 0o777 == 0o600
    assert config.load(str(tmp_path))["LEDGER_KEYS"] == first and first[0][0] == "1"
    assert first[0][1] != (tmp_path / "secret_key").read_text().strip()


# -- a ledger chained before the key: the one-time rekey --------------------------------------------

def make_legacy(member_count=None):
    """Turn the chain into what the code before the ledger key wrote: plain SHA-256, no key id."""
    db.session.execute(text("UPDATE ledger_entry SET key_id = NULL"))
    db.session.commit()
    rechain(plain_sha256)


def test_a_ledger_from_before_the_key_is_rekeyed_once_and_audited(ledger, runner):
    member, _other = ledger
    make_legacy()
    refused = runner.invoke(args=["ledger", "verify"])
    assert refused.exit_code != 0 and "ledger rekey" in refused.output
    done = runner.invoke(args=["ledger", "rekey"])
    assert done.exit_code == 0, done.output
    assert "4 entries" in done.output
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "ledger.rekey")) is not None
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0
    again = runner.invoke(args=["ledger", "rekey"])
    assert again.exit_code != 0 and len(again.output.strip().splitlines()) == 1
    # new entries are keyed; an unkeyed one after the anchor is refused
    services.record_event(member, "meeting_attended", "meeting:after")
    db.session.commit()
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0
    # changing an old (unkeyed) entry and re-hashing the old part with SHA-256 is found
    db.session.execute(text("UPDATE ledger_entry SET points = 50 WHERE seq = 2"))
    db.session.execute(text("UPDATE point_total SET points = points + 45 WHERE user_id = "
                            "(SELECT user_id FROM ledger_entry WHERE seq = 2)"))
    db.session.commit()
    rechain(lambda row, prev: plain_sha256(row, prev) if row.key_id is None else row.hash, from_seq=2)
    bad = runner.invoke(args=["ledger", "verify"])
    assert bad.exit_code != 0 and "seq 4" in bad.output


def test_rekey_refuses_a_broken_old_chain(ledger, runner):
    make_legacy()
    db.session.execute(text("UPDATE ledger_entry SET points = 50 WHERE seq = 2"))
    db.session.commit()
    refused = runner.invoke(args=["ledger", "rekey"])
    assert refused.exit_code != 0 and "第 2 条" in refused.output
    assert db.session.get(LedgerHead, 1).rekeyed_at is None


# -- seals of published months ---------------------------------------------------------------------

@pytest.fixture
def published(ledger, runner):
    clock.pin(dt.datetime(2026, 4, 2, 2, 0))
    assert runner.invoke(args=["points", "publish", "2026-03"]).exit_code == 0
    return db.session.scalar(select(MonthlyPublication))


def test_publishing_seals_the_month_with_the_chain_head(published, runner):
    head = db.session.get(LedgerHead, 1)
    assert published.last_seq == head.seq == 4 and published.head_hash == head.hash
    assert published.seal_key_id == "t1" and len(published.seal) == 64
    assert keys.same(published.seal, keys.mac("t1", keys.seal_text(published)))
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0


def test_the_board_page_and_its_xlsx_show_the_seal(published, client, auth):
    auth.login("zhang")
    page = client.get("/points/board?period=2026-03").get_data(as_text=True)
    assert published.seal[:16] in page and published.seal[:17] not in page
    sheet = load_workbook(io.BytesIO(client.get("/points/board.xlsx?period=2026-03").data)).active
    cells = [str(c.value) for row in sheet.iter_rows() for c in row if c.value is not None]
    assert any(published.seal[:16] in c for c in cells)
    live = client.get("/points/board?period=2026-04").get_data(as_text=True)
    assert published.seal[:16] not in live


def test_verify_names_the_month_whose_published_score_was_changed(published, runner):
    db.session.execute(text("UPDATE published_score SET points = points + 1 "
                            "WHERE user_id = (SELECT min(user_id) FROM published_score)"))
    db.session.commit()
    bad = runner.invoke(args=["ledger", "verify"])
    assert bad.exit_code != 0 and "2026-03" in bad.output
    assert len(bad.output.strip().splitlines()) == 1


def test_verify_names_the_month_whose_sealed_head_was_rechained(published, runner):
    # Even someone holding the key who re-chains the ledger under a sealed head (here: a changed
    # reason, every digest recomputed with the real key) is caught by the month's seal.
    db.session.execute(text("UPDATE ledger_entry SET reason = 'changed' WHERE seq = 1"))
    db.session.commit()
    rechain(services.entry_digest)
    bad = runner.invoke(args=["ledger", "verify"])
    assert bad.exit_code != 0 and "2026-03" in bad.output and "re-chained" in bad.output


def test_a_month_published_before_the_key_is_sealed_by_rekey(published, runner):
    make_legacy()
    db.session.execute(text("UPDATE monthly_publication SET seal = NULL, seal_key_id = NULL, head_hash = NULL"))
    db.session.commit()
    done = runner.invoke(args=["ledger", "rekey"])
    assert done.exit_code == 0 and "1 published months" in done.output, done.output
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0
    assert db.session.scalar(select(PublishedScore.id)) is not None


def test_the_leaderboard_api_carries_the_seal_of_a_published_month(published, api):
    api.token("zhang")
    body = api.get("/leaderboard?period=2026-03").get_json()
    assert body["published"] is True and body["seal"] == published.seal[:16]
    assert api.get("/leaderboard?period=2026-04").get_json()["seal"] is None
