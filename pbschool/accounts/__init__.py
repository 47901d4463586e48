"""Accounts: branches, users, login, API tokens, the audit log."""

from flask import Blueprint
from flask_babel import lazy_gettext as _l

from pbschool import registry

bp = Blueprint("accounts", __name__, template_folder="templates")


def init_app(app):
    from pbschool.accounts import api, cli, security_views, views  # noqa: F401  (routes register on import)
    from pbschool.extensions import login_manager

    login_manager.user_loader(_load_user)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("请先登录")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    app.register_blueprint(bp)
    app.cli.add_command(cli.user_cli)
    app.cli.add_command(cli.branch_cli)
    registry.add_nav("accounts.users", _l("成员"), order=80, roles=("admin", "secretary"))
    registry.add_nav("accounts.branches", _l("支部"), order=85, roles=("admin",))
    registry.add_nav("accounts.security_settings", _l("账号安全"), order=86, roles=("admin",))
    registry.add_nav("accounts.my_sessions", _l("我的登录"), order=95)


def _load_user(session_id):
    from sqlalchemy.orm import joinedload

    from pbschool.accounts.models import User
    from pbschool.extensions import db

    user_id, _, nonce = (session_id or "").partition(":")
    if not user_id.isdigit():
        return None
    # the branch comes in the same query: every page's menu shows it
    user = db.session.get(User, int(user_id), options=[joinedload(User.branch)])
    if user is None or user.session_nonce != nonce or not user.is_active:
        return None
    return user
