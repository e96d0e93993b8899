"""The read side: what a caller may read, assembled from the log and the read models.

Commands change the log (``domain.application``); the functions here only read it, and
return plain results that an entry point renders: the JSON API's routers turn them into
its response models, and the web application (a later issue) into pages, so both answer
the same question the same way. Nothing here knows of HTTP.

Each function first asks the permission table (``domain.permissions``) whether the
caller's role may read this at all, then whether its agency may read this client's or
agreement's data. An agency that may not see a client gets the same ``ClientNotFound``
as for an unknown client, so that no answer tells it whether a person is a client.

None of them records the read: the entry point does, around the call (``api.access``),
so that a refusal raised here (403 or 404) is on the record as an attempt, and what a
result shows is recorded before it is returned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from sqlalchemy import Engine

from consent.policy import BasisKind
from domain.agencies import Principal, Role
from domain.agreements import Agreement
from domain.application import AccordApplication, Actor
from domain.categories import DataCategory
from domain.clients import Client
from domain.commands.erasure import check_stated_reason
from domain.errors import (
    AgreementNotFound,
    ClientNotFound,
    Conflict,
    ConsentNotFound,
    Forbidden,
    HouseholdNotFound,
    InvalidCommand,
    PrincipalNotFound,
    RestrictionReasonRequired,
)
from domain.households import Household
from domain.identity import Identity, IdentityErased
from domain.permissions import Action, require
from domain.sealing import free_text_fields, opened, seal_reason
from domain.vocabulary import Purpose
from projections.reports.stored_log import StoredLog
from projections.views import AgencyViews, ViewItem

A = TypeVar("A", bound=Aggregate)


# -- an agency's own record of a client ------------------------------------------------


@dataclass(frozen=True)
class RecordedCorrection:
    """An amendment or retraction of a fact by the agency that recorded it: when (and at
    which log position, where the record was read with positions), by whom and why."""

    at: datetime
    by: str
    reason: str
    position: int | None = None


@dataclass(frozen=True)
class RecordedFact:
    """One fact of the caller agency's own record, as it stands: as it recorded it, or as
    it later amended it (``amendments``), or retracted (``retraction``; nobody else sees
    it any more, but the agency's record keeps it, with why)."""

    sequence: int
    fact_type: str
    category: str
    occurred_at: datetime
    recorded_at: datetime
    controller: str
    recorded_by: str
    data: dict[str, Any]
    #: The fact's log position (where the record was read with positions): how views,
    #: replays and corrections name it.
    position: int | None = None
    amendments: tuple[RecordedCorrection, ...] = ()
    retraction: RecordedCorrection | None = None


@dataclass(frozen=True)
class ClientRecord:
    """An agency's own record of a client: the facts it controls, and identity if it
    registered the client (``identity_erased`` once the client's data key is destroyed)."""

    client_id: UUID
    controller: str
    registered_at: datetime
    identity: Identity | None
    identity_erased: bool
    facts: list[RecordedFact]
    #: Whether a legal hold keeps the record from erasure, and whether its processing is
    #: restricted (UK GDPR Art. 18).
    legal_hold: bool = False
    restricted: bool = False
    #: For a restricted client, the legal claim the read stated (sealed), to record.
    legal_claim: str | None = None


def client_record(app: AccordApplication, client_id: UUID, by: Actor, *,
                  log: Engine | None = None,
                  restriction_reason: str | None = None) -> ClientRecord:
    """The caller agency's own record of the client: what it recorded, never what other
    agencies did, each fact as it stands after the agency's corrections, its free text
    opened. ClientNotFound if it holds no record of the client (it may still see
    something of them through a partner's share: that is its view, not its record). With
    ``log`` (the database of the event store) each fact and correction also says its log
    position. A restricted client's record is read only stating a legal claim
    (``restriction_reason``; ``RestrictionReasonRequired`` without one)."""
    require(Action.READ_RECORD, by)
    client = _client(app, client_id)
    if by.agency not in client.controllers:
        raise ClientNotFound()
    claim = legal_claim(app, client_id, client.restricted, restriction_reason)
    identity: Identity | None = None
    erased = False
    if by.agency == client.controller:
        try:
            identity = app.vault.open(client_id, client.sealed_identity)
        except IdentityErased:
            erased = True
    facts: dict[int, RecordedFact] = {}
    for position, e in _stream(app, client_id, log):
        if isinstance(e, Client.FactRecorded) and e.controller == by.agency:
            facts[e.originator_version] = RecordedFact(
                sequence=e.originator_version, fact_type=e.fact_type, category=e.category,
                occurred_at=e.occurred_at, recorded_at=e.timestamp, controller=e.controller,
                recorded_by=e.recorded_by, data=e.data, position=position,
            )
        elif isinstance(e, Client.FactAmended) and e.sequence in facts:
            fact = facts[e.sequence]
            amended = RecordedCorrection(e.timestamp, e.amended_by, e.reason, position)
            facts[e.sequence] = replace(fact, data=e.data, occurred_at=e.occurred_at,
                                        amendments=(*fact.amendments, amended))
        elif isinstance(e, Client.FactRetracted) and e.sequence in facts:
            facts[e.sequence] = replace(facts[e.sequence], retraction=RecordedCorrection(
                e.timestamp, e.retracted_by, e.reason, position))
    recorded = list(facts.values())
    payloads = opened(app.vault, client_id, [(f.fact_type, f.data) for f in recorded])
    recorded = [replace(f, data=data or {}) for f, data in zip(recorded, payloads, strict=True)]
    return ClientRecord(client_id, client.controller, client.created_on, identity, erased,
                        recorded, legal_hold=client.legal_hold, restricted=client.restricted,
                        legal_claim=claim)


@dataclass(frozen=True)
class RecordRights:
    """Where the client's record stands for its rights: whether a legal hold keeps it
    from erasure, and whether processing is restricted (UK GDPR Art. 18)."""

    client_id: UUID
    legal_hold: bool
    restricted: bool


def record_rights(app: AccordApplication, client_id: UUID, by: Actor) -> RecordRights:
    """The legal hold and restriction of the client, for the IG lead of its registering
    controller deciding on one (no personal data, so no legal claim is asked even of a
    restricted client); to any other agency, and once erased, the client is as unknown."""
    require(Action.ANSWER_SUBJECT_ACCESS, by)
    client = _client(app, client_id)
    if client.controller != by.agency:
        raise ClientNotFound()
    client.check_not_erased()
    return RecordRights(client_id, legal_hold=client.legal_hold, restricted=client.restricted)


#: How a read of a restricted client names, on its access record, the claim it was for.
LEGAL_CLAIM = "restricted processing (UK GDPR Art. 18), for a legal claim: "


def legal_claim(app: AccordApplication, client_id: UUID, restricted: bool,
                reason: str | None) -> str | None:
    """For a read of a restricted client by one of its controllers: the legal claim it
    states (``restriction_reason``), checked and sealed with the client's data key, as
    the read's access record will hold it (``LEGAL_CLAIM`` and the sealed text: it may
    name the client, so it goes with them on erasure). ``RestrictionReasonRequired``
    (409) without one. None for a client that is not restricted (a reason given then is
    not recorded: there is nothing to justify)."""
    if not restricted:
        return None
    if reason is None:
        raise RestrictionReasonRequired()
    reason = check_stated_reason(reason, "restriction_reason")
    try:
        return LEGAL_CLAIM + seal_reason(app.vault, client_id, reason)
    except IdentityErased:
        raise ClientNotFound() from None


def _stream(app: AccordApplication, client_id: UUID,
            log: Engine | None) -> Iterator[tuple[int | None, Any]]:
    """The client's events in order, each with its log position if ``log`` is given."""
    if log is None:
        for e in app.events.get(client_id):
            yield None, e
        return
    with log.connect() as conn:
        yield from StoredLog(app, conn).events_of(client_id, _EVERY_POSITION)


#: Beyond every log position (they are at most 2^63 - 1).
_EVERY_POSITION = 2**63 - 1


# -- consents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentRecord:
    """A consent as given, and its withdrawal if any."""

    given: Client.ConsentGiven
    withdrawn: Client.ConsentWithdrawn | None


def consents(app: AccordApplication, client_id: UUID, by: Actor) -> list[ConsentRecord]:
    """The consents the client gave to share the caller agency's data, each with its
    withdrawal if any, in the order given. Consents about another controller's data are
    that agency's to read; an agency holding no record of the client gets ClientNotFound."""
    require(Action.READ_CONSENTS, by)
    app.require_controller(client_id, by)
    records: dict[UUID, ConsentRecord] = {}
    for e in app.events.get(client_id):
        if isinstance(e, Client.ConsentGiven) and e.controller == by.agency:
            records[e.consent_id] = ConsentRecord(given=e, withdrawn=None)
        elif isinstance(e, Client.ConsentWithdrawn) and e.consent_id in records:
            records[e.consent_id] = ConsentRecord(records[e.consent_id].given, e)
    return list(records.values())


def consent(app: AccordApplication, client_id: UUID, consent_id: UUID,
            by: Actor) -> ConsentRecord:
    """One of ``consents``: another agency's consent, or an unknown one, is
    ConsentNotFound (the same answer)."""
    for record in consents(app, client_id, by):
        if record.given.consent_id == consent_id:
            return record
    raise ConsentNotFound()


def registered_identity(app: AccordApplication, client_id: UUID, by: Actor) -> Identity | None:
    """The client's identity if the caller's agency registered them (only the registering
    agency holds it, as its own record shows); None for any other agency, and once the
    client's data key is destroyed."""
    client = _client(app, client_id)
    if client.controller != by.agency:
        return None
    try:
        return app.vault.open(client_id, client.sealed_identity)
    except IdentityErased:
        return None


# -- principals ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedBy:
    """Who did something, as the record names them: a principal (with its name, agency
    and role as they are now), or the CLI operator (``operator:cli``)."""

    reference: str
    name: str
    agency: str | None
    role: Role | None


@dataclass(frozen=True)
class PrincipalSummary:
    """A principal as its agency's admin and IG lead see it: who added it and when, and
    who revoked it, when and why."""

    principal_id: UUID
    agency: str
    role: Role
    name: str
    revoked: bool
    added_at: datetime
    added_by: RecordedBy
    revoked_at: datetime | None = None
    revoked_by: RecordedBy | None = None
    revoked_reason: str | None = None


def principals(app: AccordApplication, agency: str, by: Actor) -> list[PrincipalSummary]:
    """An agency's principals, each with who added it and when, and who revoked it,
    when and why: for the agency's own admin and IG lead (so an IG lead sees every admin
    and IG lead created in its agency) and for partnership administrators (the CLI
    operator is one). Another agency's admin or IG lead is refused (403): the agency's
    name is no secret, its staff list is."""
    require(Action.LIST_PRINCIPALS, by)
    if by.role is not Role.PARTNERSHIP_ADMIN and agency != by.agency:
        raise Forbidden("an admin or IG lead lists only its own agency's principals")
    names: dict[str, RecordedBy] = {}
    result = []
    for principal_id in app.agency(agency).principal_ids:
        p = _aggregate(app, principal_id, Principal)
        if p is None:
            raise PrincipalNotFound()
        revoked_at = None
        if p.revoked:
            revoked_at = next(e.timestamp for e in app.events.get(p.id)
                              if isinstance(e, Principal.Revoked))
        result.append(PrincipalSummary(
            p.id, p.agency, p.role, p.name, p.revoked, p.created_on,
            added_by=_recorded_by(app, p.added_by, names),
            revoked_at=revoked_at,
            revoked_by=_recorded_by(app, p.revoked_by, names) if p.revoked_by else None,
            revoked_reason=p.revoked_reason,
        ))
    return result


def _recorded_by(app: AccordApplication, reference: str,
                 known: dict[str, RecordedBy]) -> RecordedBy:
    """Names who a record's ``added_by``/``revoked_by`` reference is (once per listing)."""
    if reference not in known:
        try:
            who = _aggregate(app, UUID(reference), Principal)
        except ValueError:  # the CLI operator, "operator:cli"
            who = None
        known[reference] = (
            RecordedBy(reference, who.name, who.agency, who.role) if who
            else RecordedBy(reference, reference, None, None))
    return known[reference]


def principal_names(app: AccordApplication, references: Iterable[str]) -> dict[str, str]:
    """Each reference a record names someone by (a principal id, or the CLI operator's
    ``operator:cli``), with the principal's name, so that a page or an answer names
    people rather than ids. A reference that is no principal is named as it is."""
    known: dict[str, RecordedBy] = {}
    return {reference: _recorded_by(app, reference, known).name
            for reference in dict.fromkeys(references)}


def named_principals(app: AccordApplication,
                     references: Iterable[str]) -> dict[str, RecordedBy]:
    """Who each reference a record names someone by is, with agency and role as well as
    name (``principal_names`` gives the name alone): a chronology says who recorded each
    fact and for which agency. Each principal is read once."""
    known: dict[str, RecordedBy] = {}
    for reference in references:
        _recorded_by(app, reference, known)
    return known


def safeguarding_team(app: AccordApplication, by: Actor) -> list[RecordedBy]:
    """The caller's own agency's safeguarding team, by name: its active safeguarding
    principals, to whom an alert may be assigned (``Alert.assign`` refuses anyone else).
    Only the caller's agency's: another agency's staff list is not the caller's to see."""
    require(Action.ASSIGN_ALERT, by)
    team = []
    for principal_id in app.agency(by.agency).principal_ids:
        p = _aggregate(app, principal_id, Principal)
        if p is not None and p.role is Role.SAFEGUARDING and not p.revoked:
            team.append(RecordedBy(str(p.id), p.name, p.agency, p.role))
    return sorted(team, key=lambda member: (member.name.casefold(), member.reference))


# -- data-sharing agreements -------------------------------------------------------------


def agreements(app: AccordApplication, by: Actor) -> list[Agreement]:
    """The agreements to which the caller's agency is a party, in the order proposed."""
    require(Action.LIST_AGREEMENTS, by)
    return [a for a in (_aggregate(app, i, Agreement)
                        for i in app.agency(by.agency).agreement_ids) if a]


def agreement(app: AccordApplication, agreement_id: UUID, by: Actor) -> Agreement:
    """One agreement, for its parties; to any other agency it is as unknown (404)."""
    require(Action.READ_AGREEMENT, by)
    found = _aggregate(app, agreement_id, Agreement)
    if found is None or by.agency not in found.parties:
        raise AgreementNotFound()
    return found


# -- a partner's view of a client -----------------------------------------------------------


@dataclass(frozen=True)
class PartnerView:
    """What an agency may see of a client for a purpose, current to ``position``.

    ``identity`` holds only the identity fields a share names (None if no share names
    identity); ``facts`` are the other facts shown, each with its basis; ``shown`` is
    every item shown, identity included, for the access record."""

    client_id: UUID
    agency: str
    purpose: Purpose
    position: int
    identity: dict[str, Any] | None
    facts: list[ViewItem]
    shown: list[ViewItem]
    #: For a restricted client (which only its controllers still see), the legal claim
    #: the read stated (sealed), to record with it.
    legal_claim: str | None = None


def partner_view(app: AccordApplication, views: AgencyViews, by: Actor, client_id: UUID,
                 purpose: Purpose, restriction_reason: str | None = None) -> PartnerView:
    """The caller agency's view of the client for a purpose: permitted facts, masked,
    each with its basis.

    A commissioner is refused (403) before anything is looked up: it works with
    aggregates (outcome reports), never one person's record, since even a view with no
    identifiers would let it follow one person's scores over time. No basis, an unknown
    client and an erased client are the same 404; a client the agency sees, but not for
    this purpose, is a 403 naming the purpose (the agency knows of the client already).

    Free text is opened with the client's data key. A client whose processing is
    restricted is seen only by its controllers (partners' rows are gone, so to them it
    is as unknown), and only stating a legal claim (``restriction_reason``;
    ``RestrictionReasonRequired`` without one)."""
    require(Action.READ_VIEW, by)
    position, seen, items = _read(views, by, client_id, purpose)
    if not seen:
        raise ClientNotFound()
    claim = None
    if any(i.basis["kind"] == BasisKind.CONTROLLER.value for i in items) \
            and views.restricted(client_id):
        claim = legal_claim(app, client_id, True, restriction_reason)
    if not items:
        raise Forbidden(f"no agreement under which {by.agency} sees this client names "
                        f"the purpose {purpose.value}")
    identity = None
    identity_items = [i for i in items if i.category == DataCategory.IDENTITY.value]
    if identity_items:
        try:
            full = app.identity_of(client_id).model_dump(mode="json")
        except IdentityErased:
            raise ClientNotFound() from None
        fields = identity_items[0].fields
        identity = {k: v for k, v in full.items() if fields is None or k in fields}
    facts = [i for i in items if i.category != DataCategory.IDENTITY.value]
    if any(free_text_fields(i.fact_type) for i in facts):  # else there is nothing to open
        payloads = opened(app.vault, client_id, [(i.fact_type, i.data) for i in facts])
        facts = [replace(i, data=data or {}) for i, data in zip(facts, payloads, strict=True)]
    return PartnerView(
        client_id=client_id, agency=by.agency, purpose=purpose, position=position,
        identity=identity, facts=facts, shown=items, legal_claim=claim,
    )


def _read(views: AgencyViews, by: Actor, client_id: UUID,
          purpose: Purpose) -> tuple[int, bool, list[ViewItem]]:
    """The position the view is current to, whether the caller's agency sees the client
    at all, and the view's items for this caller. A commissioner-role principal sees only
    what agreements share for commissioning, never its own agency's full records."""
    position, seen, items = views.read(by.agency, client_id, purpose.value)
    if by.role is Role.COMMISSIONER:
        items = [i for i in items if i.basis["kind"] != BasisKind.CONTROLLER.value]
    return position, seen, items


# -- matching a person to a client ---------------------------------------------------------


class AmbiguousMatch(Conflict):
    """More than one client the caller may see matches (HTTP 409): it is told neither."""

    def __init__(self) -> None:
        super().__init__("more than one client you may see matches; match on the NHS number")


@dataclass(frozen=True)
class Match:
    """The client a match found, and the bases on which the caller may be told of it:
    one item per (controller, kind of basis, agreement), which is what the answer
    discloses (that this person is a client known to those agencies)."""

    client_id: UUID
    bases: list[ViewItem]


def match(app: AccordApplication, views: AgencyViews, by: Actor, *,
          nhs_number: str | None, family_name: str | None, date_of_birth: date | None,
          purpose: Purpose | None,
          withhold: Callable[[list[UUID]], None] | None = None) -> Match:
    """Finds the client for an NHS number (or family name and date of birth).

    A partner is answered only for a client whose identity its agency may see for the
    stated purpose: the same shares that give its view the ``identity`` category. Any
    other basis (outcomes without identifiers, say) is no basis to learn who a person
    is, or whether they are a client at all. An IG lead is answered only for a client its
    own agency holds a record of (to answer a subject access request); the purpose is
    then optional. Anything else is the same ClientNotFound as for an unknown person;
    more than one client is ``AmbiguousMatch``. A commissioner matches only for the
    purpose commissioning (403 otherwise, before anything is looked up).

    ``withhold`` is told the clients the lookup found whom the caller may not be told of
    (before the answer is given or refused), so that the access record routes the
    attempt to their controllers without the caller learning anything."""
    require(Action.MATCH, by)
    if purpose is None and by.role is not Role.IG_LEAD:
        raise InvalidCommand("purpose", "state the purpose of the match")
    fingerprint = app.match_keys(nhs_number, family_name, date_of_birth)
    if purpose is not None and by.role is Role.COMMISSIONER \
            and purpose is not Purpose.COMMISSIONING:
        raise Forbidden("the commissioner role reads only for the purpose commissioning")
    # An IG lead's answer rests on its agency's own record, which holds for every purpose.
    looked_up = purpose or Purpose.DIRECT_CARE
    found = views.matching_clients(fingerprint)
    shown = {client_id: items for client_id in found
             if (items := _match_basis(views, by, client_id, looked_up))}
    if withhold is not None:
        withhold([client_id for client_id in found if client_id not in shown])
    if not shown:
        raise ClientNotFound()
    if len(shown) > 1:
        raise AmbiguousMatch()
    [(client_id, items)] = shown.items()
    bases = {(i.controller, i.basis.get("kind"), i.basis.get("agreement_id")): i
             for i in items}
    return Match(client_id, list(bases.values()))


def visible_items(views: AgencyViews, by: Actor, client_id: UUID,
                  purpose: Purpose) -> tuple[int, bool, list[ViewItem]]:
    """What the caller may see of the client for the purpose, as its view shows it (the
    position the view is current to, whether it sees the client at all, the items): for
    the read side's other modules (a chronology, a cohort), so they answer as the view."""
    return _read(views, by, client_id, purpose)


def identity_basis(views: AgencyViews, by: Actor, client_id: UUID,
                   purpose: Purpose) -> list[ViewItem]:
    """The identity items on which the caller may be told who the client is (none: it
    may not): a match's basis (``_match_basis``) narrowed to the identity category, so an
    IG lead's is its own agency's registration of the client."""
    return [i for i in _match_basis(views, by, client_id, purpose)
            if i.category == DataCategory.IDENTITY.value]


def _match_basis(views: AgencyViews, by: Actor, client_id: UUID,
                 purpose: Purpose) -> list[ViewItem]:
    """The items on which the caller may be told this client's id (none: no match).

    For an IG lead, its own agency's record of the client (the controller rows, which
    hold for every purpose). For anyone else, the identity the view would show for the
    purpose: a match answers who a person is, so it needs the basis that shares who they
    are, not merely a basis to see something of them."""
    items = _read(views, by, client_id, purpose)[2]
    if by.role is Role.IG_LEAD:
        return [i for i in items if i.basis["kind"] == BasisKind.CONTROLLER.value]
    return [i for i in items if i.category == DataCategory.IDENTITY.value]


# -- a household ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HouseholdMember:
    """A member of a household the caller may know of: the identity fields its share
    names, and the items they were shown on (for the access record)."""

    client_id: UUID
    identity: dict[str, Any]
    shown: list[ViewItem]


@dataclass(frozen=True)
class HouseholdView:
    """A household as the caller may see it for a purpose: only the members shown."""

    household_id: UUID
    purpose: Purpose
    members: list[HouseholdMember]


def household(app: AccordApplication, views: AgencyViews, by: Actor, household_id: UUID,
              purpose: Purpose) -> HouseholdView:
    """Who lives in a household, as far as the caller may know for a purpose.

    A member is shown only where the caller's basis for the purpose shares that client's
    identity (what a match asks too: to learn that a person lives with a client is to
    learn who they are); the others are left out, neither named nor counted, since even a
    count tells the caller that more clients live there. A household of which the caller
    may see no member is the same ``HouseholdNotFound`` as an unknown one."""
    require(Action.READ_HOUSEHOLD, by)
    found = _aggregate(app, household_id, Household)
    if found is None:
        raise HouseholdNotFound()
    members = []
    for client_id in found.members:
        items = [i for i in _read(views, by, client_id, purpose)[2]
                 if i.category == DataCategory.IDENTITY.value]
        if not items:
            continue
        try:
            full = app.identity_of(client_id).model_dump(mode="json")
        except IdentityErased:
            continue
        fields = items[0].fields
        members.append(HouseholdMember(
            client_id, {k: v for k, v in full.items() if fields is None or k in fields},
            items))
    if not members:
        raise HouseholdNotFound()
    return HouseholdView(household_id, purpose, members)


# -- lookups ------------------------------------------------------------------------------


def _aggregate(app: AccordApplication, aggregate_id: UUID, cls: type[A]) -> A | None:
    """The aggregate if it exists and is of the expected class, else None."""
    try:
        found: Any = app.repository.get(aggregate_id)
    except AggregateNotFoundError:
        return None
    return found if isinstance(found, cls) else None


def _client(app: AccordApplication, client_id: UUID) -> Client:
    client = _aggregate(app, client_id, Client)
    if client is None:
        raise ClientNotFound()
    return client
