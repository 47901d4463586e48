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


# -- question banks: content sync owns what it syncs ------------------------------------------------

BANK_HEADER = "题型,题干,选项A,选项B,选项C,答案,解析\n"
BANK_ROWS = ("single,中心组全年集中学习不少于几次？,12,6,4,A,\n"
             "single,党费收缴的依据是？,工资收入,奖金,年龄,A,按月收入交纳\n")


def _bank_file(tree, text):
    (tree / "banks").mkdir(exist_ok=True)
    (tree / "banks" / "党建知识.csv").write_text(text, encoding="utf-8")


def _questions(active=True):
    from pbschool.exams.models import Question

    stmt = select(Question).order_by(Question.id)
    if active:
        stmt = stmt.where(Question.is_active.is_(True))
    return db.session.scalars(stmt).all()


def test_a_synced_question_is_not_edited_in_the_ui_so_sync_never_overwrites_or_duplicates(app, tree, make, client,
                                                                                           auth):
    """Issue 11: `pbschool content sync` silently overwrote an answer corrected in the UI and
    duplicated another."""
    _bank_file(tree, BANK_HEADER + BANK_ROWS)
    sync(tree)
    db.session.commit()
    first, second = _questions()
    make.user("boss", role="admin")
    auth.login("boss")
    assert "请修改内容文件" in client.get(f"/admin/questions/{first.id}").get_data(as_text=True)
    form = {"type": "single", "stem": first.stem, "option_A": "12", "option_B": "6", "option_C": "4",
            "answer": "B", "score": "1", "difficulty": "3", "is_active": "y"}
    corrected = client.post(f"/admin/questions/{first.id}", data=form).get_data(as_text=True)
    assert "请修改内容文件 banks/党建知识.csv" in corrected
    reworded = client.post(f"/admin/questions/{second.id}", data={
        **form, "stem": "党费按什么交纳？", "option_A": "工资收入", "option_B": "奖金", "option_C": "年龄",
        "answer": "A"})
    assert "请修改内容文件" in reworded.get_data(as_text=True)
    sync(tree)
    db.session.commit()
    db.session.expire_all()
    assert [(q.stem, q.answer) for q in _questions()] == [(first.stem, "A"), (second.stem, "A")]
    assert len(_questions(active=False)) == 2


def test_a_corrected_row_of_a_bank_file_is_a_new_version_of_the_same_question(app, tree):
    from pbschool.exams.models import QuestionVersion

    rows = BANK_ROWS.splitlines(True)
    _bank_file(tree, "编号," + BANK_HEADER + "q1," + rows[0] + "q2," + rows[1])
    sync(tree)
    db.session.commit()
    before = [q.id for q in _questions()]
    # A corrected stem (kept apart by its 编号) and a corrected key.
    _bank_file(tree, "编号," + BANK_HEADER + "q1,single,中心组全年集中学习不少于几次？,12,6,4,B,\n"
               "q2,single,党费按什么交纳？,工资收入,奖金,年龄,A,按月收入交纳\n")
    report = sync(tree)
    db.session.commit()
    assert "updated 2" in report.banks[0]
    questions = _questions()
    assert [q.id for q in questions] == before and len(_questions(active=False)) == 2
    assert [(q.version, q.answer) for q in questions] == [(2, "B"), (2, "A")]
    assert questions[1].stem == "党费按什么交纳？"
    assert db.session.scalar(select(db.func.count(QuestionVersion.id))) == 4
    again = sync(tree)
    db.session.commit()
    assert "unchanged 2" in again.banks[0]
    assert db.session.scalar(select(db.func.count(QuestionVersion.id))) == 4


def test_a_reworded_row_without_an_id_retires_the_old_question_rather_than_keeping_both(app, tree):
    _bank_file(tree, BANK_HEADER + BANK_ROWS)
    sync(tree)
    db.session.commit()
    _bank_file(tree, BANK_HEADER + BANK_ROWS.splitlines(True)[0] + "single,党费按什么交纳？,工资收入,奖金,年龄,A,\n")
    report = sync(tree)
    db.session.commit()
    assert "created 1" in report.banks[0] and "retired 1" in report.banks[0]
    assert [q.stem for q in _questions()] == ["中心组全年集中学习不少于几次？", "党费按什么交纳？"]
    _bank_file(tree, BANK_HEADER + BANK_ROWS)  # the old file put back: the old question comes back
    sync(tree)
    db.session.commit()
    assert [q.stem for q in _questions()] == ["中心组全年集中学习不少于几次？", "党费收缴的依据是？"]


def test_an_upload_may_not_overwrite_a_synced_question(app, tree, make):
    from pbschool.exams.importer import import_bank_file
    from pbschool.tabular import ImportRefused

    _bank_file(tree, BANK_HEADER + BANK_ROWS)
    sync(tree)
    db.session.commit()
    upload = (BANK_HEADER + "single,中心组全年集中学习不少于几次？,12,6,4,C,\nsingle,新的一题？,是,否,,A,\n").encode()
    with pytest.raises(ImportRefused) as refused:
        import_bank_file(upload, "mine.csv", "党建知识", actor=make.user(role="admin"))
    assert [e.row for e in refused.value.errors] == [2]
    assert "banks/党建知识.csv" in refused.value.errors[0].message
    db.session.rollback()
    assert [q.answer for q in _questions()] == ["A", "A"]


def test_the_bank_import_command_refuses_to_overwrite_a_synced_question_in_one_line(app, tree, runner, tmp_path):
    _bank_file(tree, BANK_HEADER + BANK_ROWS)
    sync(tree)
    db.session.commit()
    upload = tmp_path / "mine.csv"
    upload.write_text(BANK_HEADER + "single,中心组全年集中学习不少于几次？,12,6,4,C,\n", encoding="utf-8")
    result = runner.invoke(args=["bank", "import", str(upload), "--bank", "党建知识"])
    assert result.exit_code != 0 and "banks/党建知识.csv" in result.output
    db.session.expire_all()
    assert [q.answer for q in _questions()] == ["A", "A"]


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
