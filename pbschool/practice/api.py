"""Practice and today's tasks in the JSON API (contract: /api/v1/me/tasks, /api/v1/practice)."""

from flask import g

from pbschool.api import api_route, field, json_body, ok
from pbschool.errors import DomainError
from pbschool.exams.api import QUESTION
from pbschool.practice import services
from pbschool.practice.models import MODES, Practice

TASKS = {
    "type": "object", "required": ["date", "items"],
    "properties": {
        "date": {"type": "string", "format": "date"},
        "streak": {"type": "integer", "description": "consecutive Beijing days studied, up to today"},
        "items": {"type": "array", "items": {
            "type": "object", "required": ["rule", "title", "points_today", "cap_today"],
            "properties": {"rule": {"type": "string"}, "title": {"type": "string"},
                           "category": {"type": "string"}, "points_today": {"type": "number"},
                           "cap_today": {"type": "number", "nullable": True},
                           "left_today": {"type": "number", "nullable": True}}}},
    },
}
START_BODY = {
    "type": "object", "required": ["mode"],
    "properties": {"mode": {"type": "string", "enum": list(MODES)}, "category": {"type": "string"},
                   "count": {"type": "integer", "minimum": 1, "maximum": services.MAX_COUNT}},
}
STARTED = {
    "type": "object", "required": ["practice_id", "questions"],
    "properties": {"practice_id": {"type": "integer"}, "mode": {"type": "string"},
                   "questions": {"type": "array", "items": QUESTION}},
}
FEEDBACK = {
    "type": "object", "required": ["correct", "answer", "explanation_html"],
    "properties": {"correct": {"type": "boolean"}, "answer": {}, "explanation_html": {"type": "string"}},
}
FINISHED = {
    "type": "object", "required": ["correct", "total", "points_awarded"],
    "properties": {"correct": {"type": "integer"}, "total": {"type": "integer"},
                   "points_awarded": {"type": "number"}},
}


@api_route("/me/tasks", summary="Today's points by rule (Beijing day) against their daily caps, and my streak",
           tag="practice", response=TASKS)
def my_tasks():
    return ok(services.tasks(g.api_user))


@api_route("/practice", methods=("POST",), summary="A practice paper: daily (earns points), category or wrong_book",
           tag="practice", body=START_BODY, response=STARTED, statuses=(409,))
def start_practice():
    data = json_body()
    mode = field(data, "mode", str)
    if mode not in MODES:
        raise DomainError("练习类型应为 daily、category 或 wrong_book", "invalid_mode", 400, field="mode")
    practice = services.start(g.api_user, mode, category=field(data, "category", str, required=False),
                              count=field(data, "count", int, required=False))
    return ok({"practice_id": practice.id, "mode": practice.mode,
               "questions": [services.question_payload(s) for s in services.slots(practice)]})


@api_route("/practice/<int:practice_id>", summary="One of my practice papers", tag="practice", statuses=(404,),
           response={"type": "object", "required": ["practice_id", "questions"],
                     "properties": {"practice_id": {"type": "integer"}, "mode": {"type": "string"},
                                    "finished": {"type": "boolean"}, "questions": {"type": "array"}}})
def get_practice(practice_id):
    practice = services.own_practice(practice_id, g.api_user)
    questions = []
    for slot in services.slots(practice):
        item = services.question_payload(slot)
        if slot.answered_at is not None:
            item["feedback"] = services.feedback(slot)
        questions.append(item)
    return ok({"practice_id": practice.id, "mode": practice.mode, "finished": practice.finished_at is not None,
               "questions": questions})


@api_route("/practice/<int:practice_id>/answers/<int:question_id>", methods=("PUT",), tag="practice",
           summary="Answer one question: feedback at once (the first answer counts; again gives the same)",
           body={"type": "object", "required": ["answer"], "properties": {"answer": {}}},
           response=FEEDBACK, statuses=(404, 409))
def answer_practice(practice_id, question_id):
    practice = services.own_practice(practice_id, g.api_user)
    data = json_body()
    if "answer" not in data:
        raise DomainError("缺少字段 answer", "missing_field", 400, field="answer")
    slot = services.answer(practice, question_id, data["answer"], g.api_user)
    return ok(services.feedback(slot))


@api_route("/practice/<int:practice_id>/finish", methods=("POST",), tag="practice", statuses=(404,),
           summary="Finish: the daily paper's points within its daily cap (once; again gives the same)",
           response=FINISHED)
def finish_practice(practice_id):
    practice = services.finish(services.own_practice(practice_id, g.api_user), g.api_user)
    return ok(_finished(practice))


def _finished(practice: Practice):
    return {"correct": practice.correct, "total": practice.total, "points_awarded": float(practice.points_awarded)}
