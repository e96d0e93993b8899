"""For partners: the consent-scoped view of a client, and matching a person to a client.

What a caller may see, and the answer to a match, are decided by the read side
(``projections.queries``); a route records the read and renders the result."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from api.access import returned_item
from api.deps import Access, App, Matcher, RestrictionReason, Viewer, Views, ViewsCaughtUp
from api.errors import error_responses
from api.models import ClientViewOut, MatchIn, MatchOut, ViewFactOut
from domain.access import AccessAction, AccessOutcome
from domain.vocabulary import Purpose
from projections import queries

router = APIRouter(prefix="/v1/clients", tags=["partners"])


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
    restriction_reason: RestrictionReason = None,
) -> ClientViewOut:
    """The caller agency's view of the client for a purpose: permitted facts, masked, each
    with its basis. No basis, an unknown client and an erased client are the same 404
    (as is a client whose processing is restricted, to partners; its controllers state
    the legal claim, ``restriction_reason``, or get 409). The read is recorded (who,
    purpose, what was shown and why) before it is returned."""
    with access.reading(actor, AccessAction.VIEW, client_id=client_id,
                        purpose=purpose.value) as read:
        found = queries.partner_view(app, views, actor, client_id, purpose,
                                     restriction_reason)
        read.returned((returned_item(i.position, i.category, i.controller, i.basis)
                       for i in found.shown), detail=found.legal_claim)
    return ClientViewOut(
        client_id=found.client_id, agency=found.agency, purpose=found.purpose,
        position=found.position, identity=found.identity,
        facts=[
            ViewFactOut(position=i.position, type=i.fact_type, category=i.category,
                        controller=i.controller, occurred_at=i.occurred_at,
                        recorded_at=i.recorded_at, data=i.data, basis=i.basis, reason=i.reason,
                        amended=i.amended)
            for i in found.facts
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
    the search terms); one that found a client the caller may not be told of names that
    client for the client's controllers' access audit only."""
    with access.reading(actor, AccessAction.MATCH, client_id=None,
                        purpose=body.purpose.value if body.purpose else None) as read:
        try:
            found = queries.match(app, views, actor, nhs_number=body.nhs_number,
                                  family_name=body.family_name,
                                  date_of_birth=body.date_of_birth, purpose=body.purpose,
                                  withhold=read.withholding)
        except queries.AmbiguousMatch:
            read.found_nothing(AccessOutcome.REFUSED, "more than one client matched")
            raise
        # What the match disclosed: that this person is a client known to these agencies.
        read.returned([returned_item(None, "match", i.controller, i.basis)
                       for i in found.bases], client_id=found.client_id)
    return MatchOut(client_id=found.client_id)
