"""Uploaded spreadsheets that are hostile or huge are refused quickly with a Chinese message, and
exports never hand Excel a formula. Each bad .xlsx is built here by hand: zipfile plus XML."""

import datetime as dt
import io
import random
import time
import tracemalloc
import warnings
import zipfile

import pytest
from openpyxl import load_workbook

from pbschool import tabular
from pbschool.errors import DomainError
from pbschool.tabular import read_table, safe_cell, xlsx_bytes

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
OOXML = "application/vnd.openxmlformats-officedocument.spreadsheetml"
CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8"?><Types '
                 'xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                 '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                 '<Default Extension="xml" ContentType="application/xml"/>'
                 f'<Override PartName="/xl/workbook.xml" ContentType="{OOXML}.sheet.main+xml"/>'
                 f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{OOXML}.worksheet+xml"/>'
                 f'<Override PartName="/xl/sharedStrings.xml" ContentType="{OOXML}.sharedStrings+xml"/></Types>')
ROOT_RELS = (f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}">'
             f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
WORKBOOK = (f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{REL}">'
            '<sheets><sheet name="成员" sheetId="1" r:id="rId1"/></sheets></workbook>')
BOOK_RELS = (f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}">'
             f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
             f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
HEADER = ('<row r="1"><c r="A1" t="inlineStr"><is><t>用户名</t></is></c>'
          '<c r="B1" t="inlineStr"><is><t>姓名</t></is></c></row>')
EMPTY_INLINE = '<row r="2"><c r="A2" t="inlineStr"><is><t></t></is></c></row>'
LIMIT = 5.0  # seconds: a guard against a hang, not a speed target


def sheet(rows="", before=""):
    return (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}">{before}'
            f'<sheetData>{rows}</sheetData></worksheet>')


def strings(*texts):
    items = "".join(f"<si><t>{t}</t></si>" for t in texts)
    return f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}" count="{len(texts)}">{items}</sst>'


def xlsx(sheet_xml=None, shared=None, workbook=WORKBOOK, book_rels=BOOK_RELS, extra=(),
         compression=zipfile.ZIP_DEFLATED):
    parts = {"[Content_Types].xml": CONTENT_TYPES, "_rels/.rels": ROOT_RELS, "xl/workbook.xml": workbook,
             "xl/_rels/workbook.xml.rels": book_rels, "xl/worksheets/sheet1.xml": sheet_xml or sheet(HEADER),
             "xl/sharedStrings.xml": shared or strings()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, text in [*parts.items(), *extra]:
            archive.writestr(name, text.encode() if isinstance(text, str) else text)
    return buffer.getvalue()


def refused(data, filename="成员.xlsx"):
    """The DomainError read_table raises, checking that it came quickly."""
    started = time.perf_counter()
    with pytest.raises(DomainError) as info:
        read_table(data, filename)
    assert time.perf_counter() - started < LIMIT
    return info.value


def test_a_hand_made_workbook_reads_like_excel_shows_it():
    rows = (HEADER + '<row r="2"><c r="A2" t="s"><v>0</v></c><c r="B2" t="s"><v>1</v></c>'
            '<c r="C2"><v>42.0</v></c><c r="D2" t="b"><v>1</v></c></row>'
            '<row r="4"><c r="B4" t="inlineStr"><is><r><t>王</t></r><r><t>五</t></r>'
            '<rPh sb="0" eb="1"><t>wang</t></rPh></is></c><c r="C4" t="str"><f>A1</f><v>算出</v></c></row>')
    data = xlsx(sheet(rows), strings("  zhangsan ", "张_x0033_三"))
    assert read_table(data, "m.xlsx") == [["用户名", "姓名"], ["zhangsan", "张3三", "42", "True"], [],
                                          ["", "王五", "算出"]]
    # the same file opens in openpyxl, so the helper above makes real workbooks
    assert load_workbook(io.BytesIO(data), read_only=True).worksheets[0]["B2"].value == "张_x0033_三"


def test_dates_read_as_openpyxl_reads_them():
    styles = (f'<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="{MAIN}"><numFmts count="1">'
              '<numFmt numFmtId="164" formatCode="yyyy&quot;年&quot;m&quot;月&quot;d&quot;日&quot;"/></numFmts>'
              '<cellXfs count="4"><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="164"/><xf numFmtId="46"/>'
              '</cellXfs></styleSheet>')
    rels = BOOK_RELS.replace("</Relationships>", f'<Relationship Id="rId3" Type="{REL}/styles" Target="styles.xml"/>'
                                                  "</Relationships>")
    row = ('<row r="2"><c r="A2" s="1"><v>45296</v></c><c r="B2" s="2"><v>45296.5</v></c>'
           '<c r="C2" s="3"><v>1.5</v></c><c r="D2" s="0"><v>45296</v></c><c r="E2" t="d"><v>2026-03-18</v></c></row>')
    for workbook in (WORKBOOK, WORKBOOK.replace("<sheets>", '<workbookPr date1904="1"/><sheets>')):
        data = xlsx(sheet(HEADER + row), workbook=workbook, book_rels=rels, extra=[("xl/styles.xml", styles)])
        with warnings.catch_warnings():  # "no default style": ours has only what dates need
            warnings.simplefilter("ignore")
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        expected = [str(v) for v in next(book.worksheets[0].iter_rows(min_row=2, values_only=True))]
        assert read_table(data, "m.xlsx")[1] == expected
    assert expected[0] == "2028-01-06 00:00:00" and expected[2] == "1 day, 12:00:00"


# --- XML entity attacks ----------------------------------------------------------------------------
LAUGHS = ('<!DOCTYPE lolz [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 or "")) * 10}">' for i in range(1, 10))
          + ']>')
