"""A subject access request (UK GDPR Art. 15): everything the partnership holds about a client.

A client may ask what is held about them, by whom, who has seen it and why. The
partnership answers through the client's registering controller: its IG lead gets the
whole record for this purpose, every agency's part of it, so as to review it and release
it within the month. Nothing here goes through a partner's view (which is masked to what
an agreement shares): the answer is read from

* the client's own stream in the event store, with log positions: the registration
  (identity), every fact from every agency with who recorded it, each amendment and
  retraction (what was recorded first is held too, so it is listed with each version),
  every consent and its withdrawal, every flag and its removal, every legal hold and
  restriction of processing placed or lifted, every emergency grant and its early end;
  free text and reasons sealed under the client's data key are opened
  (``domain.sealing``);
* each grant's IG review (its own stream): open, or closed with an outcome and a note;
* the alert inbox's rows about the client, whichever agency received the alert;
* the access-audit index: every read by an agency of another agency's data about the
  client (``AccessIndex.disclosures``, asked once for each agency holding a part of the
  record), with when, who, for what purpose and on what basis.

Information another agency recorded (a fact, a flag, or an alert's handling by its
recipient) may hold third parties' information, which Art. 15(4) lets the controller
withhold; a safeguarding flag may be withheld where telling the client could cause
serious harm (DPA 2018 Sch. 3), and a legal hold where privilege applies. Each is marked
for the IG lead's redaction review, with the reason, and never removed here.

As everywhere on the read side, the caller's role is checked first (403 by the
permission table), then its agency: any agency but the registering controller, and an
unknown or erased client, get the same ``ClientNotFound``. The read is recorded by the
entry point (``api.access``), naming everything listed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from sqlalchemy import Engine

from domain.application import AccordApplication, Actor
from domain.clients import Client
from domain.errors import ClientNotFound
from domain.identity import Identity, IdentityErased
from domain.permissions import Action, require
from domain.reviews import Review, ReviewStatus
from domain.sealing import open_reason, opened
from projections.alerts import AlertInbox, AlertItem
from projections.audit import AccessIndex
from projections.queries import RecordedBy, named_principals
from projections.reports.stored_log import StoredLog

#: Beyond every log position (they are at most 2^63 - 1).
_EVERY_POSITION = 2**63 - 1
#: How long the answer waits for the audit index and the alert inbox to include what was
#: appended just before it (a disclosure made a moment ago is listed).
MAX_WAIT_SECONDS = 2.0


#: Why the registering controller's own flag is marked: it says a safeguarding concern.
FLAG_REVIEW = ("a safeguarding flag: check whether telling the client could cause serious "
               "harm to them or another person before release")


def redaction_reason(agency: str) -> str:
    """Why an item is marked for the IG lead's redaction review (Art. 15(4))."""
    return f"recorded by {agency}: check for third-party information before release"


@dataclass(frozen=True)
class HeldCorrection:
    """An amendment or retraction: where and when, by whom, why; an amendment with the
    fact as it then stood (its payload and when it occurred)."""

    position: int
    at: datetime
    by: str
    reason: str
    data: dict[str, Any] | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class HeldFact:
    """One fact as held: as it stands (``data``, ``occurred_at``), as first recorded, with
    every correction; ``redaction_review`` says why it needs review (None: the
    registering controller's own)."""

    position: int
    sequence: int
    fact_type: str
    category: str
    controller: str
    recorded_by: str
    recorded_at: datetime
    occurred_at: datetime
    data: dict[str, Any]
    recorded_data: dict[str, Any]
    recorded_occurred_at: datetime
    amendments: tuple[HeldCorrection, ...] = ()
    retraction: HeldCorrection | None = None
    redaction_review: str | None = None


@dataclass(frozen=True)
class HeldConsent:
    """A consent as given (at ``position``), and its withdrawal if any."""

    position: int
    given: Client.ConsentGiven
    withdrawn: Client.ConsentWithdrawn | None = None
    withdrawn_position: int | None = None


@dataclass(frozen=True)
class HeldFlag:
    """A flag an agency set on the client (its safeguarding team hears of others'
    interest), and its removal if any; always marked for review."""

    position: int
    flagged: Client.Flagged
    redaction_review: str
    removed: Client.FlagRemoved | None = None
    removed_position: int | None = None


