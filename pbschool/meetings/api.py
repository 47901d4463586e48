"""Meetings in the JSON API: a branch secretary records a meeting with its attendance."""

import datetime as dt

from flask import g
from sqlalchemy import select

from pbschool import auth
from pbschool.accounts.models import User
from pbschool.accounts.services import find_branch
from pbschool.api import api_route, field, json_body, ok, require_roles
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.meetings import services
from pbschool.meetings.models import MEETING_KINDS, Meeting

MEETING_BODY = {
    "type": "object", "required": ["kind", "held_on", "topic", "attendees"],
    "properties": {
        "kind": {"type": "string", "enum": list(MEETING_KINDS)},
        "held_on": {"type": "string", "format": "date"},
        "topic": {"type": "string"},
        "attendees": {"type": "array", "items": {"type": "string"}, "description": "usernames"},
        "branch": {"type": "string", "description": "branch code (admin); a secretary's own branch by default"},
        "notes": {"type": "string"},
        "key": {"type": "string", "minLength": 1, "maxLength": 64,
                "description": "one-time key: the same key again returns the first record and writes nothing"},
    },
}
MEETING_REPLY = {
    "type": "object", "required": ["id", "credited"],
    "properties": {
        "id": {"type": "integer"},
        "credited": {"type": "integer", "description": "attendees paid (by this post, or the first one)"},
        "capped": {"type": "array", "items": {"type": "string"},
                   "description": "attendees recorded but unpaid: the rhythm's allowance for the kind and period "
                                  "is used up"},
        "own_attendance_pending": {"type": "boolean",
                                   "description": "the recorder attended: recorded, unpaid until another "
                                                  "secretary or admin confirms it"},
        "replayed": {"type": "boolean", "description": "the same key again: this is the first record"},
    },
}


@api_route("/meetings", methods=("POST",), summary="Record a meeting of 三会一课 with its attendance. Each "
           "attendee is paid meeting_attended points as often as the rhythm allows per kind and period (an admin "
           "setting); the recorder's own attendance waits for someone else. The same key again returns the first "
           "record; the same branch, kind and day again is 409 duplicate_meeting", body=MEETING_BODY,
           response=MEETING_REPLY, statuses=(404, 409), tag="meetings")
def record_meeting():
    require_roles("secretary", "admin")
    data = json_body()
    kind = field(data, "kind", str)
    raw_day = field(data, "held_on", str)
    topic = field(data, "topic", str)
    names = field(data, "attendees", list)
    notes = field(data, "notes", str, required=False, default="")
    code = field(data, "branch", str, required=False)
    key = field(data, "key", str, required=False)
    try:
        held_on = dt.date.fromisoformat(raw_day)
    except ValueError as exc:
        raise DomainError("held_on 应为 YYYY-MM-DD", "invalid_field", 400, field="held_on") from exc
    branch = find_branch(code) if code else g.api_user.branch
    if branch is None:
        raise DomainError("找不到该支部", "branch_not_found", 404, field="branch")
    done = services.record_meeting(branch, kind, held_on, topic, _user_ids(names), actor=g.api_user,
                                   notes=notes, key=key)
    return ok(_reply(done))


def _user_ids(names):
    if not all(isinstance(n, str) for n in names):
        raise DomainError("attendees 应为用户名数组", "invalid_field", 400, field="attendees")
    users = db.session.scalars(select(User).where(User.username.in_(names))).all() if names else []
    if len(users) != len(set(names)):
        raise DomainError("出席名单中有不存在的用户", "user_not_found", 404, field="attendees")
    return [u.id for u in users]


def _reply(done):
    return {"id": done.meeting.id, "credited": done.credited, "capped": [u.username for u in done.capped],
            "own_attendance_pending": any(u.id == g.api_user.id for u in done.pending),
            "replayed": done.replayed}


@api_route("/meetings/<int:meeting_id>/attendees", methods=("POST",), summary="Mark more attendees of a "
           "recorded meeting present, or confirm a recorder's own attendance (someone else's only: nobody "
           "confirms their own); each is paid as the rhythm allows", tag="meetings",
           body={"type": "object", "required": ["attendees"],
                 "properties": {"attendees": {"type": "array", "items": {"type": "string"},
                                              "description": "usernames"}}},
           response=MEETING_REPLY, statuses=(404,))
def add_attendees(meeting_id):
    require_roles("secretary", "admin")
    meeting = db.session.get(Meeting, meeting_id)
    if meeting is None or not auth.can_oversee_branch(g.api_user, meeting.branch_id):
        raise DomainError("找不到该会议", "not_found", 404)
    names = field(json_body(), "attendees", list)
    return ok(_reply(services.mark_present(meeting, _user_ids(names), actor=g.api_user)))
