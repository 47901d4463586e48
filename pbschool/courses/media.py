"""Uploaded media: type checked by content and by name, stored under MEDIA_DIR by a random name."""

import hashlib
import os
import secrets
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _

from pbschool import auth
from pbschool.accounts.services import audit
from pbschool.courses.models import MediaFile
from pbschool.errors import DomainError
from pbschool.extensions import db

#: extension -> (kind, mimetype, magic check on the first bytes)
TYPES = {
    ".mp4": ("video", "video/mp4", lambda h: h[4:8] == b"ftyp"),
    ".m4v": ("video", "video/mp4", lambda h: h[4:8] == b"ftyp"),
    ".webm": ("video", "video/webm", lambda h: h[:4] == b"\x1a\x45\xdf\xa3"),
    ".mp3": ("audio", "audio/mpeg", lambda h: h[:3] == b"ID3" or (h[0] == 0xFF and h[1] & 0xE0 == 0xE0)),
    ".m4a": ("audio", "audio/mp4", lambda h: h[4:8] == b"ftyp"),
    ".ogg": ("audio", "audio/ogg", lambda h: h[:4] == b"OggS"),
    ".wav": ("audio", "audio/wav", lambda h: h[:4] == b"RIFF" and h[8:12] == b"WAVE"),
    ".pdf": ("pdf", "application/pdf", lambda h: h[:5] == b"%PDF-"),
    ".png": ("image", "image/png", lambda h: h[:8] == b"\x89PNG\r\n\x1a\n"),
    ".jpg": ("image", "image/jpeg", lambda h: h[:3] == b"\xff\xd8\xff"),
    ".jpeg": ("image", "image/jpeg", lambda h: h[:3] == b"\xff\xd8\xff"),
    ".gif": ("image", "image/gif", lambda h: h[:6] in (b"GIF87a", b"GIF89a")),
    ".webp": ("image", "image/webp", lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP"),
}
ACCEPT = ",".join(sorted(TYPES))
CHUNK = 1024 * 1024


def media_dir():
    path = Path(current_app.config["MEDIA_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def max_bytes():
    return int(current_app.config.get("MAX_UPLOAD_MB", 512)) * 1024 * 1024


def sniff(head, filename):
    """(kind, mimetype, extension) if the name and the first bytes agree; else a DomainError."""
    ext = os.path.splitext((filename or "").lower())[1]
    if ext not in TYPES:
        raise DomainError(_("不支持的文件类型：只接受视频（mp4/webm）、音频（mp3/m4a/ogg/wav）、PDF 和图片"
                            "（png/jpg/gif/webp）"), "bad_file_type", 415, field="file")
    kind, mimetype, check = TYPES[ext]
    if len(head) < 12 or not check(head):
        raise DomainError(_("文件内容与扩展名 %(ext)s 不符，请检查文件", ext=ext), "bad_file_content", 415,
                          field="file")
    return kind, mimetype, ext


def _store(stream, filename, uploader, lesson):
    head = stream.read(64)
    kind, mimetype, ext = sniff(head, filename)
    stored_name = secrets.token_hex(16) + ext
    target = media_dir() / stored_name
    partial = target.with_suffix(ext + ".part")
    digest = hashlib.sha256()
    size = 0
    limit = max_bytes()
    try:
        with open(partial, "wb") as out:
            chunk = head
            while chunk:
                size += len(chunk)
                if size > limit:
                    raise DomainError(_("文件超过 %(n)d MB 的上限", n=limit // (1024 * 1024)), "too_large", 413,
                                      field="file")
                digest.update(chunk)
                out.write(chunk)
                chunk = stream.read(CHUNK)
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()
    name = os.path.basename((filename or "").replace("\\", "/"))[-255:] or stored_name
    media = MediaFile(kind=kind, mimetype=mimetype, original_name=name, stored_name=stored_name, size=size,
                      sha256=digest.hexdigest(), uploader_id=getattr(uploader, "id", None),
                      lesson_id=getattr(lesson, "id", None))
    db.session.add(media)
    db.session.flush()
    audit(uploader, "media.uploaded", media, name, kind=kind, size=size, lesson=getattr(lesson, "id", None))
    return media


def save_upload(storage, uploader, lesson=None):
    """Store a werkzeug FileStorage; returns the MediaFile."""
    if storage is None or not storage.filename:
        raise DomainError(_("请选择要上传的文件"), "missing_field", field="file")
    return _store(storage.stream, storage.filename, uploader, lesson)


def import_path(path, lesson, uploader=None):
    """Store a file from disk (content sync), reusing an identical one already attached to the lesson."""
    data_hash = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    for media in lesson.media:
        if media.sha256 == data_hash and media.original_name == Path(path).name:
            return media, False
    with open(path, "rb") as handle:
        return _store(handle, Path(path).name, uploader, lesson), True


def path_of(media):
    return media_dir() / media.stored_name


def delete(media, actor=None):
    try:
        path_of(media).unlink()
    except FileNotFoundError:
        pass
    audit(actor, "media.deleted", media, media.original_name, lesson=media.lesson_id)
    db.session.delete(media)
    db.session.flush()


def can_view(user, media):
    """Media of a published lesson: any signed-in user. Otherwise: its uploader, the lesson's author, admins."""
    from pbschool.courses import services

    if not user or not user.is_authenticated:
        return False
    if auth.is_admin(user) or media.uploader_id == user.id:
        return True
    lesson = media.lesson
    return lesson is not None and services.can_read_lesson(user, lesson)
