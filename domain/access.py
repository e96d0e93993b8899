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
    LIST_CLIENTS = "list_clients"  # a caseload or a cohort: each client listed is disclosed
    CONSENTS = "consents"  # the client's consents
    DISCLOSURES = "disclosures"  # the client's disclosures, for a subject access request
    SUBJECT_ACCESS = "subject_access"  # everything held about the client (UK GDPR Art. 15)
    REPLAY = "replay"  # an IG lead's point-in-time replay
    ALERTS = "alerts"  # a safeguarding team's alert inbox (or its live stream)
    REPORTS = "reports"  # a commissioner's outcome figures, or an NDTMS extract (no client)
    HOUSEHOLD = "household"  # who lives together, as far as the caller may see each member
    FLAGS = "flags"  # the caller agency's own flags on a client
    # Writes are recorded only when refused (404 or 403): an attempt on a client the
    # caller may not see is something the client's controller must be able to find.
    RECORD_FACT = "record_fact"
    AMEND_FACT = "amend_fact"
    RETRACT_FACT = "retract_fact"
    GIVE_CONSENT = "give_consent"
    WITHDRAW_CONSENT = "withdraw_consent"
    LINK_HOUSEHOLD = "link_household"
    ADD_HOUSEHOLD_MEMBER = "add_household_member"
    EMERGENCY_ACCESS = "emergency_access"
    END_EMERGENCY_ACCESS = "end_emergency_access"
    ASSIGN_ALERT = "assign_alert"  # refused: another agency's alert, or not a team member
    ERASE = "erase"  # refused erasure of a client the caller's agency did not register
    LEGAL_HOLD = "legal_hold"  # placing or lifting one, likewise
    RESTRICTION = "restriction"  # restricting processing or lifting it, likewise
    FLAG_CLIENT = "flag_client"
    REMOVE_FLAG = "remove_flag"


class AccessOutcome(StrEnum):
    RETURNED = "returned"
    NOT_FOUND = "not_found"  # unknown, erased, or no basis: the caller cannot tell which
    REFUSED = "refused"  # e.g. a purpose no agreement names
    NO_MATCH = "no_match"  # a match that found no client the caller may see


#: Outcomes of an attempt that disclosed nothing: the client's controllers see these too.
ATTEMPTS = (AccessOutcome.NOT_FOUND, AccessOutcome.REFUSED)


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
        client_ids: list[UUID]
        subject_agency: str | None
        outcome: str
        detail: str | None
        returned: list[dict[str, Any]]
        withheld_client_ids: list[UUID] | None

        #: Version 2 names every client the access concerned (``client_ids``); version 3
        #: the clients it found but did not tell the caller of (``withheld_client_ids``).
        class_version = 3

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """A record written before ``client_ids`` concerned its one client, if any
            (alert reads then named none: that is what version 2 fixes)."""
            client_id = state.get("client_id")
            state["client_ids"] = [client_id] if client_id is not None else []

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            """A record written before ``withheld_client_ids`` withheld nobody it names
            (a match that found a client the caller may not know of named no client)."""
            state["withheld_client_ids"] = []

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
        client_ids: list[UUID],
        subject_agency: str | None,
        outcome: str,
        detail: str | None,
        returned: list[dict[str, Any]],
        withheld_client_ids: list[UUID] | None = None,
    ) -> None:
        """``returned`` lists each item shown: its log position, category, controller
        and basis (and, where one access concerned several clients, as an alert read
        does, the ``client_id`` it is about). ``client_id`` is the one client a read of
        one client named; ``client_ids`` every client the access concerned, so that it
        is found under each of them (disclosures, the client-filtered audit) and an
        attempt is routed to each client's controllers. ``subject_agency`` is the agency
        whose view a replay reconstructed. ``withheld_client_ids`` are the clients the
        access found but did not tell the caller of (a match or name search that found a
        person the caller has no basis to identify, answered as no match): the attempt is
        routed to those clients' controllers only, never to the caller's own agency, whose
        IG lead is not handed an id its staff were not told."""
        self.principal = principal
        self.agency = agency
        self.action = AccessAction(action)
        self.client_id = client_id
        self.client_ids = client_ids
        self.withheld_client_ids = withheld_client_ids or []
        self.outcome = AccessOutcome(outcome)
