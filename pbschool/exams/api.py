"""Exams in the JSON API: list, create, start/resume, save an answer, submit, results."""

import datetime as dt

from flask import g

from pbschool import auth, clock
from pbschool.api import api_route, field, json_body, ok
from pbschool.errors import DomainError, NotFound
from pbschool.exams import late, marking, services
from pbschool.exams.models import Attempt, Exam
from pbschool.extensions import db

EXAM_ITEM = {
    "type": "object",
    "required": ["id", "title", "time_limit_seconds", "opens_at", "closes_at", "attempts_left"],
    "properties": {
        "id": {"type": "integer"}, "title": {"type": "string"}, "time_limit_seconds": {"type": "integer"},
        "opens_at": {"type": "string", "format": "date-time", "nullable": True},
        "closes_at": {"type": "string", "format": "date-time", "nullable": True},
        "attempts_left": {"type": "integer"},
    },
}
SECTION = {
    "type": "object", "required": ["bank", "count", "points_each"],
    "properties": {"bank": {"type": "string"}, "category": {"type": "string"},
                   "difficulty": {"type": "integer", "minimum": 1, "maximum": 5},
                   "count": {"type": "integer", "minimum": 1}, "points_each": {"type": "number"}},
}
EXAM_BODY = {
    "type": "object",
    "required": ["title", "time_limit_seconds", "max_attempts", "pass_score", "points_on_pass", "sections"],
    "properties": {
        "title": {"type": "string"}, "time_limit_seconds": {"type": "integer"},
        "opens_at": {"type": "string", "format": "date-time"}, "closes_at": {"type": "string", "format": "date-time"},
        "max_attempts": {"type": "integer"}, "pass_score": {"type": "number"},
        "points_on_pass": {"type": "number"}, "shuffle": {"type": "boolean"},
        "partial_credit": {"type": "boolean"},
        "grading_method": {"type": "string", "enum": ["highest", "last"]},
        "review": {"type": "string", "enum": ["score", "answers", "explanations"]},
        "review_when": {"type": "string", "enum": ["submit", "close"]},
        "audience": {"type": "string", "enum": ["all", "branches", "job_posts"]},
        "branches": {"type": "array", "items": {"type": "string"}},
        "job_posts": {"type": "array", "items": {"type": "string"}},
        "certificate": {"type": "boolean", "description": "a passed attempt gets a certificate"},
        "sections": {"type": "array", "items": SECTION},
    },
}
QUESTION = {
    "type": "object",
    "required": ["id", "type", "stem_html", "options", "saved"],
    "properties": {
        "id": {"type": "integer"},
        "type": {"type": "string", "enum": ["single", "multiple", "truefalse", "blank", "short"]},
        "stem_html": {"type": "string"},
        "options": {"type": "array", "items": {"type": "object", "properties": {
            "key": {"type": "string"}, "text_html": {"type": "string"}}}},
        "blanks": {"type": "integer"},
        "saved": {"nullable": True},
    },
}
ATTEMPT_STARTED = {
    "type": "object", "required": ["attempt_id", "deadline", "server_now", "questions"],
    "properties": {"attempt_id": {"type": "integer"}, "deadline": {"type": "string", "format": "date-time"},
                   "server_now": {"type": "string", "format": "date-time"},
                   "questions": {"type": "array", "items": QUESTION}},
}
RESULT = {
    "type": "object", "required": ["score", "max_score", "passed", "points_awarded", "state"],
    "properties": {"score": {"type": "number", "nullable": True}, "max_score": {"type": "number"},
                   "passed": {"type": "boolean", "nullable": True}, "points_awarded": {"type": "number"},
                   "state": {"type": "string", "enum": ["in_progress", "submitted", "pending_review"]}},
}
RESULT_ROW = {
    "type": "object",
    "properties": {"attempt_id": {"type": "integer"}, "username": {"type": "string"}, "name": {"type": "string"},
                   "branch": {"type": "string", "nullable": True}, "score": {"type": "number", "nullable": True},
                   "max_score": {"type": "number", "nullable": True}, "passed": {"type": "boolean", "nullable": True},
                   "state": {"type": "string"}},
}


def _num(value):
    return None if value is None else float(value)


