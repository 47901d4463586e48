import threading

import pytest
from sqlalchemy import select

from pbschool.accounts.models import User
from pbschool.courses import services
from pbschool.courses.models import Lesson, LessonProgress
from pbschool.errors import DomainError
from pbschool.extensions import db


def _in_parallel(app, n, work):
    barrier = threading.Barrier(n)
    errors = []

    def run():
        with app.app_context():
            try:
                barrier.wait(5)
                work()
                db.session.commit()
            except DomainError:
                db.session.rollback()
            except Exception as exc:  # noqa: BLE001 - reported to the test
                errors.append(exc)
                db.session.rollback()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []


@pytest.mark.postgres_only
def test_parallel_completes_credit_hours_and_points_once(app, backend, make, cm):
    if backend == "sqlite":
        pytest.skip("SQLite serialises writes and would hide the race")
    from pbschool.points.models import LedgerEntry

    app.config["COMPLETION_MIN_FRACTION"] = 0
    member = make.user()
    lesson = cm.lesson(minutes=30)
    user_id, lesson_id = member.id, lesson.id

    def complete():
        services.complete_lesson(db.session.get(User, user_id), db.session.get(Lesson, lesson_id))

    _in_parallel(app, 8, complete)
    db.session.expire_all()
    rows = db.session.scalars(select(LessonProgress).where(LessonProgress.user_id == user_id)).all()
    assert len(rows) == 1 and rows[0].completed_at is not None and rows[0].hours_credited == 1
    entries = db.session.scalars(select(LedgerEntry).where(LedgerEntry.user_id == user_id,
                                                           LedgerEntry.kind == "lesson_completed")).all()
    assert len(entries) == 1


@pytest.mark.postgres_only
def test_parallel_heartbeats_never_credit_more_than_wall_clock(app, backend, make, cm, t0):
    if backend == "sqlite":
        pytest.skip("SQLite serialises writes and would hide the race")
    from pbschool import clock

    member = make.user()
    lesson = cm.lesson(minutes=30)
    services.open_lesson(member, lesson)
    db.session.commit()
    clock.advance(seconds=30)
    user_id, lesson_id = member.id, lesson.id

    def beat():
        services.heartbeat(db.session.get(User, user_id), db.session.get(Lesson, lesson_id), 30)

    _in_parallel(app, 8, beat)
    db.session.expire_all()
    progress = db.session.scalar(select(LessonProgress).where(LessonProgress.user_id == user_id))
    assert progress.credited_seconds == 30


@pytest.mark.postgres_only
def test_parallel_first_opens_make_one_progress_row(app, backend, make, cm):
    if backend == "sqlite":
        pytest.skip("SQLite serialises writes and would hide the race")
    member = make.user()
    lesson = cm.lesson()
    user_id, lesson_id = member.id, lesson.id

    def open_it():
        services.open_lesson(db.session.get(User, user_id), db.session.get(Lesson, lesson_id))

    _in_parallel(app, 8, open_it)
    db.session.expire_all()
    assert len(db.session.scalars(select(LessonProgress).where(LessonProgress.user_id == user_id)).all()) == 1
