"""Upload limits as a user meets them: request bodies refused before they are read, the per-person
upload quota, and media handed to nginx by X-Accel-Redirect after the permission check."""

import io
import os
import socket
import threading
import time

import pytest
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from pbschool.accounts.models import User
from pbschool.courses import media
from pbschool.courses.models import Lesson, MediaFile
from pbschool.errors import DomainError
from pbschool.extensions import db
from tests.courses.conftest import upload
from tests.courses.test_views import MP4, PDF, fetch

TEN_GB = 10 * 1024**3
KB = 1024


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anyone reads it."""

    def readable(self):
        return True

    def seekable(self):
        return True  # the test client asks where the body starts

    def seek(self, offset, whence=0):
        return 0

    def readinto(self, buffer):
        raise AssertionError("the request body was read")


def _declared(client, url, length, content_type="multipart/form-data; boundary=x"):
    """POST that announces ``length`` bytes and has none to give."""
    return client.post(url, input_stream=Unreadable(), content_type=content_type,
                       environ_overrides={"CONTENT_LENGTH": str(length)})


def _stored_files(app):
    return sorted(os.listdir(app.config["MEDIA_DIR"]))


@pytest.fixture
def upload_spy(app):
    """Records every time the upload view itself runs."""
    calls = []
    view = app.view_functions["courses.upload"]

    def spy(*args, **kwargs):
        calls.append(1)
        return view(*args, **kwargs)

    app.view_functions["courses.upload"] = spy
    return calls


def _video(kb):
    return MP4 + b"\x00" * (kb * KB - len(MP4))


# -- 413 before the body is read -------------------------------------------------------------

def test_a_huge_upload_is_refused_from_its_headers_alone(app, client, auth, make, cm, upload_spy):
    lecturer = make.user(role="lecturer")
    lesson = cm.lesson(author=lecturer, state="draft")
    auth.login(lecturer.username)
    reply = _declared(client, f"/teach/lessons/{lesson.id}/upload", TEN_GB)
    assert reply.status_code == 413 and "上传内容超过大小限制" in reply.get_data(as_text=True)
    assert upload_spy == [] and _stored_files(app) == []
    assert db.session.scalars(select(MediaFile)).all() == []


def test_forms_and_the_api_get_a_small_limit_imports_a_modest_one(app, client, auth, make, cm):
    app.config["MAX_FORM_KB"] = 100  # (2 MB by default; small here to keep the test light)
    lecturer, admin = make.user(role="lecturer"), make.user(role="admin")
    lesson = cm.lesson(author=lecturer, state="draft")
    auth.login(lecturer.username)
    # A lecturer's 300 KB video is fine ...
    assert upload(client, lesson, _video(300)).status_code == 303
    # ... but 300 KB posted to an ordinary form is not, even with the bytes actually sent.
    comment = client.post(f"/lessons/{lesson.id}/comments",
                          data={"body": "好", "extra": (io.BytesIO(b"x" * 300 * KB), "a.bin")},
                          content_type="multipart/form-data")
    assert comment.status_code == 413 and "上传内容超过大小限制" in comment.get_data(as_text=True)
    assert _declared(client, f"/lessons/{lesson.id}/comments", 300 * KB).status_code == 413
    api = _declared(client, "/api/v1/tokens", 300 * KB, content_type="application/json")
    assert api.status_code == 413 and api.get_json()["error"]["code"] == "too_large"
    client.post("/logout")
    auth.login(admin.username)
    assert _declared(client, "/admin/users/import", 11 * 1024 * KB).status_code == 413
    assert _declared(client, "/admin/banks/import", 11 * 1024 * KB).status_code == 413
    # Under its 10 MB the import page reads the file and answers about its content.
    reply = client.post("/admin/users/import", data={"file": (io.BytesIO(b"x" * 300 * KB), "名单.txt")},
                        content_type="multipart/form-data")
    assert reply.status_code == 200 and "只支持 .xlsx 或 .csv 文件" in reply.get_data(as_text=True)


def test_a_streamed_form_body_without_length_is_refused_past_the_limit(app, client, auth, make, cm):
    app.config["MAX_FORM_KB"] = 64
    member = make.user()
    lesson = cm.lesson()
    auth.login(member.username)
    read = []

    def body(kb):
        yield b"body=%E5%A5%BD%E5%A5%BD&pad="
        for _ in range(kb // 8):
            read.append(1)
            yield b"a" * (8 * KB)

    def post(kb):
        read.clear()
        return client.post(f"/lessons/{lesson.id}/comments", input_stream=_Chunks(body(kb)),
                           content_type="application/x-www-form-urlencoded",
                           headers={"Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})

    assert post(1024).status_code == 413
    assert len(read) < 16  # it stopped soon after the limit, never reading the whole megabyte
    assert post(32).status_code == 302  # under the limit the comment is taken, whole
    assert "好好" in client.get(f"/lessons/{lesson.id}").get_data(as_text=True)


class _Chunks(io.RawIOBase):
    """A body that arrives in pieces, as a chunked request does."""

    def __init__(self, chunks):
        self._chunks, self._rest = chunks, b""

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=0):
        return 0

    def readinto(self, buffer):
        while not self._rest:
            self._rest = next(self._chunks, None)
            if self._rest is None:
                return 0
        n = min(len(buffer), len(self._rest))
        buffer[:n], self._rest = self._rest[:n], self._rest[n:]
        return n


def _raw_request(url, head, body_parts=(), wait=5.0):
    """Send raw bytes to the server at ``url``; return (status line, headers+body text, seconds)."""
    host, port = url.rsplit("/", 1)[-1].split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(65536)
        header, _sep, body = reply.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in header.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += sock.recv(65536)
    return header.split(b"\r\n")[0].decode(), header.decode() + "\n" + body.decode(), time.monotonic() - started


def test_a_real_server_answers_413_without_waiting_for_the_body(tmp_path):
    from tests.perf.common import app_env, gunicorn

    instance = tmp_path / "instance"
    env = {**app_env(f"sqlite:///{tmp_path / 'app.db'}", instance), "PBSCHOOL_MAX_FORM_KB": "64",
           "PBSCHOOL_MAX_UPLOAD_MB": "1"}
    with gunicorn(env, workers=1, threads=2) as server:
        url = server.url
        # Ten gigabytes announced, a few kilobytes sent: the 413 comes at once.
        head = (b"POST /teach/lessons/1/upload HTTP/1.1\r\nHost: t\r\n"
                b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 10737418240\r\n\r\n")
        status, text, seconds = _raw_request(url, head, [b"--x\r\n" + b"a" * 4096])
        assert status.startswith("HTTP/1.1 413") and "上传内容超过大小限制" in text
        assert seconds < 3
        api_head = (b"POST /api/v1/tokens HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 10737418240\r\n\r\n")
        status, text, seconds = _raw_request(url, api_head, [b'{"username": "' + b"a" * 4096])
        assert status.startswith("HTTP/1.1 413") and '"too_large"' in text and seconds < 3
        # No length at all: a chunked form body is cut off at the 64 KB form limit.
        chunk = b"body=" + b"a" * (80 * KB)
        chunked = (b"POST /login HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n")
        status, text, seconds = _raw_request(url, chunked, [b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk)])
        assert status.startswith("HTTP/1.1 413") and seconds < 3
        # A chunked upload is cut off at the media limit (1 MB here) as it streams in.
        part = (b'--x\r\nContent-Disposition: form-data; name="file"; filename="v.mp4"\r\n\r\n' + MP4
                + b"\x00" * (1024 * KB + 16 * KB) + b"\r\n--x--\r\n")
        upload = (b"POST /teach/lessons/1/upload HTTP/1.1\r\nHost: t\r\n"
                  b"Content-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n")
        pieces = [b"%x\r\n%s\r\n" % (len(part[i:i + 64 * KB]), part[i:i + 64 * KB])
                  for i in range(0, len(part), 64 * KB)]
        status, text, seconds = _raw_request(url, upload, [*pieces, b"0\r\n\r\n"])
        assert status.startswith("HTTP/1.1 413") and seconds < 3
    media_dir = instance / "media"
    assert not media_dir.exists() or os.listdir(media_dir) == []


# -- the per-person quota --------------------------------------------------------------------

def test_the_upload_quota_counts_a_persons_files_and_says_how_much_is_used(app, client, auth, make, cm):
    app.config["UPLOAD_QUOTA_MB"] = 1
    lecturer = make.user(role="lecturer")
    lesson = cm.lesson(author=lecturer, state="draft")
    auth.login(lecturer.username)
    assert upload(client, lesson, _video(400)).status_code == 303
    assert upload(client, lesson, _video(400), name="第二讲.mp4").status_code == 303
    reply = upload(client, lesson, _video(400), name="第三讲.mp4", follow_redirects=True)
    assert "上传空间不足：您已使用 0.8 MB，个人上传配额为 1 MB" in reply.get_data(as_text=True)
    assert [m.original_name for m in db.session.scalars(select(MediaFile))] == ["v.mp4", "第二讲.mp4"]
    assert len(_stored_files(app)) == 2  # the refused file, and no .part, left nothing behind
    # Deleting a file frees its room.
    item = db.session.scalar(select(MediaFile).where(MediaFile.original_name == "v.mp4"))
    client.post(f"/teach/media/{item.id}/delete")
    assert upload(client, lesson, _video(400), name="第三讲.mp4").status_code == 303
    assert sorted(m.original_name for m in db.session.scalars(select(MediaFile))) == ["第三讲.mp4", "第二讲.mp4"]


def test_an_upload_announced_over_the_quota_is_refused_before_it_is_sent(app, client, auth, make, cm,
                                                                          upload_spy):
    app.config["UPLOAD_QUOTA_MB"] = 1
    lecturer = make.user(role="lecturer")
    lesson = cm.lesson(author=lecturer, state="draft")
    auth.login(lecturer.username)
    assert upload(client, lesson, _video(400)).status_code == 303
    reply = _declared(client, f"/teach/lessons/{lesson.id}/upload", 5 * 1024 * KB)
    assert reply.status_code == 413 and "个人上传配额为 1 MB" in reply.get_data(as_text=True)
    assert upload_spy == [1]  # only the first, accepted upload reached the view
    assert len(_stored_files(app)) == 1


def test_admins_have_no_upload_quota(app, client, auth, make, cm):
    app.config["UPLOAD_QUOTA_MB"] = 1
    admin = make.user(role="admin")
    lesson = cm.lesson(author=admin, state="draft")
    auth.login(admin.username)
    for n in range(3):
        assert upload(client, lesson, _video(400), name=f"{n}.mp4").status_code == 303
    assert len(db.session.scalars(select(MediaFile)).all()) == 3


def test_parallel_uploads_cannot_both_squeeze_under_the_quota(app, backend, make, cm):
    if backend == "sqlite":
        pytest.skip("SQLite serialises writes and would hide the race")
    app.config["UPLOAD_QUOTA_MB"] = 1
    lecturer = make.user(role="lecturer")
    lesson = cm.lesson(author=lecturer, state="draft")
    user_id, lesson_id = lecturer.id, lesson.id
    barrier, outcomes = threading.Barrier(4), []

    def upload():
        with app.test_request_context():
            try:
                barrier.wait(5)
                media.save_upload(FileStorage(io.BytesIO(_video(400)), "v.mp4"),
                                  db.session.get(User, user_id), db.session.get(Lesson, lesson_id))
                db.session.commit()
                outcomes.append("stored")
            except DomainError as exc:
                db.session.rollback()
                outcomes.append(exc.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    db.session.expire_all()
    assert sorted(outcomes) == ["quota_exceeded", "quota_exceeded", "stored", "stored"]
    assert len(db.session.scalars(select(MediaFile)).all()) == 2 == len(_stored_files(app))


# -- X-Accel-Redirect ------------------------------------------------------------------------

def test_with_an_accel_prefix_nginx_sends_the_file_after_our_permission_check(app, client, auth, make, cm):
    app.config["X_ACCEL_PREFIX"] = "/_media/"
    lecturer = make.user(role="lecturer")
    lesson = cm.lesson(author=lecturer, state="draft")
    auth.login(lecturer.username)
    upload(client, lesson, MP4)
    upload(client, lesson, PDF, name="课件 第一讲.pdf")
    video, pdf = db.session.scalars(select(MediaFile).order_by(MediaFile.id)).all()
    reply = fetch(client, f"/media/{video.stored_name}", headers={"Range": "bytes=0-99"})
    assert reply.status_code == 200 and reply.data == b""
    assert reply.headers["X-Accel-Redirect"] == f"/_media/{video.stored_name}"
    assert reply.headers["Content-Type"] == "video/mp4" and reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Content-Disposition"] == "inline; filename=v.mp4"
    reply = fetch(client, f"/media/{pdf.stored_name}")
    assert reply.headers["X-Accel-Redirect"] == f"/_media/{pdf.stored_name}"
    disposition = reply.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and "filename*=UTF-8''%E8%AF%BE%E4%BB%B6%20%E7%AC%AC" in disposition
    client.post("/logout")
    # A member may not see a draft's media: no header that would let nginx send it.
    auth.login(make.user().username)
    denied = fetch(client, f"/media/{video.stored_name}")
    assert denied.status_code == 404 and "X-Accel-Redirect" not in denied.headers
    unknown = fetch(client, "/media/" + "0" * 32 + ".mp4")
    assert unknown.status_code == 404 and "X-Accel-Redirect" not in unknown.headers
    client.post("/logout")
    anonymous = fetch(client, f"/media/{video.stored_name}")
    assert anonymous.status_code == 302 and "X-Accel-Redirect" not in anonymous.headers


def test_accel_headers_match_what_the_app_sends_itself(app, client, auth, make, cm):
    lecturer = make.user(role="lecturer")
    lesson = cm.lesson(author=lecturer, state="draft")
    auth.login(lecturer.username)
    upload(client, lesson, PDF, name="课件.pdf")
    pdf = db.session.scalar(select(MediaFile))
    direct = fetch(client, f"/media/{pdf.stored_name}")
    assert direct.data == PDF and "X-Accel-Redirect" not in direct.headers
    app.config["X_ACCEL_PREFIX"] = "/_media"
    accel = fetch(client, f"/media/{pdf.stored_name}?download=1")
    assert accel.headers["X-Accel-Redirect"] == f"/_media/{pdf.stored_name}"
    for name in ("Content-Type", "Content-Disposition", "Cache-Control"):
        assert accel.headers[name] == direct.headers[name]


def test_with_csrf_on_the_limit_is_checked_before_the_csrf_check_reads_the_form(make_csrf_client):
    client, lesson, _token = make_csrf_client
    for url in (f"/lessons/{lesson.id}/comments", f"/teach/lessons/{lesson.id}/upload"):
        reply = _declared(client, url, TEN_GB if "upload" in url else 3 * 1024 * KB)
        assert reply.status_code == 413 and "上传内容超过大小限制" in reply.get_data(as_text=True)


def test_an_upload_whose_lesson_update_fails_leaves_no_file(app, client, auth, make, cm, monkeypatch):
    from pbschool.courses import services

    def refuse(lesson, item, actor):
        raise DomainError("课时已锁定", "locked", 409)

    monkeypatch.setattr(services, "media_added", refuse)
    lecturer = make.user(role="lecturer")
    lesson = cm.lesson(author=lecturer, state="draft")
    auth.login(lecturer.username)
    assert "课时已锁定" in upload(client, lesson, MP4, follow_redirects=True).get_data(as_text=True)
    assert _stored_files(app) == [] and db.session.scalars(select(MediaFile)).all() == []
