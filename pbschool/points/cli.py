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


@ledger_cli.command("rekey")
@with_appcontext
@domain_errors
def rekey_command():
    """Once, after upgrading a ledger chained before the ledger key: check the old entries and seal
    them (and months published before the key) under the key. verify refuses them until then."""
    from pbschool.points import rekey

    entries, months = rekey.rekey()
    db.session.commit()
    click.echo(f"ledger rekeyed: {entries} entries chained before the key and {months} published months "
               "sealed under the ledger key")


#: What the running application needs, table by table: everything, except changing ledger rows.
APP_ROLE_SQL = (
    "GRANT USAGE ON SCHEMA {schema} TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
    "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
    "REVOKE UPDATE, DELETE, TRUNCATE ON ledger_entry FROM {role}",
    "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {role}",
)


@ledger_cli.command("grant")
@click.argument("role")
@with_appcontext
def grant_command(role):
    """Give the PostgreSQL ROLE the web application runs as what it needs, and no way to change or
    delete a ledger row (the append-only trigger also stops the schema owner). Run as the schema
    owner after `pbschool init`, and again after each upgrade that adds tables."""
    import re

    if db.engine.dialect.name != "postgresql":
        raise click.ClickException("ledger grant is for PostgreSQL; SQLite has no roles")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise click.ClickException(f"not a plain role name: {role!r}")
    with db.engine.begin() as conn:
        if not conn.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).scalar():
            raise click.ClickException(f"no such role: {role} (CREATE ROLE {role} LOGIN PASSWORD '…' first)")
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
        has_alembic = conn.exec_driver_sql("SELECT to_regclass('alembic_version')").scalar() is not None
        for statement in APP_ROLE_SQL:
            if "alembic_version" in statement and not has_alembic:
                continue
            conn.exec_driver_sql(statement.format(schema=f'"{schema}"', role=f'"{role}"'))
    click.echo(f"{role} may read and write the application's tables, and only append to the ledger")
