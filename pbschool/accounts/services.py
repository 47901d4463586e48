"""Account operations. They take plain values, raise DomainError, flush, and never commit."""

import re
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_request_context, request
from flask_babel import gettext as _
from sqlalchemy import func, select

from pbschool import clock
from pbschool.accounts import passwords
from pbschool.accounts.models import ROLES, ApiToken, AuditLog, Branch, Membership, User
from pbschool.errors import DomainError
from pbschool.extensions import db

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-@\u4e00-\u9fff]{2,64}$")
BRANCH_CODE_RE = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")
PASSWORD_MIN, PASSWORD_MAX = passwords.PASSWORD_MIN, passwords.PASSWORD_MAX
# Generated passwords avoid look-alike characters (0/O, 1/l/I) for people reading them off paper.

_PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # noqa: S105

ROLE_NAMES = {"member": "党员", "lecturer": "授课人", "secretary": "支部书记", "admin": "管理员"}
ROLE_ALIASES = {**{r: r for r in ROLES}, **{v: k for k, v in ROLE_NAMES.items()},
                "书记": "secretary", "讲师": "lecturer", "管理": "admin"}


# -- passwords -------------------------------------------------------------------------------

def _hasher():
    cfg = current_app.config
    return PasswordHasher(time_cost=cfg.get("ARGON2_TIME_COST", 2),
                          memory_cost=cfg.get("ARGON2_MEMORY_KIB", 19456), parallelism=1)


def hash_password(password):
    return _hasher().hash(password)


def hash_passwords(passwords):
    """Hash many passwords on every core (argon2 releases the GIL); order is kept."""
    hasher = _hasher()
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(hasher.hash, passwords))


def verify_password(user, password):
    try:
        return _hasher().verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A hash to verify against when the username is unknown, so that the reply takes as long.
_dummy_hash = None


def _burn_time(password):
    global _dummy_hash
    hasher = _hasher()
    if _dummy_hash is None:
        _dummy_hash = hasher.hash(secrets.token_hex(8))
    try:
        hasher.verify(_dummy_hash, password)
    except (VerificationError, InvalidHashError):
        pass


def check_password_rules(password, field="password", *, username=None, name=None):
    """The one password rule (accounts.passwords), whichever door the password came through."""
    passwords.check(password, username=username, name=name, field=field)


def generate_password(length=10):
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))


# -- audit -----------------------------------------------------------------------------------

def audit(actor, action, obj, summary="", **details):
    """Record who changed what. ``obj`` is a model instance (flushed, so it has an id) or a str."""
    if isinstance(obj, str):
        object_type, object_id = obj, None
    else:
        object_type, object_id = type(obj).__name__.lower(), str(obj.id)
    ip = request.remote_addr if has_request_context() else None
    entry = AuditLog(actor_id=getattr(actor, "id", None), action=action, object_type=object_type,
                     object_id=object_id, summary=summary, details=details or None, ip=ip)
    db.session.add(entry)
    return entry


# -- branches --------------------------------------------------------------------------------

def find_branch(code_or_name):
    """A branch by its code, or failing that by its exact name."""
    if not code_or_name:
        return None
    key = str(code_or_name).strip()
    branch = db.session.scalar(select(Branch).where(func.lower(Branch.code) == key.lower()))
    if branch is None:
        branch = db.session.scalar(select(Branch).where(Branch.name == key))
    return branch


def create_branch(code, name, actor=None):
    code, name = (code or "").strip(), (name or "").strip()
    if not BRANCH_CODE_RE.match(code):
        raise DomainError(_("支部代码只能包含字母、数字、下划线和连字符（1–32 个字符）"), "invalid_code",
                          field="code")
    if not name or len(name) > 100:
        raise DomainError(_("请填写支部名称（不超过 100 个字符）"), "invalid_name", field="name")
    if db.session.scalar(select(Branch).where(func.lower(Branch.code) == code.lower())):
        raise DomainError(_("支部代码 %(code)s 已存在", code=code), "duplicate_branch", 409, field="code")
    branch = Branch(code=code, name=name)
    db.session.add(branch)
    db.session.flush()
    audit(actor, "branch.create", branch, f"{code} {name}")
    return branch


