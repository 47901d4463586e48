"""Pages: courses and lessons for members, the editor for lecturers, review and oversight for staff."""

from decimal import Decimal

from flask import Response, abort, current_app, flash, redirect, render_template, request, send_file, session, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import func, or_, select
from wtforms.fields.choices import SelectChoice

from pbschool import auth
from pbschool.accounts.models import Branch, User
from pbschool.courses import bp, media, services
from pbschool.courses.forms import (
    ActionForm,
    CommentForm,
    CourseForm,
    LessonForm,
    RequirementForm,
    ReviewForm,
    UploadForm,
)
from pbschool.courses.models import Comment, Course, CourseDraft, Lesson, LessonDraft, MediaFile, Programme
from pbschool.errors import DomainError, show_on_form
from pbschool.extensions import db
from pbschool.markup import render_markdown
from pbschool.tabular import xlsx_bytes
from pbschool.web import int_id, safe_next

STATE_NAMES = {"draft": _l("草稿"), "submitted": _l("待审核"), "published": _l("已发布"), "returned": _l("已退回")}
STATE_CHIPS = {"draft": "off", "submitted": "warn", "published": "ok", "returned": "bad"}


def _hours(value):
    value = Decimal(value).normalize()
    return f"{value:f}"


@bp.app_template_filter("hours")
def hours_filter(value):
    return _hours(value or 0)


@bp.app_template_filter("course_time")
def course_time(value):
    """A naive UTC datetime shown in the committee's time zone (Beijing)."""
    return format_datetime(value, "yyyy-MM-dd HH:mm") if value else ""


@bp.app_context_processor
def lesson_states():
    return {"lesson_state_names": STATE_NAMES, "lesson_state_chips": STATE_CHIPS}


# -- member pages ----------------------------------------------------------------------------

@bp.route("/courses")
@login_required
def index():
    courses = services.published_courses()
    required = services.required_course_ids(current_user)
    progress = services.course_progress(current_user, courses)
    groups = {}
    for course in courses:
        groups.setdefault(course.programme.name if course.programme else _("其他课程"), []).append(course)
    only_required = request.args.get("required") == "1"
    if only_required:
        groups = {k: [c for c in v if c.id in required] for k, v in groups.items()}
        groups = {k: v for k, v in groups.items() if v}
    return render_template("courses/index.html", groups=groups, required=required, progress=progress,
                           only_required=only_required, hours=services.course_hours,
                           summary=services.learning_summary(current_user))


@bp.route("/me/learning")
@login_required
def my_learning():
    year = request.args.get("year", type=int) or services.local_year()
    if not 2000 <= year <= 2100:
        abort(400)
    return render_template("courses/my_learning.html", year=year,
                           summary=services.learning_summary(current_user, year),
                           rows=services.completed_this_year(current_user, year),
                           unfinished=services.unfinished_required(current_user))


@bp.route("/courses/<int:course_id>")
@login_required
def course(course_id):
    course = db.get_or_404(Course, course_id)
    if not services.can_read_course(current_user, course):
        abort(404)
    lessons = course.lessons if auth.can_author(current_user) else course.published_lessons()
    lessons = [lesson for lesson in lessons if services.can_read_lesson(current_user, lesson)]
    done = services.completed_lesson_ids(current_user, [lesson.id for lesson in lessons])
    return render_template("courses/course.html", course=course, lessons=lessons, done=done,
                           required=course.id in services.required_course_ids(current_user),
                           hours=services.course_hours(course), lesson_hours=services.lesson_hours,
                           can_edit=services.can_author_in(current_user, course) and auth.can_author(current_user))


def _readable_lesson(lesson_id):
    lesson = db.get_or_404(Lesson, lesson_id)
    if not services.can_read_lesson(current_user, lesson):
        abort(404)
    return lesson


@bp.route("/lessons/<int:lesson_id>")
@login_required
def lesson(lesson_id):
    lesson = _readable_lesson(lesson_id)
    progress = None
    if services.is_visible(lesson):
        progress = services.open_lesson(current_user, lesson)
        db.session.commit()
    return _lesson_page(lesson, progress, CommentForm())


