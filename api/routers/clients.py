"""For practitioners: registering clients, recording facts and correcting them (amending
or retracting a fact their agency recorded), reading their own record."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, status

from api.access import returned_item
from api.deps import (
    Access,
    App,
    ClientRegistrar,
    FactAmender,
    FactRecorder,
    FactRetractor,
    ReadEngine,
    RecordReader,
    RestrictionReason,
)
from api.errors import error_responses
from api.models import (
    ClientCreated,
    ClientExistsBody,
    ClientIn,
    ClientRecordOut,
    CorrectionOut,
    EventIn,
    EventRecorded,
    FactAmendIn,
    FactOut,
    FactRetractIn,
    IdentityOut,
    PositionOut,
)
from domain.access import AccessAction
from domain.inputs import LogPosition
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


FactPosition = Annotated[LogPosition, Path(
    description="the fact's log position, as recording it returned and views show it")]


@router.post("/{client_id}/facts/{position}/amend", response_model=PositionOut,
             responses=error_responses(403, 404, 409, 503))
def amend_fact(client_id: UUID, position: FactPosition, body: FactAmendIn, app: App,
               access: Access, actor: FactAmender) -> PositionOut:
    """Corrects a fact your agency recorded in error: ``data`` replaces its payload
    (validated against its type) and ``occurred_at``, if given, when it happened, with
    the reason. Partners' views, feeds, reports and the safeguarding rules follow the
    corrected fact from the returned position; a replay of an earlier moment shows the
    original. Another agency's fact is the same 404 as an unknown one (and a client your
    agency holds no record of, as an unknown client); the refusal is recorded. 409 once
    the fact is retracted."""
    with access.attempting(actor, AccessAction.AMEND_FACT, client_ids=[client_id]):
        at = app.amend_fact(client_id, position, body.data, body.occurred_at, body.reason,
                            actor)
    return PositionOut(position=at)


@router.post("/{client_id}/facts/{position}/retract", response_model=PositionOut,
             responses=error_responses(403, 404, 409, 503))
def retract_fact(client_id: UUID, position: FactPosition, body: FactRetractIn, app: App,
                 access: Access, actor: FactRetractor) -> PositionOut:
    """Withdraws a fact your agency should never have recorded, with the reason: from the
    returned position no partner sees it (their feeds say it left), no report or
    safeguarding rule counts it, and your own record keeps it marked retracted. Refused
    like an amendment; 409 if already retracted."""
    with access.attempting(actor, AccessAction.RETRACT_FACT, client_ids=[client_id]):
        at = app.retract_fact(client_id, position, body.reason, actor)
    return PositionOut(position=at)


def _correction(found: queries.RecordedCorrection) -> CorrectionOut:
    return CorrectionOut(position=found.position, at=found.at, by=found.by,
                         reason=found.reason)


@router.get("/{client_id}/record", response_model=ClientRecordOut,
            responses=error_responses(403, 404, 503))
def read_record(client_id: UUID, app: App, access: Access, engine: ReadEngine,
                actor: RecordReader,
                restriction_reason: RestrictionReason = None) -> ClientRecordOut:
    """The caller agency's own record: identity (if it registered the client) and its
    facts, each with its log position and as it stands after the agency's corrections
    (amended, or retracted and why), free text opened. The read is recorded before it is
    returned. A client whose processing is restricted is read only stating the legal
    claim (``restriction_reason``, recorded with the read; 409 without one)."""
    with access.reading(actor, AccessAction.RECORD, client_id=client_id, purpose=None) as read:
        record = queries.client_record(app, client_id, actor, log=engine,
                                       restriction_reason=restriction_reason)
        shown = [returned_item(None, f.category, f.controller, {"kind": "controller"})
                 for f in record.facts]
        if record.identity is not None:
            shown.insert(0, returned_item(None, "identity", record.controller,
                                          {"kind": "controller"}))
        read.returned(shown, detail=record.legal_claim)
    identity = IdentityOut(**record.identity.model_dump()) if record.identity else None
    return ClientRecordOut(
        client_id=record.client_id, controller=record.controller,
        registered_at=record.registered_at, identity=identity,
        identity_erased=record.identity_erased,
        legal_hold=record.legal_hold, restricted=record.restricted,
        facts=[
            FactOut(sequence=f.sequence, position=f.position, type=f.fact_type,
                    category=f.category, occurred_at=f.occurred_at,
                    recorded_at=f.recorded_at, controller=f.controller,
                    recorded_by=f.recorded_by, data=f.data,
                    amendments=[_correction(c) for c in f.amendments],
                    retraction=_correction(f.retraction) if f.retraction else None)
            for f in record.facts
        ],
    )
