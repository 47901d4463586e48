import io
import textwrap

import pytest
from sqlalchemy import select

from pbschool.courses.models import Course, Lesson, MediaFile
from pbschool.courses.sync import SyncRefused, sync
from pbschool.extensions import db

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 500


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "content"
    write(root / "dangjian" / "course.md", """
        ---
        title: 强根铸魂抓党建
        summary: 六讲党建入门
        programme: 政工微课堂
        required_for: [all]
        ---
        ## 课程简介

        本课程分六讲。
        """)
    write(root / "dangjian" / "01-lilun.md", """
        ---
        title: 第一讲 理论学习
        minutes: 20
        video: intro.mp4
        ---
        ## 导读

        理论学习是必修课。
        """)
    (root / "dangjian" / "intro.mp4").write_bytes(MP4)
    write(root / "dangjian" / "02-zeren.md", """
        ---
        title: 第二讲 主体责任
        minutes: 35
        draft: true
        ---
        草稿内容
        """)
    write(root / "anquan" / "course.md", """
        ---
        title: 岗位安全确认
        required_for: [采煤机司机, 电工]
        ---
        框架稿
        """)
    return root


def test_sync_imports_courses_and_lessons(app, tree):
    report = sync(tree)
    db.session.commit()
    assert sorted(report.added) == ["anquan", "dangjian", "dangjian/01-lilun.md", "dangjian/02-zeren.md"]
    course = db.session.scalar(select(Course).where(Course.slug == "dangjian"))
    assert course.is_published and course.programme.name == "政工微课堂" and "<h2>课程简介</h2>" in course.body_html
    assert [r.target_key for r in course.requirements] == ["all"]
    first, second = course.lessons
    assert (first.title, first.minutes, first.state) == ("第一讲 理论学习", 20, "published")
    assert second.state == "draft"  # draft: true keeps it unpublished
    assert [m.kind for m in first.media] == ["video"]
    assert (first.media[0].original_name, first.media[0].size) == ("intro.mp4", len(MP4))
    safety = db.session.scalar(select(Course).where(Course.slug == "anquan"))
    assert sorted(r.target_key for r in safety.requirements) == ["post:电工", "post:采煤机司机"]


def test_sync_is_idempotent_and_reports_changes(app, tree):
    sync(tree)
    db.session.commit()
    again = sync(tree)
    db.session.commit()
    assert again.added == [] and again.changed == []
    assert len(again.unchanged) == 4
    assert db.session.scalar(select(db.func.count(Lesson.id))) == 2
    assert db.session.scalar(select(db.func.count(MediaFile.id))) == 1
    lesson_file = tree / "dangjian" / "01-lilun.md"
    lesson_file.write_text(lesson_file.read_text(encoding="utf-8").replace("必修课", "必修课，天天学"),
                           encoding="utf-8")
    changed = sync(tree)
    db.session.commit()
    assert changed.changed == ["dangjian/01-lilun.md"]
    assert "天天学" in db.session.scalar(select(Lesson).where(Lesson.slug == "01-lilun")).body_html
    assert db.session.scalar(select(db.func.count(MediaFile.id))) == 1


@pytest.mark.parametrize("name, text, reason", [
    ("03-bad.md", "no front matter here", "缺少 YAML 头"),
    ("03-bad.md", "---\ntitle: [unclosed\n---\nx", "YAML 头格式错误"),
    ("03-bad.md", "---\ntitle: 无时长\n---\nx", "minutes"),
    ("03-bad.md", "---\ntitle: 时长错\nminutes: 半小时\n---\nx", "minutes"),
    ("03-bad.md", "---\nminutes: 5\n---\nx", "缺少 title"),
    ("03-bad.md", "---\ntitle: 视频缺失\nminutes: 5\nvideo: missing.mp4\n---\nx", "不存在"),
    ("03-bad.md", "---\ntitle: 越界\nminutes: 5\nattachments: [../../secret.pdf]\n---\nx", "不在课程目录内"),
    ("03-bad.md", "---\ntitle: 草稿\nminutes: 5\ndraft: maybe\n---\nx", "draft"),
])
def test_a_bad_file_is_named_and_nothing_is_imported(app, tree, name, text, reason):
    (tree / "dangjian" / name).write_text(text, encoding="utf-8")
    with pytest.raises(SyncRefused) as refused:
        sync(tree)
    db.session.rollback()
    [(path, message)] = refused.value.errors
    assert path.name == name and reason in message
    assert db.session.scalars(select(Course)).all() == []


