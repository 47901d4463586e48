"""Issue 15: what a member and the committee office see of exams — home without exams the member
has finished, and a results histogram whose labels stay inside the picture."""

import datetime as dt
import re

from pbschool.exams import stats
from tests.exams.conftest import T0, make_exam


def _home_panel(client):
    home = client.get("/").get_data(as_text=True)
    if "正在进行的考试" not in home:
        return ""
    panel = home[home.index("正在进行的考试"):]
    return panel[:panel.index("</section>")]


def test_an_exam_with_no_attempt_left_leaves_the_home_page(client, auth, make, bank, pinned):
    """Reproduction: an exam with 0 attempts left stayed on the member's home page."""
    exam = make_exam(bank, closes_at=T0 + dt.timedelta(hours=3), max_attempts=1)
    make.user("liuzq")
    auth.login("liuzq")
    assert "党章党规知识测试" in _home_panel(client)
    started = client.post(f"/exams/{exam.id}/start", data={"agreed": "y"})
    attempt_id = int(started.headers["Location"].rsplit("/", 1)[1])
    running = _home_panel(client)
    assert "党章党规知识测试" in running and "答题中" in running  # still there while it runs
    client.post(f"/attempts/{attempt_id}/submit", data={"action": "submit"})
    assert "党章党规知识测试" not in _home_panel(client)
    assert "剩余 0 次" not in client.get("/").get_data(as_text=True)


def test_the_tallest_bars_count_is_drawn_inside_the_histogram(app):
    """Reproduction: the tallest bar's count was drawn at y = -3, outside the picture."""
    rows = [("0–10", 0), ("50–60", 3), ("90–100", 12)]
    with app.test_request_context():
        svg = str(stats.bar_svg(rows))
    height = float(re.search(r'viewBox="0 0 [\d.]+ ([\d.]+)"', svg).group(1))
    for y in re.findall(r'<text [^>]*y="(-?[\d.]+)"', svg):
        assert 10 <= float(y) <= height  # a 10-unit font's baseline at 10 or below shows whole
    for y, h in re.findall(r'<rect [^>]*y="(-?[\d.]+)" [^>]*height="([\d.]+)"', svg):
        assert float(y) >= 0 and float(y) + float(h) <= height


def test_the_results_sheet_gives_submission_times_in_beijing_time_and_says_so(client, auth, make, bank, pinned):
    """Reproduction: exports said UTC (or nothing) while pages say Beijing time."""
    import io

    from openpyxl import load_workbook

    exam = make_exam(bank, closes_at=T0 + dt.timedelta(hours=3), max_attempts=1)
    make.user("liuzq", name="刘志强")
    auth.login("liuzq")
    attempt_id = int(client.post(f"/exams/{exam.id}/start", data={"agreed": "y"}).headers["Location"].rsplit("/", 1)[1])
    client.post(f"/attempts/{attempt_id}/submit", data={"action": "submit"})
    admin = make.user("boss", role="admin")
    auth.logout()
    auth.login(admin.username)
    sheet = load_workbook(io.BytesIO(client.get(f"/admin/exams/{exam.id}/results?format=xlsx").data)).active
    header = [c.value for c in sheet[1]]
    assert header[-1] == "交卷时间（北京时间）"
    assert sheet.cell(row=2, column=len(header)).value == T0 + dt.timedelta(hours=8)
    assert sheet.freeze_panes == "A2"


def test_an_imports_outcome_is_at_the_top_and_its_error_table_scrolls_in_its_box(client, auth, make, app):
    """Reproduction: the result sat below the form (below the fold on a phone) and the error table
    widened the page to 392 px."""
    import io

    from tests.exams.test_importer import GOOD

    make.user("teacher", role="lecturer")
    auth.login("teacher")
    done = client.post("/admin/banks/import", data={"bank": "党章题库", "file": (io.BytesIO(GOOD.encode()), "q.csv")},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert done.index("导入完成") < done.index("<form method=\"post\" enctype")
    bad_file = io.BytesIO(("题型,题干,答案\n" + "单选,题,Z\n" * 30).encode())
    bad = client.post("/admin/banks/import", data={"bank": "党章题库", "file": (bad_file, "q.csv")},
                      content_type="multipart/form-data").get_data(as_text=True)
    assert bad.index("导入被拒绝") < bad.index("<form method=\"post\" enctype")
    box = bad[bad.index('id="import-result"'):]
    assert box.index('<div class="table-scroll">') < box.index("<table")
