"""Bulk import of members from .csv/.xlsx: all rows or none."""

import re
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import select

from pbschool.accounts import services
from pbschool.accounts.models import Branch, User
from pbschool.errors import DomainError
from pbschool.extensions import db
from pbschool.tabular import ImportRefused, RowError, map_header, read_table

COLUMNS = {
    "username": ("username", "用户名", "账号"),
    "name": ("name", "姓名"),
    "branch": ("branch", "支部", "所在支部"),
    "role": ("role", "角色"),
    "job_post": ("job_post", "岗位", "job post"),
    "password": ("password", "密码"),
}
REQUIRED = ("username", "name")


@dataclass
class ImportResult:
    created: list = field(default_factory=list)
    updated: list = field(default_factory=list)
    unchanged: list = field(default_factory=list)
    #: (username, name, password) for every account given a generated password
    passwords: list = field(default_factory=list)

    @property
    def total(self):
        return len(self.created) + len(self.updated) + len(self.unchanged)


def import_users(data, filename, actor=None):
    """Create or update users from a file. Raises ImportRefused naming every bad row."""
    rows = read_table(data, filename)
    header, body = rows[0], rows[1:]
    index = map_header(header, COLUMNS)
    missing = [c for c in REQUIRED if c not in index]
    if missing:
        raise DomainError(_("缺少必需的列：%(cols)s", cols=", ".join(missing)), "missing_columns")
    if not body:
        raise DomainError(_("文件中没有数据行"), "empty_file")

    branches = {b.code.lower(): b for b in db.session.scalars(select(Branch))}
    branches_by_name = {b.name: b for b in branches.values()}
    existing = {u.username.lower(): u for u in db.session.scalars(select(User))}
    errors, parsed, seen = [], [], {}

    for offset, raw in enumerate(body):
        number = offset + 2  # as a spreadsheet numbers it: the header is row 1
        if not any(raw):
            continue

        def get(col, raw=raw):
            i = index.get(col)
            return raw[i].strip() if i is not None and i < len(raw) else ""

        values = {col: get(col) for col in COLUMNS}
        problems = []
        username = values["username"]
        if not services.USERNAME_RE.match(username):
            problems.append(_("用户名无效（2–64 个字母、数字、汉字或 _.-@）"))
        elif username.lower() in seen:
            problems.append(_("用户名与第 %(n)d 行重复", n=seen[username.lower()]))
        else:
            seen[username.lower()] = number
        if not values["name"] or len(values["name"]) > 100:
            problems.append(_("缺少姓名"))
        try:
            role = services.normalise_role(values["role"] or "member")
        except DomainError as exc:
            problems.append(exc.message)
            role = None
        branch = None
        if values["branch"]:
            branch = branches.get(values["branch"].lower()) or branches_by_name.get(values["branch"])
            if branch is None:
                problems.append(_("找不到支部：%(code)s", code=values["branch"]))
            elif not branch.is_active:
                problems.append(_("支部 %(code)s 已停用", code=branch.code))
        elif role in ("member", "secretary"):
            problems.append(_("党员和支部书记必须填写支部"))
        if values["password"]:
            try:
                services.check_password_rules(values["password"], username=username, name=values["name"])
            except DomainError as exc:
                problems.append(exc.message)
        if len(values["job_post"]) > 100:
            problems.append(_("岗位名称过长"))
        if problems:
            errors.append(RowError(number, "；".join(str(p) for p in problems)))
        else:
            parsed.append((number, values, role, branch))

    if errors:
        raise ImportRefused(errors)

    result = ImportResult()
    created, moved = [], []
    new_passwords = []
    for _number, values, _role, _branch in parsed:
        user = existing.get(values["username"].lower())
        if user is None:
            password = values["password"] or services.generate_password()
            if not values["password"]:
                result.passwords.append((values["username"], values["name"], password))
            new_passwords.append(password)
        elif values["password"]:
            new_passwords.append(values["password"])
    hashes = iter(services.hash_passwords(new_passwords))

    for _number, values, role, branch in parsed:
        user = existing.get(values["username"].lower())
        if user is None:
            user = User(username=values["username"], name=values["name"], role=role, branch=branch,
                        job_post=values["job_post"], password_hash=next(hashes),
                        # a password from the file or generated was chosen by the office, not the member
                        must_change_password=True)
            db.session.add(user)
            created.append(user)
            result.created.append(values["username"])
            continue
        changed = False
        for attr, value in (("name", values["name"]), ("role", role), ("job_post", values["job_post"])):
            if getattr(user, attr) != value:
                setattr(user, attr, value)
                changed = True
        if branch is not None and user.branch_id != branch.id:
            moved.append((user, user.branch_id))
            user.branch = branch
            changed = True
        if values["password"]:
            user.password_hash = next(hashes)
            user.must_change_password = True
            user.rotate_session_nonce()
            services.revoke_tokens(user)  # as a reset does: the old password's API tokens go too
            changed = True
        (result.updated if changed else result.unchanged).append(values["username"])
    db.session.flush()
    for user in created:
        services.start_stay(user)
    for user, old_branch_id in moved:
        services.note_stay_change(user, old_branch_id=old_branch_id)
    services.audit(actor, "user.import", "user", filename, created=len(result.created),
                   updated=len(result.updated), unchanged=len(result.unchanged))
    return result


def safe_stem(filename):
    return re.sub(r"[^\w.\-]+", "_", filename.rsplit(".", 1)[0])[:60] or "import"
