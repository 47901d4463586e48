"""Exam operations: banks and questions, exams, start/save/submit, grading, results.

They take models and values, raise DomainError, flush, and never commit; the request (or the CLI
command) commits once, so "submit and award the points" is all or nothing.
"""

import hashlib
import random
import re
from decimal import Decimal, InvalidOperation

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer, joinedload, selectinload

from pbschool import clock
from pbschool.accounts.services import audit
from pbschool.auth import scope_to_branch, sits_as_preview
from pbschool.errors import DomainError, NotFound
from pbschool.exams import overrides
from pbschool.exams.models import (
    AUDIENCES,
    GRADING_METHODS,
    REVIEW_LEVELS,
    REVIEW_WHEN,
    Answer,
    Attempt,
    AttemptQuestion,
    Exam,
    ExamSection,
    Question,
    QuestionBank,
    QuestionVersion,
)
from pbschool.exams.qtypes import LETTERS, get_type, normalise_type, prerender
from pbschool.exams.versions import current_version_ids, set_author
from pbschool.extensions import db

MAX_OPTIONS = len(LETTERS)


def to_decimal(raw, field, *, minimum=None, maximum=None):
    """A score or points figure with at most one decimal, as entered: more decimals are refused
    (``too_precise``), never rounded; the reason names the field as the forms do."""
    label = {"points_on_pass": _("通过奖励积分"), "pass_score": _("及格线"), "points_each": _("每题分值"),
             "score": _("分值")}.get(field, field)
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise DomainError(_("%(f)s 应为数字", f=label), "invalid_number", field=field) from None
    if not value.is_finite() or (minimum is not None and value < minimum) or \
            (maximum is not None and value > maximum):
        raise DomainError(_("%(f)s 超出允许范围", f=label), "out_of_range", field=field)
    if value != value.quantize(Decimal("0.1")):
        raise DomainError(_("%(f)s 最多一位小数（收到 %(v)s）", f=label, v=raw), "too_precise", field=field)
    return value.quantize(Decimal("0.1"))


def clean(text):
    """Text as PostgreSQL will store it: a NUL byte, which only a broken file or a prank sends, is dropped."""
    return str(text or "").replace("\x00", "")


def stem_key(stem):
    return hashlib.sha256(re.sub(r"\s+", " ", stem or "").strip().encode()).hexdigest()


# -- banks and questions ---------------------------------------------------------------------

def find_bank(name):
    return db.session.scalar(select(QuestionBank).where(QuestionBank.name == clean(name).strip()))


def get_or_create_bank(name, actor=None):
    name = clean(name).strip()
    if not name or len(name) > 100:
        raise DomainError(_("请填写题库名称（不超过 100 个字符）"), "invalid_name", field="name")
    bank = find_bank(name)
    if bank is None:
        bank = QuestionBank(name=name, created_by_id=getattr(actor, "id", None))
        db.session.add(bank)
        db.session.flush()
        audit(actor, "bank.create", bank, name)
    return bank


def check_question(qtype, stem, options, answer_text, score="1", difficulty="3"):
    """Validate one question's fields. Returns (values, problems); ``values`` is usable if no problems."""
    problems = []
    qtype = normalise_type(clean(qtype))
    stem, answer_text = clean(stem), clean(answer_text)
    options = [clean(o) for o in options or []]
    kind = None
    try:
        kind = get_type(qtype)
    except DomainError:
        problems.append(_("题型应为 单选/多选/判断/填空/简答（single/multiple/truefalse/blank/short）"))
    stem = (stem or "").strip()
    if not stem:
        problems.append(_("缺少题干"))
    elif len(stem) > 10000:
        problems.append(_("题干过长"))
    options = [o.strip() for o in (options or [])]
    while options and not options[-1]:
        options.pop()
    if kind is not None and kind.has_options:
        if any(not o for o in options):
            problems.append(_("选项不能中间留空"))
    else:
        options = []
    answer = None
    if kind is not None:
        problems.extend(kind.check_definition(options, stem))
        if not (answer_text or "").strip() and kind.name != "short":
            problems.append(_("缺少答案"))
        else:
            try:
                answer = kind.parse_answer(answer_text, options, stem)
            except ValueError as exc:
                problems.append(str(exc))
    try:
        score = to_decimal(score or "1", "score", minimum=Decimal("0.1"), maximum=Decimal("1000"))
    except DomainError:
        problems.append(_("分值应为大于 0 的数字"))
    try:
        difficulty = int(str(difficulty or "3").strip())
        if not 1 <= difficulty <= 5:
            raise ValueError
    except ValueError:
        problems.append(_("难度应为 1–5 的整数"))
    return {"type": qtype, "stem": stem, "options": options, "answer": answer, "score": score,
            "difficulty": difficulty}, problems


