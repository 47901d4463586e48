"""Branches, users, API tokens and the audit log."""

import datetime as dt
import hashlib
import secrets

from flask_login import UserMixin
from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pbschool import clock
from pbschool.extensions import db

ROLES = ("member", "lecturer", "secretary", "admin")


class Branch(db.Model):
    """A party branch (支部) under the committee."""

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)

    members: Mapped[list["User"]] = relationship(back_populates="branch", order_by="User.username")

    def __repr__(self):
        return f"<Branch {self.code}>"


class User(UserMixin, db.Model):
    """Anyone who logs in. A member is a user with a branch."""

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16), default="member")
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"), index=True)
    job_post: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    is_active_account: Mapped[bool] = mapped_column("is_active", default=True)
    #: Part of the session identity: changing it (password change, logout, deactivation)
    #: invalidates every session and remember-me cookie issued before.
    session_nonce: Mapped[str] = mapped_column(String(32), default=lambda: secrets.token_hex(8))
    #: The admin set this password; the user is asked to choose their own.
    must_change_password: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    last_login_at: Mapped[dt.datetime | None]
    #: Base32 TOTP secret; set at enrolment, in force once ``totp_enabled_at`` is set.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[dt.datetime | None]
    #: The last 30-second step whose code was accepted: the same code is never taken twice.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    branch: Mapped[Branch | None] = relationship(back_populates="members")

    @property
    def is_active(self):
        return self.is_active_account

    def get_id(self):
        return f"{self.id}:{self.session_nonce}"

    def rotate_session_nonce(self):
        self.session_nonce = secrets.token_hex(8)

    @property
    def is_admin(self):
        return self.role == "admin"

    @property
    def is_secretary(self):
        return self.role == "secretary"

    def __repr__(self):
        return f"<User {self.username}>"


class Membership(db.Model):
    """When a user belonged where: one row per stay in a branch (or without one), closed when they
    move or are deactivated. Figures of a past period count a member only while they belonged."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    #: None while the stay goes on.
    ended_at: Mapped[dt.datetime | None]


class ApiToken(db.Model):
    """A bearer token for /api/v1. Only its SHA-256 is stored; the token is shown once."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    last_used_at: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    created_ip: Mapped[str | None] = mapped_column(String(64))
    last_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))

    user: Mapped[User] = relationship()

    @staticmethod
    def hash(token):
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def find_valid(cls, token):
        """The token's row, its user loaded by the same statement (every API call asks for both),
        or None when the token is unknown, revoked or expired."""
        found = db.session.scalar(_token_with_user(), {"token_hash": cls.hash(token)})
        if found is None:
            return None
        if found.revoked_at is not None or (found.expires_at is not None and found.expires_at <= clock.now()):
            return None
        return found


class UserSession(db.Model):
    """One signed-in browser: its random ``sid`` sits in the signed session cookie. Revoking the
    record signs that browser out on its next request (My sessions: "sign out there")."""

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    #: The user's session_nonce at sign-in: a password change or a sign-out rotates it and so ends
    #: every session, and those records are no longer listed.
    nonce: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship()


class RecoveryCode(db.Model):
    """A one-time second-factor code for when the phone is lost. Only its SHA-256 is kept (80 random
    bits: nothing to guess offline); ``used_at`` is set once, by a conditional update."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    used_at: Mapped[dt.datetime | None]


class AccountSetting(db.Model):
    """Admin settings of accounts (e.g. ``require_2fa_for``), one JSON value per key."""

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[dict | list | None] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class ThrottleCounter(db.Model):
    """Sign-in failure counters shared by every process when Redis is absent (accounts.throttle):
    ``bucket`` is a time window's number, 0 for a failure streak."""

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(default=0)
    touched_at: Mapped[dt.datetime] = mapped_column(index=True)


class AuditLog(db.Model):
    """Who changed what, when. Written by services, never edited."""

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(64))

    actor: Mapped[User | None] = relationship()


class DemoRecord(db.Model):
    """A branch or user that ``pbschool demo`` made: the demo writes only into an organisation all of
    whose branches and users it made itself (CONTRACT.md)."""

    __table_args__ = (UniqueConstraint("kind", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "branch" or "user"
    object_id: Mapped[int]
    #: The branch code or username it was made with: a row whose id was reused is not the demo's.
    key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


def count_users():
    return db.session.scalar(select(func.count(User.id)))


_TOKEN_WITH_USER = []


def _token_with_user():
    """SELECT api_token JOIN user WHERE token_hash = :token_hash, built once (building a statement
    costs more than running a cached one), with the relationship filled from the join."""
    if not _TOKEN_WITH_USER:
        from sqlalchemy import bindparam
        from sqlalchemy.orm import contains_eager

        _TOKEN_WITH_USER.append(select(ApiToken).join(ApiToken.user)
                                .options(contains_eager(ApiToken.user))
                                .where(ApiToken.token_hash == bindparam("token_hash")))
    return _TOKEN_WITH_USER[0]
