"""Configuration. The only module that reads the environment."""

import datetime as dt
import os
import secrets
from pathlib import Path


class ConfigError(RuntimeError):
    """The environment does not describe a runnable application."""


def _int(name, default):
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from exc


def _secret_key(instance_path, env):
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    if env == "production":
        raise ConfigError("SECRET_KEY is not set; production refuses to start without one")
    # Development: one random key per install, kept under instance/ so sessions survive restarts.
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


def parse_ledger_keys(raw):
    """'2:secret2,1:secret1' -> [("2", "secret2"), ("1", "secret1")]: the first is the current key,
    the others only verify entries chained under them. A bare secret is key id "1"."""
    keys = []
    for part in (raw or "").split(","):
        part = part.strip()
        if not part:
            continue
        key_id, sep, secret = part.partition(":")
        if not sep:
            key_id, secret = "1", part
        key_id, secret = key_id.strip(), secret.strip()
        if not key_id or len(key_id) > 16 or not key_id.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"PBSCHOOL_LEDGER_KEYS: a key id is 1-16 letters or digits, not {key_id!r}")
        if len(secret) < 16:
            raise ConfigError(f"PBSCHOOL_LEDGER_KEYS: the key of id {key_id} is shorter than 16 characters")
        if key_id in dict(keys):
            raise ConfigError(f"PBSCHOOL_LEDGER_KEYS: key id {key_id} is given twice")
        keys.append((key_id, secret))
    return keys


def _ledger_keys(instance_path, env, secret_key):
    """The keys of the ledger's hash chain (HMAC-SHA256). Kept outside the database so that whoever can
    write to it still cannot re-chain the ledger after changing an entry."""
    raw = os.environ.get("PBSCHOOL_LEDGER_KEYS") or os.environ.get("PBSCHOOL_LEDGER_KEY")
    if raw:
        keys = parse_ledger_keys(raw)
        if any(secret == secret_key for _id, secret in keys):
            raise ConfigError("the ledger key must not be the SECRET_KEY: give PBSCHOOL_LEDGER_KEYS a key of its own")
        return keys
    if env == "production":
        raise ConfigError("PBSCHOOL_LEDGER_KEYS is not set; production refuses to start without a ledger key")
    # Development: one random key per install under instance/, as SECRET_KEY.
    path = Path(instance_path) / "ledger_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"1:{secrets.token_hex(32)}")
        path.chmod(0o600)
    return parse_ledger_keys(path.read_text().strip())


def _engine_options(database_url):
    options = {"pool_pre_ping": True}  # a restarted database costs one failed ping, not an error page
    if database_url.startswith("postgresql"):
        # Per process: workers x threads should stay within PostgreSQL's max_connections (or PgBouncer's).
        options.update(pool_size=_int("PBSCHOOL_DB_POOL_SIZE", 5), max_overflow=_int("PBSCHOOL_DB_MAX_OVERFLOW", 5),
                       pool_recycle=1800, pool_timeout=10)
    return options


