"""Consistent backups of the database and the media files, and restoring them.

A backup is one .tar.gz: ``manifest.json``, the database (``database.sqlite3`` made with SQLite's
online backup API, or ``database.pgdump`` from ``pg_dump --format=custom``) and ``media/``.
"""

import datetime as dt
import json
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from pathlib import Path

from flask import current_app
from sqlalchemy.engine import make_url

from pbschool import clock
from pbschool.errors import DomainError
from pbschool.extensions import db

FORMAT_VERSION = 1


def _database():
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    return url.get_backend_name(), url


def _libpq_url(url):
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _run(args, **kwargs):
    try:
        subprocess.run(args, check=True, capture_output=True, text=True, timeout=3600, **kwargs)  # noqa: S603
    except FileNotFoundError as exc:
        raise DomainError(f"{args[0]} is not installed", "tool_missing") from exc
    except subprocess.CalledProcessError as exc:
        reason = (exc.stderr or exc.stdout or "").strip().splitlines()
        raise DomainError(f"{args[0]} failed: {reason[-1] if reason else exc.returncode}", "tool_failed") from exc


def create_backup(target):
    """Write a backup to ``target`` (a file path or a directory); returns the file written."""
    backend, url = _database()
    target = Path(target)
    if target.is_dir() or not target.name.endswith((".tar.gz", ".tgz")):
        target.mkdir(parents=True, exist_ok=True)
        target = target / f"pbschool-{clock.now():%Y%m%d-%H%M%S}.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    media = Path(current_app.config["MEDIA_DIR"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if backend == "sqlite":
            name = "database.sqlite3"
            source = sqlite3.connect(url.database)
            dest = sqlite3.connect(tmp / name)
            with dest:
                source.backup(dest)  # a consistent copy even while the app writes
            source.close()
            dest.close()
        elif backend == "postgresql":
            name = "database.pgdump"
            _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", str(tmp / name),
                  "--dbname", _libpq_url(url)])
        else:
            raise DomainError(f"backups of {backend} databases are not supported", "unsupported_database")
        manifest = {"format": FORMAT_VERSION, "created_at": clock.isoformat(clock.now()), "database": backend,
                    "file": name, "media_files": sum(1 for p in media.rglob("*") if p.is_file())
                    if media.exists() else 0}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        partial = target.with_name(target.name + ".partial")
        with tarfile.open(partial, "w:gz") as archive:
            archive.add(tmp / "manifest.json", arcname="manifest.json")
            archive.add(tmp / name, arcname=name)
            if media.exists():
                archive.add(media, arcname="media")
        partial.replace(target)  # never leave a half-written file under the real name
    return target, manifest


def _safe_members(archive):
    for member in archive.getmembers():
        path = Path(member.name)
        if path.is_absolute() or ".." in path.parts or member.issym() or member.islnk():
            raise DomainError(f"unsafe path in backup: {member.name}", "bad_backup")
        yield member


def restore_backup(source):
    """Replace the database and the media files with those in the backup ``source``."""
    source = Path(source)
    if not source.is_file():
        raise DomainError(f"no such backup file: {source}", "not_found")
    backend, url = _database()
    try:
        archive = tarfile.open(source, "r:gz")
    except (tarfile.TarError, OSError) as exc:
        raise DomainError(f"not a pbschool backup: {source.name}", "bad_backup") from exc
    with archive, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        archive.extractall(tmp, members=list(_safe_members(archive)), filter="data")
        try:
            manifest = json.loads((tmp / "manifest.json").read_text())
        except (OSError, ValueError) as exc:
            raise DomainError("the backup has no readable manifest.json", "bad_backup") from exc
        if manifest.get("format") != FORMAT_VERSION:
            raise DomainError(f"unsupported backup format {manifest.get('format')}", "bad_backup")
        if manifest.get("database") != backend:
            raise DomainError(f"the backup holds a {manifest.get('database')} database but DATABASE_URL is "
                              f"{backend}", "wrong_database")
        db.session.remove()
        db.engine.dispose()
        dump = tmp / manifest["file"]
        if backend == "sqlite":
            restored = sqlite3.connect(dump)
            live = sqlite3.connect(url.database)
            with live:
                restored.backup(live)
            restored.close()
            live.close()
        else:
            _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
                  "--dbname", _libpq_url(url), str(dump)])
        media = Path(current_app.config["MEDIA_DIR"])
        if (tmp / "media").exists():
            if media.exists():
                shutil.rmtree(media)
            shutil.copytree(tmp / "media", media)
    return manifest


def describe(manifest):
    created = manifest.get("created_at", "")
    return (f"{manifest['database']} database, {manifest.get('media_files', 0)} media file(s), "
            f"made {created or dt.datetime.min}")
