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
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from time import monotonic
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.access import Access, AccessLog, AccessNotRecorded, returned_item
from api.auth import App, require
from api.models import ErrorBody, Strict
from domain.access import AccessAction
from domain.agencies import Role
from domain.alerts import AlertOutcome, AlertStatus, Severity
from domain.application import Actor
from projections.alerts import AlertInbox, AlertItem

log = logging.getLogger("accord.alerts")
router = APIRouter(prefix="/v1/alerts", tags=["safeguarding"])
Safeguarding = Annotated[Actor, Depends(require(Role.SAFEGUARDING))]
_errors: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 503)
}
MAX_WAIT_SECONDS = 2.0
#: How often the stream looks for new alerts, and sends a keep-alive comment.
POLL_SECONDS = 0.25
KEEP_ALIVE_SECONDS = 15.0


async def alert_inbox(request: Request) -> AlertInbox:
    inbox: AlertInbox = request.app.state.projections.find(AlertInbox)
    return inbox


Inbox = Annotated[AlertInbox, Depends(alert_inbox)]


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
    note: str = Field(min_length=1, max_length=1000)


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
    """The access record's items: per alert, each controller it rests on and the basis."""
    shown = []
    for item in items:
        for agreement in item.basis.get("agreements", []):
            shown.append(returned_item(
                item.trigger_position, "safeguarding_alert", str(agreement["controller"]),
                {"kind": "legal_duty", **agreement}))
    return shown


def _record(access: AccessLog, actor: Actor, items: list[AlertItem]) -> None:
    with access.reading(actor, AccessAction.ALERTS, client_id=None, purpose=None) as read:
        read.returned(_shown(items))


@router.get("", response_model=list[AlertOut], responses=_errors)
def inbox(
    app: App,
    inbox: Inbox,
    access: Access,
    actor: Safeguarding,
    status: Annotated[AlertStatus | None, Query(description="only alerts in this status")]
    = None,
    min_position: Annotated[int | None, Query(ge=1, description="wait until the inbox has "
                                              "caught up with this log position")] = None,
) -> list[AlertOut]:
    """Your agency's alerts, oldest first. The read is recorded before it is returned."""
    if min_position is not None:
        with contextlib.suppress(TimeoutError):
            inbox.tracking.wait(inbox.name, min_position, timeout=MAX_WAIT_SECONDS)
    items = inbox.alerts_of(actor.agency, status)
    _record(access, actor, items)
    return [_out(item) for item in items]


@router.get("/stream", responses=_errors,
            response_class=StreamingResponse,
            response_description="text/event-stream: one `alert` event per alert")
async def stream(
    request: Request,
    inbox: Inbox,
    access: Access,
    actor: Safeguarding,
    max_seconds: Annotated[float | None, Query(ge=0, le=86400, description="end the stream "
                                               "after this long (default: never)")] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """A live inbox (server-sent events): your agency's open alerts, then each new alert
    as it is indexed. Each event's id is its log position; reconnecting with
    ``Last-Event-ID`` resumes after it. Each batch sent is recorded as a read."""
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    deadline = None if max_seconds is None else monotonic() + max_seconds
    return StreamingResponse(
        _events(request, inbox, access, actor, after, deadline),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(request: Request, inbox: AlertInbox, access: AccessLog, actor: Actor,
                  after: int | None, deadline: float | None) -> AsyncIterator[str]:
    try:
        if after is None:
            after = await run_in_threadpool(inbox.latest, actor.agency)
            items = [i for i in await run_in_threadpool(inbox.alerts_of, actor.agency,
                                                        open_only=True)
                     if i.raised_position <= after]
        else:
            items = await run_in_threadpool(inbox.alerts_of, actor.agency, after=after)
        first, quiet_since = True, monotonic()
        while True:
            if items or first:
                await run_in_threadpool(_record, access, actor, items)
                for item in items:
                    yield _event(item)
                    after = max(after, item.raised_position)
                first, quiet_since = False, monotonic()
            if deadline is not None and monotonic() >= deadline:
                return
            if await request.is_disconnected():
                return
            if monotonic() - quiet_since >= KEEP_ALIVE_SECONDS:
                yield ": keep-alive\n\n"
                quiet_since = monotonic()
            await asyncio.sleep(POLL_SECONDS)
            items = await run_in_threadpool(inbox.alerts_of, actor.agency, after=after)
    except AccessNotRecorded:
        yield "event: error\ndata: the read could not be recorded; reconnect to retry\n\n"
    except Exception:  # headers are sent: end the stream rather than break the response
        log.exception("the alert stream for %s failed", actor.reference)
        yield "event: error\ndata: the stream failed; reconnect to retry\n\n"


def _event(item: AlertItem) -> str:
    data = _out(item).model_dump_json()
    return f"id: {item.raised_position}\nevent: alert\ndata: {data}\n\n"


@router.post("/{alert_id}/acknowledge", response_model=AlertChanged, responses=_errors)
def acknowledge(alert_id: UUID, app: App, actor: Safeguarding) -> AlertChanged:
    """Acknowledges an alert of your agency (raised or escalated); 409 once acknowledged
    or closed."""
    alert, position = app.acknowledge_alert(alert_id, actor)
    return AlertChanged(alert_id=alert.id, status=alert.status, position=position)


@router.post("/{alert_id}/close", response_model=AlertChanged, responses=_errors)
def close(alert_id: UUID, body: AlertCloseIn, app: App, actor: Safeguarding) -> AlertChanged:
    """Closes an alert of your agency with an outcome and a note; closing twice is 409."""
    alert, position = app.close_alert(alert_id, body.outcome, body.note, actor)
    return AlertChanged(alert_id=alert.id, status=alert.status, position=position)