class Safeguard(StrEnum):
    """A legal hold or a restriction of processing (UK GDPR Art. 18) placed or lifted."""

    LEGAL_HOLD_PLACED = "legal_hold_placed"
    LEGAL_HOLD_LIFTED = "legal_hold_lifted"
    PROCESSING_RESTRICTED = "processing_restricted"
    RESTRICTION_LIFTED = "restriction_lifted"


#: Why a legal hold is marked: it may rest on legal advice or a claim.
HOLD_REVIEW = ("a legal hold: check whether legal professional privilege or another "
               "exemption applies before release")


@dataclass(frozen=True)
class HeldSafeguard:
    """A legal hold or restriction placed or lifted by the registering controller's IG
    lead: when, by whom, why (opened: the reason is sealed with the client's key)."""

    position: int
    kind: Safeguard
    at: datetime
    by: str
    reason: str | None
    redaction_review: str | None = None


@dataclass(frozen=True)
class GrantReview:
    """An emergency grant's IG review, as it stands."""

    review_id: UUID
    status: ReviewStatus
    outcome: str | None = None
    note: str | None = None
    closed_by: str | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True)
class HeldGrant:
    """An emergency (break-glass) grant, its early end if any, and its review."""

    position: int
    granted: Client.EmergencyAccessGranted
    review: GrantReview
    ended: Client.EmergencyAccessEnded | None = None
    ended_position: int | None = None


@dataclass(frozen=True)
class HeldAlert:
    """A safeguarding alert about the client; one another agency received (and worked)
    is marked for redaction review."""

    alert: AlertItem
    redaction_review: str | None = None


@dataclass(frozen=True)
class Disclosure:
    """One read by an agency of another agency's data about the client: the access
    record's position, when, who, what action and purpose, and each item about this
    client (position, category, controller, basis)."""

    position: int
    at: datetime
    recipient: str
    principal: str
    principal_name: str
    role: str
    action: str
    purpose: str | None
    items: list[dict[str, Any]]


@dataclass(frozen=True)
class SubjectAccess:
    """Everything held about the client, as the registering controller's IG lead answers
    a subject access request; ``people`` names everyone the answer refers to."""

    client_id: UUID
    controller: str
    registered_at: datetime
    registered_by: str
    registration_position: int
    identity: Identity
    facts: list[HeldFact]
    consents: list[HeldConsent]
    flags: list[HeldFlag]
    safeguards: list[HeldSafeguard]
    grants: list[HeldGrant]
    alerts: list[HeldAlert]
    disclosures: list[Disclosure]
    people: dict[str, RecordedBy] = field(default_factory=dict)

    @property
    def controllers(self) -> list[str]:
        """Every agency holding a part of the record, the registering controller first."""
        others = sorted({f.controller for f in self.facts} - {self.controller})
        return [self.controller, *others]


