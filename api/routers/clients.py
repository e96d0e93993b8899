"""For practitioners: registering clients, recording facts, reading their own record."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status

from api.access import returned_item
from api.deps import Access, App, ClientRegistrar, FactRecorder, RecordReader
from api.errors import error_responses
from api.models import (
    ClientCreated,
    ClientExistsBody,
    ClientIn,
    ClientRecordOut,
    EventIn,
    EventRecorded,
    FactOut,
    IdentityOut,
)
from domain.access import AccessAction
from projections import queries

router = APIRouter(prefix="/v1/clients", tags=["practitioners"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ClientCreated,
             responses=error_responses(403, 409, bodies={409: ClientExistsBody}))
def register_client(body: ClientIn, app: App, actor: ClientRegistrar) -> ClientCreated:
    """Registers a client of the caller's treatment provider. Identity is sealed at once."""
    client_id, position = app.register_client(body.identity, actor)
    return ClientCreated(client_id=client_id, position=position)


@router.post("/{client_id}/events", status_code=status.HTTP_201_CREATED,
             response_model=EventRecorded, responses=error_responses(403, 404, 409, 503))
def record_event(client_id: UUID, body: EventIn, app: App, access: Access,
                 actor: FactRecorder) -> EventRecorded:
    """Records one fact about the client; the payload is validated against its type.
    A refusal (404 for a client you may not see, as for an unknown one) is recorded."""
    with access.attempting(actor, AccessAction.RECORD_FACT, client_ids=[client_id]):
        position = app.record_fact(client_id, body.type, body.data, body.occurred_at, actor)
    return EventRecorded(position=position)


@router.get("/{client_id}/record", response_model=ClientRecordOut,
            responses=error_responses(403, 404, 503))
def read_record(client_id: UUID, app: App, access: Access,
                actor: RecordReader) -> ClientRecordOut:
    """The caller agency's own record: identity (if it registered the client) and its facts.
    The read is recorded before it is returned."""
    with access.reading(actor, AccessAction.RECORD, client_id=client_id, purpose=None) as read:
        record = queries.client_record(app, client_id, actor)
        shown = [returned_item(None, f.category, f.controller, {"kind": "controller"})
                 for f in record.facts]
        if record.identity is not None:
            shown.insert(0, returned_item(None, "identity", record.controller,
                                          {"kind": "controller"}))
        read.returned(shown)
    identity = IdentityOut(**record.identity.model_dump()) if record.identity else None
    return ClientRecordOut(
        client_id=record.client_id, controller=record.controller,
        registered_at=record.registered_at, identity=identity,
        identity_erased=record.identity_erased,
        facts=[
            FactOut(sequence=f.sequence, type=f.fact_type, category=f.category,
                    occurred_at=f.occurred_at, recorded_at=f.recorded_at,
                    controller=f.controller, recorded_by=f.recorded_by, data=f.data)
            for f in record.facts
        ],
    )
