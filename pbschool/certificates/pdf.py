"""The certificate as a PDF: one A4 page, Chinese text in the CID font every PDF reader carries
(STSong-Light: reportlab embeds no font file and downloads none), a QR code drawn as vector squares.

Type sizes are large and the layout is one column, so the page reads on a phone screen too."""

import io

import segno
from flask_babel import format_date
from flask_babel import gettext as _
from reportlab.lib.colors import HexColor
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from pbschool.certificates import services

FONT = "STSong-Light"
RED = HexColor("#c8161d")
GREY = HexColor("#555555")


def _font():
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def _wrap(text, font, size, width):
    """Lines of ``text`` no wider than ``width`` (Chinese breaks anywhere)."""
    lines, line = [], ""
    for ch in text:
        if pdfmetrics.stringWidth(line + ch, font, size) > width and line:
            lines.append(line)
            line = ""
        line += ch
    return [*lines, line] if line else lines


def _qr(pdf, url, x, y, size):
    qr = segno.make(url, error="m")
    rows = list(qr.matrix)
    cell = size / (len(rows) + 8)  # a quiet zone of four cells each side
    pdf.setFillColorRGB(1, 1, 1)
    pdf.rect(x, y, size, size, stroke=0, fill=1)
    pdf.setFillColorRGB(0, 0, 0)
    for r, row in enumerate(rows):
        for c, dark in enumerate(row):
            if dark:
                pdf.rect(x + (c + 4) * cell, y + size - (r + 5) * cell, cell, cell, stroke=0, fill=1)
    pdf.linkURL(url, (x, y, x + size, y + size), relative=0)


def render(certificate, verify_url, committee):
    """The certificate's PDF bytes."""
    font = _font()
    width, height = A4
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    heading = _("学时证明") if certificate.kind == "hours" else _("合格证书")
    pdf.setTitle(f"{heading} {certificate.display_code}")
    pdf.setAuthor(committee)
    margin = 22 * mm
    pdf.setStrokeColor(RED)
    pdf.setLineWidth(3)
    pdf.rect(12 * mm, 12 * mm, width - 24 * mm, height - 24 * mm)
    pdf.setLineWidth(0.8)
    pdf.rect(15 * mm, 15 * mm, width - 30 * mm, height - 30 * mm)

    pdf.setFillColor(RED)
    pdf.setFont(font, 40)
    pdf.drawCentredString(width / 2, height - 55 * mm, heading)
    pdf.setFillColor(GREY)
    pdf.setFont(font, 14)
    pdf.drawCentredString(width / 2, height - 66 * mm, committee)

    if certificate.kind == "hours":
        what = _("%(y)d 年度学习学时达到目标", y=certificate.year)
    else:
        what = _("通过考试「%(t)s」", t=certificate.title)
    rows = [(_("姓名"), certificate.holder_name), (_("支部"), certificate.branch_name or "—"),
            (_("事项"), what), (_("成绩") if certificate.kind == "exam" else _("学时"), services.figure(certificate)),
            (_("日期"), format_date(certificate.issued_at, "long"))]
    pdf.setFillColorRGB(0, 0, 0)
    y = height - 92 * mm
    label_w = 30 * mm
    for label, value in rows:
        pdf.setFont(font, 16)
        pdf.setFillColor(GREY)
        pdf.drawString(margin + 8 * mm, y, label)
        pdf.setFillColorRGB(0, 0, 0)
        size = 20
        lines = _wrap(value, font, size, width - 2 * margin - label_w - 10 * mm)
        for line in lines:
            pdf.setFont(font, size)
            pdf.drawString(margin + 8 * mm + label_w, y, line)
            y -= 10 * mm
        y -= 5 * mm

    pdf.setFont(font, 16)
    pdf.drawRightString(width - margin - 8 * mm, 92 * mm, committee)
    pdf.setFont(font, 13)
    pdf.drawRightString(width - margin - 8 * mm, 84 * mm, format_date(certificate.issued_at, "long"))

    qr_size = 42 * mm
    _qr(pdf, verify_url, margin + 4 * mm, 30 * mm, qr_size)
    text_x = margin + qr_size + 10 * mm
    pdf.setFillColor(GREY)
    pdf.setFont(font, 12)
    pdf.drawString(text_x, 60 * mm, _("证书编号"))
    pdf.setFillColorRGB(0, 0, 0)
    pdf.setFont("Courier-Bold", 18)
    pdf.drawString(text_x, 52 * mm, certificate.display_code)
    pdf.setFillColor(GREY)
    pdf.setFont(font, 11)
    pdf.drawString(text_x, 43 * mm, _("扫码或打开以下网址验证真伪："))
    pdf.setFont("Helvetica", 9)
    pdf.drawString(text_x, 37 * mm, verify_url)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
