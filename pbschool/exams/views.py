"""Exam pages: the member's list, the sitting, results and the wrong-answer book; banks, questions,
exams, results, marking and statistics for staff. Thin: services do the work, the view commits."""

import os
from datetime import timedelta
from decimal import Decimal

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_datetime, to_utc
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from wtforms.fields.choices import SelectChoice

from pbschool import auth, clock
from pbschool.accounts.models import Branch, User
from pbschool.errors import DomainError, show_on_form
from pbschool.exams import access, bp, overrides, services, stats
from pbschool.exams import late as late_answers
from pbschool.exams import marking as hand_marking
from pbschool.exams.forms import (
    ActionForm,
    BankForm,
    BankImportForm,
    ExamForm,
    ExamSettingsForm,
    NoticeForm,
    QuestionForm,
)
from pbschool.exams.importer import export_xlsx, import_bank_file, template_csv, template_xlsx
from pbschool.exams.models import Answer, Attempt, AttemptQuestion, Exam, Question, QuestionBank
from pbschool.exams.qtypes import LETTERS, all_types, render_stem
from pbschool.extensions import db
from pbschool.tabular import import_upload
from pbschool.web import int_id

PAGE_SIZE = 50


@bp.app_template_filter("localtime")
def localtime(moment, fmt="yyyy-MM-dd HH:mm"):
    return format_datetime(moment, fmt) if moment else "—"


def _xlsx_response(data, filename):
    from urllib.parse import quote

    return Response(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})


# -- members -----------------------------------------------------------------------------------

@bp.route("/exams")
@login_required
def my_exams():
    services.bulk_close_overdue_for(current_user)
    db.session.commit()
    rows = []
    exams = services.exams_for(current_user)
    attempts_of = services.attempts_by_exam(exams, current_user)  # one query, not one per exam
    terms_of = overrides.terms_by_exam(exams, current_user)  # and one for the overrides
    for exam in exams:
        attempts = attempts_of[exam.id]
        rows.append({"exam": exam, "left": max(0, terms_of[exam.id].max_attempts - len(attempts)),
                     "terms": terms_of[exam.id],
                     "open_attempt": next((a for a in attempts if a.state == "in_progress"), None),
                     "best": services.counted_attempts(exam, attempts).get(current_user.id)})
    past = db.session.scalars(select(Attempt).where(Attempt.user_id == current_user.id,
                                                    Attempt.state != "in_progress")
                              .options(selectinload(Attempt.exam))
                              .order_by(Attempt.submitted_at.desc()).limit(30)).all()
    return render_template("exams/my_exams.html", rows=rows, past=past,
                           soon=services.exams_opening_soon(current_user))


def _visible_exam(exam_id):
    exam = db.get_or_404(Exam, exam_id)
    if not exam.is_published or not exam.admits(current_user):
        abort(404)
    return exam


@bp.route("/exams/<int:exam_id>")
@login_required
def exam_detail(exam_id):
    exam = _visible_exam(exam_id)
    services.bulk_close_overdue_for(current_user)
    db.session.commit()
    attempts = services.attempts_of(exam, current_user)
    terms = overrides.terms_for(exam, current_user)
    now = clock.now()
    return render_template("exams/exam_detail.html", exam=exam, attempts=attempts, terms=terms,
                           left=max(0, terms.max_attempts - len(attempts)), is_open=terms.is_open(now),
                           not_yet=exam.opens_at is not None and now < exam.opens_at, now=now,
                           open_attempt=next((a for a in attempts if a.state == "in_progress"), None),
                           form=ActionForm(), preview=auth.sits_as_preview(current_user, exam))


