"""For partners: emergency ("break-glass") access to one client (DESIGN.md rule 5)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status

from api.deps import Access, App, GlassBreaker, GrantEnder
from api.errors import error_responses
from api.models import (
    EmergencyAccessCreated,
    EmergencyAccessEndIn,
    EmergencyAccessIn,
    PositionOut,
)
from domain.access import AccessAction

router = APIRouter(prefix="/v1/clients", tags=["partners"])


@router.post("/{client_id}/emergency-access", status_code=status.HTTP_201_CREATED,
             response_model=EmergencyAccessCreated,
             responses=error_responses(403, 404, 409, 503))
def break_glass(client_id: UUID, body: EmergencyAccessIn, app: App, access: Access,
                actor: GlassBreaker) -> EmergencyAccessCreated:
    """Time-limited access (at most 24 hours) to every fact of one client, for one purpose,
    for the caller's agency; clinical notes only for a clinical agency (treatment provider,
    mental health, primary care). The grant is recorded on the client's stream, is the
    basis the view names, and opens an IG review for the client's controller.

    An unknown or erased client is a 404; the client's own registering agency gets a 403
    (it sees its own record without breaking glass)."""
    with access.attempting(actor, AccessAction.EMERGENCY_ACCESS, client_ids=[client_id],
                           purpose=body.purpose.value):
        grant = app.grant_emergency_access(client_id, body.purpose, body.justification,
                                           body.minutes, actor)
    return EmergencyAccessCreated(grant_id=grant.grant_id, expires_at=grant.expires_at,
                                  position=grant.position, review_id=grant.review_id)


@router.post("/{client_id}/emergency-access/{grant_id}/end", response_model=PositionOut,
             responses=error_responses(403, 404, 409, 503))
def end(client_id: UUID, grant_id: UUID, body: EmergencyAccessEndIn, app: App,
        access: Access, actor: GrantEnder) -> PositionOut:
    """The IG lead of the client's registering controller ends a running grant now: from
    the position returned, the grantee's view (and its feed, and a replay) no longer
    shows what the grant alone showed. The grant's review stays open for its outcome.

    A grant already ended or expired is a 409. Any other agency's IG lead gets a 404, the
    same as for an unknown client or grant."""
    with access.attempting(actor, AccessAction.END_EMERGENCY_ACCESS, client_ids=[client_id]):
        position = app.end_emergency_access(client_id, grant_id, body.reason, actor)
    return PositionOut(position=position)
