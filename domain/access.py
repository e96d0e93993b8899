"""Access records: every read of client data, itself on the record.

IG leads must answer, for any moment, who saw what about whom, for what purpose and
on what basis. So each read through the API appends an ``AccessRecord``, a new
aggregate per read (reads never contend with each other or with the client's stream),
naming the principal, their agency and role, the purpose, the client, what was returned
(log positions, categories, controllers) and the basis each item was shown on, and the
outcome, including reads that found nothing or were refused.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event


class AccessAction(StrEnum):
    """Which kind of read."""

    RECORD = "record"  # the controller's own record
    VIEW = "view"  # a partner's consent-scoped view
    MATCH = "match"  # finding a client by NHS number or name and date of birth
    CONSENTS = "consents"  # the client's consents
    DISCLOSURES = "disclosures"  # the client's disclosures, for a subject access request
    REPLAY = "replay"  # an IG lead's point-in-time replay
    ALERTS = "alerts"  # a safeguarding team's alert inbox (or its live stream)


class AccessOutcome(StrEnum):
    RETURNED = "returned"
    NOT_FOUND = "not_found"  # unknown, erased, or no basis: the caller cannot tell which
    REFUSED = "refused"  # e.g. a purpose no agreement names
    NO_MATCH = "no_match"  # a match that found no client the caller may see


class AccessRecord(Aggregate):
    """One read of client data by one principal."""

    class Recorded(Aggregate.Created):
        principal: str
        principal_name: str
        agency: str
        role: str
        action: str
        purpose: str | None
        client_id: UUID | None
        subject_agency: str | None
        outcome: str
        detail: str | None
        returned: list[dict[str, Any]]

    @event(Recorded)
    def __init__(
        self,
        principal: str,
        principal_name: str,
        agency: str,
        role: str,
        action: str,
        purpose: str | None,
        client_id: UUID | None,
        subject_agency: str | None,
        outcome: str,
        detail: str | None,
        returned: list[dict[str, Any]],
    ) -> None:
        """``returned`` lists each item shown: its log position, category, controller
        and basis. ``subject_agency`` is the agency whose view a replay reconstructed."""
        self.principal = principal
        self.agency = agency
        self.action = AccessAction(action)
        self.client_id = client_id
        self.outcome = AccessOutcome(outcome)