def _lesson_page(lesson, progress, comment_form, status=200):
    siblings = [x for x in lesson.course.published_lessons()]
    index = next((i for i, x in enumerate(siblings) if x.id == lesson.id), None)
    prev_lesson = siblings[index - 1] if index else None
    next_lesson = siblings[index + 1] if index is not None and index + 1 < len(siblings) else None
    return render_template(
        "courses/lesson.html", lesson=lesson, progress=progress, comment_form=comment_form,
        action_form=ActionForm(), hours=services.lesson_hours(lesson.minutes),
        block=services.completion_block(progress, lesson) if progress and not progress.completed_at else None,
        required_seconds=services.required_seconds(lesson), comments=services.visible_comments(lesson, current_user),
        can_edit=services.can_edit_lesson(current_user, lesson), prev_lesson=prev_lesson,
        heartbeat_interval=int(current_app.config.get("HEARTBEAT_INTERVAL_SECONDS", 30)),
        next_lesson=next_lesson), status


@bp.route("/lessons/<int:lesson_id>/done", methods=["POST"])
@login_required
def mark_done(lesson_id):
    lesson = _readable_lesson(lesson_id)
    ActionForm().validate_on_submit() or abort(400)
    try:
        services.complete_lesson(current_user, lesson)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "warning")
    else:
        db.session.commit()
        flash(_("已完成本课时，获得 %(h)s 学时", h=_hours(services.lesson_hours(lesson.minutes))), "success")
    return redirect(url_for("courses.lesson", lesson_id=lesson.id) + "#done")


@bp.route("/lessons/<int:lesson_id>/comments", methods=["POST"])
@login_required
def comment(lesson_id):
    lesson = _readable_lesson(lesson_id)
    form = CommentForm()
    if form.validate_on_submit():
        try:
            item = services.add_comment(current_user, lesson, form.body.data)
        except DomainError as exc:
            db.session.rollback()
            form.body.errors.append(exc.message)
        else:
            db.session.commit()
            flash(_("评论已发表") if item.is_approved else _("评论已提交，审核通过后其他人可见"), "success")
            return redirect(url_for("courses.lesson", lesson_id=lesson.id) + "#comments")
    progress = services._find_progress(current_user, lesson) if services.is_visible(lesson) else None
    return _lesson_page(lesson, progress, form, 400)


def _media_viewer():
    """The signed-in user, or the owner of a valid bearer token (API clients fetch media too)."""
    if current_user.is_authenticated:
        return current_user._get_current_object()
    scheme, _sep, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        from pbschool.accounts.models import ApiToken

        row = ApiToken.find_valid(value.strip())
        if row is not None and row.user.is_active:
            return row.user
    return None


@bp.route("/media/<token>")
def media_file(token):
    viewer = _media_viewer()
    if viewer is None:
        return current_app.login_manager.unauthorized()
    item = db.session.scalar(select(MediaFile).where(MediaFile.stored_name == token[:80]))
    if item is None or not media.can_view(viewer, item):
        abort(404)
    path = media.path_of(item)
    if not path.exists():
        abort(404)
    download = item.kind == "pdf" or request.args.get("download") == "1"
    if current_app.config.get("X_ACCEL_PREFIX"):
        return media.accel_response(item, download)
    response = send_file(path, mimetype=item.mimetype, conditional=True, as_attachment=download,
                         download_name=item.original_name, max_age=3600)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


# -- lecturer pages --------------------------------------------------------------------------

@bp.route("/teach")
@auth.roles_required(*auth.AUTHOR_ROLES)
def teach():
    stmt = select(Lesson).join(Course).order_by(Lesson.updated_at.desc())
    if not auth.is_admin(current_user):
        stmt = stmt.where(Lesson.author_id == current_user.id)
    lessons = db.session.scalars(stmt).all()
    courses = db.session.scalars(select(Course).order_by(Course.title)).all()
    courses = [c for c in courses if services.can_author_in(current_user, c)]
    return render_template("courses/teach.html", lessons=lessons, courses=courses)


