"""What changes courses, lessons, progress and comments. Functions flush, never commit."""

import datetime as dt
import math
from collections import namedtuple
from decimal import Decimal

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from pbschool import auth, clock, markup
from pbschool.accounts.models import Branch, User
from pbschool.accounts.services import audit
from pbschool.courses.models import (
    Comment,
    Course,
    CourseDraft,
    CourseRequirement,
    LearningClock,
    Lesson,
    LessonDraft,
    LessonProgress,
    LessonReview,
    Programme,
)
from pbschool.errors import DomainError, NotFound
from pbschool.extensions import db
from pbschool.markup import render_markdown
from pbschool.notices import services as notices

#: (minimum minutes, hours): the first row a lesson reaches gives its hours (DOMAIN.md).
DEFAULT_HOURS_RULE = ((30, "1"), (15, "0.5"), (0, "0.25"))
DEFAULT_TARGETS = {"member": 32, "secretary": 56, "lecturer": 32, "admin": 32}
#: China has one time zone; the learning year runs from 1 January in Beijing time.
LOCAL_OFFSET = dt.timedelta(hours=8)
MAX_COMMENT_CHARS = 2000
MAX_LESSON_CHARS = 100_000


def _setting(name, default):
    return current_app.config.get(name, default)


# -- rules -----------------------------------------------------------------------------------

def lesson_hours(minutes):
    """Credited learning hours for a lesson of ``minutes`` (LESSON_HOURS_RULE, default DOMAIN.md)."""
    rule = _setting("LESSON_HOURS_RULE", DEFAULT_HOURS_RULE)
    for threshold, hours in sorted(rule, key=lambda row: -row[0]):
        if minutes >= threshold:
            return Decimal(str(hours))
    return Decimal("0")


def course_hours(course):
    if course.declared_hours is not None:
        return Decimal(course.declared_hours)
    return sum((lesson_hours(lesson.minutes) for lesson in course.published_lessons()), Decimal("0"))


def target_hours(user):
    targets = {**DEFAULT_TARGETS, **_setting("LEARNING_TARGET_HOURS", {})}
    return Decimal(str(targets.get(user.role, targets["member"])))


def required_seconds(lesson):
    """Study time needed before a lesson may be marked done; 0 when the rule is off."""
    fraction = float(_setting("COMPLETION_MIN_FRACTION", 0.5))
    return max(0, math.ceil(lesson.minutes * 60 * fraction))


def local_year(moment=None):
    return ((moment or clock.now()) + LOCAL_OFFSET).year


def year_bounds(year):
    """The UTC instants at which the Beijing calendar year starts and ends."""
    return dt.datetime(year, 1, 1) - LOCAL_OFFSET, dt.datetime(year + 1, 1, 1) - LOCAL_OFFSET


# -- who sees what ---------------------------------------------------------------------------

def is_visible(lesson):
    return lesson.state == "published" and lesson.course.is_published


def can_edit_lesson(user, lesson):
    return auth.is_admin(user) or (auth.can_author(user) and lesson.author_id == user.id)


def can_read_lesson(user, lesson):
    """Members read published lessons; an author and the admins also see drafts."""
    return is_visible(lesson) or can_edit_lesson(user, lesson)


def can_read_course(user, course):
    return course.is_published or auth.is_admin(user) or (auth.can_author(user) and course.author_id == user.id)


def published_courses():
    return db.session.scalars(
        select(Course).outerjoin(Programme).where(Course.is_published.is_(True))
        .order_by(Programme.position.nulls_last(), Programme.name, Course.position, Course.id)).all()


def _required_for(user):
    """The requirement rows that apply to ``user``: for all, their branch, or their job post."""
    conditions = [CourseRequirement.kind == "all"]
    if user.branch_id is not None:
        conditions.append(and_(CourseRequirement.kind == "branch", CourseRequirement.branch_id == user.branch_id))
    if user.job_post:
        conditions.append(and_(CourseRequirement.kind == "job_post", CourseRequirement.job_post == user.job_post))
    return or_(*conditions)


def required_course_ids(user):
    """Ids of the published courses required for this user by branch, job post or for all."""
    return set(db.session.scalars(
        select(CourseRequirement.course_id).join(Course).where(Course.is_published.is_(True), _required_for(user))))


def completed_lesson_ids(user, lesson_ids=None):
    stmt = select(LessonProgress.lesson_id).where(LessonProgress.user_id == user.id,
                                                  LessonProgress.completed_at.is_not(None))
    if lesson_ids is not None:
        stmt = stmt.where(LessonProgress.lesson_id.in_(list(lesson_ids) or [0]))
    return set(db.session.scalars(stmt))


