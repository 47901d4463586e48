"""Shared pieces of the benchmarks: a throwaway PostgreSQL database, gunicorn, wrk, percentiles."""

import http.client
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import LEDGER_KEYS
from tests.databases import scratch_postgres

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ADMIN_URL = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("PBSCHOOL_TEST_DATABASE_URL") \
    or "postgresql://postgres@127.0.0.1:5432/test"


def pctl(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def scratch_database():
    """A new PostgreSQL database for one benchmark run; dropped afterwards."""
    with scratch_postgres(ADMIN_URL, "pbschool_bench") as url:
        yield url


def app_env(database_url, instance_dir):
    env = {**os.environ, "DATABASE_URL": database_url, "PBSCHOOL_INSTANCE_DIR": str(instance_dir),
           "SECRET_KEY": "bench-secret", "PBSCHOOL_ENV": "production",
           # the test apps' key: a test's own app verifies the ledger the servers wrote
           "PBSCHOOL_LEDGER_KEYS": LEDGER_KEYS,
           # the servers' admins award points through the API with a token; they have no phone
           "PBSCHOOL_REQUIRE_2FA_FOR_ADMINS": "0"}
    env.pop("REDIS_URL", None)
    return env


def children(pid):
    """The direct children of ``pid`` (gunicorn's workers when it is the master)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return sorted(set(found))


class Server:
    """A running gunicorn: its URL, its master process, its workers and its error log."""

    def __init__(self, proc, port, log):
        self.proc, self.port, self.log = proc, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.expected_errors = ()  # log lines a test provokes on purpose (e.g. a worker it killed)

    @property
    def pid(self):
        return self.proc.pid

    def workers(self):
        return children(self.proc.pid)

    def log_errors(self):
        """gunicorn's error lines and tracebacks, less the expected ones."""
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if ("[ERROR]" in line or line.startswith("Traceback"))
                and not any(e in line for e in self.expected_errors)]

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    def wait_for_workers(self, count, timeout=30):
        """Wait until the master has ``count`` workers that all answer; returns their pids."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.workers()
            if len(pids) == count and self.healthy():
                return pids
            time.sleep(0.2)
        raise AssertionError(f"gunicorn has workers {self.workers()} after {timeout} s, wanted {count}")


@contextmanager
def gunicorn(env, workers=None, threads=None, app="wsgi:app"):
    """gunicorn with the project's gunicorn.conf.py (its workers and threads unless given) on a free
    port; yields a Server once it answers (with all its workers, when their number is given).
    Everything is stopped on exit; the log is kept, and named, when it holds unexpected errors."""
    port = free_port()
    env = {**env, "PBSCHOOL_BIND": f"127.0.0.1:{port}", "PBSCHOOL_ACCESS_LOG": "/dev/null"}
    if workers:
        env["WEB_CONCURRENCY"] = str(workers)
    if threads:
        env["PBSCHOOL_THREADS"] = str(threads)
    log = Path(tempfile.mkstemp(prefix="gunicorn-", suffix=".log")[1])
    with log.open("w") as err:
        proc = subprocess.Popen([str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), app],  # noqa: S603
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    server = Server(proc, port, log)
    try:
        deadline = time.monotonic() + 60
        while not server.healthy():
            if proc.poll() is not None:
                raise RuntimeError("gunicorn exited: " + log.read_text()[-2000:])
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not come up in 60 s: " + log.read_text()[-2000:])
            time.sleep(0.2)
        if workers:
            server.wait_for_workers(workers)
        yield server
    finally:
        # Quick shutdown, asked of the master only: it passes it on to each worker once (a worker
        # signalled twice, by the group and by the master, can deadlock in gunicorn's handler).
        try:
            os.kill(proc.pid, signal.SIGINT)
            proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group, master included
        except ProcessLookupError:
            pass
        proc.wait(10)
        errors = server.log_errors()
        if errors:
            print(f"gunicorn logged {len(errors)} error line(s), e.g. {errors[0][:200]} (log kept: {log})")
        else:
            log.unlink(missing_ok=True)


#: wrk's own summary has no p95; a script's done() prints the three percentiles the tables show.
PERCENTILES_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("P50_US %d\\nP95_US %d\\nP99_US %d\\n", latency:percentile(50),
    latency:percentile(95), latency:percentile(99)))
end
"""


def wrk(url, seconds=10, connections=32, threads=2, script=None, env=None):
    """Requests/s, requests, latency percentiles (ms) and errors from wrk, or None when wrk is not
    installed. A ``script`` of one's own must end with PERCENTILES_LUA for the percentiles."""
    if not shutil.which("wrk"):
        return None
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    with tempfile.TemporaryDirectory() as tmp:
        if not script:
            script = Path(tmp) / "percentiles.lua"
            script.write_text(PERCENTILES_LUA)
        args += ["-s", str(script)]
        out = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 60,  # noqa: S603
                             env={**os.environ, **(env or {})}).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
              "requests": int(re.search(r"(\d+) requests in", out).group(1))}
    for p in ("50", "95", "99"):
        m = re.search(rf"P{p}_US (\d+)", out)
        if m:
            result[f"p{p}"] = int(m.group(1)) / 1000
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non2xx"] = int(errors.group(1)) if errors else 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(map(int, socket_errors.groups())) if socket_errors else 0
    return result


