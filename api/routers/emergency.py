"""For partners: emergency ("break-glass") access to one client (DESIGN.md rule 5)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, status

from api.access import Access
from api.auth import App, require
from api.models import EmergencyAccessCreated, EmergencyAccessIn, ErrorBody
from domain.access import AccessAction
from domain.agencies import Role
from domain.application import Actor

router = APIRouter(prefix="/v1/clients", tags=["partners"])
Breaker = Annotated[Actor, Depends(require(Role.PRACTITIONER, Role.SAFEGUARDING))]
_errors: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422)
}


@router.post("/{client_id}/emergency-access", status_code=status.HTTP_201_CREATED,
             response_model=EmergencyAccessCreated, responses=_errors)
def break_glass(client_id: UUID, body: EmergencyAccessIn, app: App, access: Access,
                actor: Breaker) -> EmergencyAccessCreated:
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
