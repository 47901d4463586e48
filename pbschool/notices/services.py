"""Telling people things: one notification per user, kind and object, however often the event
happens; reading them; and the announcements (通知公告) that committee and branches publish.

Services flush, never commit. Other features call ``notify`` where their event happens."""

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update

from pbschool import auth, clock
from pbschool.accounts.models import Branch, User
from pbschool.accounts.services import audit
from pbschool.errors import DomainError, NotFound
from pbschool.extensions import db
from pbschool.markup import render_markdown
from pbschool.notices.models import Announcement, Notification, announcement_branch

#: kind -> its title, with the subject (an exam's title, a month) in it; translated when read.
TITLES = {
    "exam_open": _l("考试已开放：%(s)s"),
    "course_required": _l("必修课程：%(s)s"),
    "lesson_returned": _l("您的课时被退回：%(s)s"),
    "lesson_published": _l("您的课时已发布：%(s)s"),
    "comment_approved": _l("您的评论已通过审核：%(s)s"),
    "month_published": _l("%(s)s 月度积分已发布"),
    "short_marked": _l("您的简答题已批阅：%(s)s"),
    "announcement": _l("通知公告：%(s)s"),
}
#: kind -> (endpoint, its id argument); the month's board takes the period instead.
TARGETS = {
    "exam_open": ("exams.exam_detail", "exam_id"),
    "course_required": ("courses.course", "course_id"),
    "lesson_returned": ("courses.edit_lesson", "lesson_id"),
    "lesson_published": ("courses.lesson", "lesson_id"),
    "comment_approved": ("courses.lesson", "lesson_id"),
    "short_marked": ("exams.result", "attempt_id"),
    "announcement": ("notices.announcement", "announcement_id"),
}
PAGE_SIZE = 20
MAX_IDS = 200
MAX_TITLE = 200
MAX_BODY = 20_000
#: The header says "99+" beyond this: the count stops there.
BADGE_CAP = 99


def title_of(note):
    return str(TITLES[note.kind]) % {"s": note.subject}


def url_of(note):
    from flask import url_for

    if note.kind == "month_published":
        return url_for("points.board", period=note.subject)
    endpoint, arg = TARGETS[note.kind]
    return url_for(endpoint, **{arg: note.object_id})


def as_json(note):
    return {"id": note.id, "kind": note.kind, "title": title_of(note), "url": url_of(note),
            "created_at": clock.isoformat(note.created_at), "read": note.read_at is not None}


# -- making them ------------------------------------------------------------------------------------

def _insert_ignore(rows):
    """Insert rows, skipping any whose (user, kind, key) is there already: the unique constraint
    decides, so two requests racing for the same event still make one row."""
    if not rows:
        return 0
    bind = db.session.get_bind()
    if bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = Notification.__table__
    stmt = insert(table).on_conflict_do_nothing(index_elements=["user_id", "kind", "key"]).returning(table.c.id)
    # RETURNING names only the rows made: executemany's rowcount is not reliable on every driver
    return len(db.session.execute(stmt, rows).all())


def notify(recipients, kind, key, *, object_id=None, subject="", announcement_id=None, created_at=None):
    """Tell each recipient (a User, or a (user id, branch id) pair) about one thing, once.
    ``key`` names the thing within ``kind``; the same event again tells nobody twice."""
    if kind not in TITLES:
        raise ValueError(kind)
    when = created_at or clock.now()
    rows, seen = [], set()
    for person in recipients:
        user_id, branch_id = (person.id, person.branch_id) if isinstance(person, User) else person
        if user_id is None or user_id in seen:
            continue
        seen.add(user_id)
        rows.append({"user_id": user_id, "kind": kind, "key": str(key)[:120], "object_id": object_id,
                     "subject": (subject or "")[:MAX_TITLE], "branch_id": branch_id,
                     "announcement_id": announcement_id, "created_at": when, "read_at": None})
    return _insert_ignore(rows)


def lesson_reviewed(lesson, to_state, editor_id=None):
    """The lesson's author (and the editor of the reviewed copy) hears that it was published or returned."""
    kind = {"published": "lesson_published", "returned": "lesson_returned"}.get(to_state)
    wanted = {lesson.author_id, editor_id} - {None}
    if kind is None or not wanted:
        return 0
    people = db.session.scalars(select(User).where(User.id.in_(wanted))).all()
    return notify(people, kind, f"lesson:{lesson.id}:r{lesson.revision}", object_id=lesson.id, subject=lesson.title)


def comment_approved(comment):
    return notify([comment.author], "comment_approved", f"comment:{comment.id}", object_id=comment.lesson_id,
                  subject=comment.lesson.title)


def short_answers_marked(attempt):
    """Once nothing is left to mark, the member hears that their paper is marked."""
    if attempt.state == "pending_review":
        return 0
    return notify([attempt.user], "short_marked", f"attempt:{attempt.id}", object_id=attempt.id,
                  subject=attempt.exam.title)


