"""Results that teach: right and wrong counts at once, 再考一次 while attempts remain (the one
attempts-left rule), each attempt reviewed by its exam's review setting."""

import datetime as dt

from pbschool import clock
from pbschool.exams import services
from pbschool.extensions import db
from tests.exams.conftest import T0, correct_answers, make_exam


def _sit(client, member, exam, right=0):
    started = client.post(f"/exams/{exam.id}/start", data={"agreed": "y"})  # 考试须知 read
    assert started.status_code == 302, started.headers
    attempt_id = int(started.headers["Location"].rsplit("/", 1)[1])
    attempt = db.session.get(services.Attempt, attempt_id)
    paper = services.paper(attempt)
    answers = correct_answers(paper, attempt_id)
    for item in paper[:right]:
        services.save_answer(attempt, item["id"], answers[item["id"]])
    services.submit_attempt(attempt)  # (the page's plain form would send the multiple choice's boxes)
    db.session.commit()
    return attempt_id


def _counts(page):
    import re

    right = re.search(r'id="count-right">(\d+)<', page).group(1)
    wrong = re.search(r'id="count-wrong">(\d+)<', page).group(1)
    return int(right), int(wrong)


def test_counts_at_once_and_try_again_while_attempts_remain(client, auth, make, bank, pinned):
    exam = make_exam(bank, max_attempts=2, review="score")
    member = make.user()
    auth.login(member.username)
    first = _sit(client, member, exam, right=2)
    page = client.get(f"/attempts/{first}/result").get_data(as_text=True)
    assert _counts(page) == (2, 4)  # counts even when only the score is reviewed
    assert 'id="try-again"' in page and "再考一次" in page
    assert "预防为主" not in page  # score-only review: no key
    second = _sit(client, member, exam, right=6)
    page = client.get(f"/attempts/{second}/result").get_data(as_text=True)
    assert _counts(page) == (6, 0) and "再考一次" not in page
    # the first attempt's page, too, no longer offers another
    assert "再考一次" not in client.get(f"/attempts/{first}/result").get_data(as_text=True)


def test_try_again_follows_attempts_left(client, auth, make, bank, pinned, monkeypatch):
    exam = make_exam(bank, max_attempts=1)
    member = make.user()
    auth.login(member.username)
    attempt_id = _sit(client, member, exam)
    assert "再考一次" not in client.get(f"/attempts/{attempt_id}/result").get_data(as_text=True)
    # a per-member override of attempts is read through services.attempts_left
    monkeypatch.setattr(services, "attempts_left", lambda exam, user: 1)
    assert "再考一次" in client.get(f"/attempts/{attempt_id}/result").get_data(as_text=True)


def test_no_try_again_once_the_exam_closed(client, auth, make, bank, pinned):
    exam = make_exam(bank, max_attempts=3, closes_at=T0 + dt.timedelta(hours=1))
    member = make.user()
    auth.login(member.username)
    attempt_id = _sit(client, member, exam)
    clock.advance(seconds=7200)
    page = client.get(f"/attempts/{attempt_id}/result").get_data(as_text=True)
    assert "再考一次" not in page and _counts(page) == (0, 6)


def test_each_attempt_is_reviewed_by_its_exams_setting(client, auth, make, bank, pinned):
    with_key = make_exam(bank, review="answers")
    explained = make_exam(bank, review="explanations", title="第二场")
    member = make.user()
    auth.login(member.username)
    a = _sit(client, member, with_key)
    b = _sit(client, member, explained)
    for q in bank.questions:
        q.explanation = "解析文字" + str(q.id)
    db.session.commit()
    page_a = client.get(f"/attempts/{a}/result").get_data(as_text=True)
    page_b = client.get(f"/attempts/{b}/result").get_data(as_text=True)
    assert "正确答案" in page_a and "正确答案" in page_b
    assert 'class="explanation"' not in page_a


def test_another_members_result_is_404(client, auth, make, bank, pinned):
    exam = make_exam(bank)
    owner = make.user("owner")
    auth.login(owner.username)
    attempt_id = _sit(client, owner, exam)
    auth.logout()
    for role in ("member", "secretary", "lecturer", "admin"):
        auth.login(make.user(role=role).username)
        assert client.get(f"/attempts/{attempt_id}/result").status_code == 404
        auth.logout()
