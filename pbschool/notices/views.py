"""Pages: my notifications, the announcements, writing one, and who has not read it."""

import re
import uuid

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from pbschool import auth, charts
from pbschool.accounts.models import Branch
from pbschool.errors import DomainError, show_on_form
from pbschool.extensions import db
from pbschool.notices import bp, derived, services
from pbschool.notices.forms import ActionForm, AnnouncementForm


def _page_arg():
    return min(max(request.args.get("page", 1, type=int) or 1, 1), 10_000)


@bp.route("/notifications")
@login_required
def notifications():
    if derived.sync(current_user):
        db.session.commit()
    page = services.notifications_page(current_user, _page_arg())
    return render_template("notices/notifications.html", page=page, title_of=services.title_of,
                           unread=services.unread_count(current_user), form=ActionForm())


@bp.route("/notifications/<int:note_id>/open", methods=["POST"])
@login_required
def open_notification(note_id):
    ActionForm().validate_on_submit() or abort(400)
    target = services.open_notification(current_user, note_id)
    db.session.commit()
    return redirect(target)


@bp.route("/notifications/read-all", methods=["POST"])
@login_required
def read_all():
    ActionForm().validate_on_submit() or abort(400)
    n = services.mark_read(current_user, everything=True)
    db.session.commit()
    flash(_("已全部标为已读（%(n)d 条）", n=n), "success")
    return redirect(url_for("notices.notifications"))


@bp.route("/announcements")
@login_required
def announcements():
    page = _page_arg()
    rows, total = services.announcements_for(current_user, page)
    return render_template("notices/announcements.html", rows=rows, page=page,
                           pages=max(1, -(-total // services.PAGE_SIZE)),
                           can_publish=services.can_publish(current_user))


def _branch_choices():
    stmt = select(Branch).where(Branch.is_active.is_(True)).order_by(Branch.code)
    stmt = auth.scope_to_branch(stmt, current_user, Branch.id)
    return [SelectChoice(str(b.id), b.name) for b in db.session.scalars(stmt)]


@bp.route("/announcements/new", methods=["GET", "POST"])
@login_required
def new_announcement():
    auth.require(services.can_publish(current_user))
    form = AnnouncementForm()
    form.branches.choices = _branch_choices()
    if not auth.is_admin(current_user):
        form.audience.choices = [SelectChoice("branches", _("本支部"))]
    if request.method == "GET":
        form.key.data = uuid.uuid4().hex
        if not auth.is_admin(current_user):
            form.branches.data = [current_user.branch_id]
    if form.validate_on_submit():
        key = form.key.data if re.fullmatch(r"[0-9a-f]{32}", form.key.data or "") else None
        try:
            item = services.publish_announcement(
                current_user, title=form.title.data, body=form.body.data, audience=form.audience.data,
                branch_ids=form.branches.data or (), pinned=form.pinned.data, key=key)
        except DomainError as exc:
            show_on_form(form, exc, "title")
        else:
            db.session.commit()
            flash(_("通知已发布，已发送给 %(n)d 人", n=item.recipient_count), "success")
            return redirect(url_for("notices.announcement", announcement_id=item.id))
    return render_template("notices/form.html", form=form)


@bp.route("/announcements/<int:announcement_id>")
@login_required
def announcement(announcement_id):
    item = services.read_announcement(current_user, services.get_announcement(announcement_id))
    db.session.commit()
    readers, chart = None, None
    if services.can_see_readers(current_user, item):
        readers = services.readership(item, current_user)
        chart = charts.bars_svg([(r["branch"].name if r["branch"] else _("无支部"), r["sent"] - r["read"])
                                 for r in readers], _("各支部未读人数"), unit=_("人"))
    return render_template("notices/announcement.html", item=item, readers=readers, chart=chart,
                           can_pin=services.can_manage(current_user, item), form=ActionForm())


@bp.route("/announcements/<int:announcement_id>/pin", methods=["POST"])
@login_required
def pin(announcement_id):
    ActionForm().validate_on_submit() or abort(400)
    item = services.get_announcement(announcement_id)
    if not services.can_read(current_user, item):
        abort(404)
    services.set_pinned(item, current_user, request.form.get("pinned") == "1")
    db.session.commit()
    return redirect(url_for("notices.announcement", announcement_id=item.id))
