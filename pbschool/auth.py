"""Who may do what: role checks plus object scope. The one place such decisions live.

Views call ``require(...)`` or the ``roles_required`` decorator; queries that list people or
results go through ``scope_to_branch`` so a secretary never sees another branch's rows.
"""

import functools

from flask import abort
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from pbschool.errors import DomainError

STAFF_ROLES = ("lecturer", "secretary", "admin")
AUTHOR_ROLES = ("lecturer", "admin")


def has_role(user, *roles):
    return bool(user and user.is_authenticated and user.role in roles)


def is_admin(user):
    return has_role(user, "admin")


def branch_scope(user):
    """Branch ids the user may oversee: None means every branch, an empty set means none."""
    if is_admin(user):
        return None
    if has_role(user, "secretary") and user.branch_id is not None:
        return {user.branch_id}
    return set()


def can_oversee_branch(user, branch_id):
    """Admin: any branch. Secretary: their own. Everyone else: none."""
    scope = branch_scope(user)
    return scope is None or branch_id in scope


def can_view_user(viewer, target):
    """A user sees themself; an admin sees everyone; a secretary sees their branch's members."""
    if viewer is None or not viewer.is_authenticated or target is None:
        return False
    if viewer.id == target.id or is_admin(viewer):
        return True
    return target.branch_id is not None and can_oversee_branch(viewer, target.branch_id)


def can_manage_accounts(user):
    """Creating, deactivating and moving accounts, and managing branches: the committee office."""
    return is_admin(user)


def can_author(user):
    """Writing lessons and questions."""
    return has_role(user, *AUTHOR_ROLES)


# -- question banks and answer keys -----------------------------------------------------------------
def editable_bank_ids(user):
    """Banks the user may read and edit: None means every bank (admins), else a set of ids — a
    lecturer's own (``created_by``) and those an admin granted them; nobody else gets any."""
    if is_admin(user):
        return None
    if not has_role(user, "lecturer"):
        return set()
    from sqlalchemy import select

    from pbschool.exams.models import BankGrant, QuestionBank
    from pbschool.extensions import db

    own = db.session.scalars(select(QuestionBank.id).where(QuestionBank.created_by_id == user.id))
    granted = db.session.scalars(select(BankGrant.bank_id).where(BankGrant.user_id == user.id))
    return set(own) | set(granted)


def can_edit_bank(user, bank):
    """Reading a bank's questions and answers, editing, importing into and exporting it."""
    scope = editable_bank_ids(user)
    return scope is None or (bank is not None and bank.id in scope)


def _exam_bank_ids(exam):
    return {section.bank_id for section in exam.sections}


def can_mark_exam(user, exam):
    """Hand marking: admins any exam; a lecturer an exam drawing on a bank they may edit."""
    scope = editable_bank_ids(user)
    return scope is None or bool(scope & _exam_bank_ids(exam))


def can_mark_question(user, question):
    """A lecturer marks only the questions of banks they may edit (they read the reference answer)."""
    scope = editable_bank_ids(user)
    return scope is None or question.bank_id in scope


def sits_as_preview(user, exam):
    """Whoever can read an exam's answers before sitting it sits it as a preview, never counted:
    admins; secretaries (they view their branch's papers); a lecturer when the exam draws on a bank
    they may edit."""
    if is_admin(user) or (has_role(user, "secretary") and user.branch_id is not None):
        return True
    return has_role(user, "lecturer") and can_mark_exam(user, exam)


def can_set_exam_terms(user, branch_id):
    """Exam overrides (extra time, a later close, extra attempts) for a member of ``branch_id`` or for
    the branch: admins for anyone, a secretary for their own branch. Never for oneself: see
    ``refuse_self`` in exams/overrides.py."""
    if is_admin(user):
        return True
    return has_role(user, "secretary") and branch_id is not None and can_oversee_branch(user, branch_id)


def can_see_answer_key(user, exam, now=None):
    """The correct answers and explanations on a member's paper, for staff: admins always; others
    once the exam has closed (its closes_at passed, or — without one — no longer open)."""
    if is_admin(user):
        return True
    from pbschool import clock
    from pbschool.exams.overrides import latest_close

    now = now or clock.now()
    if exam.closes_at is not None:
        return now >= latest_close(exam)  # a member given a later close may still be sitting it
    return not exam.is_open(now)


def scope_to_branch(stmt, user, branch_column):
    """Narrow a select() to the branches the user may oversee."""
    scope = branch_scope(user)
    if scope is None:
        return stmt
    if not scope:
        return stmt.where(False)
    return stmt.where(branch_column.in_(scope))


# -- separation of duties ---------------------------------------------------------------------------
#: What each self-dealing refusal says; the code is the API's error code.
OWN_RECORD_MESSAGES = {
    "own_attempt": _l("不能批改自己的试卷"),
    "own_points": _l("不能给自己加减积分"),
    "own_meeting": _l("不能为自己记录出席积分，请由其他负责人确认"),
    "own_rating": _l("不能评定自己或本人所在支部的星级"),
    "own_review": _l("不能审核自己编写的内容"),
    "own_record": _l("不能为自己评分、记分或评定"),
    "own_override": _l("不能为自己设置考试特殊安排（延时、延期或增加次数）"),
}


def is_self(actor, subject):
    """Is ``subject`` (a user, or a user id) the acting person?"""
    if actor is None or subject is None:
        return False
    actor_id = getattr(actor, "id", actor)
    subject_id = getattr(subject, "id", subject)
    return actor_id is not None and actor_id == subject_id


def refuse_self(actor, subject, code="own_record"):
    """Separation of duties, the one rule every writer of a score, mark, points entry, attendance
    credit, star or publication calls: nobody does it for themself (403 ``code``)."""
    if is_self(actor, subject):
        raise DomainError(str(OWN_RECORD_MESSAGES.get(code, OWN_RECORD_MESSAGES["own_record"])), code, 403)


def refuse_own_branch(actor, branch_id, *, also=(), code="own_rating"):
    """Nobody rates the branch they belong to: refused (403 ``code``) when ``branch_id`` is the actor's
    branch, or one of ``also`` (the branches they belonged to during the rated period)."""
    mine = {getattr(actor, "branch_id", None), *also} - {None}
    if branch_id in mine:
        raise DomainError(str(OWN_RECORD_MESSAGES.get(code, OWN_RECORD_MESSAGES["own_record"])), code, 403)


def require(allowed):
    """Abort with 403 unless ``allowed`` is true."""
    if not allowed:
        abort(403)


def roles_required(*roles):
    """View decorator: logged in, and one of ``roles``."""

    def decorator(view):
        @functools.wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            require(has_role(current_user, *roles))
            return view(*args, **kwargs)

        return wrapped

    return decorator