def _paced_process(port, path, header, values, pause, seconds, clients, seed, out):
    """One client process: ``clients`` threads, each a person on their own keep-alive connection."""
    latencies, errors, lock = [], [0], threading.Lock()

    def person(k):
        rng = random.Random(seed * 1000 + k)  # noqa: S311 - think times, not secrets
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        end = time.monotonic() + seconds
        while True:
            time.sleep(rng.uniform(pause / 2, pause * 3 / 2))
            if time.monotonic() >= end:
                break
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers={header: rng.choice(values)})
                response = conn.getresponse()
                response.read()
                failed = response.status >= 400
            except OSError:
                failed = True
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                errors[0] += failed
        conn.close()

    people = [threading.Thread(target=person, args=(k,)) for k in range(clients)]
    for t in people:
        t.start()
    for t in people:
        t.join()
    out.put((latencies, errors[0]))


def paced(url, path, header, values, pause, seconds=20, clients=32, processes=4):
    """``clients`` people, each sending GET ``path`` (with one of ``values`` as ``header``) and then
    waiting about ``pause`` seconds (+-50%) before the next: the latency at a load the clients set.
    Python clients in ``processes`` processes, not wrk: wrk's delay() timers add ~300 ms to about 1% of
    requests even for /healthz (p99 310 ms against 4 ms from these clients at the same 60 req/s), and at
    a few hundred req/s a Python client still measures the server, not itself. Same keys as wrk()."""
    port = int(url.rsplit(":", 1)[1])
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    share = [clients // processes + (i < clients % processes) for i in range(processes)]
    workers = [context.Process(target=_paced_process, args=(port, path, header, list(values), pause, seconds, n,
                                                            i, out)) for i, n in enumerate(share) if n]
    started = time.monotonic()
    for w in workers:
        w.start()
    latencies, errors = [], 0
    for _w in workers:
        got, failed = out.get(timeout=seconds + 120)
        latencies += got
        errors += failed
    for w in workers:
        w.join()
    elapsed = time.monotonic() - started
    return {"rps": len(latencies) / elapsed, "requests": len(latencies), "p50": pctl(latencies, 50),
            "p95": pctl(latencies, 95), "p99": pctl(latencies, 99), "non2xx": errors, "socket_errors": 0,
            "errors": errors}


def answer_for(question, n):
    """A valid answer of each question type, varied by ``n`` (the exam-day benchmark and the fault tests)."""
    kind = question["type"]
    keys = [o["key"] for o in question.get("options") or []] or ["A", "B", "C", "D"]
    if kind == "single":
        return keys[n % len(keys)]
    if kind == "multiple":
        return sorted({keys[n % len(keys)], keys[(n + 1) % len(keys)]})
    if kind == "truefalse":
        return n % 2 == 0
    if kind == "blank":
        return [f"答{n}"] * max(1, question.get("blanks") or 1)
    return f"第{n}次作答"


def table(rows, header):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row):
        cells = zip(row, widths, strict=True)
        return "  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(cells))

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def result_row(bench, request, requests, rps, p50, p95, p99, errors, lost=None, paced=False):
    """One line of the table. ``paced``: the clients set the rate (think time), so requests/s is the
    offered load, not a capacity to compare with the ceiling."""
    return {"bench": bench, "request": request, "requests": requests, "rps": rps, "p50": p50, "p95": p95,
            "p99": p99, "errors": errors, "lost": lost, "paced": paced}


def ceiling_row(bench, ceiling):
    """The same machine's ceiling in the same run: wrk against /healthz under the same gunicorn."""
    return result_row(bench, "ceiling: /healthz, wrk 32 connections", None, ceiling["rps"], ceiling.get("p50"),
                      ceiling.get("p95"), ceiling.get("p99"), ceiling["non2xx"] + ceiling["socket_errors"])


def print_results(rows):
    """One table for every benchmark: requests/s, percentiles, errors, answers lost, and each row's
    requests/s as a share of its own run's ceiling."""
    ceilings = {r["bench"]: r["rps"] for r in rows if r["request"].startswith("ceiling")}

    def ms(value):
        return "-" if value is None else f"{value:.1f}"

    out = []
    for r in rows:
        ceiling = ceilings.get(r["bench"])
        share = ("-" if not ceiling or r["paced"] or r["request"].startswith("ceiling")
                 else f"{r['rps'] / ceiling:.0%}")
        out.append([r["bench"], r["request"], "-" if r["requests"] is None else r["requests"], f"{r['rps']:.0f}",
                    ms(r["p50"]), ms(r["p95"]), ms(r["p99"]), r["errors"], "-" if r["lost"] is None else r["lost"],
                    share])
    table(out, ["bench", "request", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "lost",
                "of ceiling"])


def add_members(count, branches, password, *, username="m{:05d}", token="bench-token-{}"):  # noqa: S107
    """``count`` members spread over ``branches``, by bulk insert with one shared password hash (hashing
    is the slow part) and an API token each. Inside an app context; the caller commits. Returns
    [(user id, branch id)] in id order and {user id: token}."""
    from sqlalchemy import insert, select

    from pbschool.accounts import services as accounts
    from pbschool.accounts.models import ApiToken, User
    from pbschool.extensions import db

    shared_hash = accounts.hash_password(password)
    db.session.execute(insert(User), [
        {"username": username.format(i), "name": f"党员{i}", "role": "member",
         "branch_id": branches[i % len(branches)].id, "job_post": "", "password_hash": shared_hash,
         "session_nonce": f"n{i}", "is_active": True, "must_change_password": False} for i in range(count)])
    members = db.session.execute(select(User.id, User.branch_id).where(User.role == "member")
                                 .order_by(User.id)).all()
    tokens = {uid: token.format(uid) for uid, _branch in members}
    db.session.execute(insert(ApiToken), [{"user_id": uid, "token_hash": ApiToken.hash(t)}
                                          for uid, t in tokens.items()])
    return members, tokens
