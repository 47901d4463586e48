"""Reading and writing the spreadsheets people bring: .csv (UTF-8 with or without BOM, or GB18030
as Excel in China saves it) and .xlsx. Shared by member import, question import and exports."""

import csv
import datetime as dt
import io
import posixpath
import re
import zipfile
import zlib
from dataclasses import dataclass
from xml.parsers import expat

from flask_babel import gettext as _

from pbschool.errors import DomainError

MAX_ROWS = 20000  # rows after the header
MAX_COLUMNS = 200
MAX_CELL_CHARS = 32767  # Excel's own limit for one cell
# An .xlsx is refused before anything is inflated when it would be a zip bomb:
MAX_XLSX_UNCOMPRESSED = 50 * 1024 * 1024  # all parts inflated
MAX_XLSX_PART = 40 * 1024 * 1024  # one part inflated
MAX_XLSX_MEMBERS = 1000
MAX_XLSX_RATIO = 100  # inflated / compressed, for a part over 1 MiB (real sheets stay under 30)
MAX_SHARED_STRINGS = 1_000_000

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BEIJING = dt.timezone(dt.timedelta(hours=8), "北京时间")  # China keeps no summer time


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


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _cell(value):
    """A cell as the importers see it: stripped text without control characters. A leading
    apostrophe that our own exports put before =+-@ (see safe_cell) is taken off again."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = _CONTROL.sub("", str(value)).strip()
    if text[:1] == "'" and text[1:2] and text[1] in (*FORMULA_PREFIXES, "\n"):  # XML reads \r as \n
        text = text[1:].strip()
    return text


class _Rows:
    """Collects numbered rows, refusing as soon as a cell with text lies past the limits.
    Rows and cells without text cost nothing, so a sheet formatted down to row 1,048,576 still reads."""

    def __init__(self):
        self.rows = []

    def check(self, number, column, text):
        if number > MAX_ROWS + 1:
            raise DomainError(_("文件行数超过上限 %(n)d", n=MAX_ROWS), "too_many_rows")
        if column > MAX_COLUMNS:
            raise DomainError(_("文件列数超过上限 %(n)d（第 %(row)d 行）", n=MAX_COLUMNS, row=number),
                              "too_many_columns")
        if isinstance(text, _TooLong) or len(text) > MAX_CELL_CHARS:
            raise DomainError(_("第 %(row)d 行第 %(col)d 列的内容超过 %(n)d 个字符",
                                row=number, col=column, n=MAX_CELL_CHARS), "cell_too_long")

    def add(self, number, cells):
        """``cells`` maps a column (from 1) to text already checked."""
        if not cells:
            return
        row = [""] * max(cells)
        for column, text in cells.items():
            row[column - 1] = text
        self.rows.extend([] for _gap in range(number - 1 - len(self.rows)))
        self.rows.append(row)


def read_table(data, filename):
    """Rows of a .csv or .xlsx file as lists of strings, header first (row n of the file is rows[n-1]).

    Refused with a DomainError: a file past MAX_ROWS rows or MAX_COLUMNS columns, a cell longer
    than MAX_CELL_CHARS, an unreadable file, and an .xlsx that could be a zip or XML bomb."""
    name = (filename or "").lower()
    if not name.endswith((".csv", ".xlsx")):
        raise DomainError(_("只支持 .xlsx 或 .csv 文件"), "bad_file_type")
    if not data:
        raise DomainError(_("文件是空的"), "empty_file")
    rows = _read_csv(data) if name.endswith(".csv") else _read_xlsx(data)
    while rows and not any(rows[-1]):
        rows.pop()
    if not rows:
        raise DomainError(_("文件是空的"), "empty_file")
    return rows


def _read_csv(data):
    table = _Rows()
    reader = csv.reader(io.StringIO(_decode(data)))
    try:
        for number, row in enumerate(reader, 1):
            cells = {}
            for column, value in enumerate(row, 1):
                text = _cell(value)
                if text:
                    table.check(number, column, text)
                    cells[column] = text
            table.add(number, cells)
    except csv.Error as exc:  # e.g. a field longer than csv.field_size_limit()
        raise DomainError(_("CSV 文件格式有误（第 %(n)d 行附近）", n=reader.line_num), "bad_csv") from exc
    return table.rows


# --- .xlsx ---------------------------------------------------------------------------------------
# An .xlsx is a zip of XML parts. We read it with expat directly, streaming and without building a
# tree: the zip is checked before anything is inflated, any DTD (so any entity: billion laughs,
# external entities) is refused at once, and only the first worksheet, its shared strings and the
# number formats (to tell dates) are read. openpyxl's load_workbook reads every part whole.

_CHUNK = 64 * 1024
_XLSX_SMALL_PART = 5 * 1024 * 1024  # workbook, relationships, styles
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # .xls, and any password-protected Office file
_CELL_REF = re.compile(r"([A-Za-z]{1,3})(\d*)$")
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")  # how OOXML writes a character XML can't hold


def _bad_xlsx():
    return DomainError(_("无法读取 Excel 文件：文件已损坏或不是 .xlsx"), "bad_xlsx")


def _too_large():
    return DomainError(_("Excel 文件解压后过大"), "file_too_large")


class _TooLong(str):
    """A shared string cut at MAX_CELL_CHARS + 1; refused if a cell uses it."""


def _column_index(letters):
    index = 0
    for letter in letters.upper():
        index = index * 26 + ord(letter) - ord("A") + 1
    return index


def _unescape(text):
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def _open_xlsx(data):
    if data.startswith(_OLE_MAGIC):
        raise DomainError(_("这是旧版 Excel（.xls）或设置了密码的文件，请在 Excel 中另存为 .xlsx（不设密码）后再上传"),
                          "bad_xlsx")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError, EOFError, OSError):
        head = data[:4096]
        if b"\x00" not in head and any(sep in head for sep in (b",", b"\t", b"\n")):
            raise DomainError(_("这个文件是文本（可能是 CSV），不是 .xlsx；如果是 CSV，请把扩展名改为 .csv 后再上传"),
                              "bad_xlsx") from None
        raise _bad_xlsx() from None
    if len(infos) > MAX_XLSX_MEMBERS:
        raise DomainError(_("Excel 文件包含的部件过多，已拒绝"), "file_too_large")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _bad_xlsx()
        total += info.file_size
        if info.file_size > MAX_XLSX_PART or total > MAX_XLSX_UNCOMPRESSED:
            raise _too_large()
        # zipfile never inflates past the declared size, so these checks hold for what is read
        if info.file_size > 1024 * 1024 and info.file_size > MAX_XLSX_RATIO * info.compress_size:
            raise DomainError(_("Excel 文件的压缩比异常（疑似压缩炸弹），已拒绝"), "file_too_large")
    return archive


def _refuse_dtd(*args):
    raise DomainError(_("Excel 文件含有不允许的 XML 声明（DTD 或实体），已拒绝"), "unsafe_xlsx")


def _parse(archive, name, start=None, end=None, text=None, limit=MAX_XLSX_PART):
    """Stream one XML part through expat. Handlers get local names (namespaces dropped); a handler
    raising DomainError stops the read there."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise _bad_xlsx() from None
    if info.file_size > limit:
        raise _too_large()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    if start:
        parser.StartElementHandler = lambda tag, attrs: start(tag.rpartition("}")[2], attrs)
    if end:
        parser.EndElementHandler = lambda tag: end(tag.rpartition("}")[2])
    if text:
        parser.buffer_text = True
        parser.CharacterDataHandler = text
    try:
        with archive.open(info) as src:
            while chunk := src.read(_CHUNK):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except (expat.ExpatError, zipfile.BadZipFile, zlib.error, NotImplementedError, ValueError, LookupError,
            EOFError, OSError) as exc:
        raise _bad_xlsx() from exc