def load(instance_path):
    """Build the Flask config mapping from the environment."""
    env = os.environ.get("PBSCHOOL_ENV", "development")
    production = env == "production"
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'pbschool.db'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url[len("postgres://"):]
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://"):]
    redis_url = os.environ.get("REDIS_URL") or None
    max_upload_mb = _int("PBSCHOOL_MAX_UPLOAD_MB", 512)
    secret_key = _secret_key(instance_path, env)
    return {
        "PBSCHOOL_ENV": env,
        "SECRET_KEY": secret_key,
        #: [(key id, secret), ...], the current key first (PBSCHOOL_LEDGER_KEYS="2:new,1:old").
        "LEDGER_KEYS": _ledger_keys(instance_path, env, secret_key),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url),
        "REDIS_URL": redis_url,
        "MEDIA_DIR": os.environ.get("PBSCHOOL_MEDIA_DIR") or str(Path(instance_path) / "media"),
        "MAX_UPLOAD_MB": max_upload_mb,
        "MAX_CONTENT_LENGTH": max_upload_mb * 1024 * 1024,
        # Request bodies other than media uploads: member/question imports, and every other form or JSON.
        "MAX_IMPORT_MB": _int("PBSCHOOL_MAX_IMPORT_MB", 10),
        "MAX_FORM_KB": _int("PBSCHOOL_MAX_FORM_KB", 2048),
        # Sum of one person's uploads (admins exempt); 0 turns the quota off.
        "UPLOAD_QUOTA_MB": _int("PBSCHOOL_UPLOAD_QUOTA_MB", 2048),
        # e.g. "/_media/": media is sent by nginx from an internal location after our permission check.
        "X_ACCEL_PREFIX": os.environ.get("PBSCHOOL_X_ACCEL_PREFIX", ""),
        "EXAM_GRACE_SECONDS": _int("PBSCHOOL_EXAM_GRACE_SECONDS", 5),
        # The app grades attempts past deadline + grace itself, at most once this often (0: off, cron only).
        "EXAM_AUTO_SWEEP_SECONDS": _int("PBSCHOOL_EXAM_AUTO_SWEEP_SECONDS", 60),
        # The exam list shows exams that open within this many days.
        "EXAM_OPENS_SOON_DAYS": _int("PBSCHOOL_EXAM_OPENS_SOON_DAYS", 7),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_ENABLED": True,
        # A moving window: failures cannot be spread over a minute boundary to double the allowance.
        "RATELIMIT_STRATEGY": "moving-window",
        # Redis down: each process falls back to its own memory limits rather than none at all.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        # Sign-in failures (accounts.throttle): per account from one address, per address, and per
        # account over all addresses (only guessing from many machines reaches that one).
        "LOGIN_LIMITS_ACCOUNT": os.environ.get("PBSCHOOL_LOGIN_LIMIT_ACCOUNT", "5 per minute;20 per hour"),
        "LOGIN_LIMITS_ADDRESS": os.environ.get("PBSCHOOL_LOGIN_LIMIT_ADDRESS", "30 per minute;300 per hour"),
        "LOGIN_LIMITS_ACCOUNT_ALL": os.environ.get("PBSCHOOL_LOGIN_LIMIT_ACCOUNT_ALL", "100 per hour"),
        # After this many failures in a row from one address at one account, each try waits 2, 4, 8 ... s.
        "LOGIN_DELAY_AFTER": _int("PBSCHOOL_LOGIN_DELAY_AFTER", 5),
        "LOGIN_DELAY_MAX": _int("PBSCHOOL_LOGIN_DELAY_MAX", 900),
        # Proxies in front of the app that set X-Forwarded-For/-Proto (1 behind the README's nginx).
        # Admins must enrol a second factor (TOTP); secretaries and lecturers as the admin sets.
        "REQUIRE_2FA_FOR_ADMINS": os.environ.get("PBSCHOOL_REQUIRE_2FA_FOR_ADMINS", "1" if production else "0") != "0",
        "PROXY_COUNT": _int("PBSCHOOL_PROXY_COUNT", 0),
        # argon2id at OWASP's minimum (19 MiB, 2 passes); tests lower the cost through test_config.
        "ARGON2_TIME_COST": 2,
        "ARGON2_MEMORY_KIB": 19456,
        # In production the cookies are __Host- cookies: a browser takes them only over HTTPS, for
        # Path=/ and this exact host (no Domain), so a sibling host cannot plant or shadow them.
        "SESSION_COOKIE_NAME": "__Host-session" if production else "session",
        "SESSION_COOKIE_PATH": "/",
        "SESSION_COOKIE_DOMAIN": False,
        "REMEMBER_COOKIE_NAME": "__Host-remember_token" if production else "remember_token",
        "REMEMBER_COOKIE_PATH": "/",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        # "Remember me" lasts two weeks, not Flask-Login's year; logout or a new password ends it sooner.
        "REMEMBER_COOKIE_DURATION": dt.timedelta(days=_int("PBSCHOOL_REMEMBER_DAYS", 14)),
        "PERMANENT_SESSION_LIFETIME": 12 * 3600,
        # A CSRF token must outlive the longest exam sitting (24 h, plus any extra time granted): it
        # lives as long as the session that holds its secret, and login starts a new one.
        "WTF_CSRF_TIME_LIMIT": None,
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
        "LANGUAGES": ["zh_CN", "en"],
        "COMMITTEE_NAME": os.environ.get("PBSCHOOL_COMMITTEE_NAME", "矿党委"),
        # the public certificate check, per client address (Flask-Limiter, shared through REDIS_URL)
        "VERIFY_LIMIT": os.environ.get("PBSCHOOL_VERIFY_LIMIT", "30 per minute;300 per hour"),
        "DEMO_MODE": os.environ.get("PBSCHOOL_DEMO", "") == "1",
    }
