"""The client: a person the partnership works with, and the facts recorded about them.

A client's registration, facts, consents and emergency grants are events on the
client's own aggregate, so one stream replays the client's whole story in order. The
aggregate keeps only what its commands need to check; readers get the facts from the
stream itself.

Some of what is on a client's stream belongs to one agency: a fact to the agency that
recorded it (its controller), a consent to the agency that recorded it, the ending of an
emergency grant to the client's registering controller. The commands that act on those
(``amend_fact``, ``retract_fact``, ``withdraw_consent``, ``end_emergency_access``) check
the acting agency themselves, so no caller can forget to. Every command checks the rules
about the client's own state the same way (no emergency access to an erased client, nor
by the agency that registered them; no second erasure; a consent's terms; no correction
of a retracted fact) before it triggers its event, as the eventsourcing library's
``BankAccount`` does; the events apply unchecked, so the stream always replays, whatever
it holds.

A fact entered in error is corrected by new events, never by changing the old one: an
amendment (``FactAmended``: the payload and when it occurred, as they should have been
recorded, and why) or a retraction (``FactRetracted``: the fact should never have been
recorded, and why). Each names the fact by its log position (how views, replays, feeds
and access records name it) and by its place in the client's stream (``sequence``, how
the aggregate knows it), and restates its type, category and controller, so that a
reader needs nothing but the event; an amendment carries the corrected fact whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.agencies import namespaced_uuid
from domain.catalogue import ChildProtectionStatus
from domain.catalogue import fact_type as catalogue_entry
from domain.errors import (
    ClientAlreadyRegistered,
    ClientNotFound,
    ConsentAlreadyWithdrawn,
    ConsentNotFound,
    EmergencyAccessNotFound,
    EmergencyAccessOver,
    ErasureRefused,
    FactAlreadyRetracted,
    FactNotFound,
    FlagAlreadyRemoved,
    FlagNotFound,
    Forbidden,
    InvalidCommand,
    LegalHoldConflict,
    RestrictionConflict,
)
from domain.vocabulary import Purpose

#: Emergency (break-glass) access lasts at most this long; another grant is another review.
MAX_EMERGENCY_MINUTES = 24 * 60
#: A justification must say something: at least this long, and at most this long.
JUSTIFICATION_LENGTH = (10, 1000)


def check_emergency_request(purpose: str, justification: str, minutes: float) -> str:
    """Refuses an emergency grant's terms that no client could make right (the purpose,
    the window, the justification); returns the justification as recorded (stripped).

    The application asks this before it looks the client up, so that these refusals say
    nothing about the client; the aggregate asks it again, so no caller can skip it."""
    if Purpose(purpose) is Purpose.COMMISSIONING:
        raise InvalidCommand("purpose", "emergency access is for care and safeguarding, "
                                        "not commissioning")
    if not 1 <= minutes <= MAX_EMERGENCY_MINUTES:
        raise InvalidCommand("minutes", f"must be from 1 to {MAX_EMERGENCY_MINUTES} "
                                        "(24 hours)")
    justification = justification.strip()
    shortest, longest = JUSTIFICATION_LENGTH
    if not shortest <= len(justification) <= longest:
        raise InvalidCommand("justification", f"say why, in {shortest} to {longest} "
                                              "characters")
    return justification


#: Why a fact is corrected must be said: at least this long, and at most this long.
CORRECTION_REASON_LENGTH = JUSTIFICATION_LENGTH


def check_correction_reason(reason: str) -> str:
    """Refuses a reason for amending or retracting a fact that says nothing (or too much);
    returns it as recorded (stripped). Asked by the application before it looks anything
    up, and by the aggregate again, as ``check_emergency_request`` is."""
    reason = reason.strip()
    shortest, longest = CORRECTION_REASON_LENGTH
    if not shortest <= len(reason) <= longest:
        raise InvalidCommand("reason", f"say why the record is corrected, in {shortest} to "
                                       f"{longest} characters")
    return reason


#: Why a client is flagged, or a flag removed: at least this long, and at most this long.
FLAG_REASON_LENGTH = (10, 300)


def check_flag_reason(reason: str) -> str:
    """Refuses a reason for flagging a client (or removing a flag) that says nothing, or
    too much for a flag; returns it as recorded (stripped). Asked by the application
    before it looks the client up; the aggregate gets the reason sealed."""
    reason = reason.strip()
    shortest, longest = FLAG_REASON_LENGTH
    if not shortest <= len(reason) <= longest:
        raise InvalidCommand("reason", f"say why, in {shortest} to {longest} characters")
    return reason


def check_consent_recipient(recipient_agency: str | None, recipient_kind: str | None) -> None:
    """A consent names one recipient agency, or one kind of agency. Like
    ``check_data_period``, asked by the application before it looks anything up (bad
    terms are refused the same whoever the client is), and by the aggregate."""
    if (recipient_agency is None) == (recipient_kind is None):
        raise InvalidCommand("recipient", "name either one recipient agency or an agency kind")


def check_data_period(data_from: date | None, data_to: date | None) -> None:
    """A consent's data period does not end before it starts."""
    if data_from and data_to and data_to < data_from:
        raise InvalidCommand("data_to", "must not be before data_from")


