"""Certificates (证书): a passed exam that gives them, a year's learning hours reached (学时证明),
each with a code anyone can check on the public /verify page; and the member's own record (一人一档)."""

from flask import Blueprint
from flask_babel import lazy_gettext as _l

from pbschool import registry

bp = Blueprint("certificates", __name__, template_folder="templates")


def init_app(app):
    from pbschool.certificates import api, models, views  # noqa: F401  (routes and tables register on import)

    app.register_blueprint(bp)
    app.add_template_global(_attempt_certificate, "attempt_certificate")
    registry.add_nav("certificates.mine", _l("我的证书"), order=36, group="learn")
    registry.add_nav("certificates.my_record", _l("我的档案"), order=37, group="learn")


def _attempt_certificate(attempt):
    """For the result page: the attempt's standing certificate, or None."""
    from pbschool.certificates.services import for_attempt

    certificate = for_attempt(attempt.id)
    return None if certificate is None or certificate.is_revoked else certificate
