"""Shared pieces of the benchmarks: a throwaway PostgreSQL database, gunicorn, wrk, percentiles."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

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
           "SECRET_KEY": "bench-secret", "PBSCHOOL_ENV": "production"}
    env.pop("REDIS_URL", None)
    return env


@contextmanager
def gunicorn(env, workers=None, threads=4):
    """gunicorn with the project's gunicorn.conf.py on a free port; yields the base URL."""
    port = free_port()
    env = {**env, "PBSCHOOL_BIND": f"127.0.0.1:{port}", "PBSCHOOL_THREADS": str(threads),
           "PBSCHOOL_ACCESS_LOG": "/dev/null"}
    if workers:
        env["WEB_CONCURRENCY"] = str(workers)
    log = tempfile.NamedTemporaryFile("w+", prefix="gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen([str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],  # noqa: S603
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).read()  # noqa: S310
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("gunicorn exited: " + Path(log.name).read_text()[-2000:]) from None
            time.sleep(0.3)
    else:
        raise RuntimeError("gunicorn did not come up in 60 s")
    try:
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        errors = [line for line in Path(log.name).read_text().splitlines() if "[ERROR]" in line]
        if errors:
            print(f"gunicorn logged {len(errors)} error line(s), e.g. {errors[0][:200]} (log: {log.name})")


def wrk(url, seconds=10, connections=32, threads=2, script=None, env=None):
    """Requests/s and latency percentiles (ms) from wrk, or None when wrk is not installed."""
    if not shutil.which("wrk"):
        return None
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script:
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 60,  # noqa: S603
                         env={**os.environ, **(env or {})}).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for p in ("50", "90", "99"):
        m = re.search(rf"^\s+{p}(?:\.000)?%\s+([\d.]+)(us|ms|s)", out, re.M)
        if m:
            value, unit = float(m.group(1)), m.group(2)
            result[f"p{p}"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non2xx"] = int(errors.group(1)) if errors else 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(map(int, socket_errors.groups())) if socket_errors else 0
    return result


def table(rows, header):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row):
        cells = zip(row, widths, strict=True)
        return "  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(cells))

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))
