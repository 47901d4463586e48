"""The demo organisation: a committee with three branches, one user of every role and about thirty
members, with a few months of history (pbschool.demo_history)."""

from pathlib import Path

from flask import current_app
from sqlalchemy import select

from pbschool import clock, demo_history, registry
from pbschool.accounts import services
from pbschool.accounts.models import Branch, DemoRecord, User
from pbschool.errors import DomainError
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
] + [(f"member{n}", name, "member", branch, post) for n, (name, branch, post) in enumerate([
    ("王磊", "ZC1", "采煤机司机"), ("李娜", "ZC1", "安全员"), ("张伟", "ZC1", "支架工"), ("刘洋", "ZC1", "瓦斯检查员"),
    ("陈刚", "ZC1", "班长"), ("杨帆", "ZC1", "电钳工"), ("黄勇", "ZC1", "运输工"), ("周敏", "ZC1", "材料员"),
    ("吴昊", "JD", "维修电工"), ("徐静", "JD", "机电技术员"), ("孙强", "JD", "主提升司机"),
    ("马超", "JD", "压风机司机"),
    ("胡军", "JD", "变电所值班员"), ("朱丽", "JD", "设备管理员"), ("郭鹏", "JD", "排水泵工"),
    ("何欣", "JG1", "党建干事"), ("高峰", "JG1", "调度员"), ("林芳", "JG1", "统计员"), ("罗斌", "JG1", "宣传干事"),
    ("梁爽", "JG1", "人事干事"),
], start=7)]


def _made(kind):
    return {(row.object_id, row.key) for row in db.session.scalars(select(DemoRecord).where(DemoRecord.kind == kind))}


def foreign():
    """Branches and users the demo did not make, as they are now: (branches, users). A demo user
    whose name, role or branch was changed since (e.g. by an import) is no longer the demo's."""
    made_branches, made_users = _made("branch"), _made("user")
    branches = [b for b in db.session.scalars(select(Branch).order_by(Branch.id))
                if (b.id, b.code) not in made_branches]
    spec = {username: (name, role, branch) for username, name, role, branch, _job in USERS}
    users = []
    for user in db.session.scalars(select(User).order_by(User.id)):
        name, role, branch = spec.get(user.username, (None, None, None))
        if (user.id, user.username) not in made_users or (user.name, user.role) != (name, role) \
                or getattr(user.branch, "code", None) != branch:
            users.append(user)
    return branches, users


def refuse_foreign():
    """The demo writes only into an organisation it made itself (CONTRACT.md): refuse, one line."""
    branches, users = foreign()
    if branches or users:
        named = ", ".join([u.username for u in users[:3]] + [b.code for b in branches[:3 - min(3, len(users))]])
        raise DomainError(f"refusing to load the demo: the database holds {len(users)} user(s) and "
                          f"{len(branches)} branch(es) the demo did not make (e.g. {named}); "
                          "it loads only into an empty database or one it made", "not_demo", 409)


def user_ids():
    """Ids of the users the demo made: its loaders write points and attendance for these only."""
    return [object_id for object_id, _key in _made("user")]


def _mark(kind, item, key):
    db.session.add(DemoRecord(kind=kind, object_id=item.id, key=key))


def load():
    """Create what is missing and leave the rest alone. Yields lines to print. Refuses (DomainError,
    before writing anything) on a database holding branches or users the demo did not make."""
    refuse_foreign()
    for code, name in BRANCHES:
        if services.find_branch(code) is None:
            _mark("branch", services.create_branch(code, name), code)
    db.session.flush()
    created = 0
    for username, name, role, branch, job_post in USERS:
        if db.session.scalar(select(User.id).where(User.username == username)) is None:
            with clock.pinned(demo_history.joined_at()):  # they belong in the months of the history
                user, _password = services.create_user(username, name, role, branch, job_post, DEMO_PASSWORD)
            _mark("user", user, username)
            created += 1
    db.session.commit()
    yield f"demo organisation: {len(BRANCHES)} branches, {created} user(s) added"
    content_dir = Path(current_app.root_path).parent / "content"
    for loader in registry.demo_loaders:
        yield from loader(content_dir)
        db.session.commit()
    if current_app.config.get("DEMO_HISTORY", True):  # tests of the refusal turn the months of history off
        yield from demo_history.load(user_ids())
        db.session.commit()
    yield ""
    yield f"demo logins (password for all: {DEMO_PASSWORD}):"
    for username, name, role, branch, _job in USERS:
        yield f"  {username:<11} {services.ROLE_NAMES[role]} {name}（{branch}）"
    yield f"branches: {db.session.scalar(select(db.func.count(Branch.id)))}"
