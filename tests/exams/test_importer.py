import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from pbschool.exams.importer import export_xlsx, import_bank_file, template_csv, template_xlsx
from pbschool.exams.models import Question, QuestionBank
from pbschool.extensions import db
from pbschool.tabular import ImportRefused

GOOD = """题型,题干,选项A,选项B,选项C,选项D,答案,分值,难度,分类,解析
单选,党的根本宗旨是？,为人民服务,发展经济,改革,开放,A,2,2,党章,总纲
多选,三会包括？,党员大会,支委会,党小组会,职代会,ABC,2,3,组织生活,
判断,党龄从转正之日算起。,,,,,对,1,3,党章,
填空,安全第一、____、综合治理。,,,,,预防为主/预防,1,2,安全,
简答,简述两学一做。,,,,,学党章党规,5,4,党建,按要点给分
"""


def test_a_good_file_imports_and_importing_again_updates(app):
    result = import_bank_file(GOOD.encode("utf-8-sig"), "bank.csv", "党章题库")
    db.session.commit()
    assert (result.created, result.updated, result.unchanged) == (5, 0, 0)
    blank = db.session.scalar(select(Question).where(Question.type == "blank"))
    assert blank.answer == [["预防为主", "预防"]]
    changed = GOOD.replace("为人民服务,发展经济,改革,开放,A,2", "为人民服务,发展经济,改革,开放,A,3")
    again = import_bank_file(changed.encode(), "bank.csv", "党章题库")
    db.session.commit()
    assert (again.created, again.updated, again.unchanged) == (0, 1, 4)
    assert db.session.scalar(select(func.count(Question.id))) == 5


def test_english_headers_and_xlsx_round_trip(app):
    english = "type,stem,A,B,answer\nsingle,Which?,yes,no,B\ntruefalse,True?,,,false\n"
    import_bank_file(english.encode(), "en.csv", "英文")
    db.session.commit()
    bank = db.session.scalar(select(QuestionBank).where(QuestionBank.name == "英文"))
    data = export_xlsx(bank)
    rows = list(load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True))
    assert rows[0][0] == "题型" and rows[1][0] == "单选" and rows[2][0] == "判断"
    result = import_bank_file(data, "en.xlsx", "英文")
    assert (result.created, result.unchanged) == (0, 2)


def test_a_bad_file_is_refused_whole_naming_every_bad_row(app):
    bad = GOOD + "单选,没有选项的题,,,,,A,1,3,x,\n" + "未知,题,,,,,A,1,3,x,\n" + \
        "多选,三会包括？,a,b,,,AB,1,9,x,\n" + "填空,没有空的填空题,,,,,答案,1,3,x,\n"
    with pytest.raises(ImportRefused) as info:
        import_bank_file(bad.encode(), "bad.csv", "党章题库")
    rows = {e.row: e.message for e in info.value.errors}
    assert sorted(rows) == [7, 8, 9, 10]
    assert "两个选项" in rows[7]
    assert "题型" in rows[8]
    assert "重复" in rows[9] and "难度" in rows[9]
    assert "下划线" in rows[10]
    db.session.rollback()
    assert db.session.scalar(select(func.count(Question.id))) == 0
    assert db.session.scalar(select(func.count(QuestionBank.id))) == 0


def test_missing_columns_and_wrong_file_type(app):
    from pbschool.errors import DomainError

    with pytest.raises(DomainError) as info:
        import_bank_file("题干,答案\n题,A\n".encode(), "x.csv", "b")
    assert "题型" in info.value.message
    with pytest.raises(DomainError):
        import_bank_file(b"hello", "x.txt", "b")


def test_the_templates_import_cleanly(app):
    assert import_bank_file(template_xlsx(), "t.xlsx", "模板").created == 5
    assert import_bank_file(template_csv().encode("utf-8"), "t.csv", "模板").unchanged == 5


def test_cli_bank_import(app, runner, tmp_path):
    path = tmp_path / "q.csv"
    path.write_text(GOOD, encoding="utf-8")
    result = runner.invoke(args=["bank", "import", str(path), "--bank", "党章题库"])
    assert result.exit_code == 0, result.output
    assert "created 5" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("题型,题干,答案\n单选,题,Z\n", encoding="utf-8")
    result = runner.invoke(args=["bank", "import", str(bad), "--bank", "党章题库"])
    assert result.exit_code != 0
    assert "row 2" in result.output


def test_demo_exam_is_made_once_from_the_content_bank(app):
    from pathlib import Path

    from pbschool.exams.cli import DEMO_EXAM, demo_loader
    from pbschool.exams.models import Exam

    content = Path(__file__).resolve().parents[2] / "content"
    data = (content / "banks" / "党建知识.csv").read_bytes()
    import_bank_file(data, "党建知识.csv", "党建知识")
    db.session.commit()
    assert "created" in " ".join(demo_loader(content))
    assert "already" in " ".join(demo_loader(content))
    assert db.session.scalar(select(func.count(Exam.id)).where(Exam.title == DEMO_EXAM)) == 1