def refuse_synced(question):
    """A question that content sync owns is changed in its file, or the next sync would undo the edit."""
    if question.source and question.source.startswith("content:"):
        path = question.source.removeprefix("content:")
        raise DomainError(_("此题来自内容文件 %(f)s，由 pbschool content sync 维护：请修改内容文件 %(f)s 后再同步，"
                            "不能在此处修改", f=path), "synced_question", 409)


def save_question(bank, fields, *, question=None, actor=None):
    """Create or update a question from raw form fields; raises DomainError naming the problem."""
    values, problems = check_question(fields.get("type"), fields.get("stem"), fields.get("options"),
                                      fields.get("answer"), fields.get("score"), fields.get("difficulty"))
    if problems:
        raise DomainError("；".join(str(p) for p in problems), "invalid_question")
    if question is not None:
        refuse_synced(question)
    key = stem_key(values["stem"])
    clash = db.session.scalar(select(Question.id).where(Question.bank_id == bank.id, Question.stem_key == key))
    if clash is not None and (question is None or clash != question.id):
        raise DomainError(_("本题库已有相同题干的题目"), "duplicate_question", 409, field="stem")
    if question is None:
        question = Question(bank=bank)
        db.session.add(question)
    question.type = values["type"]
    question.stem = values["stem"]
    question.stem_key = key
    question.options = values["options"]
    question.answer = values["answer"]
    question.score = values["score"]
    question.difficulty = values["difficulty"]
    question.category = clean(fields.get("category")).strip()[:100]
    question.explanation = clean(fields.get("explanation")).strip()
    if "is_active" in fields:
        question.is_active = bool(fields["is_active"])
    prerender(question)
    set_author(question, actor)
    db.session.flush()  # a changed question gets its new version here (exams/versions.py)
    audit(actor, "question.save", question, values["stem"][:60], version=question.version)
    return question


# -- exams -----------------------------------------------------------------------------------

def _available(bank_id, category, difficulty, exclude=()):
    stmt = select(Question.id).where(Question.bank_id == bank_id, Question.is_active.is_(True))
    if category:
        stmt = stmt.where(Question.category == category)
    if difficulty:
        stmt = stmt.where(Question.difficulty == difficulty)
    ids = db.session.scalars(stmt).all()
    return [i for i in ids if i not in exclude]


def create_exam(data, actor=None):
    """Create an exam from a dict shaped as the API's POST /exams body (values already typed)."""
    title = clean(data.get("title")).strip()
    if not title or len(title) > 200:
        raise DomainError(_("请填写考试名称（不超过 200 个字符）"), "invalid_title", field="title")
    limit = data.get("time_limit_seconds")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 60 <= limit <= 24 * 3600:
        raise DomainError(_("考试时长应为 1 分钟到 24 小时"), "invalid_time_limit", field="time_limit_seconds")
    max_attempts = data.get("max_attempts", 1)
    if not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or not 1 <= max_attempts <= 100:
        raise DomainError(_("允许次数应为 1–100"), "invalid_max_attempts", field="max_attempts")
    pass_score = to_decimal(data.get("pass_score", 60), "pass_score", minimum=Decimal(0), maximum=Decimal(100))
    points = to_decimal(data.get("points_on_pass", 0), "points_on_pass", minimum=Decimal(0),
                        maximum=Decimal(1000))
    opens_at, closes_at = data.get("opens_at"), data.get("closes_at")
    if opens_at and closes_at and closes_at <= opens_at:
        raise DomainError(_("结束时间应晚于开始时间"), "invalid_window", field="closes_at")
    choices = {"grading_method": GRADING_METHODS, "review": REVIEW_LEVELS, "review_when": REVIEW_WHEN,
               "audience": AUDIENCES}
    for name, allowed in choices.items():
        if data.get(name) is not None and data[name] not in allowed:
            raise DomainError(_("%(f)s 应为 %(v)s 之一", f=name, v=", ".join(allowed)), "invalid_choice", field=name)
    if data.get("review_when") == "close" and not closes_at:
        raise DomainError(_("“考试结束后公布答案”需要设置结束时间"), "no_close_time", field="closes_at")
    sections = data.get("sections") or []
    if not sections:
        raise DomainError(_("至少需要一个抽题规则"), "no_sections", field="sections")
    exam = Exam(title=title, description=clean(data.get("description")).strip(), time_limit_seconds=limit,
                opens_at=opens_at, closes_at=closes_at, max_attempts=max_attempts,
                grading_method=data.get("grading_method") or "highest", pass_score=pass_score,
                points_on_pass=points, shuffle_questions=bool(data.get("shuffle", True)),
                shuffle_options=bool(data.get("shuffle_options", data.get("shuffle", True))),
                partial_credit=bool(data.get("partial_credit", False)),
                review=data.get("review") or "explanations", review_when=data.get("review_when") or "submit",
                issues_certificate=bool(data.get("certificate", False)),
                audience=data.get("audience") or "all",
                audience_job_posts=[clean(p).strip() for p in data.get("job_posts") or [] if clean(p).strip()],
                created_by_id=getattr(actor, "id", None))
    if exam.audience == "branches":
        exam.audience_branches = list(data.get("branches") or [])
        if not exam.audience_branches:
            raise DomainError(_("请选择可参加考试的支部"), "no_branches", field="branches")
    if exam.audience == "job_posts" and not exam.audience_job_posts:
        raise DomainError(_("请填写可参加考试的岗位"), "no_job_posts", field="job_posts")
    drawn = {}
    for i, raw in enumerate(sections):
        bank = raw.get("bank")
        if not isinstance(bank, QuestionBank):
            bank = find_bank(bank) if isinstance(bank, str) else db.session.get(QuestionBank, bank) \
                if isinstance(bank, int) and not isinstance(bank, bool) else None
        if bank is None:
            raise DomainError(_("第 %(n)d 个抽题规则：找不到题库 %(b)s", n=i + 1, b=raw.get("bank")),
                              "unknown_bank", 404, field="sections")
        count = raw.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 500:
            raise DomainError(_("第 %(n)d 个抽题规则：题数应为 1–500", n=i + 1), "invalid_count", field="sections")
        difficulty = raw.get("difficulty") or None
        if difficulty is not None and (not isinstance(difficulty, int) or not 1 <= difficulty <= 5):
            raise DomainError(_("第 %(n)d 个抽题规则：难度应为 1–5", n=i + 1), "invalid_difficulty",
                              field="sections")
        category = clean(raw.get("category")).strip() or None
        points_each = to_decimal(raw.get("points_each", 1), "points_each", minimum=Decimal("0.1"),
                                 maximum=Decimal(1000))
        used = drawn.setdefault(bank.id, set())
        pool = _available(bank.id, category, difficulty, used)
        if len(pool) < count:
            message = _("第 %(n)d 个抽题规则：题库「%(b)s」中符合条件的题目只有 %(have)d 道，不够抽 %(want)d 道",
                        n=i + 1, b=bank.name, have=len(pool), want=count)
            raise DomainError(message, "not_enough_questions", field="sections")
        used.update(pool[:count])
        exam.sections.append(ExamSection(position=i, bank=bank, category=category, difficulty=difficulty,
                                         count=count, points_each=points_each))
    db.session.add(exam)
    db.session.flush()
    audit(actor, "exam.create", exam, title)
    return exam


