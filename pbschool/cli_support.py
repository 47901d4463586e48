import functools

import click

from pbschool.errors import DomainError
from pbschool.extensions import db


def domain_errors(command):
    """Turn a DomainError into a one-line reason and a non-zero exit; nothing is committed."""

    @functools.wraps(command)
    def wrapped(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DomainError as exc:
            db.session.rollback()
            rows = getattr(exc, "errors", None)  # an import refused whole names every bad row
            if rows:
                for error in rows:
                    click.echo(f"row {error.row}: {error.message}", err=True)
                raise click.ClickException(f"{len(rows)} bad row(s); nothing was imported") from exc
            raise click.ClickException(str(exc.message)) from exc

    return wrapped
