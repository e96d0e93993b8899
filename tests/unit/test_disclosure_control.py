"""Disclosure control (issue 14): the NDTMS rule with secondary suppression.

The property test builds random cross-tabs with totals (zeros, small and large counts,
totals published or not, a derivable complement row) and checks by brute force, not by
the algorithm's own graph reasoning, that no hidden count and no derivable count of 1 to
4 can be worked out from what is published: for each such cell there is another whole-
number table, agreeing with every published cell and every sum, with every ``"*"`` at
least 1 and every unpublished count at least 0, in which that cell differs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.reports.disclosure import (
    HIDDEN,
    Table,
    exposed,
    publish,
    publish_rows,
    suppress,
)
from projections.reports.measures import GroupResult, MeasureResult

Cell = tuple[int, int]


def alternatives(table: Table) -> Iterator[dict[Cell, int]]:
    """Every whole-number table (as extended values) consistent with what ``table``
    publishes, each unknown interior cell within 1 of its true value. (The line sums'
    constraint matrix is totally unimodular and any change that keeps them splits into
    cycles that each move their cells by 1: a cell that can differ at all differs by 1 in
    some consistent table.)"""
    rows, cols = table.shape
    unknown = [(r, c) for r in range(rows) for c in range(cols) if not table.known((r, c))]
    choices = []
    for cell in unknown:
        true = table.value(cell)
        least = 1 if cell in table.hidden else 0
        choices.append(range(max(least, true - 1), true + 2))
    for values in itertools.product(*choices):
        cells = [list(row) for row in table.cells]
        for (r, c), v in zip(unknown, values, strict=True):
            cells[r][c] = v
        candidate = replace(table, cells=tuple(tuple(row) for row in cells))
        extended = {cell: candidate.value(cell) for cell in table.extended()}
        if all(extended[cell] == table.value(cell) for cell in table.extended()
               if table.known(cell)) and all(extended[cell] >= 1 for cell in table.hidden):
            yield extended


def recoverable(table: Table) -> list[Cell]:
    """The cells that need protection and take one value in every consistent table."""
    needing = [c for c in table.extended() if c in table.hidden
               or (table.derived(c) and 1 <= table.value(c) <= 4)]
    seen: dict[Cell, set[int]] = {c: set() for c in needing}
    for extended in alternatives(table):
        for cell in needing:
            seen[cell].add(extended[cell])
    return [c for c in needing if len(seen[c]) < 2]


counts = st.one_of(st.just(0), st.integers(1, 4), st.integers(5, 12))


@st.composite
def tables(draw: st.DrawFn) -> Table:
    rows = draw(st.integers(1, 3))
    cols = draw(st.integers(1, 3))
    cells = tuple(tuple(draw(counts) for _ in range(cols)) for _ in range(rows))
    derived = frozenset({rows - 1}) if rows > 1 and draw(st.booleans()) else frozenset()
    return Table(cells, row_totals=draw(st.booleans()), column_totals=draw(st.booleans()),
                 grand_total=draw(st.booleans()), derived_rows=derived)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_no_suppressed_cell_can_be_recovered_from_what_is_published(table: Table) -> None:
    done = suppress(table)
    assert done.cells == table.cells
    # primary: every published count from 1 to 4 is hidden; zeros are always shown
    for cell in done.extended():
        if done.published(cell) and 1 <= done.value(cell) <= 4:
            assert cell in done.hidden
        if done.value(cell) == 0:
            assert cell not in done.hidden
    # every line with a hidden cell has another unknown in it
    rows, cols = done.shape
    lines = [[(r, c) for c in range(cols + 1)] for r in range(rows + 1)]
    lines += [[(r, c) for r in range(rows + 1)] for c in range(cols + 1)]
    for line in lines:
        unknown = [cell for cell in line if not done.known(cell)]
        if any(cell in done.hidden for cell in line):
            assert len(unknown) >= 2, (done.shown(), line)
    # and, by brute force, nothing hidden can be worked out
    assert recoverable(done) == [], done.shown()
    assert exposed(done) == []


def test_two_ones_beside_a_published_total_are_not_enough() -> None:
    # 1 + 1 + 5 = 7: hiding the two 1s alone gives them away (a "*" is at least 1, so
    # two of them summing to 2 are both 1); the 5 must go too.
    done = suppress(Table(((1, 1, 5),), column_totals=False, grand_total=False))
    assert done.shown()[0] == [HIDDEN, HIDDEN, HIDDEN, 7]
    assert recoverable(done) == []


def test_secondary_suppression_hides_the_smallest_other_cell_of_the_line() -> None:
    done = suppress(Table(((3, 9, 6, 20),), column_totals=False, grand_total=False))
    assert done.shown()[0] == [HIDDEN, 9, HIDDEN, 20, 38]


def test_a_derivable_complement_of_one_to_four_is_protected() -> None:
    # numerators 10 and 7 of denominators 12 and 20: the 2 who did not (12 - 10) would
    # be derivable, so the 10 (or the 12) is hidden, and a partner to it.
    done = suppress(Table(((10, 7), (2, 13)), derived_rows=frozenset({1})))
    assert done.shown()[2][0] == 12 or (0, 0) in done.hidden or (2, 0) in done.hidden
    assert (0, 0) in done.hidden or (2, 0) in done.hidden
    assert recoverable(done) == []


def test_a_bridge_between_two_protected_blocks_is_protected_too() -> None:
    # Two 2x2 blocks of small counts, each protected by its own cycle, joined by one small
    # cell in row 0 and column 2: on no cycle of its own until more is hidden.
    cells = ((2, 3, 1, 0), (4, 2, 0, 0), (0, 0, 3, 2), (0, 0, 2, 4))
    done = suppress(Table(cells))
    assert exposed(done) == []


def test_zero_is_shown_and_large_counts_are_exact() -> None:
    done = suppress(Table(((0, 25, 40),), column_totals=False, grand_total=False))
    assert done.shown()[0] == [0, 25, 40, 65]


def _rate(measure: str, groups: dict[str, tuple[int, int]], denominator_of: str | None = None
          ) -> MeasureResult:
    num = sum(n for n, _ in groups.values())
    den = sum(d for _, d in groups.values())
    return MeasureResult(
        measure, "rate", round(100 * num / den, 1) if den else None, num, den,
        {g: GroupResult(round(100 * n / d, 1) if d else None, n, d)
         for g, (n, d) in groups.items()}, by="sex", denominator_of=denominator_of)


def _count(measure: str, groups: dict[str, int]) -> MeasureResult:
    return MeasureResult(measure, "count", sum(groups.values()), None, None,
                         {g: GroupResult(v) for g, v in groups.items()}, by="sex")


def test_a_figure_shared_by_two_measures_is_hidden_in_both() -> None:
    # in_treatment by sex is 3, 20, 9 (total 32). The rate's denominators are those same
    # clients; its numerators 1, 10, 4. The count hides 3 (primary) and 9 (secondary);
    # the rate must not show those denominators, nor the numerators 1 and 4.
    results = {
        "in_treatment": _count("in_treatment", {"female": 3, "male": 20, "unknown": 9}),
        "dual_diagnosis": _rate("dual_diagnosis", {"female": (1, 3), "male": (10, 20),
                                                   "unknown": (4, 9)},
                                denominator_of="in_treatment"),
    }
    public = publish(results, "public")
    assert public["in_treatment"] == {"value": 32, "groups": {"female": "*", "male": 20,
                                                              "unknown": "*"}}
    dual = public["dual_diagnosis"]
    assert dual["value"] == 46.9 and dual["numerator"] == 15 and dual["denominator"] == 32
    assert dual["groups"]["female"] == "*" and dual["groups"]["unknown"] == "*"
    internal = publish(results, "internal")
    assert internal["in_treatment"]["groups"] == {"female": 3, "male": 20, "unknown": 9}
    assert internal["dual_diagnosis"]["groups"] == {"female": 33.3, "male": 50.0,
                                                    "unknown": 44.4}


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="disclosure"):
        publish({}, "open")  # type: ignore[arg-type]


# -- several measures sharing figures --------------------------------------------------
Report = tuple[list[int], list[list[int]]]


@st.composite
def linked_reports(draw: st.DrawFn) -> Report:
    """Clients in treatment per group, and for one to three rates over them (as hepatitis C
    testing and dual diagnosis are) each group's numerator."""
    groups = draw(st.integers(2, 3))
    treated = [draw(counts) for _ in range(groups)]
    rates = [[draw(st.integers(0, d)) for d in treated] for _ in range(draw(st.integers(1, 3)))]
    return treated, rates


