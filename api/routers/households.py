"""For practitioners and safeguarding staff: linking clients who live together, and
seeing who does, as far as the caller's basis for a purpose lets it see each of them."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from api.access import returned_item
from api.deps import (
    Access,
    App,
    HouseholdLinker,
    HouseholdMemberAdder,
    HouseholdReader,
    Views,
    ViewsCaughtUp,
)
from api.errors import error_responses
from api.models import Strict
from domain.access import AccessAction
from domain.households import MAX_MEMBERS
from domain.vocabulary import Purpose
from projections import queries

router = APIRouter(prefix="/v1/households", tags=["practitioners"])


class HouseholdIn(Strict):
    client_ids: list[UUID] = Field(min_length=1, max_length=MAX_MEMBERS)


class MemberIn(Strict):
    client_id: UUID


class HouseholdCreated(BaseModel):
    household_id: UUID
    position: int


class HouseholdMemberOut(BaseModel):
    client_id: UUID
    identity: dict[str, Any] = Field(description="the identity fields your share names")


class HouseholdOut(BaseModel):
    household_id: UUID
    purpose: Purpose
    position: int = Field(description="the log position the agency views are current to")
    members: list[HouseholdMemberOut] = Field(
        description="only the members whose identity you may see for the purpose; the "
                    "others are neither named nor counted")


class MemberAdded(BaseModel):
    household_id: UUID
    client_id: UUID
    position: int


@router.post("", status_code=status.HTTP_201_CREATED, response_model=HouseholdCreated,
             responses=error_responses(403, 404, 409, 503))
def link(body: HouseholdIn, app: App, access: Access,
         actor: HouseholdLinker) -> HouseholdCreated:
    """Links clients who live together into a household, so the safeguarding rules see
    them together. Your agency must hold its own record of, or have a basis to see, each
    client (else 404, as for an unknown client); a client already in a household is 409."""
    with access.attempting(actor, AccessAction.LINK_HOUSEHOLD, client_ids=body.client_ids):
        household_id, position = app.link_household(body.client_ids, actor)
    return HouseholdCreated(household_id=household_id, position=position)


@router.post("/{household_id}/members", status_code=status.HTTP_201_CREATED,
             response_model=MemberAdded, responses=error_responses(403, 404, 409, 503))
def add_member(household_id: UUID, body: MemberIn, app: App, access: Access,
               actor: HouseholdMemberAdder) -> MemberAdded:
    """Adds a client to a household. You must see the client and a member already in the
    household; otherwise the household is as unknown (404). A refusal is recorded."""
    with access.attempting(actor, AccessAction.ADD_HOUSEHOLD_MEMBER,
                           client_ids=[body.client_id]):
        position = app.add_household_member(household_id, body.client_id, actor)
    return MemberAdded(household_id=household_id, client_id=body.client_id, position=position)


@router.get("/{household_id}", response_model=HouseholdOut,
            responses=error_responses(403, 404, 503))
def household(
    household_id: UUID,
    app: App,
    views: Views,
    access: Access,
    actor: HouseholdReader,
    _: ViewsCaughtUp,
    purpose: Annotated[Purpose, Query(description="why the caller needs to know")],
) -> HouseholdOut:
    """The household's members as your agency may see them for the purpose: each one
    whose identity a basis of yours shares for it (your own agency's clients, an
    agreement, a consent, an emergency grant), with the fields shared. Members you may not
    see are left out, not counted; a household of which you may see nobody is the same
    404 as an unknown one. The read is recorded, naming each member shown."""
    with access.reading(actor, AccessAction.HOUSEHOLD, client_id=None,
                        purpose=purpose.value) as read:
        found = queries.household(app, views, actor, household_id, purpose)
        read.returned(
            [{**returned_item(i.position, i.category, i.controller, i.basis),
              "client_id": str(member.client_id)}
             for member in found.members for i in member.shown],
            client_ids=[member.client_id for member in found.members],
            detail=f"household {household_id}")
    return HouseholdOut(
        household_id=found.household_id, purpose=found.purpose,
        position=views.position(),
        members=[HouseholdMemberOut(client_id=m.client_id, identity=m.identity)
                 for m in found.members])
