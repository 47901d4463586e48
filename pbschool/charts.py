"""Charts drawn on the server as inline SVG: lines for months, bars for branches. No script and no
outside asset, so they show on a weak signal and under a strict CSP; every label stays inside the
picture and the month labels are short enough for twelve of them at 375 px."""

from flask_babel import gettext as _
from markupsafe import Markup, escape

RED = "#c8161d"
GRID = "#dddddd"
INK = "#555555"


def _num(value):
    return float(value or 0)


def _fmt(value):
    value = float(value)
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def month_label(period):
    """'2026-03' as a short axis label: the month's number, its year under January and the first."""
    return str(int(period[5:7]))


def line_svg(periods, values, title, unit="", width=340, height=180):
    """A line chart of one value per month (``periods`` as 'YYYY-MM'), its peak and zero on the axis.
    A month without a value (None: no exam sat, say) is a gap, not a zero."""
    left, right, top, bottom = 36, 10, 12, 38
    plot_w, plot_h = width - left - right, height - top - bottom
    nums = [None if v is None else _num(v) for v in values]
    known = [v for v in nums if v is not None]
    peak = max(known + [0]) or 1
    n = max(len(nums), 1)
    step = plot_w / max(n - 1, 1)

    def x(i):
        return round(left + (i * step if n > 1 else plot_w / 2), 1)

    def y(v):
        return round(top + plot_h - plot_h * max(v, 0) / peak, 1)

    parts = [f'<svg class="chart line-chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for v in (0, peak / 2, peak):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v)}" y2="{y(v)}" stroke="{GRID}" '
                     f'stroke-width="1"></line>')
        parts.append(f'<text x="{left - 5}" y="{y(v) + 4}" text-anchor="end" font-size="11" fill="{INK}">'
                     f'{_fmt(v)}</text>')
    run = []
    for i, v in enumerate(nums + [None]):
        if v is not None:
            run.append(f"{x(i)},{y(v)}")
            continue
        if len(run) > 1:
            parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{RED}" '
                         f'stroke-width="2.5"></polyline>')
        run = []
    for i, (period, v) in enumerate(zip(periods, nums, strict=True)):
        if v is not None:
            parts.append(f'<circle cx="{x(i)}" cy="{y(v)}" r="3.5" fill="{RED}"><title>{escape(period)}: '
                         f'{_fmt(v)}{escape(unit)}</title></circle>')
        parts.append(f'<text x="{x(i)}" y="{top + plot_h + 15}" text-anchor="middle" font-size="11" '
                     f'fill="{INK}">{month_label(period)}</text>')
        if i == 0 or period.endswith("-01"):
            parts.append(f'<text x="{x(i)}" y="{top + plot_h + 28}" text-anchor="middle" font-size="10" '
                         f'fill="{INK}">{escape(period[:4])}</text>')
    if not known:
        parts.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" font-size="12" '
                     f'fill="{INK}">{escape(_("暂无数据"))}</text>')
    parts.append(f'<text x="{width - right}" y="{height - 2}" text-anchor="end" font-size="10" fill="{INK}">'
                 f'{escape(_("月份"))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (numbers and escaped labels only)


def bars_svg(rows, title, unit="", width=340):
    """Horizontal bars, one per (name, value) — a branch's name above its bar, the value at its end,
    inside the picture however long the bar. No value (None) is a dash, not a zero bar."""
    row_h, pad_right = 40, 52
    nums = [(str(name), None if value is None else _num(value)) for name, value in rows]
    peak = max([v for _n, v in nums if v is not None] + [0]) or 1
    height = row_h * max(len(nums), 1) + 4
    track = width - pad_right
    parts = [f'<svg class="chart bar-chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for i, (name, v) in enumerate(nums):
        top = i * row_h
        parts.append(f'<text x="0" y="{top + 13}" font-size="12" fill="{INK}">{escape(name[:24])}</text>')
        w = 0 if v is None else round(track * max(v, 0) / peak, 1)
        parts.append(f'<rect x="0" y="{top + 19}" width="{track}" height="14" fill="#f1f1f1" rx="3"></rect>')
        parts.append(f'<rect x="0" y="{top + 19}" width="{w}" height="14" fill="{RED}" rx="3"></rect>')
        label = "—" if v is None else f"{_fmt(v)}{unit}"
        parts.append(f'<text x="{width}" y="{top + 31}" text-anchor="end" font-size="12" fill="{INK}">'
                     f'{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (numbers and escaped labels only)
