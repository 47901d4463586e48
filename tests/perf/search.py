"""Search benchmark (issue 14 part 7): 5,000 published lessons of Chinese text (about 2,000 characters
each, in 50 courses) on PostgreSQL, searched through GET /api/v1/search by members with a mix of
queries: common and rare two-character terms, longer terms, several words, one character, a term
found nowhere. Measured beside the ceiling (/healthz) and the floor of any signed-in API request
(/api/v1/me) from the same run:
- one client at a time (the time a search takes, nothing queued before it);
- 32 clients pausing ~0.5 s and ~0.2 s between searches (Python clients, as the points benchmark);
- wrk with 32 connections and no pause (capacity: the latency then is mostly queueing).

    .venv/bin/python -m tests.perf.search
    BENCH_LESSONS=1000 BENCH_WRK_SECONDS=10 .venv/bin/python -m tests.perf.search   # a quick look

`make bench` runs it with the others (BENCH_ONLY=search runs it alone). Runs against gunicorn + a
throwaway PostgreSQL database; stops by itself. Last figures: README.md.
"""

import http.client
import json
import multiprocessing
import os
import random
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from tests.perf.common import (
    PERCENTILES_LUA,
    add_members,
    app_env,
    ceiling_row,
    gunicorn,
    pctl,
    print_results,
    result_row,
    scratch_database,
    wrk,
)

LESSONS = int(os.environ.get("BENCH_LESSONS", "5000"))
COURSES = 50
SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "20"))
MEMBERS = 200
PASSWORD = "bench-password-1"

PHRASES = (
    "坚持以习近平新时代中国特色社会主义思想为指导", "深入学习贯彻党的二十大精神", "学习党史教育", "不忘初心、牢记使命",
    "全面从严治党", "加强基层党组织建设", "发挥党员先锋模范作用", "落实安全生产责任制", "严守政治纪律和政治规矩",
    "推进党风廉政建设", "践行全心全意为人民服务的根本宗旨", "坚定理想信念", "增强“四个意识”", "坚定“四个自信”",
    "做到“两个维护”", "贯彻民主集中制", "认真开展批评和自我批评", "严格落实“三会一课”制度", "开好组织生活会",
    "弘扬伟大建党精神", "传承红色基因", "牢记“国之大者”", "推动高质量发展", "守住安全生产底线",
    "抓好班前会安全教育", "强化隐患排查治理", "把党建工作与生产经营深度融合", "以党建引领促发展",
    "深化改革创新", "提高职工群众获得感", "关心关爱困难职工", "加强党员教育管理", "规范发展党员工作",
    "党员干部要带头学习", "学思用贯通、知信行统一", "坚持问题导向", "以钉钉子精神抓落实", "密切联系群众",
    "筑牢廉洁自律防线", "集中整治形式主义、官僚主义", "乡村振兴战略", "共同富裕", "绿色低碳转型",
    "煤矿智能化建设", "一线党员攻坚克难", "党员示范岗", "党员责任区", "支部书记讲党课", "党小组学习讨论",
    "主题党日活动", "重温入党誓词", "参观革命纪念馆", "学习先进典型事迹", "树立正确政绩观",
    "提升政治判断力、政治领悟力、政治执行力", "严肃党内政治生活", "完善考核评价机制", "推进作风建设常态化长效化",
)
JOINERS = ("，", "，", "，", "；", "。", "。")
TOPICS = ("党史学习", "党章党规", "理论武装", "安全生产", "廉洁从业", "组织生活", "作风建设", "群众工作",
          "改革发展", "红色传统", "形势政策", "法治教育")
#: What members type: (label, query); the mix rotates through every one.
QUERIES = (
    ("two characters, in most lessons", "学习"), ("two characters", "党史"), ("two characters, rare", "誓词"),
    ("three characters", "新时代"), ("four characters", "乡村振兴"), ("two words", "党史 安全"),
    ("two words", "廉洁 作风"), ("one character", "党"), ("a long term", "全心全意为人民服务"),
    ("found nowhere", "量子计算"), ("latin letters", "pdf"),
)