def _linked_results(report: Report) -> dict[str, MeasureResult]:
    treated, rates = report
    names = [f"g{i}" for i in range(len(treated))]
    results = {"in_treatment": _count("in_treatment", dict(zip(names, treated, strict=True)))}
    for k, numerators in enumerate(rates):
        results[f"rate{k}"] = _rate(f"rate{k}", {
            g: (n, d) for g, n, d in zip(names, numerators, treated, strict=True)},
            denominator_of="in_treatment")
    return results


def _window(shown: object, true: int, least: int) -> range:
    return range(true, true + 1) if shown != HIDDEN else range(max(least, true - 2), true + 3)


def _fits(shown: Mapping[tuple[str, str], Mapping[str, object]], measure: str, names: list[str],
          numerators: list[int], dens: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The numerators of a rate consistent with what is published, given denominators."""
    head = shown[(measure, "")]["numerator"]
    options = [_window(shown[(measure, g)]["numerator"], n, 1)
               for g, n in zip(names, numerators, strict=True)]
    return [nums for nums in itertools.product(*options)
            if all(n <= d for n, d in zip(nums, dens, strict=True))
            and (sum(nums) == head if head != HIDDEN else sum(nums) >= 1)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(linked_reports())
def test_figures_shared_between_measures_cannot_be_recovered_together(report: Report) -> None:
    # The attacker has every published row (the CSV's numerators and denominators by group)
    # and knows that the groups add up to the totals, that each rate's denominators are the
    # clients in treatment, that a numerator is at most its denominator, and that a "*" is
    # at least 1. Brute force over every consistent whole-number report near the true one:
    # each hidden figure, and each derivable complement of 1 to 4, must take two values.
    treated, rates = report
    rows = publish_rows(_linked_results(report), "public")
    shown = {(str(r["measure"]), str(r["group"])): r for r in rows}
    names = [f"g{i}" for i in range(len(treated))]
    total = shown[("in_treatment", "")]["value"]
    seen: dict[tuple[str, str], set[int]] = {}

    def note(measure: str, nums: tuple[int, ...], dens: tuple[int, ...]) -> None:
        seen.setdefault((measure, ""), set()).add(sum(nums))
        seen.setdefault((f"{measure}:not", ""), set()).add(sum(dens) - sum(nums))
        for g, n, d in zip(names, nums, dens, strict=True):
            seen.setdefault((measure, g), set()).add(n)
            seen.setdefault((f"{measure}:not", g), set()).add(d - n)

    den_choices = [_window(shown[("in_treatment", g)]["value"], d, 1)
                   for g, d in zip(names, treated, strict=True)]
    for dens in itertools.product(*den_choices):
        if sum(dens) != sum(treated) if total != HIDDEN else sum(dens) < 1:
            continue
        per_rate = [_fits(shown, f"rate{k}", names, numerators, dens)
                    for k, numerators in enumerate(rates)]
        if not all(per_rate):
            continue
        for g, d in zip(names, dens, strict=True):
            seen.setdefault(("in_treatment", g), set()).add(d)
        seen.setdefault(("in_treatment", ""), set()).add(sum(dens))
        for k, fits in enumerate(per_rate):
            for nums in fits:
                note(f"rate{k}", nums, dens)
    must_vary = [("in_treatment", g) for g in ["", *names]
                 if shown[("in_treatment", g)]["value"] == HIDDEN]
    for k, numerators in enumerate(rates):
        measure = f"rate{k}"
        for g, n, d in zip(["", *names], [sum(numerators), *numerators],
                           [sum(treated), *treated], strict=True):
            if shown[(measure, g)]["numerator"] == HIDDEN:
                must_vary.append((measure, g))
            if 1 <= d - n <= 4:
                must_vary.append((f"{measure}:not", g))
    pinned = [figure for figure in must_vary if len(seen.get(figure, set())) < 2]
    assert pinned == [], (report, rows)
