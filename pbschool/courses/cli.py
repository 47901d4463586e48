from pathlib import Path

import click
from flask.cli import with_appcontext

from pbschool.cli_support import domain_errors
from pbschool.courses.sync import SyncRefused, sync
from pbschool.extensions import db

content_cli = click.Group("content", help="Courses, lessons and question banks kept as files.")


@content_cli.command("sync")
@click.argument("directory", required=False, default="content", type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
@domain_errors
def sync_command(directory):
    """Import or update courses, lessons and banks from DIRECTORY (default content/). Idempotent."""
    try:
        report = sync(directory)
    except SyncRefused as exc:
        db.session.rollback()
        for path, reason in exc.errors:
            click.echo(f"{path}: {reason}", err=True)
        raise click.ClickException(f"{len(exc.errors)} bad file(s); nothing was imported") from exc
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    for line in report.lines():
        click.echo(line)


def demo_loader(content_dir):
    """Sync content/ for ``pbschool demo`` when it exists."""
    if not Path(content_dir).is_dir():
        yield f"content: {content_dir} not found, skipped"
        return
    from sqlalchemy import inspect

    if not inspect(db.engine).has_table("lesson"):
        yield "content: the course tables do not exist yet (run `pbschool init`), skipped"
        return
    try:
        report = sync(content_dir)
    except SyncRefused as exc:
        db.session.rollback()
        yield f"content: not loaded — {exc}"
        return
    db.session.commit()
    yield from report.lines()
