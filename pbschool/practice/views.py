"""Practice pages: the hub (每日答题, 专项练习, 错题本), a paper with feedback per question, the
home page's tasks panel, and the admin's choice of practice banks. Thin: services do the work."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select

from pbschool import auth
from pbschool.errors import DomainError
from pbschool.exams.forms import ActionForm
from pbschool.exams.models import Exam, ExamSection, QuestionBank
from pbschool.extensions import db
from pbschool.practice import bp, services
from pbschool.web import int_id


@bp.route("/practice")
@login_required
def hub():
    services.sync_wrong_book(current_user)
    db.session.commit()
    _items, due, _mastered = services.book(current_user)
    return render_template("practice/hub.html", tasks=services.tasks(current_user), categories=services.categories(),
                           due=due, recent=services.recent(current_user), form=ActionForm(),
                           count=services.DEFAULT_COUNT)


@bp.route("/practice/start", methods=["POST"])
@login_required
def start():
    ActionForm().validate_on_submit() or abort(400)
    mode = request.form.get("mode", "daily")
    try:
        practice = services.start(current_user, mode, category=request.form.get("category") or None)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("practice.hub"))
    db.session.commit()
    return redirect(url_for("practice.paper", practice_id=practice.id))


def _mine(practice_id):
    try:
        return services.own_practice(practice_id, current_user)
    except DomainError:
        abort(404)


@bp.route("/practice/<int:practice_id>")
@login_required
def paper(practice_id):
    practice = _mine(practice_id)
    items = []
    for slot in services.slots(practice):
        item = services.question_payload(slot)
        if slot.answered_at is not None:
            item["feedback"] = services.feedback(slot)
            item["answer_text"] = slot.shown.kind.describe(slot.shown, slot.shown.answer, slot.option_order)
        items.append(item)
    answered = sum(1 for i in items if "feedback" in i)
    return render_template("practice/paper.html", practice=practice, items=items, answered=answered,
                           form=ActionForm())


@bp.route("/practice/<int:practice_id>/answer/<int:question_id>", methods=["POST"])
@login_required
def answer(practice_id, question_id):
    """The no-JavaScript path of one answer (practice.js sends the same to the API)."""
    from pbschool.exams.views import _form_value

    practice = _mine(practice_id)
    ActionForm().validate_on_submit() or abort(400)
    slot = next((s for s in services.slots(practice) if s.question_id == question_id), None)
    if slot is None:
        abort(404)
    value = _form_value(services.question_payload(slot), request.form)
    try:
        services.answer(practice, question_id, value, current_user)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
    return redirect(url_for("practice.paper", practice_id=practice.id, _anchor=f"q-{slot.position}"))


@bp.route("/practice/<int:practice_id>/finish", methods=["POST"])
@login_required
def finish(practice_id):
    practice = _mine(practice_id)
    ActionForm().validate_on_submit() or abort(400)
    services.finish(practice, current_user)
    db.session.commit()
    return redirect(url_for("practice.paper", practice_id=practice.id, _anchor="result"))


@bp.route("/admin/practice", methods=["GET", "POST"])
@auth.roles_required("admin")
def admin_banks():
    """Which banks are open to practice: their answers are shown at once to every member."""
    form = ActionForm()
    if request.method == "POST":
        form.validate_on_submit() or abort(400)
        ids = [i for i in (int_id(v) for v in request.form.getlist("bank")) if i is not None]
        services.set_practice_banks(ids, current_user)
        db.session.commit()
        flash(_("练习题库已保存"), "success")
        return redirect(url_for("practice.admin_banks"))
    banks = db.session.scalars(select(QuestionBank).order_by(QuestionBank.name)).all()
    exams_of = {}
    for exam_title, bank_id in db.session.execute(
            select(Exam.title, ExamSection.bank_id).join(ExamSection, ExamSection.exam_id == Exam.id).distinct()):
        exams_of.setdefault(bank_id, []).append(exam_title)
    return render_template("practice/admin_banks.html", banks=banks, opened=services.practice_bank_ids(),
                           exams_of=exams_of, form=form)


def home_panel(user):
    """Today's tasks: each rule's points today against its cap, what is left, and the streak."""
    return Markup(render_template("practice/_home_panel.html", tasks=services.tasks(user)))  # noqa: S704