@bp.route("/exams/<int:exam_id>/start", methods=["GET", "POST"])
@login_required
def start(exam_id):
    """考试须知, then the attempt: the clock starts only once the member ticked "我已阅读" (checked
    here, not only in the browser). Resuming an attempt in progress skips the notice."""
    exam = _visible_exam(exam_id)
    current = services.open_attempt(exam, current_user)
    if current is not None and services.finish_if_overdue(current):
        db.session.commit()
        current = None
    if current is not None:
        return redirect(url_for("exams.sit", attempt_id=current.id))
    form = NoticeForm()
    if form.validate_on_submit():
        try:
            attempt = services.start_attempt(exam, current_user)
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return redirect(url_for("exams.exam_detail", exam_id=exam.id))
        db.session.commit()
        return redirect(url_for("exams.sit", attempt_id=attempt.id))
    now = clock.now()
    left = services.attempts_left(exam, current_user)
    return render_template("exams/notice.html", exam=exam, form=form, left=left, is_open=exam.is_open(now),
                           now=now, grace=services.grace_seconds(), preview=auth.sits_as_preview(current_user, exam),
                           ends_early=exam.closes_at is not None and exam.is_open(now)
                           and exam.closes_at < now + timedelta(seconds=exam.time_limit_seconds))


def _own_attempt(attempt_id):
    attempt = db.get_or_404(Attempt, attempt_id)
    if attempt.user_id != current_user.id:
        abort(404)
    return attempt


@bp.route("/attempts/<int:attempt_id>")
@login_required
def sit(attempt_id):
    attempt = _own_attempt(attempt_id)
    if services.finish_if_overdue(attempt):
        db.session.commit()
        flash(_("考试时间已到，系统已按已保存的答案自动交卷"), "warning")
    if attempt.state != "in_progress":
        return redirect(url_for("exams.result", attempt_id=attempt.id))
    # when the server took each answer, to the millisecond: the page prefers a newer one kept on the device
    saved_at = {qid: answer.saved_at.isoformat(timespec="milliseconds") + "Z"
                for qid, answer in services.answers_by_question(attempt.id).items()}
    return render_template("exams/sit.html", attempt=attempt, exam=attempt.exam, paper=services.paper(attempt),
                           server_now=clock.now(), iso=clock.isoformat, saved_at=saved_at,
                           terms=overrides.terms_for(attempt.exam, current_user))


@bp.route("/attempts/sw.js")
def service_worker():
    """The exam page's service worker, served from /attempts/ so that its scope is the exam pages."""
    with open(os.path.join(current_app.static_folder, "js", "exam-sw.js"), "rb") as script:
        body = script.read()
    return Response(body, mimetype="text/javascript", headers={"Cache-Control": "no-cache"})


def _form_value(item, form):
    """A question's answer from the page's plain form (the no-JavaScript path)."""
    name = f"q{item['id']}"
    if item["type"] == "multiple":
        values = form.getlist(name)
        return sorted(values) or None
    if item["type"] == "blank":
        values = form.getlist(name)
        return values if any(v.strip() for v in values) else None
    raw = form.get(name)
    if raw in (None, ""):
        return None
    if item["type"] == "truefalse":
        return {"true": True, "false": False}.get(raw, raw)
    return raw


@bp.route("/attempts/<int:attempt_id>/submit", methods=["POST"])
@login_required
def submit(attempt_id):
    attempt = _own_attempt(attempt_id)
    ActionForm().validate_on_submit() or abort(400)
    action = request.form.get("action", "submit")
    if attempt.state == "in_progress" and not services.is_overdue(attempt):
        problems = 0
        for item in services.paper(attempt):
            name = f"q{item['id']}"
            if name not in request.form and item["type"] not in ("multiple",):
                continue
            value = _form_value(item, request.form)
            if value == item["saved"] or (value is None and item["saved"] is None):
                continue
            try:
                services.save_answer(attempt, item["id"], value)
            except DomainError:
                problems += 1
        if action == "save":
            db.session.commit()
            if problems:
                flash(_("有 %(n)d 道题的答案格式不正确，未保存", n=problems), "error")
            else:
                flash(_("答案已保存"), "success")
            return redirect(url_for("exams.sit", attempt_id=attempt.id))
    services.submit_attempt(attempt, auto=services.is_overdue(attempt))
    db.session.commit()
    return redirect(url_for("exams.result", attempt_id=attempt.id))


