"""For safeguarding teams: the alert inbox, its live stream, acknowledging, assigning and
closing.

Only safeguarding principals of the recipient agency see or work an alert; another
agency's alert is a 404, as for an unknown one. The inbox filters, sorts and pages in the
database; an alert names the people who worked it (acknowledged, assigned, closed) by
name, looked up as it is shown. An alert names a client, so each read of
the inbox (and each batch the stream sends) appends an access record (action ``alerts``)
naming, for every alert shown, the controllers whose facts it rests on and the
legal-duty agreement under which it was shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from time import monotonic
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.access import AccessLog, AccessNotRecorded, returned_item
from api.deps import (
    Access,
    AlertAcknowledger,
    AlertAssigner,
    AlertCloser,
    AlertReader,
    App,
    Inbox,
    InboxCaughtUp,
)
from api.errors import error_responses
from api.models import Strict
from domain.access import AccessAction
from domain.alerts import AlertOutcome, AlertStatus, Severity
from domain.application import AccordApplication, Actor
from domain.errors import AlertNotFound, InvalidCommand
from domain.inputs import AwareIsoDatetime, IsoDuration, LogPosition, Text
from domain.rules import RuleName
from projections.alerts import UNASSIGNED, AlertInbox, AlertItem, AlertQuery, AlertSort
from projections.queries import principal_names, safeguarding_team

log = logging.getLogger("accord.alerts")
router = APIRouter(prefix="/v1/alerts", tags=["safeguarding"])
MAX_WAIT_SECONDS = 2.0
#: How often the stream looks for new alerts, and sends a keep-alive comment.
POLL_SECONDS = 0.25
KEEP_ALIVE_SECONDS = 15.0
#: At most how many alerts one event batch of the stream sends (more follow at once).
PAGE = 500
#: At most how many alerts one page of the inbox holds.
MAX_LIMIT = 500


class PersonOut(BaseModel):
    """Someone named on an alert: their reference on the record and their name."""

    principal: str = Field(description="a principal id (or operator:cli)")
    name: str


class AlertOut(BaseModel):
    alert_id: UUID
    rule: str
    severity: Severity
    status: AlertStatus
    recipient: str
    client_id: UUID
    household_id: UUID | None
    reason: str = Field(description="one line, without clinical detail")
    basis: dict[str, Any] = Field(description="the agreements with a legal duty under which "
                                  "your agency is told")
    trigger_position: int = Field(description="the log position that raised it")
    triggered_at: datetime | None = Field(
        description="when the triggering fact occurred (or the household was linked)")
    raised_at: datetime
    acknowledge_by: datetime
    acknowledged_by: PersonOut | None
    acknowledged_at: datetime | None
    escalated_at: datetime | None
    assigned_to: PersonOut | None = Field(description="the team member working it")
    assigned_by: PersonOut | None
    assigned_at: datetime | None
    closed_by: PersonOut | None
    closed_at: datetime | None
    outcome: AlertOutcome | None
    note: str | None
    position: int = Field(description="the log position of its latest change")


class AlertCloseIn(Strict):
    outcome: AlertOutcome
    note: Text = Field(min_length=1, max_length=1000)


class AlertAssignIn(Strict):
    principal_id: UUID = Field(description="a member of your agency's safeguarding team")


class AlertChanged(BaseModel):
    alert_id: UUID
    status: AlertStatus
    position: int


def _names(app: AccordApplication, items: list[AlertItem]) -> dict[str, str]:
    """The name of everyone the alerts name, looked up once for the lot."""
    return principal_names(app, (r for item in items for r in sorted(item.references)))


def _person(reference: str | None, names: dict[str, str]) -> PersonOut | None:
    if reference is None:
        return None
    return PersonOut(principal=reference, name=names.get(reference, reference))


def _out(item: AlertItem, names: dict[str, str]) -> AlertOut:
    return AlertOut(
        alert_id=item.alert_id, rule=item.rule, severity=Severity(item.severity),
        status=AlertStatus(item.status), recipient=item.recipient, client_id=item.client_id,
        household_id=item.household_id, reason=item.reason, basis=item.basis,
        trigger_position=item.trigger_position, triggered_at=item.triggered_at,
        raised_at=item.raised_at, acknowledge_by=item.acknowledge_by,
        acknowledged_by=_person(item.acknowledged_by, names),
        acknowledged_at=item.acknowledged_at, escalated_at=item.escalated_at,
        assigned_to=_person(item.assigned_to, names),
        assigned_by=_person(item.assigned_by, names), assigned_at=item.assigned_at,
        closed_by=_person(item.closed_by, names), closed_at=item.closed_at,
        outcome=AlertOutcome(item.outcome) if item.outcome else None,
        note=item.note, position=item.updated_position,
    )


def _shown(items: list[AlertItem]) -> list[dict[str, Any]]:
    """The access record's items: per alert, each controller it rests on and the basis,
    and the client it is about (an alert tells its recipient something of the
    controllers' data about that client: a disclosure the client's controllers list)."""
    shown = []
    for item in items:
        for agreement in item.basis.get("agreements", []):
            shown.append({**returned_item(
                item.trigger_position, "safeguarding_alert", str(agreement["controller"]),
                {"kind": "legal_duty", **agreement}), "client_id": str(item.client_id)})
    return shown


def _record(access: AccessLog, actor: Actor, items: list[AlertItem]) -> None:
    """Records one read of alerts, naming every client they are about, so that it is in
    each client's disclosures and the access audit filtered by client."""
    with access.reading(actor, AccessAction.ALERTS, client_id=None, purpose=None) as read:
        read.returned(_shown(items), client_ids=[item.client_id for item in items])