def month_published(period, members=()):
    """Every member on the month's board hears it was published: ``members`` are (user id, branch id)."""
    return notify(members, "month_published", f"month:{period}", subject=period)


# -- reading them -----------------------------------------------------------------------------------

def unread_count(user, cap=None):
    """One COUNT over the (user, read_at) index; with ``cap`` it stops counting there."""
    stmt = select(Notification.id).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    if cap is not None:
        stmt = stmt.limit(cap + 1)
    return db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def notifications_page(user, page=1, per_page=PAGE_SIZE):
    stmt = (select(Notification).where(Notification.user_id == user.id)
            .order_by(Notification.created_at.desc(), Notification.id.desc()))
    return db.paginate(stmt, page=page, per_page=per_page, error_out=False, count=True)


def parse_read_request(data):
    """{"ids": [int, ...]} or {"all": true}: (ids, all). Anything else is a 400."""
    if not isinstance(data, dict):
        raise DomainError(_("请求体应为 JSON 对象"), "bad_json", 400)
    if data.get("all") is not None:
        if data["all"] is not True or "ids" in data:
            raise DomainError(_("all 只能为 true，且不能与 ids 同时给出"), "invalid_field", 400, field="all")
        return None, True
    ids = data.get("ids")
    if not isinstance(ids, list) or not ids:
        raise DomainError(_("请给出 ids（通知编号的数组）或 all: true"), "invalid_field", 400, field="ids")
    if len(ids) > MAX_IDS:
        raise DomainError(_("一次最多标记 %(n)d 条", n=MAX_IDS), "too_many", 400, field="ids")
    if any(isinstance(i, bool) or not isinstance(i, int) or not 0 < i < 2**31 for i in ids):
        raise DomainError(_("ids 应为正整数数组"), "invalid_field", 400, field="ids")
    return set(ids), False


def mark_read(user, ids=None, everything=False):
    """Mark the user's own notifications read: ids that are not theirs change nothing. Returns how
    many were unread. Marking twice is fine."""
    stmt = update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    if not everything:
        if not ids:
            return 0
        stmt = stmt.where(Notification.id.in_(list(ids)))
    result = db.session.execute(stmt.values(read_at=clock.now()).execution_options(synchronize_session=False))
    return result.rowcount or 0


def open_notification(user, note_id):
    """The user's own notification, marked read: its url to go to. Another's is a 404."""
    note = db.session.get(Notification, note_id)
    if note is None or note.user_id != user.id:
        raise NotFound()
    mark_read(user, {note.id})
    return url_of(note)


# -- announcements ----------------------------------------------------------------------------------

def _clean_branches(actor, audience, branch_ids):
    if audience not in ("all", "branches"):
        raise DomainError(_("请选择发给全体还是指定支部"), "invalid_field", 400, field="audience")
    if audience == "all":
        if not auth.is_admin(actor):
            raise DomainError(_("只有管理员可以向全体党员发布通知"), "forbidden", 403, field="audience")
        return []
    ids = set(branch_ids or ())
    if not ids:
        raise DomainError(_("请至少选择一个支部"), "missing_field", 400, field="branches")
    branches = db.session.scalars(select(Branch).where(Branch.id.in_(ids), Branch.is_active.is_(True))).all()
    if len(branches) != len(ids):
        raise DomainError(_("找不到所选的支部"), "invalid_field", 400, field="branches")
    for branch in branches:
        if not auth.can_oversee_branch(actor, branch.id):
            raise DomainError(_("只能向本支部发布通知"), "forbidden", 403, field="branches")
    return branches


def can_publish(user):
    return auth.is_admin(user) or (auth.has_role(user, "secretary") and user.branch_id is not None)


def publish_announcement(actor, *, title, body, audience="all", branch_ids=(), pinned=False, key=None):
    """An admin to the committee or chosen branches, a secretary to their own branch (403 else).
    Everyone in those branches now (or every active user) gets a notification; the author's
    ``key`` makes a retried post the same announcement."""
    if not can_publish(actor):
        raise DomainError(_("没有权限发布通知公告"), "forbidden", 403)
    if key:
        found = db.session.scalar(select(Announcement).where(Announcement.author_id == actor.id,
                                                             Announcement.key == key[:64]))
        if found is not None:
            return found
    title = " ".join((title or "").split())
    if not title:
        raise DomainError(_("请填写标题"), "missing_field", 400, field="title")
    if len(title) > MAX_TITLE:
        raise DomainError(_("标题不能超过 %(n)d 个字", n=MAX_TITLE), "too_long", 400, field="title")
    body = (body or "").strip()
    if not body:
        raise DomainError(_("请填写正文"), "missing_field", 400, field="body")
    if len(body) > MAX_BODY:
        raise DomainError(_("正文不能超过 %(n)d 个字", n=MAX_BODY), "too_long", 400, field="body")
    branches = _clean_branches(actor, audience, branch_ids)
    item = Announcement(title=title, body_source=body, body_html=str(render_markdown(body)), audience=audience,
                        is_pinned=bool(pinned), author_id=actor.id, key=(key or None) and key[:64],
                        branches=branches, published_at=clock.now())
    db.session.add(item)
    db.session.flush()
    # who belongs now: an active user whose current stay (accounts.Membership, open) is in the branch
    people = select(User.id, User.branch_id).where(User.is_active_account.is_(True), User.id != actor.id)
    if audience == "branches":
        people = people.where(User.branch_id.in_([b.id for b in branches]))
    item.recipient_count = notify(db.session.execute(people).all(), "announcement", f"announcement:{item.id}",
                                  object_id=item.id, subject=title, announcement_id=item.id,
                                  created_at=item.published_at)
    db.session.flush()
    audit(actor, "announcement.publish", item, title, audience=audience, branches=[b.code for b in branches])
    return item