def _attr(attrs, name):
    """An attribute by local name, whatever its namespace (r:id)."""
    for key, value in attrs.items():
        if key.rpartition("}")[2] == name:
            return value
    return None


def _relationships(archive, part):
    """{Id: (Type, path in the zip)} of a part's _rels file."""
    folder, base = posixpath.split(part)
    rels_name = posixpath.join(folder, "_rels", base + ".rels")
    rels = {}

    def start(tag, attrs):
        if tag == "Relationship" and attrs.get("TargetMode") != "External" and len(rels) < 10000:
            target = attrs.get("Target", "")
            path = target[1:] if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
            rels[attrs.get("Id")] = (attrs.get("Type", ""), path)

    if rels_name in archive.NameToInfo:
        _parse(archive, rels_name, start, limit=_XLSX_SMALL_PART)
    return rels


def _find_rel(rels, kind):
    return next((path for rel_type, path in rels.values() if rel_type.endswith("/" + kind)), None)


def _workbook(archive):
    """Path of the first worksheet, the paths of the shared strings and styles, and whether dates
    count from 1904 (as old Mac Excel saved them)."""
    book = _find_rel(_relationships(archive, ""), "officeDocument") or "xl/workbook.xml"
    if book not in archive.NameToInfo:
        raise _bad_xlsx()
    sheets, mac = [], [False]

    def start(tag, attrs):
        if tag == "workbookPr" and attrs.get("date1904") in ("1", "true"):
            mac[0] = True
        elif tag == "sheet" and len(sheets) < 10000:
            sheets.append(_attr(attrs, "id"))

    _parse(archive, book, start, limit=_XLSX_SMALL_PART)
    rels = _relationships(archive, book)
    sheet = next((rels[rid][1] for rid in sheets if rid in rels and rels[rid][0].endswith("/worksheet")), None)
    if sheet is None or sheet not in archive.NameToInfo:
        raise DomainError(_("Excel 文件中没有工作表"), "bad_xlsx")
    return sheet, _find_rel(rels, "sharedStrings"), _find_rel(rels, "styles"), mac[0]