#: ``assigned_to``: yourself, nobody, or a principal by id.
Assignee = Literal["me", "nobody"] | UUID


def _query(actor: Actor, *, status: list[AlertStatus], severity: list[Severity],
           rule: list[RuleName], assigned_to: Assignee | None,
           raised_after: datetime | None, raised_before: datetime | None,
           older_than: timedelta | None, newer_than: timedelta | None, sort: AlertSort,
           limit: int, offset: int) -> AlertQuery:
    """The inbox's query from its parameters: ``me`` is the caller, ``nobody`` none;
    bounds that cannot both hold are a 422 naming the later one."""
    if raised_after is not None and raised_before is not None \
            and raised_after >= raised_before:
        raise InvalidCommand("raised_before", "must be after raised_after")
    if older_than is not None and newer_than is not None and newer_than <= older_than:
        raise InvalidCommand("newer_than", "must be longer than older_than")
    assignee = (actor.reference if assigned_to == "me" else UNASSIGNED
                if assigned_to == "nobody" else None if assigned_to is None
                else str(assigned_to))
    return AlertQuery(
        statuses=tuple(dict.fromkeys(status)), severities=tuple(dict.fromkeys(severity)),
        rules=tuple(dict.fromkeys(r.value for r in rule)), assigned_to=assignee,
        raised_after=raised_after, raised_before=raised_before, older_than=older_than,
        newer_than=newer_than, sort=sort, limit=limit, offset=offset)


