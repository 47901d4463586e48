from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, HiddenField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional


class CourseForm(FlaskForm):
    title = StringField(_l("课程名称"), validators=[DataRequired(_l("请填写课程名称")), Length(max=200)])
    programme = StringField(_l("所属栏目"), validators=[Optional(), Length(max=100)],
                            description=_l("如：中心组学习、干部学院、政工微课堂、安全确认"))
    summary = TextAreaField(_l("简介"), validators=[Optional(), Length(max=2000)])
    body = TextAreaField(_l("课程介绍（Markdown）"), validators=[Optional(), Length(max=50000)])


class LessonForm(FlaskForm):
    course = SelectField(_l("所属课程"), coerce=int, choices=[])
    title = StringField(_l("课时标题"), validators=[DataRequired(_l("请填写课时标题")), Length(max=200)])
    minutes = IntegerField(_l("时长（分钟）"), default=15, validators=[
        InputRequired(_l("请填写时长")), NumberRange(1, 1440, _l("时长应为 1 到 1440 分钟"))])
    body = TextAreaField(_l("正文（Markdown）"), validators=[Optional(), Length(max=100000)])


class UploadForm(FlaskForm):
    file = FileField(_l("上传视频、音频、PDF 课件或图片"))


class CommentForm(FlaskForm):
    body = TextAreaField(_l("发表学习体会"), validators=[DataRequired(_l("请填写评论内容")),
                                                    Length(max=2000, message=_l("评论不能超过 2000 个字"))])


class ReviewForm(FlaskForm):
    reason = TextAreaField(_l("退回理由"), validators=[Optional(), Length(max=2000)])
    #: The revision the page showed: publishing approves exactly that one.
    revision = HiddenField()

    def revision_number(self):
        from pbschool.web import int_id

        return int_id(self.revision.data)


class RequirementForm(FlaskForm):
    for_all = BooleanField(_l("全体党员必修"))
    job_posts = TextAreaField(_l("必修岗位（每行一个）"), validators=[Optional(), Length(max=5000)])


class ActionForm(FlaskForm):
    """Only the CSRF token."""