@bp.route("/attempts/<int:attempt_id>/result")
@login_required
def result(attempt_id):
    attempt = _own_attempt(attempt_id)
    if services.finish_if_overdue(attempt):
        db.session.commit()
    if attempt.state == "in_progress":
        return redirect(url_for("exams.sit", attempt_id=attempt.id))
    exam = attempt.exam
    scores = db.session.execute(select(AttemptQuestion.score, AttemptQuestion.points, AttemptQuestion.needs_review)
                                .where(AttemptQuestion.attempt_id == attempt.id)).all()
    counts = {"right": sum(1 for s, p, r in scores if not r and s is not None and s == p),
              "wrong": sum(1 for s, p, r in scores if not r and (s is None or s < p)),
              "pending": sum(1 for _s, _p, r in scores if r)}
    # the one attempts-left rule (per-member overrides included), and the exam still open
    again = exam.is_open(clock.now()) and services.open_attempt(exam, current_user) is None \
        and services.attempts_left(exam, current_user) > 0
    return render_template("exams/result.html", attempt=attempt, exam=exam, review=services.review(attempt),
                           counts=counts, again=again, form=ActionForm(),
                           late=late_answers.for_attempt(attempt))


@bp.route("/exams/wrong-answers")
@login_required
def wrong_book():
    """错题本: exam questions the member got wrong, once that attempt's review shows the answers, each
    due for review on its spaced schedule (pbschool.practice) until mastered."""
    from pbschool.practice import services as practice

    practice.sync_wrong_book(current_user)
    db.session.commit()
    book, due, mastered = practice.book(current_user)
    slots = {s.id: s for s in db.session.scalars(
        select(AttemptQuestion).where(AttemptQuestion.id.in_([i.slot_id for i in book if i.slot_id]))
        .options(selectinload(AttemptQuestion.version), selectinload(AttemptQuestion.graded_version),
                 selectinload(AttemptQuestion.attempt).selectinload(Attempt.exam)))} if book else {}
    answers = {(a.attempt_id, a.question_id): a.value for a in db.session.scalars(
        select(Answer).where(Answer.attempt_id.in_({s.attempt_id for s in slots.values()})))} if slots else {}
    items, today = [], practice.today()
    for entry in book:
        slot = slots.get(entry.slot_id)
        if slot is None:
            continue
        attempt = slot.attempt
        q = slot.shown  # the question as the member was shown it, graded by the key it was graded by
        key, explanation, _regraded = services.graded_key(slot)
        answer = answers.get((attempt.id, slot.question_id))
        items.append({"exam": attempt.exam, "stem_html": render_stem(q), "type_label": q.kind.label,
                      "options": q.kind.render_options(q, None),
                      "yours": q.kind.describe(q, answer), "correct": q.kind.describe(q, key),
                      "explanation": explanation if attempt.exam.review == "explanations" else "",
                      "score": slot.score, "points": slot.points, "due": entry.due_day <= today,
                      "due_day": entry.due_day, "right_days": entry.right_days})
    return render_template("exams/wrong_book.html", items=items, due=due, mastered=mastered,
                           form=ActionForm())


def home_panel(user):
    """Exams open now with their closing time, on the home page."""
    rows = services.exams_with_terms(user)
    running = set(db.session.scalars(select(Attempt.exam_id).where(
        Attempt.user_id == user.id, Attempt.state == "in_progress",
        Attempt.exam_id.in_([e.id for e, _left, _terms in rows])))) if rows else set()
    # an exam with no attempt left is done for this member: it leaves home unless one is running
    rows = [(e, left, e.id in running, terms.closes_at) for e, left, terms in rows
            if left > 0 or e.id in running][:5]
    if not rows:
        return None
    return Markup(render_template("exams/_home_panel.html", rows=rows))  # noqa: S704  (an escaped template)


# -- banks and questions --------------------------------------------------------------------------

