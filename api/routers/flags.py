"""For an agency holding its own record of a client: flagging the client, so that its
safeguarding team hears when another agency reads, matches or records something about
them (``projections.flags`` raises the notifications), and taking a flag off."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status

from api.access import returned_item
from api.deps import Access, App, ClientFlagger, FlagReader
from api.errors import error_responses
from api.models import FlagCreated, FlagIn, FlagOut, FlagRemoveIn, PositionOut
from domain.access import AccessAction
from projections import flags as flagging

router = APIRouter(prefix="/v1/clients/{client_id}/flags", tags=["safeguarding"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=FlagCreated,
             responses=error_responses(403, 404, 409, 503))
def flag(client_id: UUID, body: FlagIn, app: App, access: Access,
         actor: ClientFlagger) -> FlagCreated:
    """Flags a client your agency holds its own record of (registered, or recorded a
    fact about), with the reason: from then on your safeguarding team is notified, in
    the alert inbox and on the alert stream (rule ``interest_in_flagged_client``), when
    another agency reads the client's view or chronology, looks them up, or records a
    fact about them: at most once a day per agency. The other agency is told nothing. A
    client your agency holds no record of is the same 404 as an unknown one, recorded as
    an attempt."""
    with access.attempting(actor, AccessAction.FLAG_CLIENT, client_ids=[client_id]):
        flag_id, position = app.flag_client(client_id, body.reason, actor)
    return FlagCreated(flag_id=flag_id, position=position)


@router.post("/{flag_id}/remove", response_model=PositionOut,
             responses=error_responses(403, 404, 409, 503))
def remove(client_id: UUID, flag_id: UUID, body: FlagRemoveIn, app: App, access: Access,
           actor: ClientFlagger) -> PositionOut:
    """Takes one of your agency's flags off the client, with the reason: interest after
    the returned position is no longer notified (under this flag). Another agency's
    flag is the same 404 as an unknown one; 409 if already removed. A refusal (404) is
    recorded as an attempt."""
    with access.attempting(actor, AccessAction.REMOVE_FLAG, client_ids=[client_id]):
        position = app.remove_flag(client_id, flag_id, body.reason, actor)
    return PositionOut(position=position)


@router.get("", response_model=list[FlagOut], responses=error_responses(403, 404, 503))
def list_flags(client_id: UUID, app: App, access: Access,
               actor: FlagReader) -> list[FlagOut]:
    """Your agency's flags on the client, in force or removed, oldest first (another
    agency's flags are its own). The read is recorded."""
    with access.reading(actor, AccessAction.FLAGS, client_id=client_id,
                        purpose=None) as read:
        found = flagging.flags(app, client_id, actor)
        read.returned(returned_item(None, "flag", actor.agency, {"kind": "controller"})
                      for _ in found)
    return [_out(record) for record in found]


def _out(record: flagging.FlagRecord) -> FlagOut:
    f, r = record.flagged, record.removed
    return FlagOut(
        flag_id=f.flag_id, reason=record.reason or "", flagged_by=f.flagged_by,
        flagged_at=f.timestamp, active=r is None, removed_by=r.removed_by if r else None,
        removed_at=r.timestamp if r else None, removal_reason=record.removal_reason)
