"""Disclosure control: what may be published of a report, under which policy.

Two policies. ``internal`` publishes exact figures (for the partnership's own
commissioner; the read is recorded by the caller). ``public`` follows the NDTMS rule: a
count from 1 to 4 is shown as ``"*"`` (zero is shown), and further counts are hidden
(secondary suppression) so that no hidden count can be worked out from what is published;
a rate, mean or share whose numerator or denominator is hidden is hidden.

**What an attacker is assumed to know.** Every published figure; that each line of a table
adds up (a row's cells to its total, a column's cells to its total, the totals to the grand
total); that counts are whole numbers, that an unpublished count is at least 0 and that a
``"*"`` is at least 1 (zero is always shown). A rate's numerator and denominator give its
complement (the denominator less the numerator: e.g. the clients who did *not* complete),
so the complement is a row of the table too, never published, and a complement of 1 to 4
may not be derivable either. A hidden figure is *recoverable* when every assignment of the
unknowns that meets these constraints gives it the same value; a suppression is sound when
none is.

**The algorithm** (``suppress``). A table with its totals is an (R+1) x (C+1) array in
which every line sums to zero once the totals are negated, so the unknowns (hidden,
derived and unpublished cells) are the edges of a bipartite graph between lines, and a
change to the unknowns that keeps every line's sum is a circulation on it. A cell is not
recoverable exactly when it lies on a cycle of unknowns that can be pushed one way or the
other without taking a cell below its bound: a hidden 1, or an unpublished 0, can only go
up. Primary suppression hides the published counts 1 to 4; then, while some hidden cell
(or derivable complement of 1 to 4) lies on no such cycle, the cheapest path that closes
one is found (Dijkstra: unknowns cost nothing, a published cell its value, a total far
more, so small interior cells are hidden first and totals last) and its cells are hidden.
Hiding only ever adds cycles, so this ends. Zeros are never hidden.

**Several tables** (``publish``). A measure is one table: a count is one row of groups
with its total; a rate is the numerator row and its complement row, whose column totals
are the denominators; a mean's is the row of its denominators; a share's the row of its
counts. Figures that are the same numbers in several measures (a rate's denominator that
is another measure's count, the totals) are suppressed alike: the tables are suppressed
until no table hides a figure that another still shows. The totals are settled first on
their own (as a report without groups would publish them) and then kept as they are in
every grouping, so that asking for another grouping cannot uncover a group by difference.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from projections.reports.measures import GroupResult, MeasureResult

HIDDEN = "*"
#: NDTMS: counts from 1 to this are never published.
SMALL = 4
Policy = Literal["internal", "public"]
POLICIES: tuple[Policy, ...] = ("internal", "public")
Cell = tuple[int, int]
#: What hiding a total costs beside hiding an interior cell (totals go last).
_TOTAL_COST = 10**6
_LOCKED_COST = 10**9


def small(value: int) -> bool:
    return 1 <= value <= SMALL


@dataclass(frozen=True)
class Table:
    """A cross-tab of counts with its totals, and what of it is hidden.

    ``cells`` is R x C; in the extended coordinates used for ``hidden`` and ``locked``,
    ``(r, C)`` is row r's total, ``(R, c)`` column c's total and ``(R, C)`` the grand
    total. ``row_totals``, ``column_totals`` and ``grand_total`` say which totals are
    published; ``derived_rows`` are rows that are never published but can be worked out
    (a rate's complement): they and their totals must not give away a count of 1 to 4.
    ``locked`` cells are decided elsewhere: secondary suppression hides them only when
    nothing else protects a cell. ``fixed`` cells are figures this table shares with
    others (see ``publish``): they may be hidden, but this table's own protection treats
    them as known and never protects them, since moving them would have to be matched in
    every table that shows them; their protection is checked across the tables."""

    cells: tuple[tuple[int, ...], ...]
    row_totals: bool = True
    column_totals: bool = True
    grand_total: bool = True
    derived_rows: frozenset[int] = frozenset()
    hidden: frozenset[Cell] = frozenset()
    locked: frozenset[Cell] = frozenset()
    fixed: frozenset[Cell] = frozenset()

    def __post_init__(self) -> None:
        widths = {len(row) for row in self.cells}
        if len(widths) > 1:
            raise ValueError("every row of a table has the same number of cells")
        if any(v < 0 for row in self.cells for v in row):
            raise ValueError("counts are never negative")

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.cells), len(self.cells[0]) if self.cells else 0

    def value(self, cell: Cell) -> int:
        rows, cols = self.shape
        r, c = cell
        if r < rows and c < cols:
            return self.cells[r][c]
        if r < rows:
            return sum(self.cells[r])
        if c < cols:
            return sum(row[c] for row in self.cells)
        return sum(sum(row) for row in self.cells)

    def extended(self) -> list[Cell]:
        rows, cols = self.shape
        return [(r, c) for r in range(rows + 1) for c in range(cols + 1)]

    def derived(self, cell: Cell) -> bool:
        return cell[0] in self.derived_rows

    def published(self, cell: Cell) -> bool:
        """Shown unless hidden (interior cells of published rows, and the totals the table
        says are published)."""
        rows, cols = self.shape
        r, c = cell
        if self.derived(cell):
            return False
        if r < rows and c < cols:
            return True
        if r < rows:
            return self.row_totals
        if c < cols:
            return self.column_totals
        return self.grand_total

    def known(self, cell: Cell) -> bool:
        """A fixed value as far as this table's own protection goes."""
        return self.published(cell) and (cell not in self.hidden or cell in self.fixed)

    def needs_protection(self, cell: Cell) -> bool:
        """Hidden, or a derivable count of 1 to 4 (and not fixed)."""
        if cell in self.fixed:
            return False
        return cell in self.hidden or (self.derived(cell) and small(self.value(cell)))

    def candidate(self, cell: Cell) -> bool:
        """A cell secondary suppression may hide: shown, not zero, not fixed."""
        return (self.published(cell) and cell not in self.hidden and cell not in self.fixed
                and self.value(cell) > 0)

    def shown(self) -> list[list[int | str | None]]:
        """The extended table as published: ``"*"`` hidden, None not published."""
        rows, cols = self.shape
        return [[(HIDDEN if (r, c) in self.hidden else self.value((r, c)))
                 if self.published((r, c)) else None for c in range(cols + 1)]
                for r in range(rows + 1)]


# -- the graph of unknowns -------------------------------------------------------------
def _vertices(table: Table, cell: Cell) -> tuple[int, int]:
    """A cell joins its row's line and its column's line."""
    rows, _ = table.shape
    return cell[0], rows + 1 + cell[1]


def _arcs(table: Table, cell: Cell, lower: int) -> list[tuple[int, int]]:
    """The directions an unknown cell can move in: up always, down if above its bound.
    With the totals negated a cell's rise is a flow row→column, or column→row for a
    total (one negated line), so a cycle of arcs is a change that keeps every sum."""
    rows, cols = table.shape
    row, col = _vertices(table, cell)
    negated = (cell[0] == rows) != (cell[1] == cols)
    up = (col, row) if negated else (row, col)
    down = (up[1], up[0])
    return [up, down] if table.value(cell) > lower else [up]


def _lower(table: Table, cell: Cell) -> int:
    return 1 if cell in table.hidden else 0


def _unknown_arcs(table: Table, without: Cell) -> dict[int, list[int]]:
    graph: dict[int, list[int]] = {}
    for cell in table.extended():
        if cell == without or table.known(cell):
            continue
        for tail, head in _arcs(table, cell, _lower(table, cell)):
            graph.setdefault(tail, []).append(head)
    return graph


def _reaches(graph: Mapping[int, list[int]], start: int, goal: int) -> bool:
    seen, stack = {start}, [start]
    while stack:
        here = stack.pop()
        if here == goal:
            return True
        for nxt in graph.get(here, ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False


def protected(table: Table, cell: Cell) -> bool:
    """Whether a cell's value cannot be worked out from the rest of the table: it lies on
    a cycle of unknowns that can move (see the module docstring)."""
    graph = _unknown_arcs(table, cell)
    return any(_reaches(graph, head, tail)
               for tail, head in _arcs(table, cell, _lower(table, cell)))


def exposed(table: Table) -> list[Cell]:
    """The cells that need protection and lack it, in table order."""
    return [c for c in table.extended() if table.needs_protection(c) and not protected(table, c)]


def _cost(table: Table, cell: Cell) -> int:
    rows, cols = table.shape
    cost = table.value(cell)
    if cell[0] == rows or cell[1] == cols:
        cost += _TOTAL_COST
    if cell in table.locked:
        cost += _LOCKED_COST
    return cost


def _cheapest_cover(table: Table, cell: Cell) -> list[Cell] | None:
    """The published cells to hide so that ``cell`` lies on a movable cycle, cheapest
    first; None when no cells can."""
    graph: dict[int, list[tuple[int, int, Cell | None]]] = {}
    for other in table.extended():
        if other == cell:
            continue
        if not table.known(other):
            for tail, head in _arcs(table, other, _lower(table, other)):
                graph.setdefault(tail, []).append((head, 0, None))
        elif table.candidate(other):  # once hidden it can move both ways (it is 5 or more)
            a, b = _vertices(table, other)
            cost = _cost(table, other)
            graph.setdefault(a, []).append((b, cost, other))
            graph.setdefault(b, []).append((a, cost, other))
    best: tuple[int, list[Cell]] | None = None
    for tail, head in _arcs(table, cell, _lower(table, cell)):
        found = _dijkstra(graph, head, tail)
        if found is not None and (best is None or found[0] < best[0]):
            best = found
    return best[1] if best is not None else None


def _dijkstra(graph: Mapping[int, list[tuple[int, int, Cell | None]]], start: int,
              goal: int) -> tuple[int, list[Cell]] | None:
    queue: list[tuple[int, int, tuple[Cell, ...]]] = [(0, start, ())]
    done: set[int] = set()
    while queue:
        cost, here, path = heapq.heappop(queue)
        if here == goal:
            return cost, list(path)
        if here in done:
            continue
        done.add(here)
        for nxt, step, cell in graph.get(here, ()):
            if nxt not in done:
                heapq.heappush(queue, (cost + step, nxt, path + ((cell,) if cell else ())))
    return None


def suppress(table: Table) -> Table:
    """The table with primary and secondary suppression applied (``hidden`` grows; cells
    already hidden stay hidden). After it, no hidden cell and no derivable count of 1 to 4
    can be worked out from the published cells and the table's sums."""
    hidden = set(table.hidden)
    hidden |= {c for c in table.extended() if table.published(c) and small(table.value(c))}
    table = replace(table, hidden=frozenset(hidden))
    while True:
        open_cells = exposed(table)
        if not open_cells:
            return table
        cover = _cheapest_cover(table, open_cells[0])
        if not cover:  # cannot happen with every line summed (see tests); hide it all
            cover = [c for c in table.extended() if table.candidate(c)]
            if not cover:
                return table
        table = replace(table, hidden=table.hidden | frozenset(cover))


# -- a report's tables -----------------------------------------------------------------
Figure = tuple[str, str | None, str | None]  # (population, grouping, group); group None = total


@dataclass
class _Layout:
    """One measure as a table: which figure each extended cell is."""

    measure: str
    table: Table
    figures: dict[Cell, Figure] = field(default_factory=dict)


def _populations(result: MeasureResult) -> tuple[str, str | None]:
    """The populations a measure's figures count: its numerator's (or count's) and its
    denominator's."""
    if result.kind == "count":
        return result.measure, None
    if result.kind == "share":
        return "in_treatment", "in_treatment"
    if result.kind == "mean":
        return result.measure, result.denominator_of or f"{result.measure}:denominator"
    return result.measure, result.denominator_of or f"{result.measure}:denominator"


def _layout(result: MeasureResult, grouped: bool) -> _Layout | None:
    """The measure's table: with its groups, or (``grouped`` False) its totals alone."""
    numerator, denominator = _populations(result)
    by = result.by if grouped else None
    groups = list(result.groups or {}) if grouped else []
    if grouped and not groups:
        return None
    figures: dict[Cell, Figure] = {}

    def group(g: str) -> GroupResult:
        assert result.groups is not None
        return result.groups[g]

    total = GroupResult(result.value, result.numerator, result.denominator)
    columns = [group(g) for g in groups] + [total]
    names: list[str | None] = [*groups, None]
    width = len(columns) - 1
    if result.kind == "rate":
        if result.denominator is None:
            return None
        nums = [c.numerator or 0 for c in columns]
        dens = [c.denominator or 0 for c in columns]
        if grouped:
            cells = ((*nums[:-1],), tuple(d - n for n, d in zip(nums[:-1], dens[:-1],
                                                                strict=True)))
        else:
            cells = ((nums[-1],), (dens[-1] - nums[-1],))
            width = 1
        # without groups the row totals and the grand total would repeat the cells
        table = Table(cells, row_totals=grouped, grand_total=grouped,
                      derived_rows=frozenset({1}))
        for c, name in enumerate(names[:width] if grouped else [None]):
            figures[(0, c)] = (numerator, by, name)
            figures[(1, c)] = (f"{numerator}:not", by, name)
            figures[(2, c)] = (denominator or "", by, name)
        if grouped:
            figures[(0, width)] = (numerator, None, None)
            figures[(1, width)] = (f"{numerator}:not", None, None)
            figures[(2, width)] = (denominator or "", None, None)
        return _Layout(result.measure, table, figures)
    population = denominator if result.kind == "mean" else numerator
    assert population is not None
    if result.kind == "count":
        counts = [int(c.value or 0) for c in columns]
    elif result.kind == "mean":
        counts = [c.denominator or 0 for c in columns]
    else:  # share: the groups' counts, and the whole
        counts = [c.numerator or 0 for c in columns]
    if grouped:
        table = Table((tuple(counts[:-1]),), row_totals=True, column_totals=False,
                      grand_total=False)
        for c, name in enumerate(groups):
            figures[(0, c)] = (population, by, name)
        figures[(0, width)] = (population, None, None)
    else:
        table = Table(((counts[-1],),), row_totals=False, column_totals=False, grand_total=False)
        figures[(0, 0)] = (population, None, None)
    return _Layout(result.measure, table, figures)


Line = tuple[str, str | None]  # (population, grouping): a row of figures with its total
_TOTAL = "<total>"  # the end of a line that no figure names (a total repeating its cell)


def _rows(layout: _Layout) -> dict[int, Line]:
    """Which line each row of a measure's table is."""
    rows: dict[int, Line] = {}
    for (r, _), (population, by, _) in layout.figures.items():
        rows.setdefault(r, (population, by))
    return rows


def _shared(layouts: list[_Layout]) -> dict[Line, list[tuple[_Layout, int]]]:
    """The lines shown in more than one table, and where."""
    holders: dict[Line, list[tuple[_Layout, int]]] = {}
    for layout in layouts:
        for row, line in _rows(layout).items():
            holders.setdefault(line, []).append((layout, row))
    return {line: held for line, held in holders.items() if len(held) > 1}


def _settle(layouts: list[_Layout], hidden: set[Figure], locked: set[Figure]) -> None:
    """Suppresses every table until they agree: a figure hidden in one is hidden in all
    (``hidden`` grows in place). Rows shared with other tables are fixed in each table:
    ``_protect_shared`` sees to them."""
    shared = _shared(layouts)
    changed = True
    while changed:
        changed = False
        for layout in layouts:
            table = layout.table
            _, cols = table.shape
            fixed = frozenset((row, c) for held in shared.values() for lay, row in held
                              if lay is layout for c in range(cols + 1))
            pre = frozenset(cell for cell, fig in layout.figures.items()
                            if fig in hidden and table.published(cell))
            lock = frozenset(cell for cell, fig in layout.figures.items() if fig in locked)
            done = suppress(replace(table, hidden=table.hidden | pre, locked=lock, fixed=fixed))
            layout.table = done
            for cell in done.hidden:
                fig = layout.figures.get(cell)
                if fig is not None and fig not in hidden:
                    hidden.add(fig)
                    changed = True


def _ends(layout: _Layout, row: int) -> dict[Figure | str, Cell]:
    """A shared line's cells in one table, by figure (and its unnamed total, if any)."""
    _, cols = layout.table.shape
    ends: dict[Figure | str, Cell] = {fig: cell for cell, fig in layout.figures.items()
                                      if cell[0] == row}
    if (row, cols) not in ends.values():
        ends[_TOTAL] = (row, cols)
    return ends


def _closing_cost(layout: _Layout, row: int, x: Cell, sx: int, y: Cell, sy: int,
                  shared_rows: set[int]) -> tuple[int, list[Cell]] | None:
    """What it costs to let ``x`` move by ``sx`` and ``y`` by ``sy`` in this table
    without moving any other shared row: the cheapest path of this table's own unknowns
    (and of cells to hide) that closes the cycle through them; None if nothing can."""
    table = layout.table
    arcs = []
    for cell, sign in ((x, sx), (y, sy)):
        moves = _arcs(table, cell, _lower(table, cell))
        if sign < 0 and len(moves) < 2:
            return None  # at its bound: it cannot go down
        arcs.append(moves[0] if sign > 0 else moves[1])
    entering = [a for a in arcs if a[1] == row]
    leaving = [a for a in arcs if a[0] == row]
    if len(entering) != 1 or len(leaving) != 1:
        return None
    graph: dict[int, list[tuple[int, int, Cell | None]]] = {}
    for other in table.extended():
        if other in (x, y) or other[0] in shared_rows:
            continue
        if not table.published(other) or other in table.hidden:
            for tail, head in _arcs(table, other, _lower(table, other)):
                graph.setdefault(tail, []).append((head, 0, None))
        elif table.candidate(other):
            a, b = _vertices(table, other)
            cost = _cost(table, other)
            graph.setdefault(a, []).append((b, cost, other))
            graph.setdefault(b, []).append((a, cost, other))
    return _dijkstra(graph, leaving[0][1], entering[0][0])


def _protect_shared(layouts: list[_Layout], hidden: set[Figure], locked: set[Figure]) -> bool:
    """A figure hidden in a line that several tables show (the clients in treatment, as
    a count and as the denominators of rates) is safe when it can move together with
    another unknown of its line (or its total) in every one of those tables at once, each
    table making up the change in its own rows. Finds the first that cannot, hides what
    lets it (the cheapest way, or else another cell of its line), and says whether it did.
    """
    shared = _shared(layouts)
    rows_of = {id(layout): {row for held in shared.values() for lay, row in held
                            if lay is layout} for layout in layouts}
    for held in shared.values():
        ends = [_ends(layout, row) for layout, row in held]
        names = [n for n in ends[0] if all(n in e for e in ends)]
        unknown = [n for n in names if n == _TOTAL or n in hidden]
        for x in unknown:
            if x == _TOTAL:
                continue
            best: tuple[int, list[tuple[_Layout, Cell]]] | None = None
            for y in unknown:
                if y == x:
                    continue
                for sx in (1, -1):
                    total: tuple[int, list[tuple[_Layout, Cell]]] | None = (0, [])
                    for (layout, row), e in zip(held, ends, strict=True):
                        _, cols = layout.table.shape
                        across = (e[x][1] == cols) != (e[y][1] == cols)
                        found = _closing_cost(layout, row, e[x], sx, e[y],
                                              sx if across else -sx, rows_of[id(layout)])
                        if found is None or total is None:
                            total = None
                            break
                        total = (total[0] + found[0],
                                 total[1] + [(layout, cell) for cell in found[1]])
                    if total is not None and (best is None or total[0] < best[0]):
                        best = total
            if best is not None and best[0] == 0:
                continue
            if best is not None:
                added = {layout.figures[cell] for layout, cell in best[1]
                         if cell in layout.figures}
                if added - hidden:
                    hidden |= added
                    return True
            # no partner will do: hide the smallest other shown cell of the line
            layout, row = held[0]
            partners = sorted(
                (layout.table.value(cell), cell[1], fig) for fig, cell in ends[0].items()
                if isinstance(fig, tuple) and fig not in hidden and fig not in locked
                and layout.table.value(cell) > 0)
            if partners:
                hidden.add(partners[0][2])
                return True
    return False


def _suppress_report(layouts: list[_Layout], hidden: set[Figure], locked: set[Figure]) -> None:
    while True:
        _settle(layouts, hidden, locked)
        if not _protect_shared(layouts, hidden, locked):
            return


def hidden_figures(results: Mapping[str, MeasureResult]) -> set[Figure]:
    """Every figure the public policy hides in these results."""
    hidden: set[Figure] = set()
    totals = [t for r in results.values() if (t := _layout(r, grouped=False)) is not None]
    _suppress_report(totals, hidden, set())
    grouped = [t for r in results.values() if r.groups and (t := _layout(r, grouped=True))]
    if grouped:
        locked = {fig for layout in totals for fig in layout.figures.values()}
        _suppress_report(grouped, hidden, locked)
    return hidden


# -- publishing ------------------------------------------------------------------------
Shown = int | float | str | None


@dataclass(frozen=True)
class PublishedFigures:
    """One measure's figures as published: exact, None, or ``"*"``."""

    value: Shown
    numerator: Shown = None
    denominator: Shown = None


def _published(result: MeasureResult, figures: GroupResult, group: str | None,
               hidden: set[Figure]) -> PublishedFigures:
    numerator, denominator = _populations(result)
    by = result.by if group is not None else None
    num_hidden = (numerator, by, group) in hidden
    if result.kind == "share":
        den_hidden = (numerator, None, None) in hidden
    else:
        den_hidden = denominator is not None and (denominator, by, group) in hidden
    if result.kind == "count":
        return PublishedFigures(HIDDEN if num_hidden else figures.value)
    if result.kind == "mean":
        return PublishedFigures(HIDDEN if den_hidden else figures.value, None,
                                HIDDEN if den_hidden else figures.denominator)
    return PublishedFigures(
        HIDDEN if num_hidden or den_hidden else figures.value,
        HIDDEN if num_hidden else figures.numerator,
        HIDDEN if den_hidden else figures.denominator,
    )


def disclose(results: Mapping[str, MeasureResult], policy: Policy
             ) -> dict[str, tuple[PublishedFigures, dict[str, PublishedFigures] | None]]:
    """Each measure's published totals and groups under the policy."""
    if policy not in POLICIES:
        raise ValueError(f"disclosure must be one of {', '.join(POLICIES)}")
    hidden = hidden_figures(results) if policy == "public" else set()
    out: dict[str, tuple[PublishedFigures, dict[str, PublishedFigures] | None]] = {}
    for mid, result in results.items():
        total = _published(
            result, GroupResult(result.value, result.numerator, result.denominator), None,
            hidden)
        groups = None
        if result.groups is not None:
            groups = {g: _published(result, fig, g, hidden) for g, fig in result.groups.items()}
        out[mid] = (total, groups)
    return out


def _json(result: MeasureResult, figures: PublishedFigures) -> dict[str, Any]:
    shaped: dict[str, Any] = {"value": figures.value}
    if result.kind in ("rate", "share"):
        shaped["numerator"] = figures.numerator
    if result.kind != "count":
        shaped["denominator"] = figures.denominator
    return shaped


def publish(results: Mapping[str, MeasureResult], policy: Policy) -> dict[str, Any]:
    """The API's ``measures`` object: ``{ID: {"value", "numerator"?, "denominator"?,
    "groups"?: {GROUP: value}, "population_share"?: {GROUP: per cent}}}``; a hidden figure
    is the string ``"*"``, a rate or mean with nothing to divide by is null."""
    out: dict[str, Any] = {}
    for mid, (total, groups) in disclose(results, policy).items():
        result = results[mid]
        shaped = _json(result, total)
        if groups is not None:
            shaped["groups"] = {g: figures.value for g, figures in groups.items()}
        if result.reference is not None:
            shaped["population_share"] = dict(result.reference)
        out[mid] = shaped
    return out


def publish_rows(results: Mapping[str, MeasureResult], policy: Policy
                 ) -> list[dict[str, Shown]]:
    """The same figures as rows (one per measure and group; the total's group is empty),
    for CSV: ``measure, by, group, value, numerator, denominator, population_share``."""
    rows: list[dict[str, Shown]] = []
    for mid, (total, groups) in disclose(results, policy).items():
        result = results[mid]
        entries: Iterable[tuple[str, PublishedFigures]] = [("", total), *(groups or {}).items()]
        for group, figures in entries:
            share = result.reference.get(group) if result.reference and group else None
            rows.append({
                "measure": mid, "by": result.by or "", "group": group,
                "value": figures.value, "numerator": figures.numerator,
                "denominator": figures.denominator, "population_share": share,
            })
    return rows
