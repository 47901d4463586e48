"""Exam-day benchmark (issues 4 and 13): N signed-in members (API tokens) start the same exam
within a ramp and each saves an answer every 30 s; reports start/save latency percentiles, errors and
answers lost (must be 0: every acknowledged answer is looked up in the database afterwards), beside
the machine's ceilings: wrk against /healthz, and the answer save against a bare Flask upsert
(tests/perf/save_ceiling.py) in the same run.

    make bench                                   # 5,000 members, 60 s ramp, 5 minutes of saves
    BENCH_MEMBERS=500 BENCH_SECONDS=60 make bench   # a quick look

Runs against gunicorn + a throwaway PostgreSQL database; stops by itself.
"""

import http.client
import json
import multiprocessing
import os
import random
import tempfile
import threading
import time
from pathlib import Path

from tests.perf import save_ceiling
from tests.perf.common import (
    ROOT,
    add_members,
    answer_for,
    app_env,
    ceiling_row,
    gunicorn,
    pctl,
    print_results,
    result_row,
    scratch_database,
    wrk,
)

MEMBERS = int(os.environ.get("BENCH_MEMBERS", "5000"))
RAMP = float(os.environ.get("BENCH_RAMP_SECONDS", "60"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "300"))
INTERVAL = float(os.environ.get("BENCH_SAVE_INTERVAL", "30"))
#: Client processes (threads in each: one per member), so the driver's GIL is not what is measured.
DRIVERS = int(os.environ.get("BENCH_DRIVER_PROCESSES", "2"))
#: gunicorn.conf.py's keepalive is 5 s: a phone saving every 30 s opens a new connection each time.
IDLE_RECONNECT = 4.0
QUESTIONS = 30
PASSWORD_HASH_SOURCE = "bench-password-1"


def seed(database_url, instance_dir, count=None):
    """Schema by migrations, then members, tokens, the starter bank (in-process). Returns the
    members' tokens, the admin's token and the app (for checking the answers afterwards)."""
    os.environ.update(app_env(database_url, instance_dir))
    from flask_migrate import upgrade

    from pbschool import create_app
    from pbschool.accounts import services as accounts
    from pbschool.accounts.models import ApiToken, Branch
    from pbschool.exams import importer
    from pbschool.extensions import db

    app = create_app()
    with app.app_context():
        upgrade()
        db.create_all()  # tables a feature has not migrated yet (development only)
        branches = [Branch(code=f"B{i:02d}", name=f"第{i}党支部") for i in range(1, 51)]
        db.session.add_all(branches)
        db.session.flush()
        members, tokens = add_members(count or max(MEMBERS, save_ceiling.SAVERS), branches, PASSWORD_HASH_SOURCE)
        admin, _ = accounts.create_user("benchadmin", "管理员", "admin", None, "", "bench-admin-pass")
        admin_token = "bench-admin-token"
        db.session.add(ApiToken(user_id=admin.id, token_hash=ApiToken.hash(admin_token)))
        bank_file = ROOT / "content" / "banks" / "党建知识.csv"
        importer.import_bank_file(bank_file.read_bytes(), bank_file.name, "党建知识")
        db.session.commit()
        db.engine.dispose()
    return [tokens[uid] for uid, _branch in members], admin_token, app


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = {"start": [], "save": []}
        self.errors = {"start": 0, "save": 0}
        self.statuses = {}
        self.acked = {}  # (attempt_id, question_id) -> last value the server acknowledged
        self.started = []  # seconds after t0 at which each start was answered

    def add(self, op, ms, status):
        with self.lock:
            self.latency[op].append(ms)
            if status != 200:
                self.errors[op] += 1
                self.statuses[f"{op} {status}"] = self.statuses.get(f"{op} {status}", 0) + 1

    def merge(self, other):
        for op in self.latency:
            self.latency[op] += other["latency"][op]
            self.errors[op] += other["errors"][op]
        for key, n in other["statuses"].items():
            self.statuses[key] = self.statuses.get(key, 0) + n
        self.acked.update(other["acked"])
        self.started += other["started"]


