"""Partner agencies, the people and systems acting for them, and the partnership.

Agencies and principals are event-sourced like everything else, so who was given
access, by whom and when, and when it was taken away, is itself on the record.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import AgencyExists, InvalidCommand

_NAMESPACE = uuid5(NAMESPACE_URL, "https://accord.invalid/")
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


class AgencyKind(StrEnum):
    TREATMENT_PROVIDER = "treatment_provider"
    POLICE = "police"
    PROBATION = "probation"
    MENTAL_HEALTH = "mental_health"
    CHILDRENS_SERVICES = "childrens_services"
    ADULT_SOCIAL_CARE = "adult_social_care"
    HOUSING = "housing"
    PRIMARY_CARE = "primary_care"
    COMMISSIONER = "commissioner"


#: Agencies that give clinical care: the treatment provider, the mental health trust and
#: primary care. Only their staff may see clinical notes under emergency (break-glass)
#: access; every other agency's emergency access covers everything but clinical notes.
CLINICAL_KINDS = frozenset(
    {AgencyKind.TREATMENT_PROVIDER, AgencyKind.MENTAL_HEALTH, AgencyKind.PRIMARY_CARE}
)


class Role(StrEnum):
    PRACTITIONER = "practitioner"
    SAFEGUARDING = "safeguarding"
    IG_LEAD = "ig_lead"
    #: Manages its own agency's principals, and only those.
    ADMIN = "admin"
    COMMISSIONER = "commissioner"
    #: The partnership administrator: registers agencies and appoints (and removes) the
    #: admins of every agency. It sits in any one agency (the demo's in the commissioner),
    #: which gives it nothing more: it reads no client data and does not create staff.
    PARTNERSHIP_ADMIN = "partnership_admin"


#: The roles that administer principals, each within its own scope.
ADMINISTRATORS = frozenset({Role.ADMIN, Role.PARTNERSHIP_ADMIN})

#: Roles that only some kinds of agency may hold. A commissioner works with the whole
#: partnership's outcomes and acts for a commissioning body; practitioners and
#: safeguarding staff work with clients, which a commissioner does not. IG leads and both
#: kinds of administrator fit every agency.
_ROLE_KINDS: dict[Role, frozenset[AgencyKind]] = {
    Role.COMMISSIONER: frozenset({AgencyKind.COMMISSIONER}),
    Role.PRACTITIONER: frozenset(AgencyKind) - {AgencyKind.COMMISSIONER},
    Role.SAFEGUARDING: frozenset(AgencyKind) - {AgencyKind.COMMISSIONER},
}


def role_fits(kind: AgencyKind, role: Role) -> bool:
    """Whether a principal of an agency of this kind may hold this role.

    The one table of the rule, used by every way of adding a principal (API, CLI, demo),
    so that e.g. a `commissioner` token can only ever act for a commissioner agency.
    """
    return kind in _ROLE_KINDS.get(role, frozenset(AgencyKind))


def roles_for(kind: AgencyKind) -> list[Role]:
    """The roles that fit an agency of this kind, in the enum's order (for messages)."""
    return [role for role in Role if role_fits(kind, role)]


class Agency(Aggregate):
    """A partner organisation. Its id is its slug, e.g. ``police``."""

    @staticmethod
    def create_id(slug: str, **_: Any) -> UUID:
        return agency_uuid(slug)

    class Registered(Aggregate.Created):
        slug: str
        name: str
        kind: AgencyKind
        registered_by: str

    @event(Registered)
    def __init__(self, slug: str, name: str, kind: AgencyKind, registered_by: str) -> None:
        self.slug = slug
        self.name = name
        self.kind = AgencyKind(kind)
        self.registered_by = registered_by
        self.principal_ids: list[UUID] = []
        self.agreement_ids: list[UUID] = []
        #: How partners reach the agency about a client; None until one is recorded.
        self.contact: str | None = None

    class ContactRecorded(Aggregate.Event):
        contact: str
        recorded_by: str

    @event(ContactRecorded)
    def record_contact(self, contact: str, recorded_by: str) -> None:
        """How partners reach the agency about a client (a team's phone number or
        address): the directory shows it, and a client's chronology names the provider's,
        so a partner reading it knows whom to call."""
        self.contact = contact

    def check_role_fits(self, role: Role) -> None:
        """Refuses (422 naming ``role``) a role that does not fit this agency's kind
        (``role_fits``), before a principal of that role is enrolled in it."""
        if not role_fits(self.kind, role):
            fitting = ", ".join(r.value for r in roles_for(self.kind))
            raise InvalidCommand(
                "role", f"a {Role(role).value} cannot act for a {self.kind.value} agency "
                        f"(roles that fit: {fitting})")

    @event("PrincipalEnrolled")
    def enrol(self, principal_id: UUID) -> None:
        """The principal (a new aggregate, saved with this) acts for the agency. The role
        is the principal's, so its fit is checked first (``check_role_fits``); a database
        from before that check may hold principals that do not fit."""
        self.principal_ids.append(principal_id)

    @event("PartyToAgreement")
    def join_agreement(self, agreement_id: UUID) -> None:
        self.agreement_ids.append(agreement_id)


class Principal(Aggregate):
    """A named person or system acting for one agency in one role.

    Only a hash of the bearer token is kept. Revocation is an event, so it
    takes effect at the next request that loads the principal.
    """

    @event("Added")
    def __init__(
        self, agency: str, role: Role, name: str, token_hash: str, added_by: str
    ) -> None:
        self.agency = agency
        self.role = Role(role)
        self.name = name
        self.token_hash = token_hash
        self.added_by = added_by
        self.revoked = False
        self.revoked_reason: str | None = None
        self.revoked_by: str | None = None

    class Revoked(Aggregate.Event):
        """Named here (same topic as before) so the listing can read when it happened."""

        reason: str
        revoked_by: str

    def revoke(self, reason: str, revoked_by: str) -> None:
        """Revokes the principal; revoking it again changes nothing (and records nothing)."""
        if not self.revoked:
            self._revoke(reason=reason, revoked_by=revoked_by)

    @event(Revoked)
    def _revoke(self, reason: str, revoked_by: str) -> None:
        self.revoked = True
        self.revoked_reason = reason
        self.revoked_by = revoked_by


class Partnership(Aggregate):
    """The directory of agencies in the partnership: a single, well-known aggregate."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return PARTNERSHIP_ID

    @event("Formed")
    def __init__(self) -> None:
        self.agencies: list[str] = []

    def admit(self, slug: str) -> None:
        """An agency joins the partnership, once (a second admission is ``AgencyExists``)."""
        if slug in self.agencies:
            raise AgencyExists(slug)
        self._admit(slug=slug)

    @event("AgencyJoined")
    def _admit(self, slug: str) -> None:
        self.agencies.append(slug)

    @event("AdministratorRevoked")
    def note_administrator_revoked(self, principal_id: UUID, agency: str, role: str) -> None:
        """Recorded with each revocation of an admin or partnership admin, in the same
        transaction: two such revocations at once then conflict on this aggregate, and the
        one retried counts again, so no race can remove the last administrator."""


PARTNERSHIP_ID = uuid5(_NAMESPACE, "partnership")


def agency_uuid(slug: str) -> UUID:
    return uuid5(_NAMESPACE, f"agency/{slug}")


def namespaced_uuid(name: str) -> UUID:
    """A stable id in accord's namespace (for index aggregates)."""
    return uuid5(_NAMESPACE, name)