def subject_access(app: AccordApplication, client_id: UUID, by: Actor, *, log: Engine,
                   index: AccessIndex, inbox: AlertInbox) -> SubjectAccess:
    """Everything held about the client, for the IG lead of the agency that registered
    them (``log``: the event store's database, for log positions). Another agency's IG
    lead, and an unknown or erased client, get ``ClientNotFound``; any other role is
    refused by the permission table first."""
    require(Action.ANSWER_SUBJECT_ACCESS, by)
    client = _client(app, client_id)
    if client is None or client.erased or by.agency != client.controller:
        raise ClientNotFound()
    try:
        identity = app.vault.open(client_id, client.sealed_identity)
    except IdentityErased:
        raise ClientNotFound() from None
    registration = 0
    facts: dict[int, HeldFact] = {}
    consents: dict[UUID, HeldConsent] = {}
    flags: dict[UUID, HeldFlag] = {}
    safeguards: list[HeldSafeguard] = []
    grants: dict[UUID, HeldGrant] = {}
    with log.connect() as conn:
        for position, e in StoredLog(app, conn).events_of(client_id, _EVERY_POSITION):
            if isinstance(e, Client.Registered):
                registration = position
            elif isinstance(e, Client.FactRecorded):
                facts[e.originator_version] = HeldFact(
                    position=position, sequence=e.originator_version, fact_type=e.fact_type,
                    category=e.category, controller=e.controller, recorded_by=e.recorded_by,
                    recorded_at=e.timestamp, occurred_at=e.occurred_at, data=e.data,
                    recorded_data=e.data, recorded_occurred_at=e.occurred_at,
                    redaction_review=None if e.controller == client.controller
                    else redaction_reason(e.controller))
            elif isinstance(e, Client.FactAmended) and e.sequence in facts:
                held = facts[e.sequence]
                amended = HeldCorrection(position, e.timestamp, e.amended_by, e.reason,
                                         e.data, e.occurred_at)
                facts[e.sequence] = replace(held, data=e.data, occurred_at=e.occurred_at,
                                            amendments=(*held.amendments, amended))
            elif isinstance(e, Client.FactRetracted) and e.sequence in facts:
                facts[e.sequence] = replace(facts[e.sequence], retraction=HeldCorrection(
                    position, e.timestamp, e.retracted_by, e.reason))
            elif isinstance(e, Client.ConsentGiven):
                consents[e.consent_id] = HeldConsent(position, e)
            elif isinstance(e, Client.ConsentWithdrawn) and e.consent_id in consents:
                consents[e.consent_id] = replace(consents[e.consent_id], withdrawn=e,
                                                 withdrawn_position=position)
            elif isinstance(e, Client.Flagged):
                flags[e.flag_id] = HeldFlag(position, e, FLAG_REVIEW if e.agency ==
                                            client.controller else redaction_reason(e.agency))
            elif isinstance(e, Client.FlagRemoved) and e.flag_id in flags:
                flags[e.flag_id] = replace(flags[e.flag_id], removed=e,
                                           removed_position=position)
            elif type(e) in _SAFEGUARDS:
                safeguards.append(_safeguard(app, client_id, position, e))
            elif isinstance(e, Client.EmergencyAccessGranted):
                grants[e.grant_id] = HeldGrant(position, e, _review(app, e.review_id))
            elif isinstance(e, Client.EmergencyAccessEnded) and e.grant_id in grants:
                grants[e.grant_id] = replace(grants[e.grant_id], ended=e,
                                             ended_position=position)
    opened_facts = _opened(app, client_id, list(facts.values()))
    _caught_up(app, index, inbox)
    alerts = [HeldAlert(a, None if a.recipient == client.controller
                        else redaction_reason(a.recipient))
              for a in inbox.about(client_id)]
    answer = SubjectAccess(
        client_id=client_id, controller=client.controller, registered_at=client.created_on,
        registered_by=client.registered_by, registration_position=registration,
        identity=identity, facts=opened_facts, consents=list(consents.values()),
        flags=list(flags.values()), safeguards=safeguards, grants=list(grants.values()),
        alerts=alerts,
        disclosures=disclosures(index, client_id, sorted(client.controllers)),
    )
    return replace(answer, people=named_principals(app, _references(answer)))


def disclosures(index: AccessIndex, client_id: UUID,
                controllers: list[str]) -> list[Disclosure]:
    """Every read by an agency of another agency's data about the client, oldest first:
    the index's disclosures of each controller's data (``AccessIndex.disclosures``, the
    same query as a controller's own ``GET /v1/clients/{id}/disclosures``), one entry per
    read with the items of every controller's data about this client."""
    found: dict[int, Disclosure] = {}
    for controller in controllers:
        for row in index.disclosures(controller, client_id):
            items = [item for item in row.returned
                     if item.get("controller") == controller
                     and _about(item, row.client_id) == client_id]
            if row.position in found:
                found[row.position].items.extend(items)
                continue
            found[row.position] = Disclosure(
                position=row.position, at=row.at, recipient=row.agency,
                principal=row.principal, principal_name=row.principal_name, role=row.role,
                action=row.action, purpose=row.purpose, items=items)
    return [found[position] for position in sorted(found)]


