"""Hand marking of short answers: the one service behind the marking page and
``POST /api/v1/attempts/{id}/marks``, and the list of what awaits marking."""

from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from pbschool import auth, clock
from pbschool.accounts.services import audit
from pbschool.errors import DomainError, NotFound
from pbschool.exams.models import Attempt, AttemptQuestion, Question
from pbschool.exams.services import _award, _certify, _total, clean, lock_attempt
from pbschool.extensions import db
from pbschool.notices import services as notices

MAX_FEEDBACK = 2000


def parse_score(raw, points):
    """A hand-given score: a number from 0 to the question's points with at most one decimal.
    Two decimals are refused rather than rounded: the marker meant something we would change."""
    if isinstance(raw, bool) or raw is None:
        raise DomainError(_("得分应为数字"), "invalid_number", field="score")
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise DomainError(_("得分应为数字"), "invalid_number", field="score") from None
    if not value.is_finite():
        raise DomainError(_("得分应为数字"), "invalid_number", field="score")
    if value < 0 or value > points:
        raise DomainError(_("得分超出允许范围（0–%(p)s 分）", p=points), "out_of_range", field="score")
    if value != value.quantize(Decimal("0.1")):
        raise DomainError(_("得分最多保留一位小数"), "too_precise", field="score")
    return value.quantize(Decimal("0.1"))


def not_awaiting():
    return DomainError(_("这道题不是待阅的简答题（答卷未交、已评阅或不是简答题）"), "not_awaiting_marking", 409)


def mark_answer(attempt, question_id, score, actor, feedback=""):
    """Mark one short answer of a finished attempt awaiting marking; when none is left the result is
    final and a pass awards its points (once). The attempt row is locked first, so a member's
    submission and this mark never interleave: marking a running attempt is refused, never kept."""
    attempt = lock_attempt(attempt.id)
    if attempt is None:
        raise NotFound(_("找不到这次答题"))
    if not auth.has_role(actor, "admin", "lecturer"):
        raise DomainError(_("没有权限阅卷"), "forbidden", 403)
    auth.refuse_self(actor, attempt.user_id, "own_attempt")
    if not auth.can_mark_exam(actor, attempt.exam):
        raise DomainError(_("您不能批阅这场考试（它不使用您编写或获授权的题库）"), "forbidden", 403)
    slot = db.session.scalar(select(AttemptQuestion).where(AttemptQuestion.attempt_id == attempt.id,
                                                           AttemptQuestion.question_id == question_id)
                             .options(selectinload(AttemptQuestion.question))
                             .execution_options(populate_existing=True))
    if slot is None:
        raise NotFound(_("本次答题中没有这道题"))
    if attempt.state != "pending_review" or slot.question.type != "short" or not slot.needs_review \
            or slot.marked_at is not None:
        raise not_awaiting()
    if not auth.can_mark_question(actor, slot.question):
        raise DomainError(_("您不能批阅这道题（它不在您编写或获授权的题库中）"), "forbidden", 403)
    value = parse_score(score, slot.points)
    if feedback is not None and not isinstance(feedback, str):
        raise DomainError(_("评语应为文字"), "invalid_field", field="feedback")
    slot.score, slot.needs_review = value, False
    slot.marked_by_id, slot.marked_at = actor.id, clock.now()
    slot.feedback = clean(feedback).strip()[:MAX_FEEDBACK]
    slots = db.session.scalars(select(AttemptQuestion).where(AttemptQuestion.attempt_id == attempt.id)).all()
    _total(attempt, slots)
    _award(attempt)
    if attempt.exam.issues_certificate:  # an attempt awaiting marking had no pass, so no certificate
        _certify(attempt, actor)
    db.session.flush()
    notices.short_answers_marked(attempt)
    audit(actor, "attempt.mark", attempt, f"Q{slot.question_id}", score=str(value))
    return attempt


def awaiting_marking(exam, actor):
    """The slots the actor may mark on this exam: short answers awaiting marking on finished,
    counted attempts, never the actor's own, and for a lecturer only their banks' questions."""
    stmt = (select(AttemptQuestion).join(Attempt, AttemptQuestion.attempt_id == Attempt.id)
            .join(Question, AttemptQuestion.question_id == Question.id)
            .where(Attempt.exam_id == exam.id, Attempt.state == "pending_review",
                   Attempt.is_preview.is_(False), Attempt.user_id != actor.id,
                   AttemptQuestion.needs_review.is_(True), AttemptQuestion.marked_at.is_(None),
                   Question.type == "short")
            .options(selectinload(AttemptQuestion.question), selectinload(AttemptQuestion.version),
                     selectinload(AttemptQuestion.attempt).selectinload(Attempt.user))
            .order_by(AttemptQuestion.question_id, Attempt.id))
    scope = auth.editable_bank_ids(actor)
    if scope is not None:
        stmt = stmt.where(Question.bank_id.in_(scope))
    return db.session.scalars(stmt).all()