class EmergencyEndCause(StrEnum):
    """Why an emergency grant ended before it expired."""

    #: The controller's IG lead closed the grant's review as ``not_justified``.
    REVIEW_NOT_JUSTIFIED = "review_not_justified"
    #: The controller's IG lead ended it early.
    ENDED_BY_IG_LEAD = "ended_by_ig_lead"


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
        #: The facts recorded about the client, by their place in its stream: whose each
        #: is, and what a correction must restate of it.
        self.facts: dict[int, FactOnRecord] = {}
        self.controllers: set[str] = {controller}
        self.consents: dict[UUID, Consent] = {}
        self.erased = False
        #: Emergency grants by grant id: to whom, until when, and whether ended.
        self.emergency_grants: dict[UUID, GrantOnRecord] = {}
        #: A legal hold (litigation, an inquiry): the record may not be erased meanwhile.
        self.legal_hold = False
        #: Processing restricted (UK GDPR Art. 18): partners see nothing of the client,
        #: and its controllers read their records only stating a legal claim.
        self.restricted = False
        #: Child protection statuses recorded about the client, by their place in its
        #: stream: when each applies from, and the status (as corrected).
        self.child_protection: dict[int, tuple[datetime, str]] = {}
        #: Flags by flag id: which agency set each (to hear of others' interest), and
        #: whether it has been removed.
        self.flags: dict[UUID, FlagOnRecord] = {}

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
        # Applied before the library moves the version on: this event's is the next one.
        self.facts[self.version + 1] = FactOnRecord(controller, fact_type, category,
                                                    occurred_at)
        self.controllers.add(controller)
        if fact_type == CHILD_PROTECTION:
            self.child_protection[self.version + 1] = (occurred_at, str(data.get("status")))

    @property
    def facts_recorded(self) -> int:
        return len(self.facts)

    def fact_controlled_by(self, sequence: int, agency: str) -> FactOnRecord:
        """The fact at ``sequence`` in the client's stream, if ``agency`` recorded it.
        To any other agency, and for a sequence that is no fact, it is as unknown
        (``FactNotFound``): a partner that recorded one fact about the client must not
        correct another's, nor learn what it is. An erased client is as unknown too."""
        self.check_not_erased()
        fact = self.facts.get(sequence)
        if fact is None or fact.controller != agency:
            raise FactNotFound()
        return fact

    class FactAmended(Aggregate.Event):
        position: int
        sequence: int
        fact_type: str
        category: str
        data: dict[str, Any]
        occurred_at: datetime
        reason: str
        controller: str
        amended_by: str

    def amend_fact(self, *, position: int, sequence: int, data: Any,
                   occurred_at: datetime | None, reason: str, agency: str,
                   amended_by: str,
                   seal: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
                   ) -> None:
        """Corrects a fact its controller recorded in error: ``data`` replaces the whole
        payload (validated against the fact type's schema: the type itself is not
        changed) and ``occurred_at``, if given, when it occurred. From its log position
        the fact is as amended. Only the fact's controller amends it (to anyone else it
        is as unknown), not once it is retracted, and with a reason
        (``check_correction_reason``). ``seal`` seals the validated payload's free text
        (``domain.sealing.seal_payload``, which needs the vault the application holds)."""
        fact = self.fact_controlled_by(sequence, agency)
        if fact.retracted:
            raise FactAlreadyRetracted()
        reason = check_correction_reason(reason)
        payload = catalogue_entry(fact.fact_type).validate(data)
        if seal is not None:
            payload = seal(fact.fact_type, payload)
        self._amend_fact(
            position=position, sequence=sequence, fact_type=fact.fact_type,
            category=fact.category, data=payload,
            occurred_at=fact.occurred_at if occurred_at is None else occurred_at,
            reason=reason, controller=agency, amended_by=amended_by,
        )

    @event(FactAmended)
    def _amend_fact(self, position: int, sequence: int, fact_type: str, category: str,
                    data: dict[str, Any], occurred_at: datetime, reason: str, controller: str,
                    amended_by: str) -> None:
        self.facts[sequence] = replace(self.facts[sequence], occurred_at=occurred_at)
        if sequence in self.child_protection:
            self.child_protection[sequence] = (occurred_at, str(data.get("status")))

    class FactRetracted(Aggregate.Event):
        position: int
        sequence: int
        fact_type: str
        category: str
        reason: str
        controller: str
        retracted_by: str

    def retract_fact(self, *, position: int, sequence: int, reason: str, agency: str,
                     retracted_by: str) -> None:
        """Withdraws a fact that should never have been recorded: from its log position
        nobody sees it (the controller's own record keeps it, marked retracted). Only
        the fact's controller retracts it, once, with a reason."""
        fact = self.fact_controlled_by(sequence, agency)
        if fact.retracted:
            raise FactAlreadyRetracted()
        reason = check_correction_reason(reason)
        self._retract_fact(position=position, sequence=sequence, fact_type=fact.fact_type,
                           category=fact.category, reason=reason, controller=agency,
                           retracted_by=retracted_by)

    @event(FactRetracted)
    def _retract_fact(self, position: int, sequence: int, fact_type: str, category: str,
                      reason: str, controller: str, retracted_by: str) -> None:
        # The agency stays among the controllers: the retraction is on its record, and
        # the consents it recorded are still its own to withdraw.
        self.facts[sequence] = replace(self.facts[sequence], retracted=True)
        self.child_protection.pop(sequence, None)

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
        recipient (one agency, or every agency of a kind) for these purposes. Only an
        agency that holds a record of the client records one (to any other the client is
        as unknown); its terms name one recipient and a data period that does not end
        before it starts."""
        check_consent_recipient(recipient_agency, recipient_kind)
        check_data_period(data_from, data_to)
        if controller not in self.controllers:
            raise ClientNotFound()
        self._give_consent(
            consent_id=consent_id, controller=controller, recipient_agency=recipient_agency,
            recipient_kind=recipient_kind, categories=categories, purposes=purposes,
            data_from=data_from, data_to=data_to, expires_at=expires_at, obtained=obtained,
            recorded_by=recorded_by,
        )

    @event(ConsentGiven)
    def _give_consent(
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
        self.consents[consent_id] = Consent(consent_id, controller, withdrawn=False)

    class ConsentWithdrawn(Aggregate.Event):
        consent_id: UUID
        reason: str
        recorded_by: str

    def withdraw_consent(self, consent_id: UUID, reason: str, recorded_by: str,
                         agency: str) -> None:
        """Only the agency that recorded a consent withdraws it. To any other agency the
        consent is as unknown (``ConsentNotFound``, whether or not it has been withdrawn):
        a partner that recorded one fact about the client must not be able to end the
        provider's consent, nor learn that it exists."""
        consent = self.consents.get(consent_id)
        if consent is None or consent.controller != agency:
            raise ConsentNotFound()
        if consent.withdrawn:
            raise ConsentAlreadyWithdrawn()
        self._withdraw_consent(consent_id=consent_id, reason=reason, recorded_by=recorded_by)

    @event(ConsentWithdrawn)
    def _withdraw_consent(self, consent_id: UUID, reason: str, recorded_by: str) -> None:
        self.consents[consent_id] = replace(self.consents[consent_id], withdrawn=True)

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
        in the same transaction.

        An erased client is as unknown; the agency that registered the client sees its
        own record and may not break glass on it; the purpose, the window (at most 24
        hours) and the justification are checked as ``check_emergency_request`` does."""
        self.check_not_erased()
        if agency == self.controller:
            raise Forbidden("your agency registered this client and sees its own record: "
                            "emergency access is for partner agencies")
        minutes = (expires_at - granted_at).total_seconds() / 60
        justification = check_emergency_request(purpose, justification, minutes)
        self._grant_emergency_access(
            grant_id=grant_id, review_id=review_id, agency=agency, agency_kind=agency_kind,
            principal=principal, principal_name=principal_name, role=role, purpose=purpose,
            justification=justification, clinical_notes=clinical_notes,
            granted_at=granted_at, expires_at=expires_at,
        )

    @event(EmergencyAccessGranted)
    def _grant_emergency_access(
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
        self.emergency_grants[grant_id] = GrantOnRecord(agency, review_id, expires_at)

    def emergency_access_running(self, grant_id: UUID, at: datetime) -> bool:
        """Whether the grant exists, has not been ended and has not expired at ``at``."""
        grant = self.emergency_grants.get(grant_id)
        return grant is not None and not grant.ended and at < grant.expires_at

    class EmergencyAccessEnded(Aggregate.Event):
        grant_id: UUID
        review_id: UUID
        agency: str
        ended_at: datetime
        cause: str
        reason: str
        ended_by: str

    def end_emergency_access(self, grant_id: UUID, *, agency: str, ended_at: datetime,
                             cause: EmergencyEndCause, reason: str, ended_by: str) -> None:
        """Ends a running grant at ``ended_at``: from then on it shows nothing. Only the
        client's registering controller (whose IG lead reviews the grant) ends one; to any
        other agency the grant is as unknown. A grant already ended or expired conflicts."""
        grant = self.emergency_grants.get(grant_id)
        if grant is None or agency != self.controller:
            raise EmergencyAccessNotFound()
        if grant.ended:
            raise EmergencyAccessOver("this emergency access has already been ended")
        if ended_at >= grant.expires_at:
            raise EmergencyAccessOver(
                f"this emergency access expired at {grant.expires_at.isoformat()}")
        self._end_emergency_access(
            grant_id=grant_id, review_id=grant.review_id, agency=grant.agency,
            ended_at=ended_at, cause=EmergencyEndCause(cause).value, reason=reason,
            ended_by=ended_by,
        )

    @event(EmergencyAccessEnded)
    def _end_emergency_access(self, grant_id: UUID, review_id: UUID, agency: str,
                              ended_at: datetime, cause: str, reason: str,
                              ended_by: str) -> None:
        """The grant's window closes at ``ended_at`` (its review is ``review_id``; ``agency``
        is the agency it was granted to, ``ended_by`` who ended it and ``reason`` why)."""
        self.emergency_grants[grant_id] = replace(self.emergency_grants[grant_id], ended=True)

    class Flagged(Aggregate.Event):
        flag_id: UUID
        agency: str
        reason: str
        flagged_by: str

    def flag(self, flag_id: UUID, *, agency: str, reason: str, flagged_by: str) -> None:
        """An agency holding its own record of the client flags them (a child protection
        plan in the household, say): from now on its safeguarding team hears when another
        agency reads, matches or records something about the client. To an agency that
        holds no record of the client, and once erased, the client is as unknown. The
        reason, which may name the client or their children, arrives sealed with the
        client's data key (``domain.sealing``), as a legal hold's does, so it goes with
        them on erasure; the application checks it first (``check_flag_reason``)."""
        self.check_flaggable(agency)
        if not reason:
            raise InvalidCommand("reason", "say why the client is flagged")
        self._flag(flag_id=flag_id, agency=agency, reason=reason, flagged_by=flagged_by)

    def check_flaggable(self, agency: str) -> None:
        """``ClientNotFound`` unless ``agency`` holds its own record of the client and the
        client is not erased: the application asks before it seals a reason."""
        self.check_not_erased()
        if agency not in self.controllers:
            raise ClientNotFound()

    def flag_of(self, flag_id: UUID, agency: str) -> FlagOnRecord:
        """The flag, if ``agency`` set it (``check_flaggable`` first); any other flag of
        the client, and a flag id never issued, is as unknown (``FlagNotFound``)."""
        self.check_flaggable(agency)
        flag = self.flags.get(flag_id)
        if flag is None or flag.agency != agency:
            raise FlagNotFound()
        return flag

    @event(Flagged)
    def _flag(self, flag_id: UUID, agency: str, reason: str, flagged_by: str) -> None:
        self.flags[flag_id] = FlagOnRecord(agency)

    class FlagRemoved(Aggregate.Event):
        flag_id: UUID
        agency: str
        reason: str
        removed_by: str

    def remove_flag(self, flag_id: UUID, *, agency: str, reason: str,
                    removed_by: str) -> None:
        """Takes a flag off, with a reason: only the agency that set it (to any other
        agency holding a record of the client the flag is as unknown, ``FlagNotFound``;
        to one holding none, and once erased, the client is, as ``flag`` says), once
        (``FlagAlreadyRemoved``). The reason arrives sealed, as ``flag``'s does."""
        flag = self.flag_of(flag_id, agency)
        if flag.removed:
            raise FlagAlreadyRemoved()
        if not reason:
            raise InvalidCommand("reason", "say why the flag is removed")
        self._remove_flag(flag_id=flag_id, agency=agency, reason=reason,
                          removed_by=removed_by)

    @event(FlagRemoved)
    def _remove_flag(self, flag_id: UUID, agency: str, reason: str, removed_by: str) -> None:
        self.flags[flag_id] = replace(self.flags[flag_id], removed=True)

    class Erased(Aggregate.Event):
        """The client's data key was destroyed. No personal data: the reason the IG lead
        gave is kept out of the log (it may name the person) and recorded only as its
        keyed fingerprint, to match the IG lead's own case file."""

        reason_fingerprint: str
        erased_by: str

        #: Version 2 keeps the reason out of the log (``reason_fingerprint``).
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """An erasure recorded before version 2 held the reason in plain text; it is
            not shown (it stays in the stored event, which is append-only)."""
            state.pop("reason", None)
            state["reason_fingerprint"] = ""

    def check_not_erased(self) -> None:
        """An erased client is as unknown (``ClientNotFound``) to every further command
        that checks this; the application asks it before destroying the data key."""
        if self.erased:
            raise ClientNotFound()

    def safeguarding_retention(self) -> str | None:
        """Why the client's own facts keep the record for safeguarding, if they do: the
        child protection status recorded last (by when it applies; a correction counts
        as corrected, a retracted one not at all) is in force, i.e. anything but
        ``closed`` (a child in need, on a protection plan, or looked after)."""
        if not self.child_protection:
            return None
        _sequence, (_at, status) = max(self.child_protection.items(),
                                       key=lambda item: (item[1][0], item[0]))
        if status == ChildProtectionStatus.CLOSED.value:
            return None
        return (f"a child protection status is in force ({status.replace('_', ' ')}); "
                "the record is kept while it is")

    def check_erasable(self) -> None:
        """An erased client is as unknown; a legal hold, or a child protection status in
        force (``safeguarding_retention``), refuses erasure (``ErasureRefused``, saying
        which). The application asks this before destroying the data key, and adds the
        retentions that span aggregates (open safeguarding alerts)."""
        self.check_not_erased()
        if self.legal_hold:
            raise ErasureRefused("a legal hold applies to this client's record; the IG "
                                 "lead must lift it before the record can be erased")
        retention = self.safeguarding_retention()
        if retention is not None:
            raise ErasureRefused(f"safeguarding retention applies: {retention}")

    def erase(self, reason_fingerprint: str, erased_by: str) -> None:
        """The identity's data key has been destroyed; partners no longer see the client.
        A client is erased once: after that it is as unknown. The application asks
        ``check_erasable`` before it destroys the key; once the key has gone the erasure
        is a fact, recorded even if a legal hold was placed meanwhile."""
        self.check_not_erased()
        self._erase(reason_fingerprint=reason_fingerprint, erased_by=erased_by)

    @event(Erased)
    def _erase(self, reason_fingerprint: str, erased_by: str) -> None:
        self.erased = True

    # -- legal hold and restriction ---------------------------------------------------
    # Each is set and lifted by the client's registering controller (whose IG lead acts
    # for the record); to any other agency the client is as unknown. Each reason is
    # sealed with the client's data key before it gets here (``domain.sealing``).

    class LegalHoldPlaced(Aggregate.Event):
        reason: str
        placed_by: str

    class LegalHoldLifted(Aggregate.Event):
        reason: str
        lifted_by: str

    def _check_registering_controller(self, agency: str) -> None:
        self.check_not_erased()
        if agency != self.controller:
            raise ClientNotFound()

    def place_legal_hold(self, *, reason: str, agency: str, placed_by: str) -> None:
        """The record is kept as it is until the hold is lifted: no erasure meanwhile.
        A hold already in place conflicts."""
        self._check_registering_controller(agency)
        if self.legal_hold:
            raise LegalHoldConflict("a legal hold is already in place on this client")
        self._place_legal_hold(reason=reason, placed_by=placed_by)

    @event(LegalHoldPlaced)
    def _place_legal_hold(self, reason: str, placed_by: str) -> None:
        self.legal_hold = True

    def lift_legal_hold(self, *, reason: str, agency: str, lifted_by: str) -> None:
        """Ends the hold; with none in place it conflicts."""
        self._check_registering_controller(agency)
        if not self.legal_hold:
            raise LegalHoldConflict("no legal hold is in place on this client")
        self._lift_legal_hold(reason=reason, lifted_by=lifted_by)

    @event(LegalHoldLifted)
    def _lift_legal_hold(self, reason: str, lifted_by: str) -> None:
        self.legal_hold = False

    class ProcessingRestricted(Aggregate.Event):
        reason: str
        restricted_by: str

    class RestrictionLifted(Aggregate.Event):
        reason: str
        lifted_by: str

    def restrict_processing(self, *, reason: str, agency: str, restricted_by: str) -> None:
        """UK GDPR Art. 18: from now on partners see nothing of the client (views,
        matches, searches, feeds), and its controllers read their records only stating a
        legal claim. Restricting a restricted client conflicts."""
        self._check_registering_controller(agency)
        if self.restricted:
            raise RestrictionConflict("processing of this client is already restricted")
        self._restrict_processing(reason=reason, restricted_by=restricted_by)

    @event(ProcessingRestricted)
    def _restrict_processing(self, reason: str, restricted_by: str) -> None:
        self.restricted = True

    def lift_restriction(self, *, reason: str, agency: str, lifted_by: str) -> None:
        """Ends the restriction: partners see the client again as agreements and consents
        allow. With none in place it conflicts."""
        self._check_registering_controller(agency)
        if not self.restricted:
            raise RestrictionConflict("processing of this client is not restricted")
        self._lift_restriction(reason=reason, lifted_by=lifted_by)

    @event(RestrictionLifted)
    def _lift_restriction(self, reason: str, lifted_by: str) -> None:
        self.restricted = False


