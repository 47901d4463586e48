"""gunicorn workers are killed (SIGKILL) in the middle of exam-day load: members' phones retry, every
save the server acknowledged is kept, every attempt is graded once, and gunicorn replaces the workers."""

import os
import signal
import tempfile
import threading
import time

import pytest

from tests.databases import scratch_postgres
from tests.faults.conftest import (
    KILLED,
    QUESTION_COUNT,
    Recorder,
    busiest_worker,
    check_consistency,
    make_app,
    seed,
    sit_exam,
)
from tests.perf.common import app_env, gunicorn

PG_URL = os.environ.get("PBSCHOOL_TEST_DATABASE_URL")
MEMBERS = 40
WORKERS = 3

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL: PBSCHOOL_TEST_DATABASE_URL is not set")


@pytest.fixture(scope="module")
def site():
    with scratch_postgres(PG_URL, "pbschool_faults") as url, tempfile.TemporaryDirectory() as instance:
        app = make_app(url, instance)
        tokens, _, exam_id, _ = seed(app, MEMBERS)
        with gunicorn(app_env(url, instance), workers=WORKERS, threads=4) as server:
            server.expected_errors = (KILLED,)
            yield server, app, tokens, exam_id


def test_killed_worker_loses_no_acknowledged_save_and_grades_each_attempt_once(site):
    server, app, tokens, exam_id = site
    rec = Recorder()
    deadline = time.monotonic() + 45
    members = [threading.Thread(target=sit_exam, args=(server, token, exam_id, rec, deadline),
                                kwargs={"pause": 0.02}, daemon=True) for token in tokens]
    for thread in members:
        thread.start()

    total = MEMBERS * QUESTION_COUNT
    moments = (lambda: len(rec.acked) >= 0.2 * total,  # early in the saves
               lambda: len(rec.acked) >= 0.55 * total,  # past their middle
               lambda: len(rec.results) >= MEMBERS // 4)  # while members submit
    killed = []
    for moment in moments:
        while not moment() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(rec.finished) < MEMBERS, "the load was over before the worker could be killed"
        victim, connections = busiest_worker(server, exclude=killed)
        print(f"killing worker {victim}; client connections per worker: {connections}")
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)
    for thread in members:
        thread.join(max(1.0, deadline + 10 - time.monotonic()))

    assert not rec.failures, rec.failures[:5]
    assert len(rec.finished) == MEMBERS, f"{MEMBERS - len(rec.finished)} members did not finish"
    statuses = rec.statuses()
    print(f"replies by status (0: connection dropped): {statuses}")
    # The phones felt the kills (dropped connections) and saw no server error.
    assert statuses.get(0, 0) > 0, statuses
    assert set(statuses) <= {0, 200}, statuses

    workers = server.wait_for_workers(WORKERS)
    assert not set(workers) & set(killed), (workers, killed)
    assert server.healthy()
    assert not server.log_errors(), server.log_errors()[:5]

    attempts = check_consistency(app, rec, exam_id)
    assert len(attempts) == MEMBERS
    assert all(a.state == "submitted" for a in attempts.values())