def update_exam(exam, data, actor=None):
    """Change an exam's title, window, attempts allowed, review and publication. The paper itself
    (sections, points, pass mark) stays as members sat it; fix questions and regrade instead."""
    title = clean(data.get("title")).strip()
    if not title or len(title) > 200:
        raise DomainError(_("请填写考试名称（不超过 200 个字符）"), "invalid_title", field="title")
    opens_at, closes_at = data.get("opens_at"), data.get("closes_at")
    if opens_at and closes_at and closes_at <= opens_at:
        raise DomainError(_("结束时间应晚于开始时间"), "invalid_window", field="closes_at")
    max_attempts = data.get("max_attempts")
    if not isinstance(max_attempts, int) or not 1 <= max_attempts <= 100:
        raise DomainError(_("允许次数应为 1–100"), "invalid_max_attempts", field="max_attempts")
    if data.get("review") not in REVIEW_LEVELS or data.get("review_when") not in REVIEW_WHEN:
        raise DomainError(_("请选择交卷后可查看的内容"), "invalid_choice", field="review")
    if data["review_when"] == "close" and not closes_at:
        raise DomainError(_("“考试结束后公布答案”需要设置结束时间"), "no_close_time", field="closes_at")
    changes = {}
    for name, value in (("title", title), ("description", clean(data.get("description")).strip()),
                        ("opens_at", opens_at), ("closes_at", closes_at), ("max_attempts", max_attempts),
                        ("review", data["review"]), ("review_when", data["review_when"]),
                        ("is_published", bool(data.get("is_published"))),
                        ("issues_certificate", bool(data.get("certificate", exam.issues_certificate)))):
        if getattr(exam, name) != value:
            changes[name] = [str(getattr(exam, name)), str(value)]
            setattr(exam, name, value)
    db.session.flush()
    if changes:
        audit(actor, "exam.update", exam, title, **changes)
    return exam


def grace_seconds():
    return int(current_app.config.get("EXAM_GRACE_SECONDS", 5))


def is_overdue(attempt, now=None):
    """Past the deadline and its grace: no more saves; the attempt is to be graded."""
    from datetime import timedelta

    now = now or clock.now()
    return now > attempt.deadline_at + timedelta(seconds=grace_seconds())


