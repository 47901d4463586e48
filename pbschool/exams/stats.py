"""Figures for the results pages: pass rate by branch, score distribution, per-question statistics
(facility and discrimination index, option frequencies — as Moodle's quiz statistics report)."""

import math
from collections import Counter, defaultdict

from flask_babel import gettext as _
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from pbschool.exams.models import Answer, AttemptQuestion
from pbschool.exams.qtypes import LETTERS
from pbschool.extensions import db

BINS = [(0, 10), (10, 20), (20, 30), (30, 40), (40, 50), (50, 60), (60, 70), (70, 80), (80, 90), (90, 101)]


def pass_rate_by_branch(attempts):
    """[(branch name, sat, passed, rate %)] for the attempts that count, plus a total row last."""
    groups = defaultdict(lambda: [0, 0])
    for a in attempts:
        if a.state != "submitted":
            continue
        name = a.user.branch.name if a.user.branch else "—"
        groups[name][0] += 1
        groups[name][1] += 1 if a.passed else 0
    rows = [(name, sat, passed, round(100 * passed / sat, 1) if sat else 0.0)
            for name, (sat, passed) in sorted(groups.items())]
    sat = sum(r[1] for r in rows)
    passed = sum(r[2] for r in rows)
    rows.append((_("合计"), sat, passed, round(100 * passed / sat, 1) if sat else 0.0))
    return rows


def distribution(attempts):
    """[(label, count)] of scores in percent bands."""
    counts = Counter()
    for a in attempts:
        pct = a.percent
        if pct is None:
            continue
        for low, high in BINS:
            if low <= pct < high:
                counts[(low, high)] += 1
                break
    return [(f"{low}–{min(high, 100)}", counts[(low, high)]) for low, high in BINS]


def bar_svg(rows, width=340, height=160):
    """A small bar chart as inline SVG (labels under the bars, counts above)."""
    top = max((c for _label, c in rows), default=0) or 1
    n = len(rows)
    slot = width / n
    head = 14  # room above the tallest bar for its count, so every label stays inside the picture
    parts = [f'<svg class="chart" viewBox="0 0 {width} {head + height + 34}" role="img" '
             f'aria-label="{escape(_("成绩分布"))}">']
    base = head + height
    for i, (label, count) in enumerate(rows):
        h = round(height * count / top)
        x = round(i * slot + 3, 1)
        w = round(slot - 6, 1)
        parts.append(f'<rect x="{x}" y="{base - h}" width="{w}" height="{h}" fill="#c8161d" rx="2"></rect>')
        parts.append(f'<text x="{x + w / 2}" y="{base - h - 3}" text-anchor="middle" font-size="10">{count}</text>')
        parts.append(f'<text x="{x + w / 2}" y="{base + 14}" text-anchor="middle" font-size="8">'
                     f'{escape(label)}</text>')
    parts.append(f'<text x="{width / 2}" y="{base + 30}" text-anchor="middle" font-size="10">'
                 f'{escape(_("得分率（%）"))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (numbers and escaped labels only)


def _pearson(xs, ys):
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def question_stats(attempts):
    """Per question: times drawn, facility % (mean score share), discrimination index (correlation of
    the question's score with the rest of the paper, ×100) and how often each option was chosen."""
    graded = [a for a in attempts if a.state != "in_progress" and not a.is_preview]
    if not graded:
        return []
    ids = [a.id for a in graded]
    totals = {a.id: (float(a.score or 0), float(a.max_score or 0)) for a in graded}
    slots = db.session.scalars(select(AttemptQuestion).where(AttemptQuestion.attempt_id.in_(ids))
                               .options(selectinload(AttemptQuestion.version))).all()
    answers = {(x.attempt_id, x.question_id): x.value for x in db.session.scalars(
        select(Answer).where(Answer.attempt_id.in_(ids)))}
    # One row per version members were shown: a question edited while the exam ran has two rows,
    # each with what its members read and chose.
    by_version = defaultdict(list)
    for slot in slots:
        by_version[(slot.question_id, slot.version_id)].append(slot)
    numbers = Counter(qid for qid, _v in by_version)
    rows = []
    for (qid, _vid), group in by_version.items():
        q = group[0].shown
        item, rest = [], []
        options = Counter()
        for slot in group:
            points = float(slot.points)
            score = float(slot.score or 0)
            total, maximum = totals[slot.attempt_id]
            item.append(score / points if points else 0)
            rest.append((total - score) / (maximum - points) if maximum - points else 0)
            value = answers.get((slot.attempt_id, qid))
            if q.type in ("single", "multiple"):
                for key in (value if isinstance(value, list) else [value] if value else []):
                    options[key] += 1
            elif q.type == "truefalse" and value is not None:
                options["对" if value else "错"] += 1
        r = _pearson(item, rest)
        keys = list(LETTERS[: len(q.options or [])]) if q.type in ("single", "multiple") else \
            (["对", "错"] if q.type == "truefalse" else [])
        rows.append({"question": q, "question_id": qid, "n": len(group),
                     "version": getattr(q, "number", None) if numbers[qid] > 1 else None,
                     "facility": round(100 * sum(item) / len(item), 1),
                     "discrimination": None if r is None else round(100 * r, 1),
                     "options": [(k, options[k], round(100 * options[k] / len(group), 1)) for k in keys]})
    rows.sort(key=lambda row: (row["question_id"], row["version"] or 0))
    return rows
