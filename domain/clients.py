"""The client: a person the partnership works with, and the facts recorded about them.

A client's registration, facts (and, later, consents and emergency grants) are
events on the client's own aggregate, so one stream replays the client's whole
story in order. The aggregate keeps only what its commands need to check;
readers get the facts from the stream itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.agencies import namespaced_uuid


class Client(Aggregate):
    """A client of the partnership, registered by one agency (the record's controller)."""

    class Registered(Aggregate.Created):
        controller: str
        registered_by: str
        sealed_identity: str
        nhs_fingerprint: str
        name_fingerprint: str

    @event(Registered)
    def __init__(
        self,
        id: UUID,
        controller: str,
        registered_by: str,
        sealed_identity: str,
        nhs_fingerprint: str,
        name_fingerprint: str,
    ) -> None:
        self.controller = controller
        self.registered_by = registered_by
        self.sealed_identity = sealed_identity
        self.nhs_fingerprint = nhs_fingerprint
        self.name_fingerprint = name_fingerprint
        self.facts_recorded = 0
        self.controllers: set[str] = {controller}
        self.consents: dict[UUID, Consent] = {}
        self.erased = False
        #: Emergency grants: grant id -> the agency it was granted to.
        self.emergency_grants: dict[UUID, str] = {}

    class FactRecorded(Aggregate.Event):
        fact_type: str
        category: str
        data: dict[str, Any]
        occurred_at: datetime
        controller: str
        recorded_by: str

    @event(FactRecorded)
    def record_fact(
        self,
        fact_type: str,
        category: str,
        data: dict[str, Any],
        occurred_at: datetime,
        controller: str,
        recorded_by: str,
    ) -> None:
        """Records one fact. ``controller`` is the agency that recorded it and answers for it."""
        self.facts_recorded += 1
        self.controllers.add(controller)

    class ConsentGiven(Aggregate.Event):
        consent_id: UUID
        controller: str
        recipient_agency: str | None
        recipient_kind: str | None
        categories: list[str]
        purposes: list[str]
        data_from: date | None
        data_to: date | None
        expires_at: datetime | None
        obtained: str
        recorded_by: str

    @event(ConsentGiven)
    def give_consent(
        self,
        consent_id: UUID,
        controller: str,
        recipient_agency: str | None,
        recipient_kind: str | None,
        categories: list[str],
        purposes: list[str],
        data_from: date | None,
        data_to: date | None,
        expires_at: datetime | None,
        obtained: str,
        recorded_by: str,
    ) -> None:
        """The client agrees that ``controller``'s data in these categories may go to the
        recipient (one agency, or every agency of a kind) for these purposes."""
        self.consents[consent_id] = Consent(consent_id, controller, withdrawn=False)

    class ConsentWithdrawn(Aggregate.Event):
        consent_id: UUID
        reason: str
        recorded_by: str

    @event(ConsentWithdrawn)
    def withdraw_consent(self, consent_id: UUID, reason: str, recorded_by: str) -> None:
        self.consents[consent_id] = Consent(consent_id, self.consents[consent_id].controller,
                                            withdrawn=True)

    class EmergencyAccessGranted(Aggregate.Event):
        grant_id: UUID
        review_id: UUID
        agency: str
        agency_kind: str
        principal: str
        principal_name: str
        role: str
        purpose: str
        justification: str
        clinical_notes: bool
        granted_at: datetime
        expires_at: datetime

    @event(EmergencyAccessGranted)
    def grant_emergency_access(
        self,
        grant_id: UUID,
        review_id: UUID,
        agency: str,
        agency_kind: str,
        principal: str,
        principal_name: str,
        role: str,
        purpose: str,
        justification: str,
        clinical_notes: bool,
        granted_at: datetime,
        expires_at: datetime,
    ) -> None:
        """Break-glass: a named person of ``agency`` sees the client, for one purpose,
        from ``granted_at`` until ``expires_at``; clinical notes only if ``clinical_notes``
        (decided when granted, from the agency's kind). IG review ``review_id`` is opened
        in the same transaction."""
        self.emergency_grants[grant_id] = agency

    class Erased(Aggregate.Event):
        reason: str
        erased_by: str

    @event(Erased)
    def erase(self, reason: str, erased_by: str) -> None:
        """The identity's data key has been destroyed; partners no longer see the client."""
        self.erased = True


@dataclass(frozen=True)
class Consent:
    """What the aggregate needs to check commands; the full terms live in the events."""

    consent_id: UUID
    controller: str
    withdrawn: bool


class NhsNumberIndex(Aggregate):
    """Maps one agency's use of an NHS number (by keyed fingerprint) to its client.

    Created in the same transaction as the client, so an agency cannot register
    the same person twice: the second registration conflicts on this id.
    """

    @staticmethod
    def create_id(agency: str, fingerprint: str, **_: Any) -> UUID:
        return nhs_index_id(agency, fingerprint)

    @event("Indexed")
    def __init__(self, agency: str, fingerprint: str, client_id: UUID) -> None:
        self.agency = agency
        self.client_id = client_id


def nhs_index_id(agency: str, fingerprint: str) -> UUID:
    return namespaced_uuid(f"nhs/{agency}/{fingerprint}")
