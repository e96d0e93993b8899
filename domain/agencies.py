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
    ADMIN = "admin"
    COMMISSIONER = "commissioner"


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

    @event("PrincipalEnrolled")
    def enrol(self, principal_id: UUID) -> None:
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

    @event("Revoked")
    def revoke(self, reason: str, revoked_by: str) -> None:
        self.revoked = True
        self.revoked_reason = reason


class Partnership(Aggregate):
    """The directory of agencies in the partnership: a single, well-known aggregate."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return PARTNERSHIP_ID

    @event("Formed")
    def __init__(self) -> None:
        self.agencies: list[str] = []

    @event("AgencyJoined")
    def admit(self, slug: str) -> None:
        self.agencies.append(slug)


PARTNERSHIP_ID = uuid5(_NAMESPACE, "partnership")


def agency_uuid(slug: str) -> UUID:
    return uuid5(_NAMESPACE, f"agency/{slug}")


def namespaced_uuid(name: str) -> UUID:
    """A stable id in accord's namespace (for index aggregates)."""
    return uuid5(_NAMESPACE, name)
