"""Points pages: my points, the monthly boards (晒分), awards, publication, stars and honours."""

import uuid
from decimal import Decimal

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import func, select
from wtforms.fields.choices import SelectChoice

from pbschool import auth, charts, clock
from pbschool.accounts.models import Branch, User
from pbschool.accounts.services import find_branch
from pbschool.errors import DomainError, show_on_form
from pbschool.extensions import db
from pbschool.points import bp, keys, queries, services
from pbschool.points.forms import AwardForm, PublishForm, ReverseForm, RuleForm, StarSettingsForm, StarsForm
from pbschool.points.models import (
    CATEGORIES,
    LedgerEntry,
    MonthlyPublication,
    PointRule,
    PublishedScore,
    StarRating,
)
from pbschool.tabular import xlsx_bytes
from pbschool.web import int_id

BOARD_PAGE = 100
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _xlsx(filename, title, header, rows):
    return Response(xlsx_bytes(title, header, rows), mimetype=XLSX,
                    headers={"Content-Disposition": f"attachment; filename={filename}"})


def _member_page(user, *, manage=False):
    summary = queries.member_summary(user)
    months = queries.last_months(12)
    series = [(p, summary["by_month"].get(p, queries.ZERO)) for p in months]
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    category = request.args.get("category") or None
    kinds = db.session.scalars(select(LedgerEntry.category).where(LedgerEntry.user_id == user.id)
                               .distinct()).all()
    if category not in kinds:
        category = None
    entries = queries.entries_of(user, limit=51, offset=(page - 1) * 50, category=category)
    reversed_ids = set(db.session.scalars(select(LedgerEntry.reverses_id).where(
        LedgerEntry.reverses_id.in_([e.id for e in entries]))))
    return render_template(
        "points/member.html", member=user, s=summary, series=series,
        chart=charts.line_svg([p for p, _v in series], [v for _p, v in series], _("近 12 个月积分")),
        entries=entries[:50], has_more=len(entries) > 50, page=page, stars=queries.stars_of(user),
        manage=manage, reversed_ids=reversed_ids, reverse_form=ReverseForm(), categories=CATEGORIES,
        category=category, entry_categories=sorted(kinds, key=_category_order))


# the four fixed categories, marked for translation (a chip shows gettext of the stored name)
CATEGORY_LABELS = (_l("学习"), _l("考试"), _l("组织生活"), _l("作用发挥"))


def _category_order(name):
    return (CATEGORIES.index(name) if name in CATEGORIES else len(CATEGORIES), name)


@bp.route("/points/rules")
@login_required
def rules():
    """The rules and their caps, for every member: what earns points and how much a day or a month."""
    found = db.session.scalars(select(PointRule).where(PointRule.is_active.is_(True))).all()
    found = sorted(found, key=lambda r: (_category_order(r.category), r.name))
    settings = services.all_settings()
    return render_template("points/rules.html", rules=found,
                           month_target=Decimal(str(settings.get("month_target", 10))),
                           year_target=Decimal(str(settings.get("year_target", 120))))


@bp.route("/points")
@login_required
def mine():
    return _member_page(current_user)


@bp.route("/points/members/<int:user_id>")
@auth.roles_required("admin", "secretary")
def member(user_id):
    user = db.get_or_404(User, user_id)
    auth.require(auth.can_view_user(current_user, user))
    return _member_page(user, manage=services.can_award(current_user, user))


# -- boards ------------------------------------------------------------------------------------

def _period_arg():
    # Boards open on the last published month: the current one is live and, on the 1st, all zeros.
    raw = request.args.get("period") or queries.last_published_period() or services.current_period()
    try:
        return services.parse_period(raw)
    except DomainError:
        abort(400)


def _board_context():
    period = _period_arg()
    branch = None
    if request.args.get("branch"):
        branch = find_branch(request.args["branch"])
        if branch is None:
            abort(404)
    branch_id = branch.id if branch else None

    def build():
        publication, rows = queries.board(period, branch_id)
        # plain values (the cache outlives this session), and where each member's line is
        return (publication is not None, keys.short(publication), rows,
                {r["user_id"]: i for i, r in enumerate(rows)})

    publication, seal, rows, where = queries.cached("html", period, branch_id, build)
    return period, branch, publication, seal, rows, where


