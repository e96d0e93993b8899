"""For commissioners: outcome measures over the log, never one person.

The figures are computed (``projections.reports.measures``) from what the caller's own
commissioner agency may see for the purpose ``commissioning`` (the reports read model,
``projections.reports.projection``: masked facts under pseudonyms), and pass disclosure
control (``projections.reports.disclosure``) before they leave: ``public`` by default
(counts 1 to 4, and whatever would give them away, shown as ``"*"``), ``internal`` exact.
Every read of the figures is on the record (an access record naming the measures, the
period, the grouping and the policy, and what the figures rest on; no client).

The commissioner role reads them, and the IG lead of the commissioner agency may too (to
see what its agency is told); the measure catalogue, which holds no client data, is for
the commissioners and every IG lead (an IG lead approving an agreement for commissioning
needs to know what each measure reads).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.access import AccessLog, returned_item
from api.deps import Access, MeasureReader, ReportReader, Reports, ReportsCaughtUp
from api.errors import error_responses
from domain.access import AccessAction
from domain.application import Actor
from domain.errors import InvalidCommand
from domain.inputs import IsoDate
from domain.vocabulary import Purpose
from projections.reports.disclosure import Policy, publish, publish_rows
from projections.reports.measures import GROUPINGS, MEASURES, MeasureResult, compute
from projections.reports.model import Period
from projections.reports.projection import OutcomeReports

router = APIRouter(prefix="/v1/reports", tags=["commissioners"])

#: The longest period a report may cover.
MAX_YEARS = 10
Grouping = Literal["ethnicity", "sex", "age_band", "substance_group", "area"]
assert set(Grouping.__args__) == set(GROUPINGS)  # type: ignore[attr-defined]
CSV = "text/csv"
CSV_COLUMNS = ("measure", "by", "group", "value", "numerator", "denominator",
               "population_share")

# -- what is served ----------------------------------------------------------------------

class MeasureOut(BaseModel):
    """One measure of the catalogue: what it counts, over what, from which categories."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "id": "in_treatment", "title": "Clients in treatment",
        "definition": "Clients with a treatment episode open on at least one day of the "
                      "period.", "unit": "clients", "kind": "count", "categories": ["treatment"]}})

    id: str
    title: str
    definition: str
    unit: Literal["clients", "episodes", "alerts"]
    kind: Literal["count", "rate", "mean", "share"] = Field(
        description="count: how many; rate: numerator of denominator, value a percentage; "
                    "mean: the mean of an amount over denominator; share: each group's "
                    "percentage of the whole")
    categories: list[str] = Field(description="the data categories it reads")
    denominator: str | None = Field(
        None, description="the measure whose units are this one's denominator")
    by: str | None = Field(None, description="the grouping it always has")


#: A published figure: exact, null (nothing to divide by), or "*" (hidden).
Figure = int | float | Literal["*"] | None


class MeasureFiguresOut(BaseModel):
    """One measure's figures as published. A hidden figure is the string ``"*"``."""

    value: Figure
    numerator: Figure = Field(None, description="rates and shares")
    denominator: Figure = Field(None, description="rates, means and shares")
    groups: dict[str, Figure] | None = Field(
        None, description="the value for each group, when grouped")
    population_share: dict[str, float] | None = Field(
        None, description="each group's configured share of the population (per cent), "
                          "for penetration")


class PeriodOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date


