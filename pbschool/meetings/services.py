"""Recording meetings, crediting attendance, and the branch's meeting rhythm. Flush, never commit."""

import dataclasses
import datetime as dt
import re

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from pbschool import auth, clock
from pbschool.accounts.models import User
from pbschool.accounts.services import audit
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.meetings.models import MEETING_KINDS, Meeting, MeetingAttendance
from pbschool.points import services as points
from pbschool.points.models import LedgerEntry


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


# -- attendance points by the rhythm ------------------------------------------------------------

#: The admin setting: per kind, how many attendances pay in one period of its rhythm (DOMAIN.md:
#: once a month or once a quarter, so 1 by default); beyond that attendance is recorded, unpaid.
CAPS_SETTING = "meeting_attendance_caps"
MAX_CAP = 31


def attendance_caps():
    """{kind: paid attendances per member and period}, the admin's setting over the defaults (1)."""
    stored = points.get_setting(CAPS_SETTING, {})
    stored = stored if isinstance(stored, dict) else {}
    caps = {}
    for kind in MEETING_KINDS:
        value = stored.get(kind, 1)
        caps[kind] = value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_CAP else 1
    return caps


def save_attendance_caps(values, *, actor):
    """Set how many attendances of each kind pay per period; each a whole number 0–31, else a
    DomainError naming the kind's field."""
    caps = {}
    for kind, (name, _every) in MEETING_KINDS.items():
        raw = str(values.get(kind) if values.get(kind) is not None else "").strip()
        if not re.fullmatch(r"\d{1,2}", raw) or int(raw) > MAX_CAP:
            raise DomainError(_("%(kind)s：请填写 0 到 %(max)d 之间的整数", kind=_(name), max=MAX_CAP),
                              "invalid_cap", field=kind)
        caps[kind] = int(raw)
    points.set_setting(CAPS_SETTING, caps, actor)
    return caps


def rhythm_period(kind, day):
    """The period of ``kind``'s rhythm that ``day`` falls in: '2026-03' (monthly) or '2026-Q1'."""
    return points.period_of(day) if MEETING_KINDS[kind][1] == "month" else points.quarter_of(day)


def _pay(meeting, member, actor):
    """Credit ``member``'s attendance if the rhythm's allowance for the kind and period has room.
    Each paid attendance takes a numbered slot whose ledger source key is unique, so the allowance
    holds under parallel requests without a check-then-insert. True when paid."""
    rule = points.rule_for("meeting_attended")
    if rule is not None and not rule.is_active:
        return False
    cap = attendance_caps()[meeting.kind]
    period = rhythm_period(meeting.kind, meeting.held_on)
    keys = [f"attendance:{meeting.kind}:{period}:{slot}:user:{member.id}" for slot in range(1, cap + 1)]
    taken = set(db.session.scalars(select(LedgerEntry.source_key).where(LedgerEntry.source_key.in_(keys)))) \
        if keys else set()
    # Points count on the meeting's day (noon in the committee's time zone is 04:00 UTC).
    when = dt.datetime.combine(meeting.held_on, dt.time(4, 0))
    for key in keys:
        if key in taken:
            continue
        entry = points.record_event(member, "meeting_attended", key, occurred_at=when,
                                    reason=f"参加{meeting.kind_name}：{meeting.topic}", actor=actor)
        if entry is not None:
            return True
    return False


def _credit(meeting, members, actor):
    """Mark ``members`` present and pay what may be paid. Nobody credits themself: the recorder's own
    attendance is recorded as pending, for another secretary or admin to confirm (and pay) later.
    Returns {"paid", "capped", "pending"}: the members of this call in each state."""
    outcome = {"paid": [], "capped": [], "pending": []}
    present = {a.user_id: a for a in db.session.scalars(
        select(MeetingAttendance).where(MeetingAttendance.meeting_id == meeting.id))}
    for member in members:
        own = auth.is_self(actor, member)
        if member.id in present:
            if own or present[member.id].credit != "pending":
                if present[member.id].credit == "pending":
                    outcome["pending"].append(member)
                continue
            # confirming someone's own attendance: one of parallel confirmations wins
            won = db.session.execute(
                update(MeetingAttendance).where(MeetingAttendance.id == present[member.id].id,
                                                MeetingAttendance.credit == "pending")
                .values(credit="capped").execution_options(synchronize_session=False)).rowcount
            if not won:
                continue
            attendance = db.session.scalar(select(MeetingAttendance).where(
                MeetingAttendance.id == present[member.id].id).execution_options(populate_existing=True))
        else:
            attendance = MeetingAttendance(meeting_id=meeting.id, user_id=member.id,
                                           credit="pending" if own else "capped")
            try:
                with db.session.begin_nested():
                    db.session.add(attendance)
            except IntegrityError:  # marked present by a parallel request
                continue
        if own:
            outcome["pending"].append(member)
        elif _pay(meeting, member, actor):
            attendance.credit = "paid"
            outcome["paid"].append(member)
        else:
            outcome["capped"].append(member)
    db.session.flush()
    return outcome


@dataclasses.dataclass
class Recorded:
    """What recording a meeting did. Unpacks as ``meeting, credited`` (the number paid now)."""

    meeting: Meeting
    paid: list = dataclasses.field(default_factory=list)
    capped: list = dataclasses.field(default_factory=list)
    pending: list = dataclasses.field(default_factory=list)
    #: The same key again: the first record, and nothing new written.
    replayed: bool = False

    @property
    def credited(self):
        return len(self.paid)

    def __iter__(self):
        return iter((self.meeting, self.credited))


