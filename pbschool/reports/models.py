"""Branch star ratings (星级党支部): proposed from branch figures, then confirmed by an admin."""

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pbschool import clock
from pbschool.accounts.models import Branch, User
from pbschool.extensions import db


class BranchRating(db.Model):
    __table_args__ = (UniqueConstraint("branch_id", "quarter"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    #: 'YYYY-Qn'
    quarter: Mapped[str] = mapped_column(String(7))
    #: Weighted 0–100 score over the dimensions in ``figures``.
    score: Mapped[Decimal] = mapped_column(Numeric(5, 1))
    proposed_stars: Mapped[int] = mapped_column()
    #: Set when an admin confirms (possibly changing the proposal); None while it is only proposed.
    stars: Mapped[int | None] = mapped_column()
    figures: Mapped[dict | None] = mapped_column(JSON)
    computed_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    confirmed_at: Mapped[dt.datetime | None]
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    branch: Mapped[Branch] = relationship()
    confirmed_by: Mapped[User | None] = relationship()