@bp.route("/admin/banks")
@auth.roles_required("admin", "lecturer")
def banks():
    counts = dict(db.session.execute(select(Question.bank_id, func.count(Question.id))
                                     .where(Question.is_active.is_(True)).group_by(Question.bank_id)).all())
    stmt = select(QuestionBank).order_by(QuestionBank.name)
    scope = auth.editable_bank_ids(current_user)
    if scope is not None:
        stmt = stmt.where(QuestionBank.id.in_(scope))
    rows = db.session.scalars(stmt).all()
    return render_template("exams/banks.html", banks=rows, counts=counts, import_form=BankImportForm(),
                           bank_form=BankForm(prefix="bank"))


@bp.route("/admin/banks/new", methods=["POST"])
@auth.roles_required("admin", "lecturer")
def new_bank():
    form = BankForm(prefix="bank")
    if form.validate_on_submit():
        if services.find_bank(form.name.data):
            flash(_("题库「%(n)s」已存在", n=form.name.data), "error")
            return redirect(url_for("exams.banks"))
        bank = services.get_or_create_bank(form.name.data, actor=current_user)
        bank.description = services.clean(form.description.data)
        db.session.commit()
        return redirect(url_for("exams.bank", bank_id=bank.id))
    flash(_("请填写题库名称"), "error")
    return redirect(url_for("exams.banks"))


@bp.route("/admin/banks/import", methods=["GET", "POST"])
@auth.roles_required("admin", "lecturer")
def import_bank():
    form = BankImportForm()
    if request.method == "GET" and request.args.get("bank"):
        form.bank.data = request.args["bank"]
    result = errors = None
    if form.validate_on_submit():
        existing = services.find_bank(form.bank.data)
        auth.require(existing is None or auth.can_edit_bank(current_user, existing))
        result, errors = import_upload(form.file, lambda data, name: import_bank_file(
            data, name, form.bank.data, actor=current_user))
        if result is not None:
            db.session.commit()
    return render_template("exams/bank_import.html", form=form, result=result, errors=errors)