QUADRATIC = '<!DOCTYPE q [<!ENTITY a "' + "x" * 50000 + '">]>'
EXTERNAL = '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
PARAMETER = '<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]>'
ATTACKS = {"billion_laughs": (LAUGHS, "&lol9;"), "quadratic": (QUADRATIC, "&a;" * 2000),
           "external": (EXTERNAL, "&xxe;"), "parameter": (PARAMETER, "x")}


def _with_doctype(xml, doctype, body, tag):
    declaration, rest = xml.split("?>", 1)
    return declaration + "?>" + doctype + rest.replace(f"<{tag}>", f"<{tag}>{body}", 1)


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("part", ["sheet", "sharedStrings", "workbook", "rels"])
def test_xml_entities_anywhere_are_refused_at_once(attack, part):
    doctype, body = ATTACKS[attack]
    cell = '<row r="2"><c r="A2" t="s"><v>0</v></c></row>'
    files = {"sheet_xml": sheet(HEADER + cell), "shared": strings("x")}
    if part == "sheet":
        files["sheet_xml"] = _with_doctype(sheet(HEADER + EMPTY_INLINE), doctype, body, "t")
    elif part == "sharedStrings":
        files["shared"] = _with_doctype(strings(""), doctype, body, "t")
    elif part == "workbook":
        files["workbook"] = _with_doctype(WORKBOOK, doctype, body, "sheets")
    else:
        files["book_rels"] = _with_doctype(BOOK_RELS, doctype, "", "Relationships")
    error = refused(xlsx(**files))
    assert error.code == "unsafe_xlsx"
    assert "DTD" in error.message and "已拒绝" in error.message


# --- zip bombs -----------------------------------------------------------------------------------
def test_a_zip_bomb_is_refused_before_it_is_inflated(monkeypatch):
    bomb = xlsx(extra=[("xl/media/image1.png", b"\0" * (60 * 1024 * 1024))])
    assert len(bomb) < 200 * 1024
    inflated = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: inflated.append(a) or pytest.fail("inflated"))
    error = refused(bomb)
    assert error.code == "file_too_large" and not inflated


