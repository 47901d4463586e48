"""Issuing, revoking and finding certificates.

An exam certificate follows its attempt: ``sync_attempt`` is called wherever an attempt's result
becomes final or changes (submit, the last hand mark, a regrade) and makes the certificate agree
with it. A regrade that fails a pass revokes the certificate (an event, never a deletion); a later
regrade back to a pass reinstates the same certificate, so a code already printed or shared checks
out again. Both events stay in the certificate's history. An hours certificate (学时证明) is issued
once a year's credited hours reach the member's target; hours are never taken back, so it is never
revoked.
"""

import re
import secrets
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pbschool import auth, clock
from pbschool.certificates.models import Certificate, CertificateEvent
from pbschool.extensions import db

#: No look-alikes (0/O, 1/I/L): a code read off paper can be typed back.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 12
#: The longest code input looked at (spaces and dashes included); anything longer is no code.
MAX_CODE_INPUT = 32
_SEPARATORS = re.compile(r"[\s\-]+")


def new_code():
    """12 characters of a 31-letter alphabet from ``secrets``: about 59 bits, not guessable."""
    return "".join(secrets.choice(ALPHABET) for _i in range(CODE_LENGTH))


def normalise_code(raw):
    """The canonical code of what someone typed (case, spaces and dashes ignored), or None."""
    if not isinstance(raw, str) or len(raw) > MAX_CODE_INPUT:
        return None
    code = _SEPARATORS.sub("", raw).upper()
    if len(code) != CODE_LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code


def find(raw_code):
    code = normalise_code(raw_code)
    if code is None:
        return None
    return db.session.scalar(select(Certificate).where(Certificate.code == code))


def visible(viewer, certificate):
    """The holder, and staff who may see the holder's results (admin: all; secretary: own branch)."""
    return certificate is not None and auth.can_view_user(viewer, certificate.user)


def _insert(certificate, actor=None):
    """Insert with a fresh code; a parallel insert of the same certificate wins and is returned."""
    for _try in range(5):
        certificate.code = new_code()
        try:
            with db.session.begin_nested():
                db.session.add(certificate)
                db.session.flush()
        except IntegrityError:
            existing = _existing(certificate)
            if existing is not None:
                return existing
            continue  # the code collided (about 1 in 10^17): draw again
        db.session.add(CertificateEvent(certificate=certificate, action="issue", actor_id=getattr(actor, "id", None)))
        db.session.flush()
        return certificate
    raise RuntimeError("could not draw a free certificate code")


def _existing(certificate):
    if certificate.kind == "exam":
        return for_attempt(certificate.attempt_id)
    return db.session.scalar(select(Certificate).where(Certificate.user_id == certificate.user_id,
                                                       Certificate.year == certificate.year))


def for_attempt(attempt_id):
    return db.session.scalar(select(Certificate).where(Certificate.attempt_id == attempt_id))


def _holder(user):
    return {"user_id": user.id, "holder_name": user.name[:100],
            "branch_name": (user.branch.name if user.branch else "")[:100]}


def _gives(attempt):
    return (attempt.state == "submitted" and bool(attempt.passed) and not attempt.is_preview
            and attempt.exam.issues_certificate)


def sync_attempt(attempt, actor=None):
    """Make the attempt's certificate agree with its final result: issue it for a pass of an exam that
    gives certificates (once: one per attempt), revoke it when the attempt no longer passes,
    reinstate it when it passes again. Idempotent. Returns the certificate or None."""
    certificate = for_attempt(attempt.id)
    passes = attempt.state == "submitted" and bool(attempt.passed) and not attempt.is_preview
    if certificate is None:
        if not _gives(attempt):
            return None
        return _insert(Certificate(kind="exam", attempt_id=attempt.id, title=attempt.exam.title[:200],
                                   **_holder(attempt.user)), actor)
    if passes and certificate.is_revoked:
        certificate.revoked_at = None
        db.session.add(CertificateEvent(certificate=certificate, action="reinstate",
                                        actor_id=getattr(actor, "id", None), reason=_("重新评分后通过考试")))
    elif not passes and not certificate.is_revoked:
        certificate.revoked_at = clock.now()
        db.session.add(CertificateEvent(certificate=certificate, action="revoke",
                                        actor_id=getattr(actor, "id", None), reason=_("重新评分后未通过考试")))
    db.session.flush()
    return certificate


def hours_title(year):
    return _("%(y)d年度学习学时", y=year)


def issue_for_hours(user, year=None):
    """The year's 学时证明 once the user's credited hours reach their target (once per year). Returns
    the certificate, or None while the target is not reached."""
    from pbschool.courses.services import learning_summary

    summary = learning_summary(user, year)
    year = summary["year"]
    existing = db.session.scalar(select(Certificate).where(Certificate.user_id == user.id, Certificate.year == year))
    if existing is not None:
        return existing
    target = summary["target_hours"]
    if target <= 0 or summary["hours"] < target:
        return None
    return _insert(Certificate(kind="hours", year=year, title=hours_title(year), hours=summary["hours"],
                               target_hours=Decimal(target), **_holder(user)))


def of_user(user):
    """The user's certificates, newest first."""
    return db.session.scalars(select(Certificate).where(Certificate.user_id == user.id)
                              .order_by(Certificate.issued_at.desc(), Certificate.id.desc())).all()


def figure(certificate):
    """What the certificate states: the score (as a percentage) or the hours."""
    if certificate.kind == "exam":
        attempt = certificate.attempt
        return _("%(s)s 分（满分 %(m)s 分）", s=attempt.score, m=attempt.max_score) if attempt else ""
    return _("%(h)s 学时（年度目标 %(t)s）", h=_plain(certificate.hours), t=_plain(certificate.target_hours))


def _plain(value):
    if value is None:
        return ""
    text = f"{Decimal(value).quantize(Decimal('0.01')):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def api_item(certificate, pdf_url):
    return {"code": certificate.display_code, "pdf_url": pdf_url}
