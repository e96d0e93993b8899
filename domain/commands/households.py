"""Linking clients who live together, so that the safeguarding rules see the household
(a client is in at most one: a membership aggregate per client spans the households)."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.commands.core import ApplicationCore
from domain.errors import ClientNotFound, Conflict, HouseholdNotFound
from domain.households import Household, HouseholdMembership, check_members, membership_id
from domain.permissions import Action, require
from domain.results import Actor


class HouseholdCommands(ApplicationCore):
    """Households linked by agencies that see every member they link."""

    def link_household(self, client_ids: list[UUID], by: Actor) -> tuple[UUID, int]:
        """Links clients into a new household; returns (household id, log position).

        The caller's agency must hold its own record of, or have a basis to see, every
        client (otherwise the same 404 as for an unknown client). A client already in a
        household is a 409: a client belongs to at most one (domain/households.py)."""
        require(Action.LINK_HOUSEHOLD, by)
        members = check_members(client_ids)  # before any client is looked up
        for client_id in members:
            self._client_writable_by(client_id, by)
        for client_id in members:
            if self._exists(membership_id(client_id)):
                raise Conflict(f"client {client_id} already belongs to a household")
        household = Household.link(members, agency=by.agency, linked_by=by.reference)
        joined = [HouseholdMembership(client_id=c, household_id=household.id) for c in members]
        try:
            recordings = self.save(household, *joined)
        except IntegrityError:
            raise Conflict("a client was linked into another household at the same time; "
                           "nothing was written") from None
        return household.id, self._position(recordings)

    def add_household_member(self, household_id: UUID, client_id: UUID, by: Actor) -> int:
        """Adds a client to a household. The caller must see the client and at least one
        member already in the household; otherwise the household is as unknown (404)."""
        require(Action.ADD_HOUSEHOLD_MEMBER, by)
        household = self._get(household_id, Household)
        if household is None or not any(self._sees(c, by) for c in household.members):
            raise HouseholdNotFound()
        self._client_writable_by(client_id, by)
        # A member of this household conflicts in the aggregate; of another, here.
        if client_id not in household.members and self._exists(membership_id(client_id)):
            raise Conflict(f"client {client_id} already belongs to a household")

        def attempt() -> int:
            fresh = self._get(household_id, Household)
            assert fresh is not None
            fresh.add_member(client_id=client_id, agency=by.agency, added_by=by.reference)
            joined = HouseholdMembership(client_id=client_id, household_id=household_id)
            return self._position(self.save(fresh, joined))

        return self._retrying(attempt)

    def _sees(self, client_id: UUID, by: Actor) -> bool:
        try:
            self._client_writable_by(client_id, by)
        except ClientNotFound:
            return False
        return True
