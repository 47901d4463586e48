"""Question types as registered classes (after Indico's survey fields and CTFd's challenge types).

Each type knows how to read its answer from a question file, check the shape of a member's answer,
grade it, and show its options. Answers inside the server use the question's own option keys;
``display``/``canonical`` translate to and from the shuffled letters a member sees.
"""

import functools
import hashlib
import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from pbschool.errors import DomainError
from pbschool.markup import render_markdown

LETTERS = "ABCDEFGH"
BLANK_RE = re.compile(r"_{4,}")
MAX_TEXT = 5000

_types = {}


def register(cls):
    _types[cls.name] = cls()
    return cls


def get_type(name):
    try:
        return _types[name]
    except KeyError:
        raise DomainError(_("未知题型：%(t)s", t=name), "unknown_type") from None


def all_types():
    return list(_types.values())


TYPE_ALIASES = {"单选": "single", "单选题": "single", "多选": "multiple", "多选题": "multiple",
                "判断": "truefalse", "判断题": "truefalse", "填空": "blank", "填空题": "blank",
                "简答": "short", "简答题": "short"}


def normalise_type(value):
    value = (value or "").strip()
    return TYPE_ALIASES.get(value) or value.lower()


def normalise_text(text):
    """Trimmed, NFKC (full-width → half-width), case-folded, inner whitespace collapsed."""
    text = unicodedata.normalize("NFKC", str(text)).strip().casefold()
    return re.sub(r"\s+", " ", text)


def _round(value):
    return Decimal(value).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _shape_error(message):
    return DomainError(message, "invalid_answer", 400, field="answer")


@functools.lru_cache(maxsize=8192)
def cached_markdown(source, inline=False):
    """render_markdown keyed by the source text: an exam start shows ~150 stems and options, and
    sanitising each again costs milliseconds. Keyed by the text itself, so an edit is never stale."""
    return render_markdown(source, inline=inline)


def _render_stem_now(stem):
    count = 0

    def mark(_match):
        nonlocal count
        count += 1
        return f"PBBLANK{count}X"

    html = str(cached_markdown(BLANK_RE.sub(mark, stem)))
    for i in range(1, count + 1):
        html = html.replace(f"PBBLANK{i}X", f'<span class="blank">（{i}）____</span>')
    return html


def _source_key(question):
    source = "\x1f".join([question.stem or "", *(question.options or [])])
    return hashlib.sha256(source.encode()).hexdigest()


def _fresh(question):
    """The stored HTML, unless the stem or an option changed since it was made."""
    rendered = question.rendered
    if not rendered or rendered.get("source_key") != _source_key(question):
        return None
    return rendered


def prerender(question):
    """Store the question's sanitised HTML on it (called whenever a question is saved)."""
    question.rendered = {"source_key": _source_key(question), "stem": _render_stem_now(question.stem),
                         "options": [str(cached_markdown(o, inline=True)) for o in question.options or []]}


def render_stem(question):
    """The stem as sanitised HTML; each blank becomes a numbered gap."""
    rendered = _fresh(question)
    html = rendered["stem"] if rendered else _render_stem_now(question.stem)
    return Markup(html)  # noqa: S704  (sanitised by render_markdown; only our own span added)


def option_html(question):
    rendered = _fresh(question)
    if rendered:
        return rendered["options"]
    return [str(cached_markdown(o, inline=True)) for o in question.options or []]


class QuestionType:
    name = ""
    label = ""
    has_options = False

    # -- authoring -------------------------------------------------------------------------
    def parse_answer(self, text, options, stem):
        """The canonical answer from the text of a question file's answer cell."""
        raise NotImplementedError

    def format_answer(self, question):
        """The answer as a question file writes it."""
        raise NotImplementedError

    def check_definition(self, options, stem):
        """Problems with the options/stem as a list of messages."""
        return []

    # -- sitting ---------------------------------------------------------------------------
    def option_keys(self, question):
        return []

    def render_options(self, question, option_order):
        return []

    def blank_count(self, question):
        return 0

    def check_shape(self, value, question, option_order):
        raise NotImplementedError

    def canonical(self, value, option_order):
        return value

    def display(self, value, option_order):
        return value

    def is_empty(self, value):
        return value is None or value == "" or value == []

    def grade(self, question, value, points, partial_credit=False):
        """(score, needs_review) for a canonical ``value``."""
        raise NotImplementedError

    def describe(self, question, value, option_order=None):
        """A short human text of ``value`` (canonical) for review pages."""
        return "" if value is None else str(value)


