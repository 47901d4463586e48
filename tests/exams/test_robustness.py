"""Junk sent to every exam page and form gives a page or a 4xx, never a 500."""

import io

import pytest

from pbschool.exams import services
from pbschool.extensions import db
from tests.exams.conftest import make_exam

JUNK = [{}, {"title": "x" * 5000}, {"score-1": "abc", "feedback-1": "x"}, {"score-abc": "1"},
        {"sections-0-bank": "9999", "sections-0-count": "-1", "time_limit_minutes": "0"},
        {"type": "nope", "stem": "", "answer": "Z", "difficulty": "9", "score": "-1"},
        {"username": "nobody", "minutes": "abc"}, {"action": "save", "q1": ["A", "B"], "q999": "x"},
        {"opens_at": "garbage", "closes_at": "2026-13-40T99:99", "max_attempts": "0"},
        {"bank-name": "题\x00库", "bank-description": "\x00", "title": "考\x00试", "description": "\x00",
         "stem": "题\x00干", "answer": "A", "option_A": "\x00", "option_B": "b", "type": "single", "score": "1",
         "difficulty": "3", "category": "\x00", "username": "\x00", "time_limit_minutes": "10",
         "max_attempts": "1", "pass_score": "60", "review": "answers", "review_when": "submit", "audience": "job_posts",
         "job_posts": "\x00,司机", "sections-0-bank": "1", "sections-0-count": "1", "sections-0-category": "\x00"},
        "file", "file2", "file3"]


def _data(junk):
    if junk == "file":
        return {"bank": "", "file": (io.BytesIO(b"\x00\xff"), "x.xlsx")}
    if junk == "file3":
        return {"bank": "b\x00", "file": (io.BytesIO("题型,题干,答案\n单选\x00,题\x00,A\n".encode()), "x.csv")}
    if junk == "file2":
        return {"bank": "b", "file": (io.BytesIO(b"PK\x03\x04junk"), "x.xlsx")}
    return junk


@pytest.mark.parametrize("junk", range(len(JUNK)))
def test_junk_posts_never_crash(client, auth, make, bank, pinned, junk):
    exam = make_exam(bank)
    member = make.user("liuzq")
    attempt = services.start_attempt(exam, member)
    db.session.commit()
    make.user("boss", role="admin")
    auth.login("boss")
    paths = ["/admin/banks/new", "/admin/banks/import", "/admin/banks/new", f"/admin/banks/{bank.id}/questions/new",
             f"/admin/questions/{bank.questions[0].id}", "/admin/exams/new", f"/admin/exams/{exam.id}",
             f"/admin/exams/{exam.id}/edit", f"/admin/exams/{exam.id}/marking", f"/admin/exams/{exam.id}/regrade",
             f"/exams/{exam.id}/start", f"/attempts/{attempt.id}/submit"]
    for path in paths:
        response = client.post(path, data=_data(JUNK[junk]), content_type="multipart/form-data")
        assert response.status_code < 500, path
    for path in [f"/admin/exams/{exam.id}/results?branch=abc&state=zzz&format=xlsx", "/admin/banks/template.pdf",
                 f"/admin/banks/{bank.id}?type=zz&category=%00&q=%25", "/exams/999999", "/attempts/999999/result",
                 f"/admin/exams/{exam.id}/statistics", f"/admin/attempts/{attempt.id}"]:
        assert client.get(path).status_code < 500, path


def test_nul_bytes_through_the_api_are_harmless(api, make, bank, pinned):
    exam = make_exam(bank)
    api.token(make.user(role="admin"))
    body = {"title": "考\u0000试", "time_limit_seconds": 600, "max_attempts": 1, "pass_score": 60,
            "points_on_pass": 1, "audience": "branches", "branches": ["\u0000"], "job_posts": ["\u0000"],
            "sections": [{"bank": "题\u0000库", "category": "\u0000", "count": 1, "points_each": 1}]}
    assert api.post("/exams", json=body).status_code == 400  # NUL is refused before any feature sees it
    started = api.post(f"/exams/{exam.id}/attempts").get_json()
    for q in started["questions"]:
        value = {"blank": ["\u0000"] * q.get("blanks", 1)}.get(q["type"], "\u0000")
        assert api.put(f"/attempts/{started['attempt_id']}/answers/{q['id']}", json={"answer": value}) \
            .status_code in (200, 400)
    assert api.post(f"/attempts/{started['attempt_id']}/submit").status_code == 200


def test_pages_render_in_english_too(client, auth, make, bank, pinned):
    exam = make_exam(bank)
    member = make.user("liuzq")
    attempt = services.start_attempt(exam, member)
    db.session.commit()
    auth.login("liuzq")
    client.get("/lang/en")
    for path in ["/exams", f"/exams/{exam.id}", f"/attempts/{attempt.id}", "/exams/wrong-answers", "/"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert '<html lang="en">' in response.get_data(as_text=True)
    client.post(f"/attempts/{attempt.id}/submit", data={"action": "submit"})
    assert client.get(f"/attempts/{attempt.id}/result").status_code == 200
