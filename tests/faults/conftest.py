"""Fault tests: the real server (gunicorn on PostgreSQL) under exam-day load while a worker dies or
the database restarts. Shared here: finding the busiest worker, a PostgreSQL of the tests' own, the
seed, a retrying JSON client that records every reply, and the consistency check of what was written.
gunicorn itself is started by tests/perf/common.gunicorn, as for the benchmarks and scale-out tests."""

import http.client
import json
import os
import random
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from tests.perf.common import add_members, answer_for, free_port

PASSWORD = "fault-password-1"
QUESTION_COUNT = 12


def busiest_worker(server, exclude=()):
    """The worker holding the most client connections (one worker may have accepted them all)."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == server.port and fields[3] == "01":
                established.add(fields[9])
    counts = {}
    for pid in server.workers():
        if pid in exclude:
            continue
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
        counts[pid] = len(inodes & established)
    return max(counts, key=counts.get), counts


#: The master's note of a worker a test killed on purpose.
KILLED = "was sent SIGKILL"


# -- a PostgreSQL server of the test's own, to stop and start -------------------------------------

def server_owner():
    """The OS user to run PostgreSQL as: None for the test's own user; ``postgres`` under root.
    Raises LookupError with the reason when root has no way to run it."""
    if os.geteuid() != 0:
        return None
    import pwd
    import shutil

    if not shutil.which("runuser"):
        raise LookupError("running as root without runuser to start PostgreSQL as another user")
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise LookupError("running as root and there is no postgres OS user to run PostgreSQL") from None


def postgres_bindir():
    """The directory of initdb and pg_ctl, or None."""
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


class Cluster:
    """initdb into a tmp dir, trust auth, 127.0.0.1 only, on a free port; as the ``postgres`` OS
    user when the test runs as root (PostgreSQL refuses to run as root)."""

    def __init__(self, bindir, owner=None):
        self.bindir = bindir
        # /tmp itself: the postgres user must be able to reach the directory.
        self.dir = Path(tempfile.mkdtemp(prefix="pbschool-pg-", dir="/tmp" if owner else None))
        self.data, self.logfile = self.dir / "data", self.dir / "server.log"
        self.port = free_port()
        self.as_user = []
        if owner is not None:
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", owner.pw_name, "--"]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *args, timeout=60):
        out = subprocess.run([*self.as_user, *map(str, args)], capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {out.stdout[-1000:]} {out.stderr[-1000:]}")

    def init(self):
        self.run(self.bindir / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                 "--locale=C", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.dir}'\nfsync = off\nmax_connections = 60\n")

    def start(self):
        self.run(self.bindir / "pg_ctl", "-D", self.data, "-l", self.logfile, "-w", "-t", "60", "start", timeout=90)

    def stop(self, mode="fast"):
        self.run(self.bindir / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop", timeout=90)

    def remove(self):
        import shutil

        if (self.data / "postmaster.pid").exists():
            try:
                self.stop("immediate")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


# -- data ------------------------------------------------------------------------------------------

def _bank_csv():
    """A small bank the server grades by itself (no short answers, which wait for a marker)."""
    rows = ["题型,题干,选项A,选项B,选项C,选项D,答案,分值"]
    for i in range(5):
        rows.append(f"single,故障演练单选题{i},甲,乙,丙,丁,{'ABCD'[i % 4]},1")
    for i in range(3):
        rows.append(f"multiple,故障演练多选题{i},甲,乙,丙,丁,AC,1")
    for i in range(2):
        rows.append(f"truefalse,故障演练判断题{i},,,,,{'对' if i else '错'},1")
    for i in range(2):
        rows.append(f"blank,故障演练填空题{i}：____,,,,,答案{i},1")
    return ("\n".join(rows) + "\n").encode()


def make_app(database_url, instance_dir):
    """An in-process app on the server's database, to seed it and to read what the server wrote."""
    from pbschool import create_app
    from tests.conftest import make_test_config

    return create_app(make_test_config(Path(instance_dir), database_url))


