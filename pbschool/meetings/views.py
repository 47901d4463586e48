"""Meeting pages: a branch's meetings and rhythm, recording a meeting with its attendance."""

import re
import uuid

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from pbschool import auth, clock
from pbschool.accounts.models import Branch
from pbschool.accounts.services import find_branch
from pbschool.errors import DomainError, show_on_form
from pbschool.extensions import db
from pbschool.meetings import bp, services
from pbschool.meetings.forms import AttendeesForm, CapsForm, MeetingForm, kind_choices
from pbschool.meetings.models import MEETING_KINDS, Meeting
from pbschool.points import services as points


def _branch_for_request():
    """The secretary's own branch; an admin picks one with ?branch=CODE."""
    if auth.is_admin(current_user):
        code = request.args.get("branch")
        if not code:
            return None
        branch = find_branch(code)
        if branch is None:
            abort(404)
        return branch
    if current_user.branch is None:
        abort(403)
    return current_user.branch


@bp.route("/meetings")
@auth.roles_required("admin", "secretary")
def index():
    branch = _branch_for_request()
    if branch is None:  # admin without a branch chosen: every branch's rhythm
        branches = db.session.scalars(select(Branch).where(Branch.is_active.is_(True)).order_by(Branch.code)).all()
        return render_template("meetings/branches.html",
                               rows=[(b, services.rhythm(b.id)) for b in branches])
    meetings = db.session.scalars(select(Meeting).where(Meeting.branch_id == branch.id)
                                  .order_by(Meeting.held_on.desc(), Meeting.id.desc()).limit(100)).all()
    return render_template("meetings/index.html", branch=branch, meetings=meetings,
                           rhythm=services.rhythm(branch.id), kinds=MEETING_KINDS)


def _member_choices(branch):
    return [SelectChoice(str(u.id), u.name) for u in services.branch_members(branch.id)]


def _flash_outcome(done, actor):
    flash(_("会议已记录，%(n)d 名出席党员获得积分", n=done.credited), "success")
    if done.capped:
        flash(_("%(names)s 本期的%(kind)s出席积分已计满，此次只记出席、不再加分",
                names="、".join(u.name for u in done.capped), kind=_(done.meeting.kind_name)), "info")
    if any(u.id == actor.id for u in done.pending):
        flash(str(auth.OWN_RECORD_MESSAGES["own_meeting"]), "info")


@bp.route("/meetings/new", methods=["GET", "POST"])
@auth.roles_required("admin", "secretary")
def new():
    branch = _branch_for_request()
    if branch is None:
        abort(400)
    auth.require(services.can_record(current_user, branch.id))
    form = MeetingForm()
    form.kind.choices = kind_choices()
    form.attendees.choices = _member_choices(branch)
    if request.method == "GET":
        form.held_on.data = points.local_date(clock.now())
        form.key.data = uuid.uuid4().hex
    if form.validate_on_submit():
        key = form.key.data if re.fullmatch(r"[0-9a-f]{32}", form.key.data or "") else None
        try:
            done = services.record_meeting(
                branch, form.kind.data, form.held_on.data, form.topic.data, form.attendees.data,
                actor=current_user, notes=form.notes.data, key=key)
        except DomainError as exc:
            show_on_form(form, exc, "topic")
        else:
            db.session.commit()
            if done.replayed:
                flash(_("这次提交已经记录过了"), "info")
            else:
                _flash_outcome(done, current_user)
            return redirect(url_for("meetings.detail", meeting_id=done.meeting.id))
    return render_template("meetings/form.html", form=form, branch=branch)


@bp.route("/meetings/<int:meeting_id>", methods=["GET", "POST"])
@auth.roles_required("admin", "secretary")
def detail(meeting_id):
    meeting = db.get_or_404(Meeting, meeting_id)
    auth.require(auth.can_oversee_branch(current_user, meeting.branch_id))
    present = {a.user_id for a in meeting.attendances}
    pending = {u.id for u in services.pending_attendees(meeting)}
    form = AttendeesForm()
    # left out, or present and waiting for someone other than themself to confirm their attendance
    form.attendees.choices = [
        c if int(c.value) not in pending else SelectChoice(c.value, _("%(name)s（确认出席）", name=c.label))
        for c in _member_choices(meeting.branch)
        if int(c.value) not in present or (int(c.value) in pending and int(c.value) != current_user.id)]
    if form.validate_on_submit():
        try:
            credited = services.add_attendees(meeting, form.attendees.data, actor=current_user)
        except DomainError as exc:
            db.session.rollback()
            form.attendees.errors.append(exc.message)
        else:
            db.session.commit()
            flash(_("已补记 %(n)d 名出席党员", n=credited), "success")
            if current_user.id in {u.id for u in services.pending_attendees(meeting)}:
                flash(str(auth.OWN_RECORD_MESSAGES["own_meeting"]), "info")
            return redirect(url_for("meetings.detail", meeting_id=meeting.id))
    absent = [u for u in services.branch_members(meeting.branch_id) if u.id not in present]
    return render_template("meetings/detail.html", meeting=meeting, form=form, pending=pending, absent=absent)


@bp.route("/meetings/settings", methods=["GET", "POST"])
@auth.roles_required("admin")
def settings():
    form = CapsForm()
    if request.method == "GET":
        for kind, cap in services.attendance_caps().items():
            form[kind].data = str(cap)
    if form.validate_on_submit():
        try:
            services.save_attendance_caps({kind: form[kind].data for kind in MEETING_KINDS}, actor=current_user)
        except DomainError as exc:
            show_on_form(form, exc, "general")
        else:
            db.session.commit()
            flash(_("出席积分设置已保存"), "success")
            return redirect(url_for("meetings.settings"))
    return render_template("meetings/settings.html", form=form, kinds=MEETING_KINDS)


@bp.route("/meetings.xlsx")
@auth.roles_required("admin", "secretary")
def export():
    branch = _branch_for_request()
    if branch is None:
        abort(400)
    from flask import Response

    from pbschool.tabular import xlsx_bytes

    meetings = db.session.scalars(select(Meeting).where(Meeting.branch_id == branch.id)
                                  .order_by(Meeting.held_on.desc(), Meeting.id.desc())).all()
    body = xlsx_bytes(branch.name, [_("日期"), _("类型"), _("主题"), _("出席人数"), _("出席党员"), _("记录人")],
                      [(m.held_on, _(m.kind_name), m.topic, len(m.attendances),
                        "、".join(a.user.name for a in m.attendances),
                        m.recorded_by.name if m.recorded_by else "") for m in meetings])
    return Response(body, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename=meetings-{branch.code}.xlsx"})
