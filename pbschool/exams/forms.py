from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    DecimalField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from pbschool.exams.qtypes import LETTERS

TYPE_CHOICES = [SelectChoice("single", _l("单选")), SelectChoice("multiple", _l("多选")),
                SelectChoice("truefalse", _l("判断")), SelectChoice("blank", _l("填空")),
                SelectChoice("short", _l("简答"))]
DIFFICULTY_CHOICES = [SelectChoice(str(n), str(n)) for n in range(1, 6)]


class QuestionForm(FlaskForm):
    type = SelectField(_l("题型"), choices=TYPE_CHOICES, default="single")
    stem = TextAreaField(_l("题干"), description=_l("支持 Markdown；填空题用 ____（四个或更多下划线）标出每个空"),
                         validators=[DataRequired(_l("请填写题干")), Length(max=10000)], render_kw={"rows": 4})
    answer = StringField(_l("答案"), description=_l(
        "单选如 B；多选如 ACD；判断填 对 或 错；填空各空用 | 分隔，同一空的备选答案用 / 分隔；简答填参考答案"),
        validators=[Length(max=5000)])
    score = DecimalField(_l("分值"), default=1, places=1,
                         validators=[DataRequired(_l("请填写分值")), NumberRange(0.1, 1000, _l("分值应为 0.1–1000"))])
    difficulty = SelectField(_l("难度（1 易 – 5 难）"), choices=DIFFICULTY_CHOICES, default="3")
    category = StringField(_l("分类"), validators=[Optional(), Length(max=100)])
    explanation = TextAreaField(_l("解析"), validators=[Optional(), Length(max=10000)], render_kw={"rows": 3})
    is_active = BooleanField(_l("启用（可被抽题）"), default=True)


for _letter in LETTERS:
    setattr(QuestionForm, f"option_{_letter}", StringField(_l("选项 %(k)s", k=_letter),
                                                           validators=[Optional(), Length(max=1000)]))


class BankForm(FlaskForm):
    name = StringField(_l("题库名称"), validators=[DataRequired(_l("请填写题库名称")), Length(max=100)])
    description = TextAreaField(_l("说明"), validators=[Optional(), Length(max=2000)], render_kw={"rows": 2})


class BankImportForm(FlaskForm):
    bank = StringField(_l("导入到题库"), description=_l("题库不存在时自动创建"),
                       validators=[DataRequired(_l("请填写题库名称")), Length(max=100)])
    file = FileField(_l("题目文件（.xlsx 或 .csv）"), validators=[FileRequired(_l("请选择要导入的文件"))])


class SectionForm(Form):
    bank = SelectField(_l("题库"), choices=[], validate_choice=False)
    category = StringField(_l("分类（可空）"), validators=[Optional(), Length(max=100)])
    difficulty = SelectField(_l("难度"), choices=[SelectChoice("", _l("不限"))] + DIFFICULTY_CHOICES, default="")
    count = IntegerField(_l("抽题数"), validators=[Optional(), NumberRange(1, 500)])
    points_each = DecimalField(_l("每题分值"), places=1, validators=[Optional(), NumberRange(0.1, 1000)])