def _open_exams(now, user=None):
    # audience_branches loads only for the exams meant for some branches (most are for everyone)
    still_open = (Exam.closes_at.is_(None)) | (Exam.closes_at > now)
    if user is not None:  # or open later for them (exams/overrides.py)
        still_open = still_open | overrides.open_later_for(user, Exam.id, now)
    return (select(Exam).options(defer(Exam.description)).where(Exam.is_published.is_(True))
            .where((Exam.opens_at.is_(None)) | (Exam.opens_at <= now))
            .where(still_open)
            .order_by(Exam.closes_at.is_(None), Exam.closes_at, Exam.id))


def exams_for(user, now=None):
    """Published exams that admit ``user`` and are open to them now (their overrides included)."""
    return [e for e in db.session.scalars(_open_exams(now or clock.now(), user)) if e.admits(user)]


def exams_with_terms(user, now=None):
    """[(exam, attempts the user has left, their overrides.Terms)] for ``exams_for(user)``: two queries."""
    used = (select(func.count(Attempt.id)).where(Attempt.exam_id == Exam.id, Attempt.user_id == user.id)
            .correlate(Exam).scalar_subquery())
    rows = [(e, n) for e, n in db.session.execute(_open_exams(now or clock.now(), user).add_columns(used))
            if e.admits(user)]
    terms = overrides.terms_by_exam([e for e, _n in rows], user)
    return [(e, max(0, terms[e.id].max_attempts - n), terms[e.id]) for e, n in rows]


def exams_with_attempts_left(user, now=None):
    """[(exam, attempts the user has left)] for ``exams_for(user)``."""
    return [(e, left) for e, left, _terms in exams_with_terms(user, now)]


def exams_opening_soon(user, now=None, days=None):
    """Published exams that admit ``user`` and open within ``days`` (EXAM_OPENS_SOON_DAYS, 7), soonest
    first: the exam list shows them with their opening time."""
    from datetime import timedelta

    now = now or clock.now()
    days = current_app.config.get("EXAM_OPENS_SOON_DAYS", 7) if days is None else days
    if days <= 0:
        return []
    stmt = (select(Exam).options(defer(Exam.description)).where(
        Exam.is_published.is_(True), Exam.opens_at > now, Exam.opens_at <= now + timedelta(days=days))
        .order_by(Exam.opens_at, Exam.id))
    return [e for e in db.session.scalars(stmt) if e.admits(user)]


def attempts_by_exam(exams, user):
    """{exam id: the user's attempts at it, by number} for several exams in one query."""
    found = {e.id: [] for e in exams}
    if found:
        for attempt in db.session.scalars(select(Attempt).where(Attempt.user_id == user.id,
                                                               Attempt.exam_id.in_(found))
                                          .order_by(Attempt.exam_id, Attempt.number)):
            found[attempt.exam_id].append(attempt)
    return found


def attempts_of(exam, user):
    return db.session.scalars(select(Attempt).where(Attempt.exam_id == exam.id, Attempt.user_id == user.id)
                              .order_by(Attempt.number)).all()


def attempts_used(exam, user):
    return db.session.scalar(select(func.count(Attempt.id)).where(Attempt.exam_id == exam.id,
                                                                  Attempt.user_id == user.id)) or 0


def attempts_left(exam, user, terms=None):
    terms = terms or overrides.terms_for(exam, user)
    return max(0, terms.max_attempts - attempts_used(exam, user))


def open_attempt(exam, user):
    return db.session.scalar(select(Attempt).where(Attempt.exam_id == exam.id, Attempt.user_id == user.id,
                                                   Attempt.state == "in_progress"))


def _draw(exam, rng):
    """[(question, points)] for a new attempt, drawn at random per section."""
    picked, used = [], {}
    for section in exam.sections:
        seen = used.setdefault(section.bank_id, set())
        pool = _available(section.bank_id, section.category, section.difficulty, seen)
        if len(pool) < section.count:
            raise DomainError(_("题库中的题目不足，无法组卷，请联系管理员"), "not_enough_questions", 409)
        chosen = rng.sample(pool, section.count)
        if not exam.shuffle_questions:
            chosen.sort()
        seen.update(chosen)
        picked.extend((qid, section.points_each) for qid in chosen)
    if exam.shuffle_questions:
        rng.shuffle(picked)
    questions = {q.id: q for q in db.session.scalars(select(Question).where(
        Question.id.in_([qid for qid, _p in picked])))}
    return [(questions[qid], points) for qid, points in picked]


