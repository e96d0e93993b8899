"""The server-drawn SVG bar charts (api.ui.charts): an image with a title and a
description naming every figure, text escaped, hidden figures never drawn, negative bars
growing left from zero, and no inline style (the pages' CSP forbids it)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from api.ui.charts import WIDTH, Bar, bar_chart

SVG = "{http://www.w3.org/2000/svg}"


def parsed(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def rects(chart: ET.Element) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in r.attrib.items() if k in ("x", "width")}
            for r in chart.iter(f"{SVG}rect")]


def test_a_chart_is_an_image_named_by_its_title_and_described_with_every_figure() -> None:
    chart = bar_chart([Bar("Female", 71, "71"), Bar("Male", None, "*")],
                      title="Clients in treatment by sex", description="Clients, by sex.",
                      chart_id="chart-in_treatment")
    svg = parsed(chart)
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "chart-in_treatment-title"
    assert svg.get("aria-describedby") == "chart-in_treatment-desc"
    title = svg.find(f"{SVG}title")
    desc = svg.find(f"{SVG}desc")
    assert title is not None and title.get("id") == "chart-in_treatment-title"
    assert title.text == "Clients in treatment by sex"
    assert desc is not None and desc.text == "Clients, by sex. Female: 71; Male: *."
    assert "style" not in chart


def test_a_hidden_or_missing_figure_has_no_bar_only_its_mark() -> None:
    svg = parsed(bar_chart([Bar("A", 10, "10"), Bar("B", None, "*"), Bar("C", None, "\u2013")],
                           title="t", description="d", chart_id="c"))
    assert len(rects(svg)) == 1
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert texts == ["A", "10", "B", "*", "C", "\u2013"]


def test_bars_are_in_proportion_and_negative_ones_grow_left_from_zero() -> None:
    positive = rects(parsed(bar_chart([Bar("a", 10, "10"), Bar("b", 5, "5")],
                                      title="t", description="d", chart_id="c")))
    assert positive[0]["width"] == pytest.approx(2 * positive[1]["width"], abs=0.2)
    assert positive[0]["x"] == positive[1]["x"]
    mixed = rects(parsed(bar_chart([Bar("up", 2, "+2.0"), Bar("down", -4, "-4.0")],
                                   title="t", description="d", chart_id="c")))
    up, down = mixed
    assert down["x"] + down["width"] == pytest.approx(up["x"], abs=0.2)  # both meet at 0
    assert down["width"] == pytest.approx(2 * up["width"], abs=0.2)
    assert all(r["x"] >= 0 and r["x"] + r["width"] <= WIDTH for r in mixed)


def test_every_word_is_escaped_and_ids_are_made_safe() -> None:
    chart = bar_chart([Bar('<script>alert("x")</script>', 1, "<b>1</b>")],
                      title="A & B <i>", description='"quoted" & <desc>',
                      chart_id='bad id"><script>')
    assert "<script>" not in chart and "<b>" not in chart and "<i>" not in chart
    svg = parsed(chart)  # still well-formed
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*-title", svg.get("aria-labelledby") or "")
    title = svg.find(f"{SVG}title")
    assert title is not None and title.text == "A & B <i>"


def test_a_long_label_is_cut_to_fit_and_the_description_keeps_it_whole() -> None:
    label = "Successful completions not re-presenting within six months (PHOF C19)"
    svg = parsed(bar_chart([Bar(label, 1, "1")], title="t", description="d", chart_id="c"))
    shown = next(svg.iter(f"{SVG}text")).text or ""
    assert shown.endswith("…") and len(shown) < len(label)
    desc = svg.find(f"{SVG}desc")
    assert desc is not None and label in (desc.text or "")
