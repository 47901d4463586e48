"""render_markdown(): Markdown to HTML, then bleach with an allow list. The only sanitiser.

Used for lessons, comments and exam questions alike, so one fix protects every page.

Python-Markdown has inputs that take quadratic time or blow the recursion limit (thousands of
``[``, deep list or quote nesting, very wide tables, thousands of lines in one block). ``_defuse``
bounds them before parsing; whatever still fails or grows too large is shown as escaped text.
"""

import re
import threading

import bleach
import markdown
from markupsafe import Markup, escape

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "u", "s", "del", "ins",
    "sub", "sup", "blockquote", "code", "pre", "ul", "ol", "li", "dl", "dt", "dd", "a", "img",
    "table", "thead", "tbody", "tr", "th", "td", "div", "span", "abbr", "mark",
}
ALLOWED_ATTRIBUTES = {
    "a": ["href", "title", "rel", "class", "id"],
    "img": ["src", "alt", "title", "width", "height"],
    "th": ["align", "colspan", "rowspan"],
    "td": ["align", "colspan", "rowspan"],
    "abbr": ["title"],
    "ol": ["start"],
    "div": ["class"],
    "span": ["class"],
    "code": ["class"],
    "li": ["id"],
    "sup": ["id"],
}
ALLOWED_PROTOCOLS = {"http", "https", "mailto"}
MAX_SOURCE_CHARS = 100_000
MAX_OUTPUT_CHARS = 1_000_000
MAX_LINES = 6000
MAX_BLOCK_LINES = 200
MAX_INDENT = 16  # columns: four levels of nesting
MAX_QUOTE_DEPTH = 4
MAX_PER_BLOCK = {"[": 200, "<": 200, "|": 64 * 4}
#: Past these counts in a whole document, a character makes so many elements that sanitising is slow.
MAX_PER_DOCUMENT = {"*": 6000, "_": 6000, "`": 4000, "~": 4000, "&": 6000, "[": 6000, "<": 2000, ">": 4000}
MAX_CELLS_PER_ROW = 64
#: Pathological runs of a character lose their Markdown meaning: the full-width twin reads the same.
_ENTITIES = {"[": "［", "<": "＜", ">": "＞", "|": "｜", "*": "＊", "_": "＿", "`": "｀", "~": "～", "&": "＆"}
_QUOTE = re.compile(r"^((?:[ \t]*>){" + str(MAX_QUOTE_DEPTH + 1) + ",})")
_SAFE_CLASS = re.compile(r"^[A-Za-z0-9_ -]{0,80}$")
_SAFE_ID = re.compile(r"^(?:fn|fnref)(?::|-)[A-Za-z0-9_:-]{1,40}$")  # footnote anchors only


def _defuse_line(line):
    stripped = line.lstrip(" \t")
    indent = len(line) - len(stripped)
    if indent > MAX_INDENT:
        line = " " * MAX_INDENT + stripped
    match = _QUOTE.match(line)
    if match:
        line = ">" * MAX_QUOTE_DEPTH + " " + line[match.end():].lstrip("> \t")
    if line.count("|") > MAX_CELLS_PER_ROW:
        line = line.replace("|", _ENTITIES["|"])
    return line


def _defuse(source):
    """Bound what makes the parser slow or deep, keeping ordinary documents unchanged."""
    for char, limit in MAX_PER_DOCUMENT.items():
        if source.count(char) > limit:
            source = source.replace(char, _ENTITIES[char])
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")[:MAX_LINES]
    lines = [_defuse_line(line) for line in lines]
    blocks, current = [], []
    for line in lines:
        if line.strip():
            current.append(line)
            if len(current) >= MAX_BLOCK_LINES:
                blocks.append(current)
                current = []
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    out = []
    for block in blocks:
        text = "\n".join(block)
        for char, limit in MAX_PER_BLOCK.items():
            if text.count(char) > limit:
                text = text.replace(char, _ENTITIES[char])
        out.append(text)
    return "\n\n".join(out)


def _link_attrs(attrs, new=False):
    href = attrs.get((None, "href"), "")
    if href and not href.startswith(("/", "#")):
        attrs[(None, "rel")] = "nofollow noopener"
    return attrs


def _attribute_filter(tag, name, value):
    if name not in ALLOWED_ATTRIBUTES.get(tag, ()):
        return False
    if name == "class":
        return bool(_SAFE_CLASS.match(value or ""))
    if name == "id":
        return bool(_SAFE_ID.match(value or ""))
    if name in ("width", "height", "colspan", "rowspan", "start"):
        return value.isdigit() and len(value) <= 4
    return True


_local = threading.local()


def _cleaner():
    """One bleach Cleaner per thread: its html5lib parser keeps state and is not thread-safe (gunicorn's
    gthread workers render pages in parallel)."""
    cleaner = getattr(_local, "cleaner", None)
    if cleaner is None:
        cleaner = _local.cleaner = bleach.sanitizer.Cleaner(
            tags=ALLOWED_TAGS, attributes=_attribute_filter, protocols=ALLOWED_PROTOCOLS, strip=True,
            strip_comments=True)
    return cleaner


def _escaped(source):
    return Markup("<p>") + Markup("<br>").join(escape(line) for line in source.split("\n")[:MAX_LINES]) \
        + Markup("</p>")


def render_markdown(source, *, inline=False):
    """Sanitised HTML (as Markup) for Markdown ``source``."""
    source = (source or "")[:MAX_SOURCE_CHARS]
    try:
        html = markdown.markdown(_defuse(source), extensions=["tables", "fenced_code", "footnotes", "sane_lists"],
                                 output_format="html")
    except RecursionError:
        return _escaped(source)
    if len(html) > MAX_OUTPUT_CHARS:
        return _escaped(source)
    clean = _cleaner().clean(html)
    clean = bleach.linkify(clean, callbacks=[_link_attrs], skip_tags={"pre", "code"}, parse_email=False)
    if inline and clean.startswith("<p>") and clean.endswith("</p>") and clean.count("<p>") == 1:
        clean = clean[3:-4]
    return Markup(clean)  # noqa: S704  (sanitised by the allow list above)