class ExamForm(FlaskForm):
    title = StringField(_l("考试名称"), validators=[DataRequired(_l("请填写考试名称")), Length(max=200)])
    description = TextAreaField(_l("考试说明"), validators=[Optional(), Length(max=5000)], render_kw={"rows": 2})
    time_limit_minutes = IntegerField(_l("考试时长（分钟）"), default=30,
                                      validators=[DataRequired(_l("请填写考试时长")), NumberRange(1, 1440)])
    opens_at = DateTimeLocalField(_l("开始时间（北京时间）"), format="%Y-%m-%dT%H:%M", validators=[Optional()])
    closes_at = DateTimeLocalField(_l("结束时间（北京时间）"), format="%Y-%m-%dT%H:%M", validators=[Optional()])
    max_attempts = IntegerField(_l("允许次数"), default=1, validators=[DataRequired(), NumberRange(1, 100)])
    grading_method = SelectField(_l("计分方式"), choices=[SelectChoice("highest", _l("取最高分")),
                                                         SelectChoice("last", _l("取最后一次"))])
    pass_score = DecimalField(_l("及格线（满分的百分比）"), default=60, places=1,
                              validators=[DataRequired(), NumberRange(0, 100)])
    points_on_pass = DecimalField(_l("通过奖励积分"), default=2, places=1,
                                  validators=[Optional(), NumberRange(0, 1000)])
    shuffle_questions = BooleanField(_l("题目乱序"), default=True)
    shuffle_options = BooleanField(_l("选项乱序"), default=True)
    partial_credit = BooleanField(_l("多选题少选按比例得分（默认：多选、少选、错选均不得分）"), default=False)
    certificate = BooleanField(_l("通过后颁发证书（可扫码验证）"), default=False)
    review = SelectField(_l("交卷后可查看"), choices=[SelectChoice("score", _l("仅成绩")),
                                                    SelectChoice("answers", _l("成绩和答案")),
                                                    SelectChoice("explanations", _l("成绩、答案和解析"))],
                         default="explanations")
    review_when = SelectField(_l("答案何时公布"), choices=[SelectChoice("submit", _l("交卷后立即")),
                                                         SelectChoice("close", _l("考试结束后"))])
    audience = SelectField(_l("参加范围"), choices=[SelectChoice("all", _l("全体党员")),
                                                   SelectChoice("branches", _l("指定支部")),
                                                   SelectChoice("job_posts", _l("指定岗位"))])
    branches = SelectMultipleField(_l("支部"), choices=[], validate_choice=False)
    job_posts = StringField(_l("岗位（用逗号分隔）"), validators=[Optional(), Length(max=2000)])
    sections = FieldList(FormField(SectionForm), min_entries=3, max_entries=10)


class ExamSettingsForm(FlaskForm):
    title = StringField(_l("考试名称"), validators=[DataRequired(_l("请填写考试名称")), Length(max=200)])
    description = TextAreaField(_l("考试说明"), validators=[Optional(), Length(max=5000)], render_kw={"rows": 2})
    opens_at = DateTimeLocalField(_l("开始时间（北京时间）"), format="%Y-%m-%dT%H:%M", validators=[Optional()])
    closes_at = DateTimeLocalField(_l("结束时间（北京时间）"), format="%Y-%m-%dT%H:%M", validators=[Optional()])
    max_attempts = IntegerField(_l("允许次数"), validators=[DataRequired(), NumberRange(1, 100)])
    review = ExamForm.review
    review_when = ExamForm.review_when
    is_published = BooleanField(_l("发布（党员可见）"))
    certificate = ExamForm.certificate


class _Whole(IntegerField):
    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_l("请填写整数")) from None


class _Moment(DateTimeLocalField):
    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_l("请填写有效的日期和时间")) from None


class OverrideForm(FlaskForm):
    """One member's or one branch's own terms for an exam (exams/overrides.py)."""

    username = StringField(_l("党员用户名"), validators=[Optional(), Length(max=64, message=_l("用户名太长"))],
                           description=_l("填用户名为个人设置；或在下方选择支部"))
    branch = SelectField(_l("或整个支部"), choices=[], validate_choice=False)
    extra_minutes = _Whole(_l("延长分钟数"), validators=[Optional(), NumberRange(
        0, 7 * 24 * 60, message=_l("延长分钟数应为 0–10080（最多 7 天）"))])
    closes_at = _Moment(_l("截止时间延至（北京时间）"), format="%Y-%m-%dT%H:%M", validators=[Optional()])
    extra_attempts = _Whole(_l("增加考试次数"), validators=[Optional(), NumberRange(
        0, 100, message=_l("增加次数应为 0–100"))])


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class NoticeForm(FlaskForm):
    """考试须知: the clock starts only once the member says they have read it."""

    agreed = BooleanField(_l("我已阅读考试须知"),
                          validators=[DataRequired(_l("请先阅读考试须知，并勾选“我已阅读”后再开始答题"))])
