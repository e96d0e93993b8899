"""For partners: the consent-scoped view of a client, and matching a person to a client."""

from __future__ import annotations

import contextlib
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from api.access import Access, returned_item
from api.auth import App, require
from api.models import ClientViewOut, ErrorBody, MatchIn, MatchOut, ViewFactOut
from consent.policy import BasisKind
from domain.access import AccessAction, AccessOutcome
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


async def agency_views(request: Request) -> AgencyViews:
    views: AgencyViews = request.app.state.projections.views
    return views


Views = Annotated[AgencyViews, Depends(agency_views)]


def _check_commissioner(actor: Actor, purpose: Purpose) -> None:
    if actor.role is Role.COMMISSIONER and purpose is not Purpose.COMMISSIONING:
        raise Forbidden("the commissioner role reads only for the purpose commissioning")


def _read(views: AgencyViews, actor: Actor, client_id: UUID,
          purpose: Purpose) -> tuple[int, bool, list[ViewItem]]:
    """The position the view is current to, whether the principal's agency sees the
    client at all, and the view's items for this principal. A commissioner-role principal
    sees only what agreements share for commissioning, never its own agency's full
    records."""
    position, seen, items = views.read(actor.agency, client_id, purpose.value)
    if actor.role is Role.COMMISSIONER:
        items = [i for i in items if i.basis["kind"] != BasisKind.CONTROLLER.value]
    return position, seen, items


def _items(views: AgencyViews, actor: Actor, client_id: UUID, purpose: Purpose) -> list[ViewItem]:
    return _read(views, actor, client_id, purpose)[2]


@router.get("/{client_id}/view", response_model=ClientViewOut, responses=_errors)
def view(
    client_id: UUID,
    app: App,
    views: Views,
    access: Access,
    actor: Viewer,
    purpose: Annotated[Purpose, Query(description="why the caller needs to see the client")],
    min_position: Annotated[int | None, Query(ge=1, description="wait until the view has "
                                              "caught up with this log position")] = None,
) -> ClientViewOut:
    """The caller agency's view of the client for a purpose: permitted facts, masked, each
    with its basis. No basis, an unknown client and an erased client are the same 404.
    The read is recorded (who, purpose, what was shown and why) before it is returned."""
    if min_position is not None:
        # On a time-out the answer still says which position it is current to.
        with contextlib.suppress(TimeoutError):
            views.tracking.wait(views.name, min_position, timeout=MAX_WAIT_SECONDS)
    with access.reading(actor, AccessAction.VIEW, client_id=client_id,
                        purpose=purpose.value) as read:
        _check_commissioner(actor, purpose)
        position, seen, items = _read(views, actor, client_id, purpose)
        if not seen:
            raise ClientNotFound()
        if not items:
            raise Forbidden(f"no agreement under which {actor.agency} sees this client names "
                            f"the purpose {purpose.value}")
        identity = None
        identity_items = [i for i in items if i.category == DataCategory.IDENTITY.value]
        if identity_items:
            try:
                full = app.identity_of(client_id).model_dump(mode="json")
            except IdentityErased:
                raise ClientNotFound() from None
            fields = identity_items[0].fields
            identity = {k: v for k, v in full.items() if fields is None or k in fields}
        read.returned(returned_item(i.position, i.category, i.controller, i.basis)
                      for i in items)
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
def match(body: MatchIn, app: App, views: Views, access: Access, actor: Viewer) -> MatchOut:
    """Finds the client for an NHS number (or family name and date of birth), only if the
    caller's agency has a basis to see something of that client for the stated purpose.
    Every match is recorded, including those that found nothing (never the search terms)."""
    fingerprint = app.match_keys(body.nhs_number, body.family_name, body.date_of_birth)
    with access.reading(actor, AccessAction.MATCH, client_id=None,
                        purpose=body.purpose.value) as read:
        _check_commissioner(actor, body.purpose)
        visible = [
            client_id for client_id in views.matching_clients(fingerprint)
            if _items(views, actor, client_id, body.purpose)
        ]
        if not visible:
            raise ClientNotFound()
        if len(visible) > 1:
            read.found_nothing(AccessOutcome.REFUSED, "more than one client matched")
            raise Conflict("more than one client you may see matches; match on the NHS number")
        # What the match disclosed: that this person is a client known to these agencies.
        bases = {(i.controller, i.basis.get("kind"), i.basis.get("agreement_id")): i
                 for i in _items(views, actor, visible[0], body.purpose)}
        read.returned([returned_item(None, "match", i.controller, i.basis)
                       for i in bases.values()], client_id=visible[0])
    return MatchOut(client_id=visible[0])