class ChoiceType(QuestionType):
    has_options = True

    def check_definition(self, options, stem):
        if len(options) < 2:
            return [_("选择题至少需要两个选项")]
        return []

    def option_keys(self, question):
        return list(LETTERS[: len(question.options or [])])

    def render_options(self, question, option_order):
        texts = dict(zip(LETTERS, option_html(question), strict=False))
        order = option_order or self.option_keys(question)
        return [{"key": LETTERS[i], "text_html": texts[k]} for i, k in enumerate(order)]

    def _to_original(self, letter, option_order):
        if not option_order:
            return letter
        return option_order[LETTERS.index(letter)]

    def _to_shown(self, key, option_order):
        if not option_order or key not in option_order:
            return key
        return LETTERS[option_order.index(key)]

    def _valid_letter(self, value, question, option_order):
        n = len(option_order or question.options or [])
        return isinstance(value, str) and len(value) == 1 and value in LETTERS[:n]

    def describe(self, question, value, option_order=None):
        if value in (None, [], ""):
            return ""
        keys = value if isinstance(value, list) else [value]
        return "".join(sorted(self._to_shown(k, option_order) for k in keys))


@register
class SingleChoice(ChoiceType):
    name = "single"
    label = _l("单选")

    def parse_answer(self, text, options, stem):
        letter = (text or "").strip().upper()
        if len(letter) != 1 or letter not in LETTERS[: len(options)]:
            raise ValueError(_("单选题答案应为一个选项字母（%(keys)s）", keys=LETTERS[: len(options)] or "A"))
        return letter

    def format_answer(self, question):
        return question.answer

    def check_shape(self, value, question, option_order):
        if value is None:
            return
        if not self._valid_letter(value, question, option_order):
            raise _shape_error(_("单选题的答案应为一个选项字母，如 \"B\""))

    def canonical(self, value, option_order):
        return None if value is None else self._to_original(value, option_order)

    def display(self, value, option_order):
        return None if value is None else self._to_shown(value, option_order)

    def grade(self, question, value, points, partial_credit=False):
        return (points if value == question.answer else Decimal("0")), False


@register
class MultipleChoice(ChoiceType):
    name = "multiple"
    label = _l("多选")

    def parse_answer(self, text, options, stem):
        letters = [c for c in (text or "").strip().upper() if c not in " ,，、;；"]
        valid = LETTERS[: len(options)]
        if not letters or any(c not in valid for c in letters) or len(set(letters)) != len(letters):
            raise ValueError(_("多选题答案应为选项字母的组合，如 ACD（可选：%(keys)s）", keys=valid or "A"))
        return sorted(letters)

    def format_answer(self, question):
        return "".join(question.answer)

    def check_shape(self, value, question, option_order):
        if value is None:
            return
        if (not isinstance(value, list) or len(set(map(str, value))) != len(value)
                or not all(self._valid_letter(v, question, option_order) for v in value)):
            raise _shape_error(_("多选题的答案应为选项字母的数组，如 [\"A\", \"C\"]"))

    def canonical(self, value, option_order):
        return None if value is None else sorted(self._to_original(v, option_order) for v in value)

    def display(self, value, option_order):
        return None if value is None else sorted(self._to_shown(v, option_order) for v in value)

    def grade(self, question, value, points, partial_credit=False):
        chosen, correct = set(value or []), set(question.answer or [])
        if chosen == correct:
            return points, False
        if partial_credit and chosen and chosen < correct:
            # 少选: a share for each right choice; any wrong choice still scores nothing.
            return _round(points * len(chosen) / len(correct)), False
        return Decimal("0"), False


