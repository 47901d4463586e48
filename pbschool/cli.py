"""The ``pbschool`` command: the Flask CLI with the project's commands."""

import click
from flask.cli import FlaskGroup, with_appcontext


def _create_app():
    from pbschool import create_app

    return create_app()


cli = FlaskGroup(create_app=_create_app, load_dotenv=False, set_debug_flag=False,
                 help="pbschool 网上党校 administration.")


@cli.command("init")
@with_appcontext
def init_command():
    """Create or upgrade the database schema (Alembic migrations)."""
    from flask_migrate import upgrade

    upgrade()
    click.echo("database is at the latest schema")


@cli.command("demo")
@with_appcontext
def demo_command():
    """Load the demo organisation and content/ (idempotent) and print the demo logins."""
    from pbschool import demo

    for line in demo.load():
        click.echo(line)


def main():
    cli.main(prog_name="pbschool")