def start_attempt(exam, user, now=None):
    """Resume the member's unfinished attempt, or start a new one. Parallel starts give one attempt."""

    now = now or clock.now()
    if not exam.admits(user):
        raise NotFound()
    current = open_attempt(exam, user)
    if current is not None:
        if not is_overdue(current, now):
            return current
        submit_attempt(current, auto=True, now=now)
    terms = overrides.terms_for(exam, user)
    if not terms.is_open(now):
        raise DomainError(_("考试当前未开放"), "exam_closed", 409)
    used = attempts_used(exam, user)
    if used >= terms.max_attempts:
        raise DomainError(_("您的考试次数已用完"), "no_attempts_left", 409)
    attempt = Attempt(exam_id=exam.id, user_id=user.id, number=used + 1, attempt_limit=terms.max_attempts,
                      state="in_progress", started_at=now, deadline_at=terms.deadline(now),
                      is_preview=sits_as_preview(user, exam))
    try:
        with db.session.begin_nested():
            db.session.add(attempt)
            db.session.flush()
    except IntegrityError:
        # Another request started one at the same moment: resume that one.
        current = open_attempt(exam, user)
        if current is not None:
            return current
        raise DomainError(_("您的考试次数已用完"), "no_attempts_left", 409) from None
    rng = random.SystemRandom()
    rows = []
    drawn = _draw(exam, rng)
    versions = current_version_ids([q.id for q, _p in drawn])
    for position, (question, points) in enumerate(drawn, start=1):
        order = []
        if question.kind.has_options:
            order = question.kind.option_keys(question)
            if exam.shuffle_options:
                rng.shuffle(order)
        rows.append({"attempt_id": attempt.id, "question_id": question.id, "position": position,
                     "version_id": versions.get(question.id), "option_order": order, "points": points,
                     "needs_review": False, "feedback": ""})
    db.session.execute(insert(AttemptQuestion), rows)  # one statement: exam day starts hundreds at once
    return attempt


def lock_attempt(attempt_id, *, read=False):
    """The attempt row, locked until the transaction ends (FOR UPDATE, or FOR SHARE when ``read``)."""
    stmt = select(Attempt).where(Attempt.id == attempt_id).with_for_update(read=read).execution_options(
        populate_existing=True)
    return db.session.scalar(stmt)


def save_answer(attempt, question_id, value, now=None, locked=False):
    """Store one answer. Deadline first (409 time_up), then the shape (400). ``locked``: the caller
    already holds the attempt row FOR SHARE (submitting waits for it, so no save lands after grading)."""
    now = now or clock.now()
    if not locked:
        attempt = lock_attempt(attempt.id, read=True)
    refuse_closed(attempt, now)
    slot = db.session.scalar(select(AttemptQuestion).where(AttemptQuestion.attempt_id == attempt.id,
                                                           AttemptQuestion.question_id == question_id)
                             .options(joinedload(AttemptQuestion.version)))
    if slot is None:
        raise NotFound(_("本次考试中没有这道题"))
    shown = slot.shown
    return _store_answer(attempt, question_id, shown, slot.option_order, value, now)


def refuse_closed(attempt, now):
    """409 unless the attempt takes answers now: in progress and within its deadline and grace."""
    if attempt.state != "in_progress":
        if is_overdue(attempt, now) or attempt.is_auto_submitted:
            raise DomainError(_("考试时间已到，答案未保存"), "time_up", 409)
        raise DomainError(_("试卷已交，不能再修改答案"), "already_submitted", 409)
    if is_overdue(attempt, now):
        raise DomainError(_("考试时间已到，答案未保存"), "time_up", 409)


def _store_answer(attempt, question_id, shown, option_order, value, now):
    kind = shown.kind
    kind.check_shape(value, shown, option_order)
    stored = kind.canonical(value, option_order)
    if not _upsert_answer(attempt.id, attempt.user_id, question_id, stored, now):
        # The guard refused although the attempt looked open: graded in between (never without the
        # attempt's lock on PostgreSQL, so only where there is no lock); say why as above.
        refuse_closed(lock_attempt(attempt.id, read=True), now)
        raise DomainError(_("试卷已交，不能再修改答案"), "already_submitted", 409)
    return stored


# -- the exam-day hot path: PUT /api/v1/attempts/{id}/answers/{qid} ----------------------------

class SaveTarget:
    """What one save needs of the attempt and of its slot, read (and the attempt locked FOR SHARE)
    by one statement: see lock_for_save."""

    __slots__ = ("id", "user_id", "state", "deadline_at", "is_auto_submitted", "has_slot", "option_order",
                 "shown")

    def __init__(self, row):
        (self.id, self.user_id, self.state, self.deadline_at, self.is_auto_submitted, slot_question,
         self.option_order, version_id, *shape) = row
        self.has_slot = slot_question is not None
        # the version the member was shown (a slot from before versions: the question itself)
        self.shown = _Shape(*(shape[:3] if version_id is not None else shape[3:])) if self.has_slot else None


class _Shape:
    """The parts of a shown question that checking and storing an answer read."""

    __slots__ = ("type", "options", "answer")

    def __init__(self, type_, options, answer):
        self.type, self.options, self.answer = type_, options, answer

    @property
    def kind(self):
        from pbschool.exams.qtypes import get_type

        return get_type(self.type)