def course_progress(user, courses):
    """{course id: (lessons done, published lessons)} for the user."""
    done = completed_lesson_ids(user)
    result = {}
    for course in courses:
        ids = [lesson.id for lesson in course.published_lessons()]
        result[course.id] = (len([i for i in ids if i in done]), len(ids))
    return result


CourseLine = namedtuple("CourseLine", "id title")


def unfinished_required(user):
    """[(course, (lessons done, published lessons))] for the required courses the user has not
    finished, by title: one query, since every member's home page shows it."""
    required = select(CourseRequirement.course_id).where(_required_for(user))
    stmt = (select(Course.id, Course.title, func.count(Lesson.id), func.count(LessonProgress.id))
            .outerjoin(Lesson, (Lesson.course_id == Course.id) & (Lesson.state == "published"))
            .outerjoin(LessonProgress, (LessonProgress.lesson_id == Lesson.id) & (LessonProgress.user_id == user.id)
                       & LessonProgress.completed_at.is_not(None))
            .where(Course.is_published.is_(True), Course.id.in_(required))
            .group_by(Course.id, Course.title).order_by(Course.title))
    return [(CourseLine(course_id, title), (done, total)) for course_id, title, total, done in db.session.execute(stmt)
            if total == 0 or done < total]


def learning_summary(user, year=None):
    """This (Beijing) year's credited hours against the user's target."""
    year = year or local_year()
    start, end = year_bounds(year)
    hours, count = db.session.execute(
        select(func.coalesce(func.sum(LessonProgress.hours_credited), 0), func.count(LessonProgress.id))
        .where(LessonProgress.user_id == user.id, LessonProgress.completed_at >= start,
               LessonProgress.completed_at < end)).one()
    return {"year": year, "hours": Decimal(hours).quantize(Decimal("0.01")), "target_hours": target_hours(user),
            "lessons_completed": count}


def completed_this_year(user, year=None):
    """The user's completed lessons in the (Beijing) year, newest first."""
    start, end = year_bounds(year or local_year())
    return db.session.scalars(
        select(LessonProgress).where(LessonProgress.user_id == user.id, LessonProgress.completed_at >= start,
                                     LessonProgress.completed_at < end)
        .order_by(LessonProgress.completed_at.desc())).all()


# -- progress --------------------------------------------------------------------------------

def _find_progress(user, lesson, lock=False):
    stmt = select(LessonProgress).where(LessonProgress.user_id == user.id, LessonProgress.lesson_id == lesson.id)
    if lock:
        stmt = stmt.with_for_update()
    return db.session.scalar(stmt)


def open_lesson(user, lesson):
    """Start (or restart) the member's clock for a published lesson. Returns the progress row."""
    if not is_visible(lesson):
        raise NotFound(_("课程不存在或尚未发布"))
    now = clock.now()
    progress = _find_progress(user, lesson, lock=True)
    if progress is None:
        try:
            with db.session.begin_nested():
                progress = LessonProgress(user_id=user.id, lesson_id=lesson.id, opened_at=now,
                                          last_heartbeat_at=now, credited_seconds=0)
                db.session.add(progress)
        except IntegrityError:  # opened at the same moment in another tab
            progress = _find_progress(user, lesson, lock=True)
    else:
        progress.last_heartbeat_at = now
    db.session.flush()
    return progress


def _lock_clock(user):
    """The member's learning clock, locked until this transaction ends (made on first use)."""
    if db.session.get_bind().dialect.name == "sqlite":
        # SQLite has no row locks: take the database's write lock now, as the ledger does.
        db.session.execute(update(LearningClock).where(LearningClock.user_id == user.id)
                           .values(credited_until=LearningClock.credited_until))
    stmt = select(LearningClock).where(LearningClock.user_id == user.id).with_for_update() \
        .execution_options(populate_existing=True)
    row = db.session.scalar(stmt)
    if row is None:
        try:
            with db.session.begin_nested():
                db.session.add(LearningClock(user_id=user.id, credited_until=dt.datetime.min))
        except IntegrityError:  # another tab made it first
            pass
        row = db.session.scalar(stmt)
    return row