def test_parts_past_the_size_count_and_ratio_limits_are_refused(monkeypatch):
    noise = random.Random(6).randbytes(300 * 1024)  # does not compress: only the size limits apply
    monkeypatch.setattr(tabular, "MAX_XLSX_PART", 200 * 1024)
    assert refused(xlsx(extra=[("xl/media/a.bin", noise)])).message == "Excel 文件解压后过大"
    monkeypatch.setattr(tabular, "MAX_XLSX_PART", 10 * 1024 * 1024)
    monkeypatch.setattr(tabular, "MAX_XLSX_UNCOMPRESSED", 500 * 1024)
    many = [(f"xl/media/{i}.bin", noise) for i in range(2)]
    assert refused(xlsx(extra=many)).code == "file_too_large"
    monkeypatch.setattr(tabular, "MAX_XLSX_UNCOMPRESSED", 50 * 1024 * 1024)
    crowd = [(f"customXml/item{i}.xml", "<a/>") for i in range(tabular.MAX_XLSX_MEMBERS)]
    assert "部件过多" in refused(xlsx(extra=crowd)).message
    squeezed = [("xl/media/zeros.bin", b"\0" * (2 * 1024 * 1024))]  # 1000:1, past MAX_XLSX_RATIO
    assert "压缩比" in refused(xlsx(extra=squeezed)).message


def _declare_size(data, name, size):
    """The zip with ``name``'s size in the central directory changed to ``size``."""
    data = bytearray(data)
    at = data.index(b"PK\x01\x02")
    while data[at + 46:at + 46 + len(name)] != name.encode():
        at = data.index(b"PK\x01\x02", at + 4)
    data[at + 24:at + 28] = size.to_bytes(4, "little")
    return bytes(data)


def test_a_part_that_inflates_past_its_declared_size_is_cut_there_and_refused():
    honest = sheet(HEADER + "".join(f'<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>' for r in range(2, 5000)))
    lying = _declare_size(xlsx(honest), "xl/worksheets/sheet1.xml", 1000)
    assert refused(lying).code == "bad_xlsx"


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_compression_excel_never_uses_is_refused(method):
    assert refused(xlsx(compression=method)).code == "bad_xlsx"


# --- huge sheets -----------------------------------------------------------------------------------
def _rows(first, last, column="A"):
    return "".join(f'<row r="{r}"><c r="{column}{r}" t="inlineStr"><is><t>u{r}</t></is></c></row>'
                   for r in range(first, last + 1))


def test_one_row_past_max_rows_is_refused_even_when_the_dimension_says_two():
    lying = sheet(HEADER + _rows(2, tabular.MAX_ROWS + 2), before='<dimension ref="A1:B2"/>')
    error = refused(xlsx(lying))
    assert error.code == "too_many_rows" and "20000" in error.message
    assert len(read_table(xlsx(sheet(HEADER + _rows(2, tabular.MAX_ROWS + 1))), "m.xlsx")) == tabular.MAX_ROWS + 1


def test_a_far_away_cell_is_refused_without_reading_the_rows_between():
    assert refused(xlsx(sheet(HEADER + _rows(1048576, 1048576)))).code == "too_many_rows"
    error = refused(xlsx(sheet(HEADER + '<row r="2"><c r="GS2"><v>1</v></c></row>')))  # column 201
    assert error.code == "too_many_columns" and "200" in error.message and "第 2 行" in error.message


def test_a_dimension_of_a_whole_sheet_and_empty_formatted_cells_cost_nothing():
    empty = '<row r="1048576" s="3" customFormat="1"><c r="XFD1048576" s="3"/></row>'
    data = xlsx(sheet(HEADER + empty, before='<dimension ref="A1:XFD1048576"/>'))
    assert read_table(data, "m.xlsx") == [["用户名", "姓名"]]


