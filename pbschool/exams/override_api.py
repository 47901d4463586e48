"""Exam overrides in the JSON API: a member's (contract) or a branch's (extension) own terms."""

from flask import g, request

from pbschool import auth, clock
from pbschool.accounts.models import Branch, User
from pbschool.api import api_route, json_body, ok, require_roles
from pbschool.errors import NotFound
from pbschool.exams import overrides, services
from pbschool.exams.models import Exam
from pbschool.extensions import db

OVERRIDE_BODY = {
    "type": "object",
    "properties": {
        "extra_minutes": {"type": "integer", "minimum": 0, "maximum": overrides.MAX_EXTRA_MINUTES, "nullable": True},
        "closes_at": {"type": "string", "format": "date-time", "nullable": True},
        "extra_attempts": {"type": "integer", "minimum": 0, "maximum": overrides.MAX_EXTRA_ATTEMPTS,
                           "nullable": True},
    },
}
OVERRIDE = {
    "type": "object",
    "required": ["kind", "username", "branch", "extra_minutes", "closes_at", "extra_attempts", "set_by", "updated_at"],
    "properties": {
        "kind": {"type": "string", "enum": ["member", "branch"]},
        "username": {"type": "string", "nullable": True}, "branch": {"type": "string", "nullable": True},
        "extra_minutes": {"type": "integer", "nullable": True},
        "closes_at": {"type": "string", "format": "date-time", "nullable": True},
        "extra_attempts": {"type": "integer", "nullable": True},
        "set_by": {"type": "string", "nullable": True}, "updated_at": {"type": "string", "format": "date-time"},
        "effective": {"type": "object", "properties": {
            "time_limit_seconds": {"type": "integer"},
            "closes_at": {"type": "string", "format": "date-time", "nullable": True},
            "attempts_left": {"type": "integer"}}},
    },
}
REMOVED = {"type": "object", "required": ["removed"], "properties": {"removed": {"type": "boolean"}}}


def _staff_exam(exam_id):
    require_roles("admin", "secretary")
    exam = db.session.get(Exam, exam_id)
    if exam is None:
        raise NotFound("找不到这场考试")
    return exam


def _member(username):
    """The member, if the caller may set their terms; else 404 (a secretary learns nothing of other branches)."""
    ok_name = len(username) <= 64 and "\x00" not in username  # PostgreSQL refuses NUL in a string
    user = db.session.scalar(db.select(User).where(User.username == username)) if ok_name else None
    if user is None or not auth.can_set_exam_terms(g.api_user, user.branch_id):
        raise NotFound("找不到该党员")
    return user


def _branch(code):
    ok_code = len(code) <= 32 and "\x00" not in code
    branch = db.session.scalar(db.select(Branch).where(Branch.code == code)) if ok_code else None
    if branch is None or not auth.can_set_exam_terms(g.api_user, branch.id):
        raise NotFound("找不到该支部")
    return branch


def _member_json(exam, user, row):
    body = overrides.as_json(row)
    terms = overrides.terms_for(exam, user)
    body["effective"] = {"time_limit_seconds": terms.time_limit_seconds, "closes_at": clock.isoformat(terms.closes_at),
                         "attempts_left": services.attempts_left(exam, user, terms)}
    return body


def _row_or_404(row):
    if row is None:
        raise NotFound("没有为其设置考试特殊安排", "no_override")
    return row


@api_route("/exams/<int:exam_id>/overrides", tag="exams", statuses=(404,),
           summary="An exam's overrides (admin; secretary: their branch and its members)",
           response={"type": "array", "items": OVERRIDE})
def list_overrides(exam_id):
    exam = _staff_exam(exam_id)
    return ok([overrides.as_json(row) for row in overrides.overrides_of(exam, g.api_user)])


# One rule per path for its three methods: Werkzeug answers 405 instead of 404 for an id beyond the
# bounded int converter when a path's methods are split over several rules.
def _document(rule, summaries):
    """Each method's own summary; only PUT has a body; DELETE answers {"removed"}."""
    from pbschool.api import _openapi_path, _paths

    ops = _paths[_openapi_path("/" + rule.lstrip("/"))]
    for method, summary in summaries.items():
        ops[method]["summary"] = summary
        if method != "put":
            ops[method].pop("requestBody", None)
    ops["delete"]["responses"]["200"]["content"]["application/json"]["schema"] = REMOVED


MEMBER_RULE = "/exams/<int:exam_id>/overrides/<username>"
BRANCH_RULE = "/exams/<int:exam_id>/overrides/branch/<code>"


@api_route(MEMBER_RULE, methods=("GET", "PUT", "DELETE"), tag="exams", statuses=(404,), body=OVERRIDE_BODY,
           summary="One member's own terms for an exam (admin; secretary: own branch)", response=OVERRIDE)
def member_override(exam_id, username):
    exam = _staff_exam(exam_id)
    user = _member(username)
    if request.method == "PUT":
        return ok(_member_json(exam, user, overrides.set_member_override(exam, user, json_body(), g.api_user)))
    if request.method == "DELETE":
        return ok({"removed": overrides.remove_member_override(exam, user, g.api_user)})
    return ok(_member_json(exam, user, _row_or_404(overrides.find(exam, user=user))))


@api_route(BRANCH_RULE, methods=("GET", "PUT", "DELETE"), tag="exams", statuses=(404,), body=OVERRIDE_BODY,
           summary="One branch's terms for an exam (admin; secretary: own branch)", response=OVERRIDE)
def branch_override(exam_id, code):
    exam = _staff_exam(exam_id)
    branch = _branch(code)
    if request.method == "PUT":
        return ok(overrides.as_json(overrides.set_branch_override(exam, branch, json_body(), g.api_user)))
    if request.method == "DELETE":
        return ok({"removed": overrides.remove_branch_override(exam, branch, g.api_user)})
    return ok(overrides.as_json(_row_or_404(overrides.find(exam, branch=branch))))


_document(MEMBER_RULE, {
    "get": "One member's own terms for an exam (admin; secretary: own branch)",
    "put": "Set one member's own terms (replaces them; in force at once, an attempt in progress included)",
    "delete": "Remove one member's own terms (idempotent)"})
_document(BRANCH_RULE, {
    "get": "One branch's terms for an exam (admin; secretary: own branch)",
    "put": "Set one branch's terms (its members' own overrides win field by field)",
    "delete": "Remove one branch's terms (idempotent)"})


@api_route("/attempts/<int:attempt_id>/deadline", tag="exams", statuses=(404,),
           summary="My attempt's current deadline (an override may have moved it): one row, for the countdown",
           response={"type": "object", "required": ["deadline", "server_now", "state"], "properties": {
               "deadline": {"type": "string", "format": "date-time"},
               "server_now": {"type": "string", "format": "date-time"}, "state": {"type": "string"}}})
def attempt_deadline(attempt_id):
    from pbschool.exams.models import Attempt

    attempt = db.session.get(Attempt, attempt_id)
    if attempt is None or attempt.user_id != g.api_user.id:
        raise NotFound("找不到这次答题")
    return ok({"deadline": clock.isoformat(attempt.deadline_at), "server_now": clock.isoformat(clock.now()),
               "state": attempt.state})