def heartbeat(user, lesson, seconds):
    """Credit up to ``seconds`` of study, never more than the wall-clock time since the last heartbeat.

    The member has one clock over all lessons: a heartbeat credits only time after ``credited_until``
    (what any lesson was last credited up to), so eight lessons open at once share the wall-clock time
    instead of each taking it. The clock row is locked first, so parallel heartbeats take turns."""
    if not is_visible(lesson):
        raise NotFound(_("课程不存在或尚未发布"))
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0 or seconds > 86400:
        raise DomainError(_("seconds 应为 0 到 86400 之间的整数"), "invalid_field", 400, field="seconds")
    member_clock = _lock_clock(user)
    progress = _find_progress(user, lesson, lock=True)
    if progress is None:
        # Never opened: this heartbeat opens it, and no time has passed yet.
        return open_lesson(user, lesson)
    now = clock.now()
    start = max(progress.last_heartbeat_at, member_clock.credited_until)
    since_last = max(0, int((now - start).total_seconds()))
    since_open = max(0, int((now - progress.opened_at).total_seconds()))
    cap = int(_setting("HEARTBEAT_MAX_SECONDS", 300))
    credit = max(0, min(seconds, since_last, cap, since_open - progress.credited_seconds))
    progress.credited_seconds += credit
    progress.last_heartbeat_at = now
    if credit:
        # the credited stretch is [start, start + credit]: the rest of the window stays free for
        # whichever lesson the member was really studying
        member_clock.credited_until = start + dt.timedelta(seconds=credit)
    db.session.flush()
    return progress


def _remaining_text(seconds):
    minutes = math.ceil(seconds / 60)
    if minutes <= 1:
        return _("还需学习约 1 分钟")
    return _("还需学习约 %(n)d 分钟", n=minutes)


def completion_block(progress, lesson):
    """None if the lesson may be marked done now, else the Chinese reason why not."""
    needed = required_seconds(lesson)
    have = progress.credited_seconds if progress else 0
    if have >= needed:
        return None
    return _("学习时间不足，请认真学习后再标记完成（%(rest)s）。", rest=_remaining_text(needed - have))


def complete_lesson(user, lesson):
    """Mark the lesson done: credits its hours and points once, however often it is called."""
    if not is_visible(lesson):
        raise NotFound(_("课程不存在或尚未发布"))
    progress = _find_progress(user, lesson, lock=True)
    if progress is None:
        progress = open_lesson(user, lesson)
    if progress.completed_at is not None:
        return progress
    reason = completion_block(progress, lesson)
    if reason:
        raise DomainError(reason, "too_soon", 409)
    hours = lesson_hours(lesson.minutes)
    # The conditional UPDATE lets exactly one of several parallel requests win.
    won = db.session.execute(
        update(LessonProgress).where(LessonProgress.id == progress.id, LessonProgress.completed_at.is_(None))
        .values(completed_at=clock.now(), hours_credited=hours)
        .execution_options(synchronize_session=False)).rowcount
    db.session.refresh(progress)
    if won == 1:
        record_points(user, "lesson_completed", f"lesson:{lesson.id}:user:{user.id}", value=hours)
        from pbschool.certificates.services import issue_for_hours

        issue_for_hours(user)  # the year's 学时证明 once the hours reach the target
    db.session.flush()
    return progress


def record_points(user, kind, source_key, **kwargs):
    """Hand an event to the points ledger (idempotent there per source_key)."""
    try:
        from pbschool.points.services import record_event
    except ImportError:  # the ledger is not installed: the progress/comment rows keep the record
        return None
    return record_event(user, kind, source_key, **kwargs)


# -- authoring -------------------------------------------------------------------------------

def _clean_title(title, field="title"):
    title = (title or "").strip()
    if not title:
        raise DomainError(_("请填写标题"), "missing_field", field=field)
    if len(title) > 200:
        raise DomainError(_("标题不能超过 200 个字"), "invalid_field", field=field)
    return title


def _check_minutes(minutes):
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 1440:
        raise DomainError(_("时长应为 1 到 1440 分钟之间的整数"), "invalid_field", field="minutes")
    return minutes


def _check_body(source):
    if len(source) > MAX_LESSON_CHARS:
        raise DomainError(_("正文不能超过 %(n)d 个字符", n=MAX_LESSON_CHARS), "too_long", field="body")
    if source.count("\n") >= markup.MAX_LINES:
        raise DomainError(_("正文不能超过 %(n)d 行", n=markup.MAX_LINES), "too_long", field="body")
    return source


def set_lesson_body(lesson, source):
    """Store the Markdown and re-render the cached HTML when it changed."""
    source = _check_body(source or "")
    if source != lesson.body_source or not lesson.body_html and source:
        lesson.body_source = source
        lesson.body_html = str(render_markdown(source))


def set_course_body(course, source):
    source = source or ""
    if source != course.body_source or not course.body_html and source:
        course.body_source = source
        course.body_html = str(render_markdown(source))