@bp.route("/points/board")
@login_required
def board():
    period, branch, publication, seal, rows, where = _board_context()
    branches = db.session.scalars(select(Branch).where(Branch.is_active.is_(True)).order_by(Branch.code)).all()
    published = db.session.scalars(select(MonthlyPublication.period)
                                   .order_by(MonthlyPublication.period.desc()).limit(24)).all()
    top = rows[:10]
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    mine = rows[where[current_user.id]] if current_user.id in where else None
    chart = charts.bars_svg([(r["name"], r["points"]) for r in top if r["points"] > 0], _("前 10 名积分条形图"))
    current = services.current_period()
    return render_template("points/board.html", chart=chart, current=current,
                           period=period, branch=branch, publication=publication, seal=seal,
                           rows=rows[(page - 1) * BOARD_PAGE:page * BOARD_PAGE], total=len(rows), page=page,
                           pages=max(1, -(-len(rows) // BOARD_PAGE)), mine=mine, branches=branches,
                           published=published, series=[r for r in top if r["points"] > 0], me_id=current_user.id,
                           months=queries.last_months(12))


@bp.route("/points/board.xlsx")
@login_required
def board_xlsx():
    period, branch, publication, seal, rows, _where = _board_context()
    # the page's words: a published month is its 晒分榜, the month under way its live points
    title = _("%(p)s 晒分榜", p=period) if publication else _("%(p)s 实时积分", p=period)
    lines = [(r["rank"] if r["points"] > 0 else "", r["username"], r["name"], r["branch_name"], float(r["points"]))
             for r in rows]
    if seal:  # the month's seal below the board, to compare with `pbschool ledger verify` and the page
        lines += [(), (_("封存校验码"), seal)]
    return _xlsx(f"points-{period}{'-' + branch.code if branch else ''}.xlsx", title,
                 [_("名次"), _("用户名"), _("姓名"), _("支部"), _("积分")], lines)


# -- awards, deductions, corrections ----------------------------------------------------------

def _award_choices(form):
    stmt = auth.scope_to_branch(select(User).where(User.is_active_account.is_(True), User.branch_id.isnot(None),
                                                   User.id != current_user.id),
                                current_user, User.branch_id).order_by(User.branch_id, User.username)
    form.member.choices = [SelectChoice("", _("请选择"))] + [
        SelectChoice(str(u.id), f"{u.name}（{u.username}）") for u in db.session.scalars(stmt)]
    rules = db.session.scalars(select(PointRule).where(PointRule.is_custom.is_(True), PointRule.is_active.is_(True))
                               .order_by(PointRule.name)).all()
    form.rule.choices = [SelectChoice("", _("不按规则，手工填写分值"))] + [
        SelectChoice(str(r.id), f"{r.name}（{r.category}，{r.points}）") for r in rules]
    form.category.choices = [SelectChoice(c, c) for c in CATEGORIES + tuple(services.custom_categories())]


@bp.route("/points/award", methods=["GET", "POST"])
@auth.roles_required("admin", "secretary")
def award():
    form = AwardForm()
    _award_choices(form)
    if request.method == "GET":
        form.key.data = uuid.uuid4().hex
        if int_id(request.args.get("member")):
            form.member.data = request.args["member"]
    if form.validate_on_submit():
        member = db.session.get(User, member_id) if (member_id := int_id(form.member.data)) else None
        rule = db.session.get(PointRule, rule_id) if (rule_id := int_id(form.rule.data)) else None
        try:
            if member is None:
                raise DomainError(_("请选择党员"), "missing_member", field="member")
            services.require_award_right(current_user, member)
            if rule is None and form.points.data is None:
                raise DomainError(_("请填写分值"), "invalid_points", field="points")
            key = form.key.data if len(form.key.data or "") == 32 else None
            entry = services.award(member, form.points.data, form.reason.data, actor=current_user,
                                   category=form.category.data, is_veto=form.is_veto.data, rule=rule,
                                   source_key=f"manual:{key}" if key else None)
        except DomainError as exc:
            show_on_form(form, exc, "member")
        else:
            db.session.commit()
            if entry is None:
                flash(_("这次提交已经记录过了"), "info")
            else:
                flash(_("已为 %(name)s 记 %(points)s 分", name=member.name, points=entry.points), "success")
            return redirect(url_for("points.member", user_id=member.id))
    return render_template("points/award.html", form=form)


@bp.route("/points/entries/<int:entry_id>/reverse", methods=["POST"])
@auth.roles_required("admin", "secretary")
def reverse(entry_id):
    entry = db.get_or_404(LedgerEntry, entry_id)
    # refused before the form is read: a 403 page with the reason (own_points, or another branch)
    services.require_award_right(current_user, entry.user, _("只能更正本支部党员的积分"))
    form = ReverseForm()
    if not form.validate_on_submit():
        flash(_("请填写更正理由"), "error")
    else:
        try:
            services.reverse(entry, form.reason.data, actor=current_user)
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(_("已冲正该条记录"), "success")
    return redirect(url_for("points.member", user_id=entry.user_id))


# -- admin: publication, stars, honours, rules -----------------------------------------------

def _ended_unpublished_months():
    published = {p for p in db.session.scalars(select(MonthlyPublication.period))}
    months = queries.last_months(13)[:-1]  # the current month has not ended
    return [m for m in reversed(months) if m not in published]


@bp.route("/points/admin", methods=["GET", "POST"])
@auth.roles_required("admin")
def admin():
    publish_form = PublishForm(prefix="pub")
    publish_form.period.choices = [SelectChoice(m, m) for m in _ended_unpublished_months()]
    stars_form = StarsForm(prefix="stars")
    stars_form.quarter.choices = [SelectChoice(q, q) for q in queries.ended_quarters()]
    settings_form = StarSettingsForm(prefix="set")
    if request.method == "GET":
        settings_form.base.data = int(services.get_setting("star_base", services.DEFAULT_STAR_BASE))
        settings_form.bands.data = ",".join(str(b) for b in services.star_bands())
        settings_form.honours_top_n.data = int(services.get_setting("honours_top_n", 3))
        settings_form.month_target.data = Decimal(str(services.get_setting("month_target", 10)))
        settings_form.year_target.data = Decimal(str(services.get_setting("year_target", 120)))
    action = request.form.get("action")
    if request.method == "POST":
        form = {"publish": publish_form, "stars": stars_form, "settings": settings_form}.get(action)
        if form is not None and form.validate_on_submit():
            try:
                if action == "publish":
                    pub = services.publish_month(publish_form.period.data, actor=current_user)
                    message = _("已发布 %(p)s 积分榜：%(n)d 名党员，%(e)d 条记录", p=pub.period,
                                n=db.session.scalar(select(func.count(PublishedScore.id))
                                                    .where(PublishedScore.publication_id == pub.id)),
                                e=pub.entry_count)
                elif action == "stars":
                    n = services.compute_stars(stars_form.quarter.data, actor=current_user)
                    message = _("已完成 %(q)s 评星：%(n)d 名党员", q=stars_form.quarter.data, n=n)
                else:
                    services.save_star_settings(settings_form.base.data,
                                                (settings_form.bands.data or "").replace("，", ",").split(","),
                                                actor=current_user)
                    for key in ("honours_top_n", "month_target", "year_target"):
                        value = getattr(settings_form, key).data
                        if value is not None and key != "honours_top_n" \
                                and value != value.quantize(Decimal("0.1")):
                            # a target is a points figure: one decimal, never rounded silently
                            raise DomainError(_("积分最多一位小数（收到 %(v)s），请改正后再提交", v=value),
                                              "too_precise", field=key)
                    for key in ("honours_top_n", "month_target", "year_target"):
                        value = getattr(settings_form, key).data
                        if value is not None:
                            services.set_setting(key, float(value) if key != "honours_top_n" else int(value),
                                                 current_user)
                    message = _("设置已保存")
            except DomainError as exc:
                db.session.rollback()
                target = {"publish": publish_form.period, "stars": stars_form.quarter}.get(action) \
                    or getattr(settings_form, exc.field if exc.field in ("base", "bands", "month_target",
                                                                         "year_target") else "bands")
                target.errors.append(exc.message)
            else:
                db.session.commit()
                flash(message, "success")
                return redirect(url_for("points.admin"))
    publications = db.session.scalars(select(MonthlyPublication).order_by(MonthlyPublication.period.desc())
                                      .limit(24)).all()
    rules = db.session.scalars(select(PointRule).order_by(PointRule.is_custom, PointRule.id)).all()
    counts = dict(db.session.execute(select(PublishedScore.publication_id, func.count(PublishedScore.id))
                                     .where(PublishedScore.publication_id.in_([p.id for p in publications]))
                                     .group_by(PublishedScore.publication_id)).all())
    return render_template("points/admin.html", publish_form=publish_form, stars_form=stars_form,
                           settings_form=settings_form, publications=publications, rules=rules, counts=counts)


@bp.route("/points/rules/new", methods=["GET", "POST"])
@bp.route("/points/rules/<int:rule_id>", methods=["GET", "POST"])
@auth.roles_required("admin")
def rule(rule_id=None):
    services.ensure_default_rules()
    item = db.get_or_404(PointRule, rule_id) if rule_id else None
    form = RuleForm(obj=item)
    if request.method == "GET" and item is not None:
        form.bands.data = ", ".join(f"{b}:{p}" for b, p in (item.bands or []))
    if form.validate_on_submit():
        try:
            services.save_rule(item, name=form.name.data, category=form.category.data, points=form.points.data,
                               unit=form.unit.data, daily_cap=form.daily_cap.data,
                               monthly_cap=form.monthly_cap.data, is_active=form.is_active.data,
                               bands=form.bands.data or None, actor=current_user)
        except DomainError as exc:
            show_on_form(form, exc, "name")
        else:
            db.session.commit()
            flash(_("规则已保存"), "success")
            return redirect(url_for("points.admin"))
    return render_template("points/rule_form.html", form=form, rule=item)


def _quarter_arg():
    quarter = request.args.get("quarter") or queries.ended_quarters()[0]
    try:
        services.quarter_periods(quarter)
    except DomainError:
        abort(400)
    return quarter


def _star_rows(quarter):
    stmt = (select(StarRating, User, Branch).join(User, StarRating.user_id == User.id)
            .outerjoin(Branch, StarRating.branch_id == Branch.id).where(StarRating.quarter == quarter))
    stmt = auth.scope_to_branch(stmt, current_user, StarRating.branch_id) \
        if not auth.is_admin(current_user) else stmt
    return db.session.execute(stmt.order_by(StarRating.score.desc(), User.username)).all()


@bp.route("/points/stars")
@auth.roles_required("admin", "secretary")
def stars():
    quarter = _quarter_arg()
    return render_template("points/stars.html", quarter=quarter, rows=_star_rows(quarter),
                           quarters=queries.ended_quarters(), bands=services.star_bands())


@bp.route("/points/stars.xlsx")
@auth.roles_required("admin", "secretary")
def stars_xlsx():
    quarter = _quarter_arg()
    return _xlsx(f"stars-{quarter}.xlsx", f"{quarter}{_('评星')}",
                 [_("姓名"), _("用户名"), _("支部"), _("得分"), _("星级")],
                 [(u.name, u.username, b.name if b else "", float(s.score), s.stars)
                  for s, u, b in _star_rows(quarter)])


def _honours():
    year = request.args.get("year", type=int) or services.local_date(clock.now()).year
    if not 2000 <= year <= 2100:
        abort(400)
    branch_id = None if auth.is_admin(current_user) else current_user.branch_id
    percent = request.args.get("percent", type=int)
    if percent is not None and not 1 <= percent <= 100:
        abort(400)
    result, vetoed = queries.honours_candidates(year, top_percent=percent, branch_id=branch_id)
    return year, percent, result, vetoed


@bp.route("/points/honours")
@auth.roles_required("admin", "secretary")
def honours():
    year, percent, result, vetoed = _honours()
    names = dict(db.session.execute(select(Branch.code, Branch.name)).all())
    vetoed_users = db.session.scalars(auth.scope_to_branch(select(User).where(User.id.in_(vetoed)),
                                                           current_user, User.branch_id)).all()
    return render_template("points/honours.html", year=year, percent=percent, result=result, names=names,
                           vetoed=vetoed_users)


@bp.route("/points/honours.xlsx")
@auth.roles_required("admin", "secretary")
def honours_xlsx():
    year, _percent, result, _vetoed = _honours()
    names = dict(db.session.execute(select(Branch.code, Branch.name)).all())  # the page's names, not codes
    rows = [(names.get(code, code), m.rank_in_branch, m.name, m.username, float(m.points))
            for code, members in result.items() for m in members]
    return _xlsx(f"honours-{year}.xlsx", f"{year}{_('评先候选')}",
                 [_("支部"), _("支部名次"), _("姓名"), _("用户名"), _("年度积分")], rows)


# -- home panel --------------------------------------------------------------------------------

def home_panel(user):
    if user.branch_id is None:
        return None
    # the template is autoescaped; Markup keeps the home page from escaping it again
    return Markup(render_template("points/_home_panel.html", s=queries.member_summary(user, by_category=False)))  # noqa: S704