def _date_styles(archive, name):
    """(styles showing a date, styles showing a duration) as indexes of cellXfs."""
    from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format

    custom, xfs, where = {}, [], [None]

    def start(tag, attrs):
        if tag in ("numFmts", "cellXfs"):
            where[0] = tag
        elif tag == "numFmt" and where[0] == "numFmts" and len(custom) < 10000:
            custom[attrs.get("numFmtId")] = attrs.get("formatCode")
        elif tag == "xf" and where[0] == "cellXfs" and len(xfs) < 65536:
            xfs.append(attrs.get("numFmtId", "0"))

    def end(tag):
        if tag == where[0]:
            where[0] = None

    _parse(archive, name, start, end, limit=_XLSX_SMALL_PART)
    dates, durations = set(), set()
    for index, fmt_id in enumerate(xfs):
        fmt = custom.get(fmt_id)
        if fmt is None and fmt_id.isdigit():
            fmt = BUILTIN_FORMATS.get(int(fmt_id))
        if is_date_format(fmt):
            dates.add(index)
        if is_timedelta_format(fmt):
            durations.add(index)
    return dates, durations


class _Text:
    """Text of an <si> or <is>: its <t> elements, leaving out phonetic runs (<rPh>), at most
    MAX_CELL_CHARS + 1 characters kept."""

    def __init__(self):
        self.parts, self.size, self.on, self.phonetic = [], 0, False, False

    def start(self, tag):
        if tag == "t" and not self.phonetic:
            self.on = True
        elif tag == "rPh":
            self.phonetic = True

    def end(self, tag):
        if tag == "t":
            self.on = False
        elif tag == "rPh":
            self.phonetic = False

    def add(self, data):
        if self.on and self.size <= MAX_CELL_CHARS:
            self.parts.append(data)
            self.size += len(data)

    def value(self):
        text = _cell(_unescape("".join(self.parts)))
        return _TooLong(text) if self.size > MAX_CELL_CHARS else text


