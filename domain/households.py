"""Households: clients who live together, linked so that rules can see the whole picture.

One adult in treatment, another recorded by the police as a domestic abuse perpetrator and
a third known to the mental health trust may live with the same children; each agency
holds a third of the picture. A ``Household`` aggregate names its members (client ids)
and who linked each one. Linking is a write by a practitioner or safeguarding officer of
an agency that holds its own record of, or has a basis to see, every client it links; a
client it cannot see gets the same 404 as an unknown one.

A client belongs to at most one household (kept simple on purpose: a person who moves is
a new fact for the future, not for this first version). That is enforced by a
``HouseholdMembership`` index aggregate per client, with an id derived from the client and
created in the same transaction as the link, so two concurrent links of one client
cannot both succeed.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.agencies import namespaced_uuid
from domain.errors import Conflict, InvalidCommand

#: At most this many clients in one household (a guard against mistakes, not policy).
MAX_MEMBERS = 20


def check_members(client_ids: list[UUID]) -> list[UUID]:
    """The different clients named, in order; refuses (422 naming ``client_ids``) fewer
    than one or more than ``MAX_MEMBERS``. The application asks it before it looks any
    client up; ``Household.link`` asks it again."""
    members = list(dict.fromkeys(client_ids))
    if not 1 <= len(members) <= MAX_MEMBERS:
        raise InvalidCommand("client_ids", f"name 1 to {MAX_MEMBERS} different clients")
    return members


class Household(Aggregate):
    """Clients who live together. A household has 1 to ``MAX_MEMBERS`` members, each
    named once; the one-household-per-client rule spans aggregates (``HouseholdMembership``)."""

    @classmethod
    def link(cls, client_ids: list[UUID], agency: str, linked_by: str) -> Household:
        """A new household of the different clients named (see ``check_members``)."""
        return cls(client_ids=check_members(client_ids), agency=agency, linked_by=linked_by)

    class Linked(Aggregate.Created):
        client_ids: list[UUID]
        agency: str
        linked_by: str

    @event(Linked)
    def __init__(self, client_ids: list[UUID], agency: str, linked_by: str) -> None:
        """``agency`` and ``linked_by`` say who linked the clients, for the record."""
        self.members: list[UUID] = list(client_ids)
        #: Which agency linked (or added) each member.
        self.linked_by_agency: dict[UUID, str] = {c: agency for c in client_ids}

    class MemberAdded(Aggregate.Event):
        client_id: UUID
        agency: str
        added_by: str

    def add_member(self, client_id: UUID, agency: str, added_by: str) -> None:
        """Adds a client not yet a member, to a household not yet full (both conflict)."""
        if client_id in self.members:
            raise Conflict(f"client {client_id} already belongs to a household")
        if len(self.members) >= MAX_MEMBERS:
            raise Conflict(f"this household already has {MAX_MEMBERS} members, the most "
                           "one may have")
        self._add_member(client_id=client_id, agency=agency, added_by=added_by)

    @event(MemberAdded)
    def _add_member(self, client_id: UUID, agency: str, added_by: str) -> None:
        self.members.append(client_id)
        self.linked_by_agency[client_id] = agency


class HouseholdMembership(Aggregate):
    """Index: the household a client belongs to (at most one; its id derives from the
    client, so a second membership conflicts in the event store)."""

    @staticmethod
    def create_id(client_id: UUID, **_: Any) -> UUID:
        return membership_id(client_id)

    @event("Joined")
    def __init__(self, client_id: UUID, household_id: UUID) -> None:
        self.client_id = client_id
        self.household_id = household_id


def membership_id(client_id: UUID) -> UUID:
    return namespaced_uuid(f"household-membership/{client_id}")