def _replay(meeting):
    states = {"paid": [], "capped": [], "pending": []}
    for attendance in meeting.attendances:
        states[attendance.credit].append(attendance.user)
    return Recorded(meeting, replayed=True, **states)


def _check_key(key):
    if key is None:
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= 64:
        raise DomainError(_("key 应为 1–64 个字符"), "invalid_field", 400, field="key")
    return key


def find_by_key(actor, key):
    """The meeting ``actor`` recorded with this one-time key, or None."""
    if key is None or getattr(actor, "id", None) is None:
        return None
    return db.session.scalar(select(Meeting).where(Meeting.recorded_by_id == actor.id, Meeting.key == key))


def record_meeting(branch, kind, held_on, topic, attendee_ids, *, actor, notes="", key=None):
    """Record a meeting of ``branch`` and pay each attendee's points as the rhythm allows.

    ``key`` (the form's one-time key, or the API's) makes a repeat return the first record with
    nothing written; another meeting of the same branch, kind and day is 409 ``duplicate_meeting``
    (a unique constraint, so parallel posts give one record). Returns a ``Recorded``."""
    if branch is None or not can_record(actor, branch.id):
        raise DomainError(_("只能记录本支部的会议"), "forbidden", 403)
    key = _check_key(key)
    first = find_by_key(actor, key)
    if first is not None:
        return _replay(first)
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
                      recorded_by_id=getattr(actor, "id", None), key=key, created_at=clock.now())
    try:
        with db.session.begin_nested():
            db.session.add(meeting)
    except IntegrityError as exc:
        first = find_by_key(actor, key)  # the same key posted in parallel
        if first is not None:
            return _replay(first)
        raise DomainError(_("本支部这一天已经记录过一次%(kind)s（%(day)s），同一天的同类会议只记录一次",
                            kind=_(MEETING_KINDS[kind][0]), day=held_on.isoformat()),
                          "duplicate_meeting", 409, field="held_on") from exc
    outcome = _credit(meeting, members, actor)
    audit(actor, "meeting.record", meeting, f"{branch.code} {meeting.kind_name} {held_on} {topic}",
          attendees=len(members), paid=len(outcome["paid"]), pending=len(outcome["pending"]))
    return Recorded(meeting, **outcome)


def mark_present(meeting, attendee_ids, *, actor):
    """Mark more members present (someone was left out), or confirm a recorder's own attendance;
    each is paid once, as the rhythm allows, and never by themself. Returns a ``Recorded``."""
    if not can_record(actor, meeting.branch_id):
        raise DomainError(_("只能记录本支部的会议"), "forbidden", 403)
    members = _attendees(meeting.branch, attendee_ids)
    outcome = _credit(meeting, members, actor)
    audit(actor, "meeting.attendees", meeting, f"+{len(outcome['paid'])}")
    return Recorded(meeting, **outcome)


def add_attendees(meeting, attendee_ids, *, actor):
    """``mark_present``, returning how many were paid."""
    return mark_present(meeting, attendee_ids, actor=actor).credited


def pending_attendees(meeting):
    """Members whose own attendance waits for someone else's confirmation."""
    return db.session.scalars(select(User).join(MeetingAttendance, MeetingAttendance.user_id == User.id).where(
        MeetingAttendance.meeting_id == meeting.id, MeetingAttendance.credit == "pending")
        .order_by(User.username)).all()


# -- rhythm ------------------------------------------------------------------------------------

def _month_add(year, month, delta):
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def rhythm(branch_id, today=None):
    """How well the branch keeps the 三会一课 rhythm: the last three full months for the monthly
    meetings, the last full quarter for the quarterly ones. Returns status (green/amber/red), the
    share of slots kept, a calendar strip of the last five months and this one, and the kinds not
    yet held this month (monthly ones) or this quarter (quarterly ones)."""
    today = today or points.local_date(clock.now())
    months = [_month_add(today.year, today.month, -k) for k in range(6, 0, -1)]  # six full months
    first = dt.date(*months[0], 1)
    held = {}
    for kind, day in db.session.execute(select(Meeting.kind, Meeting.held_on).where(
            Meeting.branch_id == branch_id, Meeting.held_on >= first, Meeting.held_on <= today)):
        held[(kind, day.year, day.month)] = held.get((kind, day.year, day.month), 0) + 1
    # The strip ends with the month under way, so a meeting just recorded shows at once; the
    # status is judged on full months only.
    shown = months[1:] + [(today.year, today.month)]
    strip = {kind: [(f"{y:04d}-{m:02d}", held.get((kind, y, m), 0)) for y, m in shown] for kind in MEETING_KINDS}
    this_quarter = [_month_add(today.year, ((today.month - 1) // 3) * 3 + 1, k) for k in range(3)]
    missing = [kind for kind, (_name, every) in MEETING_KINDS.items()
               if not any(held.get((kind, y, m), 0) for y, m in
                          ([(today.year, today.month)] if every == "month" else this_quarter))]
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
            "months": [f"{y:04d}-{m:02d}" for y, m in shown], "missing": missing,
            "this_month": f"{today.year:04d}-{today.month:02d}", "this_quarter": points.quarter_of(today)}