def _shared_strings(archive, name):
    strings, current = [], [None]

    def start(tag, attrs):
        if tag == "si":
            if len(strings) >= MAX_SHARED_STRINGS:
                raise _too_large()
            current[0] = _Text()
        elif current[0]:
            current[0].start(tag)

    def end(tag):
        if tag == "si" and current[0]:
            strings.append(current[0].value())
            current[0] = None
        elif current[0]:
            current[0].end(tag)

    def text(data):
        if current[0]:
            current[0].add(data)

    _parse(archive, name, start, end, text)
    return strings


def _read_xlsx(data):
    from openpyxl.utils.datetime import CALENDAR_MAC_1904, WINDOWS_EPOCH

    with _open_xlsx(data) as archive:
        sheet, strings_part, styles_part, mac = _workbook(archive)
        epoch = CALENDAR_MAC_1904 if mac else WINDOWS_EPOCH
        strings = _shared_strings(archive, strings_part) if strings_part else []
        dates, durations = _date_styles(archive, styles_part) if styles_part else (set(), set())
        return _SheetReader(strings, dates, durations, epoch).read(archive, sheet)


class _SheetReader:
    """Cells of <sheetData> as _Rows, one row at a time; formulas give their cached value."""

    def __init__(self, strings, dates, durations, epoch):
        from openpyxl.utils.datetime import from_excel, from_ISO8601

        self.from_excel, self.from_iso = from_excel, from_ISO8601
        self.strings, self.dates, self.durations, self.epoch = strings, dates, durations, epoch
        self.table = _Rows()
        self.in_data = False
        self.row = self.last_row = 0
        self.cells = None  # None outside a row, and in a row repeating an earlier row number
        self.column = 0
        self.cell = None  # (type, style) of the open <c>
        self.value = None  # _Text of the open <c>'s <v> or <is>, made at the first child

    def read(self, archive, name):
        _parse(archive, name, self.start, self.end, self.text)
        return self.table.rows

    def start(self, tag, attrs):
        if tag == "sheetData":
            self.in_data = True
        elif not self.in_data:
            return
        elif tag == "row":
            number = attrs.get("r")
            self.row = int(number) if number is not None else self.last_row + 1
            self.cells = {} if self.row > self.last_row else None
            self.last_row = max(self.last_row, self.row)
            self.column = 0
        elif tag == "c":
            ref = attrs.get("r")
            if ref:
                match = _CELL_REF.match(ref)
                if match is None:
                    raise _bad_xlsx()
                self.column = _column_index(match.group(1))
            else:
                self.column += 1
            style = attrs.get("s", "0")
            self.cell = (attrs.get("t", "n"), int(style) if style.isdigit() else 0)
        elif self.cell is not None:
            if self.value is None:
                self.value = _Text()
            if tag == "v":
                self.value.on = True
            else:
                self.value.start(tag)

    def end(self, tag):
        if not self.in_data:
            return
        if tag == "sheetData":
            self.in_data = False
        elif tag == "row":
            if self.cells is not None:
                self.table.add(self.row, self.cells)
            self.cells = None
        elif tag == "c" and self.cell is not None:
            if self.cells is not None and self.value is not None:
                text = self.convert()
                if text:
                    self.table.check(self.row, self.column, text)
                    self.cells[self.column] = text
            self.cell = self.value = None
        elif self.value is not None:
            if tag == "v":
                self.value.on = False
            else:
                self.value.end(tag)

    def text(self, data):
        if self.value is not None:
            self.value.add(data)

    def convert(self):
        kind, style = self.cell
        if kind == "inlineStr":
            return self.value.value()
        raw = "".join(self.value.parts)
        if not raw:
            return ""
        if self.value.size > MAX_CELL_CHARS:
            return _TooLong(raw)
        try:
            if kind == "s":
                return self.strings[int(raw)]
            if kind == "b":
                return _cell(bool(int(raw)))
            if kind == "n":
                number = float(raw) if any(c in raw for c in ".eE") else int(raw)
                if style in self.dates:
                    try:
                        return _cell(self.from_excel(number, self.epoch, timedelta=style in self.durations))
                    except (OverflowError, ValueError):
                        pass
                return _cell(number)
            if kind == "d":
                return _cell(self.from_iso(raw))
        except (ValueError, IndexError, OverflowError):
            raise _bad_xlsx() from None
        return _cell(_unescape(raw))  # "str" (a formula's text), "e" (an error such as #N/A)


