"""The demo organisation: a committee with three branches and one user of every role."""

from pathlib import Path

from flask import current_app
from sqlalchemy import select

from pbschool import registry
from pbschool.accounts import services
from pbschool.accounts.models import Branch, User
from pbschool.extensions import db

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 (demo mode only; printed by make run)

BRANCHES = [
    ("ZC1", "综采一队党支部"),
    ("JD", "机电科党支部"),
    ("JG1", "机关第一党支部"),
]

USERS = [
    # username, name, role, branch, job post
    ("admin", "王建国", "admin", "JG1", "党委组织部干事"),
    ("lecturer", "李红梅", "lecturer", "JG1", "宣传科科长"),
    ("secretary", "张卫东", "secretary", "ZC1", "综采一队支部书记"),
    ("secretary2", "周立新", "secretary", "JD", "机电科支部书记"),
    ("member", "刘志强", "member", "ZC1", "采煤机司机"),
    ("member2", "陈晓燕", "member", "ZC1", "液压支架工"),
    ("member3", "赵海涛", "member", "ZC1", "刮板输送机司机"),
    ("member4", "孙丽娟", "member", "JD", "电工"),
    ("member5", "吴国栋", "member", "JD", "绞车司机"),
    ("member6", "郑雅静", "member", "JG1", "文书"),
]


def load():
    """Create what is missing and leave the rest alone. Yields lines to print."""
    for code, name in BRANCHES:
        if services.find_branch(code) is None:
            services.create_branch(code, name)
    db.session.flush()
    created = 0
    for username, name, role, branch, job_post in USERS:
        if db.session.scalar(select(User.id).where(User.username == username)) is None:
            services.create_user(username, name, role, branch, job_post, DEMO_PASSWORD)
            created += 1
    db.session.commit()
    yield f"demo organisation: {len(BRANCHES)} branches, {created} user(s) added"
    content_dir = Path(current_app.root_path).parent / "content"
    for loader in registry.demo_loaders:
        yield from loader(content_dir)
        db.session.commit()
    yield ""
    yield f"demo logins (password for all: {DEMO_PASSWORD}):"
    for username, name, role, branch, _job in USERS:
        yield f"  {username:<11} {services.ROLE_NAMES[role]} {name}（{branch}）"
    yield f"branches: {db.session.scalar(select(db.func.count(Branch.id)))}"
