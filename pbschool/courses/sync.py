"""``pbschool content sync``: courses, lessons and question banks from files (CONTRACT.md).

Every file is read and checked before anything is written; one bad file refuses the whole sync and
is named with its reason. Running it again on the same files changes nothing.
"""

import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml
from sqlalchemy import select

from pbschool.accounts.models import Branch
from pbschool.courses import media, services
from pbschool.courses.models import Course, Lesson, LessonReview
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.markup import MAX_LINES

MAX_FILE_BYTES = 1024 * 1024
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.S)
EVERYONE = {"all", "全体", "全体党员", "*"}


class SyncRefused(Exception):
    """One or more files are bad; nothing was imported."""

    def __init__(self, errors):
        super().__init__("; ".join(f"{path}: {reason}" for path, reason in errors))
        self.errors = errors


@dataclass
class LessonFile:
    path: Path
    slug: str
    position: int
    meta: dict
    body: str
    digest: str
    media_paths: list = field(default_factory=list)


@dataclass
class CourseFile:
    path: Path
    slug: str
    position: int
    meta: dict
    body: str
    digest: str
    lessons: list = field(default_factory=list)


@dataclass
class Report:
    added: list = field(default_factory=list)
    changed: list = field(default_factory=list)
    unchanged: list = field(default_factory=list)
    #: Lessons whose file left their course folder: withdrawn to draft, members' records kept. (A course
    #: folder that is gone is left alone: another directory may have been synced on purpose.)
    removed: list = field(default_factory=list)
    #: Lessons withdrawn by an earlier sync (their file was gone) whose unchanged file is back: published again.
    restored: list = field(default_factory=list)
    #: Lessons an admin withdrew in the app whose file has not changed since: left withdrawn.
    kept_withdrawn: list = field(default_factory=list)
    banks: list = field(default_factory=list)

    def lines(self):
        for kind, names in (("added", self.added), ("changed", self.changed), ("withdrawn", self.removed),
                            ("published again", self.restored),
                            ("kept withdrawn (withdrawn in the app; change the file to publish it again)",
                             self.kept_withdrawn)):
            for name in names:
                yield f"  {kind}: {name}"
        for line in self.banks:
            yield f"  bank: {line}"
        withdrawn = f", {len(self.removed)} withdrawn" if self.removed else ""
        restored = f", {len(self.restored)} published again" if self.restored else ""
        yield (f"content: {len(self.added)} added, {len(self.changed)} changed, "
               f"{len(self.unchanged)} unchanged{withdrawn}{restored}, {len(self.banks)} bank file(s)")


def _read(path):
    data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise ValueError("文件超过 1 MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError("不是 UTF-8 编码") from exc
    match = FRONT_MATTER.match(text)
    if not match:
        raise ValueError("缺少 YAML 头（文件应以 --- 开始，再以 --- 结束头部）")
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"YAML 头格式错误：{str(exc).splitlines()[0]}") from exc
    if not isinstance(meta, dict):
        raise ValueError("YAML 头应为键值对")
    return meta, match.group(2), hashlib.sha256(data).hexdigest()


def _text(meta, key, required=False, limit=200):
    value = meta.get(key)
    if value is None:
        if required:
            raise ValueError(f"缺少 {key}")
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"{key} 应为文字")
    value = str(value).strip()
    if required and not value:
        raise ValueError(f"{key} 不能为空")
    if len(value) > limit:
        raise ValueError(f"{key} 超过 {limit} 个字")
    return value


def _draft(meta):
    value = meta.get("draft", False)
    if not isinstance(value, bool):
        raise ValueError("draft 应为 true 或 false")
    return value


def _position(name):
    match = re.match(r"^(\d+)", name)
    return int(match.group(1)) if match else 0


def _media_list(meta, key, base):
    value = meta.get(key)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    paths = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{key} 应为文件名或文件名列表")
        path = (base / item.strip()).resolve()
        if base.resolve() not in path.parents:
            raise ValueError(f"{key} 中的 {item} 不在课程目录内")
        if not path.is_file():
            raise ValueError(f"{key} 中的文件 {item} 不存在")
        with open(path, "rb") as handle:
            head = handle.read(64)
        try:
            media.sniff(head, path.name)
        except DomainError as exc:
            raise ValueError(f"{item}：{exc.message}") from exc
        paths.append(path)
    return paths


