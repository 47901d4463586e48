"""``pbschool points ...`` and ``pbschool ledger verify``."""

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from pbschool.cli_support import domain_errors
from pbschool.extensions import db
from pbschool.points import services
from pbschool.points.models import PublishedScore

points_cli = click.Group("points", help="Publish months and rate quarters of the points ledger.")
ledger_cli = click.Group("ledger", help="Check the points ledger.")


@points_cli.command("publish")
@click.argument("period")
@with_appcontext
@domain_errors
def publish_command(period):
    """Publish (freeze) the month PERIOD (YYYY-MM)."""
    publication = services.publish_month(period)
    db.session.commit()
    members = db.session.scalar(select(func.count(PublishedScore.id))
                                .where(PublishedScore.publication_id == publication.id))
    click.echo(f"published {publication.period}: {members} members, "
               f"{publication.entry_count} entries, {publication.total_points} points")


@points_cli.command("stars")
@click.argument("quarter")
@with_appcontext
@domain_errors
def stars_command(quarter):
    """Rate every member's stars for QUARTER (YYYY-Qn), which must have ended."""
    count = services.compute_stars(quarter)
    db.session.commit()
    click.echo(f"rated {count} members for {quarter}")


@ledger_cli.command("verify")
@with_appcontext
def verify_command():
    """Check the hash chain; exit 1 naming the first bad entry."""
    checked, problem = services.verify_chain()
    if problem:
        raise click.ClickException(f"ledger broken after {checked} good entries: {problem}")
    click.echo(f"ledger ok: {checked} entries")
