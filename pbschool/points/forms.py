from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DecimalField, HiddenField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional


class AwardForm(FlaskForm):
    member = SelectField(_l("党员"), choices=[], validate_choice=False,
                         validators=[DataRequired(_l("请选择党员"))])
    rule = SelectField(_l("按规则（可选）"), choices=[], validate_choice=False,
                       description=_l("选择一条 X 规则时，分值和类别按规则计算"))
    points = DecimalField(_l("分值"), places=1, validators=[Optional()],
                          description=_l("加分填正数，扣分填负数，最多一位小数"))
    category = SelectField(_l("类别"), choices=[], validate_choice=False)
    reason = TextAreaField(_l("理由"), validators=[DataRequired(_l("请填写理由")), Length(max=500)])
    is_veto = BooleanField(_l("列为一票否决项（当年不能参加评先）"))
    key = HiddenField()


class ReverseForm(FlaskForm):
    reason = StringField(_l("更正理由"), validators=[DataRequired(_l("请填写理由")), Length(max=500)])


class PublishForm(FlaskForm):
    period = SelectField(_l("月份"), choices=[], validate_choice=False,
                         validators=[DataRequired(_l("请选择月份"))])


class StarsForm(FlaskForm):
    quarter = SelectField(_l("季度"), choices=[], validate_choice=False,
                          validators=[DataRequired(_l("请选择季度"))])


class StarSettingsForm(FlaskForm):
    base = IntegerField(_l("基础分"), validators=[InputRequired(_l("请填写基础分")), NumberRange(0, 100)],
                        description=_l("季度得分 = 基础分 + 本季度积分，最高 100"))
    bands = StringField(_l("一至五星分数线"), validators=[DataRequired(_l("请填写分数线"))],
                        description=_l("五个整数，用逗号分隔，例如 60,70,80,90,96；低于第一条为不合格"))
    honours_top_n = IntegerField(_l("评先：每个支部前几名"), validators=[Optional(), NumberRange(1, 1000)])
    month_target = DecimalField(_l("月度目标积分"), places=1, validators=[Optional(), NumberRange(0, 10000)])
    year_target = DecimalField(_l("年度目标积分"), places=1, validators=[Optional(), NumberRange(0, 100000)])


class RuleForm(FlaskForm):
    name = StringField(_l("规则名称"), validators=[DataRequired(_l("请填写规则名称")), Length(max=100)])
    category = StringField(_l("类别"), validators=[DataRequired(_l("请填写类别")), Length(max=20)],
                           description=_l("学习、考试、组织生活、作用发挥，或自定义 X 类别"))
    points = DecimalField(_l("分值"), places=1, validators=[InputRequired(_l("请填写分值"))])
    unit = DecimalField(_l("计量单位"), places=2, validators=[Optional()],
                        description=_l("按量计分时每多少单位得一次分（如每 10 分钟）；留空则每次得分"))
    daily_cap = DecimalField(_l("每日上限"), places=1, validators=[Optional()])
    monthly_cap = DecimalField(_l("每月上限"), places=1, validators=[Optional()])
    bands = StringField(_l("按分数段计分（可选）"), validators=[Optional(), Length(max=200)],
                        description=_l("例如 90:3, 80:2, 60:1 —— 考试得分（百分比）达到分数线即得对应积分；"
                                       "留空则用考试自己的通过积分"))
    is_active = BooleanField(_l("启用"), default=True)
