"""Exam pages: the member's list, the sitting, results; banks and exams for staff."""

from flask_login import login_required

from pbschool import auth
from pbschool.exams import bp


@bp.route("/exams")
@login_required
def my_exams():
    return ""


@bp.route("/admin/banks")
@auth.roles_required("admin", "lecturer")
def banks():
    return ""


@bp.route("/admin/exams")
@auth.roles_required("admin", "secretary")
def admin_exams():
    return ""


def home_panel(user):
    return None