def map_header(header, columns):
    """Column index per field; ``columns`` maps a field to the header names it accepts."""
    wanted = {alias.strip().lower(): field for field, aliases in columns.items() for alias in aliases}
    index = {}
    for i, title in enumerate(header):
        field = wanted.get(title.strip().lower())
        if field and field not in index:
            index[field] = i
    return index


def safe_cell(value):
    """A value as an export writes it: text that a spreadsheet will not run as a formula (a leading
    = + - @ tab or CR gets an apostrophe, "-5" included) and without the control characters an
    .xlsx cannot hold. Numbers, dates and booleans stay as they are."""
    if isinstance(value, str):
        value = _CONTROL.sub("", value)
        if value.startswith(FORMULA_PREFIXES):
            return "'" + value
    return value


_BAD_TITLE = re.compile(r"[\\/*?:\[\]]")


def xlsx_bytes(title, header, rows):
    """An .xlsx with one sheet; text cells are escaped so none runs as a formula."""
    return xlsx_book([(title, header, rows)])


def xlsx_book(sheets):
    """An .xlsx of ``sheets`` [(title, header, rows)] as people open it in Excel: the header row bold
    and frozen, columns as wide as what they hold (a Chinese character counts twice), text escaped
    so none runs as a formula, and times — naive UTC inside the app — written in Beijing time."""
    from openpyxl import Workbook

    workbook = Workbook()
    for number, (title, header, rows) in enumerate(sheets):
        sheet = workbook.active if number == 0 else workbook.create_sheet()
        add_sheet(sheet, title, header, rows)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _export_value(value):
    if isinstance(value, dt.datetime):
        return beijing(value).replace(tzinfo=None)
    return safe_cell(value)


def beijing(moment):
    """A naive UTC moment in the committee's time zone (Beijing)."""
    return moment.replace(tzinfo=dt.UTC).astimezone(BEIJING)


def _display_width(value):
    if value is None:
        return 0
    if isinstance(value, dt.datetime):
        return 16
    if isinstance(value, dt.date):
        return 10
    text = str(value)
    longest = max(text.split("\n"), key=len) if text else ""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in longest)


def add_sheet(sheet, title, header, rows):
    """Fill ``sheet``: escaped title, bold frozen header, Beijing times, widths by content."""
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    # a sheet name is at most 31 characters, none of \ / * ? : [ ], not starting or ending with '
    sheet.title = _BAD_TITLE.sub("_", _CONTROL.sub("", str(title)))[:31].strip("'") or "Sheet1"
    sheet.append([safe_cell(h) for h in header])
    widths = [_display_width(h) for h in header]
    for row in rows:
        values = [_export_value(v) for v in row]
        sheet.append(values)
        for i, v in enumerate(values):
            if i >= len(widths):
                widths.append(0)
            widths[i] = max(widths[i], _display_width(v))
    bold = Font(bold=True)
    for cell in sheet[1]:
        cell.font = bold
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, dt.datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
            elif isinstance(cell.value, dt.date):
                cell.number_format = "yyyy-mm-dd"
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = min(max(width + 2, 8), 60)
    sheet.freeze_panes = "A2"
    return sheet
