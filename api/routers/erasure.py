"""For IG leads: the client's rights over the record. Erasure (UK GDPR Art. 17) by
crypto-shredding, the legal hold that prevents it, and restriction of processing
(Art. 18). Each is the registering controller's IG lead's; to anyone else's the client
is as unknown (404), and that attempt is on the client's access record."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from api.deps import (
    Access,
    App,
    ClientEraser,
    LegalHoldLifter,
    LegalHoldPlacer,
    ProcessingRestrictor,
    ReadEngine,
    RestrictionLifter,
    SubjectAccessAnswerer,
)
from api.errors import error_responses
from api.models import ErasureOut, PositionOut, RecordRightsOut, StatedReasonIn
from domain.access import AccessAction
from domain.commands.erasure import reason_fingerprint
from projections import queries
from projections.retention import SafeguardingRetention

router = APIRouter(prefix="/v1/clients", tags=["ig leads"])


@router.get("/{client_id}/rights", response_model=RecordRightsOut,
            responses=error_responses(403, 404, 503))
def record_rights(client_id: UUID, app: App, access: Access,
                  actor: SubjectAccessAnswerer) -> RecordRightsOut:
    """Whether a legal hold keeps the client's record from erasure and whether its
    processing is restricted, for the IG lead of the registering controller answering
    the client's rights (as for a subject access request; no personal data, so a
    restricted client's status is read without a legal claim). Recorded as a read of the
    agency's own record."""
    with access.reading(actor, AccessAction.RECORD, client_id=client_id,
                        purpose=None) as read:
        found = queries.record_rights(app, client_id, actor)
        read.returned((), detail="legal hold and restriction")
    return RecordRightsOut(client_id=found.client_id, legal_hold=found.legal_hold,
                           restricted=found.restricted)


@router.post("/{client_id}/erase", response_model=ErasureOut,
             responses=error_responses(403, 404, 409, 503))
def erase(client_id: UUID, body: StatedReasonIn, app: App, access: Access,
          engine: ReadEngine, actor: ClientEraser) -> ErasureOut:
    """Erases the client (crypto-shredding): their data key is destroyed, which erases
    the identity and every free-text field (notes, concern summaries, care plan goals)
    wherever they went, and the erasure is recorded with no personal data (the reason
    only as its keyed fingerprint, returned here for your case file). The log and its
    signed tree heads still verify. Partners get the same 404 as for an unknown client,
    and the NHS number may be registered again.

    409, changing nothing, while a legal hold is in place, while a child protection
    status recorded about the client is in force, or while a safeguarding alert about
    the client or its household is open (the message says which); also if the
    safeguarding alerts cannot be brought up to date with the log in a few seconds."""
    with access.attempting(actor, AccessAction.ERASE, client_ids=[client_id]):
        SafeguardingRetention(engine).caught_up(app.head_position)
        position = app.erase_client(client_id, body.reason, actor)
    return ErasureOut(position=position,
                      reason_fingerprint=reason_fingerprint(app.vault, body.reason))


@router.post("/{client_id}/legal-hold", response_model=PositionOut,
             responses=error_responses(403, 404, 409, 503))
def place_legal_hold(client_id: UUID, body: StatedReasonIn, app: App, access: Access,
                     actor: LegalHoldPlacer) -> PositionOut:
    """Places a legal hold (litigation, an inquiry, a complaint): the record cannot be
    erased until it is lifted. The reason is sealed with the client's data key. 409 if a
    hold is already in place."""
    with access.attempting(actor, AccessAction.LEGAL_HOLD, client_ids=[client_id]):
        position = app.place_legal_hold(client_id, body.reason, actor)
    return PositionOut(position=position)


@router.post("/{client_id}/legal-hold/lift", response_model=PositionOut,
             responses=error_responses(403, 404, 409, 503))
def lift_legal_hold(client_id: UUID, body: StatedReasonIn, app: App, access: Access,
                    actor: LegalHoldLifter) -> PositionOut:
    """Lifts the legal hold, with the reason (sealed). 409 if none is in place."""
    with access.attempting(actor, AccessAction.LEGAL_HOLD, client_ids=[client_id]):
        position = app.lift_legal_hold(client_id, body.reason, actor)
    return PositionOut(position=position)


@router.post("/{client_id}/restriction", response_model=PositionOut,
             responses=error_responses(403, 404, 409, 503))
def restrict_processing(client_id: UUID, body: StatedReasonIn, app: App, access: Access,
                        actor: ProcessingRestrictor) -> PositionOut:
    """Restricts processing of the client (UK GDPR Art. 18), with the reason (sealed):
    from the returned position partners see nothing of them (their views answer 404,
    matches and searches no match, cohorts leave them out, feeds say each fact left,
    reports stop counting them), and your own agency's reads of the record, the view and
    the chronology must state a legal claim (``restriction_reason``), recorded with each
    read. Safeguarding alerts under a legal duty are still raised. 409 if already
    restricted."""
    with access.attempting(actor, AccessAction.RESTRICTION, client_ids=[client_id]):
        position = app.restrict_processing(client_id, body.reason, actor)
    return PositionOut(position=position)


@router.post("/{client_id}/restriction/lift", response_model=PositionOut,
             responses=error_responses(403, 404, 409, 503))
def lift_restriction(client_id: UUID, body: StatedReasonIn, app: App, access: Access,
                     actor: RestrictionLifter) -> PositionOut:
    """Lifts the restriction, with the reason (sealed): partners see the client again as
    agreements and consents allow (their feeds say each fact entered). 409 if the client
    is not restricted."""
    with access.attempting(actor, AccessAction.RESTRICTION, client_ids=[client_id]):
        position = app.lift_restriction(client_id, body.reason, actor)
    return PositionOut(position=position)
