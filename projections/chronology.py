"""A client's chronology, and a summary at its head, from what the caller may see.

The view (``projections.queries.partner_view``) lists a client's facts in log order, the
order they were recorded. A practitioner reading a client wants them in the order they
happened, perhaps one category at a time, with the few things that matter first: whether
the client is in treatment and how, their prescription, the orders they are under, when
they last came in, how many of the caller's alerts about them are open, and whom to call
at the service that holds their record. ``chronology`` gives that, computed only from
what the same view shows the caller (masked as it shows it), so the summary tells the
caller nothing its view would not: a prescription it may not see is not summarised, a
field a share leaves out is absent from the summary too. Each fact names who recorded it
(their name and agency, not an id).

The summary (``summarise``) is a pure function of the items, so it is tested alone; the
positions it rests on are kept, so the access record names every fact the answer drew
on, listed or summarised.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select

from domain.application import AccordApplication, Actor
from domain.categories import DataCategory
from domain.errors import AgencyNotFound
from domain.permissions import Action, permits
from domain.vocabulary import Purpose
from infra.schema import alerts, facts
from projections import queries
from projections.caseload import registered_by
from projections.queries import RecordedBy
from projections.reports.episodes import DISCHARGED, EPISODE_ENDED, EPISODE_STARTED, episodes
from projections.reports.model import ReportFact
from projections.views import AgencyViews, ViewItem

PRESCRIPTION = "prescription_changed"
ORDER = "criminal_justice_status"
ATTENDED = "appointment_attended"
#: The fact types a summary reads.
SUMMARISED = frozenset({EPISODE_STARTED, EPISODE_ENDED, DISCHARGED, PRESCRIPTION, ORDER,
                        ATTENDED})
#: The status of a criminal-justice order that is no longer in force.
ORDER_ENDED = "ended"
PRESCRIPTION_STOPPED = "stopped"
ALERT_CLOSED = "closed"


@dataclass(frozen=True)
class ProviderContact:
    """The agency that registered the client (it holds the client's record), and how to
    reach it."""

    agency: str
    name: str
    contact: str | None


@dataclass(frozen=True)
class Summary:
    """The head of a chronology.

    ``in_treatment`` is None when the caller sees no episode fact (it cannot tell);
    ``modalities``, ``episode_started`` and ``key_worker`` describe the open episodes
    (the latest started for the date and key worker). ``prescriptions`` holds each
    medication's latest change unless it stopped, ``orders`` each order's latest status
    unless it ended or its end date passed, as the caller sees those facts (only the
    fields shown, with ``since`` and ``position``). ``open_alerts`` counts the caller
    agency's alerts about the client not yet closed (None unless the caller may read
    alerts); ``provider`` is the registering agency where the caller sees any of its
    data. ``rests_on`` is every position the summary read."""

    in_treatment: bool | None
    modalities: list[str]
    episode_started: datetime | None
    key_worker: str | None
    prescriptions: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    last_attended: dict[str, Any] | None
    open_alerts: int | None
    provider: ProviderContact | None
    rests_on: frozenset[int]


def summarise(items: Iterable[ViewItem], now: datetime) -> Summary:
    """The summary of what these items show (a view's, masked), as it stands at ``now``:
    facts said to happen after ``now`` are left out."""
    read = sorted((i for i in items if i.fact_type in SUMMARISED and i.occurred_at <= now),
                  key=lambda i: (i.occurred_at, i.position))
    by_type: dict[str, list[ViewItem]] = defaultdict(list)
    for item in read:
        by_type[item.fact_type].append(item)
    story = [ReportFact(client="", position=i.position, fact_type=i.fact_type,
                        occurred_at=i.occurred_at, controller=i.controller, data=i.data)
             for i in read if i.fact_type in (EPISODE_STARTED, EPISODE_ENDED, DISCHARGED)]
    starts = {i.position: i for i in by_type[EPISODE_STARTED]}
    current = sorted((starts[e.start_position] for e in episodes(story) if e.end is None),
                     key=lambda i: (i.occurred_at, i.position))
    key_worker = next((str(i.data["key_worker"]) for i in reversed(current)
                       if i.data.get("key_worker")), None)
    return Summary(
        in_treatment=bool(current) if story else None,
        modalities=sorted({str(i.data["modality"]) for i in current
                           if i.data.get("modality") is not None}),
        episode_started=current[-1].occurred_at if current else None,
        key_worker=key_worker,
        prescriptions=[_latest(i) for i in _latest_of_each(by_type[PRESCRIPTION], "medication")
                       if i.data.get("change") != PRESCRIPTION_STOPPED],
        orders=[_latest(i) for i in _latest_of_each(by_type[ORDER], "order")
                if _in_force(i, now.date())],
        last_attended=_latest(by_type[ATTENDED][-1]) if by_type[ATTENDED] else None,
        open_alerts=None, provider=None,
        rests_on=frozenset(i.position for i in read),
    )


def _latest_of_each(items: list[ViewItem], field: str) -> list[ViewItem]:
    """The latest item (``items`` in the order they happened) for each value of
    ``field`` (one group for the items whose share leaves the field out)."""
    latest: dict[Any, ViewItem] = {}
    for item in items:
        latest[item.data.get(field)] = item
    return sorted(latest.values(), key=lambda i: (i.occurred_at, i.position))


def _latest(item: ViewItem) -> dict[str, Any]:
    return {**item.data, "since": item.occurred_at, "position": item.position}


def _in_force(item: ViewItem, today: date) -> bool:
    if item.data.get("status") == ORDER_ENDED:
        return False
    ends_on = item.data.get("ends_on")
    return ends_on is None or date.fromisoformat(str(ends_on)) >= today


@dataclass(frozen=True)
class Entry:
    """One fact of a chronology: as the view shows it, and who recorded it."""

    item: ViewItem
    recorded_by: RecordedBy | None


@dataclass(frozen=True)
class Chronology:
    """What the caller may see of a client for a purpose, in the order it happened.

    ``entries`` are the facts (of ``category`` only, if one was asked for), sorted by
    when they occurred; ``summary`` is computed from every fact shown, whatever the
    category; ``shown`` is what the answer drew on, for the access record."""

    client_id: UUID
    agency: str
    purpose: Purpose
    position: int
    category: DataCategory | None
    identity: dict[str, Any] | None
    summary: Summary
    entries: list[Entry]
    shown: list[ViewItem]
    #: For a restricted client, the legal claim the read stated (sealed), to record.
    legal_claim: str | None = None


def chronology(app: AccordApplication, views: AgencyViews, by: Actor, client_id: UUID,
               purpose: Purpose, category: DataCategory | None = None,
               restriction_reason: str | None = None) -> Chronology:
    """The caller agency's view of the client for the purpose as a chronology with its
    summary. Refused, and not found, exactly as the view is (it is read through it: a
    restricted client's controller states a legal claim, ``restriction_reason``)."""
    view = queries.partner_view(app, views, by, client_id, purpose, restriction_reason)
    now = datetime.now(UTC)
    summary = summarise(view.facts, now)
    if permits(Action.READ_ALERTS, by.role, by.agency_kind):
        summary = replace(summary, open_alerts=_open_alerts(views, by.agency, client_id))
    summary = replace(summary, provider=_provider(app, views, client_id, view.shown))
    listed = [i for i in view.facts if category is None or i.category == category.value]
    listed.sort(key=lambda i: (i.occurred_at, i.position))
    recorders = _recorders(views, [i.position for i in listed])
    names = queries.named_principals(app, set(recorders.values()))
    entries = [Entry(i, names.get(recorders.get(i.position, ""))) for i in listed]
    drawn_on = {i.position for i in listed} | summary.rests_on
    shown = [i for i in view.shown
             if i.category == DataCategory.IDENTITY.value or i.position in drawn_on]
    return Chronology(client_id, by.agency, purpose, view.position, category, view.identity,
                      summary, entries, shown, legal_claim=view.legal_claim)


def _recorders(views: AgencyViews, positions: list[int]) -> dict[int, str]:
    """Who recorded each fact (the reference on the record), as the views copied it."""
    found: dict[int, str] = {}
    with views.engine.connect() as conn:
        for start in range(0, len(positions), 500):
            query = select(facts.c.position, facts.c.recorded_by).where(
                facts.c.position.in_(positions[start:start + 500]))
            found.update((position, by) for position, by in conn.execute(query))
    return found


def _open_alerts(views: AgencyViews, agency: str, client_id: UUID) -> int:
    """How many of the agency's alerts about the client are not yet closed."""
    query = select(func.count()).select_from(alerts).where(
        alerts.c.recipient == agency, alerts.c.client_id == client_id.hex,
        alerts.c.status != ALERT_CLOSED)
    with views.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _provider(app: AccordApplication, views: AgencyViews, client_id: UUID,
              shown: list[ViewItem]) -> ProviderContact | None:
    """The agency that registered the client, if the caller sees any of its data (else
    naming it would tell the caller more than its view does)."""
    registrar = registered_by(views, client_id)
    if registrar is None or not any(i.controller == registrar for i in shown):
        return None
    try:
        agency = app.agency(registrar)
    except AgencyNotFound:
        return None
    return ProviderContact(agency.slug, agency.name, agency.contact)