class OutcomesOut(BaseModel):
    """The outcome measures for a period, as published under ``disclosure``."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "period": {"from": "2025-04-01", "to": "2026-03-31"}, "disclosure": "public",
        "by": "sex", "measures": {"in_treatment": {"value": 212, "groups": {
            "female": 71, "male": 139, "unknown": "*"}}}}})

    period: PeriodOut
    disclosure: Literal["internal", "public"]
    by: Grouping | None
    measures: dict[str, MeasureFiguresOut]


_CSV_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {CSV: {
    "schema": {"type": "string"},
    "example": "measure,by,group,value,numerator,denominator,population_share\r\n"
               "in_treatment,,,212,,,\r\n"}}}}


@router.get("/measures", response_model=list[MeasureOut], response_model_exclude_none=True,
            responses=error_responses(403))
def measures(_: MeasureReader) -> list[MeasureOut]:
    """The measure catalogue: each measure's id, title, definition in words, what it
    counts (clients, episodes or alerts), its kind and the data categories it reads."""
    return [MeasureOut(**measure.describe()) for measure in MEASURES.values()]


@router.get("/outcomes", response_model=OutcomesOut,
            responses={**error_responses(403, 503), **_CSV_RESPONSE})
def outcomes(request: Request, reports: Reports, access: Access, actor: ReportReader,
             _: ReportsCaughtUp, start: Annotated[IsoDate, Query(alias="from")],
             to: Annotated[IsoDate, Query()], by: Grouping | None = None,
             disclosure: Policy = "public") -> Any:
    """The outcome measures for the period ``from``..``to`` (both days included), for the
    caller's commissioner agency, optionally grouped ``by`` ethnicity, sex, age band,
    substance group or area. ``disclosure=public`` (the default) hides every count from 1
    to 4, and whatever would give one away, as ``"*"``; ``internal`` gives exact figures.
    The read is recorded. With ``Accept: text/csv``, the same as CSV (as
    ``/v1/reports/outcomes.csv``)."""
    return _outcomes(request, reports, access, actor, start, to, by, disclosure,
                     as_csv=CSV in request.headers.get("accept", ""))


@router.get("/outcomes.csv", response_class=Response, responses={
    **error_responses(403, 503), **_CSV_RESPONSE})
def outcomes_csv(request: Request, reports: Reports, access: Access, actor: ReportReader,
                 _: ReportsCaughtUp, start: Annotated[IsoDate, Query(alias="from")],
                 to: Annotated[IsoDate, Query()], by: Grouping | None = None,
                 disclosure: Policy = "public") -> Response:
    """The outcome measures as CSV: one row per measure and group (the measure's total on
    the row with an empty group), columns ``measure, by, group, value, numerator,
    denominator, population_share``; a hidden figure is ``*``."""
    response: Response = _outcomes(request, reports, access, actor, start, to, by, disclosure,
                                   as_csv=True)
    return response


# -- how ---------------------------------------------------------------------------------

def checked_period(start: date, to: date) -> Period:
    """The period, or a 422 naming the field at fault."""
    if to < start:
        raise InvalidCommand("to", "must be on or after from")
    try:
        limit = start.replace(year=start.year + MAX_YEARS)
    except ValueError:  # 29 February
        limit = start.replace(year=start.year + MAX_YEARS, day=28)
    if to >= limit:
        raise InvalidCommand("to", f"a period covers at most {MAX_YEARS} years")
    return Period(start, to)


def _outcomes(request: Request, reports: OutcomeReports, access: AccessLog, actor: Actor,
              start: date, to: date, by: str | None, disclosure: Policy, *,
              as_csv: bool) -> Any:
    period = checked_period(start, to)
    population = dict(request.app.state.accord.settings.ethnicity_population) or None
    detail = json.dumps({"report": "outcomes", "from": start.isoformat(), "to": to.isoformat(),
                         "by": by, "disclosure": disclosure, "measures": sorted(MEASURES)},
                        separators=(",", ":"))
    with access.reading(actor, AccessAction.REPORTS, client_id=None,
                        purpose=Purpose.COMMISSIONING.value) as read:
        snapshot = reports.snapshot(actor.agency)

        def results() -> dict[str, MeasureResult]:
            by_client: dict[str, list[Any]] = {}
            for fact in snapshot.facts:
                by_client.setdefault(fact.client, []).append(fact)
            return compute(by_client, period, by, alerts=snapshot.alerts,
                           population=population)

        computed: dict[str, MeasureResult] = reports.remembered(
            ("results", period, by), snapshot, results)
        if as_csv:
            shown: Any = reports.remembered(
                ("rows", period, by, disclosure), snapshot,
                lambda: _csv(publish_rows(computed, disclosure)))
        else:
            shown = reports.remembered(("json", period, by, disclosure), snapshot,
                                       lambda: _json(period, by, disclosure, computed))
        read.returned([returned_item(None, s["category"], s["controller"], s["basis"])
                       for s in snapshot.sources], detail=detail)
    if as_csv:
        name = f"outcomes-{start.isoformat()}-{to.isoformat()}.csv"
        return Response(shown, media_type=f"{CSV}; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return Response(shown, media_type="application/json")


def _json(period: Period, by: str | None, disclosure: Policy,
          computed: dict[str, MeasureResult]) -> bytes:
    """The answer's body, made through ``OutcomesOut`` (so it has the documented shape)
    once for each snapshot, period, grouping and policy: a repeated question is then
    answered with the same bytes."""
    figures = publish(computed, disclosure)
    shaped = OutcomesOut(
        period=PeriodOut.model_validate({"from": period.start, "to": period.end}),
        disclosure=disclosure, by=by,  # type: ignore[arg-type]
        measures={mid: MeasureFiguresOut(**shown) for mid, shown in figures.items()})
    return shaped.model_dump_json(by_alias=True, exclude_unset=True).encode()


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()
