"""Overrides: one member's, or one branch's, own terms for one exam — extra minutes, a later close,
extra attempts — in force at once.

The rules, in one place:

* **Member over branch, field by field.** A member's own row wins over their branch's row for each
  field it sets (``extra_minutes=0`` on a member cancels the branch's extra minutes); a field neither
  sets is the exam's own. A branch row applies to the branch's current members only (``User.branch_id``:
  a member who moved away no longer has it for what they start next).
* **Nobody extends their own exam.** A member override for oneself is refused (403 ``own_override``),
  and a branch row never applies to whoever last set it (a secretary extending their branch does not
  extend themself).
* **Later only.** ``closes_at`` must be after the exam's own close (which the exam must have); the
  effective close is the later of the two.
* **An attempt in progress moves with it.** Setting, changing or removing an override recomputes the
  stored ``Attempt.deadline_at`` of every affected unfinished attempt: start + time limit + extra
  minutes, capped at the effective close. Raising it applies as is (an attempt whose time ran out but
  that is not yet graded is open again if the new deadline is later than now). Lowering it never
  takes the deadline below now + ``SHRINK_FLOOR_SECONDS`` (nor raises it), so a member whose time is
  taken back keeps a minute (plus the usual grace) to send what they are typing.
  The save path keeps reading that one stored column; nothing here adds to it.

Operations flush, audit each real change once, and never commit.
"""

import datetime as dt
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from pbschool import auth, clock
from pbschool.accounts.services import audit
from pbschool.errors import DomainError
from pbschool.exams.models import Attempt, ExamOverride
from pbschool.extensions import db

FIELDS = ("extra_minutes", "closes_at", "extra_attempts")
MAX_EXTRA_MINUTES = 7 * 24 * 60
MAX_EXTRA_ATTEMPTS = 100
MAX_LATER_DAYS = 366
#: Taking time back leaves at least this long from the moment it is taken back.
SHRINK_FLOOR_SECONDS = 60


@dataclass
class Terms:
    """One member's effective terms for one exam."""

    exam: object
    member: ExamOverride | None = None
    branch: ExamOverride | None = None

    def _field(self, name):
        for row in (self.member, self.branch):
            if row is not None and getattr(row, name) is not None:
                return getattr(row, name)
        return None

    @property
    def extra_minutes(self):
        return self._field("extra_minutes") or 0

    @property
    def extra_attempts(self):
        return self._field("extra_attempts") or 0

    @property
    def later_close(self):
        """The override's close when it is later than the exam's own, else None."""
        own, later = self.exam.closes_at, self._field("closes_at")
        return later if own is not None and later is not None and later > own else None

    @property
    def closes_at(self):
        return self.later_close or self.exam.closes_at

    @property
    def max_attempts(self):
        return self.exam.max_attempts + self.extra_attempts

    @property
    def time_limit_seconds(self):
        return self.exam.time_limit_seconds + self.extra_minutes * 60

    @property
    def any(self):
        return bool(self.extra_minutes or self.extra_attempts or self.later_close)

    def is_open(self, now):
        exam = self.exam
        return (exam.is_published and (exam.opens_at is None or exam.opens_at <= now)
                and (self.closes_at is None or now < self.closes_at))

    def deadline(self, started_at):
        deadline = started_at + dt.timedelta(seconds=self.time_limit_seconds)
        if self.closes_at is not None:
            deadline = min(deadline, self.closes_at)
        return deadline.replace(microsecond=0)


def _applies_to(user):
    """The override rows that apply to ``user`` (their own, and their branch's unless they set it)."""
    own = ExamOverride.user_id == user.id
    if user.branch_id is None:
        return own
    return or_(own, (ExamOverride.branch_id == user.branch_id)
               & or_(ExamOverride.set_by_id.is_(None), ExamOverride.set_by_id != user.id))


def _sort(exam, rows, user):
    terms = Terms(exam)
    for row in rows:
        if row.user_id == user.id:
            terms.member = row
        else:
            terms.branch = row
    return terms


def terms_for(exam, user):
    """The member's effective terms for the exam (one query)."""
    rows = db.session.scalars(select(ExamOverride).where(ExamOverride.exam_id == exam.id, _applies_to(user))).all()
    return _sort(exam, rows, user)


def terms_by_exam(exams, user):
    """{exam id: Terms} for several exams in one query."""
    exams = list(exams)
    rows = {}
    if exams:
        for row in db.session.scalars(select(ExamOverride).where(
                ExamOverride.exam_id.in_([e.id for e in exams]), _applies_to(user))):
            rows.setdefault(row.exam_id, []).append(row)
    return {e.id: _sort(e, rows.get(e.id, []), user) for e in exams}