def parse_time(data, name):
    raw = field(data, name, str, required=False)
    if raw is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise DomainError(f"字段 {name} 应为 ISO 8601 时间", "invalid_field", 400, field=name) from None
    return moment


def _exam_for_member(exam_id):
    exam = db.session.get(Exam, exam_id)
    if exam is None or not exam.is_published or not exam.admits(g.api_user):
        raise NotFound(_msg_exam())
    return exam


def _msg_exam():
    return "找不到这场考试"


def _own_attempt(attempt_id):
    attempt = db.session.get(Attempt, attempt_id)
    if attempt is None or attempt.user_id != g.api_user.id:
        raise NotFound("找不到这次答题")
    return attempt


def result_payload(attempt):
    return {"score": _num(attempt.score), "max_score": _num(attempt.max_score), "passed": attempt.passed,
            "points_awarded": float(attempt.points_awarded or 0), "state": attempt.state}


@api_route("/exams", summary="Exams open to me now", tag="exams",
           response={"type": "array", "items": EXAM_ITEM})
def list_exams():
    user = g.api_user
    services.bulk_close_overdue_for(user)
    # time limit, close and attempts as they are for this member (their overrides included)
    return ok([{"id": exam.id, "title": exam.title, "time_limit_seconds": terms.time_limit_seconds,
                "opens_at": clock.isoformat(exam.opens_at), "closes_at": clock.isoformat(terms.closes_at),
                "attempts_left": left} for exam, left, terms in services.exams_with_terms(user)])


@api_route("/exams/upcoming", summary="Exams I will be able to sit that open soon (EXAM_OPENS_SOON_DAYS)",
           tag="exams", response={"type": "array", "items": EXAM_ITEM})
def upcoming_exams():
    user = g.api_user
    return ok([{"id": exam.id, "title": exam.title, "time_limit_seconds": exam.time_limit_seconds,
                "opens_at": clock.isoformat(exam.opens_at), "closes_at": clock.isoformat(exam.closes_at),
                "attempts_left": exam.max_attempts} for exam in services.exams_opening_soon(user)])


