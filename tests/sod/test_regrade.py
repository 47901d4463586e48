"""The matrix for regrading (POST /admin/exams/<id>/regrade and POST /api/v1/exams/<id>/regrade): no role
regrades its own paper. Members, lecturers and secretaries may not regrade at all; an admin's regrade
leaves the admin's own attempt as it was and reports it (``own_attempt``) for another admin to do.
Secretaries and admins sit exams as previews (tests/exams/test_preview.py), so their passes pay nothing
to begin with; the regrade must not change that either."""

import pytest
from sqlalchemy import select

from pbschool.exams import services
from pbschool.exams.models import Attempt
from pbschool.extensions import db
from pbschool.points.services import balance
from tests.exams.conftest import make_bank, make_exam, right_value
from tests.factories import PASSWORD, ApiClient
from tests.sod.conftest import ROLES

#: What a pass pays each role: staff who can read the answers sit a preview, which pays nothing.
PAID = {"member": 5, "lecturer": 5, "secretary": 0, "admin": 0}

QUESTIONS = [
    ("single", "党的根本组织原则是？", ["集体领导", "民主集中制", "个人分工负责", "少数服从多数"], "B", "党章"),
    ("truefalse", "党员的党龄从转为正式党员之日算起。", [], "对", "党章"),
]


def _passed_then_key_corrected(sitter, *others):
    """An exam ``sitter`` (and ``others``) passed with points, whose key is then corrected so that they fail."""
    bank = make_bank("组织原则", QUESTIONS)
    exam = make_exam(bank, pass_score=100, points=5)
    for user in (*others, sitter):
        attempt = services.start_attempt(exam, user)
        for slot in attempt.questions:
            services.save_answer(attempt, slot.question_id, right_value(slot))
        services.submit_attempt(attempt)
    db.session.commit()
    question = next(q for q in bank.questions if q.type == "single")
    question.answer = "A"
    db.session.commit()
    return exam, attempt


@pytest.mark.parametrize("path", ["page", "api"])
@pytest.mark.parametrize("role", ROLES)
def test_nobody_regrades_their_own_attempt(app, client, person, unchanged, role, path):
    actor = person(role)
    exam, attempt = _passed_then_key_corrected(actor)
    assert balance(actor) == PAID[role]
    # Signing in writes to the user's row: done before the action whose writes are checked.
    if path == "page":
        client.post("/login", data={"username": actor.username, "password": PASSWORD})
    else:
        api = ApiClient(client).token(actor)
        api.get("/me")
    with unchanged():
        if path == "page":
            response = client.post(f"/admin/exams/{exam.id}/regrade")
            if role == "admin":
                assert response.status_code == 200
                assert "不能由您重新评分" in response.get_data(as_text=True)
            else:
                assert response.status_code == 403
        else:
            response = api.post(f"/exams/{exam.id}/regrade", json={"dry_run": False})
            if role == "admin":
                body = response.get_json()
                assert response.status_code == 200 and body["changes"] == []
                assert body["skipped"] == [{"attempt_id": attempt.id, "username": actor.username,
                                            "code": "own_attempt"}]
            else:
                assert response.status_code == 403
                assert response.get_json()["error"]["code"] in ("forbidden", "own_attempt")
    assert db.session.get(Attempt, attempt.id).passed is True and balance(actor) == PAID[role]


def test_another_admin_regrades_what_the_first_could_not(app, make, api):
    first = make.user("admin1", role="admin")
    member = make.user("liuzq")
    exam, attempt = _passed_then_key_corrected(first, member)
    api.token(first)
    body = api.post(f"/exams/{exam.id}/regrade", json={"dry_run": False}).get_json()
    assert [c["username"] for c in body["changes"]] == ["liuzq"]
    assert [s["username"] for s in body["skipped"]] == ["admin1"]
    assert balance(member) == 0 and balance(first) == 0  # the admin sat a preview: never paid
    api.token(make.user("admin2", role="admin"))
    body = api.post(f"/exams/{exam.id}/regrade", json={"dry_run": False}).get_json()
    assert [(c["username"], c["points"]) for c in body["changes"]] == [("admin1", 0.0)]
    assert body["skipped"] == [] and balance(first) == 0
    assert db.session.scalar(select(Attempt.passed).where(Attempt.id == attempt.id)) is False
