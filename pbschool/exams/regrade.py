"""Regrading: mark finished attempts again by the current answer keys, explicitly, with a dry run.

An attempt keeps the versions it was shown, and submitting grades by them; only a regrade grades a
slot by a later version (each question's latest), and records which (``graded_version_id``), so
running it again finds nothing to do. A change of pass/fail is corrected in the ledger by a new
entry (the award, or the reversal of the award), never by editing one.
"""

from dataclasses import dataclass
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from pbschool import auth
from pbschool.accounts.services import audit
from pbschool.errors import DomainError
from pbschool.exams import services
from pbschool.exams.models import Answer, Attempt, AttemptQuestion, Exam
from pbschool.exams.versions import current_versions, translate_answer
from pbschool.extensions import db


@dataclass
class Change:
    """One attempt whose score or result a regrade changes."""

    attempt: Attempt
    score_before: Decimal | None
    score_after: Decimal | None
    passed_before: bool | None
    passed_after: bool | None
    #: Points the correction wrote to the ledger (positive: the award, negative: its reversal).
    points: Decimal = Decimal("0")

    @property
    def username(self):
        return self.attempt.user.username

    def as_json(self):
        def num(v):
            return None if v is None else float(v)

        return {"attempt_id": self.attempt.id, "username": self.username, "score_before": num(self.score_before),
                "score_after": num(self.score_after), "passed_before": self.passed_before,
                "passed_after": self.passed_after, "points": float(self.points)}


@dataclass
class Regrade:
    changes: list
    #: [(attempt, code)]: attempts left as they were, e.g. the regrading admin's own ("own_attempt").
    skipped: list
    applied: bool


def _award_entries(attempt):
    """The attempt's exam_passed entries (the first award and any regrade's re-award), oldest first."""
    from pbschool.points.models import LedgerEntry

    key = f"attempt:{attempt.id}"
    return db.session.scalars(select(LedgerEntry).where(
        LedgerEntry.user_id == attempt.user_id, LedgerEntry.kind == "exam_passed",
        (LedgerEntry.source_key == key) | LedgerEntry.source_key.like(f"{key}:regrade:%"))
        .order_by(LedgerEntry.seq)).all()


def _reversed_ids(entries):
    from pbschool.points.models import LedgerEntry

    ids = [e.id for e in entries]
    if not ids:
        return set()
    return set(db.session.scalars(select(LedgerEntry.reverses_id).where(LedgerEntry.reverses_id.in_(ids))))


def _withdraw_award(attempt, actor):
    """Reverse the award a passed attempt was paid (it no longer passes). Returns the points taken."""
    from pbschool.points.services import reverse_correction

    entries = _award_entries(attempt)
    done = _reversed_ids(entries)
    taken = Decimal("0")
    for entry in entries:
        if entry.id in done or entry.points <= 0:
            continue
        reason = _("重新评分后未通过考试：%(t)s", t=attempt.exam.title)
        reversal = reverse_correction(entry, reason, actor=actor)
        if reversal is not None:
            taken += reversal.points
    attempt.points_awarded = Decimal("0")
    return taken


def _pay(attempt):
    """The award of a passed attempt, unless the member was paid for the exam already. Returns points."""
    entries = _award_entries(attempt)
    key = None
    if entries:
        # The first award was reversed by an earlier regrade: this pass is a new event.
        key = f"attempt:{attempt.id}:regrade:{entries[-1].id}"
        if entries[-1].id not in _reversed_ids(entries[-1:]):
            return Decimal("0")
    before = attempt.points_awarded or Decimal("0")
    services._award(attempt, source_key=key)
    return (attempt.points_awarded or Decimal("0")) - before


def _plan(attempt, slots, answers, latest):
    """[(slot, score, needs_review, version)] for the slots whose question has a newer key than the
    one they were graded by. A short answer marked by hand keeps its mark."""
    plan = []
    for slot in slots:
        version = latest.get(slot.question_id)
        graded = slot.graded_version_id or slot.version_id
        if version is None or graded == version.id or slot.marked_at is not None:
            continue
        answer = answers.get((slot.attempt_id, slot.question_id))
        value = translate_answer(answer.value if answer is not None else None, slot.shown, version)
        score, needs_review = version.kind.grade(version, value, slot.points, attempt.exam.partial_credit)
        plan.append((slot, score, needs_review, version))
    return plan


