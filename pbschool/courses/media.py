"""Uploaded media: type checked by content and by name, stored under MEDIA_DIR by a random name; the
request body limits, the per-person upload quota, and serving through nginx (X-Accel-Redirect)."""

import hashlib
import os
import secrets
import unicodedata
from pathlib import Path
from urllib.parse import quote

from flask import Response, current_app, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.datastructures import Headers
from werkzeug.exceptions import RequestEntityTooLarge

from pbschool import auth
from pbschool.accounts.models import User
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
MB = 1024 * 1024
#: Room for the multipart boundaries, part headers and CSRF token around an uploaded file.
FORM_OVERHEAD = 64 * 1024
#: Endpoints whose request body may be a file; every other request gets the small form limit.
BODY_LIMITS = {"courses.upload": "media", "accounts.import_users_page": "import", "exams.import_bank": "import"}


def media_dir():
    path = Path(current_app.config["MEDIA_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def max_bytes():
    return int(current_app.config.get("MAX_UPLOAD_MB", 512)) * MB


def body_limit(endpoint):
    """The largest request body ``endpoint`` accepts, never above MAX_CONTENT_LENGTH."""
    kind = BODY_LIMITS.get(endpoint)
    if kind == "media":
        limit = max_bytes() + FORM_OVERHEAD
    elif kind == "import":
        limit = int(current_app.config.get("MAX_IMPORT_MB", 10)) * MB + FORM_OVERHEAD
    else:
        limit = int(current_app.config.get("MAX_FORM_KB", 2048)) * 1024
    ceiling = current_app.config.get("MAX_CONTENT_LENGTH")
    return min(limit, ceiling) if ceiling else limit


def limit_request_body():
    """Before any code reads the body: set this request's limit, and refuse a body declared too large.

    Werkzeug then cuts a chunked body (no Content-Length) off at the same limit while it streams.
    A media upload that the Content-Length already shows to be over the uploader's quota is refused
    here too, so nobody waits for a gigabyte to arrive only to be told no."""
    multipart = request.mimetype == "multipart/form-data"
    limit = body_limit(request.endpoint) if multipart else body_limit(None)  # only multipart carries files
    request.max_content_length = limit
    length = request.content_length
    if length is None:
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if chunked and request.environ.get("wsgi.input_terminated") and not multipart:
            # Streamed without a length: werkzeug's read() would quietly stop at the limit and hand
            # the form a truncated body, so read it here (at most the small form limit) and refuse
            # one that goes on past it.
            request.get_data(cache=True)
            if getattr(request.stream, "is_exhausted", False):
                request.stream.read(1)  # raises RequestEntityTooLarge
        return
    if length > limit:
        raise RequestEntityTooLarge()
    if BODY_LIMITS.get(request.endpoint) == "media" and current_user.is_authenticated:
        quota = quota_bytes(current_user)
        if quota is not None:
            used = used_bytes(current_user)
            if used + length - FORM_OVERHEAD > quota:
                raise _over_quota(used, quota)


def quota_bytes(uploader):
    """The uploader's quota in bytes, or None: admins, content sync and a quota of 0 are unlimited."""
    quota = int(current_app.config.get("UPLOAD_QUOTA_MB", 2048))
    if uploader is None or quota <= 0 or auth.is_admin(uploader):
        return None
    return quota * MB


def used_bytes(uploader):
    return db.session.scalar(select(func.coalesce(func.sum(MediaFile.size), 0))
                             .where(MediaFile.uploader_id == uploader.id))


def _over_quota(used, quota):
    return DomainError(_("上传空间不足：您已使用 %(used)s MB，个人上传配额为 %(quota)d MB，本文件放不下。"
                         "请删除不再需要的文件，或请管理员调整配额",
                         used=f"{used / MB:.1f}", quota=quota // MB), "quota_exceeded", 413, field="file")


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
    quota = quota_bytes(uploader)
    used = used_bytes(uploader) if quota is not None else 0
    try:
        with open(partial, "wb") as out:
            chunk = head
            while chunk:
                size += len(chunk)
                if size > limit:
                    raise DomainError(_("文件超过 %(n)d MB 的上限", n=limit // MB), "too_large", 413,
                                      field="file")
                if quota is not None and used + size > quota:
                    raise _over_quota(used, quota)
                digest.update(chunk)
                out.write(chunk)
                chunk = stream.read(CHUNK)
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()
    try:
        if quota is not None:
            # Parallel uploads by one person: the row lock makes the second wait for the first to
            # commit, so its sum (a new statement) counts the first file too.
            db.session.execute(select(User.id).where(User.id == uploader.id).with_for_update())
            used = used_bytes(uploader)
            if used + size > quota:
                raise _over_quota(used, quota)
        name = os.path.basename((filename or "").replace("\\", "/"))[-255:] or stored_name
        media = MediaFile(kind=kind, mimetype=mimetype, original_name=name, stored_name=stored_name, size=size,
                          sha256=digest.hexdigest(), uploader_id=getattr(uploader, "id", None),
                          lesson_id=getattr(lesson, "id", None))
        db.session.add(media)
        db.session.flush()
    except BaseException:
        target.unlink(missing_ok=True)
        raise
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


def content_disposition(name, as_attachment):
    """``inline``/``attachment`` with the original name, RFC 5987 encoded when it is not ASCII (as send_file)."""
    headers = Headers()
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        simple = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
        names = {"filename": simple, "filename*": "UTF-8''" + quote(name, safe="!#$&+-.^_`|~")}
    else:
        names = {"filename": name}
    headers.set("Content-Disposition", "attachment" if as_attachment else "inline", **names)
    return headers["Content-Disposition"]


def accel_response(media, as_attachment):
    """An empty reply telling nginx to send the file itself (X-Accel-Redirect), with Range support.

    Only ever built after the permission check; the prefix names an ``internal`` nginx location."""
    prefix = current_app.config.get("X_ACCEL_PREFIX") or ""
    response = Response(b"", mimetype=media.mimetype)
    response.headers["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + media.stored_name
    response.headers["Content-Disposition"] = content_disposition(media.original_name, as_attachment)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


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
    if lesson is None:
        return False
    if media.draft_change == "add":  # part of an edit still awaiting review
        return services.can_edit_lesson(user, lesson)
    return services.can_read_lesson(user, lesson)
