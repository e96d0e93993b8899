"""Bar charts drawn on the server as SVG, for the commissioners' reports.

No JavaScript and no chart library: a chart is a few rectangles and words, so the page
shows it as soon as it arrives, it prints, and it is the same for every browser. Each
chart is an image to assistive technology (``role="img"``) named by its ``<title>`` and
described by its ``<desc>``, which reads out every bar's figure; the page puts the same
numbers in a table beside it, so nobody needs the picture to get the figures.

A figure that disclosure control hides (``"*"``) or that there is nothing to compute
from has no bar: its row shows the mark the table shows, so a hidden count is never drawn
at some guessed length. Bars may be negative (a mean change): they grow left from zero.

Everything written into the SVG is escaped here (labels come from the record: an area's
name, a group), and only presentation attributes are used, never ``style`` (the pages'
Content-Security-Policy allows no inline styles).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

#: The NHS.UK palette: blue bars, the text colour, a grey for the zero line.
BAR = "#005eb8"
TEXT = "#212b32"
AXIS = "#4c6272"
FONT = "Frutiger W01, Arial, sans-serif"
#: The drawing's own units: about the width of half the page's column at full size, so
#: the text is drawn near its size in the page's own text.
WIDTH = 480
FONT_SIZE = 16
#: Each bar is a row: its label on a line, the bar below it.
LABEL_LINE = 22
BAR_HEIGHT = 22
ROW = LABEL_LINE + BAR_HEIGHT + 12
PAD = 6
#: Roughly how wide a character of the font is at FONT_SIZE (labels are cut to fit).
CHAR = 8.2
VALUE_SPACE = 64
LABEL_MAX = int(WIDTH / CHAR)


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its length (None: not drawn, hidden or nothing to show) and the
    figure as the table beside the chart shows it (``"*"`` for a hidden one)."""

    label: str
    value: float | None
    shown: str


def _label(text: str) -> str:
    return text if len(text) <= LABEL_MAX else text[:LABEL_MAX - 1] + "…"


def _safe_id(chart_id: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", chart_id)
    return cleaned if cleaned[:1].isalpha() else f"chart-{cleaned}"


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def bar_chart(bars: Sequence[Bar], *, title: str, description: str, chart_id: str) -> Markup:
    """A horizontal bar chart as an inline ``<svg>``, sized by its ``viewBox`` to the width
    of its container: each bar's label on a line, the bar below it, its figure at its end.
    ``description`` says what the bars measure; the figures of every bar follow it in the
    ``<desc>``."""
    ident = _safe_id(chart_id)
    drawn = [b.value for b in bars if b.value is not None]
    low, high = min([0.0, *drawn]), max([0.0, *drawn])
    span = (high - low) or 1.0
    left = VALUE_SPACE if low < 0 else 0
    right = WIDTH - VALUE_SPACE
    scale = (right - left) / span
    zero = left + (0 - low) * scale
    height = PAD * 2 + ROW * max(len(bars), 1)
    figures = "; ".join(f"{b.label}: {b.shown}" for b in bars)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="accord-chart" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" focusable="false" '
        f'aria-labelledby="{ident}-title" aria-describedby="{ident}-desc" '
        f'font-family="{escape(FONT)}" font-size="{FONT_SIZE}" fill="{TEXT}">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(description)} {escape(figures)}.</desc>',
    ]
    for i, bar in enumerate(bars):
        top = PAD + i * ROW
        bar_top = top + LABEL_LINE
        middle = bar_top + BAR_HEIGHT / 2
        parts.append(
            f'<text x="0" y="{_number(top + LABEL_LINE - 6)}">{escape(_label(bar.label))}</text>')
        parts.append(
            f'<line x1="{_number(zero)}" y1="{_number(bar_top - 3)}" x2="{_number(zero)}" '
            f'y2="{_number(bar_top + BAR_HEIGHT + 3)}" stroke="{AXIS}" stroke-width="1"/>')
        if bar.value is None:
            parts.append(
                f'<text x="{_number(zero + 4)}" y="{_number(middle)}" '
                f'dominant-baseline="middle">{escape(bar.shown)}</text>')
            continue
        end = zero + bar.value * scale
        x, length = min(zero, end), abs(end - zero)
        parts.append(
            f'<rect x="{_number(x)}" y="{_number(bar_top)}" '
            f'width="{_number(max(length, 1.0) if bar.value else 0)}" '
            f'height="{BAR_HEIGHT}" fill="{BAR}"/>')
        anchor, at = ("end", x - 4) if bar.value < 0 else ("start", end + 4)
        parts.append(
            f'<text x="{_number(at)}" y="{_number(middle)}" text-anchor="{anchor}" '
            f'dominant-baseline="middle">{escape(bar.shown)}</text>')
    parts.append("</svg>")
    # Every piece of text above went through escape(); the rest is numbers and constants.
    return Markup("".join(parts))  # noqa: S704