def find_programme(name, create=True):
    name = (name or "").strip()
    if not name:
        return None
    programme = db.session.scalar(select(Programme).where(Programme.name == name))
    if programme is None and create:
        programme = Programme(name=name[:100])
        db.session.add(programme)
        db.session.flush()
    return programme


def create_course(title, summary="", programme=None, body="", actor=None, published=None):
    course = Course(title=_clean_title(title), summary=(summary or "").strip(),
                    programme=find_programme(programme) if isinstance(programme, str) else programme,
                    author_id=getattr(actor, "id", None),
                    is_published=auth.is_admin(actor) if published is None else published)
    set_course_body(course, body)
    db.session.add(course)
    db.session.flush()
    audit(actor, "course.created", course, course.title)
    return course


def _programme_of(programme):
    return find_programme(programme) if isinstance(programme, str) else programme


def update_course(course, *, title, summary, programme, body, actor=None):
    """Save an edit as a new revision. An edit of a published course goes to review at once (a
    CourseDraft), while members keep the published course until an admin publishes it."""
    refuse_synced(course)
    _lock(course)
    title, summary, body = _clean_title(title), (summary or "").strip(), body or ""
    programme = _programme_of(programme)
    copy = course.draft or course
    if (title, summary, getattr(programme, "id", None), body) == (copy.title, copy.summary, copy.programme_id,
                                                                 copy.body_source):
        return course
    if course.is_published:
        if course.draft is None:
            course.draft = CourseDraft(title=course.title, summary=course.summary, programme=course.programme,
                                       body_source=course.body_source, body_html=course.body_html)
        copy = course.draft
        copy.state, copy.review_reason = "submitted", ""
        copy.editor_id = getattr(actor, "id", None)
    copy.title, copy.summary, copy.programme = title, summary, programme
    set_course_body(copy, body)
    course.revision = (course.revision or 0) + 1
    db.session.flush()
    audit(actor, "course.updated", course, title, revision=course.revision,
          pending_review=course.draft is not None)
    return course


def _refuse_own_content(actor, author_id, editor_id):
    """Nobody approves content they wrote or last edited (403 ``own_review``)."""
    auth.refuse_self(actor, author_id, "own_review")
    auth.refuse_self(actor, editor_id, "own_review")


def is_own_lesson(user, lesson):
    """Did ``user`` write the lesson or make the edit under review? (Their review page offers no
    publish button: publish_lesson would refuse it.)"""
    copy = working_copy(lesson)
    return auth.is_self(user, lesson.author_id) or auth.is_self(user, copy.editor_id)


def publish_course(course, actor, revision):
    """An admin publishes the reviewed revision of a published course's pending edit."""
    if not auth.is_admin(actor):
        raise DomainError(_("只有管理员可以发布课程"), "forbidden", 403)
    _lock(course)
    draft = course.draft
    if draft is None or draft.state != "submitted":
        raise DomainError(_("此课程没有待审核的修改"), "bad_state", 409)
    _refuse_own_content(actor, course.author_id, draft.editor_id)
    _check_revision(course, revision)
    course.title, course.summary, course.programme = draft.title, draft.summary, draft.programme
    course.body_source, course.body_html = draft.body_source, draft.body_html
    course.draft = None
    db.session.flush()
    audit(actor, "course.published", course, course.title, revision=course.revision)
    return course


def return_course(course, actor, reason, revision=None):
    """An admin sends a published course's pending edit back with a reason; the published course stays."""
    if not auth.is_admin(actor):
        raise DomainError(_("只有管理员可以退回课程修改"), "forbidden", 403)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("请写明退回理由，授课人会看到它"), "missing_field", field="reason")
    _lock(course)
    draft = course.draft
    if draft is None or draft.state != "submitted":
        raise DomainError(_("此课程没有待审核的修改"), "bad_state", 409)
    if revision is not None:
        _check_revision(course, revision)
    draft.state, draft.review_reason = "returned", reason[:2000]
    db.session.flush()
    audit(actor, "course.returned", course, course.title, reason=reason[:2000], revision=course.revision)
    return course


def create_lesson(course, title, minutes, body, actor):
    if not can_author_in(actor, course):
        raise DomainError(_("没有权限在此课程中添加课时"), "forbidden", 403)
    position = db.session.scalar(select(func.coalesce(func.max(Lesson.position), 0)).where(
        Lesson.course_id == course.id)) + 1
    lesson = Lesson(course=course, title=_clean_title(title), minutes=_check_minutes(minutes), state="draft",
                    author_id=actor.id, editor_id=actor.id, position=position, revision=1)
    set_lesson_body(lesson, body)
    db.session.add(lesson)
    db.session.flush()
    # a lesson is born a draft: its history says "created", not a move from draft to draft
    _history(lesson, actor, "", "draft", "")
    audit(actor, "lesson.created", lesson, lesson.title)
    return lesson