def _programme_names():
    return db.session.scalars(select(Programme.name).order_by(Programme.position, Programme.name)).all()


@bp.route("/teach/courses/new", methods=["GET", "POST"])
@bp.route("/teach/courses/<int:course_id>/edit", methods=["GET", "POST"])
@auth.roles_required(*auth.AUTHOR_ROLES)
def edit_course(course_id=None):
    course = db.get_or_404(Course, course_id) if course_id else None
    if course is not None:
        auth.require(auth.is_admin(current_user) or course.author_id == current_user.id)
    copy = (course.draft or course) if course is not None else None
    form = CourseForm(obj=copy, data={"programme": copy.programme.name if copy and copy.programme else "",
                                      "body": copy.body_source if copy else ""}
                      if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            if course is None:
                course = services.create_course(form.title.data, form.summary.data, form.programme.data,
                                                form.body.data, actor=current_user)
            else:
                services.update_course(course, title=form.title.data, summary=form.summary.data,
                                       programme=form.programme.data, body=form.body.data, actor=current_user)
        except DomainError as exc:
            show_on_form(form, exc, "title")
        else:
            db.session.commit()
            if course.draft is not None:
                flash(_("修改已提交审核；审核通过前，党员看到的仍是已发布的课程"), "success")
                return redirect(url_for("courses.edit_course", course_id=course.id))
            flash(_("课程已保存"), "success")
            return redirect(url_for("courses.course", course_id=course.id))
    return render_template("courses/course_form.html", form=form, course=course, programmes=_programme_names())


def _course_choices(lesson=None):
    courses = db.session.scalars(select(Course).order_by(Course.title)).all()
    return [SelectChoice(c.id, c.title) for c in courses
            if services.can_author_in(current_user, c) or (lesson is not None and c.id == lesson.course_id)]


@bp.route("/teach/lessons/new", methods=["GET", "POST"])
@bp.route("/teach/lessons/<int:lesson_id>/edit", methods=["GET", "POST"])
@auth.roles_required(*auth.AUTHOR_ROLES)
def edit_lesson(lesson_id=None):
    lesson = db.get_or_404(Lesson, lesson_id) if lesson_id else None
    if lesson is not None:
        auth.require(services.can_edit_lesson(current_user, lesson))
    data = None
    if request.method == "GET":
        copy = services.working_copy(lesson) if lesson else None
        data = ({"course": copy.course_id, "body": copy.body_source, "title": copy.title, "minutes": copy.minutes}
                if lesson else {"course": request.args.get("course", type=int)})
    form = LessonForm(data=data) if data is not None else LessonForm()
    form.course.choices = _course_choices(lesson)
    if not form.course.choices:
        flash(_("请先创建一门课程"), "info")
        return redirect(url_for("courses.edit_course"))
    if form.validate_on_submit():
        course = db.session.get(Course, form.course.data)
        try:
            if course is None:
                raise DomainError(_("请选择课程"), "missing_field", field="course")
            if lesson is None:
                lesson = services.create_lesson(course, form.title.data, form.minutes.data, form.body.data,
                                                current_user)
            else:
                services.update_lesson(lesson, title=form.title.data, minutes=form.minutes.data,
                                       body=form.body.data, actor=current_user, course=course)
        except DomainError as exc:
            show_on_form(form, exc, "title")
            if lesson is not None and lesson.id is None:
                lesson = None
        else:
            db.session.commit()
            flash(_("课时已保存"), "success")
            return redirect(url_for("courses.edit_lesson", lesson_id=lesson.id))
    upload_form = UploadForm()
    kind, said = session.pop("upload_outcome", (None, None)) if lesson else (None, None)
    if kind == "error":
        upload_form.file.errors = [said]
    return render_template("courses/lesson_form.html", form=form, lesson=lesson, upload_form=upload_form,
                           upload_notice=said if kind == "success" else None,
                           copy=services.working_copy(lesson) if lesson is not None and lesson.id else None,
                           preview_html=render_markdown((form.body.data or "")[:services.MAX_LESSON_CHARS]),
                           action_form=ActionForm(), accept=media.ACCEPT,
                           hours=services.lesson_hours(form.minutes.data or 1) if form.minutes.data else None)


@bp.route("/teach/preview", methods=["POST"])
@auth.roles_required(*auth.AUTHOR_ROLES)
def preview():
    ActionForm().validate_on_submit() or abort(400)
    source = request.form.get("body", "")[:services.MAX_LESSON_CHARS]
    return Response(str(render_markdown(source)), mimetype="text/html")


@bp.route("/teach/lessons/<int:lesson_id>/upload", methods=["POST"])
@auth.roles_required(*auth.AUTHOR_ROLES)
def upload(lesson_id):
    lesson = db.get_or_404(Lesson, lesson_id)
    auth.require(services.can_edit_lesson(current_user, lesson))
    form = UploadForm()
    if not form.validate_on_submit():
        abort(400)
    stored = None
    try:
        services.check_editable(lesson, current_user)
        item = media.save_upload(form.file.data, current_user, lesson)
        stored = media.path_of(item)
        services.media_added(lesson, item, current_user)
        db.session.commit()
    except Exception as exc:
        if stored is not None:
            stored.unlink(missing_ok=True)  # no row will point at it
        if not isinstance(exc, DomainError):
            raise
        db.session.rollback()
        # said next to the upload field the page lands on (#media), not in a flash at the top
        session["upload_outcome"] = ("error", exc.message)
        return redirect(url_for("courses.edit_lesson", lesson_id=lesson.id) + "#media"), 303
    if item.kind == "image":
        session["upload_outcome"] = ("success", _("图片已上传。在正文中写 ![说明](%(url)s) 插入它", url=url_for(
            "courses.media_file", token=item.stored_name)))
    else:
        session["upload_outcome"] = ("success", _("已上传 %(name)s", name=item.original_name))
    return redirect(url_for("courses.edit_lesson", lesson_id=lesson.id) + "#media"), 303


@bp.route("/teach/media/<int:media_id>/delete", methods=["POST"])
@auth.roles_required(*auth.AUTHOR_ROLES)
def delete_media(media_id):
    item = db.get_or_404(MediaFile, media_id)
    auth.require(item.lesson is not None and services.can_edit_lesson(current_user, item.lesson))
    ActionForm().validate_on_submit() or abort(400)
    lesson_id = item.lesson_id
    try:
        services.remove_media(item, current_user)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("courses.edit_lesson", lesson_id=lesson_id) + "#media")
    db.session.commit()
    flash(_("文件已删除"), "success")
    return redirect(url_for("courses.edit_lesson", lesson_id=lesson_id) + "#media")


