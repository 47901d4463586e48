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
            raise click.ClickException(str(exc.message)) from exc

    return wrapped
