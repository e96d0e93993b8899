"""For partners: the consent-scoped view of a client, and matching a person to a client."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from api.access import Access, returned_item
from api.auth import App, require
from api.catching_up import ViewsCaughtUp
from api.errors import error_responses
from api.models import ClientViewOut, MatchIn, MatchOut, ViewFactOut
from consent.policy import BasisKind
from domain.access import AccessAction, AccessOutcome
from domain.agencies import Role
from domain.application import Actor
from domain.categories import DataCategory
from domain.errors import ClientNotFound, Conflict, Forbidden, InvalidCommand
from domain.identity import IdentityErased
from domain.vocabulary import Purpose
from projections.views import AgencyViews, ViewItem

router = APIRouter(prefix="/v1/clients", tags=["partners"])
Viewer = Annotated[
    Actor, Depends(require(Role.PRACTITIONER, Role.SAFEGUARDING, Role.COMMISSIONER))
]
#: Who may match: partners for a purpose, and IG leads for their own agency's clients.
Matcher = Annotated[
    Actor, Depends(require(Role.PRACTITIONER, Role.SAFEGUARDING, Role.COMMISSIONER,
                           Role.IG_LEAD))
]


async def agency_views(request: Request) -> AgencyViews:
    views: AgencyViews = request.app.state.projections.views
    return views


Views = Annotated[AgencyViews, Depends(agency_views)]


def _check_commissioner(actor: Actor, purpose: Purpose) -> None:
    if actor.role is Role.COMMISSIONER and purpose is not Purpose.COMMISSIONING:
        raise Forbidden("the commissioner role reads only for the purpose commissioning")


def _no_per_client_view(actor: Actor) -> None:
    """Commissioners work with aggregates (outcome reports), never one person's record:
    even a view with no identifiers would let them follow one person's scores over time
    and, with anything else they know, single that person out."""
    if actor.role is Role.COMMISSIONER:
        raise Forbidden("commissioners read aggregate reports, not one client's view")


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


@router.get("/{client_id}/view", response_model=ClientViewOut,
            responses=error_responses(403, 404, 503))
def view(
    client_id: UUID,
    app: App,
    views: Views,
    access: Access,
    actor: Viewer,
    _: ViewsCaughtUp,
    purpose: Annotated[Purpose, Query(description="why the caller needs to see the client")],
) -> ClientViewOut:
    """The caller agency's view of the client for a purpose: permitted facts, masked, each
    with its basis. No basis, an unknown client and an erased client are the same 404.
    The read is recorded (who, purpose, what was shown and why) before it is returned."""
    with access.reading(actor, AccessAction.VIEW, client_id=client_id,
                        purpose=purpose.value) as read:
        _no_per_client_view(actor)
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


@router.post("/match", response_model=MatchOut, responses=error_responses(403, 404, 409, 503))
def match(body: MatchIn, app: App, views: Views, access: Access, actor: Matcher) -> MatchOut:
    """Finds the client for an NHS number (or family name and date of birth).

    A partner gets an answer only for a client whose identity its agency may see for the
    stated purpose: the same shares (``decide``) that give its view the ``identity``
    category. Any other basis (outcomes without identifiers, say) is no basis to learn who
    a person is, or whether they are a client at all. An IG lead gets an answer only for
    a client its own agency holds a record of (to answer a subject access request); the
    purpose is then optional. Anything else is the same no-match answer as for an
    unknown person. Every match is recorded, including those that found nothing (never
    the search terms)."""
    if body.purpose is None and actor.role is not Role.IG_LEAD:
        raise InvalidCommand("purpose", "state the purpose of the match")
    fingerprint = app.match_keys(body.nhs_number, body.family_name, body.date_of_birth)
    # An IG lead's answer rests on its agency's own record, which holds for every purpose.
    purpose = body.purpose or Purpose.DIRECT_CARE
    with access.reading(actor, AccessAction.MATCH, client_id=None,
                        purpose=body.purpose.value if body.purpose else None) as read:
        if body.purpose is not None:
            _check_commissioner(actor, body.purpose)
        shown = {client_id: items for client_id in views.matching_clients(fingerprint)
                 if (items := _match_basis(views, actor, client_id, purpose))}
        if not shown:
            raise ClientNotFound()
        if len(shown) > 1:
            read.found_nothing(AccessOutcome.REFUSED, "more than one client matched")
            raise Conflict("more than one client you may see matches; match on the NHS number")
        # What the match disclosed: that this person is a client known to these agencies.
        [(client_id, items)] = shown.items()
        bases = {(i.controller, i.basis.get("kind"), i.basis.get("agreement_id")): i
                 for i in items}
        read.returned([returned_item(None, "match", i.controller, i.basis)
                       for i in bases.values()], client_id=client_id)
    return MatchOut(client_id=client_id)


def _match_basis(views: AgencyViews, actor: Actor, client_id: UUID,
                 purpose: Purpose) -> list[ViewItem]:
    """The items on which the caller may be told this client's id (none: no match).

    For an IG lead, its own agency's record of the client (the controller rows, which
    hold for every purpose). For anyone else, the identity the view would show for the
    purpose: a match answers who a person is, so it needs the basis that shares who they
    are, not merely a basis to see something of them."""
    items = _items(views, actor, client_id, purpose)
    if actor.role is Role.IG_LEAD:
        return [i for i in items if i.basis["kind"] == BasisKind.CONTROLLER.value]
    return [i for i in items if i.category == DataCategory.IDENTITY.value]