@bp.route("/teach/lessons/<int:lesson_id>/submit", methods=["POST"])
@auth.roles_required(*auth.AUTHOR_ROLES)
def submit(lesson_id):
    lesson = db.get_or_404(Lesson, lesson_id)
    ActionForm().validate_on_submit() or abort(400)
    try:
        services.submit_lesson(lesson, current_user)
    except DomainError as exc:
        db.session.rollback()
        if exc.status == 403:
            abort(403)
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash(_("已提交审核，审核结果会显示在这里"), "success")
    return redirect(url_for("courses.edit_lesson", lesson_id=lesson.id))


@bp.route("/teach/lessons/<int:lesson_id>/delete", methods=["POST"])
@auth.roles_required(*auth.AUTHOR_ROLES)
def delete_lesson(lesson_id):
    lesson = db.get_or_404(Lesson, lesson_id)
    ActionForm().validate_on_submit() or abort(400)
    title = lesson.title
    try:
        services.delete_lesson(lesson, current_user)
    except DomainError as exc:
        db.session.rollback()
        if exc.status == 403:
            abort(403)
        flash(exc.message, "error")
        return redirect(url_for("courses.edit_lesson", lesson_id=lesson_id))
    db.session.commit()
    flash(_("已删除《%(t)s》", t=title), "success")
    return redirect(url_for("courses.teach"))


# -- admin: review, comments, requirements, completion ------------------------------------------