@api_route("/exams", methods=("POST",), summary="Create an exam (admin)", tag="exams", body=EXAM_BODY,
           response={"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
           statuses=(404,))
def create_exam():
    auth.require(auth.is_admin(g.api_user))
    data = json_body()
    values = {
        "title": field(data, "title", str),
        "time_limit_seconds": field(data, "time_limit_seconds", int),
        "opens_at": parse_time(data, "opens_at"), "closes_at": parse_time(data, "closes_at"),
        "max_attempts": field(data, "max_attempts", int),
        "pass_score": field(data, "pass_score", (int, float)),
        "points_on_pass": field(data, "points_on_pass", (int, float)),
        "shuffle": field(data, "shuffle", bool, required=False, default=True),
        "partial_credit": field(data, "partial_credit", bool, required=False, default=False),
        "grading_method": field(data, "grading_method", str, required=False),
        "review": field(data, "review", str, required=False),
        "review_when": field(data, "review_when", str, required=False),
        "audience": field(data, "audience", str, required=False),
        "job_posts": field(data, "job_posts", list, required=False, default=[]),
        "description": field(data, "description", str, required=False, default=""),
        "certificate": field(data, "certificate", bool, required=False, default=False),
    }
    from pbschool.accounts.services import resolve_branch

    values["branches"] = [resolve_branch(services.clean(code)) for code in field(
        data, "branches", list, required=False, default=[]) if isinstance(code, str)]
    if not all(isinstance(p, str) for p in values["job_posts"]):
        raise DomainError("字段 job_posts 应为字符串数组", "invalid_field", 400, field="job_posts")
    sections = []
    for raw in field(data, "sections", list):
        if not isinstance(raw, dict):
            raise DomainError("sections 的每一项应为对象", "invalid_field", 400, field="sections")
        sections.append({"bank": field(raw, "bank", (str, int)),
                         "category": field(raw, "category", str, required=False),
                         "difficulty": field(raw, "difficulty", int, required=False),
                         "count": field(raw, "count", int), "points_each": field(raw, "points_each", (int, float))})
    values["sections"] = sections
    exam = services.create_exam(values, actor=g.api_user)
    return ok({"id": exam.id})


@api_route("/exams/<int:exam_id>/attempts", methods=("POST",), summary="Start, or resume the unfinished attempt",
           tag="exams", response=ATTEMPT_STARTED, statuses=(404, 409))
def start_attempt(exam_id):
    exam = _exam_for_member(exam_id)
    current = services.open_attempt(exam, g.api_user)
    if current is not None and services.finish_if_overdue(current):
        db.session.commit()  # keep the grading even if starting anew is refused below
    attempt = services.start_attempt(exam, g.api_user)
    return ok({"attempt_id": attempt.id, "deadline": clock.isoformat(attempt.deadline_at),
               "server_now": clock.isoformat(clock.now()), "questions": services.paper(attempt)})


def _time_up_if_overdue(attempt, question_id=None):
    if services.finish_if_overdue(attempt) or question_id is not None:
        # Keep the grading although this request answers with an error (which rolls back), and the
        # answer as "arrived late" (never in the score; exams/late.py).
        db.session.commit()
        if question_id is not None:
            late.keep(attempt, question_id, late.request_body())
            db.session.commit()
        raise DomainError("考试时间已到，答案未保存", "time_up", 409)


def _save_after_time_up(attempt_id, question_id):
    """The TIME-UP branch of a save: the attempt is past its deadline and grace. Grade it now if it is
    still in progress, and keep the answer as arrived late (both committed, although this request
    answers 409 time_up)."""
    db.session.rollback()  # let go of the shared lock: grading takes the row for update
    _time_up_if_overdue(_own_attempt(attempt_id), question_id)


@api_route("/attempts/<int:attempt_id>/answers/<int:question_id>", methods=("PUT",), summary="Save one answer",
           tag="exams", body={"type": "object", "required": ["answer"], "properties": {
               "answer": {}, "given_at": {"type": "string", "format": "date-time"}}},
           response={"type": "object", "properties": {"saved": {}, "saved_at": {"type": "string"}}},
           statuses=(404, 409))
def save_answer(attempt_id, question_id):
    # The hot path of exam day (issue 13): one statement locks the attempt FOR SHARE and reads it with
    # the slot and the shape of the question shown; one guarded upsert writes. Ownership (404) first,
    # then the deadline (409), the question (404) and the shape (400).
    target = services.lock_for_save(attempt_id, question_id)
    if target is None or target.user_id != g.api_user.id:
        raise NotFound("找不到这次答题")
    now = clock.now()
    if services.is_overdue(target, now):
        _save_after_time_up(attempt_id, question_id)
    data = json_body()
    if "answer" not in data:
        raise DomainError("缺少字段 answer", "missing_field", 400, field="answer")
    services.save_locked(target, question_id, data["answer"], now)
    return ok({"saved": data["answer"], "saved_at": clock.isoformat(now)})


@api_route("/attempts/<int:attempt_id>/submit", methods=("POST",), summary="Finish and grade (idempotent)",
           tag="exams", response=RESULT, statuses=(404,))
def submit_attempt(attempt_id):
    attempt = _own_attempt(attempt_id)
    overdue = services.is_overdue(attempt)
    attempt = services.submit_attempt(attempt, auto=overdue)
    return ok(result_payload(attempt))


@api_route("/attempts/<int:attempt_id>", summary="One of my attempts, with the result as the review setting allows",
           tag="exams", statuses=(404,),
           response={"type": "object", "required": ["id", "exam_id", "state", "deadline"],
                     "properties": {"id": {"type": "integer"}, "exam_id": {"type": "integer"},
                                    "state": {"type": "string"}, "deadline": {"type": "string"},
                                    "preview": {"type": "boolean"}, "result": RESULT, "questions": {"type": "array"},
                                    "review": {"type": "array", "nullable": True},
                                    "certificate": {"type": "object", "required": ["code", "pdf_url"],
                                                    "properties": {"code": {"type": "string"},
                                                                   "pdf_url": {"type": "string"}}}}})
def get_attempt(attempt_id):
    attempt = _own_attempt(attempt_id)
    if services.finish_if_overdue(attempt):
        db.session.flush()
    body = {"id": attempt.id, "exam_id": attempt.exam_id, "number": attempt.number, "state": attempt.state,
            "deadline": clock.isoformat(attempt.deadline_at), "server_now": clock.isoformat(clock.now()),
            "started_at": clock.isoformat(attempt.started_at),
            "submitted_at": clock.isoformat(attempt.submitted_at), "preview": attempt.is_preview}
    if attempt.state == "in_progress":
        body["questions"] = services.paper(attempt)
    else:
        body["result"] = result_payload(attempt)
        body["review"] = services.review(attempt)
        from pbschool.certificates.api import attempt_certificate

        certificate = attempt_certificate(attempt)
        if certificate is not None:
            body["certificate"] = certificate
    return ok(body)


@api_route("/exams/<int:exam_id>/results", summary="Attempts at an exam (admin; secretary: own branch)",
           tag="exams", statuses=(404,), response={"type": "array", "items": RESULT_ROW})
def exam_results(exam_id):
    user = g.api_user
    auth.require(auth.has_role(user, "admin", "secretary"))
    exam = db.session.get(Exam, exam_id)
    if exam is None:
        raise NotFound("找不到这场考试")
    rows = services.results_query(exam, user)
    return ok([{"attempt_id": a.id, "username": a.user.username, "name": a.user.name,
                "branch": a.user.branch.code if a.user.branch else None, "score": _num(a.score),
                "max_score": _num(a.max_score), "passed": a.passed, "state": a.state} for a in rows])



MARK_BODY = {
    "type": "object", "required": ["question_id", "score"],
    "properties": {"question_id": {"type": "integer"}, "score": {"type": "number"},
                   "feedback": {"type": "string"}},
}


@api_route("/attempts/<int:attempt_id>/marks", methods=("POST",),
           summary="Mark one short answer awaiting marking (admin, lecturer; never one's own paper)",
           tag="exams", body=MARK_BODY, response=RESULT, statuses=(404, 409))
def mark_attempt(attempt_id):
    auth.require(auth.has_role(g.api_user, "admin", "lecturer"))
    attempt = db.session.get(Attempt, attempt_id)
    if attempt is None:
        raise NotFound("找不到这次答题")
    data = json_body()
    question_id = field(data, "question_id", int)
    score = field(data, "score", (int, float))
    feedback = field(data, "feedback", str, required=False, default="")
    attempt = marking.mark_answer(attempt, question_id, score, g.api_user, feedback)
    return ok(result_payload(attempt))


REGRADE_CHANGE = {
    "type": "object",
    "required": ["attempt_id", "username", "score_before", "score_after", "passed_before", "passed_after"],
    "properties": {"attempt_id": {"type": "integer"}, "username": {"type": "string"},
                   "score_before": {"type": "number", "nullable": True},
                   "score_after": {"type": "number", "nullable": True},
                   "passed_before": {"type": "boolean", "nullable": True},
                   "passed_after": {"type": "boolean", "nullable": True},
                   "points": {"type": "number"}},
}


@api_route("/exams/<int:exam_id>/regrade", methods=("POST",), tag="exams", statuses=(404,),
           summary="Mark every finished attempt again by the current answer keys (admin); dry run first",
           body={"type": "object", "required": ["dry_run"], "properties": {"dry_run": {"type": "boolean"}}},
           response={"type": "object", "required": ["changes"], "properties": {
               "changes": {"type": "array", "items": REGRADE_CHANGE}, "applied": {"type": "boolean"},
               "skipped": {"type": "array", "items": {"type": "object", "properties": {
                   "attempt_id": {"type": "integer"}, "username": {"type": "string"},
                   "code": {"type": "string"}}}}}})
def regrade_exam(exam_id):
    auth.require(auth.is_admin(g.api_user))
    exam = db.session.get(Exam, exam_id)
    if exam is None:
        raise NotFound("找不到这场考试")
    dry_run = field(json_body(), "dry_run", bool)
    outcome = services.regrade(exam, dry_run=dry_run, actor=g.api_user)
    body = {"changes": [c.as_json() for c in outcome.changes], "applied": outcome.applied,
            "skipped": [{"attempt_id": a.id, "username": a.user.username, "code": code}
                        for a, code in outcome.skipped]}
    if dry_run:
        db.session.rollback()  # a dry run writes nothing, not even what grading touched in memory
    return ok(body)