def seed(app, members):
    """Schema by migrations, ``members`` members with API tokens, an admin, a bank and one exam that
    everyone passes (so grading writes a ledger entry). Returns (member tokens, admin token, exam id,
    admin id)."""
    from flask_migrate import upgrade

    from pbschool.accounts import services as accounts
    from pbschool.accounts.models import ApiToken, Branch
    from pbschool.exams import importer
    from pbschool.exams import services as exams
    from pbschool.extensions import db

    with app.app_context():
        upgrade()
        db.create_all()
        branches = [Branch(code=f"F{i}", name=f"第{i}党支部") for i in range(1, 5)]
        db.session.add_all(branches)
        db.session.flush()
        members, tokens = add_members(members, branches, PASSWORD, username="f{:03d}", token="fault-token-{}")
        admin, _ = accounts.create_user("faultadmin", "管理员", "admin", None, "", PASSWORD)
        tokens[admin.id] = f"fault-token-{admin.id}"
        db.session.add(ApiToken(user_id=admin.id, token_hash=ApiToken.hash(tokens[admin.id])))
        importer.import_bank_file(_bank_csv(), "faults.csv", "故障演练")
        exam = exams.create_exam({"title": "故障演练考试", "time_limit_seconds": 3600, "max_attempts": 1,
                                  "pass_score": 0, "points_on_pass": 2, "shuffle": True,
                                  "sections": [{"bank": "故障演练", "count": QUESTION_COUNT, "points_each": 1}]},
                                 actor=admin)
        db.session.commit()
        result = [tokens[uid] for uid, _branch in members], tokens[admin.id], exam.id, admin.id
        db.session.remove()
        db.engine.dispose()
    return result


# -- the client ----------------------------------------------------------------------------------