def _opened(app: AccordApplication, client_id: UUID,
            facts: list[HeldFact]) -> list[HeldFact]:
    """The facts with their free text opened with the client's data key (it is sealed in
    the log, ``domain.sealing``): as they stand, as first recorded, and each amendment's
    payload; the key is read once for them all."""
    payloads: list[tuple[str, dict[str, Any] | None]] = []
    for f in facts:
        payloads += [(f.fact_type, f.data), (f.fact_type, f.recorded_data)]
        payloads += [(f.fact_type, c.data) for c in f.amendments]
    plain = iter(opened(app.vault, client_id, payloads))
    result = []
    for f in facts:
        data, recorded = next(plain) or {}, next(plain) or {}
        amendments = tuple(replace(c, data=next(plain)) for c in f.amendments)
        result.append(replace(f, data=data, recorded_data=recorded, amendments=amendments))
    return result


def _about(item: dict[str, Any], read_client: UUID | None) -> UUID | None:
    """The client an access record's item is about: its own, or the read's one client."""
    return UUID(str(item["client_id"])) if item.get("client_id") else read_client


def _review(app: AccordApplication, review_id: UUID) -> GrantReview:
    """A grant's review as its own stream has it (opened with the grant, in the same
    transaction; closed once, with an outcome and a note)."""
    review = GrantReview(review_id, ReviewStatus.OPEN)
    with contextlib.suppress(AggregateNotFoundError):
        for e in app.events.get(review_id):
            if isinstance(e, Review.Closed):
                review = replace(review, status=ReviewStatus.CLOSED, outcome=e.outcome,
                                 note=e.note, closed_by=e.closed_by, closed_at=e.timestamp)
    return review


def _caught_up(app: AccordApplication, index: AccessIndex, inbox: AlertInbox) -> None:
    """Read-your-writes: the audit index and the alert inbox include what the log held
    when the answer was asked for (each waits at most ``MAX_WAIT_SECONDS``)."""
    head = app.head_position()
    for followed in (index, inbox):
        with contextlib.suppress(TimeoutError):
            followed.tracking.wait(followed.name, head, timeout=MAX_WAIT_SECONDS)


def _references(answer: SubjectAccess) -> list[str]:
    """Everyone the answer names by reference, to be named by name, agency and role."""
    found = [answer.registered_by]
    for f in answer.facts:
        found.append(f.recorded_by)
        found.extend(c.by for c in f.amendments)
        if f.retraction:
            found.append(f.retraction.by)
    for c in answer.consents:
        found.append(c.given.recorded_by)
        if c.withdrawn:
            found.append(c.withdrawn.recorded_by)
    for flag in answer.flags:
        found.append(flag.flagged.flagged_by)
        if flag.removed:
            found.append(flag.removed.removed_by)
    found.extend(held.by for held in answer.safeguards)
    for g in answer.grants:
        found.append(g.granted.principal)
        if g.ended:
            found.append(g.ended.ended_by)
        if g.review.closed_by:
            found.append(g.review.closed_by)
    for a in answer.alerts:
        found.extend(sorted(a.alert.references))
    found.extend(d.principal for d in answer.disclosures)
    return found


#: The events that place or lift a legal hold or a restriction, and what each is.
_SAFEGUARDS: dict[type[Any], Safeguard] = {
    Client.LegalHoldPlaced: Safeguard.LEGAL_HOLD_PLACED,
    Client.LegalHoldLifted: Safeguard.LEGAL_HOLD_LIFTED,
    Client.ProcessingRestricted: Safeguard.PROCESSING_RESTRICTED,
    Client.RestrictionLifted: Safeguard.RESTRICTION_LIFTED,
}


def _safeguard(app: AccordApplication, client_id: UUID, position: int,
               event: Any) -> HeldSafeguard:
    """A hold or restriction placed or lifted, its sealed reason opened (None once the
    client's data key is destroyed); a legal hold placed is marked for review."""
    kind = _SAFEGUARDS[type(event)]
    by = next(str(getattr(event, name)) for name in ("placed_by", "lifted_by", "restricted_by")
              if hasattr(event, name))
    return HeldSafeguard(position, kind, event.timestamp, by,
                         open_reason(app.vault, client_id, event.reason),
                         HOLD_REVIEW if kind is Safeguard.LEGAL_HOLD_PLACED else None)


def _client(app: AccordApplication, client_id: UUID) -> Client | None:
    try:
        found: Any = app.repository.get(client_id)
    except AggregateNotFoundError:
        return None
    return found if isinstance(found, Client) else None