def _parse_course(folder):
    meta, body, digest = _read(folder / "course.md")
    _text(meta, "title", required=True)
    _text(meta, "summary", limit=2000)
    _text(meta, "programme", limit=100)
    _draft(meta)
    hours = meta.get("hours")
    if hours is not None:
        try:
            if isinstance(hours, bool):
                raise InvalidOperation
            meta["hours"] = Decimal(str(hours))
        except InvalidOperation as exc:
            raise ValueError("hours 应为数字") from exc
        if not Decimal("0") <= meta["hours"] <= Decimal("1000"):
            raise ValueError("hours 应在 0 到 1000 之间")
    required = meta.get("required_for")
    if required is not None:
        items = required if isinstance(required, list) else [required]
        if not all(isinstance(x, str | int) and not isinstance(x, bool) and str(x).strip() for x in items):
            raise ValueError("required_for 应为支部代码、岗位名称或 all 的列表")
        meta["required_for"] = [str(x).strip() for x in items]
    return CourseFile(folder / "course.md", folder.name, _position(folder.name), meta, body, digest)


def _parse_lesson(path):
    meta, body, digest = _read(path)
    _text(meta, "title", required=True)
    minutes = meta.get("minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 1440:
        raise ValueError("minutes 应为 1 到 1440 之间的整数")
    _draft(meta)
    if len(body) > services.MAX_LESSON_CHARS:
        raise ValueError(f"正文超过 {services.MAX_LESSON_CHARS} 个字符")
    if body.count("\n") >= MAX_LINES:
        raise ValueError(f"正文超过 {MAX_LINES} 行")
    paths = _media_list(meta, "video", path.parent) + _media_list(meta, "attachments", path.parent)
    for extra in paths:
        digest = hashlib.sha256((digest + hashlib.sha256(extra.read_bytes()).hexdigest()).encode()).hexdigest()
    return LessonFile(path, path.stem, _position(path.name), meta, body, digest, paths)


def read_tree(root):
    """Parse and check every course folder under ``root``; raises SyncRefused naming each bad file."""
    courses, errors = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name.startswith(".") or folder.name == "banks":
            continue
        if not (folder / "course.md").is_file():
            errors.append((folder, "缺少 course.md"))
            continue
        if not SLUG.match(folder.name):
            errors.append((folder, "目录名只能用字母、数字、点、下划线和连字符"))
            continue
        try:
            course = _parse_course(folder)
        except (ValueError, OSError) as exc:
            errors.append((folder / "course.md", str(exc)))
            continue
        for path in sorted(folder.glob("*.md")):
            if path.name == "course.md":
                continue
            if not SLUG.match(path.stem):
                errors.append((path, "文件名只能用字母、数字、点、下划线和连字符"))
                continue
            try:
                course.lessons.append(_parse_lesson(path))
            except (ValueError, OSError) as exc:
                errors.append((path, str(exc)))
        courses.append(course)
    if errors:
        raise SyncRefused(errors)
    return courses


def _apply_requirements(course, targets):
    for_all = any(t.lower() in EVERYONE for t in targets)
    branch_ids, posts = [], []
    for target in targets:
        if target.lower() in EVERYONE:
            continue
        branch = db.session.scalar(select(Branch).where(Branch.code == target))
        if branch is not None:
            branch_ids.append(branch.id)
        else:
            posts.append(target)
    current = sorted(r.target_key for r in course.requirements)
    wanted = sorted((["all"] if for_all else []) + [f"branch:{i}" for i in set(branch_ids)]
                    + [f"post:{p[:100]}" for p in set(posts)])
    if current != wanted:
        services.set_requirements(course, for_all=for_all, branch_ids=branch_ids, job_posts=posts)
        return True
    return False


def _wanted_state(lf):
    return "draft" if _draft(lf.meta) else "published"


def _state_set_by_sync(lesson):
    """Did content sync itself (no actor) take the last review step, e.g. withdraw it when its file went?"""
    last = db.session.scalar(select(LessonReview).where(LessonReview.lesson_id == lesson.id)
                             .order_by(LessonReview.id.desc()).limit(1))
    return last is None or last.actor_id is None


def _sync_course(cf, report):
    meta = cf.meta
    course = db.session.scalar(select(Course).where(Course.slug == cf.slug))
    name = cf.slug
    if course is None:
        course = Course(slug=cf.slug, title=meta["title"].strip())
        db.session.add(course)
        report.added.append(name)
    elif course.source_hash != cf.digest:
        report.changed.append(name)
    else:
        report.unchanged.append(name)
    course.title = _text(meta, "title", required=True)
    course.summary = _text(meta, "summary", limit=2000)
    course.programme = services.find_programme(_text(meta, "programme", limit=100))
    course.declared_hours = meta.get("hours")
    course.is_published = not _draft(meta)
    course.position = cf.position
    if course.source_hash != cf.digest:
        course.revision = (course.revision or 0) + 1
    course.source_hash = cf.digest
    services.set_course_body(course, cf.body.strip())
    db.session.flush()
    course.requirements_from_file = "required_for" in meta
    if "required_for" in meta and _apply_requirements(course, meta["required_for"]) \
            and name in report.unchanged:
        report.unchanged.remove(name)
        report.changed.append(name)
    for lf in cf.lessons:
        _sync_lesson(course, lf, report)
    slugs = {lf.slug for lf in cf.lessons}
    for lesson in course.lessons:
        if lesson.slug and lesson.slug not in slugs and lesson.state == "published":
            services._transition(lesson, "draft", None, "content sync: file removed")
            report.removed.append(f"{course.slug}/{lesson.slug}.md")


def _sync_lesson(course, lf, report):
    name = f"{course.slug}/{lf.path.name}"
    lesson = db.session.scalar(select(Lesson).where(Lesson.course_id == course.id, Lesson.slug == lf.slug))
    if lesson is None:
        lesson = Lesson(course=course, slug=lf.slug, title=lf.meta["title"], state="draft")
        db.session.add(lesson)
        db.session.flush()
        report.added.append(name)
    elif lesson.source_hash == lf.digest:
        if lesson.state == _wanted_state(lf) or not _state_set_by_sync(lesson):
            report.unchanged.append(name)
            if lesson.state == "returned" and _wanted_state(lf) == "published":
                report.kept_withdrawn.append(name)
            return
        report.restored.append(name)
    else:
        report.changed.append(name)
        lesson.revision = (lesson.revision or 0) + 1
    lesson.title = _text(lf.meta, "title", required=True)
    lesson.minutes = lf.meta["minutes"]
    lesson.position = lf.position
    lesson.source_hash = lf.digest
    services.set_lesson_body(lesson, lf.body.strip())
    wanted_state = _wanted_state(lf)
    if lesson.state != wanted_state:
        services._transition(lesson, wanted_state, None, "content sync")
    keep = set()
    for path in lf.media_paths:
        item, _created = media.import_path(path, lesson)
        keep.add(item.id)
    for item in list(lesson.media):
        if item.id not in keep and item.uploader_id is None:
            media.delete(item)  # a file dropped from the front matter
    db.session.flush()


def _sync_banks(root, report):
    bank_files = sorted((root / "banks").glob("*.csv")) if (root / "banks").is_dir() else []
    if not bank_files:
        return
    try:
        from pbschool.exams.importer import import_bank_file
    except ImportError:
        report.banks.extend(f"{p.name}: skipped (the exams feature is not installed)" for p in bank_files)
        return
    errors = []
    for path in bank_files:
        try:
            with db.session.begin_nested():
                result = import_bank_file(path.read_bytes(), path.name, path.stem, actor=None,
                                          source=f"content:banks/{path.name}")
        except DomainError as exc:  # ImportRefused names every bad row
            errors.append((path, exc.message))
            continue
        report.banks.append(f"{path.name}: {_describe_result(result)}")
    if errors:
        raise SyncRefused(errors)


def _describe_result(result):
    if result is None:
        return "imported"
    if isinstance(result, dict):
        return ", ".join(f"{k} {v}" for k, v in result.items())
    parts = [f"{k} {getattr(result, k)}" for k in ("created", "updated", "unchanged", "retired")
             if hasattr(result, k) and (k != "retired" or result.retired)]
    return ", ".join(parts) or str(result)


def sync(root):
    """Import or update everything under ``root``. Flushes; the caller commits (or rolls back on error)."""
    root = Path(root)
    if not root.is_dir():
        raise SyncRefused([(root, "目录不存在")])
    courses = read_tree(root)
    report = Report()
    for cf in courses:
        _sync_course(cf, report)

    _sync_banks(root, report)
    db.session.flush()
    return report