def update_branch(branch, name, is_active, actor=None):
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise DomainError(_("请填写支部名称（不超过 100 个字符）"), "invalid_name", field="name")
    changes = {}
    if name != branch.name:
        changes["name"] = [branch.name, name]
        branch.name = name
    if is_active != branch.is_active:
        changes["is_active"] = [branch.is_active, is_active]
        branch.is_active = is_active
    if changes:
        audit(actor, "branch.update", branch, branch.code, **changes)
    return branch


# -- membership history ----------------------------------------------------------------------

def start_stay(user):
    """A new user's first stay, from their creation (flushed user)."""
    db.session.add(Membership(user_id=user.id, branch_id=user.branch_id, started_at=user.created_at or clock.now()))


def note_stay_change(user, *, old_branch_id):
    """The user moved branch or was (de)activated: close the stay that was open and, if they are
    active, open one where they are now. Figures of a past period read these, never the user's
    current branch, so a move or a deactivation today does not rewrite last quarter."""
    now = clock.now()
    open_stay = db.session.scalar(select(Membership).where(Membership.user_id == user.id, Membership.ended_at.is_(None))
                                  .order_by(Membership.started_at.desc()))
    if open_stay is None and db.session.scalar(select(Membership.id).where(Membership.user_id == user.id)) is None:
        # made before the history began (or straight in the database): their stay so far
        open_stay = Membership(user_id=user.id, branch_id=old_branch_id, started_at=user.created_at or now)
        db.session.add(open_stay)
    if open_stay is not None:
        open_stay.ended_at = now
    if user.is_active_account:
        db.session.add(Membership(user_id=user.id, branch_id=user.branch_id, started_at=now))
    db.session.flush()


# -- users -----------------------------------------------------------------------------------

def normalise_role(value):
    role = ROLE_ALIASES.get(str(value or "member").strip().lower()) or ROLE_ALIASES.get(str(value).strip())
    if role is None:
        raise DomainError(_("未知角色：%(role)s（可选：党员、授课人、支部书记、管理员）", role=value),
                          "invalid_role", field="role")
    return role


def _check_user_fields(username, name, role, branch):
    if not USERNAME_RE.match(username or ""):
        raise DomainError(_("用户名需为 2–64 个字母、数字、汉字或 _.-@"), "invalid_username", field="username")
    if not name or len(name) > 100:
        raise DomainError(_("请填写姓名（不超过 100 个字符）"), "invalid_name", field="name")
    if role in ("member", "secretary") and branch is None:
        raise DomainError(_("党员和支部书记必须属于一个支部"), "branch_required", field="branch")
    if branch is not None and not branch.is_active:
        raise DomainError(_("支部 %(code)s 已停用", code=branch.code), "inactive_branch", field="branch")


def resolve_branch(code):
    if code in (None, ""):
        return None
    branch = find_branch(code)
    if branch is None:
        raise DomainError(_("找不到支部：%(code)s", code=code), "unknown_branch", 404, field="branch")
    return branch


def create_user(username, name, role="member", branch=None, job_post="", password=None, actor=None,
                must_change_password=False):
    """Add a user. ``branch`` is a Branch, a code or None. Returns (user, password or None)."""
    username, name = (username or "").strip(), (name or "").strip()
    role = normalise_role(role)
    if not isinstance(branch, Branch):
        branch = resolve_branch(branch)
    _check_user_fields(username, name, role, branch)
    if db.session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        raise DomainError(_("用户名 %(u)s 已存在", u=username), "duplicate_username", 409, field="username")
    generated = None
    if not password:
        password = generated = generate_password()
        must_change_password = True
    else:
        check_password_rules(password, username=username, name=name)
    user = User(username=username, name=name, role=role, branch=branch, job_post=(job_post or "").strip(),
                password_hash=hash_password(password), must_change_password=must_change_password)
    db.session.add(user)
    db.session.flush()
    start_stay(user)
    audit(actor, "user.create", user, f"{username} {name}", role=role, branch=branch.code if branch else None)
    return user, generated