def request(conn_box, host, port, method, path, token, body=None):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    payload = json.dumps(body).encode() if body is not None else None
    if conn_box[0] is not None and len(conn_box) > 1 and time.monotonic() - conn_box[1] > IDLE_RECONNECT:
        conn_box[0].close()  # the server has closed (or is about to close) an idle keep-alive connection
        conn_box[0] = None
    for attempt in range(2):  # a phone reconnects once when the keep-alive connection was dropped
        if conn_box[0] is None:
            conn_box[0] = http.client.HTTPConnection(host, port, timeout=30)
        started = time.perf_counter()
        try:
            conn_box[0].request(method, path, body=payload, headers=headers)
            response = conn_box[0].getresponse()
            data = response.read()
            if len(conn_box) > 1:
                conn_box[1] = time.monotonic()
            return response.status, data, (time.perf_counter() - started) * 1000
        except (OSError, http.client.HTTPException):
            conn_box[0].close()
            conn_box[0] = None
            if attempt:
                return 0, b"", (time.perf_counter() - started) * 1000
    return 0, b"", 0.0


def member(host, port, token, exam_id, t0, rec, stop_at, rng):
    conn = [None, 0.0]
    time.sleep(max(0.0, t0 + rng.uniform(0, RAMP) - time.time()))
    status, data, ms = request(conn, host, port, "POST", f"/api/v1/exams/{exam_id}/attempts", token)
    rec.add("start", ms, status)
    if status != 200:
        return
    with rec.lock:
        rec.started.append(time.time() - t0)
    started = json.loads(data)
    attempt, questions = started["attempt_id"], started["questions"]
    n = 0
    next_save = time.time() + rng.uniform(0, INTERVAL)
    while True:
        time.sleep(max(0.0, next_save - time.time()))
        if time.time() >= stop_at:
            break
        question = questions[n % len(questions)]
        value = answer_for(question, n)
        status, _, ms = request(conn, host, port, "PUT", f"/api/v1/attempts/{attempt}/answers/{question['id']}",
                                token, {"answer": value})
        rec.add("save", ms, status)
        if status == 200:
            with rec.lock:
                rec.acked[(attempt, question["id"])] = value
        n += 1
        next_save += INTERVAL
    if conn[0] is not None:
        conn[0].close()


def _driver(host, port, tokens, exam_id, t0, stop_at, seed, out):
    """One client process: a thread per member. Sends back what it saw and its own CPU seconds."""
    rec = Recorder()
    threading.stack_size(256 * 1024)
    threads = [threading.Thread(target=member, args=(host, port, tok, exam_id, t0, rec, stop_at,
                                                     random.Random(seed * 100000 + i)),  # noqa: S311
                                daemon=True) for i, tok in enumerate(tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, stop_at + 120 - time.time()))
    out.put({"latency": rec.latency, "errors": rec.errors, "statuses": rec.statuses, "acked": rec.acked,
             "started": rec.started, "cpu": time.process_time()})


def drive(host, port, tokens, exam_id):
    """The members in DRIVERS processes; returns (Recorder, elapsed seconds, the driver's CPU seconds)."""
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    t0 = time.time() + 2
    stop_at = t0 + RAMP + SECONDS
    procs = [context.Process(target=_driver, args=(host, port, tokens[i::DRIVERS], exam_id, t0, stop_at, i, out))
             for i in range(DRIVERS)]
    for proc in procs:
        proc.start()
    rec, cpu = Recorder(), 0.0
    for _proc in procs:
        got = out.get(timeout=RAMP + SECONDS + 300)
        rec.merge(got)
        cpu += got["cpu"]
    for proc in procs:
        proc.join()
    return rec, time.time() - t0, cpu


