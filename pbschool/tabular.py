"""Reading and writing the spreadsheets people bring: .csv (UTF-8 with or without BOM, or GB18030
as Excel in China saves it) and .xlsx. Shared by member import, question import and exports."""

import csv
import io
import zipfile
from dataclasses import dataclass

from flask_babel import gettext as _

from pbschool.errors import DomainError

MAX_ROWS = 20000
MAX_XLSX_UNCOMPRESSED = 50 * 1024 * 1024  # an .xlsx that inflates past this is refused (zip bomb)


@dataclass
class RowError:
    row: int
    message: str

class ImportRefused(DomainError):
    """The file has bad rows; none was imported."""

    def __init__(self, errors):
        self.errors = errors
        lines = "; ".join(f"第 {e.row} 行：{e.message}" for e in errors[:20])
        more = f"（另有 {len(errors) - 20} 处错误）" if len(errors) > 20 else ""
        super().__init__(_("导入被拒绝，没有任何数据被导入。") + lines + more, "import_refused")


def import_upload(field, do_import):
    """Run ``do_import(bytes, filename)`` on an uploaded file for a form page.

    Returns (result, bad rows): a file refused whole gives its rows; any other refusal is shown
    next to the upload ``field``. On refusal the session is rolled back; on success the caller commits."""
    from pbschool.extensions import db

    upload = field.data
    try:
        return do_import(upload.read(), upload.filename or ""), None
    except ImportRefused as exc:
        db.session.rollback()
        return None, exc.errors
    except DomainError as exc:
        db.session.rollback()
        field.errors.append(exc.message)
        return None, None


def _decode(data):
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DomainError(_("无法识别文件编码，请保存为 UTF-8 的 CSV"), "bad_encoding")


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def read_table(data, filename):
    """Rows of a .csv or .xlsx file as lists of strings, header first."""
    name = (filename or "").lower()
    if name.endswith(".csv"):
        text = _decode(data)
        rows = [[_cell(c) for c in row] for row in csv.reader(io.StringIO(text))]
    elif name.endswith(".xlsx"):
        rows = _read_xlsx(data)
    else:
        raise DomainError(_("只支持 .xlsx 或 .csv 文件"), "bad_file_type")
    if len(rows) > MAX_ROWS + 1:
        raise DomainError(_("文件行数超过上限 %(n)d", n=MAX_ROWS), "too_many_rows")
    while rows and not any(rows[-1]):
        rows.pop()
    if not rows:
        raise DomainError(_("文件是空的"), "empty_file")
    return rows


def _read_xlsx(data):
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_XLSX_UNCOMPRESSED:
                raise DomainError(_("Excel 文件解压后过大"), "file_too_large")
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except DomainError:
        raise
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise DomainError(_("无法读取 Excel 文件：文件已损坏或不是 .xlsx"), "bad_xlsx") from exc
    sheet = workbook.worksheets[0]
    rows = []
    for row in sheet.iter_rows(values_only=True):
        rows.append([_cell(c) for c in row])
        if len(rows) > MAX_ROWS + 1:
            break
    workbook.close()
    return rows


def map_header(header, columns):
    """Column index per field; ``columns`` maps a field to the header names it accepts."""
    wanted = {alias.strip().lower(): field for field, aliases in columns.items() for alias in aliases}
    index = {}
    for i, title in enumerate(header):
        field = wanted.get(title.strip().lower())
        if field and field not in index:
            index[field] = i
    return index


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """Text that a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def xlsx_bytes(title, header, rows):
    """An .xlsx with one sheet; text cells are escaped so none runs as a formula."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title[:31]
    sheet.append([safe_cell(h) for h in header])
    for row in rows:
        sheet.append([safe_cell(v) for v in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
