"""Branch star ratings: propose from figures with configurable weights, then an admin confirms."""

from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import select

from pbschool import auth, clock
from pbschool.accounts.services import audit
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.points import periods
from pbschool.points import services as points
from pbschool.reports import figures
from pbschool.reports.models import BranchRating

DIMENSIONS = ("points", "hours", "exams", "meetings")
DEFAULT_WEIGHTS = {"points": 25, "hours": 25, "exams": 25, "meetings": 25}


def weights():
    saved = points.get_setting("branch_star_weights", DEFAULT_WEIGHTS)
    return {k: int(saved.get(k, DEFAULT_WEIGHTS[k])) for k in DIMENSIONS}


def save_weights(raw, actor=None):
    try:
        values = {k: int(raw[k]) for k in DIMENSIONS}
    except (KeyError, TypeError, ValueError) as exc:
        raise DomainError(_("权重应为整数"), "invalid_weights", field="weights") from exc
    if any(v < 0 for v in values.values()) or sum(values.values()) <= 0:
        raise DomainError(_("权重不能为负，且合计应大于 0"), "invalid_weights", field="weights")
    points.set_setting("branch_star_weights", values, actor)


def compute_branch_ratings(quarter, *, actor=None):
    """Propose stars for every branch for an ended quarter from that quarter's figures alone
    (figures.branch_quarter_rows). Confirmed ratings stay as confirmed."""
    periods = points.quarter_periods(quarter)
    if points.local_date(clock.now()) <= points.period_bounds(periods[-1])[1]:
        raise DomainError(_("%(q)s 尚未结束，不能评定", q=quarter), "quarter_not_ended", 409)
    rows = figures.branch_quarter_rows(quarter)
    best_points = max([r["points_per_member"] or Decimal(0) for r in rows] + [Decimal(0)])
    w = weights()
    total_weight = sum(w.values())
    existing = {r.branch_id: r for r in db.session.scalars(select(BranchRating).where(BranchRating.quarter == quarter))}
    made = 0
    for row in rows:
        dims = {
            "points": (row["points_per_member"] or Decimal(0)) * 100 / best_points if best_points > 0 else Decimal(0),
            "hours": row["hours_completion"] or Decimal(0),
            "exams": row["exam_pass_rate"] if row["exam_pass_rate"] is not None else Decimal(0),
            "meetings": Decimal(str(row["rhythm"]["share"])) * 100,
        }
        score = (sum(dims[k] * w[k] for k in DIMENSIONS) / total_weight).quantize(Decimal("0.1"))
        rating = existing.get(row["branch"].id)
        if rating is not None and rating.stars is not None:
            continue  # confirmed: not overwritten
        rating = rating or BranchRating(branch_id=row["branch"].id, quarter=quarter)
        rating.score, rating.proposed_stars = score, points.stars_for(score)
        rating.figures = {k: str(Decimal(v).quantize(Decimal("0.1"))) for k, v in dims.items()}
        rating.computed_at = clock.now()
        db.session.add(rating)
        made += 1
    db.session.flush()
    audit(actor, "reports.branch_ratings", quarter, f"proposed {made} branch ratings")
    return made


def confirm_rating(rating, stars, *, actor):
    """An admin confirms (or changes) a branch's proposed stars. Nobody confirms the rating of a branch
    they belong to, or belonged to during the rated quarter (403 ``own_rating``)."""
    during = {s.branch_id for s in periods.stays(*periods.quarter_days(rating.quarter), user_id=actor.id)}
    auth.refuse_own_branch(actor, rating.branch_id, also=during)
    if not auth.is_admin(actor):
        raise DomainError(_("只有党委管理员可以确认支部星级"), "forbidden", 403)
    try:
        stars = int(stars)
    except (TypeError, ValueError) as exc:
        raise DomainError(_("星级应为 0–5"), "invalid_stars", field="stars") from exc
    if not 0 <= stars <= 5:
        raise DomainError(_("星级应为 0–5"), "invalid_stars", field="stars")
    rating.stars, rating.confirmed_at, rating.confirmed_by_id = stars, clock.now(), actor.id
    db.session.flush()
    audit(actor, "reports.confirm_rating", rating, f"{rating.branch.code} {rating.quarter} ★{stars}",
          proposed=rating.proposed_stars)
    return rating
