import datetime as dt
import json

from sqlalchemy import select

from pbschool import clock
from pbschool.exams.models import Answer, Attempt, AttemptQuestion
from pbschool.extensions import db
from tests.exams.conftest import T0, correct_answers, make_bank, make_exam


def start(api, exam):
    response = api.post(f"/exams/{exam.id}/attempts")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_member_lists_starts_answers_and_submits(api, make, bank, pinned):
    exam = make_exam(bank, closes_at=T0 + dt.timedelta(days=1))
    member = make.user("liuzq")
    api.token(member)
    listed = api.get("/exams").get_json()
    assert listed == [{"id": exam.id, "title": exam.title, "time_limit_seconds": 600,
                       "opens_at": None, "closes_at": "2026-06-02T01:00:00Z", "attempts_left": 1}]
    body = start(api, exam)
    assert body["deadline"] == "2026-06-01T01:10:00Z"
    assert body["server_now"] == "2026-06-01T01:00:00Z"
    assert len(body["questions"]) == 6
    assert all(q["saved"] is None for q in body["questions"])
    answers = correct_answers(body["questions"], body["attempt_id"])
    for qid, value in answers.items():
        saved = api.put(f"/attempts/{body['attempt_id']}/answers/{qid}", json={"answer": value})
        assert saved.status_code == 200, saved.get_json()
    result = api.post(f"/attempts/{body['attempt_id']}/submit").get_json()
    assert result == {"score": 12.0, "max_score": 12.0, "passed": True, "points_awarded": 5.0,
                      "state": "submitted"}
    again = api.post(f"/attempts/{body['attempt_id']}/submit").get_json()
    assert again == result
    assert api.get("/exams").get_json()[0]["attempts_left"] == 0


def test_resume_returns_the_same_attempt_with_saved_answers(api, make, bank, pinned):
    exam = make_exam(bank)
    api.token(make.user())
    first = start(api, exam)
    q = first["questions"][0]
    value = "A" if q["type"] in ("single",) else None
    value = {"single": "A", "multiple": ["A"], "truefalse": True, "blank": ["x"] * q.get("blanks", 1)}[q["type"]]
    api.put(f"/attempts/{first['attempt_id']}/answers/{q['id']}", json={"answer": value})
    clock.advance(seconds=60)
    again = start(api, exam)
    assert again["attempt_id"] == first["attempt_id"]
    assert again["deadline"] == first["deadline"]
    assert [x["id"] for x in again["questions"]] == [x["id"] for x in first["questions"]]
    assert again["questions"][0]["saved"] == value


def test_nothing_before_submit_reveals_the_answers(api, make, pinned):
    bank = make_bank(short=True)
    for q in bank.questions:
        q.explanation = f"解析{q.id}：参考答案见党章"
    db.session.commit()
    exam = make_exam(bank, shuffle=True)
    api.token(make.user())
    body = start(api, exam)
    text = json.dumps(body, ensure_ascii=False)
    text += json.dumps(api.get(f"/attempts/{body['attempt_id']}").get_json(), ensure_ascii=False)
    text += json.dumps(api.get("/exams").get_json(), ensure_ascii=False)
    for secret in ("预防为主", "1921", "学党章党规", "解析", "answer\"", "explanation", "correct"):
        assert secret not in text, secret


def test_save_after_deadline_is_time_up_and_the_attempt_is_graded(api, make, bank, pinned):
    exam = make_exam(bank, time_limit=60)
    api.token(make.user())
    body = start(api, exam)
    qid = body["questions"][0]["id"]
    clock.advance(seconds=64)  # within the 5 s grace
    assert api.put(f"/attempts/{body['attempt_id']}/answers/{qid}", json={"answer": None}).status_code == 200
    clock.advance(seconds=2)
    late = api.put(f"/attempts/{body['attempt_id']}/answers/{qid}", json={"answer": "not even a shape"})
    assert late.status_code == 409
    assert late.get_json()["error"]["code"] == "time_up"
    attempt = db.session.get(Attempt, body["attempt_id"])
    assert attempt.state == "submitted" and attempt.is_auto_submitted
    assert attempt.submitted_at == attempt.deadline_at


def test_wrong_shapes_are_400(api, make, bank, pinned):
    exam = make_exam(bank)
    api.token(make.user())
    body = start(api, exam)
    by_type = {q["type"]: q for q in body["questions"]}
    attempt = body["attempt_id"]
    bad = [("single", "Z"), ("single", ["A"]), ("multiple", "A"), ("multiple", ["A", "A"]), ("truefalse", "true"),
           ("truefalse", 1), ("blank", "预防为主"), ("blank", ["a", "b", "c"])]
    for qtype, value in bad:
        response = api.put(f"/attempts/{attempt}/answers/{by_type[qtype]['id']}", json={"answer": value})
        assert response.status_code == 400, (qtype, value)
        assert response.get_json()["error"]["code"] == "invalid_answer"
    assert api.put(f"/attempts/{attempt}/answers/999999", json={"answer": "A"}).status_code == 404
    assert api.put(f"/attempts/{attempt}/answers/{by_type['single']['id']}", data="x").status_code == 400
    assert db.session.scalar(select(Answer.id)) is None