@dataclass(frozen=True)
class FactOnRecord:
    """What the aggregate needs to check a correction of a fact; the payload lives in
    the events."""

    controller: str
    fact_type: str
    category: str
    occurred_at: datetime
    retracted: bool = False


@dataclass(frozen=True)
class Consent:
    """What the aggregate needs to check commands; the full terms live in the events."""

    consent_id: UUID
    controller: str
    withdrawn: bool


@dataclass(frozen=True)
class FlagOnRecord:
    """What the aggregate needs to check the removal of a flag: whose it is, and whether
    it is already off (the reason lives in the events)."""

    agency: str
    removed: bool = False


@dataclass(frozen=True)
class GrantOnRecord:
    """What the aggregate needs to check the ending of an emergency grant."""

    agency: str
    review_id: UUID
    expires_at: datetime
    ended: bool = False


class NhsNumberIndex(Aggregate):
    """Maps one agency's use of an NHS number (by keyed fingerprint) to its client.

    Created in the same transaction as the client, so an agency cannot register
    the same person twice: the second registration conflicts on this id. Erasing the
    client releases it in the erasure's transaction, so the person can be registered
    again as a new client, and nobody registering them is told the erased client's id.
    """

    @staticmethod
    def create_id(agency: str, fingerprint: str, **_: Any) -> UUID:
        return nhs_index_id(agency, fingerprint)

    @event("Indexed")
    def __init__(self, agency: str, fingerprint: str, client_id: UUID) -> None:
        self.agency = agency
        #: The client registered under the number; None once that client was erased.
        self.client_id: UUID | None = client_id

    @event("Released")
    def release(self, erased: UUID) -> None:
        """The client ``erased`` was erased: the number leads to nobody."""
        self.client_id = None

    def reassign(self, client_id: UUID) -> None:
        """The person was registered again after an erasure, as the new ``client_id``.

        Only a released number can be reassigned: while it leads to a client, a second
        registration is refused (two registrations racing past the application's first
        look both reach here, and the second must not take the number over)."""
        if self.client_id is not None:
            raise ClientAlreadyRegistered(self.client_id)
        self._reassign(client_id=client_id)

    @event("Reassigned")
    def _reassign(self, client_id: UUID) -> None:
        self.client_id = client_id


#: The fact type whose status keeps a record for safeguarding while it is in force.
CHILD_PROTECTION = "child_protection_status_recorded"


def nhs_index_id(agency: str, fingerprint: str) -> UUID:
    return namespaced_uuid(f"nhs/{agency}/{fingerprint}")