def open_later_for(user, exam_id_column, now):
    """SQL: an override gives ``user`` a close later than now for the exam (for the open-exams query).
    It is checked again against the exam's own close in Terms (the later of the two wins)."""
    return (select(ExamOverride.id).where(ExamOverride.exam_id == exam_id_column, _applies_to(user),
                                          ExamOverride.closes_at > now).exists())


def latest_close(exam):
    """When the exam has closed for everyone, overrides included (answers are shown after it)."""
    if exam.closes_at is None:
        return None
    later = db.session.scalar(select(func.max(ExamOverride.closes_at)).where(ExamOverride.exam_id == exam.id))
    return max(exam.closes_at, later) if later is not None else exam.closes_at


# -- reading and checking what is asked ---------------------------------------------------------

def _bad(code, message, field):
    return DomainError(message, code, 400, field=field)


def _int(value, name, maximum, message):
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise _bad(f"invalid_{name}", message, name)
    return value


def _time(value):
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and len(value) <= 64:
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except (ValueError, OverflowError):
            raise _bad("invalid_closes_at", _("截止时间应为 ISO 8601 时间"), "closes_at") from None
    else:
        raise _bad("invalid_closes_at", _("截止时间应为 ISO 8601 时间"), "closes_at")
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def check_values(exam, data):
    """{"extra_minutes", "closes_at", "extra_attempts"} checked (400 with a code per field); at least one set."""
    values = {
        "extra_minutes": _int(data.get("extra_minutes"), "extra_minutes", MAX_EXTRA_MINUTES,
                              _("延长分钟数应为 0–%(n)d 的整数（最多 7 天）", n=MAX_EXTRA_MINUTES)),
        "extra_attempts": _int(data.get("extra_attempts"), "extra_attempts", MAX_EXTRA_ATTEMPTS,
                               _("增加次数应为 0–%(n)d 的整数", n=MAX_EXTRA_ATTEMPTS)),
        "closes_at": _time(data.get("closes_at")),
    }
    later = values["closes_at"]
    if later is not None:
        if exam.closes_at is None:
            raise _bad("exam_has_no_close", _("这场考试没有结束时间，无需延后截止"), "closes_at")
        if exam.opens_at is not None and later <= exam.opens_at:
            raise _bad("invalid_closes_at", _("延后的截止时间应晚于考试的开始时间"), "closes_at")
        if later <= exam.closes_at:
            raise _bad("invalid_closes_at", _("延后的截止时间应晚于考试原定的结束时间"), "closes_at")
        if later > exam.closes_at + dt.timedelta(days=MAX_LATER_DAYS):
            raise _bad("invalid_closes_at", _("截止时间最多延后一年"), "closes_at")
    if all(values[name] is None for name in FIELDS):
        raise _bad("empty_override", _("请至少设置一项：延长分钟数、延后截止时间或增加次数"), None)
    return values


# -- who may ----------------------------------------------------------------------------------

def check_member_permission(actor, user):
    """Admin: anyone but themself; secretary: their branch's members but themself; nobody else."""
    if not auth.can_set_exam_terms(actor, user.branch_id):
        raise DomainError(_("没有权限为该党员设置考试特殊安排"), "forbidden", 403)
    auth.refuse_self(actor, user, "own_override")


def check_branch_permission(actor, branch):
    if not auth.can_set_exam_terms(actor, branch.id):
        raise DomainError(_("没有权限为该支部设置考试特殊安排"), "forbidden", 403)


# -- changing them ------------------------------------------------------------------------------

def _snapshot(row):
    if row is None:
        return None
    return {"extra_minutes": row.extra_minutes, "extra_attempts": row.extra_attempts,
            "closes_at": clock.isoformat(row.closes_at) if row.closes_at else None}