def count_lost(app, acked):
    """Look every acknowledged answer up in the database: the stored value, shown as the member saw
    it (their shuffled option letters), must be the last one the server acknowledged."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from pbschool.exams.models import Answer, AttemptQuestion
    from pbschool.extensions import db

    attempt_ids = sorted({a for a, _q in acked})
    with app.app_context():
        stored, slots = {}, {}
        for i in range(0, len(attempt_ids), 500):
            chunk = attempt_ids[i:i + 500]
            for answer in db.session.scalars(select(Answer).where(Answer.attempt_id.in_(chunk))):
                stored[(answer.attempt_id, answer.question_id)] = answer.value
            for slot in db.session.scalars(select(AttemptQuestion).where(AttemptQuestion.attempt_id.in_(chunk))
                                           .options(selectinload(AttemptQuestion.version))):
                slots[(slot.attempt_id, slot.question_id)] = slot
        lost = []
        for key, value in acked.items():
            slot = slots.get(key)
            found = None if key not in stored or slot is None else \
                slot.shown.kind.display(stored[key], slot.option_order)
            if found != value:
                lost.append((key, value, found))
        db.session.remove()
        db.engine.dispose()
    for key, value, found in lost[:5]:
        print(f"lost: attempt {key[0]} question {key[1]}: acknowledged {value!r}, stored {found!r}")
    return len(lost)


def create_exam(host, port, admin_token, title="压测考试"):
    conn = [None]
    body = {"title": title, "time_limit_seconds": int(RAMP + SECONDS + 600), "max_attempts": 1,
            "pass_score": 60, "points_on_pass": 2, "shuffle": True,
            "sections": [{"bank": "党建知识", "count": QUESTIONS, "points_each": 1}]}
    status, data, _ = request(conn, host, port, "POST", "/api/v1/exams", admin_token, body)
    if status not in (200, 201):
        raise RuntimeError(f"cannot create the exam: {status} {data[:300]!r}")
    return json.loads(data)["id"]


def run(exam_day=True, save=True):
    """Run the save comparison and the exam day; returns (result rows, note lines) for the one table
    `make bench` prints."""
    if exam_day:
        print(f"exam day: {MEMBERS} members, ramp {RAMP:.0f} s, saves every {INTERVAL:.0f} s for {SECONDS:.0f} s")
    rows, notes = [], []
    with scratch_database() as database_url, tempfile.TemporaryDirectory() as instance:
        tokens, admin_token, app = seed(database_url, Path(instance), None if exam_day else save_ceiling.SAVERS)
        env = app_env(database_url, instance)
        with gunicorn(env) as server:
            url = server.url
            host, port = url.split("//")[1].split(":")
            port = int(port)
            if save:
                exam_id = create_exam(host, port, admin_token, "限时压测：保存")
                save_rows, save_notes = save_ceiling.run(server, env, exam_id, tokens[-save_ceiling.SAVERS:])
                rows += save_rows
                notes += save_notes
            if not exam_day:
                return rows, notes
            ceiling = wrk(url + "/healthz", seconds=10)
            exam_id = create_exam(host, port, admin_token)
            rec, elapsed, driver_cpu = drive(host, port, tokens[:MEMBERS], exam_id)
            lost = count_lost(app, rec.acked)
    for op, label in (("start", "start (or resume) an attempt"), ("save", "save an answer")):
        lat = rec.latency[op]
        rows.append(result_row("exam day", label, len(lat), len(lat) / elapsed, pctl(lat, 50), pctl(lat, 95),
                               pctl(lat, 99), rec.errors[op], lost if op == "save" else 0, paced=True))
    if ceiling:
        rows.append(ceiling_row("exam day", ceiling))
    if rec.statuses:
        print("error statuses:", rec.statuses)
    last_start = max(rec.started) if rec.started else float("nan")
    notes.append(f"exam day: {len(rec.started)} of {MEMBERS} members started, the last {last_start:.0f} s after "
                 f"the first could; {len(rec.acked)} distinct answers acknowledged, each checked in the database: "
                 f"{lost} lost; the client ({DRIVERS} processes) used {driver_cpu:.0f} CPU s in {elapsed:.0f} s "
                 f"({driver_cpu / elapsed:.0%} of one core)")
    return rows, notes


def main():
    rows, notes = run()
    print()
    print_results(rows)
    for line in notes:
        print(line)
    return 0 if all(not r["errors"] and not r["lost"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
