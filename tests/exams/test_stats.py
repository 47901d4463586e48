from sqlalchemy import select

from pbschool.exams import services, stats
from pbschool.exams.models import Attempt
from pbschool.extensions import db
from tests.exams.conftest import make_bank, make_exam, right_value


def test_facility_discrimination_and_option_frequencies(app, make, pinned):
    bank = make_bank()
    exam = make_exam(bank, shuffle=False)
    # Strong members answer everything right; weak ones get only the true/false question right.
    for strong in (True, True, False, False):
        attempt = services.start_attempt(exam, make.user())
        for slot in attempt.questions:
            if strong or slot.question.type == "truefalse":
                services.save_answer(attempt, slot.question_id, right_value(slot))
            elif slot.question.type == "single":
                wrong = next(k for k in "ABCD" if k != slot.question.answer)
                services.save_answer(attempt, slot.question_id, slot.question.kind.display(wrong, slot.option_order))
        services.submit_attempt(attempt)
    db.session.commit()
    attempts = db.session.scalars(select(Attempt)).all()
    rows = {row["question"].type + str(row["question_id"]): row for row in stats.question_stats(attempts)}
    truefalse = next(r for k, r in rows.items() if k.startswith("truefalse"))
    assert truefalse["facility"] == 100.0 and truefalse["discrimination"] is None  # no spread, no index
    single = next(r for k, r in rows.items() if k.startswith("single"))
    assert single["facility"] == 50.0 and single["discrimination"] > 90
    assert sum(count for _key, count, _pct in single["options"]) == 4
    counted = services.counted_attempts(exam, attempts).values()
    by_branch = stats.pass_rate_by_branch(counted)
    assert by_branch[-1] == ("合计", 4, 2, 50.0)
    bands = dict(stats.distribution(counted))
    assert bands["90–100"] == 2 and sum(bands.values()) == 4
    assert "<svg" in stats.bar_svg(stats.distribution(counted))
