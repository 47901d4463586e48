"""A member's day (学习强国-style): today's tasks and streak on the home page, practice with the answer
at once (每日答题, 专项练习, 错题本), and the wrong-answer book's spaced review."""

from flask import Blueprint
from flask_babel import lazy_gettext as _l

from pbschool import registry

bp = Blueprint("practice", __name__, template_folder="templates")


def init_app(app):
    from pbschool.practice import api, models, views  # noqa: F401  (routes and tables register on import)

    app.register_blueprint(bp)
    registry.add_nav("practice.hub", _l("每日答题"), order=31, group="exams")
    registry.add_nav("practice.admin_banks", _l("练习题库"), order=61, roles=("admin",), group="exams")
    registry.add_home_panel(views.home_panel, order=15, roles=("member", "lecturer", "secretary", "admin"))
    registry.add_demo_loader(_demo)


def _demo(content_dir):
    """Open the demo's question banks to practice (an admin does it on /admin/practice)."""
    from sqlalchemy import inspect, select

    from pbschool.exams.models import QuestionBank
    from pbschool.extensions import db
    from pbschool.practice.models import PracticeBank

    if not inspect(db.engine).has_table("practice_bank"):
        yield "practice: skipped, the practice tables are not in the database yet (pbschool init)"
        return
    opened = set(db.session.scalars(select(PracticeBank.bank_id)))
    for bank in db.session.scalars(select(QuestionBank)):
        if bank.id not in opened:
            db.session.add(PracticeBank(bank_id=bank.id))
    db.session.commit()
    yield "practice: question banks open to practice"
