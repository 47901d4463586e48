"""Recording meetings, crediting attendance, and the branch's meeting rhythm. Flush, never commit."""

import datetime as dt

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pbschool import auth, clock
from pbschool.accounts.models import User
from pbschool.accounts.services import audit
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.meetings.models import MEETING_KINDS, Meeting, MeetingAttendance
from pbschool.points import services as points


def can_record(user, branch_id):
    """A branch secretary for their own branch; an admin for any."""
    return auth.has_role(user, "secretary", "admin") and auth.can_oversee_branch(user, branch_id)


def branch_members(branch_id):
    return db.session.scalars(select(User).where(User.branch_id == branch_id, User.is_active_account.is_(True))
                              .order_by(User.username)).all()


def _attendees(branch, user_ids):
    ids = set()
    for raw in user_ids or ():
        try:
            ids.add(int(raw))
        except (TypeError, ValueError) as exc:
            raise DomainError(_("出席人员有误"), "invalid_attendee", field="attendees") from exc
    members = {u.id: u for u in branch_members(branch.id)}
    strangers = ids - set(members)
    if strangers:
        raise DomainError(_("只能勾选本支部的党员"), "invalid_attendee", field="attendees")
    return [members[i] for i in sorted(ids)]


def _credit(meeting, members, actor):
    # Points count on the meeting's day (noon in the committee's time zone is 04:00 UTC).
    when = dt.datetime.combine(meeting.held_on, dt.time(4, 0))
    credited = 0
    for member in members:
        try:
            with db.session.begin_nested():
                db.session.add(MeetingAttendance(meeting_id=meeting.id, user_id=member.id))
        except IntegrityError:  # already marked present
            continue
        entry = points.record_event(member, "meeting_attended", f"meeting:{meeting.id}:user:{member.id}",
                                    occurred_at=when, reason=f"参加{meeting.kind_name}：{meeting.topic}",
                                    actor=actor)
        credited += entry is not None
    db.session.flush()
    return credited


def record_meeting(branch, kind, held_on, topic, attendee_ids, *, actor, notes=""):
    """Record a meeting of ``branch`` and credit each attendee's points once."""
    if branch is None or not can_record(actor, branch.id):
        raise DomainError(_("只能记录本支部的会议"), "forbidden", 403)
    if kind not in MEETING_KINDS:
        raise DomainError(_("请选择会议类型"), "invalid_kind", field="kind")
    if not isinstance(held_on, dt.date):
        raise DomainError(_("请填写会议日期"), "invalid_date", field="held_on")
    if held_on > points.local_date(clock.now()):
        raise DomainError(_("会议日期不能晚于今天"), "future_date", field="held_on")
    topic = (topic or "").strip()
    if not topic or len(topic) > 200:
        raise DomainError(_("请填写会议主题（不超过 200 个字符）"), "invalid_topic", field="topic")
    members = _attendees(branch, attendee_ids)
    meeting = Meeting(branch_id=branch.id, kind=kind, held_on=held_on, topic=topic, notes=(notes or "").strip(),
                      recorded_by_id=getattr(actor, "id", None), created_at=clock.now())
    db.session.add(meeting)
    db.session.flush()
    credited = _credit(meeting, members, actor)
    audit(actor, "meeting.record", meeting, f"{branch.code} {meeting.kind_name} {held_on} {topic}",
          attendees=len(members))
    return meeting, credited


def add_attendees(meeting, attendee_ids, *, actor):
    """Mark more members present (someone was left out); each is credited once."""
    if not can_record(actor, meeting.branch_id):
        raise DomainError(_("只能记录本支部的会议"), "forbidden", 403)
    members = _attendees(meeting.branch, attendee_ids)
    credited = _credit(meeting, members, actor)
    audit(actor, "meeting.attendees", meeting, f"+{credited}")
    return credited


# -- rhythm ------------------------------------------------------------------------------------

def _month_add(year, month, delta):
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def rhythm(branch_id, today=None):
    """How well the branch keeps the 三会一课 rhythm: the last three full months for the monthly
    meetings, the last full quarter for the quarterly ones. Returns status (green/amber/red), the
    share of slots kept, and a calendar strip of the last six months."""
    today = today or points.local_date(clock.now())
    months = [_month_add(today.year, today.month, -k) for k in range(6, 0, -1)]  # six full months
    first = dt.date(*months[0], 1)
    held = {}
    for kind, day in db.session.execute(select(Meeting.kind, Meeting.held_on).where(
            Meeting.branch_id == branch_id, Meeting.held_on >= first)):
        held[(kind, day.year, day.month)] = held.get((kind, day.year, day.month), 0) + 1
    strip = {kind: [(f"{y:04d}-{m:02d}", held.get((kind, y, m), 0)) for y, m in months] for kind in MEETING_KINDS}
    slots = kept = 0
    quarter_start = _month_add(today.year, ((today.month - 1) // 3) * 3 + 1, -3)
    quarter = [_month_add(*quarter_start, k) for k in range(3)]
    for kind, (_name, every) in MEETING_KINDS.items():
        if every == "month":
            for y, m in months[-3:]:
                slots += 1
                kept += held.get((kind, y, m), 0) > 0
        else:
            slots += 1
            kept += any(held.get((kind, y, m), 0) for y, m in quarter)
    share = kept / slots if slots else 0
    status = "green" if share >= 0.9 else "amber" if share >= 0.6 else "red"
    return {"status": status, "share": share, "kept": kept, "slots": slots, "strip": strip,
            "months": [f"{y:04d}-{m:02d}" for y, m in months]}
