"""Practice and the wrong-answer book. Services take models and values, raise DomainError, flush,
never commit (the request commits once).

Rules decided here (README: "Practice"):

* 每日答题 (``daily``) draws ``count`` (default 5) questions from the banks an admin opened to
  practice; each correct answer earns the ``daily_practice`` rule's points when the paper is
  finished, within the rule's daily cap (record_event, so the cap holds under parallel finishes and
  across several papers a day). 专项练习 (``category``) and 错题本 (``wrong_book``) earn nothing.
* The first answer to a question of a paper counts: answering it again gives the same feedback and
  changes nothing (a double tap or a retry is harmless).
* Short answers are never drawn (nobody could mark them at once).
* An exam's wrong answer enters the book once that attempt's review shows the answers
  (``exams.services.review_open``, the same rule as the result page). It is due at once; each day's
  first 错题本 answer to it is a review, after which it is due again in 1, 3, then 7 days; answered
  right on two different days it is mastered (已掌握) and leaves the book. A later exam answering it
  wrong again puts it back.
* A day studied (the streak) is a Beijing day with any learning credit (a lesson completed or a
  learning points entry), a practice answer or an exam submitted.
"""

import datetime as dt
import random
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from pbschool import clock
from pbschool.errors import DomainError, NotFound
from pbschool.exams.models import Attempt, AttemptQuestion, Question, QuestionBank
from pbschool.exams.qtypes import cached_markdown, render_stem
from pbschool.exams.versions import current_version_ids
from pbschool.extensions import db
from pbschool.points import services as points
from pbschool.practice.models import MODES, Practice, PracticeBank, PracticeQuestion, WrongItem

DEFAULT_COUNT = 5
MAX_COUNT = 20
#: Days until an item of the book is due again after its 1st, 2nd, 3rd (and later) review.
INTERVALS = (1, 3, 7)
#: Right answers on different days that master an item.
MASTERED_AFTER = 2
STREAK_WINDOW = 400
PRACTICE_KIND = "daily_practice"


def today():
    return points.local_date(clock.now())


# -- which questions ------------------------------------------------------------------------------

def practice_bank_ids():
    return set(db.session.scalars(select(PracticeBank.bank_id)))


def _pool(category=None):
    stmt = (select(Question.id).join(PracticeBank, PracticeBank.bank_id == Question.bank_id)
            .where(Question.is_active.is_(True), Question.type != "short"))
    if category is not None:
        stmt = stmt.where(Question.category == category)
    return db.session.scalars(stmt).all()


def categories():
    """[(category, questions)] of the practice banks, for 专项练习."""
    rows = db.session.execute(
        select(Question.category, func.count(Question.id)).join(PracticeBank, PracticeBank.bank_id == Question.bank_id)
        .where(Question.is_active.is_(True), Question.type != "short", Question.category != "")
        .group_by(Question.category).order_by(Question.category)).all()
    return [(c, n) for c, n in rows]


def set_practice_banks(bank_ids, actor):
    from pbschool.accounts.services import audit

    wanted = set(bank_ids) & set(db.session.scalars(select(QuestionBank.id)))
    current = {row.bank_id: row for row in db.session.scalars(select(PracticeBank))}
    for bank_id, row in current.items():
        if bank_id not in wanted:
            db.session.delete(row)
    for bank_id in wanted - set(current):
        db.session.add(PracticeBank(bank_id=bank_id, opened_by_id=actor.id))
    db.session.flush()
    audit(actor, "practice.banks", "practice_bank", ",".join(str(i) for i in sorted(wanted)))
    return wanted


# -- papers ---------------------------------------------------------------------------------------

def check_count(count):
    if count is None:
        return DEFAULT_COUNT
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
        raise DomainError(_("题数应为 1–%(n)d", n=MAX_COUNT), "invalid_count", 400, field="count")
    return count


def start(user, mode, *, category=None, count=None):
    """A new practice paper of ``mode``: its questions drawn now, each at its current version."""
    if mode not in MODES:
        raise DomainError(_("练习类型应为 daily、category 或 wrong_book"), "invalid_mode", 400, field="mode")
    count = check_count(count)
    day = today()
    if mode == "wrong_book":
        sync_wrong_book(user)
        ids = [item.question_id for item in due_items(user)]
        if not ids:
            raise DomainError(_("今天没有需要复习的错题"), "nothing_due", 409)
        ids = ids[:count]
    else:
        if mode == "category":
            category = (category or "").strip()
            if not category or len(category) > 100:
                raise DomainError(_("请选择专项练习的分类"), "invalid_category", 400, field="category")
        else:
            category = None
        pool = _pool(category)
        if not pool:
            raise DomainError(_("暂无可练习的题目"), "no_questions", 409)
        ids = random.SystemRandom().sample(pool, min(count, len(pool)))
    practice = Practice(user_id=user.id, mode=mode, category=category, day=day, created_at=clock.now(),
                        total=len(ids))
    db.session.add(practice)
    db.session.flush()
    questions = {q.id: q for q in db.session.scalars(select(Question).where(Question.id.in_(ids)))}
    versions = current_version_ids(ids)
    rng = random.SystemRandom()
    for position, qid in enumerate(ids, start=1):
        question = questions[qid]
        order = question.kind.option_keys(question)
        rng.shuffle(order)
        db.session.add(PracticeQuestion(practice_id=practice.id, question_id=qid, position=position,
                                        version_id=versions.get(qid), option_order=order))
    db.session.flush()
    return practice


