"""A service's refusal is shown next to the field it names, or next to the form's default field when
that form has no such field (it used to be an AttributeError, a 500), and the request's writes go."""

from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField

from pbschool.accounts.models import Branch
from pbschool.errors import DomainError, show_on_form
from pbschool.extensions import db


class TwoFields(FlaskForm):
    class Meta:
        csrf = False

    name = StringField()
    code = StringField()


def test_refusal_lands_on_the_named_field_or_the_default_and_rolls_back(app):
    with app.test_request_context("/"):
        form = TwoFields()
        assert form.validate()  # as the views do before they call a service
        db.session.add(Branch(code="X1", name="未提交的支部"))
        db.session.flush()
        show_on_form(form, DomainError("编码已被使用", "duplicate", field="code"), "name")
        assert form.code.errors == ["编码已被使用"] and form.name.errors == []
        assert db.session.scalar(select(Branch).where(Branch.code == "X1")) is None  # rolled back
        show_on_form(form, DomainError("文件太大", "too_large", field="file"), "name")  # not on this form
        assert form.name.errors == ["文件太大"]
        show_on_form(form, DomainError("出错了", "oops"), "name")
        assert form.name.errors == ["文件太大", "出错了"]