def test_other_member_cannot_touch_my_attempt(api, make, bank, pinned):
    exam = make_exam(bank)
    api.token(make.user())
    body = start(api, exam)
    api.token(make.user())
    qid = body["questions"][0]["id"]
    assert api.get(f"/attempts/{body['attempt_id']}").status_code == 404
    assert api.put(f"/attempts/{body['attempt_id']}/answers/{qid}", json={"answer": "A"}).status_code == 404
    assert api.post(f"/attempts/{body['attempt_id']}/submit").status_code == 404


def test_attempt_limit_and_closed_exam(api, make, bank, pinned):
    exam = make_exam(bank, max_attempts=2, closes_at=T0 + dt.timedelta(hours=1))
    api.token(make.user())
    for _ in range(2):
        body = start(api, exam)
        api.post(f"/attempts/{body['attempt_id']}/submit")
    refused = api.post(f"/exams/{exam.id}/attempts")
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "no_attempts_left"
    api.token(make.user())
    clock.advance(hours=2)
    closed = api.post(f"/exams/{exam.id}/attempts")
    assert closed.status_code == 409 and closed.get_json()["error"]["code"] == "exam_closed"
    assert api.get("/exams").get_json() == []


def test_deadline_is_capped_by_close_and_extended_by_extra_time(api, make, bank, pinned):
    from pbschool.exams import overrides

    exam = make_exam(bank, time_limit=1800, closes_at=T0 + dt.timedelta(minutes=20))
    api.token(make.user())
    assert start(api, exam)["deadline"] == "2026-06-01T01:20:00Z"
    exam2 = make_exam(bank, time_limit=600)
    slow = make.user()
    overrides.set_member_override(exam2, slow, {"extra_minutes": 5}, make.user(role="admin"))
    db.session.commit()
    api.token(slow)
    assert start(api, exam2)["deadline"] == "2026-06-01T01:15:00Z"


def test_audience_by_branch_and_job_post(api, make, bank, pinned):
    mine = make.branch()
    exam = make_exam(bank, audience="branches", branches=[mine])
    safety = make_exam(bank, audience="job_posts", job_posts=["绞车司机"])
    inside = make.user(branch=mine)
    outside = make.user(job_post="绞车司机")
    api.token(inside)
    assert [e["id"] for e in api.get("/exams").get_json()] == [exam.id]
    api.token(outside)
    assert [e["id"] for e in api.get("/exams").get_json()] == [safety.id]
    assert api.post(f"/exams/{exam.id}/attempts").status_code == 404


def test_review_setting_controls_what_the_result_shows(api, make, bank, pinned):
    exam = make_exam(bank, review="score")
    api.token(make.user())
    body = start(api, exam)
    api.post(f"/attempts/{body['attempt_id']}/submit")
    seen = api.get(f"/attempts/{body['attempt_id']}").get_json()
    assert seen["result"]["score"] == 0.0 and seen["review"] is None
    exam2 = make_exam(bank, review="explanations")
    body = start(api, exam2)
    api.post(f"/attempts/{body['attempt_id']}/submit")
    seen = api.get(f"/attempts/{body['attempt_id']}").get_json()
    assert len(seen["review"]) == 6
    assert all("correct_answer" in item and "explanation_html" in item for item in seen["review"])
    exam3 = make_exam(bank, review="answers", review_when="close", closes_at=T0 + dt.timedelta(hours=1))
    body = start(api, exam3)
    api.post(f"/attempts/{body['attempt_id']}/submit")
    assert api.get(f"/attempts/{body['attempt_id']}").get_json()["review"] is None
    clock.advance(hours=2)
    review = api.get(f"/attempts/{body['attempt_id']}").get_json()["review"]
    assert review and "explanation_html" not in review[0]


def test_get_attempt_after_deadline_grades_it(api, make, bank, pinned):
    exam = make_exam(bank, time_limit=60)
    api.token(make.user())
    body = start(api, exam)
    clock.advance(minutes=5)
    seen = api.get(f"/attempts/{body['attempt_id']}").get_json()
    assert seen["state"] == "submitted"
    assert seen["result"]["passed"] is False