def can_author_in(user, course):
    return auth.is_admin(user) or (auth.can_author(user) and (course.author_id in (None, user.id)
                                                              or course.is_published))


def refuse_synced(item):
    """Content sync owns what it brings in (CONTRACT.md): an edit in the app would be overwritten by
    the next sync, so the app refuses it and names the file to change instead."""
    if not getattr(item, "slug", None):
        return
    if isinstance(item, Course):
        path = f"content/{item.slug}/course.md"
    else:
        path = f"content/{item.course.slug or '…'}/{item.slug}.md"
    raise DomainError(_("请修改内容文件 %(path)s，再运行 pbschool content sync：此内容由内容文件同步，"
                        "在这里修改会被下次同步覆盖", path=path), "synced", 409)


def _lock(item):
    """Re-read the row under a lock, so that an edit and a review of it take turns (PostgreSQL)."""
    if item.id is not None:
        db.session.refresh(item, with_for_update=True)


def _check_revision(item, revision):
    """The reviewer approves the revision they were shown, never a newer one."""
    if isinstance(revision, bool) or not isinstance(revision, int):
        raise DomainError(_("缺少审核的版本号，请刷新页面后重新审核"), "missing_field", 400, field="revision")
    if revision != item.revision:
        raise DomainError(_("内容在您打开后已被修改，请重新审核"), "stale_revision", 409, field="revision")


def working_copy(lesson):
    """What the editor and the reviewer work on: the pending draft of a published lesson, else the lesson."""
    return lesson.draft or lesson


def _draft_of(lesson, actor):
    """The published lesson's pending draft, started from the published content when there is none."""
    if lesson.draft is None:
        lesson.draft = LessonDraft(course=lesson.course, title=lesson.title, minutes=lesson.minutes,
                                   body_source=lesson.body_source, body_html=lesson.body_html, state="draft",
                                   editor_id=getattr(actor, "id", None))
        db.session.flush()
    return lesson.draft


def _edited(lesson, copy, actor, reason):
    """Every edit makes a new revision; an edit of a submitted copy must be submitted again."""
    lesson.revision = (lesson.revision or 0) + 1
    copy.editor_id = getattr(actor, "id", None)
    if copy.state == "submitted":
        _transition(lesson, "draft", actor, reason, draft=lesson.draft)
    db.session.flush()


def check_editable(lesson, actor):
    """Raise unless ``actor`` may change the lesson's content in the app."""
    if not can_edit_lesson(actor, lesson):
        raise DomainError(_("只能修改自己编写的课时"), "forbidden", 403)
    refuse_synced(lesson)


def update_lesson(lesson, *, title, minutes, body, actor, course=None):
    """Save an edit as a new revision. An edit of a published lesson goes into its draft for review
    while members keep reading the published lesson; an edit of a submitted one is submitted again."""
    check_editable(lesson, actor)
    _lock(lesson)
    title, minutes, body = _clean_title(title), _check_minutes(minutes), _check_body(body or "")
    copy = working_copy(lesson)
    target = copy.course
    if course is not None and course.id != copy.course_id:
        if not can_author_in(actor, course):
            raise DomainError(_("没有权限在此课程中添加课时"), "forbidden", 403, field="course")
        target = course
    if (title, minutes, body, target.id) == (copy.title, copy.minutes, copy.body_source, copy.course_id):
        return lesson
    if lesson.state == "published":
        copy = _draft_of(lesson, actor)
    set_lesson_body(copy, body)
    copy.title, copy.minutes, copy.course = title, minutes, target
    _edited(lesson, copy, actor, _("修改了内容，需要重新提交审核"))
    audit(actor, "lesson.updated", lesson, title, revision=lesson.revision, pending_review=lesson.draft is not None)
    return lesson


def media_added(lesson, item, actor):
    """A file uploaded to the lesson is part of a new revision; on a published lesson members get it
    only once that revision is published."""
    copy = lesson
    if lesson.state == "published":
        copy = _draft_of(lesson, actor)
        item.draft_change = "add"
    _edited(lesson, copy, actor, _("修改了附件，需要重新提交审核"))


def remove_media(item, actor):
    """Remove a file from the lesson's working copy; members of a published lesson keep it until the
    revision without it is published."""
    from pbschool.courses import media

    lesson = item.lesson
    check_editable(lesson, actor)
    copy = working_copy(lesson)
    if lesson.state == "published" and item.draft_change != "add":
        copy = _draft_of(lesson, actor)
        item.draft_change = "remove"
    else:
        media.delete(item, actor)
    _edited(lesson, copy, actor, _("修改了附件，需要重新提交审核"))


