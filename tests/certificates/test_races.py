"""Parallel issuing on PostgreSQL (SQLite would serialise it): one certificate whatever the race."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from pbschool.accounts.models import User
from pbschool.certificates import services as certs
from pbschool.certificates.models import Certificate, CertificateEvent
from pbschool.courses.models import Course, Lesson, LessonProgress
from pbschool.exams.models import Attempt
from pbschool.extensions import db
from tests.certificates.conftest import sit

pytestmark = pytest.mark.postgres_only
THREADS = 8


def _parallel(app, work):
    barrier = threading.Barrier(THREADS)
    errors = []

    def run():
        with app.app_context():
            try:
                barrier.wait()
                work()
                db.session.commit()
            except Exception as exc:  # noqa: BLE001  (reported below)
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_parallel_hours_issuing_gives_one_certificate(backend, app, make):
    if backend == "sqlite":
        pytest.skip("races need PostgreSQL")
    member = make.user()
    course = Course(title="课", summary="", is_published=True)
    lesson = Lesson(course=course, title="第一讲", minutes=30, state="published", position=1)
    db.session.add_all([course, lesson])
    db.session.flush()
    from pbschool import clock

    db.session.add(LessonProgress(user_id=member.id, lesson_id=lesson.id, credited_seconds=1800,
                                  hours_credited=Decimal("40"), completed_at=clock.now() - dt.timedelta(minutes=1)))
    db.session.commit()
    member_id = member.id
    _parallel(app, lambda: certs.issue_for_hours(db.session.get(User, member_id)))
    assert db.session.scalar(select(func.count(Certificate.id))) == 1
    assert db.session.scalar(select(func.count(CertificateEvent.id))) == 1


def test_parallel_syncs_of_a_pass_give_one_certificate(backend, app, org, cert_exam):
    if backend == "sqlite":
        pytest.skip("races need PostgreSQL")
    attempt = sit(cert_exam, org["member"])
    db.session.execute(db.delete(CertificateEvent))
    db.session.execute(db.delete(Certificate))
    db.session.commit()
    attempt_id = attempt.id
    _parallel(app, lambda: certs.sync_attempt(db.session.get(Attempt, attempt_id)))
    assert db.session.scalar(select(func.count(Certificate.id))) == 1
    assert db.session.scalar(select(func.count(CertificateEvent.id))) == 1
