"""The one-time step that brings a ledger chained before the ledger key under it.

Entries are never edited (the table is append-only, in the database too), so the entries chained
with plain SHA-256 keep their digests: ``rekey`` checks that part of the chain once and stores an HMAC
of its last digest under the key (the anchor). A hash chain's last digest commits to every entry
before it, so from then on changing any of them is found by ``ledger verify`` even after re-hashing
them all; months published before the key are sealed at the same time. It runs once: afterwards
``verify`` refuses every entry without the key beyond the anchor, and ``rekey`` refuses to run again.
"""

from flask_babel import gettext as _
from sqlalchemy import func, select

from pbschool import clock
from pbschool.accounts.services import audit
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.points import keys, services
from pbschool.points.models import LedgerEntry, MonthlyPublication


def _check_legacy_part(last_seq):
    """The entries up to ``last_seq`` form an intact plain SHA-256 chain; else a DomainError naming the
    first bad one."""
    prev, expected = services.GENESIS, 1
    while expected <= last_seq:
        batch = db.session.execute(select(*LedgerEntry.__table__.c)
                                   .where(LedgerEntry.seq >= expected, LedgerEntry.seq <= last_seq)
                                   .order_by(LedgerEntry.seq).limit(5000)).all()
        for entry in batch:
            if entry.seq != expected or entry.key_id is not None or entry.prev_hash != prev \
                    or services.entry_digest(entry, prev) != entry.hash:
                raise DomainError(_("账本第 %(seq)d 条（#%(id)d）已损坏，不能用密钥封存：请先从备份恢复",
                                    seq=entry.seq, id=entry.id), "ledger_broken", 409)
            prev, expected = entry.hash, expected + 1
        if not batch:
            raise DomainError(_("账本缺少第 %(seq)d 条记录，不能用密钥封存", seq=expected), "ledger_broken", 409)
    return prev


def rekey(*, actor=None):
    """Vouch, once and under the current ledger key, for the entries chained before the ledger had a
    key, and seal every month published before it. Returns (entries anchored, months sealed)."""
    head = services._lock_head()
    if head.rekeyed_at is not None:
        when = head.rekeyed_at.strftime("%Y-%m-%d %H:%M")
        raise DomainError(_("账本已于 %(at)s 用密钥封存过，不能再次执行", at=when), "already_rekeyed", 409)
    key_id = keys.current_id()
    unkeyed = db.session.execute(select(func.count(LedgerEntry.id), func.max(LedgerEntry.seq))
                                 .where(LedgerEntry.key_id.is_(None))).one()
    count, last_seq = unkeyed[0] or 0, unkeyed[1] or 0
    first_keyed = db.session.scalar(select(func.min(LedgerEntry.seq)).where(LedgerEntry.key_id.isnot(None)))
    if count and (count != last_seq or (first_keyed is not None and first_keyed < last_seq)):
        raise DomainError(_("账本中未用密钥的记录不在链首（第 1–%(n)d 条），不能封存", n=last_seq),
                          "ledger_broken", 409)
    unsealed = db.session.scalars(select(MonthlyPublication).where(MonthlyPublication.seal.is_(None))
                                  .order_by(MonthlyPublication.period)).all()
    if not count and not unsealed:
        raise DomainError(_("账本中没有需要用密钥封存的记录"), "nothing_to_rekey", 409)
    if count:
        digest = _check_legacy_part(last_seq)
        head.legacy_seal = keys.mac(key_id, services.legacy_seal_text(last_seq, digest))
        head.legacy_key_id = key_id
    head.legacy_seq, head.rekeyed_at = last_seq, clock.now()
    for publication in unsealed:
        keys.seal(publication)
    db.session.flush()
    audit(actor, "ledger.rekey", "ledger",
          f"anchored {count} entries chained before the ledger key (up to seq {last_seq}) and sealed "
          f"{len(unsealed)} published months under key {key_id}",
          legacy_seq=last_seq, months=[p.period for p in unsealed], key_id=key_id)
    return count, len(unsealed)
