from pathlib import Path

import click
from flask.cli import with_appcontext

from pbschool.cli_support import domain_errors
from pbschool.extensions import db

bank_cli = click.Group("bank", help="Question banks (题库).")
exams_cli = click.Group("exams", help="Exams (在线考试).")


@bank_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bank", "bank_name", required=True, help="Bank name (题库名称); created if missing.")
@with_appcontext
@domain_errors
def import_command(file, bank_name):
    """Import questions from a .csv or .xlsx file; all rows or none; re-importing updates."""
    from pbschool.exams.importer import import_bank_file

    result = import_bank_file(file.read_bytes(), file.name, bank_name)
    db.session.commit()
    click.echo(f"bank {result.bank.name}: created {result.created}, updated {result.updated}, "
               f"unchanged {result.unchanged}")


@exams_cli.command("sweep")
@with_appcontext
@domain_errors
def sweep_command():
    """Submit and grade every attempt whose time is up."""
    from pbschool.exams.services import sweep

    done = sweep()
    db.session.commit()
    click.echo(f"graded {done} overdue attempt(s)")


@exams_cli.command("regrade")
@click.argument("exam_id", type=int)
@click.option("--as", "admin_username", required=True,
              help="The admin who answers for the regrade (audited; their own attempts are left alone).")
@click.option("--apply", "apply_", is_flag=True, help="Write the changes; without it, a dry run.")
@with_appcontext
@domain_errors
def regrade_command(exam_id, admin_username, apply_):
    """Mark every finished attempt of an exam again by the current answer keys (a dry run unless --apply)."""
    from sqlalchemy import select

    from pbschool.accounts.models import User
    from pbschool.exams.models import Exam
    from pbschool.exams.services import regrade

    exam = db.session.get(Exam, exam_id)
    if exam is None:
        raise click.ClickException(f"no exam {exam_id}")
    admin = db.session.scalar(select(User).where(User.username == admin_username))
    if admin is None or admin.role != "admin" or not admin.is_active:
        raise click.ClickException(f"{admin_username} is not an active admin")
    outcome = regrade(exam, dry_run=not apply_, actor=admin)
    if apply_:
        db.session.commit()
    else:
        db.session.rollback()  # a dry run writes nothing
    verb = "changed" if apply_ else "would change"
    for c in outcome.changes:
        click.echo(f"attempt {c.attempt.id} {c.username}: {c.score_before} -> {c.score_after}, "
                   f"passed {c.passed_before} -> {c.passed_after}, points {c.points:+}")
    for attempt, code in outcome.skipped:
        click.echo(f"attempt {attempt.id} {attempt.user.username}: skipped ({code})")
    click.echo(f"{exam.title}: {verb} {len(outcome.changes)} attempt(s), skipped {len(outcome.skipped)}")


DEMO_EXAM = "党建知识测试（演示）"


def demo_loader(content_dir):
    """A demo exam drawn from the 党建知识 bank that ``content sync`` brought in; idempotent."""
    import datetime as dt

    from sqlalchemy import inspect, select

    from pbschool import clock
    from pbschool.exams import services
    from pbschool.exams.models import Exam

    if not inspect(db.engine).has_table("exam"):
        yield "exams: the exam tables are not in the database yet (run `pbschool init`); demo exam skipped"
        return
    yield from _demo_grant()
    if db.session.scalar(select(Exam.id).where(Exam.title == DEMO_EXAM)) is not None:
        yield f"exams: demo exam「{DEMO_EXAM}」already there"
        return
    bank = services.find_bank("党建知识")
    if bank is None or len(services._available(bank.id, None, None)) < 10:
        yield "exams: no 党建知识 bank with 10 questions; demo exam skipped"
        return
    services.create_exam({
        "title": DEMO_EXAM, "description": "演示考试：10 道题，15 分钟，可考 3 次，取最高分。",
        "time_limit_seconds": 15 * 60, "max_attempts": 3, "pass_score": 60, "points_on_pass": 2,
        "certificate": True,
        "closes_at": clock.now().replace(microsecond=0) + dt.timedelta(days=60),
        "sections": [{"bank": bank, "count": 10, "points_each": 10}]})
    db.session.commit()
    yield f"exams: demo exam「{DEMO_EXAM}」created (10 questions from 党建知识)"


def _demo_grant():
    """The demo's lecturer may read and mark the demo bank (granted by the demo's admin), so that
    signing in as them shows what a lecturer does; only users the demo made are touched."""
    from sqlalchemy import select

    from pbschool import demo
    from pbschool.accounts.models import User
    from pbschool.exams import access, services

    bank = services.find_bank("党建知识")
    made = set(demo.user_ids())
    people = {u.username: u for u in db.session.scalars(select(User).where(User.id.in_(made)))} if made else {}
    if bank is None or "lecturer" not in people or "admin" not in people:
        return
    access.grant_bank(bank, people["lecturer"], people["admin"])
    db.session.commit()
    yield f"exams: the demo lecturer may mark the {bank.name} bank"
