from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from pbschool.meetings.models import MEETING_KINDS


class CheckboxList(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def kind_choices():
    from flask_babel import gettext
    from wtforms.fields.choices import SelectChoice

    # the names are marked for translation by CapsForm's labels below
    return [SelectChoice(key, gettext(name)) for key, (name, _every) in MEETING_KINDS.items()]


class MeetingForm(FlaskForm):
    kind = SelectField(_l("会议类型"), choices=[], validators=[DataRequired(_l("请选择会议类型"))])
    held_on = DateField(_l("日期"), validators=[DataRequired(_l("请填写会议日期"))])
    topic = StringField(_l("主题"), validators=[DataRequired(_l("请填写会议主题")), Length(max=200)])
    notes = TextAreaField(_l("备注"), validators=[Optional(), Length(max=5000)])
    attendees = CheckboxList(_l("出席党员"), choices=[], validate_choice=False)
    #: One-time key of this form: posting it again shows the first record instead of a second one.
    key = HiddenField()


class AttendeesForm(FlaskForm):
    attendees = CheckboxList(_l("补记出席党员"), choices=[], validate_choice=False)


class CapsForm(FlaskForm):
    """How many attendances of each kind pay per period; one field per kind, named by the kind."""

    general = StringField(_l("党员大会"))
    committee = StringField(_l("支委会"))
    group = StringField(_l("党小组会"))
    lecture = StringField(_l("党课"))
    theme_day = StringField(_l("主题党日"))