class Recorder:
    """Every reply the clients got, and what the server acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.replies = []  # (sent, received, method, path, status, content type, body)
        self.sent = {}  # (attempt, question) -> every answer sent
        self.acked = {}  # (attempt, question) -> the last answer acknowledged with a 200
        self.results = {}  # attempt -> every submit result acknowledged
        self.awards_acked = set()
        self.finished = set()
        self.failures = []

    def reply(self, *row):
        with self.lock:
            self.replies.append(row)

    def statuses(self):
        with self.lock:
            counts = {}
            for row in self.replies:
                counts[row[4]] = counts.get(row[4], 0) + 1
            return counts


class Client:
    """One member's (or the admin's) phone: a keep-alive connection, JSON in and out, and retries
    with backoff on a dropped connection or a 5xx until ``deadline``."""

    def __init__(self, server, token, rec, deadline, max_backoff=1.0):
        self.port, self.token, self.rec, self.deadline = server.port, token, rec, deadline
        self.max_backoff = max_backoff
        self.conn = None

    def once(self, method, path, body=None, headers=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        sent = time.monotonic()
        all_headers = {**({"Authorization": f"Bearer {self.token}"} if self.token else {}), **(headers or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=payload, headers=all_headers)
            response = self.conn.getresponse()
            data = response.read()
            status, ctype = response.status, response.getheader("Content-Type", "")
        except (OSError, http.client.HTTPException):
            self.close()
            status, ctype, data = 0, "", b""
        self.rec.reply(sent, time.monotonic(), method, path, status, ctype, data if status != 200 else b"")
        return status, data

    def call(self, method, path, body=None):
        """Retry until a reply that is neither a dropped connection nor a 5xx; returns (status, JSON)."""
        delay = 0.05
        while True:
            status, data = self.once(method, path, body)
            if 0 < status < 500:
                return status, json.loads(data) if data else None
            if time.monotonic() > self.deadline:
                raise AssertionError(f"{method} {path}: still failing ({status}) at the deadline")
            time.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311
            delay = min(self.max_backoff, delay * 2)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def sit_exam(server, token, exam_id, rec, deadline, pause=0.0, max_backoff=1.0):
    """A member starts (or resumes) the exam, saves every answer, changes the first one, and submits,
    retrying each step as a phone would. Failures are recorded, not raised (threads)."""
    client = Client(server, token, rec, deadline, max_backoff)
    try:
        status, body = client.call("POST", f"/api/v1/exams/{exam_id}/attempts")
        assert status == 200, (status, body)
        attempt, questions = body["attempt_id"], body["questions"]
        plan = [(q, answer_for(q, n)) for n, q in enumerate(questions)]
        plan.append((questions[0], answer_for(questions[0], 1)))
        for question, value in plan:
            key = (attempt, question["id"])
            with rec.lock:
                rec.sent.setdefault(key, []).append(value)
            status, body = client.call("PUT", f"/api/v1/attempts/{attempt}/answers/{question['id']}",
                                       {"answer": value})
            assert status == 200, (status, body)
            with rec.lock:
                rec.acked[key] = value
            if pause:
                time.sleep(pause * random.uniform(0.5, 1.5))  # noqa: S311
        status, body = client.call("POST", f"/api/v1/attempts/{attempt}/submit")
        assert status == 200, (status, body)
        with rec.lock:
            rec.results.setdefault(attempt, []).append(body)
            rec.finished.add(token)
    except Exception as exc:  # noqa: BLE001 - the test thread reports it
        with rec.lock:
            rec.failures.append(f"{token}: {exc!r}")
    finally:
        client.close()


# -- what the server wrote -----------------------------------------------------------------------

def check_consistency(app, rec, exam_id, *, award_keys=()):
    """The invariants of the model after a fault, read from the database. Returns the attempts."""
    from decimal import Decimal

    from sqlalchemy import func, select

    from pbschool.exams.models import Answer, Attempt, AttemptQuestion
    from pbschool.extensions import db
    from pbschool.points.models import LedgerEntry
    from pbschool.points.services import verify_chain

    with app.app_context():
        attempts = {a.id: a for a in db.session.scalars(select(Attempt).where(Attempt.exam_id == exam_id))}
        slots = {}
        for slot in db.session.scalars(select(AttemptQuestion)):
            slots.setdefault(slot.attempt_id, []).append(slot)
        answers = {(a.attempt_id, a.question_id): a for a in db.session.scalars(select(Answer))}

        # Every acknowledged save is there, with the value acknowledged last.
        for (attempt_id, question_id), value in rec.acked.items():
            slot = next(s for s in slots[attempt_id] if s.question_id == question_id)
            stored = answers.get((attempt_id, question_id))
            assert stored is not None, f"acknowledged save lost: attempt {attempt_id} question {question_id}"
            expected = slot.question.kind.canonical(value, slot.option_order)
            assert stored.value == expected, (attempt_id, question_id, value, stored.value)
        # Nothing stored that the member never sent.
        for (attempt_id, question_id), stored in answers.items():
            slot = next(s for s in slots[attempt_id] if s.question_id == question_id)
            sent = [slot.question.kind.canonical(v, slot.option_order) for v in rec.sent[(attempt_id, question_id)]]
            assert stored.value in sent, (attempt_id, question_id, stored.value)

        entries = db.session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)).all()
        by_source = {}
        for entry in entries:
            by_source.setdefault(entry.source_key, []).append(entry)
        for attempt in attempts.values():
            mine = slots.get(attempt.id, [])
            # A start is all or nothing: the attempt has its whole paper.
            assert len(mine) == QUESTION_COUNT, f"attempt {attempt.id} has {len(mine)} questions"
            awarded = by_source.get(f"attempt:{attempt.id}", [])
            if attempt.state == "in_progress":
                assert attempt.submitted_at is None and attempt.score is None and not awarded
                assert all(s.score is None for s in mine)
                continue
            # Graded once and whole: a score made of the saved answers, and one ledger entry.
            assert attempt.state == "submitted", attempt.state
            assert None not in (attempt.submitted_at, attempt.score, attempt.max_score, attempt.passed)
            for s in mine:
                answer = answers.get((attempt.id, s.question_id))
                regraded, _ = s.question.kind.grade(s.question, answer.value if answer else None, s.points,
                                                    attempt.exam.partial_credit)
                assert s.score == regraded, (attempt.id, s.question_id, s.score, regraded)
            assert attempt.score == sum((s.score for s in mine), Decimal("0"))
            assert attempt.passed and attempt.points_awarded == Decimal("2")
            assert len(awarded) == 1 and awarded[0].points == attempt.points_awarded, (attempt.id, awarded)
            for result in rec.results.get(attempt.id, []):
                assert Decimal(str(result["score"])) == attempt.score, (attempt.id, result)
                assert result["state"] == "submitted"

        # Ledger entries match their sources one to one.
        for source, found in by_source.items():
            assert len(found) == 1, (source, found)
            if source.startswith("attempt:"):
                attempt = attempts.get(int(source.split(":")[1]))
                assert attempt is not None and attempt.state == "submitted", source
            else:
                assert source in award_keys, f"ledger entry without a source: {source}"
        assert db.session.scalar(select(func.count(LedgerEntry.id))) == len(entries)
        checked, problem = verify_chain()
        assert problem is None, problem
        assert checked == len(entries)
        db.session.remove()
        db.engine.dispose()
        return attempts
