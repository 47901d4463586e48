"""Who may do what: role checks plus object scope. The one place such decisions live.

Views call ``require(...)`` or the ``roles_required`` decorator; queries that list people or
results go through ``scope_to_branch`` so a secretary never sees another branch's rows.
"""

import functools

from flask import abort
from flask_login import current_user, login_required

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


def scope_to_branch(stmt, user, branch_column):
    """Narrow a select() to the branches the user may oversee."""
    scope = branch_scope(user)
    if scope is None:
        return stmt
    if not scope:
        return stmt.where(False)
    return stmt.where(branch_column.in_(scope))


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