@bp.route("/admin/banks/template.<fmt>")
@auth.roles_required("admin", "lecturer")
def bank_template(fmt):
    if fmt == "xlsx":
        return _xlsx_response(template_xlsx(), "题库导入模板.xlsx")
    if fmt == "csv":
        return Response(template_csv(), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=question-template.csv"})
    abort(404)


@bp.route("/admin/banks/<int:bank_id>")
@auth.roles_required("admin", "lecturer")
def bank(bank_id):
    bank = _editable_bank(bank_id)
    stmt = select(Question).where(Question.bank_id == bank.id)
    q = services.clean(request.args.get("q")).strip()
    qtype = services.clean(request.args.get("type"))
    category = services.clean(request.args.get("category"))
    if q:
        stmt = stmt.where(Question.stem.ilike(f"%{q}%"))
    if qtype:
        stmt = stmt.where(Question.type == qtype)
    if category:
        stmt = stmt.where(Question.category == category)
    page = db.paginate(stmt.order_by(Question.id), per_page=PAGE_SIZE, error_out=False)
    categories = db.session.scalars(select(Question.category).where(Question.bank_id == bank.id)
                                    .distinct().order_by(Question.category)).all()
    grants = lecturers = None
    if auth.is_admin(current_user):
        grants = access.grants_of(bank)
        granted = {g.user_id for g in grants}
        lecturers = [u for u in db.session.scalars(select(User).where(User.role == "lecturer",
                                                                      User.is_active_account.is_(True))
                                                   .order_by(User.username))
                     if u.id not in granted and u.id != bank.created_by_id]
    return render_template("exams/bank.html", bank=bank, page=page, q=q, qtype=qtype, category=category,
                           categories=[c for c in categories if c], types=all_types(), grants=grants,
                           lecturers=lecturers, form=ActionForm())


def _editable_bank(bank_id):
    bank = db.get_or_404(QuestionBank, bank_id)
    auth.require(auth.can_edit_bank(current_user, bank))
    return bank


@bp.route("/admin/banks/<int:bank_id>/grants", methods=["POST"])
@auth.roles_required("admin")
def grant_bank(bank_id):
    """An admin lets a lecturer read and edit a bank they did not write."""
    bank = db.get_or_404(QuestionBank, bank_id)
    ActionForm().validate_on_submit() or abort(400)
    user = db.session.scalar(select(User).where(User.username == services.clean(request.form.get("username")).strip()))
    try:
        access.grant_bank(bank, user, current_user)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash(_("已授权 %(n)s 使用本题库", n=user.name), "success")
    return redirect(url_for("exams.bank", bank_id=bank.id))


@bp.route("/admin/banks/<int:bank_id>/grants/<int:user_id>/revoke", methods=["POST"])
@auth.roles_required("admin")
def revoke_bank(bank_id, user_id):
    bank = db.get_or_404(QuestionBank, bank_id)
    user = db.get_or_404(User, user_id)
    ActionForm().validate_on_submit() or abort(400)
    if access.revoke_bank(bank, user, current_user):
        db.session.commit()
        flash(_("已收回 %(n)s 的题库授权", n=user.name), "success")
    return redirect(url_for("exams.bank", bank_id=bank.id))


@bp.route("/admin/banks/<int:bank_id>/export.xlsx")
@auth.roles_required("admin", "lecturer")
def export_bank(bank_id):
    bank = _editable_bank(bank_id)
    return _xlsx_response(export_xlsx(bank), f"{bank.name}.xlsx")


def _question_fields(form):
    return {"type": form.type.data, "stem": form.stem.data, "answer": form.answer.data,
            "options": [getattr(form, f"option_{k}").data or "" for k in LETTERS],
            "score": str(form.score.data), "difficulty": form.difficulty.data, "category": form.category.data,
            "explanation": form.explanation.data, "is_active": form.is_active.data}


@bp.route("/admin/banks/<int:bank_id>/questions/new", methods=["GET", "POST"])
@bp.route("/admin/questions/<int:question_id>", methods=["GET", "POST"])
@auth.roles_required("admin", "lecturer")
def edit_question(bank_id=None, question_id=None):
    question = db.get_or_404(Question, question_id) if question_id else None
    bank = question.bank if question else db.get_or_404(QuestionBank, bank_id)
    auth.require(auth.can_edit_bank(current_user, bank))
    form = QuestionForm(obj=question)
    if question is not None and request.method == "GET":
        form.answer.data = question.kind.format_answer(question)
        form.difficulty.data = str(question.difficulty)
        for i, text in enumerate(question.options or []):
            getattr(form, f"option_{LETTERS[i]}").data = text
    if form.validate_on_submit():
        try:
            question = services.save_question(bank, _question_fields(form), question=question, actor=current_user)
        except DomainError as exc:
            show_on_form(form, exc, "answer")
        else:
            db.session.commit()
            flash(_("题目已保存"), "success")
            return redirect(url_for("exams.bank", bank_id=bank.id))
    preview = render_stem(question) if question else None
    return render_template("exams/question_form.html", form=form, bank=bank, question=question,
                           letters=LETTERS, preview=preview)


# -- exams (staff) -------------------------------------------------------------------------------

def _staff_exam(exam_id):
    exam = db.get_or_404(Exam, exam_id)
    return exam


@bp.route("/admin/exams")
@auth.roles_required("admin", "secretary", "lecturer")
def admin_exams():
    exams = db.session.scalars(select(Exam).order_by(Exam.created_at.desc(), Exam.id.desc())).all()
    counted = select(Attempt.exam_id, func.count(Attempt.id)).where(Attempt.is_preview.is_(False))
    counts = dict(db.session.execute(counted.group_by(Attempt.exam_id)).all())
    pending = dict(db.session.execute(counted.where(Attempt.state == "pending_review")
                                      .group_by(Attempt.exam_id)).all())
    return render_template("exams/admin_exams.html", exams=exams, counts=counts, pending=pending,
                           now=clock.now())


def _bank_choices():
    return [SelectChoice("", _("（不使用）"))] + [
        SelectChoice(str(b.id), b.name) for b in db.session.scalars(select(QuestionBank).order_by(QuestionBank.name))]


def _local_to_utc(moment):
    return to_utc(moment).replace(tzinfo=None) if moment else None


@bp.route("/admin/exams/new", methods=["GET", "POST"])
@auth.roles_required("admin")
def new_exam():
    form = ExamForm()
    bank_choices = _bank_choices()
    for entry in form.sections:
        entry.form.bank.choices = bank_choices
    form.branches.choices = [SelectChoice(str(b.id), b.name) for b in db.session.scalars(
        select(Branch).where(Branch.is_active.is_(True)).order_by(Branch.code))]
    if form.validate_on_submit():
        sections = []
        for entry in form.sections:
            sub = entry.form
            if not sub.bank.data:
                continue
            bank_ref = int_id(sub.bank.data) or str(sub.bank.data)
            sections.append({"bank": bank_ref, "category": sub.category.data or None,
                             "difficulty": int(sub.difficulty.data) if sub.difficulty.data else None,
                             "count": sub.count.data, "points_each": sub.points_each.data or Decimal("1")})
        branches = [db.session.get(Branch, int_id(b)) for b in form.branches.data or [] if int_id(b)]
        data = {"title": form.title.data, "description": form.description.data,
                "time_limit_seconds": form.time_limit_minutes.data * 60,
                "opens_at": _local_to_utc(form.opens_at.data), "closes_at": _local_to_utc(form.closes_at.data),
                "max_attempts": form.max_attempts.data, "grading_method": form.grading_method.data,
                "pass_score": form.pass_score.data, "points_on_pass": form.points_on_pass.data or 0,
                "shuffle": form.shuffle_questions.data, "shuffle_options": form.shuffle_options.data,
                "partial_credit": form.partial_credit.data, "certificate": form.certificate.data,
                "review": form.review.data,
                "review_when": form.review_when.data, "audience": form.audience.data,
                "branches": [b for b in branches if b is not None],
                "job_posts": [p for p in (form.job_posts.data or "").replace("，", ",").split(",")],
                "sections": sections}
        try:
            exam = services.create_exam(data, actor=current_user)
        except DomainError as exc:
            db.session.rollback()
            target = {"time_limit_seconds": "time_limit_minutes"}.get(exc.field, exc.field)
            field = getattr(form, target, None) if target else None
            if field is None or isinstance(getattr(field, "entries", None), list):
                form.sections.errors = [*(form.sections.errors if isinstance(form.sections.errors, list) else []),
                                        exc.message]
            else:
                field.errors.append(exc.message)
        else:
            db.session.commit()
            flash(_("考试已创建"), "success")
            return redirect(url_for("exams.admin_exam", exam_id=exam.id))
    return render_template("exams/exam_form.html", form=form)


@bp.route("/admin/exams/<int:exam_id>")
@auth.roles_required("admin", "secretary", "lecturer")
def admin_exam(exam_id):
    return render_admin_exam(_staff_exam(exam_id))


def render_admin_exam(exam, override_form=None, status=200):
    """The exam's staff page; ``override_form``: the overrides form as posted (with its errors)."""
    from pbschool.exams.override_views import override_section

    return render_template("exams/admin_exam.html", exam=exam, may_mark=auth.can_mark_exam(current_user, exam),
                           **override_section(exam, override_form)), status


def _utc_to_local(moment):
    from flask_babel import to_user_timezone

    return to_user_timezone(moment).replace(tzinfo=None) if moment else None


@bp.route("/admin/exams/<int:exam_id>/edit", methods=["GET", "POST"])
@auth.roles_required("admin")
def edit_exam(exam_id):
    exam = _staff_exam(exam_id)
    form = ExamSettingsForm(obj=exam)
    if request.method == "GET":
        form.certificate.data = exam.issues_certificate
        form.opens_at.data, form.closes_at.data = _utc_to_local(exam.opens_at), _utc_to_local(exam.closes_at)
    if form.validate_on_submit():
        data = {"title": form.title.data, "description": form.description.data,
                "opens_at": _local_to_utc(form.opens_at.data), "closes_at": _local_to_utc(form.closes_at.data),
                "max_attempts": form.max_attempts.data, "review": form.review.data,
                "review_when": form.review_when.data, "is_published": form.is_published.data,
                "certificate": form.certificate.data}
        try:
            services.update_exam(exam, data, actor=current_user)
        except DomainError as exc:
            show_on_form(form, exc, "title")
        else:
            db.session.commit()
            flash(_("考试设置已保存"), "success")
            return redirect(url_for("exams.admin_exam", exam_id=exam.id))
    return render_template("exams/exam_settings.html", form=form, exam=exam)


def _filtered_attempts(exam):
    branch_id = request.args.get("branch", type=int)
    if branch_id and not auth.can_oversee_branch(current_user, branch_id):
        abort(403)
    attempts = services.results_query(exam, current_user, branch_id)
    state = request.args.get("state") or ""
    if state == "passed":
        attempts = [a for a in attempts if a.passed]
    elif state == "failed":
        attempts = [a for a in attempts if a.passed is False]
    elif state in ("in_progress", "pending_review"):
        attempts = [a for a in attempts if a.state == state]
    return attempts, branch_id, state


@bp.route("/admin/exams/<int:exam_id>/results")
@auth.roles_required("admin", "secretary")
def results(exam_id):
    exam = _staff_exam(exam_id)
    attempts, branch_id, state = _filtered_attempts(exam)
    counted = services.counted_attempts(exam, attempts)
    by_branch = stats.pass_rate_by_branch(counted.values())
    distribution = stats.distribution(counted.values())
    branches = db.session.scalars(auth.scope_to_branch(select(Branch), current_user, Branch.id)
                                  .order_by(Branch.code)).all()
    if request.args.get("format") == "xlsx":
        header = ["支部", "用户名", "姓名", "次数", "状态", "得分", "满分", "得分率%", "是否通过",
                  "交卷时间（北京时间）"]
        rows = [[a.user.branch.name if a.user.branch else "", a.user.username, a.user.name, a.number,
                 str(STATE_NAMES.get(a.state, a.state)), _f(a.score), _f(a.max_score), _f(a.percent),
                 "" if a.passed is None else ("通过" if a.passed else "未通过"), a.submitted_at]
                for a in attempts]
        from pbschool.tabular import xlsx_bytes

        return _xlsx_response(xlsx_bytes("成绩", header, rows), f"{exam.title}-成绩.xlsx")
    return render_template("exams/results.html", exam=exam, attempts=attempts, counted=counted,
                           by_branch=by_branch, distribution=distribution, branches=branches,
                           branch_id=branch_id, state=state, chart=stats.bar_svg(distribution),
                           state_names=STATE_NAMES)


@bp.route("/admin/attempts/<int:attempt_id>")
@auth.roles_required("admin", "secretary")
def attempt_detail(attempt_id):
    """One member's answer sheet for the committee office (secretary: own branch)."""
    attempt = db.get_or_404(Attempt, attempt_id)
    auth.require(attempt.user.branch_id is not None and auth.can_oversee_branch(current_user, attempt.user.branch_id)
                 or auth.is_admin(current_user))
    items, key_shown = access.staff_review(attempt, current_user) if attempt.state != "in_progress" else (None, False)
    return render_template("exams/attempt_detail.html", attempt=attempt, exam=attempt.exam, review=items,
                           key_shown=key_shown, state_names=STATE_NAMES, late=late_answers.for_attempt(attempt))


STATE_NAMES = {"in_progress": _l("答题中"), "submitted": _l("已评分"), "pending_review": _l("待阅卷")}


def _f(value):
    return None if value is None else float(value)


@bp.route("/admin/exams/<int:exam_id>/statistics")
@auth.roles_required("admin", "secretary")
def statistics(exam_id):
    exam = _staff_exam(exam_id)
    attempts = [a for a in services.results_query(exam, current_user) if a.state != "in_progress"]
    rows = stats.question_stats(attempts)
    if request.args.get("format") == "xlsx":
        from pbschool.tabular import xlsx_bytes

        header = ["题号", "题型", "题干", "作答次数", "难度系数%", "区分度", "选项分布"]
        table = [[r["question_id"] if not r["version"] else f'{r["question_id"]}（第 {r["version"]} 版）',
                  str(r["question"].kind.label), r["question"].stem, r["n"], r["facility"],
                  r["discrimination"], "；".join(f"{k}: {c}（{p}%）" for k, c, p in r["options"])] for r in rows]
        return _xlsx_response(xlsx_bytes("试题分析", header, table), f"{exam.title}-试题分析.xlsx")
    return render_template("exams/statistics.html", exam=exam, rows=rows, n=len(attempts))


@bp.route("/admin/exams/<int:exam_id>/marking", methods=["GET", "POST"])
@auth.roles_required("admin", "lecturer")
def marking(exam_id):
    exam = _staff_exam(exam_id)
    auth.require(auth.can_mark_exam(current_user, exam))
    form = ActionForm()
    if form.validate_on_submit():
        marked, problems = 0, []
        for key, raw in request.form.items():
            if not key.startswith("score-") or not raw.strip():
                continue
            slot = db.session.get(AttemptQuestion, slot_id) if (slot_id := int_id(key[6:])) else None
            if slot is None or slot.attempt.exam_id != exam.id:
                problems.append(_("#%(k)s：本场考试中没有这道题", k=key[6:]))
                continue
            try:
                hand_marking.mark_answer(slot.attempt, slot.question_id, raw, current_user,
                                         request.form.get(f"feedback-{slot.id}", ""))
                marked += 1
            except DomainError as exc:
                problems.append(f"#{slot.id}：{exc.message}")
        if problems:
            db.session.rollback()
            flash(_("未保存：%(p)s", p="；".join(problems)), "error")
        else:
            db.session.commit()
            flash(_("已评阅 %(n)d 道题", n=marked), "success")
        return redirect(url_for("exams.marking", exam_id=exam.id, hide=request.args.get("hide")))
    slots = hand_marking.awaiting_marking(exam, current_user)
    answers = {(a.attempt_id, a.question_id): a.value for a in db.session.scalars(
        select(Answer).where(Answer.attempt_id.in_({s.attempt_id for s in slots})))} if slots else {}
    groups = {}
    for slot in slots:
        # Grouped by the version each member was shown: an edit since then must not change what the
        # marker reads the answer against.
        groups.setdefault(slot.shown, []).append((slot, answers.get((slot.attempt_id, slot.question_id))))
    return render_template("exams/marking.html", exam=exam, groups=groups, form=form,
                           hide_names=request.args.get("hide") == "1", render_stem=render_stem)


@bp.route("/admin/exams/<int:exam_id>/regrade", methods=["GET", "POST"])
@auth.roles_required("admin")
def regrade(exam_id):
    """The dry run's list first; the form applies it (the same service as the API)."""
    exam = _staff_exam(exam_id)
    form = ActionForm()
    if form.validate_on_submit():
        outcome = services.regrade(exam, dry_run=False, actor=current_user)
        db.session.commit()
        flash(_("已重新评分，%(n)d 份答卷的成绩有变化", n=len(outcome.changes)), "success")
    else:
        outcome = services.regrade(exam, dry_run=True, actor=current_user)
        db.session.rollback()
    return render_template("exams/regrade.html", exam=exam, outcome=outcome, changes=outcome.changes,
                           form=form, applied=outcome.applied)
