"""For practitioners and safeguarding staff: linking clients who live together."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from api.deps import Access, App, HouseholdLinker, HouseholdMemberAdder
from api.errors import error_responses
from api.models import Strict
from domain.access import AccessAction
from domain.households import MAX_MEMBERS

router = APIRouter(prefix="/v1/households", tags=["practitioners"])


class HouseholdIn(Strict):
    client_ids: list[UUID] = Field(min_length=1, max_length=MAX_MEMBERS)


class MemberIn(Strict):
    client_id: UUID


class HouseholdCreated(BaseModel):
    household_id: UUID
    position: int


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