TRUE_WORDS = {"对", "正确", "是", "√", "true", "t", "yes", "y", "1"}
FALSE_WORDS = {"错", "错误", "否", "×", "x", "false", "f", "no", "n", "0"}


@register
class TrueFalse(QuestionType):
    name = "truefalse"
    label = _l("判断")

    def parse_answer(self, text, options, stem):
        word = normalise_text(text or "")
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(_("判断题答案应为 对/错 或 true/false"))

    def format_answer(self, question):
        return "对" if question.answer else "错"

    def render_options(self, question, option_order):
        return [{"key": "true", "text_html": _("对")}, {"key": "false", "text_html": _("错")}]

    def check_shape(self, value, question, option_order):
        if value is not None and not isinstance(value, bool):
            raise _shape_error(_("判断题的答案应为 true 或 false"))

    def grade(self, question, value, points, partial_credit=False):
        right = isinstance(value, bool) and value == bool(question.answer)
        return (points if right else Decimal("0")), False

    def describe(self, question, value, option_order=None):
        return "" if value is None else (_("对") if value else _("错"))


@register
class FillBlank(QuestionType):
    name = "blank"
    label = _l("填空")

    def check_definition(self, options, stem):
        if not BLANK_RE.search(stem or ""):
            return [_("填空题的题干中需用 ____（四个或更多下划线）标出空格")]
        return []

    def parse_answer(self, text, options, stem):
        parts = [p.strip() for p in (text or "").split("|")]
        blanks = [[alt.strip() for alt in p.split("/") if alt.strip()] for p in parts]
        if not blanks or any(not b for b in blanks):
            raise ValueError(_("填空题每个空都需要答案，多个空用 | 分隔，同一空的备选答案用 / 分隔"))
        expected = len(BLANK_RE.findall(stem or ""))
        if expected and expected != len(blanks):
            raise ValueError(_("题干有 %(n)d 个空，答案有 %(m)d 个", n=expected, m=len(blanks)))
        return blanks

    def format_answer(self, question):
        return "|".join("/".join(alts) for alts in question.answer)

    def blank_count(self, question):
        return len(question.answer or [])

    def check_shape(self, value, question, option_order):
        if value is None:
            return
        if (not isinstance(value, list) or len(value) != self.blank_count(question)
                or not all(isinstance(v, str) and len(v) <= 500 for v in value)):
            raise _shape_error(_("填空题的答案应为每空一个字符串的数组（共 %(n)d 空）",
                                 n=self.blank_count(question)))

    def is_empty(self, value):
        return not value or not any((v or "").strip() for v in value)

    def grade(self, question, value, points, partial_credit=False):
        blanks = question.answer or []
        if not blanks or not value:
            return Decimal("0"), False
        right = sum(1 for given, alts in zip(value, blanks, strict=False)
                    if normalise_text(given) in {normalise_text(a) for a in alts})
        if right == len(blanks):
            return points, False
        return _round(points * right / len(blanks)), False

    def describe(self, question, value, option_order=None):
        if not value:
            return ""
        if value and isinstance(value[0], list):
            return "；".join("/".join(alts) for alts in value)
        return "；".join(v or "—" for v in value)


@register
class ShortAnswer(QuestionType):
    name = "short"
    label = _l("简答")

    def parse_answer(self, text, options, stem):
        return (text or "").strip()

    def format_answer(self, question):
        return question.answer or ""

    def check_shape(self, value, question, option_order):
        if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT):
            raise _shape_error(_("简答题的答案应为不超过 %(n)d 字的文本", n=MAX_TEXT))

    def is_empty(self, value):
        return value is None or not str(value).strip()

    def grade(self, question, value, points, partial_credit=False):
        if self.is_empty(value):
            return Decimal("0"), False
        return None, True
