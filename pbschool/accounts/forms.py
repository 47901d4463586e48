from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from pbschool.accounts.services import PASSWORD_MAX, PASSWORD_MIN

ROLE_CHOICES = [SelectChoice("member", _l("党员")), SelectChoice("lecturer", _l("授课人")),
                SelectChoice("secretary", _l("支部书记")), SelectChoice("admin", _l("管理员"))]


class LoginForm(FlaskForm):
    username = StringField(_l("用户名"), validators=[DataRequired(_l("请输入用户名")), Length(max=64)])
    password = PasswordField(_l("密码"), validators=[DataRequired(_l("请输入密码")), Length(max=PASSWORD_MAX)])
    remember = BooleanField(_l("记住我（本设备）"))


class ChangePasswordForm(FlaskForm):
    current = PasswordField(_l("当前密码"), validators=[DataRequired(_l("请输入当前密码"))])
    new = PasswordField(_l("新密码"), validators=[
        DataRequired(_l("请输入新密码")),
        Length(PASSWORD_MIN, PASSWORD_MAX, _l("密码长度需为 %(min)d–%(max)d 个字符"))])
    confirm = PasswordField(_l("再次输入新密码"), validators=[
        DataRequired(_l("请再次输入新密码")), EqualTo("new", _l("两次输入的新密码不一致"))])


class BranchForm(FlaskForm):
    code = StringField(_l("支部代码"), validators=[DataRequired(_l("请填写支部代码")), Length(max=32)])
    name = StringField(_l("支部名称"), validators=[DataRequired(_l("请填写支部名称")), Length(max=100)])
    is_active = BooleanField(_l("启用"), default=True)


class UserForm(FlaskForm):
    username = StringField(_l("用户名"), validators=[DataRequired(_l("请填写用户名")), Length(max=64)])
    name = StringField(_l("姓名"), validators=[DataRequired(_l("请填写姓名")), Length(max=100)])
    role = SelectField(_l("角色"), choices=ROLE_CHOICES, default="member")
    branch = SelectField(_l("所在支部"), choices=[], validate_choice=False)
    job_post = StringField(_l("岗位"), validators=[Optional(), Length(max=100)])
    password = PasswordField(_l("初始密码"), description=_l("留空则自动生成，用户首次登录需修改"),
                             validators=[Optional(), Length(PASSWORD_MIN, PASSWORD_MAX,
                                                            _l("密码长度需为 %(min)d–%(max)d 个字符"))])


class ImportForm(FlaskForm):
    file = FileField(_l("名单文件（.xlsx 或 .csv）"), validators=[FileRequired(_l("请选择要导入的文件"))])


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class SecondFactorForm(FlaskForm):
    code = StringField(_l("验证码"), description=_l("验证器中的 6 位数字，或一个恢复码"),
                       validators=[DataRequired(_l("请输入验证码")), Length(max=64)])


class SecuritySettingsForm(FlaskForm):
    secretary = BooleanField(_l("支部书记须启用两步验证"))
    lecturer = BooleanField(_l("授课人须启用两步验证"))