def _mark_again(attempts, slots_of, answers, latest, result, dry_run, actor):
    """Grade each attempt's slots by the latest versions; record changes and skips in ``result``.
    Returns the changes of pass/fail that the ledger must correct (none on a dry run)."""
    corrected = []
    for attempt in attempts:
        slots = slots_of[attempt.id]
        plan = _plan(attempt, slots, answers, latest)
        if not plan:
            continue
        try:
            auth.refuse_self(actor, attempt.user, "own_attempt")
        except DomainError as exc:
            result.skipped.append((attempt, exc.code))
            continue
        before = (attempt.score, attempt.passed, attempt.state, attempt.max_score)
        kept = [(s, s.score, s.needs_review, s.graded_version_id) for s in slots]
        for slot, score, needs_review, version in plan:
            slot.score, slot.needs_review, slot.graded_version_id = score, needs_review, version.id
        services._total(attempt, slots)
        change = None
        if (attempt.score, attempt.passed, attempt.state) != before[:3]:
            change = Change(attempt, before[0], attempt.score, before[1], attempt.passed)
            result.changes.append(change)
        if dry_run:
            for slot, score, needs_review, graded in kept:
                slot.score, slot.needs_review, slot.graded_version_id = score, needs_review, graded
            attempt.score, attempt.passed, attempt.state, attempt.max_score = before
        elif change is not None and bool(change.passed_before) != bool(change.passed_after):
            corrected.append(change)
    return corrected


def regrade(exam, *, dry_run=True, actor=None):
    """Mark every finished attempt at ``exam`` again by each question's latest version.

    Returns a Regrade: the changes of score or result, and the attempts skipped. A dry run writes
    nothing. Applied, it records the version each slot was graded by (so repeating it changes
    nothing), and each change of pass/fail writes its correcting ledger entry: the award (if the
    exam gives points and the member was not paid for it yet) or the award's reversal. The acting
    admin's own attempts are left alone and reported (separation of duties: ``own_attempt``).
    Parallel runs are serialised on the exam row: the second finds nothing left to do."""
    if not dry_run:
        exam = db.session.scalar(select(Exam).where(Exam.id == exam.id).with_for_update()
                                 .execution_options(populate_existing=True))
    stmt = (select(Attempt).where(Attempt.exam_id == exam.id, Attempt.state != "in_progress")
            .options(selectinload(Attempt.user)).order_by(Attempt.id)
            .execution_options(populate_existing=True))
    if not dry_run:
        stmt = stmt.with_for_update(of=Attempt)
    attempts = db.session.scalars(stmt).all()
    ids = [a.id for a in attempts]
    slots_of = {i: [] for i in ids}
    answers = {}
    if ids:
        for slot in db.session.scalars(
                select(AttemptQuestion).where(AttemptQuestion.attempt_id.in_(ids))
                .options(selectinload(AttemptQuestion.version))
                .execution_options(populate_existing=True)):
            slots_of[slot.attempt_id].append(slot)
        answers = {(a.attempt_id, a.question_id): a for a in db.session.scalars(
            select(Answer).where(Answer.attempt_id.in_(ids)))}
    latest = current_versions({s.question_id for group in slots_of.values() for s in group})
    result = Regrade(changes=[], skipped=[], applied=not dry_run)
    with db.session.no_autoflush:  # a dry run's trial scores must never reach the database
        corrected = _mark_again(attempts, slots_of, answers, latest, result, dry_run, actor)
    if dry_run:
        return result
    # Reversals first, so that a member whose paid attempt no longer passes but another still does is
    # paid again for that one (once per member and exam, as at submit).
    for change in corrected:
        if change.passed_before:
            change.points += _withdraw_award(change.attempt, actor)
    members = {c.attempt.user_id for c in corrected}
    by_change = {c.attempt.id: c for c in corrected}
    for attempt in attempts:
        if attempt.user_id in members and attempt.passed and not attempt.points_awarded:
            gained = _pay(attempt)
            if gained and attempt.id in by_change:
                by_change[attempt.id].points += gained
            elif gained:
                result.changes.append(Change(attempt, attempt.score, attempt.score, True, True, gained))
    for change in result.changes:
        # a pass turned into a fail revokes its certificate (recorded, never deleted); back to a pass reinstates it
        services._certify(change.attempt, actor)
    db.session.flush()
    audit(actor, "exam.regrade", exam, exam.title, changed=len(result.changes),
          skipped=[a.id for a, _code in result.skipped])
    return result
