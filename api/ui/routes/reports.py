"""The commissioners' pages: the outcome reports for a period, optionally broken down,
as tables and charts, and the same figures as CSV.

The figures come from the API's own route functions (``api.routers.reports``:
``outcomes`` and ``outcomes_csv``, with the measure catalogue from ``measures``), so the
page and the download are the figures the API publishes, under the ``public`` disclosure
policy (counts from 1 to 4, and whatever would give one away, hidden as ``*``), and each
is on the access record as the API's read is. The charts are drawn here, on the server,
as SVG (``api.ui.charts``), each beside a table of its numbers.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.deps import Access, Reports, ReportsPage
from api.routers import reports as reports_api
from api.ui.charts import Bar, bar_chart
from api.ui.templating import add_section, render
from domain.errors import InvalidCommand
from domain.inputs import IsoDate
from domain.permissions import Action
from projections.reports.disclosure import Policy

router = APIRouter(prefix="/ui", include_in_schema=False)

add_section("Outcome reports", "/ui/reports", Action.READ_REPORTS)

#: The breakdowns a report offers, in words.
BREAKDOWNS: Mapping[str, str] = {
    "sex": "Sex", "age_band": "Age band", "ethnicity": "Ethnicity",
    "substance_group": "Substance group", "area": "Area",
}
assert set(BREAKDOWNS) == set(reports_api.Grouping.__args__)  # type: ignore[attr-defined]
#: Pages and downloads publish under this policy (the API's default).
POLICY: Policy = "public"
HIDDEN = "*"
#: Shown where a rate or mean has nothing to divide by.
NOTHING = "\u2013"  # an en dash
#: The sections of an ungrouped report, by the measures' kind.
KINDS: Mapping[str, tuple[str, str]] = {
    "count": ("How many", "Number"),
    "rate": ("Rates", "Per cent"),
    "mean": ("Mean changes", "Mean change"),
    "share": ("Shares", "Per cent"),
}


@dataclass
class PeriodForm:
    """The period picker as submitted: each date's day, month and year as typed."""

    parts: dict[str, dict[str, str]]
    by: str
    errors: dict[str, str] = field(default_factory=dict)
    start: date | None = None
    end: date | None = None


def _financial_year(today: date) -> tuple[date, date]:
    """The financial year (April to March) that holds ``today``: the picker's default."""
    first = today.year if today.month >= 4 else today.year - 1
    return date(first, 4, 1), date(first + 1, 3, 31)


def _parts(day: date) -> dict[str, str]:
    return {"day": str(day.day), "month": str(day.month), "year": str(day.year)}


_NAMES = {"from": "start", "to": "end"}


def _date(which: str, parts: Mapping[str, str]) -> tuple[date | None, str | None]:
    """A date from its three fields, or what is wrong with them, in the NHS.UK words."""
    name = _NAMES[which]
    missing = [p for p in ("day", "month", "year") if not parts[p].strip()]
    if len(missing) == 3:
        return None, f"Enter the {name} of the period"
    if missing:
        return None, f"The {name} of the period must include a {' and '.join(missing)}"
    try:
        day, month, year = (int(parts[p].strip()) for p in ("day", "month", "year"))
        if len(parts["year"].strip()) != 4:
            raise ValueError
        return date(year, month, day), None
    except ValueError:
        return None, f"The {name} of the period must be a real date"


def _checked(form: PeriodForm) -> PeriodForm:
    for which in ("from", "to"):
        day, error = _date(which, form.parts[which])
        if error:
            form.errors[which] = error
        elif which == "from":
            form.start = day
        else:
            form.end = day
    if form.by and form.by not in BREAKDOWNS:
        form.errors["by"] = "Select a breakdown from the list"
    if form.start and form.end:
        try:
            reports_api.checked_period(form.start, form.end)
        except InvalidCommand as exc:
            form.errors["to"] = ("The end of the period must be the same as or after the start"
                                 if "on or after" in exc.message else
                                 f"The period must be shorter than {reports_api.MAX_YEARS} "
                                 "years")
    return form


# -- figures in words ----------------------------------------------------------------------


