"""Second factor for staff (ASVS 5.0 V6.3.3): TOTP (RFC 6238, pyotp) with recovery codes.

Required for admins (``REQUIRE_2FA_FOR_ADMINS``, on in production), and for the roles an admin names
in the ``require_2fa_for`` setting (secretaries, lecturers). A code is accepted in its 30-second step
and one step either side (clock drift), and never twice: the last accepted step is kept and moved
forward by a conditional update, so the same code sent twice at once is taken once.
"""

import hashlib
import hmac
import secrets

import pyotp
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update

from pbschool import clock
from pbschool.accounts.models import AccountSetting, RecoveryCode, User
from pbschool.errors import DomainError
from pbschool.extensions import db

ISSUER = "网上党校"
RECOVERY_CODES = 10
#: Roles an admin may make enrol (admins are required by configuration).
OPTIONAL_ROLES = ("secretary", "lecturer")
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes: read off paper


def enrolled(user):
    return bool(user.totp_enabled_at and user.totp_secret)


def required_roles():
    """The roles that must have a second factor."""
    roles = set()
    if current_app.config.get("REQUIRE_2FA_FOR_ADMINS", True):
        roles.add("admin")
    row = db.session.get(AccountSetting, "require_2fa_for")
    roles.update(r for r in (row.value if row and isinstance(row.value, list) else []) if r in OPTIONAL_ROLES)
    return roles


def required(user):
    return user.role in required_roles()


def set_required_roles(roles, actor):
    """Admin setting: which of secretaries and lecturers must enrol."""
    from pbschool.accounts.services import audit

    chosen = sorted({r for r in roles if r in OPTIONAL_ROLES})
    row = db.session.get(AccountSetting, "require_2fa_for")
    if row is None:
        row = AccountSetting(key="require_2fa_for")
        db.session.add(row)
    before = row.value
    row.value = chosen
    db.session.flush()
    audit(actor, "settings.require_2fa_for", "setting", "require_2fa_for", before=before, after=chosen)
    return chosen


def begin_enrolment(user):
    """A fresh secret for the enrolment page (not in force until a code from it is confirmed)."""
    if enrolled(user):
        raise DomainError(_("已启用两步验证"), "already_enrolled", 409)
    if not user.totp_secret:
        user.totp_secret = pyotp.random_base32()
        db.session.flush()
    return user.totp_secret


def provisioning_uri(user):
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.username, issuer_name=ISSUER)


def qr_svg_data_uri(user):
    """The enrolment QR code as a data: URI, drawn here: the secret never goes to another host."""
    import segno

    return segno.make(provisioning_uri(user), error="m").svg_data_uri(scale=5, border=2)


def _matching_step(secret, code, now):
    code = (code or "").strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    step = totp.timecode(now)
    for candidate in (step, step - 1, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def _take_step(user, step):
    """Move the user's last accepted step forward to ``step``; False when it was already used."""
    result = db.session.execute(
        update(User).where(User.id == user.id,
                           (User.totp_last_step.is_(None)) | (User.totp_last_step < step))
        .values(totp_last_step=step).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    user.totp_last_step = step
    return True


def _now():
    import datetime as dt

    return clock.now().replace(tzinfo=dt.UTC)


def confirm_enrolment(user, code):
    """The first good code turns the second factor on; returns the recovery codes (shown once)."""
    if enrolled(user):
        raise DomainError(_("已启用两步验证"), "already_enrolled", 409)
    if not user.totp_secret:
        raise DomainError(_("请先打开两步验证设置页面"), "not_enrolling", 409)
    step = _matching_step(user.totp_secret, code, _now())
    if step is None or not _take_step(user, step):
        raise DomainError(_("验证码不正确或已使用，请输入验证器中显示的 6 位数字"), "invalid_otp", field="code")
    user.totp_enabled_at = clock.now()
    codes = new_recovery_codes(user)
    from pbschool.accounts.services import audit

    audit(user, "user.2fa_enable", user, user.username)
    return codes


def _hash(code):
    return hashlib.sha256(code.strip().lower().replace("-", "").replace(" ", "").encode()).hexdigest()


def new_recovery_codes(user):
    """Ten new one-time codes (the old ones stop working); only their hashes are kept."""
    for row in db.session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                                             RecoveryCode.used_at.is_(None))):
        row.used_at = clock.now()
    codes = []
    for _i in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _j in range(16))
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_hash(codes[-1])))
    db.session.flush()
    return codes


def verify(user, code):
    """True when ``code`` is a fresh TOTP code or an unused recovery code of ``user`` (used up now)."""
    if not enrolled(user) or not isinstance(code, str) or len(code) > 64:
        return False
    step = _matching_step(user.totp_secret, code, _now())
    if step is not None:
        return _take_step(user, step)
    result = db.session.execute(
        update(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _hash(code),
                                   RecoveryCode.used_at.is_(None))
        .values(used_at=clock.now()).execution_options(synchronize_session=False))
    if result.rowcount == 1:
        from pbschool.accounts.services import audit

        audit(user, "user.2fa_recovery_code", user, user.username)
        return True
    return False


def recovery_codes_left(user):
    return len(db.session.scalars(select(RecoveryCode.id).where(RecoveryCode.user_id == user.id,
                                                                RecoveryCode.used_at.is_(None))).all())


def reset(user, actor):
    """Admin: the user lost the phone and the codes; they enrol again at their next sign-in."""
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    for row in db.session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                                             RecoveryCode.used_at.is_(None))):
        row.used_at = clock.now()
    user.rotate_session_nonce()
    from pbschool.accounts.services import audit, revoke_tokens

    revoke_tokens(user)
    audit(actor, "user.2fa_reset", user, user.username)
