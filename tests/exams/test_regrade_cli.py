"""`pbschool exams regrade`: the same regrade as the page and the API, for those who run it from a shell —
a dry run unless --apply, answered for by a named admin whose own attempts are left alone."""

from sqlalchemy import select

from pbschool.exams.models import Attempt
from pbschool.extensions import db
from pbschool.points.models import LedgerEntry
from pbschool.points.services import balance
from tests.exams.conftest import make_exam
from tests.exams.test_regrade import _set_key, _sit, bank  # noqa: F401  (the fixture)


def test_a_dry_run_then_apply_then_again_changes_once(app, make, bank, runner):  # noqa: F811
    exam = make_exam(bank, pass_score=100, points=5)
    member = make.user()
    attempt = _sit(exam, member, "A")
    make.user("boss", role="admin")
    _set_key(bank, "B")

    dry = runner.invoke(args=["exams", "regrade", str(exam.id), "--as", "boss"])
    assert dry.exit_code == 0, dry.output
    assert "would change 1 attempt(s)" in dry.output and "True -> False" in dry.output
    assert balance(member) == 5 and db.session.get(Attempt, attempt.id).passed

    applied = runner.invoke(args=["exams", "regrade", str(exam.id), "--as", "boss", "--apply"])
    assert applied.exit_code == 0 and "changed 1 attempt(s)" in applied.output and "-5" in applied.output
    db.session.expire_all()
    assert balance(member) == 0 and not db.session.get(Attempt, attempt.id).passed

    again = runner.invoke(args=["exams", "regrade", str(exam.id), "--as", "boss", "--apply"])
    assert again.exit_code == 0 and "changed 0 attempt(s)" in again.output
    assert len(db.session.scalars(select(LedgerEntry).where(LedgerEntry.user_id == member.id)).all()) == 2


def test_the_named_admins_own_attempt_is_left_for_another(app, make, bank, runner):  # noqa: F811
    exam = make_exam(bank, pass_score=100, points=5)
    boss = make.user("boss", role="admin")
    own = _sit(exam, boss, "A")
    _set_key(bank, "B")
    result = runner.invoke(args=["exams", "regrade", str(exam.id), "--as", "boss", "--apply"])
    assert result.exit_code == 0 and f"attempt {own.id} boss: skipped (own_attempt)" in result.output
    db.session.expire_all()
    assert db.session.get(Attempt, own.id).passed  # untouched: another admin regrades it


def test_refusals_exit_non_zero_with_a_reason(app, make, bank, runner):  # noqa: F811
    exam = make_exam(bank)
    make.user("zhang")
    for args, reason in ((["999", "--as", "zhang"], "no exam 999"),
                         ([str(exam.id), "--as", "zhang"], "zhang is not an active admin"),
                         ([str(exam.id), "--as", "nobody"], "nobody is not an active admin")):
        result = runner.invoke(args=["exams", "regrade", *args])
        assert result.exit_code != 0 and reason in result.output
