"""The one sanitiser: Markdown features kept, every known XSS vector made harmless, bombs bounded."""

import time
from html.parser import HTMLParser

import pytest

from pbschool.markup import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, render_markdown

XSS_VECTORS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<img src=x onerror=alert(1)>",
    "<img src=\"javascript:alert(1)\">",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "<img src=`javascript:alert(1)`>",
    "<img \"\"\"><script>alert(1)</script>\">",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
    "<object data=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\"></object>",
    "<embed src=\"javascript:alert(1)\">",
    "<style>body{background:url(javascript:alert(1))}</style>",
    "<div style=\"background-image:url(javascript:alert(1))\">x</div>",
    "<a href=\"javascript:alert(1)\">click</a>",
    "<a href=\"JAVASCRIPT:alert(1)\">click</a>",
    "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)\">x</a>",
    "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
    "<a href=\" javascript:alert(1)\">x</a>",
    "<a href=\"vbscript:msgbox(1)\">x</a>",
    "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![img](javascript:alert(1))",
    "![img](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "[a](\"onmouseover=\"alert(1))",
    "<a href=\"#\" onclick=\"alert(1)\">x</a>",
    "<body onload=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<form action=\"javascript:alert(1)\"><button>x</button></form>",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
    "<link rel=stylesheet href=\"javascript:alert(1)\">",
    "<base href=\"javascript:alert(1)//\">",
    "<video><source onerror=\"alert(1)\"></video>",
    "<audio src=x onerror=alert(1)>",
    "<!--<img src=\"--><img src=x onerror=alert(1)//\">",
    "<p title=\"</p><img src=x onerror=alert(1)>\">x</p>",
    "`<script>alert(1)</script>`",
    "```\n<script>alert(1)</script>\n```",
    "<a href=\"http://ok.example\" target=\"_blank\" onmouseover=\"alert(1)\">ok</a>",
    "<span class=\"x\" style=\"position:fixed;top:0\">overlay</span>",
    "<img src=x:alert(alt) onerror=eval(src) alt=0>",
    "<x onclick=alert(1)>click",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
    "<table background=\"javascript:alert(1)\"><tr><td>x</td></tr></table>",
]


class Walker(HTMLParser):
    def __init__(self):
        super().__init__()
        self.problems = []

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"tag {tag}")
        for name, value in attrs:
            if name not in ALLOWED_ATTRIBUTES.get(tag, ()):
                self.problems.append(f"attribute {tag}.{name}")
            if name in ("href", "src"):
                url = (value or "").strip().lower()
                if ":" in url.split("/")[0] and not url.startswith(("http:", "https:", "mailto:")):
                    self.problems.append(f"url {value}")


def problems(html):
    walker = Walker()
    walker.feed(str(html))
    return walker.problems


def test_the_corpus_has_at_least_30_vectors():
    assert len(XSS_VECTORS) >= 30


@pytest.mark.parametrize("vector", XSS_VECTORS)
def test_xss_vector_is_harmless(vector):
    html = str(render_markdown(vector))
    assert problems(html) == [], html
    lowered = html.lower()
    for bad in ("<script", "<iframe", "<style", "<svg", "<object", "<embed", "<form", "<base", "<meta"):
        assert bad not in lowered, html


def test_markdown_features_survive():
    html = str(render_markdown(
        "# 标题\n\n**加粗** *斜体*\n\n| 项目 | 次数 |\n|---|---|\n| 中心组 | 46 |\n\n"
        "```python\nprint('hi')\n```\n\n脚注[^1]\n\n[^1]: 年度党建工作总结\n\n> 引用\n\n1. 一\n2. 二\n"))
    for part in ("<h1>标题</h1>", "<strong>加粗</strong>", "<em>斜体</em>", "<table>", "<td>46</td>",
                 '<code class="language-python">', "<blockquote>", "<ol>", 'class="footnote"',
                 'href="#fn:1"', 'id="fn:1"'):
        assert part in html, part


def test_links_get_nofollow_noopener_and_bare_urls_are_linked():
    html = str(render_markdown("[学习强国](https://www.xuexi.cn/) 见 https://example.org/a"))
    assert html.count('rel="nofollow noopener"') == 2
    assert 'href="/courses"' in str(render_markdown("[课程](/courses)"))
    assert "rel=" not in str(render_markdown("[课程](/courses)"))


def test_inline_rendering_drops_the_paragraph():
    assert str(render_markdown("**选项**", inline=True)) == "<strong>选项</strong>"


def test_ids_other_than_footnote_anchors_are_dropped():
    html = str(render_markdown('<span id="csrf-token" class="ok">x</span>'))
    assert 'id="csrf-token"' not in html and 'class="ok"' in html


BOMBS = {
    "deeply nested lists": "\n".join(" " * i + "- x" for i in range(0, 4000, 2)),
    "deeply nested quotes": "> " * 5000 + "x",
    "a quote deeper each line": "\n".join(">" * i + " x" for i in range(400)),
    "huge table": "|a" * 3000 + "\n" + "|-" * 3000 + "\n" + ("|b" * 3000 + "\n") * 20,
    "long table": "| a | b |\n|---|---|\n" + "| 1 | 2 |\n" * 20000,
    "open brackets": "[" * 50000,
    "unclosed links": "[x](" * 10000,
    "footnote openers": "[^" * 20000,
    "autolink openers": "<http://" * 8000,
    "rulers": "---\n" * 30000,
    "emphasis": "*a" * 30000,
    "html nesting": "<div>" * 20000,
    "html blocks just under the cap": "<div>\n" * 1999,
    "a long list": "- a\n" * 30000,
    "setext headings": "a\n===\n" * 15000,
    "a megabyte": "党" * 1_000_000,
    "tags": "<b>" * 30000,
    "entities": "&amp;" * 20000,
    "inline code": "`a" * 30000,
    "strong": "**a" * 30000,
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_markdown_bombs_are_bounded_in_time_and_size(name):
    started = time.monotonic()
    html = str(render_markdown(BOMBS[name]))
    assert time.monotonic() - started < 20, name  # unbounded, several took 50–90 s (20: a loaded CI worker)
    assert len(html) < 1_200_000
    assert problems(html) == []