_SAVE_STATEMENTS = {}


def _for_save_statement():
    stmt = _SAVE_STATEMENTS.get("select")
    if stmt is None:
        from sqlalchemy import and_, bindparam
        slot = AttemptQuestion.__table__.alias("slot")
        version, question = QuestionVersion.__table__, Question.__table__
        attempt = Attempt.__table__
        stmt = (select(attempt.c.id, attempt.c.user_id, attempt.c.state, attempt.c.deadline_at,
                       attempt.c.is_auto_submitted, slot.c.question_id, slot.c.option_order, slot.c.version_id,
                       version.c.type, version.c.options, version.c.answer,
                       question.c.type, question.c.options, question.c.answer)
                .select_from(attempt
                             .outerjoin(slot, and_(slot.c.attempt_id == attempt.c.id,
                                                   slot.c.question_id == bindparam("question_id")))
                             .outerjoin(version, version.c.id == slot.c.version_id)
                             .outerjoin(question, and_(question.c.id == slot.c.question_id,
                                                       slot.c.version_id.is_(None))))
                .where(attempt.c.id == bindparam("attempt_id"))
                .with_for_update(read=True, of=attempt))
        _SAVE_STATEMENTS["select"] = stmt
    return stmt


def lock_for_save(attempt_id, question_id):
    """The attempt (locked FOR SHARE until the transaction ends, as lock_attempt(read=True)) with the
    slot of ``question_id`` and the shape of the version shown, in one statement; None if no attempt."""
    row = db.session.connection().execute(_for_save_statement(),
                                          {"attempt_id": attempt_id, "question_id": question_id}).first()
    return None if row is None else SaveTarget(row)


def save_locked(target, question_id, value, now=None):
    """save_answer for a SaveTarget: deadline first (409), then the question (404), then the shape (400)."""
    now = now or clock.now()
    refuse_closed(target, now)
    if not target.has_slot:
        raise NotFound(_("本次考试中没有这道题"))
    return _store_answer(target, question_id, target.shown, target.option_order, value, now)


def _upsert_statement(dialect):
    """INSERT ... SELECT ... WHERE the attempt is open ... ON CONFLICT DO UPDATE ... WHERE it is open:
    one statement that writes nothing into an attempt that is graded, someone else's or past its
    deadline and grace (PostgreSQL and SQLite both), built once per dialect."""
    stmt = _SAVE_STATEMENTS.get(dialect)
    if stmt is None:
        from sqlalchemy import bindparam, exists, literal

        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert
        attempt, answer = Attempt.__table__, Answer.__table__

        def still_open():
            return exists().where(attempt.c.id == bindparam("attempt_id"), attempt.c.user_id == bindparam("user_id"),
                                  attempt.c.state == "in_progress", attempt.c.deadline_at >= bindparam("cutoff"))

        source = select(bindparam("attempt_id", type_=answer.c.attempt_id.type),
                        bindparam("question_id", type_=answer.c.question_id.type),
                        bindparam("value", type_=answer.c.value.type),
                        bindparam("saved_at", type_=answer.c.saved_at.type),
                        literal(1, answer.c.revision.type)).where(still_open())
        stmt = upsert(answer).from_select(["attempt_id", "question_id", "value", "saved_at", "revision"], source)
        stmt = stmt.on_conflict_do_update(
            index_elements=["attempt_id", "question_id"],
            set_={"value": stmt.excluded.value, "saved_at": stmt.excluded.saved_at,
                  "revision": answer.c.revision + 1},
            where=still_open()).returning(answer.c.revision)
        _SAVE_STATEMENTS[dialect] = stmt
    return stmt


def _upsert_answer(attempt_id, user_id, question_id, value, now):
    """Write one answer, guarded: True if written, False if the attempt was not open to it."""
    from datetime import timedelta

    connection = db.session.connection()
    result = connection.execute(_upsert_statement(connection.dialect.name), {
        "attempt_id": attempt_id, "user_id": user_id, "question_id": question_id, "value": value,
        "saved_at": now, "cutoff": now - timedelta(seconds=grace_seconds())})
    return result.first() is not None


def answers_by_question(attempt_id):
    rows = db.session.scalars(select(Answer).where(Answer.attempt_id == attempt_id)).all()
    return {a.question_id: a for a in rows}


def _grade_slots(attempt, slots, answers):
    partial = attempt.exam.partial_credit
    for slot in slots:
        answer = answers.get(slot.question_id)
        value = answer.value if answer is not None else None
        if slot.marked_at is not None:
            continue  # marked by hand: the marker's score stands
        shown = slot.shown  # the key of the version the member was shown, whatever was edited since
        score, needs_review = shown.kind.grade(shown, value, slot.points, partial)
        slot.score, slot.needs_review, slot.graded_version_id = score, needs_review, slot.version_id


