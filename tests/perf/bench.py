"""`make bench`: the answer save beside a bare Flask upsert and the exam day (issues 4 and 13), the
points benchmark (issue 5) and the search benchmark (issue 14), against gunicorn + PostgreSQL, printed
as one table with each run's own ceilings (wrk against /healthz, and against a bare upsert endpoint,
under the same gunicorn settings), so every figure can be read as a share of what this machine serves.

    make bench                                          # the full runs (exam day about 9 minutes)
    BENCH_MEMBERS=200 BENCH_SECONDS=20 BENCH_ENTRIES=100000 make bench   # a quick look

The exam day's BENCH_MEMBERS/BENCH_RAMP_SECONDS/BENCH_SECONDS/BENCH_SAVE_INTERVAL, the save
comparison's BENCH_SAVE_ROUNDS/BENCH_SAVE_SECONDS, the points run's BENCH_POINTS_MEMBERS/
BENCH_ENTRIES/BENCH_WRK_SECONDS and the search run's BENCH_LESSONS shorten each; BENCH_ONLY=save, exam
(the save comparison and the exam day), points or search runs one. Exits non-zero when a request failed
or a saved answer was lost.
"""

import os

from tests.perf.common import print_results


def main():
    only = os.environ.get("BENCH_ONLY", "")
    rows, notes = [], []
    if only in ("", "exam", "save"):
        from tests.perf import exam_day

        exam_rows, exam_notes = exam_day.run(exam_day=only != "save")
        rows += exam_rows
        notes += exam_notes
    if only in ("", "points"):
        from tests.perf import points_board

        points_rows, points_notes = points_board.run()
        rows += points_rows
        notes += points_notes
    if only in ("", "search"):
        from tests.perf import search

        search_rows, search_notes = search.run()
        rows += search_rows
        notes += search_notes
    print()
    print_results(rows)
    for line in notes:
        print(line)
    return 0 if all(not r["errors"] and not r["lost"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
