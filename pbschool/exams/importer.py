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
    "id": ("id", "编号"),
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
    #: Questions a content file owned that it no longer has: taken out of the draw (is_active off).
    retired: int = 0
    rows: list = field(default_factory=list)

    @property
    def total(self):
        return self.created + self.updated + self.unchanged


def import_bank_file(data: bytes, filename: str, bank_name: str, actor=None, source=None):
    """Import (or update) the questions of a .csv/.xlsx file into the bank ``bank_name``.

    A bad file is refused whole: ImportRefused lists every bad row (header = row 1) and why.
    A row is matched to a question of the bank by its ``id``/``编号`` when it has one (so a corrected
    stem updates the same question), else by its stem; importing again updates, and a changed
    question gets a new version (an identical one does not).

    ``source`` ("content:banks/<file>.csv", from content sync) makes the file own its questions: the
    form refuses to edit them, an upload may not overwrite them, and the file's questions it no
    longer has are retired. Without it, a row matching a question a content file owns is refused."""
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
        ref = get("id")
        values, problems = services.check_question(get("type"), get("stem"), options, get("answer"),
                                                   get("score"), get("difficulty"))
        if len(get("category")) > 100:
            problems.append(_("分类过长（不超过 100 个字符）"))
        key = services.stem_key(values["stem"])
        if values["stem"] and key in seen:
            problems.append(_("题干与第 %(n)d 行重复", n=seen[key]))
        else:
            seen[key] = number
        if len(ref) > 64:
            problems.append(_("编号过长（不超过 64 个字符）"))
        elif ref and ("id", ref) in seen:
            problems.append(_("编号与第 %(n)d 行重复", n=seen[("id", ref)]))
        elif ref:
            seen[("id", ref)] = number
        if problems:
            errors.append(RowError(number, "；".join(str(p) for p in problems)))
        else:
            values.update(category=get("category"), explanation=get("explanation"), stem_key=key)
            if ref:
                values["source_ref"] = ref
            parsed.append((number, values))
    if errors:
        raise ImportRefused(errors)

    bank = services.find_bank(bank_name)
    questions = db.session.scalars(select(Question).where(Question.bank_id == bank.id)).all() if bank else []
    matched = _match(parsed, questions, source)
    if any(isinstance(m, RowError) for m in matched):
        raise ImportRefused([m for m in matched if isinstance(m, RowError)])
    bank = bank or services.get_or_create_bank(bank_name, actor=actor)
    result = BankImportResult(bank=bank)
    for (_number, values), question in zip(parsed, matched, strict=True):
        if question is None:
            question = Question(bank=bank, is_active=True, source=source, **values)
            prerender(question)
            services.set_author(question, actor)
            db.session.add(question)
            result.created += 1
            continue
        if source and question.source != source:
            question.source = source  # the file takes over the question it has (same stem or id)
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
            services.set_author(question, actor)
            result.updated += 1
        else:
            result.unchanged += 1
    if source:
        kept = {id(q) for q in matched if q is not None}
        for question in questions:
            if question.source == source and id(question) not in kept and question.is_active:
                question.is_active = False
                result.retired += 1
    db.session.flush()  # changed questions get their new versions here (exams/versions.py)
    audit(actor, "bank.import", bank, filename, created=result.created, updated=result.updated,
          unchanged=result.unchanged, retired=result.retired)
    return result


def _match(parsed, questions, source):
    """The bank's question for each parsed row (None: a new one), or a RowError for a row that may
    not be written: a question another file owns, or a stem another question of the bank has."""
    by_key = {q.stem_key: q for q in questions}
    by_ref = {(q.source, q.source_ref): q for q in questions if q.source_ref}
    out, taken = [], {}
    for number, values in parsed:
        ref = values.get("source_ref")
        question = by_ref.get((source, ref)) if ref else None
        if question is None:
            question = by_key.get(values["stem_key"])
        if question is not None and question.source and question.source.startswith("content:") \
                and question.source != source:
            path = question.source.removeprefix("content:")
            out.append(RowError(number, _("该题由内容文件 %(f)s 维护，请修改内容文件后运行 pbschool content sync",
                                          f=path)))
            continue
        clash = by_key.get(values["stem_key"])
        if question is not None and clash is not None and clash is not question:
            out.append(RowError(number, _("题干与本题库中另一道题相同")))
            continue
        if question is not None and id(question) in taken:
            out.append(RowError(number, _("与第 %(n)d 行对应同一道题", n=taken[id(question)])))
            continue
        if question is not None:
            taken[id(question)] = number
        out.append(question)
    return out


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
