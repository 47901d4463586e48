"""The answer save beside its ceiling (issue 13): wrk, 32 connections, against the real
PUT /api/v1/attempts/{id}/answers/{qid} (Bearer tokens of many members; a Lua script rotates
members, attempts and questions) and against a bare Flask endpoint that upserts one row
(tests/perf/bare_upsert.py) under the same gunicorn settings on the same database, in interleaved
rounds, so both see the same machine. Prints save req/s / bare req/s and both p99s.

    BENCH_ONLY=save make bench                    # this comparison alone
    BENCH_SAVE_ROUNDS=3 BENCH_SAVE_SECONDS=10     # the defaults: 3 rounds of 10 s each, alternating
"""

import json
import os
import random
import statistics
import tempfile
import threading
from pathlib import Path

from tests.perf.common import PERCENTILES_LUA, answer_for, gunicorn, result_row, wrk

ROUNDS = int(os.environ.get("BENCH_SAVE_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SAVE_SECONDS", "10"))
SAVERS = int(os.environ.get("BENCH_SAVE_MEMBERS", "400"))
CONNECTIONS = 32

LUA = """
local reqs = {%s}
local counter = 0
setup = function(thread)
  thread:set("offset", counter * 7919)
  counter = counter + 1
end
local i = 0
init = function(args)
  i = (offset or 0) %% #reqs
end
request = function()
  i = i %% #reqs + 1
  local r = reqs[i]
  return wrk.format("PUT", r[1], {["Authorization"] = "Bearer " .. r[2],
                                  ["Content-Type"] = "application/json"}, r[3])
end
"""


def _lua_string(text):
    return json.dumps(text)  # a JSON string of ASCII is a valid Lua string literal


def _script(path, entries):
    items = ",".join("{" + ",".join(map(_lua_string, entry)) + "}" for entry in entries)
    Path(path).write_text(LUA % items + PERCENTILES_LUA)


def start_attempts(host, port, exam_id, tokens):
    """Each member starts (or resumes) the exam; returns [(token, attempt id, [questions])]."""
    from tests.perf.exam_day import request

    out, lock = [], threading.Lock()

    def run(chunk):
        conn = [None]
        for token in chunk:
            status, data, _ = request(conn, host, port, "POST", f"/api/v1/exams/{exam_id}/attempts", token)
            if status != 200:
                raise RuntimeError(f"cannot start an attempt: {status} {data[:200]!r}")
            body = json.loads(data)
            with lock:
                out.append((token, body["attempt_id"], body["questions"]))

    chunks = [tokens[i::8] for i in range(8)]
    threads = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def run(server, env, exam_id, tokens):
    """Rows for the table: the save and the bare upsert, each over all rounds, and a note line."""
    host, port = server.url.split("//")[1].split(":")
    attempts = start_attempts(host, int(port), exam_id, tokens[:SAVERS])
    rng = random.Random(13)  # noqa: S311 - an order, not a secret
    saves, bare = [], []
    for token, attempt_id, questions in attempts:
        for n, q in enumerate(questions):
            body = json.dumps({"answer": answer_for(q, n)}, ensure_ascii=True)
            saves.append((f"/api/v1/attempts/{attempt_id}/answers/{q['id']}", token, body))
            bare.append((f"/upsert/{attempt_id * 1000 + q['id'] % 1000}", "-", body))
    order = list(range(len(saves)))
    rng.shuffle(order)
    saves, bare = [saves[i] for i in order], [bare[i] for i in order]
    results = {"save": [], "bare": []}
    with tempfile.TemporaryDirectory() as tmp, gunicorn(env, app="tests.perf.bare_upsert:app") as ceiling:
        save_lua, bare_lua = Path(tmp) / "save.lua", Path(tmp) / "bare.lua"
        _script(save_lua, saves)
        _script(bare_lua, bare)
        wrk(ceiling.url + "/upsert/1", seconds=2, connections=CONNECTIONS, script=bare_lua)  # warm both pools
        wrk(server.url + "/api/v1/", seconds=2, connections=CONNECTIONS, script=save_lua)
        for _round in range(ROUNDS):
            results["bare"].append(wrk(ceiling.url + "/upsert/1", seconds=SECONDS, connections=CONNECTIONS,
                                       script=bare_lua))
            results["save"].append(wrk(server.url + "/api/v1/", seconds=SECONDS, connections=CONNECTIONS,
                                       script=save_lua))

    def summary(label, runs):
        requests = sum(r["requests"] for r in runs)
        errors = sum(r["non2xx"] + r["socket_errors"] for r in runs)
        med = {p: statistics.median(r[p] for r in runs) for p in ("p50", "p95", "p99")}
        return result_row("save ceiling", label, requests, requests / (SECONDS * len(runs)), med["p50"],
                          med["p95"], med["p99"], errors)

    bare_row = summary(f"ceiling: bare Flask upsert, wrk {CONNECTIONS} connections", results["bare"])
    save_row = summary(f"save an answer (PUT), wrk {CONNECTIONS} connections, {len(attempts)} members",
                       results["save"])
    ratio = save_row["rps"] / bare_row["rps"]
    p99_ratio = save_row["p99"] / bare_row["p99"]
    per_round = ", ".join(f"{s['rps']:.0f}/{b['rps']:.0f}" for s, b in zip(results["save"], results["bare"],
                                                                            strict=True))
    notes = [f"save / bare upsert: {ratio:.2f} of the ceiling ({save_row['rps']:.0f} vs {bare_row['rps']:.0f} req/s; "
             f"p99 {save_row['p99']:.1f} vs {bare_row['p99']:.1f} ms = {p99_ratio:.1f}x; "
             f"{ROUNDS} interleaved rounds of {SECONDS} s, save/bare per round: {per_round}). "
             f"Goal: >= 0.8 and p99 <= 2x."]
    return [save_row, bare_row], notes