def _history(lesson, actor, from_state, to_state, reason, draft=False):
    db.session.add(LessonReview(lesson_id=lesson.id, actor_id=getattr(actor, "id", None), from_state=from_state,
                                to_state=to_state, reason=reason or "", revision=lesson.revision, is_draft=draft))


def _transition(lesson, to_state, actor, reason="", draft=None):
    """Move the lesson, or its pending draft, to ``to_state`` and record the step."""
    target = draft or lesson
    from_state = target.state
    if draft is not None and to_state == "published":
        _apply_draft(lesson)
    else:
        target.state = to_state
    if to_state == "published":
        lesson.published_at = clock.now()
        lesson.review_reason = ""
        lesson.course.is_published = True
    elif to_state == "returned":
        target.review_reason = reason
    _history(lesson, actor, from_state, to_state, reason, draft=draft is not None)
    db.session.flush()
    notices.lesson_reviewed(lesson, to_state, editor_id=target.editor_id)
    audit(actor, f"lesson.{to_state}", lesson, lesson.title, reason=reason or None, revision=lesson.revision,
          draft=draft is not None or None)


def _apply_draft(lesson):
    """The pending draft becomes the lesson itself: its text, and its files."""
    from pbschool.courses import media

    draft = lesson.draft
    lesson.title, lesson.minutes, lesson.course = draft.title, draft.minutes, draft.course
    lesson.body_source, lesson.body_html = draft.body_source, draft.body_html
    lesson.editor_id = draft.editor_id
    for item in list(lesson.media):
        if item.draft_change == "remove":
            media.delete(item)
        elif item.draft_change == "add":
            item.draft_change = None
    lesson.draft = None
    db.session.flush()


def submit_lesson(lesson, actor):
    """The author (or an admin) submits the working copy for review."""
    if not can_edit_lesson(actor, lesson):
        raise DomainError(_("只能提交自己编写的课时"), "forbidden", 403)
    copy = working_copy(lesson)
    if copy.state not in ("draft", "returned"):
        raise DomainError(_("此课时已提交或已发布"), "bad_state", 409)
    if not copy.body_source.strip():
        raise DomainError(_("正文为空，不能提交审核"), "empty", 400, field="body")
    _transition(lesson, "submitted", actor, draft=lesson.draft)


def publish_lesson(lesson, actor, revision):
    """Another admin publishes exactly the revision they reviewed: never their own content (403
    ``own_review``), never a revision newer than the one shown (409 ``stale_revision``). A pending
    draft of a published lesson replaces the published version only now."""
    if not auth.is_admin(actor):
        raise DomainError(_("只有管理员可以发布课时"), "forbidden", 403)
    _lock(lesson)
    copy = working_copy(lesson)
    _refuse_own_content(actor, lesson.author_id, copy.editor_id)
    _check_revision(lesson, revision)
    if copy.state != "submitted":
        raise DomainError(_("只能发布待审核的课时"), "bad_state", 409)
    _transition(lesson, "published", actor, draft=lesson.draft)


def return_lesson(lesson, actor, reason, revision=None):
    """An admin sends the submitted working copy back with a reason; a published lesson stays up."""
    if not auth.is_admin(actor):
        raise DomainError(_("只有管理员可以退回课时"), "forbidden", 403)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("请写明退回理由，授课人会看到它"), "missing_field", field="reason")
    _lock(lesson)
    if revision is not None:
        _check_revision(lesson, revision)
    if working_copy(lesson).state != "submitted":
        raise DomainError(_("只能退回待审核的课时"), "bad_state", 409)
    _transition(lesson, "returned", actor, reason[:2000], draft=lesson.draft)


def withdraw_lesson(lesson, actor, reason):
    """An admin takes a published lesson down; members' records are kept. A pending draft becomes
    the lesson's working copy."""
    if not auth.is_admin(actor):
        raise DomainError(_("只有管理员可以撤回课时"), "forbidden", 403)
    if lesson.state != "published":
        raise DomainError(_("只能撤回已发布的课时"), "bad_state", 409)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("请写明撤回理由"), "missing_field", field="reason")
    if lesson.draft is not None:
        _apply_draft(lesson)
    _transition(lesson, "returned", actor, reason[:2000])