def test_a_mislabelled_video_is_refused(app, tree):
    (tree / "dangjian" / "intro.mp4").write_bytes(b"<html>not a video</html>" + b" " * 40)
    with pytest.raises(SyncRefused) as refused:
        sync(tree)
    assert "文件内容与扩展名" in refused.value.errors[0][1]


def test_cli_reports_and_exits_non_zero_on_a_bad_file(app, runner, tree):
    result = runner.invoke(args=["content", "sync", str(tree)])
    assert result.exit_code == 0, result.output
    assert "4 added, 0 changed, 0 unchanged" in result.output
    result = runner.invoke(args=["content", "sync", str(tree)])
    assert "0 added, 0 changed, 4 unchanged" in result.output
    (tree / "anquan" / "01-x.md").write_text("---\ntitle: x\n---\n", encoding="utf-8")
    result = runner.invoke(args=["content", "sync", str(tree)])
    assert result.exit_code != 0
    assert "01-x.md" in result.output and "minutes" in result.output and "nothing was imported" in result.output
    missing = runner.invoke(args=["content", "sync", str(tree / "nope")])
    assert missing.exit_code != 0


def test_banks_are_imported_through_the_exams_importer(app, tree):
    pytest.importorskip("pbschool.exams.importer")
    from pbschool.exams.models import Question

    (tree / "banks").mkdir()
    (tree / "banks" / "党建知识.csv").write_text(
        "题型,题干,选项A,选项B,答案\nsingle,中心组全年集中学习多少次？,46,33,A\ntruefalse,党员每年学时不少于32学时,,,对\n",
        encoding="utf-8")
    report = sync(tree)
    db.session.commit()
    assert report.banks and "党建知识.csv" in report.banks[0]
    assert db.session.scalar(select(db.func.count(Question.id))) == 2
    (tree / "banks" / "坏题库.csv").write_text("题型,题干,答案\nweird,？,A\n", encoding="utf-8")
    with pytest.raises(SyncRefused) as refused:
        sync(tree)
    assert refused.value.errors[0][0].name == "坏题库.csv"


def test_the_real_content_folder_syncs(app):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "content"
    if not root.is_dir():
        pytest.skip("no content/ folder")
    report = sync(root)
    db.session.commit()
    assert report.added and not report.changed
    assert sync(root).added == []


def test_the_demo_loader_syncs_content_when_it_exists(app, tree, tmp_path):
    from pbschool import registry
    from pbschool.courses.cli import demo_loader

    assert demo_loader in registry.demo_loaders
    lines = list(demo_loader(tree))
    assert lines[-1].startswith("content: 4 added")
    assert db.session.scalar(select(db.func.count(Course.id))) == 2
    assert "not found" in list(demo_loader(tmp_path / "nowhere"))[0]


def test_a_removed_lesson_file_withdraws_its_lesson(app, tree):
    sync(tree)
    db.session.commit()
    (tree / "dangjian" / "01-lilun.md").unlink()
    for path in (tree / "anquan").iterdir():
        path.unlink()
    (tree / "anquan").rmdir()
    report = sync(tree)
    db.session.commit()
    assert report.removed == ["dangjian/01-lilun.md"]
    assert "1 withdrawn" in list(report.lines())[-1]
    assert db.session.scalar(select(Lesson).where(Lesson.slug == "01-lilun")).state == "draft"
    # A course folder that is gone is left alone (another directory may have been synced on purpose).
    assert db.session.scalar(select(Course).where(Course.slug == "anquan")).is_published
    assert sync(tree).removed == []


