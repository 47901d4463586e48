"""The ledger key and the seals of published months.

Entry digests are HMAC-SHA256 under a key kept outside the database (``PBSCHOOL_LEDGER_KEYS``, read
by config.py), so whoever can write to the database still cannot re-chain the ledger after changing an
entry. Each entry records the id of the key it was chained with: rotating the key means putting a new
id first and keeping the old ones for verifying. A published month is sealed: an HMAC over the period,
the chain head at publication and the published scores.
"""

import hashlib
import hmac
import json
from decimal import Decimal

from flask import current_app
from sqlalchemy import select

from pbschool.extensions import db
from pbschool.points.models import LedgerEntry, MonthlyPublication, PublishedScore

GENESIS = "0" * 64
#: How much of a seal the board page and its .xlsx show.
SHORT = 16


class LedgerKeyError(LookupError):
    """A key id the configuration does not hold (or no key at all)."""


def _pairs():
    return list(current_app.config.get("LEDGER_KEYS") or [])


def current_id():
    """The id new entries and seals are made with: the first of PBSCHOOL_LEDGER_KEYS."""
    pairs = _pairs()
    if not pairs:
        raise LedgerKeyError("no ledger key is configured (PBSCHOOL_LEDGER_KEYS)")
    return pairs[0][0]


def secret(key_id):
    for pair_id, value in _pairs():
        if pair_id == key_id:
            return value.encode()
    raise LedgerKeyError(f"key id {key_id} is not among the configured ledger keys (PBSCHOOL_LEDGER_KEYS)")


def mac(key_id, text, key=None):
    """HMAC-SHA256 of ``text`` under the key ``key_id`` (or the raw ``key`` given)."""
    return hmac.new(key if key is not None else secret(key_id), text.encode(), hashlib.sha256).hexdigest()


def same(a, b):
    return hmac.compare_digest(str(a or ""), str(b or ""))


# -- seals of published months ----------------------------------------------------------------------

def _scores(publication_id):
    rows = db.session.execute(
        select(PublishedScore.user_id, PublishedScore.branch_id, PublishedScore.points, PublishedScore.rank,
               PublishedScore.rank_in_branch, PublishedScore.by_category)
        .where(PublishedScore.publication_id == publication_id).order_by(PublishedScore.user_id))
    return [[uid, bid, str(Decimal(str(pts)).quantize(Decimal("0.1"))), rank, rank_b,
             sorted((by_cat or {}).items())] for uid, bid, pts, rank, rank_b, by_cat in rows]


def seal_text(publication):
    """What a month's seal covers: the period, the chain head it was published at, the board's scores."""
    return json.dumps({
        "period": publication.period, "head_seq": publication.last_seq, "head_hash": publication.head_hash,
        "entry_count": publication.entry_count,
        "total_points": str(Decimal(str(publication.total_points or 0)).quantize(Decimal("0.1"))),
        "scores": _scores(publication.id)}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def head_hash_at(seq):
    if not seq:
        return GENESIS
    return db.session.scalar(select(LedgerEntry.hash).where(LedgerEntry.seq == seq))


def seal(publication):
    """Seal a publication (flushed, its scores written) with the current key."""
    publication.head_hash = head_hash_at(publication.last_seq)
    publication.seal_key_id = current_id()
    db.session.flush()
    publication.seal = mac(publication.seal_key_id, seal_text(publication))
    db.session.flush()
    return publication


def short(publication):
    return (publication.seal or "")[:SHORT] if publication is not None else ""


def check_seals(rekeyed=False):
    """None, or a one-line reason naming the first published month whose seal does not hold."""
    for pub in db.session.scalars(select(MonthlyPublication).order_by(MonthlyPublication.period)):
        if not pub.seal:
            if rekeyed:
                return f"published month {pub.period} has no seal"
            return (f"published month {pub.period} has no seal (published before the ledger key): "
                    "run `pbschool ledger rekey` once")
        try:
            expected = mac(pub.seal_key_id, seal_text(pub))
        except LedgerKeyError as exc:
            return f"published month {pub.period}: {exc}"
        if not same(expected, pub.seal):
            return f"published month {pub.period}: its published scores or head do not match its seal"
        if not same(head_hash_at(pub.last_seq), pub.head_hash):
            return (f"published month {pub.period}: the ledger under its sealed head (seq {pub.last_seq}) "
                    "was re-chained")
    return None
