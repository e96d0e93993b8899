"""For practitioners: recording and withdrawing the client's consent to share."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status

from api.access import returned_item
from api.deps import Access, App, ConsentGiver, ConsentReader, ConsentWithdrawer
from api.errors import error_responses
from api.models import ConsentCreated, ConsentIn, ConsentOut, PositionOut, WithdrawIn
from domain.access import AccessAction
from projections import queries
from projections.queries import ConsentRecord

router = APIRouter(prefix="/v1/clients/{client_id}/consents", tags=["practitioners"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ConsentCreated,
             responses=error_responses(403, 404, 409, 503))
def give(client_id: UUID, body: ConsentIn, app: App, access: Access,
         actor: ConsentGiver) -> ConsentCreated:
    """Records consent to share the caller agency's data about the client. A refusal
    (404 for a client your agency holds no record of) is recorded."""
    with access.attempting(actor, AccessAction.GIVE_CONSENT, client_ids=[client_id]):
        consent_id, position = app.give_consent(
            client_id, recipient_agency=body.recipient_agency,
            recipient_kind=body.recipient_kind, categories=[c.value for c in body.categories],
            purposes=[p.value for p in body.purposes], data_from=body.data_from,
            data_to=body.data_to, expires_at=body.expires_at, obtained=body.obtained.value,
            by=actor,
        )
    return ConsentCreated(consent_id=consent_id, position=position)


@router.post("/{consent_id}/withdraw", response_model=PositionOut,
             responses=error_responses(403, 404, 409, 503))
def withdraw(client_id: UUID, consent_id: UUID, body: WithdrawIn, app: App, access: Access,
             actor: ConsentWithdrawer) -> PositionOut:
    """Withdrawal takes effect at its log position: partners' views lose what it covered.
    A refusal (404) is recorded."""
    with access.attempting(actor, AccessAction.WITHDRAW_CONSENT, client_ids=[client_id]):
        position = app.withdraw_consent(client_id, consent_id, body.reason, actor)
    return PositionOut(position=position)


@router.get("", response_model=list[ConsentOut], responses=error_responses(403, 404, 503))
def list_consents(client_id: UUID, app: App, access: Access,
                  actor: ConsentReader) -> list[ConsentOut]:
    """The consents recorded for sharing the caller agency's data about the client."""
    with access.reading(actor, AccessAction.CONSENTS, client_id=client_id,
                        purpose=None) as read:
        records = queries.consents(app, client_id, actor)
        read.returned(returned_item(None, "consent", r.given.controller, {"kind": "controller"})
                      for r in records)
    return [_out(r) for r in records]


def _out(record: ConsentRecord) -> ConsentOut:
    g, w = record.given, record.withdrawn
    return ConsentOut(
        consent_id=g.consent_id, controller=g.controller, recipient_agency=g.recipient_agency,
        recipient_kind=g.recipient_kind, categories=g.categories, purposes=g.purposes,
        data_from=g.data_from, data_to=g.data_to, expires_at=g.expires_at, obtained=g.obtained,
        recorded_by=g.recorded_by, given_at=g.timestamp,
        withdrawn_at=w.timestamp if w else None, withdrawal_reason=w.reason if w else None,
        active=w is None,
    )