def _total(attempt, slots):
    pending = any(s.needs_review for s in slots)
    attempt.max_score = sum((s.points for s in slots), Decimal("0"))
    attempt.score = sum((s.score or Decimal("0") for s in slots), Decimal("0"))
    if pending:
        attempt.state, attempt.passed = "pending_review", None
    else:
        attempt.state = "submitted"
        attempt.passed = bool(attempt.max_score) and attempt.score * 100 >= attempt.exam.pass_score * attempt.max_score


def _award(attempt, source_key=None):
    """Passing writes one points event, once per member and exam, in the grading transaction; a
    staff preview earns nothing. ``source_key``: a regrade's new event for an attempt whose first
    award was reversed."""
    exam = attempt.exam
    if not attempt.passed or exam.points_on_pass <= 0 or attempt.points_awarded or attempt.is_preview:
        return
    earlier = db.session.scalar(select(func.count(Attempt.id)).where(
        Attempt.exam_id == exam.id, Attempt.user_id == attempt.user_id, Attempt.id != attempt.id,
        Attempt.points_awarded > 0))
    if earlier:
        return
    from pbschool.points.services import record_event

    entry = record_event(attempt.user, "exam_passed", source_key or f"attempt:{attempt.id}", points=exam.points_on_pass,
                         value=attempt.percent, reason=_("通过考试：%(t)s", t=exam.title))
    attempt.points_awarded = entry.points if entry is not None else Decimal("0")


def _certify(attempt, actor=None):
    """The attempt's certificate follows its final result (pbschool/certificates)."""
    from pbschool.certificates.services import sync_attempt

    return sync_attempt(attempt, actor=actor)


def submit_attempt(attempt, *, auto=False, now=None):
    """Grade the attempt once. Repeating (or racing) returns the same result and awards nothing more."""
    now = now or clock.now()
    attempt = lock_attempt(attempt.id)
    if attempt.state != "in_progress":
        return attempt
    slots = db.session.scalars(select(AttemptQuestion).where(AttemptQuestion.attempt_id == attempt.id)
                               .options(selectinload(AttemptQuestion.version))
                               .order_by(AttemptQuestion.position)).all()
    _grade_slots(attempt, slots, answers_by_question(attempt.id))
    attempt.submitted_at = min(now, attempt.deadline_at) if auto else now
    attempt.is_auto_submitted = auto
    _total(attempt, slots)
    _award(attempt)
    if attempt.exam.issues_certificate:  # an attempt that was running has no certificate to revoke
        _certify(attempt)
    db.session.flush()
    return attempt


def finish_if_overdue(attempt, now=None):
    """Lazy auto-submit: grade an attempt whose time ran out. True if it did."""
    if attempt.state == "in_progress" and is_overdue(attempt, now):
        submit_attempt(attempt, auto=True, now=now)
        return True
    return False


def sweep(now=None):
    """Submit and grade every attempt whose time is up. Returns how many; commits each one."""
    from datetime import timedelta

    now = now or clock.now()
    cutoff = now - timedelta(seconds=grace_seconds())
    ids = db.session.scalars(select(Attempt.id).where(Attempt.state == "in_progress",
                                                      Attempt.deadline_at < cutoff)).all()
    done = 0
    for attempt_id in ids:
        attempt = db.session.get(Attempt, attempt_id)
        if finish_if_overdue(attempt, now):
            done += 1
        db.session.commit()
    return done


# -- regrading (hand marking is in marking.py) --------------------------------------------------

def regrade(exam, *, dry_run=True, actor=None):
    """See ``pbschool.exams.regrade.regrade`` (kept here for the views' and scripts' one entry point)."""
    from pbschool.exams.regrade import regrade as run

    return run(exam, dry_run=dry_run, actor=actor)


# -- results ---------------------------------------------------------------------------------

def counted_attempts(exam, attempts):
    """The attempt that counts per member (highest or last, by the exam's rule); previews never do."""
    best = {}
    for a in attempts:
        if a.state == "in_progress" or a.is_preview:
            continue
        held = best.get(a.user_id)
        if held is None:
            best[a.user_id] = a
        elif exam.grading_method == "last":
            if a.number > held.number:
                best[a.user_id] = a
        elif (a.score or 0) > (held.score or 0):
            best[a.user_id] = a
    return best


def review_open(attempt, now=None):
    """May the member see answers (and explanations) now, as the exam's review setting says?"""
    exam = attempt.exam
    now = now or clock.now()
    if attempt.state == "in_progress" or exam.review == "score":
        return False
    if exam.review_when == "close":  # closed for everyone: a later close given to someone counts
        return exam.closes_at is not None and now >= overrides.latest_close(exam)
    # While the member may still sit the exam again, its answers would give the next attempt away.
    terms = overrides.terms_for(exam, attempt.user)
    if terms.is_open(now) and attempts_used(exam, attempt.user) < terms.max_attempts:
        return False
    return True


