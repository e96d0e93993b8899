"""For partners: the consent-scoped view of a client, and matching a person to a client."""

from __future__ import annotations

import contextlib
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from api.auth import App, require
from api.models import ClientViewOut, ErrorBody, MatchIn, MatchOut, ViewFactOut
from consent.policy import BasisKind
from domain.agencies import Role
from domain.application import Actor
from domain.categories import DataCategory
from domain.errors import ClientNotFound, Conflict, Forbidden
from domain.identity import IdentityErased
from domain.vocabulary import Purpose
from projections.views import AgencyViews, ViewItem

router = APIRouter(prefix="/v1/clients", tags=["partners"])
Viewer = Annotated[
    Actor, Depends(require(Role.PRACTITIONER, Role.SAFEGUARDING, Role.COMMISSIONER))
]
_errors: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422)
}
#: How long a read-your-writes request waits for the view to catch up.
MAX_WAIT_SECONDS = 2.0


def agency_views(request: Request) -> AgencyViews:
    views: AgencyViews = request.app.state.projections.views
    return views


Views = Annotated[AgencyViews, Depends(agency_views)]


def _check_commissioner(actor: Actor, purpose: Purpose) -> None:
    if actor.role is Role.COMMISSIONER and purpose is not Purpose.COMMISSIONING:
        raise Forbidden("the commissioner role reads only for the purpose commissioning")


def _items(views: AgencyViews, actor: Actor, client_id: UUID, purpose: Purpose) -> list[ViewItem]:
    """The view's items for this principal. A commissioner-role principal sees only what
    agreements share for commissioning, never its own agency's full records."""
    items = views.items(actor.agency, client_id, purpose.value)
    if actor.role is Role.COMMISSIONER:
        items = [i for i in items if i.basis["kind"] != BasisKind.CONTROLLER.value]
    return items


@router.get("/{client_id}/view", response_model=ClientViewOut, responses=_errors)
def view(
    client_id: UUID,
    app: App,
    views: Views,
    actor: Viewer,
    purpose: Annotated[Purpose, Query(description="why the caller needs to see the client")],
    min_position: Annotated[int | None, Query(ge=1, description="wait until the view has "
                                              "caught up with this log position")] = None,
) -> ClientViewOut:
    """The caller agency's view of the client for a purpose: permitted facts, masked, each
    with its basis. No basis, an unknown client and an erased client are the same 404."""
    if min_position is not None:
        # On a time-out the answer still says which position it is current to.
        with contextlib.suppress(TimeoutError):
            views.tracking.wait(views.name, min_position, timeout=MAX_WAIT_SECONDS)
    _check_commissioner(actor, purpose)
    position = views.position()
    if not views.sees_client(actor.agency, client_id):
        raise ClientNotFound()
    items = _items(views, actor, client_id, purpose)
    if not items:
        raise Forbidden(f"no agreement under which {actor.agency} sees this client names the "
                        f"purpose {purpose.value}")
    identity = None
    identity_items = [i for i in items if i.category == DataCategory.IDENTITY.value]
    if identity_items:
        try:
            full = app.identity_of(client_id).model_dump(mode="json")
        except IdentityErased:
            raise ClientNotFound() from None
        fields = identity_items[0].fields
        identity = {k: v for k, v in full.items() if fields is None or k in fields}
    return ClientViewOut(
        client_id=client_id, agency=actor.agency, purpose=purpose, position=position,
        identity=identity,
        facts=[
            ViewFactOut(position=i.position, type=i.fact_type, category=i.category,
                        controller=i.controller, occurred_at=i.occurred_at,
                        recorded_at=i.recorded_at, data=i.data, basis=i.basis, reason=i.reason)
            for i in items if i.category != DataCategory.IDENTITY.value
        ],
    )


@router.post("/match", response_model=MatchOut, responses=_errors)
def match(body: MatchIn, app: App, views: Views, actor: Viewer) -> MatchOut:
    """Finds the client for an NHS number (or family name and date of birth), only if the
    caller's agency has a basis to see something of that client for the stated purpose."""
    fingerprint = app.match_keys(body.nhs_number, body.family_name, body.date_of_birth)
    _check_commissioner(actor, body.purpose)
    visible = [
        client_id for client_id in views.matching_clients(fingerprint)
        if _items(views, actor, client_id, body.purpose)
    ]
    if not visible:
        raise ClientNotFound()
    if len(visible) > 1:
        raise Conflict("more than one client you may see matches; match on the NHS number")
    return MatchOut(client_id=visible[0])
