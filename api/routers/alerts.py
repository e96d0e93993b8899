"""For safeguarding teams: the alert inbox, its live stream, acknowledging and closing.

Only safeguarding principals of the recipient agency see or work an alert; another
agency's alert is a 404, as for an unknown one. An alert names a client, so each read of
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
from datetime import datetime
from time import monotonic
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.access import AccessLog, AccessNotRecorded, returned_item
from api.deps import (
    Access,
    AlertAcknowledger,
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
from domain.application import Actor
from domain.inputs import LogPosition, Text
from projections.alerts import AlertInbox, AlertItem

log = logging.getLogger("accord.alerts")
router = APIRouter(prefix="/v1/alerts", tags=["safeguarding"])
MAX_WAIT_SECONDS = 2.0
#: How often the stream looks for new alerts, and sends a keep-alive comment.
POLL_SECONDS = 0.25
KEEP_ALIVE_SECONDS = 15.0
#: At most how many alerts one event batch of the stream sends (more follow at once).
PAGE = 500



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
    raised_at: datetime
    acknowledge_by: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    escalated_at: datetime | None
    closed_at: datetime | None
    outcome: AlertOutcome | None
    note: str | None
    position: int = Field(description="the log position of its latest change")


class AlertCloseIn(Strict):
    outcome: AlertOutcome
    note: Text = Field(min_length=1, max_length=1000)


class AlertChanged(BaseModel):
    alert_id: UUID
    status: AlertStatus
    position: int


def _out(item: AlertItem) -> AlertOut:
    return AlertOut(
        alert_id=item.alert_id, rule=item.rule, severity=Severity(item.severity),
        status=AlertStatus(item.status), recipient=item.recipient, client_id=item.client_id,
        household_id=item.household_id, reason=item.reason, basis=item.basis,
        trigger_position=item.trigger_position, raised_at=item.raised_at,
        acknowledge_by=item.acknowledge_by, acknowledged_by=item.acknowledged_by,
        acknowledged_at=item.acknowledged_at, escalated_at=item.escalated_at,
        closed_at=item.closed_at, outcome=AlertOutcome(item.outcome) if item.outcome else None,
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


@router.get("", response_model=list[AlertOut], responses=error_responses(403, 503))
def inbox(
    app: App,
    inbox: Inbox,
    access: Access,
    actor: AlertReader,
    _: InboxCaughtUp,
    status: Annotated[AlertStatus | None, Query(description="only alerts in this status")]
    = None,
) -> list[AlertOut]:
    """Your agency's alerts, oldest first. The read is recorded before it is returned."""
    items = inbox.alerts_of(actor.agency, status)
    _record(access, actor, items)
    return [_out(item) for item in items]


@router.get("/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
                       **error_responses(403, 503)},
            response_description="text/event-stream: one `alert` event per alert")
async def stream(
    request: Request,
    inbox: Inbox,
    access: Access,
    actor: AlertReader,
    max_seconds: Annotated[float | None, Query(ge=0, le=86400, description="end the stream "
                                               "after this long (default: never)")] = None,
    last_event_id: Annotated[LogPosition | None, Header(
        description="resume after this event id (a log position, in ASCII digits)")] = None,
) -> StreamingResponse:
    """A live inbox (server-sent events): your agency's open alerts as they are now, then
    each alert again whenever it changes (raised, acknowledged, escalated, closed), in its
    current state. Each event's id is the log position of the change it reports;
    reconnecting with ``Last-Event-ID`` sends every alert changed since (closed ones
    too), as it is now. Each batch sent is recorded as a read, naming its clients."""
    after = last_event_id  # not str.isdigit(): "²" passes it and int() refuses it
    deadline = None if max_seconds is None else monotonic() + max_seconds
    return StreamingResponse(
        _events(request, inbox, access, actor, after, deadline),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(request: Request, inbox: AlertInbox, access: AccessLog, actor: Actor,
                  after: int | None, deadline: float | None) -> AsyncIterator[str]:
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
                await run_in_threadpool(_record, access, actor, items)
                for item in items:
                    yield _event(item)
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


def _event(item: AlertItem) -> str:
    """One alert as it is now; its id is the log position of its latest change."""
    data = _out(item).model_dump_json()
    return f"id: {item.updated_position}\nevent: alert\ndata: {data}\n\n"


@router.post("/{alert_id}/acknowledge", response_model=AlertChanged,
             responses=error_responses(403, 404, 409))
def acknowledge(alert_id: UUID, app: App, actor: AlertAcknowledger) -> AlertChanged:
    """Acknowledges an alert of your agency (raised or escalated); 409 once acknowledged
    or closed."""
    alert, position = app.acknowledge_alert(alert_id, actor)
    return AlertChanged(alert_id=alert.id, status=alert.status, position=position)


@router.post("/{alert_id}/close", response_model=AlertChanged,
             responses=error_responses(403, 404, 409))
def close(alert_id: UUID, body: AlertCloseIn, app: App, actor: AlertCloser) -> AlertChanged:
    """Closes an alert of your agency with an outcome and a note; closing twice is 409."""
    alert, position = app.close_alert(alert_id, body.outcome, body.note, actor)
    return AlertChanged(alert_id=alert.id, status=alert.status, position=position)