def bulk_close_overdue_for(user, now=None):
    """Grade the user's attempts whose time ran out (called when they open their exam list)."""
    from datetime import timedelta

    now = now or clock.now()
    cutoff = now - timedelta(seconds=grace_seconds())
    ids = db.session.scalars(select(Attempt.id).where(Attempt.user_id == user.id, Attempt.state == "in_progress",
                                                      Attempt.deadline_at < cutoff)).all()
    for attempt_id in ids:
        submit_attempt(db.session.get(Attempt, attempt_id), auto=True, now=now)
    return len(ids)



# -- what the member is shown ----------------------------------------------------------------

def _slots_shown(attempt_id, *extra):
    """The attempt's slots in order, with the versions the member was shown loaded."""
    return db.session.scalars(select(AttemptQuestion).where(AttemptQuestion.attempt_id == attempt_id)
                              .options(selectinload(AttemptQuestion.version), *extra)
                              .order_by(AttemptQuestion.position)).all()


def paper(attempt):
    """The questions of an attempt as the member sees them, with their own saved answers and never
    the correct ones. Each is the version drawn at the start, whatever was edited since."""
    from pbschool.exams.qtypes import render_stem

    answers = answers_by_question(attempt.id)
    out = []
    for slot in _slots_shown(attempt.id):
        shown = slot.shown
        kind = shown.kind
        answer = answers.get(slot.question_id)
        saved = kind.display(answer.value, slot.option_order) if answer is not None else None
        item = {"id": slot.question_id, "position": slot.position, "type": shown.type,
                "type_label": str(kind.label), "stem_html": str(render_stem(shown)),
                "options": kind.render_options(shown, slot.option_order), "points": float(slot.points),
                "saved": saved}
        if shown.type == "blank":
            item["blanks"] = kind.blank_count(shown)
        out.append(item)
    return out


def graded_key(slot):
    """(the key the slot's score was given by, in the shown version's option keys; its explanation;
    whether an explicit regrade used a corrected key rather than the one shown)."""
    from pbschool.exams.versions import translate_answer

    shown = slot.shown
    graded = slot.graded_version if slot.graded_version_id not in (None, slot.version_id) else None
    if graded is None:
        return shown.answer, shown.explanation, False
    return translate_answer(graded.answer, graded, shown), graded.explanation, True


def review(attempt, now=None, staff=False):
    """Per-question review as the exam's setting allows: None for score only (or not yet open).
    ``staff``: everything, whatever the setting (results pages of admins and secretaries).

    Each question is shown as the member saw it (the version drawn, their option order); the key and
    explanation are those it was graded by: the shown ones unless an explicit regrade corrected them,
    which the item then says (``regraded``)."""
    if not staff and not review_open(attempt, now):
        return None
    with_explanations = staff or attempt.exam.review == "explanations"
    from pbschool.exams.qtypes import cached_markdown, render_stem

    answers = answers_by_question(attempt.id)
    out = []
    for slot in _slots_shown(attempt.id, selectinload(AttemptQuestion.graded_version)):
        shown = slot.shown
        kind = shown.kind
        answer = answers.get(slot.question_id)
        value = answer.value if answer is not None else None
        key, explanation, regraded = graded_key(slot)
        item = {"id": slot.question_id, "position": slot.position, "type": shown.type,
                "type_label": str(kind.label), "stem_html": str(render_stem(shown)),
                "options": kind.render_options(shown, slot.option_order),
                "your_answer": kind.display(value, slot.option_order),
                "your_answer_text": kind.describe(shown, value, slot.option_order),
                "correct_answer": kind.display(key, slot.option_order) if shown.type != "blank" else key,
                "correct_answer_text": kind.describe(shown, key, slot.option_order),
                "points": float(slot.points), "score": None if slot.score is None else float(slot.score),
                "correct": slot.score is not None and slot.score == slot.points,
                "pending": slot.needs_review, "feedback": slot.feedback, "regraded": regraded}
        if regraded:
            item["regraded_note"] = _("按更正后的答案重新评分")
        if with_explanations:
            item["explanation_html"] = str(cached_markdown(explanation or ""))
        out.append(item)
    return out


def results_query(exam, user, branch_id=None):
    """The attempts at an exam the user may see (their branches), staff previews left out."""
    from pbschool.accounts.models import User

    stmt = (select(Attempt).join(User, Attempt.user_id == User.id)
            .where(Attempt.exam_id == exam.id, Attempt.is_preview.is_(False))
            .options(selectinload(Attempt.user).selectinload(User.branch))
            .order_by(User.branch_id, User.username, Attempt.number))
    stmt = scope_to_branch(stmt, user, User.branch_id)
    if branch_id:
        stmt = stmt.where(User.branch_id == branch_id)
    return db.session.scalars(stmt).all()