def _shown(value: Any, kind: str) -> str:
    """A published figure as the tables show it: hidden, nothing, or the number."""
    if value == HIDDEN:
        return HIDDEN
    if value is None:
        return NOTHING
    if kind == "count":
        return f"{int(value):,}"
    if kind == "mean":
        return f"{float(value):+.1f}"
    return f"{float(value):.1f}%"


def _count(value: Any) -> str:
    return _shown(value, "count")


def _length(value: Any) -> float | None:
    return None if value in (HIDDEN, None) else float(value)


@dataclass
class Row:
    label: str
    value: str
    numerator: str = ""
    denominator: str = ""
    reference: str = ""


@dataclass
class Section:
    """A chart and the table of its numbers: one kind of measure, or one measure by group."""

    ident: str
    title: str
    description: str
    column: str
    rows: list[Row]
    chart: Any
    total: Row | None = None
    definition: str = ""
    unit: str = ""
    with_counts: bool = False
    with_reference: bool = False

    @property
    def counts_column(self) -> str:
        """What the counts beside a rate or a mean are."""
        return "Clients" if self.column == KINDS["mean"][1] else "Of"


def _ungrouped(outcomes: reports_api.OutcomesOut,
               catalogue: list[reports_api.MeasureOut]) -> list[Section]:
    """One section per kind of measure: each measure a bar (shares come by group)."""
    sections = []
    for kind, (title, column) in KINDS.items():
        chosen = [m for m in catalogue if m.kind == kind and m.id in outcomes.measures
                  and outcomes.measures[m.id].groups is None]
        if not chosen:
            continue
        rows, bars = [], []
        for m in chosen:
            figures = outcomes.measures[m.id]
            rows.append(Row(m.title, _shown(figures.value, kind), _count(figures.numerator)
                            if figures.numerator is not None else "",
                            _count(figures.denominator) if figures.denominator is not None
                            else ""))
            bars.append(Bar(m.title, _length(figures.value), rows[-1].value))
        described = {"count": "The number of clients, episodes or alerts each measure "
                              "counts in the period.",
                     "rate": "Each measure as a percentage of its denominator.",
                     "mean": "The mean change over the clients followed up; negative is "
                             "fewer days or a lower score.",
                     "share": "Each measure's share, per cent."}[kind]
        sections.append(Section(
            f"kind-{kind}", title, described, column, rows,
            bar_chart(bars, title=title, description=described, chart_id=f"chart-{kind}"),
            with_counts=kind in ("rate", "mean")))
    return sections


def _grouped(outcomes: reports_api.OutcomesOut,
             catalogue: list[reports_api.MeasureOut]) -> list[Section]:
    """One section per measure that has groups: a bar per group, the total below."""
    sections = []
    for m in catalogue:
        figures = outcomes.measures.get(m.id)
        if figures is None or figures.groups is None:
            continue
        by = BREAKDOWNS.get(m.by or outcomes.by or "", "group").lower()
        reference = figures.population_share or {}
        rows = [Row(_group(group), _shown(value, m.kind),
                    reference=f"{reference[group]:.1f}%" if group in reference else "")
                for group, value in figures.groups.items()]
        bars = [Bar(row.label, _length(value), row.value)
                for row, value in zip(rows, figures.groups.values(), strict=True)]
        total = Row("All", _shown(figures.value, m.kind),
                    _count(figures.numerator) if figures.numerator is not None else "",
                    _count(figures.denominator) if figures.denominator is not None else "")
        described = f"{m.title}, by {by}."
        sections.append(Section(
            f"measure-{m.id}", m.title, described, KINDS[m.kind][1], rows,
            bar_chart(bars, title=f"{m.title} by {by}", description=described,
                      chart_id=f"chart-{m.id}"),
            total=total if figures.value is not None or m.kind != "share" else None,
            definition=m.definition, unit=m.unit, with_counts=m.kind in ("rate", "mean"),
            with_reference=bool(reference)))
    return sections


def _group(group: str) -> str:
    return group.replace("_", " ").capitalize()


# -- the pages ---------------------------------------------------------------------------