def update_user(user, *, name, role, branch, job_post, actor=None):
    role = normalise_role(role)
    if not isinstance(branch, Branch):
        branch = resolve_branch(branch)
    name = (name or "").strip()
    _check_user_fields(user.username, name, role, branch)
    if user.id == getattr(actor, "id", None) and user.role == "admin" and role != "admin":
        raise DomainError(_("不能取消自己的管理员角色"), "self_demote", field="role")
    changes = {}
    for attr, value in (("name", name), ("role", role), ("job_post", (job_post or "").strip())):
        if getattr(user, attr) != value:
            changes[attr] = [getattr(user, attr), value]
            setattr(user, attr, value)
    if user.branch_id != (branch.id if branch else None):
        changes["branch"] = [user.branch.code if user.branch else None, branch.code if branch else None]
        old_branch_id = user.branch_id
        user.branch = branch
        db.session.flush()
        note_stay_change(user, old_branch_id=old_branch_id)
    if changes:
        audit(actor, "user.update", user, user.username, **changes)
    return user


def set_active(user, active, actor=None):
    if user.id == getattr(actor, "id", None) and not active:
        raise DomainError(_("不能停用自己的账号"), "self_deactivate")
    if user.is_active_account == active:
        return user
    user.is_active_account = active
    note_stay_change(user, old_branch_id=user.branch_id)
    if not active:
        user.rotate_session_nonce()
        revoke_tokens(user)
    audit(actor, "user.activate" if active else "user.deactivate", user, user.username)
    return user


def reset_password(user, actor=None):
    """Give the user a new generated password they must change; returns it (shown once)."""
    password = generate_password()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    user.rotate_session_nonce()
    revoke_tokens(user)
    audit(actor, "user.reset_password", user, user.username)
    return password


def change_password(user, current, new):
    if not verify_password(user, current or ""):
        raise DomainError(_("当前密码不正确"), "wrong_password", field="current")
    check_password_rules(new, field="new", username=user.username, name=user.name)
    if new == current:
        raise DomainError(_("新密码不能与当前密码相同"), "same_password", field="new")
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.rotate_session_nonce()
    revoke_tokens(user)
    audit(user, "user.change_password", user, user.username)


def authenticate(username, password):
    """The active user with these credentials, or None. Takes as long whether or not the user exists."""
    username = (username or "").strip()
    user = db.session.scalar(select(User).where(func.lower(User.username) == username.lower())) \
        if username else None
    if user is None:
        _burn_time(password or "")
        return None
    if not verify_password(user, password or "") or not user.is_active:
        return None
    user.last_login_at = clock.now()
    return user


def note_failed_login(username):
    audit(None, "auth.failed", "user", "", username=(username or "")[:64])


# -- API tokens ------------------------------------------------------------------------------

def issue_token(user, lifetime_days=30):
    import datetime as dt

    token = secrets.token_urlsafe(32)
    address = request.remote_addr if has_request_context() else None
    agent = request.user_agent.string[:200] if has_request_context() else None
    db.session.add(ApiToken(user=user, token_hash=ApiToken.hash(token), created_ip=address, last_ip=address,
                            user_agent=agent or None,
                            expires_at=clock.now() + dt.timedelta(days=lifetime_days)))
    db.session.flush()
    return token


def revoke_tokens(user):
    now = clock.now()
    for row in db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id,
                                                         ApiToken.revoked_at.is_(None))):
        row.revoked_at = now