def test_a_million_empty_cells_are_streamed_not_kept():
    million = xlsx(sheet(HEADER + f'<row r="2">{"<c/>" * 1_000_000}</row>' + _rows(3, 3)),
                   compression=zipfile.ZIP_STORED)  # stored: the ratio limit would refuse it first
    started = time.perf_counter()
    assert read_table(million, "m.xlsx")[2] == ["u3"]
    assert time.perf_counter() - started < LIMIT
    many = xlsx(sheet(HEADER + f'<row r="2">{"<c/>" * 100_000}</row>' + _rows(3, 3)))
    tracemalloc.start()
    try:
        read_table(many, "m.xlsx")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * 1024 * 1024  # a cell kept would cost 100 bytes or more: 10 MB


@pytest.mark.parametrize("where", ["shared", "inline", "number", "csv"])
def test_a_cell_past_excels_32767_characters_is_refused_naming_it(where):
    long = "长" * 40000
    if where == "csv":
        error = refused(f"用户名,姓名\na,{long}\n".encode(), "m.csv")
    else:
        cell = {"shared": '<c r="B2" t="s"><v>0</v></c>',
                "inline": f'<c r="B2" t="inlineStr"><is><t>{long}</t></is></c>',
                "number": f'<c r="B2"><v>{"9" * 40000}</v></c>'}[where]
        error = refused(xlsx(sheet(HEADER + f'<row r="2">{cell}</row>'), strings(long)))
    assert error.code == "cell_too_long"
    assert error.message == "第 2 行第 2 列的内容超过 32767 个字符"


def test_the_longest_cell_excel_allows_is_read():
    text = "党" * 32767
    rows = read_table(xlsx(sheet(HEADER + '<row r="2"><c r="B2" t="s"><v>0</v></c></row>'), strings(text)), "m.xlsx")
    assert rows[1][1] == text


def test_csv_has_the_same_limits():
    too_many = "用户名,姓名\n" + "a,b\n" * (tabular.MAX_ROWS + 1)
    assert refused(too_many.encode(), "m.csv").code == "too_many_rows"
    blank_tail = "用户名,姓名\n" + "a,b\n" * 3 + "\n" * 100000 + ",,\n" * 1000
    assert len(read_table(blank_tail.encode(), "m.csv")) == 4
    assert refused(("用户名" + ",x" * 250 + "\n").encode(), "m.csv").code == "too_many_columns"
    error = refused(("用户名,姓名\n\"" + "x" * 200000 + "\"\n").encode(), "m.csv")
    assert error.code in ("bad_csv", "cell_too_long")


