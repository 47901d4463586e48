"""The exam-day answer save (issue 13): few statements, a guarded upsert, and the lean token check
refusing what the full one refuses."""

import datetime as dt

from sqlalchemy import select

from pbschool import clock
from pbschool.accounts.models import ApiToken
from pbschool.exams import services
from pbschool.exams.models import Answer, Attempt
from pbschool.extensions import db
from tests.exams.conftest import make_exam


def _started(api, make, bank, **exam):
    exam = make_exam(bank, **exam)
    member = make.user()
    api.token(member)
    body = api.post(f"/exams/{exam.id}/attempts").get_json()
    by_type = {q["type"]: q for q in body["questions"]}
    return member, body["attempt_id"], by_type["single"]["id"]


def _stored(attempt_id, question_id):
    db.session.expire_all()
    return db.session.scalar(select(Answer).where(Answer.attempt_id == attempt_id, Answer.question_id == question_id))


def test_one_save_is_three_statements(api, make, bank, pinned, statements):
    """Token with its user, the attempt locked with its slot and question shape, the upsert: a
    regression (a lazy load, a second look-up) shows up here."""
    _member, attempt_id, qid = _started(api, make, bank)
    api.put(f"/attempts/{attempt_id}/answers/{qid}", json={"answer": "A"})  # the token's first use is noted
    statements.clear()
    response = api.put(f"/attempts/{attempt_id}/answers/{qid}", json={"answer": "B"})
    assert response.status_code == 200, response.get_json()
    sent = [s for s in statements if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "BEGIN"))]
    assert len(sent) <= 3, sent
    assert _stored(attempt_id, qid).revision == 2


def test_the_guarded_upsert_writes_nothing_into_a_closed_attempt(api, make, bank, pinned):
    """The upsert's own guard (state, owner, deadline and grace), whatever its caller checked."""
    member, attempt_id, qid = _started(api, make, bank, time_limit=60)
    now = clock.now()
    assert services._upsert_answer(attempt_id, member.id, qid, "A", now)
    assert not services._upsert_answer(attempt_id, member.id + 1000, qid, "C", now)  # not the owner
    late = now + dt.timedelta(seconds=66)  # past the deadline and its 5 s grace
    assert not services._upsert_answer(attempt_id, member.id, qid, "C", late)
    assert services._upsert_answer(attempt_id, member.id, qid, "B", now + dt.timedelta(seconds=64))  # in the grace
    assert _stored(attempt_id, qid).value == "B"
    attempt = db.session.get(Attempt, attempt_id)
    services.submit_attempt(attempt)
    db.session.commit()
    assert not services._upsert_answer(attempt_id, member.id, qid, "C", now)  # graded: neither update...
    other = next(s.question_id for s in attempt.questions if s.question_id != qid)
    assert not services._upsert_answer(attempt_id, member.id, other, "A", now)  # ...nor insert
    db.session.commit()
    assert _stored(attempt_id, qid).value == "B"
    assert _stored(attempt_id, other) is None


def test_saving_into_a_graded_attempt_is_refused(api, make, bank, pinned):
    _member, attempt_id, qid = _started(api, make, bank)
    assert api.put(f"/attempts/{attempt_id}/answers/{qid}", json={"answer": "A"}).status_code == 200
    assert api.post(f"/attempts/{attempt_id}/submit").status_code == 200
    refused = api.put(f"/attempts/{attempt_id}/answers/{qid}", json={"answer": "B"})
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "already_submitted"
    assert _stored(attempt_id, qid).value is not None and _stored(attempt_id, qid).revision == 1


def test_the_save_refuses_revoked_expired_and_inactive_tokens(api, make, bank, pinned):
    member, attempt_id, qid = _started(api, make, bank)
    path = f"/attempts/{attempt_id}/answers/{qid}"
    assert api.put(path, json={"answer": "A"}).status_code == 200
    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == member.id))

    def refused(reason):
        response = api.put(path, json={"answer": "B"})
        assert response.status_code == 401, reason
        assert response.get_json()["error"]["code"] == "invalid_token", reason

    token.expires_at = clock.now()
    db.session.commit()
    refused("expired")
    token.expires_at = None
    token.revoked_at = clock.now()
    db.session.commit()
    refused("revoked")
    token.revoked_at = None
    member.is_active_account = False
    db.session.commit()
    refused("inactive")
    member.is_active_account = True
    db.session.commit()
    assert api.put(path, json={"answer": "C"}).status_code == 200
    saved = api.put(path, json={"answer": "B"}, headers={"Authorization": "Bearer not-a-token"})
    assert saved.status_code == 401
    assert _stored(attempt_id, qid).revision == 2


def test_a_password_someone_else_set_opens_no_save(api, make, bank, pinned):
    member, attempt_id, qid = _started(api, make, bank)
    member.must_change_password = True
    db.session.commit()
    response = api.put(f"/attempts/{attempt_id}/answers/{qid}", json={"answer": "A"})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "password_change_required"
    assert _stored(attempt_id, qid) is None


def test_the_token_use_is_noted_once_a_minute(api, make, bank, pinned):
    member, attempt_id, qid = _started(api, make, bank)
    path = f"/attempts/{attempt_id}/answers/{qid}"
    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == member.id))
    token.last_used_at = None
    db.session.commit()
    assert api.put(path, json={"answer": "A"}).status_code == 200
    db.session.expire_all()
    assert token.last_used_at == clock.now()
    clock.advance(seconds=30)
    assert api.put(path, json={"answer": "B"}).status_code == 200
    db.session.expire_all()
    assert token.last_used_at == clock.now() - dt.timedelta(seconds=30)
    clock.advance(seconds=31)
    assert api.put(path, json={"answer": "C"}).status_code == 200
    db.session.expire_all()
    assert token.last_used_at == clock.now()