def delete_lesson(lesson, actor):
    """A draft nobody has studied may be deleted by its author or an admin."""
    from pbschool.courses import media

    if not can_edit_lesson(actor, lesson):
        raise DomainError(_("只能删除自己编写的课时"), "forbidden", 403)
    refuse_synced(lesson)
    if lesson.state not in ("draft", "returned"):
        raise DomainError(_("已提交或已发布的课时不能删除"), "bad_state", 409)
    if db.session.scalar(select(func.count(LessonProgress.id)).where(LessonProgress.lesson_id == lesson.id)):
        raise DomainError(_("已有党员学习过此课时，不能删除"), "in_use", 409)
    for item in list(lesson.media):
        media.delete(item, actor)
    audit(actor, "lesson.deleted", lesson, lesson.title)
    db.session.execute(LessonReview.__table__.delete().where(LessonReview.lesson_id == lesson.id))
    db.session.execute(Comment.__table__.delete().where(Comment.lesson_id == lesson.id))
    db.session.delete(lesson)
    db.session.flush()


# -- comments --------------------------------------------------------------------------------

def add_comment(user, lesson, body):
    if not is_visible(lesson):
        raise DomainError(_("此课时未发布或已隐藏，不能评论"), "not_found", 404)
    body = (body or "").strip()
    if not body:
        raise DomainError(_("请填写评论内容"), "missing_field", field="body")
    if len(body) > MAX_COMMENT_CHARS:
        raise DomainError(_("评论不能超过 %(n)d 个字", n=MAX_COMMENT_CHARS), "too_long", field="body")
    recent = db.session.scalar(select(func.count(Comment.id)).where(
        Comment.author_id == user.id, Comment.created_at >= clock.now() - dt.timedelta(minutes=1)))
    if recent >= int(_setting("COMMENTS_PER_MINUTE", 5)):
        raise DomainError(_("发言太频繁，请稍后再试"), "too_many", 429, field="body")
    comment = Comment(lesson_id=lesson.id, author_id=user.id, body=body, body_html=str(render_markdown(body)),
                      is_approved=not _setting("COMMENTS_PREMODERATED", True), created_at=clock.now())
    db.session.add(comment)
    db.session.flush()
    if comment.is_approved:
        record_points(user, "comment_approved", f"comment:{comment.id}")
    return comment


def approve_comment(comment, actor):
    if not auth.is_admin(actor):
        raise DomainError(_("只有管理员可以审核评论"), "forbidden", 403)
    if comment.is_approved and not comment.is_hidden:
        return comment
    comment.is_approved = True
    comment.is_hidden = False
    comment.moderated_by_id = actor.id
    comment.moderated_at = clock.now()
    db.session.flush()
    record_points(comment.author, "comment_approved", f"comment:{comment.id}")
    notices.comment_approved(comment)
    audit(actor, "comment.approved", comment, comment.body[:80])
    return comment


def hide_comment(comment, actor, reason=""):
    if not auth.is_admin(actor):
        raise DomainError(_("只有管理员可以隐藏评论"), "forbidden", 403)
    comment.is_hidden = True
    comment.hidden_reason = (reason or "").strip()[:500]
    comment.moderated_by_id = actor.id
    comment.moderated_at = clock.now()
    db.session.flush()
    audit(actor, "comment.hidden", comment, comment.body[:80], reason=comment.hidden_reason or None)
    return comment


def visible_comments(lesson, viewer):
    """Approved, unhidden comments; the viewer's own pending ones; everything for an admin."""
    stmt = select(Comment).where(Comment.lesson_id == lesson.id).order_by(Comment.created_at, Comment.id)
    if not auth.is_admin(viewer):
        stmt = stmt.where(Comment.is_hidden.is_(False),
                          or_(Comment.is_approved.is_(True), Comment.author_id == viewer.id))
    return db.session.scalars(stmt).all()


# -- requirements and oversight --------------------------------------------------------------

def set_requirements(course, *, for_all=False, branch_ids=(), job_posts=(), actor=None):
    """Replace who the course is required for. A synced course whose file says whom it is required for
    keeps what the file says (content sync sets it, with no actor)."""
    if actor is not None and course.slug and course.requirements_from_file:
        raise DomainError(_("请修改内容文件 content/%(slug)s/course.md 中的 required_for，"
                            "再运行 pbschool content sync：此课程的必修范围由内容文件同步", slug=course.slug),
                          "synced", 409, field="job_posts")
    wanted = {}
    if for_all:
        wanted["all"] = CourseRequirement(kind="all", target_key="all")
    for branch_id in branch_ids:
        branch = db.session.get(Branch, int(branch_id))
        if branch is None:
            raise DomainError(_("支部不存在"), "not_found", 400, field="branches")
        wanted[f"branch:{branch.id}"] = CourseRequirement(kind="branch", branch_id=branch.id,
                                                          target_key=f"branch:{branch.id}")
    for post in job_posts:
        post = post.strip()[:100]
        if post:
            wanted[f"post:{post}"] = CourseRequirement(kind="job_post", job_post=post, target_key=f"post:{post}")
    for requirement in list(course.requirements):
        if requirement.target_key not in wanted:
            course.requirements.remove(requirement)
        else:
            del wanted[requirement.target_key]
    db.session.flush()
    for requirement in wanted.values():
        course.requirements.append(requirement)
    db.session.flush()
    audit(actor, "course.requirements", course, course.title,
          targets=sorted(r.target_key for r in course.requirements))


