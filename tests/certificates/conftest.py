import base64
import re
import zlib

import pytest

from pbschool.exams import services
from pbschool.extensions import db
from tests.exams.conftest import make_bank, make_exam, right_value

#: One single-choice question whose key a test may change (a regrade), and one true/false.
QUESTIONS = [
    ("single", "党的根本组织原则是？", ["集体领导", "民主集中制", "个人分工负责", "少数服从多数"], "B", "党章"),
    ("truefalse", "党员的党龄从转为正式党员之日算起。", [], "对", "党章"),
]


@pytest.fixture
def org(app, make):
    return make.organisation()


@pytest.fixture
def cert_exam(app):
    bank = make_bank("组织原则", QUESTIONS)
    return make_exam(bank, pass_score=100, points=5, certificate=True)


def sit(exam, member, right=True):
    """A finished attempt: every answer right (a pass), or the single choice wrong."""
    attempt = services.start_attempt(exam, member)
    for slot in attempt.questions:
        value = right_value(slot)
        if not right and slot.question.type == "single":
            value = "A" if value != "A" else "C"
        services.save_answer(attempt, slot.question_id, value)
    services.submit_attempt(attempt)
    db.session.commit()
    return attempt


_STREAM = re.compile(rb"<<(.*?)>>\s*stream\r?\n(.*?)endstream", re.S)
_TOKEN = re.compile(rb"/(F\d+)\s+[\d.]+\s+Tf|(\((?:\\.|[^\\)])*\))\s*Tj", re.S)
_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f"}


def _unescape(raw):
    out, i = bytearray(), 0
    while i < len(raw):
        ch = raw[i]
        if ch != 0x5C or i + 1 >= len(raw):
            out.append(ch)
            i += 1
            continue
        nxt = raw[i + 1]
        digits = re.match(rb"[0-7]{1,3}", raw[i + 1:i + 4])
        if digits:
            out.append(int(digits.group(), 8) & 0xFF)
            i += 1 + len(digits.group())
        else:
            out += _ESCAPES.get(nxt, bytes([nxt]))
            i += 2
    return bytes(out)


def pdf_text(data):
    """The strings a PDF shows, read without reportlab or any PDF library: undo each content stream's
    filters (ASCII85, Flate), follow the font in use (``/Fn size Tf``) and read each shown string
    (``(...) Tj``) as UTF-16BE in a font encoded UniGB-UCS2-H (the CID font), else as Latin-1."""
    cid_fonts = set(re.findall(rb"/Encoding /UniGB-UCS2-H /Name /(F\d+)", data))
    texts = []
    for header, stream in _STREAM.findall(data):
        body = stream.strip()
        if b"/ASCII85Decode" in header:
            body = base64.a85decode(body, adobe=True)
        if b"/FlateDecode" in header:
            body = zlib.decompress(body)
        font = None
        for name, literal in _TOKEN.findall(body):
            if name:
                font = name
                continue
            raw = _unescape(literal[1:-1])
            texts.append(raw.decode("utf-16-be") if font in cid_fonts else raw.decode("latin-1"))
    return "\n".join(texts)