def test_admin_creates_an_exam_and_others_cannot(api, make, bank):
    body = {"title": "安全知识", "time_limit_seconds": 900, "max_attempts": 2, "pass_score": 80,
            "points_on_pass": 3, "sections": [{"bank": bank.name, "category": "党章", "count": 2, "points_each": 5}]}
    api.token(make.user(role="lecturer"))
    assert api.post("/exams", json=body).status_code == 403
    api.token(make.user(role="admin"))
    created = api.post("/exams", json=body)
    assert created.status_code == 200 and created.get_json()["id"]
    too_many = api.post("/exams", json={**body, "sections": [{"bank": bank.name, "count": 50, "points_each": 1}]})
    assert too_many.status_code == 400
    assert too_many.get_json()["error"]["code"] == "not_enough_questions"
    assert api.post("/exams", json={**body, "sections": [{"bank": "无此题库", "count": 1, "points_each": 1}]}) \
        .status_code == 404
    assert api.post("/exams", json={**body, "time_limit_seconds": "long"}).status_code == 400
    assert api.post("/exams", json={**body, "opens_at": "tomorrow"}).status_code == 400
    assert api.post("/exams", json={**body, "opens_at": "0001-01-01T00:00:00+05:00"}).status_code == 400
    assert api.post("/exams", json={**body, "pass_score": 120}).status_code == 400


def test_results_are_scoped_to_the_secretarys_branch(api, make, bank, pinned):
    exam = make_exam(bank)
    one, two = make.branch(), make.branch()
    for branch in (one, two):
        api.token(make.user(branch=branch))
        body = start(api, exam)
        api.post(f"/attempts/{body['attempt_id']}/submit")
    api.token(make.user(role="secretary", branch=one))
    rows = api.get(f"/exams/{exam.id}/results").get_json()
    assert [r["branch"] for r in rows] == [one.code]
    api.token(make.user(role="admin"))
    assert len(api.get(f"/exams/{exam.id}/results").get_json()) == 2
    api.token(make.user())
    assert api.get(f"/exams/{exam.id}/results").status_code == 403


def test_shuffled_letters_map_back_to_the_real_options(api, make, pinned):
    bank = make_bank()
    exam = make_exam(bank, shuffle=True)
    api.token(make.user())
    body = start(api, exam)
    single = next(q for q in body["questions"] if q["type"] == "single")
    slot = db.session.scalar(select(AttemptQuestion).where(AttemptQuestion.question_id == single["id"]))
    shown = slot.question.kind.display(slot.question.answer, slot.option_order)
    real_text = slot.question.options["ABCD".index(slot.question.answer)]
    assert real_text in next(o["text_html"] for o in single["options"] if o["key"] == shown)
    api.put(f"/attempts/{body['attempt_id']}/answers/{single['id']}", json={"answer": shown})
    assert db.session.scalar(select(Answer.value).where(Answer.question_id == single["id"])) == slot.question.answer
    resumed = start(api, exam)
    assert next(q for q in resumed["questions"] if q["id"] == single["id"])["saved"] == shown


def test_exam_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/exams", "/exams/{exam_id}/attempts", "/attempts/{attempt_id}/answers/{question_id}",
                 "/attempts/{attempt_id}/submit", "/attempts/{attempt_id}", "/exams/{exam_id}/results"):
        assert path in paths


def test_an_overdue_attempt_is_graded_even_when_a_new_start_is_refused(api, make, bank, pinned):
    exam = make_exam(bank, time_limit=60, max_attempts=1)
    api.token(make.user())
    body = start(api, exam)
    clock.advance(minutes=5)
    refused = api.post(f"/exams/{exam.id}/attempts")
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "no_attempts_left"
    attempt = db.session.get(Attempt, body["attempt_id"])
    assert attempt.state == "submitted" and attempt.is_auto_submitted


def test_question_html_reaches_the_member_sanitised(api, make, pinned):
    from pbschool.exams import services

    bank = make_bank(questions=[])
    services.save_question(bank, {"type": "single", "stem": "哪项正确？<script>alert(1)</script>",
                                  "options": ["<img src=x onerror=alert(1)>甲", "[乙](javascript:alert(1))"],
                                  "answer": "A"})
    db.session.commit()
    exam = make_exam(bank)
    api.token(make.user())
    text = json.dumps(start(api, exam), ensure_ascii=False)
    assert "<script" not in text and "onerror" not in text and "javascript:" not in text


def test_answers_stay_hidden_while_another_attempt_is_possible(api, make, bank, pinned):
    exam = make_exam(bank, max_attempts=2, review="explanations", closes_at=T0 + dt.timedelta(days=1))
    api.token(make.user())
    first = start(api, exam)
    api.post(f"/attempts/{first['attempt_id']}/submit")
    assert api.get(f"/attempts/{first['attempt_id']}").get_json()["review"] is None
    second = start(api, exam)
    api.post(f"/attempts/{second['attempt_id']}/submit")
    assert api.get(f"/attempts/{first['attempt_id']}").get_json()["review"]  # no attempt left: shown
