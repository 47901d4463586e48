"""The searchable text of a course or lesson, and the snippet shown for a match. Pure functions (no
database), so the migration that fills the index for existing rows uses them too.

- ``plain_text(html)``: the words a reader sees, from the sanitised HTML the courses keep
  (Markdown markup, tags and entities gone; block boundaries become line breaks).
- ``fold(text)``: the form that is matched: each character NFKC-normalised and case-folded on its
  own (so full-width ＡＢＣ and abc match, and every position maps back to the original text).
- ``grams(text)``: every character and every pair of neighbouring characters of the folded text (no
  spaces): PostgreSQL keeps them in an array with a GIN index, so that Chinese without spaces is found by
  any 1- or 2-character term exactly, and longer terms by their pairs, then checked.
- ``snippet_html(text, terms)``: the text around the first match, escaped first, then ``<mark>``ed.
"""

import re
import unicodedata
from html.parser import HTMLParser

from markupsafe import Markup, escape

MAX_QUERY_CHARS = 100
MAX_TERMS = 10
SNIPPET_CHARS = 120

_BLOCKS = {"p", "br", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
           "dt", "dd", "hr", "table", "ul", "ol"}
_SPACE = re.compile(r"[ \t\r\f\v\u00a0\u3000]+")
_LINES = re.compile(r"\s*\n\s*")


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []

    def handle_starttag(self, tag, attrs):
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        self.parts.append(data)


def plain_text(body_html):
    """The visible words of sanitised HTML, whitespace collapsed, paragraphs on lines of their own."""
    parser = _Text()
    parser.feed(body_html or "")
    parser.close()
    return tidy("".join(parser.parts))


def tidy(text):
    return _LINES.sub("\n", _SPACE.sub(" ", text or "")).strip()


def _fold_char(char):
    if char.isspace():
        return " "
    return unicodedata.normalize("NFKC", char).casefold()


#: What each character seen so far folds to (for str.translate), and the characters that fold to
#: other than exactly one character (after which positions in the folded text shift).
_TABLE = {}
_IRREGULAR = set()
_TABLE_LIMIT = 100_000


def _learn(text):
    """Fold each new character of ``text`` once; True when the table now covers all of them."""
    new = [c for c in set(text) if ord(c) not in _TABLE]
    if len(_TABLE) + len(new) > _TABLE_LIMIT:
        return False
    for char in new:
        folded = _fold_char(char)
        if len(folded) != 1:
            _IRREGULAR.add(char)
        _TABLE[ord(char)] = folded
    return True


def fold(text):
    text = text or ""
    if _learn(text):
        return text.translate(_TABLE)
    return "".join(_fold_char(c) for c in text)


def fold_with_map(text):
    """(folded text, origin) where origin[k] is the index in ``text`` of folded character k; origin is
    None when every character folds to exactly one (positions are the same)."""
    if _learn(text) and _IRREGULAR.isdisjoint(text):
        return text.translate(_TABLE), None
    out, origin = [], []
    for index, char in enumerate(text):
        folded = _fold_char(char)
        out.append(folded)
        origin.extend([index] * len(folded))
    return "".join(out), origin


def grams(folded):
    """The distinct 1- and 2-character grams of folded text (none holding a space), sorted."""
    found = set()
    previous = " "
    for char in folded:
        if char != " ":
            found.add(char)
            if previous != " ":
                found.add(previous + char)
        previous = char
    return sorted(found)


def grams_for_term(term):
    """The grams every text containing the folded ``term`` has; exact for terms of 1 or 2 characters."""
    if len(term) == 1:
        return [term]
    return sorted({term[i:i + 2] for i in range(len(term) - 1)})


def parse_query(q):
    """Folded, distinct search terms of the query (at most MAX_TERMS); the caller bounds its length."""
    terms = []
    for word in fold(q).split():
        if word not in terms:
            terms.append(word)
    return terms[:MAX_TERMS]


def like_pattern(term):
    """A LIKE pattern matching ``term`` anywhere, its wildcards escaped (ESCAPE '\\')."""
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _spans(folded, terms):
    """Merged (start, end) spans of every occurrence of every term in the folded text."""
    spans = []
    for term in terms:
        start = folded.find(term)
        while start != -1:
            spans.append((start, start + len(term)))
            start = folded.find(term, start + 1)
    spans.sort()
    merged = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlight(text, terms, window=None):
    """``text`` (or a window around its first match) escaped, with every match wrapped in <mark>."""
    folded, origin = fold_with_map(text)
    spans = _spans(folded, terms)
    if origin is not None:
        spans = [(origin[s], origin[e - 1] + 1) for s, e in spans]
    begin, end = 0, len(text)
    if window is not None and len(text) > window:
        first = spans[0][0] if spans else 0
        begin = max(0, min(first - window // 4, len(text) - window))
        end = begin + window
    out = [Markup("…")] if begin > 0 else []
    position = begin
    for start, stop in spans:
        if stop <= begin or start >= end:
            continue
        start, stop = max(start, begin), min(stop, end)
        out.append(escape(text[position:start]))
        out.append(Markup("<mark>") + escape(text[start:stop]) + Markup("</mark>"))
        position = stop
    out.append(escape(text[position:end]))
    if end < len(text):
        out.append(Markup("…"))
    return Markup("").join(out)


def snippet_html(text, terms, folded=None):
    """A one-line excerpt around the first match, escaped, the matches in <mark>. ``folded``, when
    given, is fold(text) already at hand: the window is then found without folding the whole text."""
    text = text.replace("\n", " ")
    if len(text) <= SNIPPET_CHARS or folded is None or len(folded) != len(text):
        return highlight(text, terms, window=SNIPPET_CHARS)
    first = min((p for p in (folded.find(t) for t in terms) if p >= 0), default=0)
    begin = max(0, min(first - SNIPPET_CHARS // 4, len(text) - SNIPPET_CHARS))
    end = begin + SNIPPET_CHARS
    return Markup("").join([Markup("…") if begin > 0 else "", highlight(text[begin:end], terms),
                            Markup("…") if end < len(text) else ""])


def doc_values(title, body_html, summary=""):
    """The SearchDoc columns for a course or lesson of this title, (summary) and sanitised body."""
    body = plain_text(body_html)
    if summary:
        body = tidy(summary + "\n" + body)
    folded = fold(f"{title}\n{body}")
    return {"title_folded": fold(title or ""), "body_text": body, "folded": folded, "grams": grams(folded)}