def test_a_lesson_file_put_back_is_published_again_and_reported(app, runner, tree):
    """Reproduction: a withdrawn lesson file put back stayed unpublished."""
    lesson_file = tree / "dangjian" / "01-lilun.md"
    text = lesson_file.read_text(encoding="utf-8")
    sync(tree)
    db.session.commit()
    lesson_file.unlink()
    assert sync(tree).removed == ["dangjian/01-lilun.md"]
    db.session.commit()
    lesson_file.write_text(text, encoding="utf-8")
    result = runner.invoke(args=["content", "sync", str(tree)])
    assert result.exit_code == 0, result.output
    assert "published again: dangjian/01-lilun.md" in result.output and "1 published again" in result.output
    db.session.expire_all()
    assert db.session.scalar(select(Lesson).where(Lesson.slug == "01-lilun")).state == "published"
    assert "published again" not in runner.invoke(args=["content", "sync", str(tree)]).output


def test_a_lesson_an_admin_withdrew_stays_withdrawn_until_its_file_changes(app, make, tree):
    from pbschool.courses import services

    sync(tree)
    db.session.commit()
    lesson = db.session.scalar(select(Lesson).where(Lesson.slug == "01-lilun"))
    services.withdraw_lesson(lesson, make.user(role="admin"), "内容待更新")
    db.session.commit()
    report = sync(tree)
    db.session.commit()
    assert report.kept_withdrawn == ["dangjian/01-lilun.md"] and lesson.state == "returned"
    assert any("kept withdrawn" in line for line in report.lines())
    lesson_file = tree / "dangjian" / "01-lilun.md"
    lesson_file.write_text(lesson_file.read_text(encoding="utf-8").replace("必修课", "必修课（更新）"),
                           encoding="utf-8")
    report = sync(tree)
    db.session.commit()
    assert report.changed == ["dangjian/01-lilun.md"] and lesson.state == "published"
    assert "更新" in lesson.body_html


def test_the_app_refuses_to_edit_what_content_sync_owns(app, client, auth, make, tree):
    """A UI edit of a synced lesson or course would be overwritten (or duplicated) by the next sync:
    the app refuses it, naming the file to change instead."""
    from pbschool.courses import services
    from pbschool.errors import DomainError

    sync(tree)
    db.session.commit()
    lesson = db.session.scalar(select(Lesson).where(Lesson.slug == "01-lilun"))
    course = lesson.course
    admin = make.user(role="admin")
    with pytest.raises(DomainError) as refused:
        services.update_lesson(lesson, title="界面里改", minutes=20, body="x", actor=admin)
    assert refused.value.code == "synced" and "请修改内容文件 content/dangjian/01-lilun.md" in refused.value.message
    with pytest.raises(DomainError) as refused:
        services.update_course(course, title="界面里改", summary="", programme="", body="", actor=admin)
    assert refused.value.code == "synced" and "content/dangjian/course.md" in refused.value.message
    db.session.rollback()
    auth.login(admin.username)
    editor = client.get(f"/teach/lessons/{lesson.id}/edit").get_data(as_text=True)
    assert "请修改内容文件 content/dangjian/01-lilun.md" in editor
    page = client.post(f"/teach/lessons/{lesson.id}/edit", data={"course": course.id, "title": "界面里改",
                                                                  "minutes": 20, "body": "x"})
    assert page.status_code == 200 and "请修改内容文件" in page.get_data(as_text=True)
    page = client.post(f"/teach/courses/{course.id}/edit", data={"title": "界面里改", "summary": "",
                                                                  "programme": "", "body": ""})
    assert page.status_code == 200 and "请修改内容文件" in page.get_data(as_text=True)
    upload = client.post(f"/teach/lessons/{lesson.id}/upload", data={"file": (io.BytesIO(MP4), "x.mp4")},
                         content_type="multipart/form-data", follow_redirects=True)
    assert "请修改内容文件" in upload.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Lesson, lesson.id).title == "第一讲 理论学习"
    assert db.session.scalar(select(db.func.count(MediaFile.id))) == 1
    required = client.post(f"/admin/courses/{course.id}/required", data={"job_posts": "电工"})
    assert "required_for" in required.get_data(as_text=True) and "请修改内容文件" in required.get_data(as_text=True)
    db.session.expire_all()
    assert [r.target_key for r in db.session.get(Course, course.id).requirements] == ["all"]
    again = sync(tree)
    assert again.changed == [] and again.added == []  # nothing to overwrite, nothing duplicated
