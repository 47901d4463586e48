import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from pbschool.accounts import services
from pbschool.accounts.importer import import_users, safe_stem
from pbschool.cli_support import domain_errors
from pbschool.extensions import db

user_cli = click.Group("user", help="Manage users.")
branch_cli = click.Group("branch", help="Manage branches.")


@user_cli.command("add")
@click.argument("username")
@click.option("--name", required=True, help="Full name (姓名).")
@click.option("--role", type=click.Choice(["member", "lecturer", "secretary", "admin"]), default="member",
              show_default=True)
@click.option("--branch", "branch_code", help="Branch code (支部代码).")
@click.option("--job-post", default="", help="Job post (岗位).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
@domain_errors
def add_user(username, name, role, branch_code, job_post, password_stdin):
    """Add a user. Without --password-stdin a password is generated and printed once."""
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on standard input")
    user, generated = services.create_user(username, name, role, branch_code, job_post, password)
    db.session.commit()
    click.echo(f"added {user.username} ({role}{', ' + user.branch.code if user.branch else ''})")
    if generated:
        click.echo(f"password: {generated}  (must be changed at first login)")


@user_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--result", "result_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write generated passwords (default: beside FILE).")
@with_appcontext
@domain_errors
def import_command(file, result_path):
    """Add or update users from a .csv or .xlsx file; all rows or none."""
    result = import_users(file.read_bytes(), file.name)
    db.session.commit()
    click.echo(f"created {len(result.created)}, updated {len(result.updated)}, "
               f"unchanged {len(result.unchanged)}")
    if result.passwords:
        from pbschool import clock

        target = result_path or file.with_name(
            f"{safe_stem(file.name)}-passwords-{clock.now():%Y%m%d%H%M%S}.csv")
        import csv

        with open(target, "w", newline="", encoding="utf-8-sig") as handle:
            writer = csv.writer(handle)
            writer.writerow(["username", "name", "password"])
            writer.writerows(result.passwords)
        target.chmod(0o600)
        click.echo(f"generated passwords for {len(result.passwords)} user(s) written to {target}")


@user_cli.command("reset-2fa")
@click.argument("username")
@with_appcontext
@domain_errors
def reset_second_factor(username):
    """Turn off USERNAME's second factor (phone and recovery codes lost); they enrol again."""
    from sqlalchemy import func, select

    from pbschool.accounts import totp
    from pbschool.accounts.models import User

    user = db.session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))
    if user is None:
        raise click.ClickException(f"no such user: {username}")
    totp.reset(user, actor=None)
    db.session.commit()
    click.echo(f"second factor of {user.username} reset; they enrol again at their next sign-in")


@branch_cli.command("add")
@click.argument("code")
@click.option("--name", required=True, help="Branch name (支部名称).")
@with_appcontext
@domain_errors
def add_branch(code, name):
    """Add a branch."""
    branch = services.create_branch(code, name)
    db.session.commit()
    click.echo(f"added branch {branch.code} {branch.name}")
