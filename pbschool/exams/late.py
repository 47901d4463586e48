"""Answers that arrive after the deadline plus grace (a phone that was offline until then).

The API still answers 409 ``time_up`` and the answer never enters the score; it is kept as "arrived
late" so that staff can see what the member gave and reopen the attempt with an override. Kept only
for an attempt the deadline closed (not one the member handed in), only for a question of that attempt,
only in the shape the question takes (as an in-time save would store it), once per attempt and question:
the latest arrival wins, ``arrivals`` counts them. ``given_at``, the device's own time, is clamped to
the attempt's start … the arrival and shown as the device's claim; nothing is decided by it.
"""

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from pbschool import clock
from pbschool.errors import DomainError
from pbschool.exams.models import AttemptQuestion, LateAnswer
from pbschool.extensions import db


def _given_at(raw, attempt, now):
    if not isinstance(raw, str) or len(raw) > 40:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return min(max(moment, attempt.started_at), now).replace(microsecond=0)


def request_body():
    """This request's JSON object, or None: a late answer's body is never a reason for another error
    than ``time_up`` (the deadline is checked first)."""
    from flask import request

    try:
        body = request.get_json(silent=True)
    except DomainError:
        return None
    return body if isinstance(body, dict) else None


def keep(attempt, question_id, body, now=None):
    """Keep an answer that arrived too late for ``attempt`` (owned by the caller, already graded).
    ``body`` is the request's JSON object or None. Returns the row, or None when nothing is kept.
    Flushes; never raises for what the device sent."""
    now = now or clock.now()
    if not attempt.is_auto_submitted or not isinstance(body, dict) or "answer" not in body:
        return None
    slot = db.session.scalar(select(AttemptQuestion).where(AttemptQuestion.attempt_id == attempt.id,
                                                           AttemptQuestion.question_id == question_id)
                             .options(joinedload(AttemptQuestion.version)))
    if slot is None:
        return None
    shown = slot.shown
    try:
        shown.kind.check_shape(body["answer"], shown, slot.option_order)
    except (DomainError, ValueError, TypeError):
        return None
    value = shown.kind.canonical(body["answer"], slot.option_order)
    given_at = _given_at(body.get("given_at"), attempt, now)
    _upsert(attempt.id, question_id, value, given_at, now)
    return db.session.scalar(select(LateAnswer).where(LateAnswer.attempt_id == attempt.id,
                                                      LateAnswer.question_id == question_id)
                             .execution_options(populate_existing=True))


def _upsert(attempt_id, question_id, value, given_at, now):
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(LateAnswer).values(attempt_id=attempt_id, question_id=question_id, value=value,
                                     given_at=given_at, arrived_at=now, arrivals=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["attempt_id", "question_id"],
        set_={"value": stmt.excluded.value, "given_at": stmt.excluded.given_at,
              "arrived_at": stmt.excluded.arrived_at, "arrivals": LateAnswer.arrivals + 1})
    db.session.execute(stmt)


def for_attempt(attempt):
    """The attempt's late answers in paper order, each as {"position", "question_id", "answer_text",
    "given_at", "arrived_at", "arrivals"}; the answer shown as the member saw the options."""
    rows = db.session.scalars(select(LateAnswer).where(LateAnswer.attempt_id == attempt.id)).all()
    if not rows:
        return []
    slots = {s.question_id: s for s in db.session.scalars(
        select(AttemptQuestion).where(AttemptQuestion.attempt_id == attempt.id,
                                      AttemptQuestion.question_id.in_([r.question_id for r in rows]))
        .options(joinedload(AttemptQuestion.version), joinedload(AttemptQuestion.question)))}
    out = []
    for row in rows:
        slot = slots.get(row.question_id)
        if slot is None:
            continue
        shown = slot.shown
        out.append({"position": slot.position, "question_id": row.question_id,
                    "answer_text": shown.kind.describe(shown, row.value, slot.option_order),
                    "given_at": row.given_at, "arrived_at": row.arrived_at, "arrivals": row.arrivals})
    return sorted(out, key=lambda item: item["position"])