def lesson_text(rng):
    """About 2,000 characters of Markdown: headed sections of paragraphs of joined phrases."""
    parts = []
    for section in range(1, rng.randint(5, 7)):
        parts.append(f"## {'一二三四五六'[section - 1]}、{rng.choice(TOPICS)}")
        for _p in range(rng.randint(2, 4)):
            sentence = "".join(rng.choice(PHRASES) + rng.choice(JOINERS) for _ in range(rng.randint(8, 14)))
            if rng.random() < 0.3:
                sentence = f"**{rng.choice(PHRASES)}**。" + sentence
            parts.append(sentence.rstrip("，；") + "。")
    return "\n\n".join(parts)


def html_of(source):
    """The HTML render_markdown gives these lessons (headings, paragraphs, bold), made quickly: the
    sanitiser takes minutes over 5,000 lessons on a busy machine."""
    out = []
    for block in source.split("\n\n"):
        if block.startswith("## "):
            out.append(f"<h2>{block[3:]}</h2>")
        else:
            parts = block.split("**")
            out.append("<p>" + "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts)) + "</p>")
    return "\n".join(out)


def seed(database_url, instance_dir):
    """Schema, members with tokens, the courses and lessons (bulk), then the search index rebuilt
    from them by the application's own code (search.services.reindex_all)."""
    os.environ.update(app_env(database_url, instance_dir))
    from flask_migrate import upgrade
    from sqlalchemy import insert

    from pbschool import create_app
    from pbschool.accounts.models import Branch
    from pbschool.courses import services as courses
    from pbschool.courses.models import Course, Lesson
    from pbschool.extensions import db
    from pbschool.search import services as search
    from pbschool.search.models import SearchDoc

    app = create_app()
    started = time.time()
    rng = random.Random(14)
    with app.app_context():
        upgrade()
        db.create_all()  # tables a feature has not migrated yet (development only)
        branches = [Branch(code=f"B{i:02d}", name=f"第{i}党支部") for i in range(1, 6)]
        db.session.add_all(branches)
        db.session.flush()
        _members, tokens = add_members(MEMBERS, branches, PASSWORD)
        course_rows = [Course(title=f"{rng.choice(TOPICS)}专题（{i}）", summary="、".join(rng.sample(TOPICS, 3)),
                              is_published=True, position=i) for i in range(COURSES)]
        db.session.add_all(course_rows)
        db.session.flush()
        now = courses.clock.now()
        rows = []
        for n in range(LESSONS):
            source = lesson_text(rng)
            title = f"第{n // COURSES + 1}讲 {rng.choice(TOPICS)}"
            rows.append({"course_id": course_rows[n % COURSES].id, "title": title, "minutes": 20,
                         "state": "published", "position": n // COURSES, "published_at": now,
                         "body_source": source, "body_html": html_of(source), "revision": 1})
        for start in range(0, len(rows), 500):
            db.session.execute(insert(Lesson), rows[start:start + 500])
        search.reindex_all()
        db.session.commit()
        count = db.session.query(SearchDoc).count()
        chars = db.session.scalar(db.select(db.func.avg(db.func.length(SearchDoc.body_text))))
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    print(f"seeded {LESSONS} lessons in {COURSES} courses ({count} index rows, {chars:.0f} characters of text "
          f"each on average) in {time.time() - started:.0f} s")
    return list(tokens.values())


def paths():
    return [(label, "/api/v1/search?" + urllib.parse.urlencode({"q": q})) for label, q in QUERIES]


LUA = """
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
request = function()
  return wrk.format("GET", paths[math.random(#paths)], {["Authorization"] = tokens[math.random(#tokens)]})
end
""" + PERCENTILES_LUA


def _client(port, targets, tokens, pause, seconds, clients, seed_, out):
    """One process of ``clients`` people searching, each pausing ~``pause`` s (+-50%) in between."""
    latencies, errors, lock = [], [0], threading.Lock()

    def person(k):
        rng = random.Random(seed_ * 1000 + k)  # noqa: S311 - think times, not secrets
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        token = rng.choice(tokens)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if pause:
                time.sleep(rng.uniform(pause / 2, pause * 3 / 2))
            started = time.perf_counter()
            try:
                conn.request("GET", rng.choice(targets), headers={"Authorization": token})
                response = conn.getresponse()
                response.read()
                failed = response.status >= 400
            except OSError:
                failed = True
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)
                errors[0] += failed
        conn.close()

    people = [threading.Thread(target=person, args=(k,)) for k in range(clients)]
    for t in people:
        t.start()
    for t in people:
        t.join()
    out.put((latencies, errors[0]))


