"""The ``pbschool`` command: the Flask CLI with the project's commands."""

from pathlib import Path

import click
from flask.cli import FlaskGroup, with_appcontext

from pbschool.cli_support import domain_errors


def _create_app():
    from pbschool import create_app

    return create_app()


cli = FlaskGroup(create_app=_create_app, load_dotenv=False, set_debug_flag=False,
                 help="pbschool 网上党校 administration.")


@click.command("init")
@with_appcontext
def init_command():
    """Create or upgrade the database schema (Alembic migrations)."""
    from flask_migrate import upgrade

    upgrade()
    click.echo("database is at the latest schema")


@click.command("demo")
@with_appcontext
@domain_errors
def demo_command():
    """Load the demo organisation and content/ (idempotent) and print the demo logins."""
    from flask import current_app

    from pbschool import demo

    # The demo users share one published password: never on a production server by accident.
    if current_app.config.get("PBSCHOOL_ENV") == "production" and not current_app.config.get("DEMO_MODE"):
        raise click.ClickException("refusing to load the demo users (known password) in production; "
                                   "set PBSCHOOL_DEMO=1 for a demo server")
    for line in demo.load():
        click.echo(line)


@click.command("backup")
@click.argument("target", type=click.Path(path_type=Path), default="backups")
@with_appcontext
@domain_errors
def backup_command(target):
    """Write a consistent backup (database + media) to TARGET (a .tar.gz file or a directory)."""
    from pbschool import backup

    path, manifest = backup.create_backup(target)
    click.echo(f"backup written to {path} ({backup.describe(manifest)})")


@click.command("restore")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
@domain_errors
def restore_command(source, yes):
    """Replace the database and media with those in the backup SOURCE."""
    from pbschool import backup

    if not yes and not click.confirm("This replaces the current database and media files. Continue?"):
        raise click.ClickException("restore cancelled")
    manifest = backup.restore_backup(source)
    click.echo(f"restored {source} ({backup.describe(manifest)})")


def register(app):
    """The project-wide commands; features add their own groups in their init_app."""
    for command in (init_command, demo_command, backup_command, restore_command):
        app.cli.add_command(command)


def main():
    cli.main(prog_name="pbschool")