# --- not an .xlsx ------------------------------------------------------------------------------------
def test_files_that_are_not_xlsx_get_a_chinese_reason():
    assert "CSV" in refused("用户名,姓名\nzhangsan,张三\n".encode("gb18030")).message
    assert ".xls" in refused(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600).message
    assert refused(random.Random(1).randbytes(3000)).message == "无法读取 Excel 文件：文件已损坏或不是 .xlsx"
    good = xlsx(sheet(HEADER))
    assert refused(good[: len(good) // 2]).code == "bad_xlsx"
    docx = io.BytesIO()
    with zipfile.ZipFile(docx, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    assert refused(docx.getvalue()).code == "bad_xlsx"
    no_sheet = WORKBOOK.replace('r:id="rId1"', 'r:id="rId9"')
    assert refused(xlsx(workbook=no_sheet)).message == "Excel 文件中没有工作表"
    assert refused(b"", "m.xlsx").code == "empty_file"
    assert refused(xlsx(sheet(HEADER.replace('r="A1"', 'r="1A"')))).code == "bad_xlsx"
    assert refused(xlsx(sheet('<row r="x"/>'))).code == "bad_xlsx"
    assert refused(xlsx(sheet('<row><c t="s"><v>7</v></c></row>'))).code == "bad_xlsx"
    assert refused(xlsx(sheet("<row>"))).code == "bad_xlsx"


def test_damaged_copies_of_a_real_workbook_never_raise_anything_but_a_domain_error():
    good = xlsx_bytes("成员", ["用户名", "姓名"], [[f"u{i}", f"名{i}", i, -i / 3, dt.date(2026, 1, 1 + i % 28), True]
                                             for i in range(30)])
    parts = {info.filename: zipfile.ZipFile(io.BytesIO(good)).read(info) for info in
             zipfile.ZipFile(io.BytesIO(good)).infolist()}
    junk = [b"<", b">", b"/", b'"', b"&", b"<!DOCTYPE x>", b"<c>", b"</c>", b"<row>", b'r="A0"', b't="s"', b't="d"',
            b't="b"', b"<v>", b"</v>", b"99999999999", b"1e999", b"nan", b"\xff", b"\x00", b"_x0000_", b's="99"']
    rng = random.Random(2026)
    for attempt in range(400):
        if attempt % 2:  # damage the zip itself
            damaged = bytearray(good)
            for _ in range(rng.randint(1, 8)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            data = bytes(damaged)
        else:  # damage the XML of one part
            name = rng.choice(sorted(parts))
            xml = bytearray(parts[name])
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(len(xml) + 1)
                if rng.random() < 0.5:
                    xml[at:at] = rng.choice(junk)
                else:
                    del xml[at:at + rng.randint(1, 20)]
            data = xlsx_from({**parts, name: bytes(xml)})
        try:
            read_table(data, "m.xlsx")
        except DomainError:
            pass


def xlsx_from(parts):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# --- exports -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "-5", "@SUM(A1)", "\t=1", "\r=1", "=HYPERLINK(\"x\")"])
def test_exported_text_that_a_spreadsheet_would_run_is_escaped(text):
    sheet_ = load_workbook(io.BytesIO(xlsx_bytes("导出", [text], [[text]]))).active
    for cell in (sheet_["A1"], sheet_["A2"]):
        assert cell.value == "'" + text.replace("\r", "\n") and cell.data_type == "s"  # XML keeps no \r
    assert read_table(xlsx_bytes("导出", ["h"], [[text]]), "e.xlsx")[1] == [text.strip()]


def test_exported_numbers_stay_numbers_and_harmless_text_stays_as_it_is():
    data = xlsx_bytes("导出", ["h"], [[-5, -2.5, 0, "5-3", "a=b", "中文", True, None, "a\x00b\x0bc"]])
    cells = list(load_workbook(io.BytesIO(data)).active.iter_rows(min_row=2, values_only=True))[0]
    assert cells == (-5, -2.5, 0, "5-3", "a=b", "中文", True, None, "abc")
    assert safe_cell(-5) == -5 and safe_cell("-5") == "'-5"


def test_an_export_named_with_characters_a_sheet_name_forbids_still_downloads():
    data = xlsx_bytes("'党章/题库[2026]:第*期?" + "长" * 40, ["h"], [])
    assert load_workbook(io.BytesIO(data)).active.title == ("党章_题库_2026__第_期_" + "长" * 40)[:30]


# --- through the upload page -----------------------------------------------------------------------
def test_a_hostile_upload_gets_the_reason_on_the_page_not_a_500(client, auth, make):
    make.user("boss", role="admin")
    auth.login("boss")
    bomb = xlsx(_with_doctype(sheet(HEADER + EMPTY_INLINE), LAUGHS, "&lol9;", "t"))
    for path in ("/admin/users/import", "/admin/banks/import"):
        response = client.post(path, data={"bank": "题库", "file": (io.BytesIO(bomb), "x.xlsx")},
                               content_type="multipart/form-data")
        assert response.status_code == 200
        assert "Excel 文件含有不允许的 XML 声明" in response.get_data(as_text=True)