def clients(url, targets, tokens, pause, seconds, count=32, processes=4):
    port = int(url.rsplit(":", 1)[1])
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    share = [count // processes + (i < count % processes) for i in range(processes)]
    workers = [context.Process(target=_client, args=(port, targets, tokens, pause, seconds, n, i, out))
               for i, n in enumerate(share) if n]
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
            "p95": pctl(latencies, 95), "p99": pctl(latencies, 99), "errors": errors}


def one_at_a_time(url, targets, token, rounds):
    """Each query ``rounds`` times from one client, nothing else running: {label: [ms]}."""
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times, found = {}, {}
    for _round in range(rounds):
        for label, path in targets:
            started = time.perf_counter()
            conn.request("GET", path, headers={"Authorization": token})
            response = conn.getresponse()
            body = response.read()
            times.setdefault((label, path), []).append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")
            found[(label, path)] = len(json.loads(body)["results"])
    conn.close()
    return times, found


def run():
    print(f"search: {LESSONS} lessons, {len(QUERIES)} queries in rotation, {SECONDS} s a run")
    rows, notes = [], []
    with scratch_database() as database_url, tempfile.TemporaryDirectory() as instance:
        tokens = [f"Bearer {t}" for t in seed(database_url, Path(instance))]
        targets = paths()
        with gunicorn(app_env(database_url, instance)) as server:
            url = server.url
            ceiling = wrk(url + "/healthz", seconds=SECONDS)
            times, found = one_at_a_time(url, targets, tokens[0], rounds=3)  # warm-up
            times, found = one_at_a_time(url, targets, tokens[0], rounds=30)
            every = [ms for values in times.values() for ms in values]
            rows.append(result_row("search", "GET /api/v1/search, one client at a time (all queries)", len(every),
                                   len(every) / (sum(every) / 1000), pctl(every, 50), pctl(every, 95),
                                   pctl(every, 99), 0, paced=True))
            for (label, path), values in times.items():
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)["q"][0]
                notes.append(f"  one at a time, {label} '{q}' ({found[(label, path)]} results): "
                             f"p50 {pctl(values, 50):.1f} ms, p95 {pctl(values, 95):.1f} ms")
            only_paths = [p for _label, p in targets]
            for pause in (0.5, 0.2):
                r = clients(url, only_paths, tokens, pause, SECONDS)
                rows.append(result_row("search", f"GET /api/v1/search, 32 clients pausing ~{pause} s", r["requests"],
                                       r["rps"], r["p50"], r["p95"], r["p99"], r["errors"], paced=True))
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "paths.txt").write_text("\n".join(only_paths) + "\n")
                (Path(tmp) / "tokens.txt").write_text("\n".join(tokens[:50]) + "\n")
                (Path(tmp) / "search.lua").write_text(LUA)
                env = {"BENCH_PATHS": str(Path(tmp) / "paths.txt"), "BENCH_TOKENS": str(Path(tmp) / "tokens.txt")}
                for label, script, target in (
                        ("floor: GET /api/v1/me (token, one query), wrk 32 connections", None, "/api/v1/me"),
                        ("GET /api/v1/search, wrk 32 connections", Path(tmp) / "search.lua", "/")):
                    if script is None:
                        (Path(tmp) / "me.lua").write_text(LUA.replace('paths[math.random(#paths)]', '"/api/v1/me"'))
                        script = Path(tmp) / "me.lua"
                    r = wrk(url + target, seconds=SECONDS, script=script, env=env)
                    if r:
                        rows.append(result_row("search", label, r["requests"], r["rps"], r.get("p50"), r.get("p95"),
                                               r.get("p99"), r["non2xx"] + r["socket_errors"]))
        if ceiling:
            rows.append(ceiling_row("search", ceiling))
    for line in notes:
        print(line)
    return rows, notes


def main():
    rows, notes = run()
    print()
    print_results(rows)
    print("\n".join(notes))
    return 0 if all(not r["errors"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
