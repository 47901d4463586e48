"""Question files (.csv/.xlsx) in the CONTRACT.md format: import all rows or none, and export."""

from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import select

from pbschool.accounts.services import audit
from pbschool.errors import DomainError
from pbschool.exams import services
from pbschool.exams.models import Question
from pbschool.exams.qtypes import LETTERS, get_type, prerender
from pbschool.extensions import db
from pbschool.tabular import ImportRefused, RowError, map_header, read_table, xlsx_bytes

COLUMNS = {
    "type": ("type", "题型"),
    "stem": ("stem", "题干"),
    **{letter: (letter, f"选项{letter}", f"选项 {letter}") for letter in LETTERS},
    "answer": ("answer", "答案"),
    "score": ("score", "分值"),
    "difficulty": ("difficulty", "难度"),
    "category": ("category", "分类"),
    "explanation": ("explanation", "解析"),
}
REQUIRED = ("type", "stem", "answer")
HEADER_ZH = ["题型", "题干", *[f"选项{letter}" for letter in LETTERS[:6]], "答案", "分值", "难度", "分类", "解析"]
TYPE_NAMES_ZH = {"single": "单选", "multiple": "多选", "truefalse": "判断", "blank": "填空", "short": "简答"}
TEMPLATE_ROWS = [
    ["单选", "中国共产党的根本宗旨是____。", "全心全意为人民服务", "实现共产主义", "发展生产力", "依法治国",
     "", "", "A", "1", "2", "党章", "党章总纲明确规定。"],
    ["多选", "“三会一课”中的“三会”是指（ ）。", "支部党员大会", "支部委员会", "党小组会", "职工代表大会", "", "",
     "ABC", "2", "3", "组织生活", ""],
    ["判断", "党员的党龄从预备期满转为正式党员之日算起。", "", "", "", "", "", "", "对", "1", "3", "党章", ""],
    ["填空", "煤矿安全生产方针：安全第一、____、综合治理。", "", "", "", "", "", "", "预防为主", "1", "2",
     "安全生产", ""],
    ["简答", "简述“两学一做”的内容。", "", "", "", "", "", "", "学党章党规、学系列讲话，做合格党员", "5", "4",
     "党的建设", "按要点给分"],
]


@dataclass
class BankImportResult:
    bank: object = None
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rows: list = field(default_factory=list)

    @property
    def total(self):
        return self.created + self.updated + self.unchanged


def import_bank_file(data: bytes, filename: str, bank_name: str, actor=None):
    """Import (or update) the questions of a .csv/.xlsx file into the bank ``bank_name``.

    A bad file is refused whole: ImportRefused lists every bad row (header = row 1) and why.
    A question is matched by its stem within the bank, so importing again updates it."""
    rows = read_table(data, filename)
    header, body = rows[0], rows[1:]
    index = map_header(header, COLUMNS)
    missing = [c for c in REQUIRED if c not in index]
    if missing:
        raise DomainError(_("缺少必需的列：%(cols)s（需要 题型、题干、答案）", cols=", ".join(missing)),
                          "missing_columns")
    if not any(any(r) for r in body):
        raise DomainError(_("文件中没有题目"), "empty_file")
    errors, parsed, seen = [], [], {}
    for offset, raw in enumerate(body):
        number = offset + 2
        if not any(raw):
            continue

        def get(col, raw=raw):
            i = index.get(col)
            return services.clean(raw[i]).strip() if i is not None and i < len(raw) else ""

        options = [get(letter) for letter in LETTERS]
        values, problems = services.check_question(get("type"), get("stem"), options, get("answer"),
                                                   get("score"), get("difficulty"))
        if len(get("category")) > 100:
            problems.append(_("分类过长（不超过 100 个字符）"))
        key = services.stem_key(values["stem"])
        if values["stem"] and key in seen:
            problems.append(_("题干与第 %(n)d 行重复", n=seen[key]))
        else:
            seen[key] = number
        if problems:
            errors.append(RowError(number, "；".join(str(p) for p in problems)))
        else:
            values.update(category=get("category"), explanation=get("explanation"), stem_key=key)
            parsed.append(values)
    if errors:
        raise ImportRefused(errors)

    bank = services.get_or_create_bank(bank_name, actor=actor)
    existing = {q.stem_key: q for q in db.session.scalars(select(Question).where(Question.bank_id == bank.id))}
    result = BankImportResult(bank=bank)
    for values in parsed:
        question = existing.get(values["stem_key"])
        if question is None:
            question = Question(bank=bank, is_active=True, **values)
            prerender(question)
            db.session.add(question)
            result.created += 1
            continue
        changed = False
        for attr, value in values.items():
            if getattr(question, attr) != value:
                setattr(question, attr, value)
                changed = True
        if not question.is_active:
            question.is_active, changed = True, True
        if changed or question.rendered is None:
            prerender(question)
        if changed:
            result.updated += 1
        else:
            result.unchanged += 1
    db.session.flush()
    audit(actor, "bank.import", bank, filename, created=result.created, updated=result.updated,
          unchanged=result.unchanged)
    return result


def export_rows(bank):
    rows = []
    for q in db.session.scalars(select(Question).where(Question.bank_id == bank.id).order_by(Question.id)):
        options = list(q.options or []) + [""] * (len(LETTERS) - len(q.options or []))
        rows.append([TYPE_NAMES_ZH[q.type], q.stem, *options, get_type(q.type).format_answer(q),
                     float(q.score), q.difficulty, q.category, q.explanation])
    return rows


def export_xlsx(bank):
    header = ["题型", "题干", *[f"选项{letter}" for letter in LETTERS], "答案", "分值", "难度", "分类", "解析"]
    return xlsx_bytes(bank.name, header, export_rows(bank))


def template_xlsx():
    return xlsx_bytes("题库模板", HEADER_ZH, TEMPLATE_ROWS)


def template_csv():
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER_ZH)
    writer.writerows(TEMPLATE_ROWS)
    return "\ufeff" + buffer.getvalue()