@router.get("", response_model=list[AlertOut], responses=error_responses(403, 422, 503))
def inbox(
    app: App,
    inbox: Inbox,
    access: Access,
    actor: AlertReader,
    _: InboxCaughtUp,
    response: Response,
    status: Annotated[list[AlertStatus], Query(
        description="only alerts in this status (repeat for several)")] = [],  # noqa: B006
    severity: Annotated[list[Severity], Query(
        description="only alerts of this severity (repeat for several)")] = [],  # noqa: B006
    rule: Annotated[list[RuleName], Query(
        description="only alerts raised by this rule (repeat for several)")] = [],  # noqa: B006
    assigned_to: Annotated[Assignee | None, Query(
        description="`me`, `nobody`, or a principal id")] = None,
    raised_after: Annotated[AwareIsoDatetime | None, Query(
        description="raised after this moment (ISO 8601 with a zone)")] = None,
    raised_before: Annotated[AwareIsoDatetime | None, Query(
        description="raised at or before this moment")] = None,
    older_than: Annotated[IsoDuration | None, Query(
        description="raised at least this long ago (ISO 8601 duration, e.g. PT4H)")] = None,
    newer_than: Annotated[IsoDuration | None, Query(
        description="raised less than this long ago (e.g. P2D)")] = None,
    sort: Annotated[AlertSort, Query(
        description="`raised` (oldest first, the default), `-raised` (newest first), "
                    "`severity` (high first, then oldest), `due` (soonest acknowledge-by "
                    "first), `triggered` / `-triggered` (by the triggering fact's date), "
                    "`urgency` (escalated, then raised, acknowledged, closed; oldest first)")]
    = AlertSort.RAISED,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="alerts per page")] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="alerts to skip")] = 0,
) -> list[AlertOut]:
    """Your agency's alerts that match every filter given, in the order asked for, one
    page at a time; the ``X-Total-Count`` header says how many match in all. The read is
    recorded (naming each alert's client) before it is returned."""
    query = _query(actor, status=status, severity=severity, rule=rule,
                   assigned_to=assigned_to, raised_after=raised_after,
                   raised_before=raised_before, older_than=older_than,
                   newer_than=newer_than, sort=sort, limit=limit, offset=offset)
    page = inbox.page(actor.agency, query)
    names = _names(app, page.items)
    _record(access, actor, page.items)
    response.headers["X-Total-Count"] = str(page.total)
    return [_out(item, names) for item in page.items]


@router.get("/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
                       **error_responses(403, 503)},
            response_description="text/event-stream: one `alert` event per alert")
