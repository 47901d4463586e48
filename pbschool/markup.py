"""render_markdown(): Markdown to HTML, then bleach with an allow list. The only sanitiser.

Used for lessons, comments and exam questions alike, so one fix protects every page.
"""

import bleach
import markdown
from markupsafe import Markup

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "u", "s", "del", "ins",
    "sub", "sup", "blockquote", "code", "pre", "ul", "ol", "li", "dl", "dt", "dd", "a", "img",
    "table", "thead", "tbody", "tr", "th", "td", "div", "span", "abbr", "mark",
}
ALLOWED_ATTRIBUTES = {
    "a": ["href", "title", "rel"],
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
MAX_SOURCE_CHARS = 200_000


def _link_attrs(attrs, new=False):
    href_key = (None, "href")
    href = attrs.get(href_key, "")
    if href and not href.startswith(("/", "#")):
        attrs[(None, "rel")] = "nofollow noopener"
    return attrs


def render_markdown(source, *, inline=False):
    """Sanitised HTML (as Markup) for Markdown ``source``."""
    source = (source or "")[:MAX_SOURCE_CHARS]
    html = markdown.markdown(source, extensions=["tables", "fenced_code", "footnotes", "sane_lists"],
                             output_format="html")
    clean = bleach.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                         protocols=ALLOWED_PROTOCOLS, strip=True, strip_comments=True)
    clean = bleach.linkify(clean, callbacks=[_link_attrs], skip_tags={"pre", "code"}, parse_email=False)
    if inline and clean.startswith("<p>") and clean.endswith("</p>") and clean.count("<p>") == 1:
        clean = clean[3:-4]
    return Markup(clean)
