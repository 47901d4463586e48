from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget


class CheckboxList(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class AnnouncementForm(FlaskForm):
    title = StringField(_l("标题"), validators=[DataRequired(_l("请填写标题")), Length(max=200)])
    body = TextAreaField(_l("正文"), description=_l("支持 Markdown；发布后不能修改，如需更正请另发一条"),
                         validators=[DataRequired(_l("请填写正文")), Length(max=20000)])
    audience = RadioField(_l("发给"), choices=[SelectChoice("all", _l("全体党员")),
                                              SelectChoice("branches", _l("指定支部"))], default="branches")
    branches = CheckboxList(_l("支部"), choices=[], coerce=int, validate_choice=False)
    pinned = BooleanField(_l("置顶"))
    #: One-time key of this form: posting it again shows the first announcement, not a second.
    key = HiddenField()


class ActionForm(FlaskForm):
    pass