async def stream(
    request: Request,
    app: App,
    inbox: Inbox,
    access: Access,
    actor: AlertReader,
    max_seconds: Annotated[float | None, Query(ge=0, le=86400, description="end the stream "
                                               "after this long (default: never)")] = None,
    last_event_id: Annotated[LogPosition | None, Header(
        description="resume after this event id (a log position, in ASCII digits)")] = None,
) -> StreamingResponse:
    """A live inbox (server-sent events): your agency's open alerts as they are now, then
    each alert again whenever it changes (raised, acknowledged, assigned, escalated,
    closed), in its current state. Each event's id is the log position of the change it reports;
    reconnecting with ``Last-Event-ID`` sends every alert changed since (closed ones
    too), as it is now. Each batch sent is recorded as a read, naming its clients."""
    after = last_event_id  # not str.isdigit(): "²" passes it and int() refuses it
    deadline = None if max_seconds is None else monotonic() + max_seconds
    return StreamingResponse(
        _events(request, app, inbox, access, actor, after, deadline),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(request: Request, app: AccordApplication, inbox: AlertInbox,
                  access: AccessLog, actor: Actor, after: int | None,
                  deadline: float | None) -> AsyncIterator[str]:
    """The stream's events. ``sent`` is the log position of the last change it has sent
    or passed over. A fresh connection first sends every open alert as it is now (up to
    the latest change when it connected: later changes follow as changes); a resumed one
    every alert changed after ``Last-Event-ID``, closed ones included, so that it learns
    of the closures it missed. Then each change, as the inbox indexes it: the inbox keeps
    each alert's current state, so an alert changed twice between two polls is sent
    once, as it is after both."""
    agency = actor.agency
    try:
        # "As it is now": the inbox first catches up with what was written before the
        # connection (an alert closed a moment ago is sent as closed, not as raised).
        await run_in_threadpool(_caught_up, inbox)
        sent = after or 0
        snapshot = None if after is not None else await run_in_threadpool(
            inbox.last_change, agency)
        first, quiet_since = True, monotonic()
        while True:
            items = await run_in_threadpool(functools.partial(
                inbox.changed, agency, after=sent, upto=snapshot,
                open_only=snapshot is not None, limit=PAGE))
            if items or first:
                names = await run_in_threadpool(_names, app, items)
                await run_in_threadpool(_record, access, actor, items)
                for item in items:
                    yield _event(item, names)
                    sent = item.updated_position
                first, quiet_since = False, monotonic()
            more = len(items) == PAGE
            if snapshot is not None and not more:
                sent, snapshot = max(sent, snapshot), None  # every open alert is sent
            if deadline is not None and monotonic() >= deadline:
                return
            if await request.is_disconnected():
                return
            if more:
                continue
            if monotonic() - quiet_since >= KEEP_ALIVE_SECONDS:
                yield ": keep-alive\n\n"
                quiet_since = monotonic()
            await asyncio.sleep(POLL_SECONDS)
    except AccessNotRecorded:
        yield "event: error\ndata: the read could not be recorded; reconnect to retry\n\n"
    except Exception:  # headers are sent: end the stream rather than break the response
        log.exception("the alert stream for %s failed", actor.reference)
        yield "event: error\ndata: the stream failed; reconnect to retry\n\n"


def _caught_up(inbox: AlertInbox) -> None:
    with contextlib.suppress(TimeoutError):
        inbox.tracking.wait(inbox.name, inbox.app.head_position() or None,
                            timeout=MAX_WAIT_SECONDS)


def _event(item: AlertItem, names: dict[str, str]) -> str:
    """One alert as it is now; its id is the log position of its latest change."""
    data = _out(item, names).model_dump_json()
    return f"id: {item.updated_position}\nevent: alert\ndata: {data}\n\n"


@router.get("/team", response_model=list[PersonOut], responses=error_responses(403))
def team(app: App, actor: AlertAssigner) -> list[PersonOut]:
    """Your agency's safeguarding team by name, you included: whom its alerts may be
    assigned to (its active safeguarding members; revoked ones are left out)."""
    return [PersonOut(principal=member.reference, name=member.name)
            for member in safeguarding_team(app, actor)]


@router.post("/{alert_id}/acknowledge", response_model=AlertChanged,
             responses=error_responses(403, 404, 409))
def acknowledge(alert_id: UUID, app: App, actor: AlertAcknowledger) -> AlertChanged:
    """Acknowledges an alert of your agency (raised or escalated); 409 once acknowledged
    or closed."""
    alert, position = app.acknowledge_alert(alert_id, actor)
    return AlertChanged(alert_id=alert.id, status=alert.status, position=position)


@router.post("/{alert_id}/assign", response_model=AlertChanged,
             responses=error_responses(403, 404, 409, 422, 503))
def assign(alert_id: UUID, body: AlertAssignIn, app: App, access: Access,
           actor: AlertAssigner) -> AlertChanged:
    """Assigns an open alert of your agency to a member of its safeguarding team (you
    included); assigning it again gives it to someone else. Another agency's alert, and
    a principal who is not of your agency, are 404 as for unknown ones; an assignee who is
    not an active safeguarding member is 403; a closed alert, or one already theirs, 409.
    A refusal (404 or 403) is recorded as an attempt."""
    with access.attempting(actor, AccessAction.ASSIGN_ALERT, client_ids=[],
                           detail=f"assign alert {alert_id} to {body.principal_id}"):
        alert, position = app.assign_alert(alert_id, body.principal_id, actor)
    return AlertChanged(alert_id=alert.id, status=alert.status, position=position)


@router.post("/{alert_id}/close", response_model=AlertChanged,
             responses=error_responses(403, 404, 409))
def close(alert_id: UUID, body: AlertCloseIn, app: App, actor: AlertCloser) -> AlertChanged:
    """Closes an alert of your agency with an outcome and a note; closing twice is 409."""
    alert, position = app.close_alert(alert_id, body.outcome, body.note, actor)
    return AlertChanged(alert_id=alert.id, status=alert.status, position=position)


@router.get("/{alert_id}", response_model=AlertOut, responses=error_responses(403, 404, 503))
def alert(alert_id: UUID, app: App, inbox: Inbox, access: Access, actor: AlertReader,
          _: InboxCaughtUp) -> AlertOut:
    """One alert of your agency as it is now, as the inbox shows it; another agency's
    alert is a 404, as for an unknown one. The read is recorded, naming its client."""
    with access.reading(actor, AccessAction.ALERTS, client_id=None, purpose=None) as read:
        item = inbox.get(actor.agency, alert_id)
        if item is None:
            raise AlertNotFound()
        read.returned(_shown([item]), client_ids=[item.client_id],
                      detail=f"alert {alert_id}")
    return _out(item, _names(app, [item]))
