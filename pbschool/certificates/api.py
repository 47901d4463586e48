"""Certificates and my record over /api/v1 (CONTRACT.md): GET /me/record.xlsx, a certificate's PDF,
my certificates."""

from flask import Response, g, url_for

from pbschool.api import api_route, ok
from pbschool.certificates import services
from pbschool.errors import NotFound

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

CERTIFICATE_ITEM = {
    "type": "object", "required": ["code", "pdf_url", "kind", "title", "issued_at", "revoked"],
    "properties": {"code": {"type": "string"}, "pdf_url": {"type": "string"},
                   "kind": {"type": "string", "enum": ["exam", "hours"]}, "title": {"type": "string"},
                   "issued_at": {"type": "string", "format": "date-time"}, "revoked": {"type": "boolean"},
                   "verify_url": {"type": "string"}},
}


def pdf_url(certificate):
    return url_for("api.certificate_pdf", code=certificate.display_code)


def attempt_certificate(attempt):
    """The ``certificate`` member of GET /attempts/{id}: for a passed attempt whose certificate stands."""
    certificate = services.for_attempt(attempt.id)
    if certificate is None or certificate.is_revoked:
        return None
    return services.api_item(certificate, pdf_url(certificate))


@api_route("/me/certificates", summary="My certificates, newest first", tag="me",
           response={"type": "array", "items": CERTIFICATE_ITEM})
def my_certificates():
    from pbschool import clock

    return ok([{**services.api_item(c, pdf_url(c)), "kind": c.kind, "title": c.title,
                "issued_at": clock.isoformat(c.issued_at), "revoked": c.is_revoked,
                "verify_url": url_for("certificates.verify", code=c.display_code, _external=True)}
               for c in services.of_user(g.api_user)])


@api_route("/certificates/<code>.pdf", summary="A certificate as PDF (mine; staff: those whose results they see)",
           tag="me", media_type="application/pdf", statuses=(404,))
def certificate_pdf(code):
    from pbschool.certificates.views import pdf_response

    certificate = services.find(code)
    if not services.visible(g.api_user, certificate):
        raise NotFound("找不到这份证书")
    return pdf_response(certificate)


@api_route("/me/record.xlsx", summary="My own 一人一档 as .xlsx", tag="me", media_type=XLSX)
def my_record_xlsx():
    from pbschool.reports.record import record_workbook

    user = g.api_user
    return Response(record_workbook(user), mimetype=XLSX,
                    headers={"Content-Disposition": f"attachment; filename=record-{user.username}.xlsx"})