@router.get("/reports")
def reports_page(
    request: Request,
    reports: Reports,
    access: Access,
    actor: ReportsPage,
    from_day: Annotated[str | None, Query(alias="from-day", max_length=10)] = None,
    from_month: Annotated[str | None, Query(alias="from-month", max_length=10)] = None,
    from_year: Annotated[str | None, Query(alias="from-year", max_length=10)] = None,
    to_day: Annotated[str | None, Query(alias="to-day", max_length=10)] = None,
    to_month: Annotated[str | None, Query(alias="to-month", max_length=10)] = None,
    to_year: Annotated[str | None, Query(alias="to-year", max_length=10)] = None,
    by: Annotated[str | None, Query(max_length=30)] = None,
) -> Response:
    """The period and breakdown pickers; once a period is chosen, the report: every
    measure as a table (hidden figures as ``*``) and a chart beside it, and the CSV."""
    asked = [from_day, from_month, from_year, to_day, to_month, to_year]
    if all(part is None for part in asked) and by is None:
        start, end = _financial_year(date.today())
        form = PeriodForm({"from": _parts(start), "to": _parts(end)}, "")
        return _page(request, form, None)
    form = _checked(PeriodForm({
        "from": {"day": from_day or "", "month": from_month or "", "year": from_year or ""},
        "to": {"day": to_day or "", "month": to_month or "", "year": to_year or ""},
    }, by or ""))
    if form.errors or form.start is None or form.end is None:
        return _page(request, form, None, status_code=422)
    catalogue = reports_api.measures(actor)
    grouping: Any = form.by or None  # one of BREAKDOWNS, checked above
    answer = reports_api.outcomes(request, reports, access, actor, None, form.start, form.end,
                                  grouping, POLICY)
    outcomes = reports_api.OutcomesOut.model_validate_json(answer.body)
    return _page(request, form, outcomes, catalogue=catalogue)


def _page(request: Request, form: PeriodForm, outcomes: reports_api.OutcomesOut | None, *,
          catalogue: list[reports_api.MeasureOut] | None = None,
          status_code: int = 200) -> Response:
    sections: list[Section] = []
    shares: list[Section] = []
    hidden = False
    if outcomes is not None and catalogue is not None:
        grouped = _grouped(outcomes, catalogue)
        if outcomes.by:
            sections = grouped
        else:
            sections = _ungrouped(outcomes, catalogue)
            shares = grouped  # the measures always grouped (penetration by ethnicity)
        hidden = any(HIDDEN in (r.value, r.numerator, r.denominator)
                     for s in [*sections, *shares]
                     for r in [*s.rows, *([s.total] if s.total else [])])
    csv_query = None
    if form.start and form.end and outcomes is not None:
        csv_query = {"from": form.start.isoformat(), "to": form.end.isoformat(),
                     "by": form.by}
    first_error = {"from": "#from-day", "to": "#to-day", "by": "#by"}
    return render(request, "reports/outcomes.html", {
        "form": form, "outcomes": outcomes, "sections": sections, "shares": shares,
        "breakdowns": BREAKDOWNS, "hidden": hidden, "csv_query": csv_query,
        "breakdown_items": [{"value": key, "text": text, "selected": key == form.by}
                            for key, text in BREAKDOWNS.items()],
        "errors": [{"text": message, "href": first_error[name]}
                   for name, message in form.errors.items()],
    }, status_code=status_code)


@router.get("/reports/outcomes.csv")
async def reports_csv(
    request: Request,
    reports: Reports,
    access: Access,
    actor: ReportsPage,
    start: Annotated[IsoDate | None, Query(alias="from")] = None,
    to: Annotated[IsoDate | None, Query()] = None,
    by: reports_api.Grouping | None = None,
) -> Response:
    """The report's figures as CSV, as the API publishes them (hidden figures as ``*``),
    as a download; the read is recorded as the API's is."""
    if start is None:
        raise InvalidCommand("from", "choose the first day of the period")
    if to is None:
        raise InvalidCommand("to", "choose the last day of the period")
    answer: Response = await run_in_threadpool(functools.partial(
        reports_api.outcomes_csv, request, reports, access, actor, None, start, to, by,
        POLICY))
    return answer
