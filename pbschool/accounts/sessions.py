"""My sessions: one record per signed-in browser, and the member's own API tokens (ASVS 5.0 V7.4.5:
see and end one's other sessions). Services take plain values, flush, never commit."""

import datetime as dt
import secrets

from flask_babel import gettext as _
from sqlalchemy import select

from pbschool import clock
from pbschool.accounts.models import ApiToken, UserSession
from pbschool.errors import DomainError
from pbschool.extensions import db

#: last_seen_at is written at most this often: the hot path (answer saves) stays free of writes.
TOUCH_EVERY = dt.timedelta(seconds=60)


def start(user, ip, user_agent):
    """A new signed-in browser; returns the random sid the session cookie will carry."""
    sid = secrets.token_urlsafe(24)
    db.session.add(UserSession(sid=sid, user_id=user.id, nonce=user.session_nonce, ip=(ip or "")[:64] or None,
                               user_agent=(user_agent or "")[:200] or None))
    db.session.flush()
    return sid


def find(sid):
    return db.session.scalar(select(UserSession).where(UserSession.sid == sid)) if sid else None


def touch(record, ip):
    """Note the browser's latest request (once a minute, or when its address changed)."""
    now = clock.now()
    ip = (ip or "")[:64] or record.ip
    # a new address at once: a session cookie used from elsewhere shows on the member's list
    if now - record.last_seen_at >= TOUCH_EVERY or ip != record.ip:
        record.last_seen_at = now
        record.ip = ip
        return True
    return False


def end(sid):
    """Sign-out from this browser: its record is revoked."""
    record = find(sid)
    if record is not None and record.revoked_at is None:
        record.revoked_at = clock.now()


def my_sessions(user):
    """My signed-in browsers, latest first. Sign-ins from before a password change or a sign-out (which
    rotate the nonce and so end every session) are not listed: they are over."""
    since = clock.now() - dt.timedelta(days=30)
    return db.session.scalars(select(UserSession).where(
        UserSession.user_id == user.id, UserSession.revoked_at.is_(None), UserSession.last_seen_at >= since,
        UserSession.nonce == user.session_nonce)
        .order_by(UserSession.last_seen_at.desc())).all()


def my_tokens(user):
    """My API tokens still in force, newest first."""
    now = clock.now()
    return db.session.scalars(select(ApiToken).where(
        ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None),
        (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now))
        .order_by(ApiToken.created_at.desc())).all()


def _own(row, actor):
    # Per object: only the owner signs out their own devices; an admin ends another's sessions by
    # deactivating the account or resetting the password, which the audit log records.
    if row is None:
        raise DomainError(_("找不到该登录记录"), "not_found", 404)
    if row.user_id != actor.id:
        raise DomainError(_("只能退出自己的登录"), "forbidden", 403)


def revoke_session(actor, session_id):
    """'Sign out there' for one of my browsers."""
    record = db.session.get(UserSession, session_id)
    _own(record, actor)
    if record.revoked_at is None:
        record.revoked_at = clock.now()
    return record


def revoke_token(actor, token_id):
    """'Sign out there' for one of my API tokens."""
    token = db.session.get(ApiToken, token_id)
    _own(token, actor)
    if token.revoked_at is None:
        token.revoked_at = clock.now()
    return token