@bp.route("/admin/review")
@auth.roles_required("admin")
def review_queue():
    lessons = db.session.scalars(
        select(Lesson).outerjoin(LessonDraft)
        .where(or_(Lesson.state == "submitted", LessonDraft.state == "submitted"))
        .order_by(Lesson.updated_at)).all()
    courses = db.session.scalars(select(Course).join(CourseDraft).where(CourseDraft.state == "submitted")
                                 .order_by(CourseDraft.updated_at)).all()
    pending = db.session.scalar(select(func.count(Comment.id)).where(Comment.is_approved.is_(False),
                                                                     Comment.is_hidden.is_(False)))
    return render_template("courses/review_queue.html", lessons=lessons, courses=courses,
                           working_copy=services.working_copy, pending_comments=pending)


@bp.route("/admin/review/<int:lesson_id>", methods=["GET", "POST"])
@auth.roles_required("admin")
def review(lesson_id):
    lesson = db.get_or_404(Lesson, lesson_id)
    form = ReviewForm()
    status = 200
    if form.validate_on_submit():
        action = request.form.get("action")
        try:
            if action == "publish":
                services.publish_lesson(lesson, current_user, form.revision_number())
            elif action == "return":
                services.return_lesson(lesson, current_user, form.reason.data, form.revision_number())
            elif action == "withdraw":
                services.withdraw_lesson(lesson, current_user, form.reason.data)
            else:
                abort(400)
        except DomainError as exc:
            db.session.rollback()
            form.reason.errors.append(exc.message)
            status = exc.status
        else:
            db.session.commit()
            flash(_("已发布《%(t)s》", t=lesson.title) if action == "publish"
                  else _("已撤回《%(t)s》", t=lesson.title) if action == "withdraw"
                  else _("已退回《%(t)s》", t=lesson.title), "success")
            return redirect(url_for("courses.review_queue"))
    copy = services.working_copy(lesson)
    form.revision.data = str(lesson.revision)  # what this page shows is what publishing approves
    own = services.is_own_lesson(current_user, lesson)
    return render_template("courses/review.html", lesson=lesson, copy=copy, form=form, own=own,
                           hours=services.lesson_hours(copy.minutes)), status


@bp.route("/admin/review/courses/<int:course_id>", methods=["GET", "POST"])
@auth.roles_required("admin")
def review_course(course_id):
    course = db.get_or_404(Course, course_id)
    form = ReviewForm()
    status = 200
    if form.validate_on_submit():
        action = request.form.get("action")
        try:
            if action == "publish":
                services.publish_course(course, current_user, form.revision_number())
            elif action == "return":
                services.return_course(course, current_user, form.reason.data, form.revision_number())
            else:
                abort(400)
        except DomainError as exc:
            db.session.rollback()
            form.reason.errors.append(exc.message)
            status = exc.status
        else:
            db.session.commit()
            flash(_("已发布《%(t)s》的修改", t=course.title) if action == "publish"
                  else _("已退回《%(t)s》的修改", t=course.title), "success")
            return redirect(url_for("courses.review_queue"))
    form.revision.data = str(course.revision)
    return render_template("courses/review_course.html", course=course, draft=course.draft, form=form), status


@bp.route("/admin/comments")
@auth.roles_required("admin")
def comment_queue():
    show = request.args.get("show", "pending")
    stmt = select(Comment).order_by(Comment.created_at.desc())
    if show == "pending":
        stmt = stmt.where(Comment.is_approved.is_(False), Comment.is_hidden.is_(False))
    elif show == "hidden":
        stmt = stmt.where(Comment.is_hidden.is_(True))
    page = db.paginate(stmt, per_page=50, error_out=False)
    return render_template("courses/comments.html", page=page, show=show, action_form=ActionForm())


