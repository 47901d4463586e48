"""The same event from parallel requests still tells once (the unique key decides, not a check)."""

import threading

import pytest
from sqlalchemy import func, select

from pbschool.accounts.models import User
from pbschool.extensions import db
from pbschool.notices import derived, services
from pbschool.notices.models import Notification

pytestmark = pytest.mark.postgres_only


def _at_once(app, work, n=8):
    barrier = threading.Barrier(n)
    errors = []

    def run():
        try:
            with app.app_context():
                barrier.wait(10)
                work()
                db.session.commit()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return errors


def test_one_event_from_eight_requests_is_one_notification(app, make, backend):
    if backend == "sqlite":
        pytest.skip("SQLite serialises writes and hides races")
    member = make.user()
    rows = [(member.id, member.branch_id)]
    errors = _at_once(app, lambda: services.notify(rows, "month_published", "month:2026-05", subject="2026-05"))
    assert not errors, errors
    assert db.session.scalar(select(func.count(Notification.id))) == 1


def test_reading_in_eight_tabs_at_once_makes_each_derived_notification_once(app, make, backend):
    if backend == "sqlite":
        pytest.skip("SQLite serialises writes and hides races")
    from pbschool.courses import services as courses
    from tests.courses.conftest import CourseMaker

    member = make.user()
    for title in ("安全规程", "党章"):
        course = CourseMaker().course(title=title)
        courses.set_requirements(course, for_all=True)
    db.session.commit()
    user_id = member.id
    errors = _at_once(app, lambda: derived.sync(db.session.get(User, user_id)))
    assert not errors, errors
    assert db.session.scalar(select(func.count(Notification.id))) == 2
