"""Exam-day benchmark (issue 4): N members start the same exam within a ramp and each saves an
answer every 10 s; reports start/save latency percentiles, errors and saves lost (must be 0),
beside the machine's ceiling (wrk against /healthz under the same gunicorn settings).

    make bench                                   # 1,000 members, 60 s ramp, 5 minutes of saves
    BENCH_MEMBERS=200 BENCH_SECONDS=60 make bench   # a quick look

Runs against gunicorn + a throwaway PostgreSQL database; stops by itself.
"""

import http.client
import json
import os
import random
import tempfile
import threading
import time
from pathlib import Path

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

MEMBERS = int(os.environ.get("BENCH_MEMBERS", "1000"))
RAMP = float(os.environ.get("BENCH_RAMP_SECONDS", "60"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "300"))
INTERVAL = float(os.environ.get("BENCH_SAVE_INTERVAL", "10"))
QUESTIONS = 30
PASSWORD_HASH_SOURCE = "bench-password-1"


def seed(database_url, instance_dir):
    """Schema by migrations, then members, tokens, the starter bank and one exam (in-process)."""
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
        members, tokens = add_members(MEMBERS, branches, PASSWORD_HASH_SOURCE)
        admin, _ = accounts.create_user("benchadmin", "管理员", "admin", None, "", "bench-admin-pass")
        admin_token = "bench-admin-token"
        db.session.add(ApiToken(user_id=admin.id, token_hash=ApiToken.hash(admin_token)))
        bank_file = ROOT / "content" / "banks" / "党建知识.csv"
        importer.import_bank_file(bank_file.read_bytes(), bank_file.name, "党建知识")
        db.session.commit()
        return [tokens[uid] for uid, _branch in members], admin_token


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = {"start": [], "save": []}
        self.errors = {"start": 0, "save": 0}
        self.statuses = {}
        self.acked = {}  # (attempt_id, question_id) -> last value the server acknowledged

    def add(self, op, ms, status):
        with self.lock:
            self.latency[op].append(ms)
            if status != 200:
                self.errors[op] += 1
                self.statuses[f"{op} {status}"] = self.statuses.get(f"{op} {status}", 0) + 1


def request(conn_box, host, port, method, path, token, body=None):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    payload = json.dumps(body).encode() if body is not None else None
    for attempt in range(2):  # a phone reconnects once when the keep-alive connection was dropped
        if conn_box[0] is None:
            conn_box[0] = http.client.HTTPConnection(host, port, timeout=30)
        started = time.perf_counter()
        try:
            conn_box[0].request(method, path, body=payload, headers=headers)
            response = conn_box[0].getresponse()
            data = response.read()
            return response.status, data, (time.perf_counter() - started) * 1000
        except (OSError, http.client.HTTPException):
            conn_box[0].close()
            conn_box[0] = None
            if attempt:
                return 0, b"", (time.perf_counter() - started) * 1000
    return 0, b"", 0.0


def member(host, port, token, exam_id, t0, rec, stop_at):
    conn = [None]
    time.sleep(max(0.0, t0 + random.uniform(0, RAMP) - time.time()))  # noqa: S311
    status, data, ms = request(conn, host, port, "POST", f"/api/v1/exams/{exam_id}/attempts", token)
    rec.add("start", ms, status)
    if status != 200:
        return
    started = json.loads(data)
    attempt, questions = started["attempt_id"], started["questions"]
    n = 0
    next_save = time.time() + random.uniform(0, INTERVAL)  # noqa: S311
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


def count_lost(host, port, exam_id, tokens, acked):
    """Resume every attempt through the API and compare what it shows with what was acknowledged."""
    shown = {}
    conn = [None]
    for token in tokens:
        status, data, _ = request(conn, host, port, "POST", f"/api/v1/exams/{exam_id}/attempts", token)
        if status != 200:
            continue
        body = json.loads(data)
        for question in body["questions"]:
            shown[(body["attempt_id"], question["id"])] = question["saved"]
    lost = [(key, value, shown.get(key)) for key, value in acked.items() if shown.get(key) != value]
    for key, value, found in lost[:5]:
        print(f"lost: attempt {key[0]} question {key[1]}: acknowledged {value!r}, shown {found!r}")
    return len(lost)


def create_exam(host, port, admin_token):
    conn = [None]
    body = {"title": "压测考试", "time_limit_seconds": int(RAMP + SECONDS + 600), "max_attempts": 1,
            "pass_score": 60, "points_on_pass": 2, "shuffle": True,
            "sections": [{"bank": "党建知识", "count": QUESTIONS, "points_each": 1}]}
    status, data, _ = request(conn, host, port, "POST", "/api/v1/exams", admin_token, body)
    if status not in (200, 201):
        raise RuntimeError(f"cannot create the exam: {status} {data[:300]!r}")
    return json.loads(data)["id"]


def run():
    """Run the exam day; returns result rows (dicts) for the one table `make bench` prints."""
    print(f"exam day: {MEMBERS} members, ramp {RAMP:.0f} s, saves every {INTERVAL:.0f} s for {SECONDS:.0f} s")
    with scratch_database() as database_url, tempfile.TemporaryDirectory() as instance:
        tokens, admin_token = seed(database_url, Path(instance))
        with gunicorn(app_env(database_url, instance)) as server:
            url = server.url
            host, port = url.split("//")[1].split(":")
            port = int(port)
            ceiling = wrk(url + "/healthz", seconds=10)
            exam_id = create_exam(host, port, admin_token)
            rec = Recorder()
            t0 = time.time() + 1
            stop_at = t0 + RAMP + SECONDS
            threads = [threading.Thread(target=member, args=(host, port, tok, exam_id, t0, rec, stop_at),
                                        daemon=True) for tok in tokens]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=max(1.0, stop_at + 120 - time.time()))
            elapsed = time.time() - t0
            lost = count_lost(host, port, exam_id, tokens, rec.acked)
    rows = []
    for op, label in (("start", "start (or resume) an attempt"), ("save", "save an answer")):
        lat = rec.latency[op]
        rows.append(result_row("exam day", label, len(lat), len(lat) / elapsed, pctl(lat, 50), pctl(lat, 95),
                               pctl(lat, 99), rec.errors[op], lost if op == "save" else 0, paced=True))
    if ceiling:
        rows.append(ceiling_row("exam day", ceiling))
    if rec.statuses:
        print("error statuses:", rec.statuses)
    print(f"saves acknowledged: {len(rec.acked)} distinct answers; saves lost: {lost}")
    return rows


def main():
    rows = run()
    print()
    print_results(rows)
    return 0 if all(not r["errors"] and not r["lost"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