def can_manage(user, item):
    """Pinning, and seeing who has not read it: the author, an admin, or a secretary of every branch
    it went to (a committee-wide one only the admins)."""
    if auth.is_admin(user) or auth.is_self(user, item.author_id):
        return True
    if item.audience == "all" or not auth.has_role(user, "secretary"):
        return False
    return all(auth.can_oversee_branch(user, b.id) for b in item.branches)


def can_see_readers(user, item):
    """Who has not read it: admins and the author (each branch they oversee), and a secretary for
    their own branch when it went there (to everyone, or to their branch among others)."""
    if auth.is_admin(user) or auth.is_self(user, item.author_id):
        return True
    if not auth.has_role(user, "secretary") or user.branch_id is None:
        return False
    return item.audience == "all" or any(b.id == user.branch_id for b in item.branches)


def can_read(user, item):
    """Its recipients, its author, admins, and the secretaries of a branch it went to."""
    if auth.is_admin(user) or auth.is_self(user, item.author_id):
        return True
    if db.session.scalar(select(Notification.id).where(Notification.announcement_id == item.id,
                                                       Notification.user_id == user.id)):
        return True
    return auth.has_role(user, "secretary") and any(auth.can_oversee_branch(user, b.id) for b in item.branches)


def set_pinned(item, actor, pinned):
    if not can_manage(actor, item):
        raise DomainError(_("没有权限修改此通知"), "forbidden", 403)
    if item.is_pinned != bool(pinned):
        item.is_pinned = bool(pinned)
        db.session.flush()
        audit(actor, "announcement.pin" if pinned else "announcement.unpin", item, item.title)
    return item


def read_announcement(user, item):
    """Show it to ``user`` (404 when it was not meant for them) and mark their notification read."""
    if not can_read(user, item):
        raise NotFound()
    db.session.execute(update(Notification).where(
        Notification.announcement_id == item.id, Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=clock.now()).execution_options(synchronize_session=False))
    return item


def announcements_for(user, page=1, per_page=PAGE_SIZE):
    """The announcements a user may read, pinned first, newest first; with each, whether they read it."""
    read = (select(Notification.read_at).where(Notification.announcement_id == Announcement.id,
                                               Notification.user_id == user.id)
            .correlate(Announcement).scalar_subquery())
    mine = select(Notification.announcement_id).where(Notification.user_id == user.id,
                                                      Notification.kind == "announcement")
    stmt = select(Announcement, read)
    if not auth.is_admin(user):
        visible = [Announcement.id.in_(mine), Announcement.author_id == user.id]
        if auth.has_role(user, "secretary") and user.branch_id is not None:
            visible.append(Announcement.id.in_(select(announcement_branch.c.announcement_id)
                                               .where(announcement_branch.c.branch_id == user.branch_id)))
        stmt = stmt.where(or_(*visible))
    stmt = stmt.order_by(Announcement.is_pinned.desc(), Announcement.published_at.desc(), Announcement.id.desc())
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    page = max(1, page)
    rows = db.session.execute(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return rows, total


def readership(item, viewer):
    """Per branch the viewer may oversee: (branch, sent, read, the names of who has not read it)."""
    stmt = (select(Notification.branch_id, User.name, User.username, Notification.read_at)
            .join(User, User.id == Notification.user_id)
            .where(Notification.announcement_id == item.id)
            .order_by(Notification.branch_id, User.username))
    stmt = auth.scope_to_branch(stmt, viewer, Notification.branch_id)
    branches = {b.id: b for b in db.session.scalars(select(Branch))}
    per = {}
    for branch_id, name, username, read_at in db.session.execute(stmt):
        entry = per.setdefault(branch_id, {"branch": branches.get(branch_id), "sent": 0, "read": 0, "unread": []})
        entry["sent"] += 1
        if read_at is None:
            entry["unread"].append((username, name))
        else:
            entry["read"] += 1
    return sorted(per.values(), key=lambda e: (e["branch"] is None, e["branch"].code if e["branch"] else ""))


def get_announcement(announcement_id):
    item = db.session.get(Announcement, announcement_id)
    if item is None:
        raise NotFound()
    return item