def requirement_for_user_sql():
    """Clause: a CourseRequirement row applies to the User row in the same query."""
    return or_(CourseRequirement.kind == "all",
               and_(CourseRequirement.kind == "branch", CourseRequirement.branch_id == User.branch_id),
               and_(CourseRequirement.kind == "job_post", CourseRequirement.job_post == User.job_post,
                    User.job_post != ""))


def members_done(course, users):
    """Ids of the users who completed every published lesson of the course."""
    lesson_ids = [lesson.id for lesson in course.published_lessons()]
    if not lesson_ids or not users:
        return set()
    rows = db.session.execute(
        select(LessonProgress.user_id, func.count(LessonProgress.id))
        .where(LessonProgress.lesson_id.in_(lesson_ids), LessonProgress.completed_at.is_not(None),
               LessonProgress.user_id.in_([u.id for u in users]))
        .group_by(LessonProgress.user_id)).all()
    return {user_id for user_id, count in rows if count >= len(lesson_ids)}


def completion_by_branch(course, viewer):
    """Per branch the viewer oversees: members, members it is required for, and completions."""
    branches = db.session.scalars(auth.scope_to_branch(select(Branch).where(Branch.is_active.is_(True)),
                                                       viewer, Branch.id).order_by(Branch.code)).all()
    rows = []
    for branch in branches:
        users = db.session.scalars(select(User).where(User.branch_id == branch.id,
                                                      User.is_active_account.is_(True))).all()
        done = members_done(course, users)
        required = [u for u in users if any(r.applies_to(u) for r in course.requirements)]
        rows.append({"branch": branch, "members": len(users), "required": len(required),
                     "done": len(done), "required_done": len([u for u in required if u.id in done])})
    return rows


def branch_learning(branch, year=None):
    """Each active member of the branch: hours this year, target, required courses done / total.

    A fixed number of queries however large the branch."""
    year = year or local_year()
    start, end = year_bounds(year)
    users = db.session.scalars(select(User).where(User.branch_id == branch.id, User.is_active_account.is_(True))
                               .order_by(User.username)).all()
    user_ids = [u.id for u in users] or [0]
    hours = dict(db.session.execute(
        select(LessonProgress.user_id, func.sum(LessonProgress.hours_credited))
        .where(LessonProgress.user_id.in_(user_ids), LessonProgress.completed_at >= start,
               LessonProgress.completed_at < end)
        .group_by(LessonProgress.user_id)).all())
    requirements = db.session.scalars(select(CourseRequirement).join(Course)
                                      .where(Course.is_published.is_(True))).all()
    lessons_of = {}
    for course_id, lesson_id in db.session.execute(
            select(Lesson.course_id, Lesson.id).where(Lesson.state == "published",
                                                      Lesson.course_id.in_({r.course_id for r in requirements}
                                                                           or {0}))):
        lessons_of.setdefault(course_id, set()).add(lesson_id)
    done = set(db.session.execute(
        select(LessonProgress.user_id, LessonProgress.lesson_id)
        .where(LessonProgress.user_id.in_(user_ids), LessonProgress.completed_at.is_not(None))).all())
    rows = []
    for user in users:
        required = {r.course_id for r in requirements if r.applies_to(user)}
        finished = [c for c in required
                    if lessons_of.get(c) and all((user.id, lesson_id) in done for lesson_id in lessons_of[c])]
        got = Decimal(hours.get(user.id) or 0).quantize(Decimal("0.01"))
        target = target_hours(user)
        rows.append({"user": user, "hours": got, "target": target, "required": len(required),
                     "required_done": len(finished),
                     "required_complete": bool(required) and len(finished) == len(required),
                     "behind": got < expected_by_now(target, year)})
    return rows


def expected_by_now(target, year):
    """The share of the yearly target a member should have by today (the whole of it for past years)."""
    start, end = year_bounds(year)
    now = clock.now()
    if now >= end:
        return target
    fraction = max(0.0, (now - start).total_seconds() / (end - start).total_seconds())
    return (target * Decimal(str(round(fraction, 4)))).quantize(Decimal("0.01"))