def own_practice(practice_id, user, *, lock=False):
    stmt = select(Practice).where(Practice.id == practice_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    practice = db.session.scalar(stmt)
    if practice is None or practice.user_id != user.id:
        raise NotFound(_("找不到这次练习"))
    return practice


def slots(practice):
    return db.session.scalars(select(PracticeQuestion).where(PracticeQuestion.practice_id == practice.id)
                              .options(selectinload(PracticeQuestion.version), selectinload(PracticeQuestion.question))
                              .order_by(PracticeQuestion.position)).all()


def right_answer(slot):
    """The key of the version shown, in the shape answers are sent (shown letters; one text a blank)."""
    shown = slot.shown
    if shown.type == "blank":
        return [alts[0] if alts else "" for alts in shown.answer or []]
    return shown.kind.display(shown.answer, slot.option_order)


def feedback(slot):
    return {"correct": bool(slot.correct), "answer": right_answer(slot),
            "explanation_html": str(cached_markdown(slot.shown.explanation or ""))}


def question_payload(slot):
    """A question as in an attempt (never with its answer), with the member's first answer."""
    shown = slot.shown
    kind = shown.kind
    item = {"id": slot.question_id, "position": slot.position, "type": shown.type,
            "type_label": str(kind.label), "stem_html": str(render_stem(shown)),
            "options": kind.render_options(shown, slot.option_order),
            "saved": None if slot.answer is None else kind.display(slot.answer, slot.option_order)}
    if shown.type == "blank":
        item["blanks"] = kind.blank_count(shown)
    return item


def answer(practice, question_id, value, user):
    """Check an answer against the version shown and keep it if it is the first; returns the slot."""
    practice = own_practice(practice.id, user, lock=True)  # one answer at a time per paper
    slot = db.session.scalar(select(PracticeQuestion).where(PracticeQuestion.practice_id == practice.id,
                                                            PracticeQuestion.question_id == question_id)
                             .options(selectinload(PracticeQuestion.version)))
    if slot is None:
        raise NotFound(_("本次练习中没有这道题"))
    shown = slot.shown
    kind = shown.kind
    if value is None or kind.is_empty(value):
        raise DomainError(_("请先作答"), "invalid_answer", 400, field="answer")
    kind.check_shape(value, shown, slot.option_order)
    if slot.answered_at is not None:
        return slot  # the first answer counts
    if practice.finished_at is not None:
        raise DomainError(_("本次练习已经结束"), "already_finished", 409)
    canonical = kind.canonical(value, slot.option_order)
    score, _pending = kind.grade(shown, canonical, Decimal("1"))
    slot.answer, slot.correct, slot.answered_at = canonical, score == Decimal("1"), clock.now()
    if practice.mode == "wrong_book":
        _review(user, slot.question_id, slot.correct)
    db.session.flush()
    return slot


def finish(practice, user):
    """Close the paper and award the daily practice's points once (finishing again changes nothing)."""
    practice = own_practice(practice.id, user, lock=True)
    if practice.finished_at is not None:
        return practice
    practice.correct = db.session.scalar(select(func.count(PracticeQuestion.id)).where(
        PracticeQuestion.practice_id == practice.id, PracticeQuestion.correct.is_(True))) or 0
    practice.finished_at = clock.now()
    if practice.mode == "daily" and practice.correct:
        rule = points.rule_for(PRACTICE_KIND)
        per = Decimal(str(rule.points)) if rule is not None else Decimal("1")
        entry = points.record_event(user, PRACTICE_KIND, f"practice:{practice.id}", points=per * practice.correct,
                                    value=practice.correct, reason=_("每日答题：答对 %(n)d 题", n=practice.correct))
        practice.points_awarded = entry.points if entry is not None else Decimal("0")
    db.session.flush()
    return practice


def recent(user, limit=5):
    return db.session.scalars(select(Practice).where(Practice.user_id == user.id)
                              .order_by(Practice.id.desc()).limit(limit)).all()


# -- the wrong-answer book ----------------------------------------------------------------------

def sync_wrong_book(user, now=None):
    """Put into the book every exam question the member got wrong whose attempt's review shows the
    answers now (never earlier). Returns how many came in."""
    from pbschool.exams.services import review_open

    rows = db.session.execute(
        select(AttemptQuestion.id, AttemptQuestion.question_id, Attempt.id)
        .join(Attempt, AttemptQuestion.attempt_id == Attempt.id)
        .where(Attempt.user_id == user.id, Attempt.state != "in_progress", Attempt.is_preview.is_(False),
               AttemptQuestion.score.is_not(None), AttemptQuestion.score < AttemptQuestion.points)
        .order_by(AttemptQuestion.id)).all()
    if not rows:
        return 0
    items = {i.question_id: i for i in db.session.scalars(select(WrongItem).where(WrongItem.user_id == user.id))}
    fresh = [(slot_id, qid, aid) for slot_id, qid, aid in rows
             if qid not in items or (items[qid].slot_id or 0) < slot_id and items[qid].mastered_at is not None]
    if not fresh:
        return 0
    open_review = {}
    attempts = {a.id: a for a in db.session.scalars(select(Attempt).where(Attempt.id.in_({r[2] for r in fresh}))
                                                   .options(selectinload(Attempt.exam)))}
    added, day = 0, today()
    for slot_id, qid, attempt_id in fresh:
        if attempt_id not in open_review:
            open_review[attempt_id] = review_open(attempts[attempt_id], now)
        if not open_review[attempt_id]:
            continue
        item = items.get(qid)
        if item is not None and (item.mastered_at is None or (item.slot_id or 0) >= slot_id):
            continue  # in the book already (another attempt's slot of the same question)
        if item is None:
            item = WrongItem(user_id=user.id, question_id=qid, added_at=clock.now())
            try:
                with db.session.begin_nested():
                    item.slot_id, item.due_day = slot_id, day
                    db.session.add(item)
            except IntegrityError:
                continue  # a parallel request added it
            items[qid] = item
        else:  # mastered, then wrong again in a later exam: back in the book
            item.slot_id, item.due_day, item.mastered_at = slot_id, day, None
            item.reviews, item.right_days, item.last_right_day = 0, 0, None
        added += 1
    db.session.flush()
    return added


def _review(user, question_id, correct):
    item = db.session.scalar(select(WrongItem).where(WrongItem.user_id == user.id,
                                                     WrongItem.question_id == question_id))
    day = today()
    if item is None or item.mastered_at is not None or item.last_review_day == day:
        return  # one review a day moves the schedule
    item.last_review_day = day
    item.reviews += 1
    if correct and item.last_right_day != day:
        item.right_days += 1
        item.last_right_day = day
    if item.right_days >= MASTERED_AFTER:
        item.mastered_at = clock.now()
        return
    item.due_day = day + dt.timedelta(days=INTERVALS[min(item.reviews, len(INTERVALS)) - 1])


def book(user):
    """(items in the book, due ones first; how many are due; how many mastered)."""
    items = db.session.scalars(select(WrongItem).where(WrongItem.user_id == user.id)
                               .options(selectinload(WrongItem.question))
                               .order_by(WrongItem.due_day, WrongItem.id)).all()
    day = today()
    open_items = [i for i in items if i.mastered_at is None]
    return open_items, sum(1 for i in open_items if i.due_day <= day), len(items) - len(open_items)


def due_items(user):
    return db.session.scalars(select(WrongItem).where(WrongItem.user_id == user.id, WrongItem.mastered_at.is_(None),
                                                      WrongItem.due_day <= today())
                              .order_by(WrongItem.due_day, WrongItem.id)).all()


# -- today's tasks and the streak ----------------------------------------------------------------

def tasks(user):
    """Today's points by rule (the points rules' own cap arithmetic) and the streak."""
    day = today()
    items = []
    for rule, earned, room in points.today_by_rule(user, day):
        items.append({"rule": rule.kind, "title": rule.name, "category": rule.category,
                      "points_today": float(earned),
                      "cap_today": None if rule.daily_cap is None else float(rule.daily_cap),
                      "left_today": None if room is None else float(room)})
    return {"date": day.isoformat(), "items": items, "streak": streak(user, day)}


def studied_days(user, first_day):
    """The Beijing days since ``first_day`` on which the member studied (see the module's rules)."""
    from pbschool.courses.models import LessonProgress
    from pbschool.points.models import LedgerEntry

    since = dt.datetime.combine(first_day, dt.time()) - dt.timedelta(days=1)
    days = set(db.session.scalars(select(LedgerEntry.day).distinct().where(
        LedgerEntry.user_id == user.id, LedgerEntry.category == "学习", LedgerEntry.day >= first_day,
        LedgerEntry.points > 0)))
    moments = [
        *db.session.scalars(select(LessonProgress.completed_at).where(
            LessonProgress.user_id == user.id, LessonProgress.completed_at >= since)),
        *db.session.scalars(select(Attempt.submitted_at).where(
            Attempt.user_id == user.id, Attempt.submitted_at >= since, Attempt.is_preview.is_(False))),
        *db.session.scalars(select(PracticeQuestion.answered_at).join(Practice).where(
            Practice.user_id == user.id, PracticeQuestion.answered_at >= since)),
    ]
    days.update(points.local_date(m) for m in moments if m is not None)
    return {d for d in days if d >= first_day}


def streak(user, day=None):
    """Consecutive days studied up to today; today not studied yet does not break it (up to yesterday)."""
    day = day or today()
    days = studied_days(user, day - dt.timedelta(days=STREAK_WINDOW))
    cursor = day if day in days else day - dt.timedelta(days=1)
    count = 0
    while cursor in days:
        count += 1
        cursor -= dt.timedelta(days=1)
    return count
