"""Who reads which bank and which answer key: an admin's grants of a bank to a lecturer, and a
member's paper as staff may see it (the rules themselves are in pbschool.auth)."""

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from pbschool import auth
from pbschool.accounts.services import audit
from pbschool.errors import DomainError
from pbschool.exams.models import BankGrant
from pbschool.extensions import db

#: What a paper without its key leaves out: these give the answers away (a full score on a chosen
#: option names the right one, so per-question scores go too).
KEY_FIELDS = ("correct_answer", "correct_answer_text", "explanation_html", "score", "correct")


def grants_of(bank):
    return db.session.scalars(select(BankGrant).where(BankGrant.bank_id == bank.id)
                              .options(selectinload(BankGrant.user)).order_by(BankGrant.id)).all()


def grant_bank(bank, user, actor):
    """Let a lecturer read and edit a bank they did not write (admins only). Granting twice is one grant."""
    if not auth.is_admin(actor):
        raise DomainError(_("只有管理员可以授权题库"), "forbidden", 403)
    if user is None or user.role != "lecturer" or not user.is_active:
        raise DomainError(_("找不到授课人（只能授权给在用的授课人账号）"), "not_a_lecturer", 400, field="username")
    found = db.session.scalar(select(BankGrant).where(BankGrant.bank_id == bank.id, BankGrant.user_id == user.id))
    if found is not None:
        return found
    grant = BankGrant(bank_id=bank.id, user_id=user.id, granted_by_id=actor.id)
    db.session.add(grant)
    db.session.flush()
    audit(actor, "bank.grant", bank, user.username)
    return grant


def revoke_bank(bank, user, actor):
    """Take a grant back (admins only); a lecturer who wrote the bank keeps it."""
    if not auth.is_admin(actor):
        raise DomainError(_("只有管理员可以授权题库"), "forbidden", 403)
    grant = db.session.scalar(select(BankGrant).where(BankGrant.bank_id == bank.id, BankGrant.user_id == user.id))
    if grant is None:
        return False
    db.session.delete(grant)
    db.session.flush()
    audit(actor, "bank.revoke", bank, user.username)
    return True


def staff_review(attempt, viewer, now=None):
    """A member's finished paper for staff: everything for whoever may see the key now
    (auth.can_see_answer_key), else the questions and the member's answers only. Returns
    (items, key_shown)."""
    from pbschool.exams.services import review

    items = review(attempt, now, staff=True)
    if auth.can_see_answer_key(viewer, attempt.exam, now):
        return items, True
    for item in items:
        for name in KEY_FIELDS:
            item.pop(name, None)
    return items, False