@bp.route("/admin/comments/<int:comment_id>", methods=["POST"])
@auth.roles_required("admin")
def moderate(comment_id):
    item = db.get_or_404(Comment, comment_id)
    ActionForm().validate_on_submit() or abort(400)
    action = request.form.get("action")
    if action == "approve":
        services.approve_comment(item, current_user)
        flash(_("评论已通过"), "success")
    elif action == "hide":
        services.hide_comment(item, current_user, request.form.get("reason", ""))
        flash(_("评论已隐藏"), "success")
    else:
        abort(400)
    db.session.commit()
    return redirect(safe_next(request.form.get("next"), url_for("courses.comment_queue")))


@bp.route("/admin/courses")
@auth.roles_required("admin")
def admin_courses():
    courses = db.session.scalars(select(Course).outerjoin(Programme)
                                 .order_by(Programme.name.nulls_last(), Course.position, Course.id)).all()
    return render_template("courses/admin_courses.html", courses=courses, hours=services.course_hours)


@bp.route("/admin/courses/<int:course_id>/required", methods=["GET", "POST"])
@auth.roles_required("admin")
def requirements(course_id):
    course = db.get_or_404(Course, course_id)
    branches = db.session.scalars(select(Branch).where(Branch.is_active.is_(True)).order_by(Branch.code)).all()
    form = RequirementForm(data={"for_all": any(r.kind == "all" for r in course.requirements),
                                 "job_posts": "\n".join(r.job_post for r in course.requirements
                                                        if r.kind == "job_post")}
                           if request.method == "GET" else None)
    chosen = {r.branch_id for r in course.requirements if r.kind == "branch"}
    if form.validate_on_submit():
        chosen = {int_id(v) for v in request.form.getlist("branches") if int_id(v)}
        try:
            services.set_requirements(course, for_all=form.for_all.data, branch_ids=sorted(chosen),
                                      job_posts=(form.job_posts.data or "").splitlines(), actor=current_user)
        except DomainError as exc:
            db.session.rollback()
            form.job_posts.errors.append(exc.message)
        else:
            db.session.commit()
            flash(_("必修范围已保存"), "success")
            return redirect(url_for("courses.completion", course_id=course.id))
    job_posts = db.session.scalars(select(User.job_post).where(User.job_post != "").distinct()
                                   .order_by(User.job_post).limit(500)).all()
    return render_template("courses/requirements.html", course=course, form=form, branches=branches,
                           chosen=chosen, job_posts=job_posts)


@bp.route("/admin/courses/<int:course_id>/completion")
@auth.roles_required("admin", "secretary")
def completion(course_id):
    course = db.get_or_404(Course, course_id)
    if not course.is_published:
        abort(404)
    rows = services.completion_by_branch(course, current_user)
    return render_template("courses/completion.html", course=course, rows=rows)


# -- secretary: the branch's learning ----------------------------------------------------------

@bp.route("/branch/learning")
@auth.roles_required("admin", "secretary")
def branch_learning():
    branches = db.session.scalars(auth.scope_to_branch(select(Branch), current_user, Branch.id)
                                  .order_by(Branch.code)).all()
    if not branches:
        abort(403)
    code = request.args.get("branch") or ""
    branch = next((b for b in branches if b.code == code), None) if code else None
    if code and branch is None:
        abort(403)  # a branch outside the viewer's scope, or none such
    branch = branch or (current_user.branch if current_user.branch in branches else branches[0])
    year = request.args.get("year", type=int) or services.local_year()
    if not 2000 <= year <= 2100:
        abort(400)
    rows = services.branch_learning(branch, year)
    courses = services.published_courses()
    if request.args.get("format") == "xlsx":
        data = xlsx_bytes(f"{branch.name} {year}", [_("用户名"), _("姓名"), _("岗位"), _("学时"), _("目标学时"),
                                                    _("必修课完成"), _("必修课总数"), _("进度")],
                          [[r["user"].username, r["user"].name, r["user"].job_post, float(r["hours"]),
                            float(r["target"]), r["required_done"], r["required"],
                            _("落后") if r["behind"] else _("正常")] for r in rows])
        response = Response(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        response.headers.set("Content-Disposition", "attachment", filename=f"learning-{branch.code}-{year}.xlsx")
        return response
    return render_template("courses/branch_learning.html", branch=branch, branches=branches, rows=rows, year=year,
                           courses=courses)
