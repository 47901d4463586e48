"""网上考核: the committee's overview of branches, a branch member by member, one file per member."""


from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from pbschool import auth, charts
from pbschool.accounts.models import User
from pbschool.accounts.services import find_branch
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.points import queries as point_queries
from pbschool.points import services as points
from pbschool.reports import bp, figures, services
from pbschool.reports.models import BranchRating
from pbschool.tabular import xlsx_book

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RHYTHM = {"green": "按时", "amber": "有欠缺", "red": "明显滞后"}
#: A member's learning status, in the same words on the page and in its .xlsx.
MEMBER_STATUS = {"green": _l("正常"), "amber": _l("稍落后"), "red": _l("落后")}


def _series_charts(series):
    """The 12-month line charts of a series from ``figures.committee_series``."""
    periods = [s["period"] for s in series]
    return {"points": charts.line_svg(periods, [s["points"] for s in series], _("人均积分")),
            "hours": charts.line_svg(periods, [s["hours"] for s in series], _("人均学时")),
            "pass_rate": charts.line_svg(periods, [s["pass_rate"] for s in series], _("考试通过率（%）"))}


def _series_sheet(series):
    return (_("近12个月"), [_("月份"), _("人均积分"), _("人均学时"), _("考试通过率%")],
            [(s["period"], _num(s["points"]), _num(s["hours"]), _num(s["pass_rate"])) for s in series])


def _xlsx(filename, body):
    return Response(body, mimetype=XLSX, headers={"Content-Disposition": f"attachment; filename={filename}"})


@bp.route("/reports/overview", methods=["GET", "POST"])
@auth.roles_required("admin")
def overview():
    if request.method == "POST":
        from pbschool.accounts.forms import ActionForm

        ActionForm().validate_on_submit() or abort(400)
        action = request.form.get("action")
        try:
            if action == "compute":
                quarter = request.form.get("quarter") or ""
                points.quarter_periods(quarter)
                n = services.compute_branch_ratings(quarter, actor=current_user)
                message = _("已为 %(n)d 个支部提出 %(q)s 星级建议", n=n, q=quarter)
            elif action == "confirm":
                rating = db.get_or_404(BranchRating, request.form.get("rating", type=int) or 0)
                services.confirm_rating(rating, request.form.get("stars"), actor=current_user)
                message = _("已确认 %(b)s 的星级", b=rating.branch.name)
            elif action == "weights":
                services.save_weights({k: request.form.get(k) for k in services.DIMENSIONS}, actor=current_user)
                message = _("权重已保存")
            else:
                abort(400)
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(message, "success")
        return redirect(url_for("reports.overview"))
    months = point_queries.last_months(12)
    series = figures.committee_series(months)
    rows = figures.branch_rows()
    names = [r["branch"].name for r in rows]
    bars = {"hours": charts.bars_svg(zip(names, [r["hours_completion"] for r in rows], strict=True),
                                     _("学时完成率"), "%"),
            "pass_rate": charts.bars_svg(zip(names, [r["exam_pass_rate"] for r in rows], strict=True),
                                         _("考试通过率"), "%"),
            "points": charts.bars_svg(zip(names, [r["points_per_member"] for r in rows], strict=True),
                                      _("本月人均积分"))}
    quarters = point_queries.ended_quarters()
    ratings = db.session.scalars(select(BranchRating).where(BranchRating.quarter.in_(quarters))
                                 .order_by(BranchRating.quarter.desc(), BranchRating.score.desc())).all()
    return render_template("reports/overview.html", rows=rows, series=series, charts=_series_charts(series),
                           bars=bars, quarters=quarters, ratings=ratings,
                           weights=services.weights(), rhythm_names=RHYTHM)


@bp.route("/reports/overview.xlsx")
@auth.roles_required("admin")
def overview_xlsx():
    rows = figures.branch_rows()
    series = figures.committee_series(point_queries.last_months(12))
    body = xlsx_book([(_("网上考核"), [_("支部"), _("党员数"), _("三会一课"), _("学时完成率%"), _("考试通过率%"),
                                     _("本月人均积分"), _("星级")],
                      [(r["branch"].name, r["members"], _(RHYTHM[r["rhythm"]["status"]]),
                        _num(r["hours_completion"]), _num(r["exam_pass_rate"]), _num(r["points_per_member"]),
                        r["rating"].stars if r["rating"] and r["rating"].stars is not None else "")
                       for r in rows]), _series_sheet(series)])
    return _xlsx("overview.xlsx", body)


def _num(value):
    return None if value is None else float(value)


def _branch_arg():
    if auth.is_admin(current_user):
        branch = find_branch(request.args.get("branch") or "")
        if branch is None:
            abort(404)
        return branch
    auth.require(current_user.branch is not None)
    return current_user.branch


@bp.route("/reports/branch")
@auth.roles_required("admin", "secretary")
def branch():
    if auth.is_admin(current_user) and not request.args.get("branch"):
        return redirect(url_for("reports.overview"))
    target = _branch_arg()
    from pbschool.meetings import services as meetings

    series = figures.committee_series(point_queries.last_months(12), target.id)
    return render_template("reports/branch.html", branch=target, rows=figures.member_rows(target.id),
                           rhythm=meetings.rhythm(target.id), rhythm_names=RHYTHM, series=series,
                           charts=_series_charts(series), member_status=MEMBER_STATUS)


@bp.route("/reports/branch.xlsx")
@auth.roles_required("admin", "secretary")
def branch_xlsx():
    target = _branch_arg()
    rows = figures.member_rows(target.id)
    series = figures.committee_series(point_queries.last_months(12), target.id)
    body = xlsx_book([(target.name, [_("姓名"), _("用户名"), _("学时"), _("目标学时"), _("本月积分"), _("本年积分"),
                                    _("最近评星"), _("最近考试"), _("状态")],
                      [(r["user"].name, r["user"].username, float(r["hours"]), float(r["target"]),
                        float(r["month_points"]), float(r["year_points"]),
                        r["stars"].stars if r["stars"] else "",
                        f"{r['last_exam'][0]} {r['last_exam'][1].percent or ''}" if r["last_exam"] else "",
                        str(MEMBER_STATUS[r["status"]])) for r in rows]), _series_sheet(series)])
    return _xlsx(f"branch-{target.code}.xlsx", body)


@bp.route("/reports/members/<int:user_id>/record.xlsx")
@login_required
def member_record(user_id):
    """一人一档: a member's hours, courses, exams, points, meetings, stars and certificates in one workbook."""
    member = db.get_or_404(User, user_id)
    auth.require(auth.can_view_user(current_user, member))
    from pbschool.reports.record import record_workbook

    return _xlsx(f"record-{member.username}.xlsx", record_workbook(member))
