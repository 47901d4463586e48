"""Certificate pages: my certificates, a certificate's PDF, the public /verify page, my record (一人一档)."""

from flask import Response, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from pbschool import charts
from pbschool.certificates import bp, pdf, services
from pbschool.extensions import db, limiter

PDF = "application/pdf"


def verify_url(certificate):
    return url_for("certificates.verify", code=certificate.display_code, _external=True)


def pdf_response(certificate):
    """The certificate's PDF as a download (shared by the page and the API)."""
    body = pdf.render(certificate, verify_url(certificate), current_app.config.get("COMMITTEE_NAME", ""))
    return Response(body, mimetype=PDF, headers={
        "Content-Disposition": f"attachment; filename=certificate-{certificate.display_code}.pdf"})


def visible_or_404(code):
    """The certificate if the signed-in user may see it; anyone else's is 'not found', not 'forbidden'."""
    certificate = services.find(code)
    if not services.visible(current_user, certificate):
        abort(404)
    return certificate


@bp.route("/certificates")
@login_required
def mine():
    if services.issue_for_hours(current_user) is not None:
        db.session.commit()
    return render_template("certificates/mine.html", certificates=services.of_user(current_user),
                           figure=services.figure)


@bp.route("/certificates/<code>.pdf")
@login_required
def download(code):
    return pdf_response(visible_or_404(code))


def _verify_limit():
    return current_app.config.get("VERIFY_LIMIT", "30 per minute;300 per hour")


@bp.route("/verify/<code>")
@limiter.limit(_verify_limit)
def verify(code):
    """Public: whose certificate, for what, of when — or plainly that there is none, or that it was revoked.
    It names the holder and their branch, never their username."""
    certificate = services.find(code)
    status = 404 if certificate is None else 200
    shown = code if len(code) <= services.MAX_CODE_INPUT else code[:services.MAX_CODE_INPUT] + "…"
    return render_template("certificates/verify.html", certificate=certificate, code=shown,
                           figure=services.figure), status


@bp.route("/verify", methods=["GET"])
@limiter.limit(_verify_limit)
def verify_form():
    """A code typed into the form on the page: a well-formed one goes to its /verify/<code>, anything
    else is answered here as no such certificate."""
    typed = (request.args.get("code") or "").strip()
    if not typed:
        return render_template("certificates/verify.html", certificate=None, code="", figure=services.figure)
    code = services.normalise_code(typed)
    if code is not None:
        return redirect(url_for("certificates.verify", code="-".join(code[i:i + 4] for i in (0, 4, 8))))
    shown = typed if len(typed) <= services.MAX_CODE_INPUT else typed[:services.MAX_CODE_INPUT] + "…"
    return render_template("certificates/verify.html", certificate=None, code=shown, figure=services.figure), 404


@bp.route("/me/record")
@login_required
def my_record():
    """一人一档, my own: the same reader as the staff export."""
    from pbschool.points.queries import last_months
    from pbschool.reports.record import member_record

    record = member_record(current_user)
    months = last_months(12)
    by_month = record["summary"]["by_month"]
    chart = charts.line_svg(months, [by_month.get(p, 0) for p in months], _("积分"))
    return render_template("certificates/record.html", r=record, chart=chart, figure=services.figure)
