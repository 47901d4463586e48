"""What the server gives the exam page for keeping answers on the device: the service worker script,
each question's server-side save time, and a sign-out that clears what the device kept."""

import re

from pbschool.exams import services
from pbschool.exams.models import Attempt
from pbschool.extensions import db
from tests.exams.conftest import make_exam, right_value
from tests.exams.test_views import _sit


def test_the_service_worker_is_served_from_the_exam_pages_path_without_sign_in(client):
    response = client.get("/attempts/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"  # a new version is picked up at once
    body = response.get_data(as_text=True)
    assert "pbschool-exam-v1" in body and "/api/" not in body.replace("API answers", "")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_exam_page_names_its_member_the_worker_and_when_each_answer_was_saved(client, auth, make, bank, pinned):
    exam = make_exam(bank)
    member, attempt_id = _sit(client, auth, make, exam)
    attempt = db.session.get(Attempt, attempt_id)
    slot = attempt.questions[0]
    services.save_answer(attempt, slot.question_id, right_value(slot))
    db.session.commit()
    html = client.get(f"/attempts/{attempt_id}").get_data(as_text=True)
    assert f'data-user="{member.id}"' in html
    assert 'data-sw="/attempts/sw.js"' in html and 'data-sw-scope="/attempts/"' in html
    stamps = re.findall(r'data-qid="(\d+)"[^>]*data-saved-at="([^"]+)"', html)
    assert stamps == [(str(slot.question_id), "2026-06-01T01:00:00.000Z")]
    assert "<script>" not in html  # the CSP allows no inline script: data travels in attributes and JSON
    assert 'src="/static/js/exam-outbox.js"' in html


def test_signing_out_tells_the_browser_to_clear_what_it_kept(client, auth, make):
    make.user("liuzq")
    auth.login("liuzq")
    response = auth.logout()
    assert response.status_code == 302
    assert response.headers["Clear-Site-Data"] == '"cache", "storage"'