def find(exam, user=None, branch=None, lock=False):
    stmt = select(ExamOverride).where(ExamOverride.exam_id == exam.id)
    stmt = stmt.where(ExamOverride.user_id == user.id) if user is not None else stmt.where(
        ExamOverride.branch_id == branch.id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return db.session.scalar(stmt)


def _label(user=None, branch=None):
    return user.username if user is not None else f"branch:{branch.code}"


def _put(exam, values, actor, *, user=None, branch=None):
    row = find(exam, user, branch, lock=True)
    if row is None:
        row = ExamOverride(exam_id=exam.id, user_id=getattr(user, "id", None), branch_id=getattr(branch, "id", None))
        try:
            with db.session.begin_nested():
                db.session.add(row)
                for name in FIELDS:
                    setattr(row, name, values[name])
                row.set_by_id, row.updated_at = getattr(actor, "id", None), clock.now()
                db.session.flush()
        except IntegrityError:
            # Another request made it at the same moment: change that one (same path as an update).
            row = find(exam, user, branch, lock=True)
            if row is None:
                raise
        else:
            audit(actor, "exam.override", exam, _label(user, branch), before=None, after=_snapshot(row))
            _move_deadlines(exam, user=user, branch=branch)
            return row
    before = _snapshot(row)
    if all(getattr(row, name) == values[name] for name in FIELDS):
        return row  # the same PUT again: nothing changes, nothing is logged
    for name in FIELDS:
        setattr(row, name, values[name])
    row.set_by_id, row.updated_at = getattr(actor, "id", None), clock.now()
    db.session.flush()
    audit(actor, "exam.override", exam, _label(user, branch), before=before, after=_snapshot(row))
    _move_deadlines(exam, user=user, branch=branch)
    return row


def set_member_override(exam, user, data, actor):
    """Give one member their own terms (replacing what they had). Returns the row."""
    check_member_permission(actor, user)
    return _put(exam, check_values(exam, data), actor, user=user)


def set_branch_override(exam, branch, data, actor):
    """Give one branch's members terms (each member's own row still wins, field by field)."""
    check_branch_permission(actor, branch)
    return _put(exam, check_values(exam, data), actor, branch=branch)


def _remove(exam, actor, *, user=None, branch=None):
    row = find(exam, user, branch, lock=True)
    if row is None:
        return False
    before = _snapshot(row)
    db.session.delete(row)
    db.session.flush()
    audit(actor, "exam.override_removed", exam, _label(user, branch), before=before, after=None)
    _move_deadlines(exam, user=user, branch=branch)
    return True


def remove_member_override(exam, user, actor):
    """Take a member's own terms away; True if there were any (removing twice is harmless)."""
    check_member_permission(actor, user)
    return _remove(exam, actor, user=user)


def remove_branch_override(exam, branch, actor):
    check_branch_permission(actor, branch)
    return _remove(exam, actor, branch=branch)


def new_deadline(current, target, now):
    """Where an unfinished attempt's deadline goes when its terms change (see the module's rules)."""
    if target >= current:
        return target
    floor = (now + dt.timedelta(seconds=SHRINK_FLOOR_SECONDS)).replace(microsecond=0)
    return max(target, min(current, floor))


def _move_deadlines(exam, *, user=None, branch=None):
    """Recompute the stored deadline of every unfinished attempt the change touches."""
    from pbschool.accounts.models import User
    from pbschool.exams.services import lock_attempt

    stmt = select(Attempt.id).where(Attempt.exam_id == exam.id, Attempt.state == "in_progress")
    if user is not None:
        stmt = stmt.where(Attempt.user_id == user.id)
    else:
        stmt = stmt.join(User, User.id == Attempt.user_id).where(User.branch_id == branch.id)
    now = clock.now()
    for attempt_id in db.session.scalars(stmt.order_by(Attempt.id)).all():
        attempt = lock_attempt(attempt_id)
        if attempt is None or attempt.state != "in_progress":
            continue
        target = terms_for(exam, attempt.user).deadline(attempt.started_at.replace(microsecond=0))
        moved = new_deadline(attempt.deadline_at, target, now)
        if moved != attempt.deadline_at:
            attempt.deadline_at = moved
    db.session.flush()


# -- listing ----------------------------------------------------------------------------------

def overrides_of(exam, viewer):
    """The exam's overrides the viewer may see (admin: all; secretary: their branch's and its members')."""
    from sqlalchemy.orm import selectinload

    from pbschool.accounts.models import User

    stmt = (select(ExamOverride).where(ExamOverride.exam_id == exam.id)
            .outerjoin(User, User.id == ExamOverride.user_id)
            .options(selectinload(ExamOverride.user), selectinload(ExamOverride.branch),
                     selectinload(ExamOverride.set_by))
            .order_by(ExamOverride.branch_id.is_(None), ExamOverride.id))
    scope = auth.branch_scope(viewer)
    if scope is not None:
        if not scope:
            return []
        stmt = stmt.where(or_(ExamOverride.branch_id.in_(scope), User.branch_id.in_(scope)))
    return db.session.scalars(stmt).all()


def as_json(row):
    body = {"kind": "member" if row.user_id is not None else "branch",
            "username": row.user.username if row.user_id is not None else None,
            "branch": row.branch.code if row.branch_id is not None else None,
            "extra_minutes": row.extra_minutes, "extra_attempts": row.extra_attempts,
            "closes_at": clock.isoformat(row.closes_at),
            "set_by": row.set_by.username if row.set_by is not None else None,
            "updated_at": clock.isoformat(row.updated_at)}
    return body
