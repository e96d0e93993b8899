"""Who may see what: the pure policy decision and its explanations.

``decide(viewer, purpose, fact, state, at)`` answers whether one agency may see one fact
for one purpose, given the agreements and consents at one log position, at one moment.
It is a pure function: live projections and point-in-time replays call the same code
with the same state, so a replay can always explain what a view showed.

The rules (DESIGN.md, "Who may see what"):
1. The controller (the agency that recorded the fact) sees its own record.
2. Otherwise an agreement in force between controller and viewer must cover the fact's
   category and the stated purpose, and be in date.
3. Where the agreement requires consent, the client must have an active consent given
   for the controller's data, covering the viewer (agency or agency kind), category and
   purpose, with the fact inside the consent's data period.
4. Where the agreement's basis is a legal duty, sharing goes ahead without consent.
5. Emergency ("break-glass") access: a grant on the client's stream lets one agency see
   every fact of the client (clinical notes only if the agency is clinical) for one
   purpose, from when it was granted until it expires or is ended (by the controller's
   IG lead, or by its review closed as not justified); an IG review is opened for it.
6. Everything else is denied, with the reasons.

The same rules compiled for bulk use are ``Share``s: a grant with the facts it covers
(``standing_shares`` for every client, ``client_shares`` for one client's consents and
emergency grants). ``shared_with`` enumerates, for every agency at once, every basis on
which a fact could be shown, each with the window of time in which it holds (``grants``
is one agency's part): the shares that cover it. The projections store the shares and
let the database apply them to the facts; a view at time ``t`` is the grants whose
window contains ``t``, which is exactly what ``decide(..., at=t)`` permits.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from domain.agencies import AgencyKind
from domain.agreements import AgreementTerms
from domain.categories import DataCategory
from domain.clients import EmergencyEndCause
from domain.vocabulary import Purpose

#: The purpose under which a controller's own rows are stored: any purpose.
ANY_PURPOSE = "*"


class BasisKind(StrEnum):
    CONTROLLER = "controller"
    AGREEMENT = "agreement"
    AGREEMENT_AND_CONSENT = "agreement_and_consent"
    LEGAL_DUTY = "legal_duty"
    EMERGENCY = "emergency"


@dataclass(frozen=True)
class Viewer:
    agency: str
    kind: AgencyKind


@dataclass(frozen=True)
class Fact:
    """What the policy needs to know about one fact in the log."""

    client_id: UUID
    position: int
    category: DataCategory
    controller: str
    occurred_at: datetime


@dataclass(frozen=True)
class AgreementInForce:
    agreement_id: UUID
    controller: str
    recipient: str
    version: int
    terms: AgreementTerms
    # Derived once from the terms: decisions are made per fact, many thousands a second.
    label: str = field(init=False, compare=False)
    lawful: tuple[tuple[str, str | None], ...] = field(init=False, compare=False)
    purposes: frozenset[str] = field(init=False, compare=False)
    starts: datetime = field(init=False, compare=False)
    ends: datetime | None = field(init=False, compare=False)
    #: Grants that depend only on the category (no consent needed), computed once each.
    static_grants: dict[DataCategory, tuple[Grant, ...]] = field(
        init=False, compare=False, repr=False
    )
    #: Grants with one consent, by (consent, purpose, category), made once each.
    consent_grants: dict[tuple[UUID, str, DataCategory], Grant] = field(
        init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        terms, basis = self.terms, self.terms.lawful_basis
        derived = {
            "label": f"agreement {self.agreement_id} v{self.version} ({terms.title})",
            "lawful": (
                ("article_6", basis.article_6.value),
                ("article_9", basis.article_9.value if basis.article_9 else None),
                ("article_10", basis.article_10.value if basis.article_10 else None),
            ),
            "purposes": frozenset(p.value for p in terms.purposes),
            "starts": day_start(terms.valid_from),
            "ends": day_start(terms.valid_to + timedelta(days=1)) if terms.valid_to else None,
            "static_grants": {},
            "consent_grants": {},
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    def serves(self, purpose: str, at: datetime) -> bool:
        """Whether the terms name ``purpose`` and are in date at ``at``: from the start of
        ``valid_from`` to the end of ``valid_to`` (UTC days), the window each of the
        agreement's grants (so each of the views' rows on it) starts and ends with."""
        return purpose in self.purposes and self.starts <= at and (
            self.ends is None or at < self.ends)


class AgreementRegister(dict[UUID, AgreementInForce]):
    """The agreements in force, indexed by controller (rebuilt after any change)."""

    _by_controller: dict[str, list[AgreementInForce]] | None = None
    _by_pair: dict[tuple[str, str], list[AgreementInForce]] | None = None
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: What callers derive from the register; emptied whenever it changes.
        self.derived: dict[Any, Any] = {}

    def _changed(self) -> None:
        self._by_controller = self._by_pair = None
        self.derived = {}

    def __setitem__(self, key: UUID, value: AgreementInForce) -> None:
        self._changed()
        super().__setitem__(key, value)

    def __delitem__(self, key: UUID) -> None:
        self._changed()
        super().__delitem__(key)

    def pop(self, key: UUID, *default: Any) -> Any:
        self._changed()
        return super().pop(key, *default)

    def between(self, controller: str, recipient: str) -> list[AgreementInForce]:
        if self._by_pair is None:
            pairs: dict[tuple[str, str], list[AgreementInForce]] = {}
            for agreement in self.values():
                pairs.setdefault((agreement.controller, agreement.recipient), []).append(agreement)
            self._by_pair = pairs
        return self._by_pair.get((controller, recipient), [])

    def from_controller(self, controller: str) -> list[AgreementInForce]:
        if self._by_controller is None:
            index: dict[str, list[AgreementInForce]] = {}
            for agreement in self.values():
                index.setdefault(agreement.controller, []).append(agreement)
            self._by_controller = index
        return self._by_controller.get(controller, [])


@dataclass(frozen=True)
class ConsentScope:
    consent_id: UUID
    client_id: UUID
    controller: str
    recipient_agency: str | None
    recipient_kind: str | None
    categories: frozenset[str]
    purposes: frozenset[str]
    data_from: date | None
    data_to: date | None
    expires_at: datetime | None
    withdrawn: bool = False

    def covers_recipient(self, viewer: Viewer) -> bool:
        if self.recipient_agency is not None:
            return self.recipient_agency == viewer.agency
        return self.recipient_kind == viewer.kind.value

    @property
    def data_window(self) -> tuple[datetime | None, datetime | None]:
        """The consent's data period as times: from the start of its first day (UTC) to
        the start of the day after its last; None where it is open."""
        return (day_start(self.data_from) if self.data_from else None,
                day_start(self.data_to + timedelta(days=1)) if self.data_to else None)

    def covers_data_of(self, fact: Fact) -> bool:
        starts, ends = self.data_window
        return (starts is None or fact.occurred_at >= starts) and (
            ends is None or fact.occurred_at < ends
        )


@dataclass(frozen=True)
class EmergencyScope:
    """An emergency (break-glass) grant, as the policy sees it."""

    grant_id: UUID
    client_id: UUID
    agency: str
    principal: str
    purpose: str
    clinical_notes: bool
    granted_at: datetime
    expires_at: datetime
    #: When the grant was ended before it expired, and why; None while it runs its course.
    ended_at: datetime | None = None
    end_cause: str | None = None

    @property
    def until(self) -> datetime:
        """When the grant stops showing anything: its expiry, or its end if earlier."""
        if self.ended_at is None:
            return self.expires_at
        return min(self.expires_at, self.ended_at)

    def covers(self, category: DataCategory) -> bool:
        """Every category of the client's facts, identity included; clinical notes only for
        a clinical agency (decided when granted, and recorded on the grant)."""
        return category is not DataCategory.CLINICAL_NOTES or self.clinical_notes


@dataclass(frozen=True)
class Basis:
    """Why a fact is shown: which rule, which agreement, which consent, which duty."""

    kind: BasisKind
    agreement_id: UUID | None = None
    agreement_version: int | None = None
    consent_id: UUID | None = None
    legal_duty: str | None = None
    lawful_basis: tuple[tuple[str, str | None], ...] | None = None
    grant_id: UUID | None = None  # an emergency grant

    def as_json(self) -> dict[str, Any]:
        result = {
            "kind": self.kind.value,
            "agreement_id": str(self.agreement_id) if self.agreement_id else None,
            "agreement_version": self.agreement_version,
            "consent_id": str(self.consent_id) if self.consent_id else None,
            "legal_duty": self.legal_duty,
            "lawful_basis": dict(self.lawful_basis) if self.lawful_basis else None,
        }
        if self.grant_id is not None:
            result["grant_id"] = str(self.grant_id)
        return result


@dataclass(frozen=True)
class Grant:
    """One basis on which a viewer may see a fact for a purpose, and when it holds."""

    purpose: str
    basis: Basis
    fields: tuple[str, ...] | None  # None: every field (the controller's own record)
    not_before: datetime | None
    not_after: datetime | None
    reason: str

    def holds_at(self, at: datetime) -> bool:
        return (self.not_before is None or at >= self.not_before) and (
            self.not_after is None or at < self.not_after
        )


@dataclass(frozen=True)
class Decision:
    permit: bool
    basis: Basis | None
    fields: tuple[str, ...] | None
    reasons: tuple[str, ...]


@dataclass
class PolicyState:
    """Agreements in force, consents and agency kinds at one log position."""

    position: int = 0
    agency_kinds: dict[str, AgencyKind] = field(default_factory=dict)
    agreements: dict[UUID, AgreementInForce] = field(default_factory=AgreementRegister)
    consents: dict[UUID, dict[UUID, ConsentScope]] = field(default_factory=dict)
    erased: set[UUID] = field(default_factory=set)
    #: Clients whose processing is restricted (UK GDPR Art. 18): partners see nothing of
    #: them, as of an erased client, until the restriction is lifted.
    restricted: set[UUID] = field(default_factory=set)
    #: Emergency grants by client, then by grant id.
    emergencies: dict[UUID, dict[UUID, EmergencyScope]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.agreements, AgreementRegister):
            self.agreements = AgreementRegister(self.agreements)

    def agreements_from(self, controller: str) -> list[AgreementInForce]:
        assert isinstance(self.agreements, AgreementRegister)
        return self.agreements.from_controller(controller)

    def agreements_between(self, controller: str, recipient: str) -> list[AgreementInForce]:
        assert isinstance(self.agreements, AgreementRegister)
        return self.agreements.between(controller, recipient)

    def hidden_from_partners(self, client_id: UUID) -> bool:
        """Whether partners see nothing of the client: erased, or restricted."""
        return client_id in self.erased or client_id in self.restricted

    def consents_of(self, client_id: UUID) -> Iterable[ConsentScope]:
        return self.consents.get(client_id, {}).values()

    def emergencies_of(self, client_id: UUID) -> Iterable[EmergencyScope]:
        return self.emergencies.get(client_id, {}).values()


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def agreements_in_force(state: PolicyState, controller: str, recipient: str, purpose: str,
                        at: datetime) -> list[AgreementInForce]:
    """The agreements in force from ``controller`` to ``recipient`` for ``purpose`` at
    ``at`` (any moment of a day gives that day's answer), by id: the version both
    parties approved last, not revoked (as ``consent.state.evolve`` keeps them, for the
    views, the replay and the safeguarding rules alike), naming the purpose, in date.
    ``decide`` walks the same agreements and windows, saying of each why it does not
    apply."""
    return sorted((agreement for agreement in state.agreements_between(controller, recipient)
                   if agreement.serves(purpose, at)), key=lambda agreement: agreement.agreement_id)


def mask(data: Mapping[str, Any], fields: Iterable[str] | None) -> dict[str, Any]:
    """Only the shared fields of a payload; every field for the controller."""
    if fields is None:
        return dict(data)
    return {name: data[name] for name in fields if name in data}


@dataclass(frozen=True)
class Share:
    """One grant with the facts it covers: every fact of ``category`` recorded by
    ``controller`` (by any agency but ``agency`` itself, if None) about ``client_id``
    (about any client, if None) that occurred in [``data_from``, ``data_until``).

    The policy compiled for bulk use: the views projector stores the shares and lets the
    database apply them to facts (``projections.views``). Partner shares never cover the
    facts of an erased client."""

    agency: str
    category: DataCategory
    grant: Grant
    controller: str | None
    client_id: UUID | None = None
    data_from: datetime | None = None
    data_until: datetime | None = None

    def covers(self, fact: Fact) -> bool:
        if self.category is not fact.category:
            return False
        if self.controller is None:
            if fact.controller == self.agency:
                return False
        elif self.controller != fact.controller:
            return False
        return (self.client_id is None or self.client_id == fact.client_id) and (
            self.data_from is None or fact.occurred_at >= self.data_from) and (
            self.data_until is None or fact.occurred_at < self.data_until)


def standing_shares(state: PolicyState) -> list[Share]:
    """The shares that hold for every client: each registered agency's own record (rule
    1) and the agreements that need no consent (rules 2 and 4)."""
    kinds = state.agency_kinds
    shares = [Share(agency, category, _controller_grant_of(agency), agency)
              for agency in kinds for category in DataCategory]
    for agreement in state.agreements.values():
        recipient = agreement.recipient
        if (agreement.terms.consent_required or recipient == agreement.controller
                or recipient not in kinds):
            continue
        for category in agreement.terms.categories:
            shares.extend(Share(recipient, category, grant, agreement.controller)
                          for grant in _static_grants(agreement, category))
    return shares


def client_shares(state: PolicyState, client_id: UUID) -> list[Share]:
    """The shares one client's own choices and grants make: emergency grants (rule 5)
    and agreements with the client's consent (rule 3). None once the client is erased,
    nor while its processing is restricted."""
    if state.hidden_from_partners(client_id):
        return []
    kinds = state.agency_kinds
    shares: list[Share] = []
    for scope in state.emergencies_of(client_id):
        if scope.agency in kinds:
            grant = _emergency_grant(scope)
            shares.extend(Share(scope.agency, category, grant, None, client_id)
                          for category in DataCategory if scope.covers(category))
    for consent in state.consents_of(client_id):
        if consent.withdrawn:
            continue
        data_from, data_until = consent.data_window
        for agreement in state.agreements_from(consent.controller):
            recipient = agreement.recipient
            kind = kinds.get(recipient)
            if (not agreement.terms.consent_required or recipient == agreement.controller
                    or kind is None or not consent.covers_recipient(_viewer(recipient, kind))):
                continue
            for category in agreement.terms.categories:
                if category.value not in consent.categories:
                    continue
                shares.extend(
                    Share(recipient, category,
                          _consent_grant(agreement, consent, purpose.value, category),
                          agreement.controller, client_id, data_from, data_until)
                    for purpose in agreement.terms.purposes
                    if purpose.value in consent.purposes
                )
    return shares


def shared_with(fact: Fact, state: PolicyState) -> list[tuple[Viewer, tuple[Grant, ...]]]:
    """Every agency that may see ``fact``, the controller first, each with every basis on
    which it may (for every purpose, with its window): the shares that cover the fact.

    Agencies not (yet) registered see nothing. The grants are shared objects, the same
    each time for the same agreement, consent, purpose and category."""
    controller, kinds = fact.controller, state.agency_kinds
    result: list[tuple[Viewer, tuple[Grant, ...]]] = []
    if controller in kinds:
        result.append((_viewer(controller, kinds[controller]), (_controller_grant(fact),)))
    if state.hidden_from_partners(fact.client_id):
        return result
    by_agency: dict[str, list[Grant]] = {}
    for share in (*client_shares(state, fact.client_id), *standing_shares(state)):
        if share.agency != controller and share.covers(fact):
            by_agency.setdefault(share.agency, []).append(share.grant)
    for agency in sorted(by_agency):
        result.append((_viewer(agency, kinds[agency]), tuple(by_agency[agency])))
    return result


def grants(
    viewer: Viewer, fact: Fact, state: PolicyState, *, consent_based_only: bool = False
) -> list[Grant]:
    """Every basis on which ``viewer`` may see ``fact``, for every purpose, with its window.

    ``consent_based_only`` limits them to agreements that require consent: the only
    grants a change of the client's consents can alter."""
    for shown, found in shared_with(fact, state):
        if shown.agency == viewer.agency:
            return list(consent_based(found) if consent_based_only else found)
    return []


def consent_based(found: Iterable[Grant]) -> tuple[Grant, ...]:
    """The grants that rest on the client's consent: the only ones a change of consent
    can alter."""
    return tuple(g for g in found if g.basis.kind is BasisKind.AGREEMENT_AND_CONSENT)


@functools.lru_cache(maxsize=256)
def _viewer(agency: str, kind: AgencyKind) -> Viewer:
    return Viewer(agency, kind)


def _static_grants(agreement: AgreementInForce, category: DataCategory) -> tuple[Grant, ...]:
    """An agreement without consent grants the same for every fact of a category."""
    cached = agreement.static_grants.get(category)
    if cached is None:
        cached = agreement.static_grants[category] = tuple(
            _static_grant(agreement, purpose.value, category)
            for purpose in agreement.terms.purposes
        )
    return cached


def _static_grant(agreement: AgreementInForce, purpose: str, category: DataCategory) -> Grant:
    """Rules 2 and 4: what an agreement that needs no consent grants for one purpose."""
    name, duty = agreement.label, agreement.terms.lawful_basis.legal_duty
    if duty is not None:
        basis = Basis(BasisKind.LEGAL_DUTY, agreement.agreement_id, agreement.version,
                      legal_duty=duty.value, lawful_basis=agreement.lawful)
        reason = f"rule 4: {name}: legal duty ({duty.value}); shared without consent"
    else:
        basis = Basis(BasisKind.AGREEMENT, agreement.agreement_id, agreement.version,
                      lawful_basis=agreement.lawful)
        reason = f"rule 2: {name} shares {category.value} for {purpose}"
    return Grant(purpose, basis, tuple(agreement.terms.categories[category]),
                 agreement.starts, agreement.ends, reason)


#: How many consent grants an agreement remembers before starting again.
_CONSENT_GRANTS_KEPT = 50_000


def _consent_grant(agreement: AgreementInForce, consent: ConsentScope, purpose: str,
                   category: DataCategory) -> Grant:
    """Rule 3: what an agreement grants for one purpose with one (covering) consent."""
    key = (consent.consent_id, purpose, category)
    grant = agreement.consent_grants.get(key)
    if grant is None:
        until = agreement.ends
        if consent.expires_at is not None:
            until = consent.expires_at if until is None else min(until, consent.expires_at)
        basis = Basis(BasisKind.AGREEMENT_AND_CONSENT, agreement.agreement_id,
                      agreement.version, consent_id=consent.consent_id,
                      lawful_basis=agreement.lawful)
        reason = (f"rule 3: {agreement.label} shares {category.value} for {purpose} "
                  f"with the client's consent {consent.consent_id}")
        grant = Grant(purpose, basis, tuple(agreement.terms.categories[category]),
                      agreement.starts, until, reason)
        if len(agreement.consent_grants) >= _CONSENT_GRANTS_KEPT:
            agreement.consent_grants.clear()
        agreement.consent_grants[key] = grant
    return grant


def decide(
    viewer: Viewer,
    purpose: Purpose | str,
    fact: Fact,
    state: PolicyState,
    at: datetime | None = None,
) -> Decision:
    """Whether ``viewer`` may see ``fact`` for ``purpose`` at time ``at``, and why."""
    at = at or datetime.now(UTC)
    purpose = str(purpose)
    if viewer.agency == fact.controller:
        grant = _controller_grant(fact)
        return Decision(True, grant.basis, None, (grant.reason,))
    if fact.client_id in state.erased:
        return Decision(False, None, None, ("the client has been erased",))
    if fact.client_id in state.restricted:
        return Decision(False, None, None, ("processing of the client is restricted "
                                            "(UK GDPR Art. 18): partners see nothing",))
    agreements = state.agreements_between(fact.controller, viewer.agency)
    emergency, emergency_refused = _emergency_grants(viewer, fact, state)
    no_agreement = (f"rule 2: no data-sharing agreement in force from {fact.controller} "
                    f"to {viewer.agency}")
    if not agreements and not emergency and not emergency_refused:
        return Decision(False, None, None, (no_agreement,))
    reasons: list[str] = [] if agreements else [no_agreement]
    reasons.extend(emergency_refused)
    holding: list[Grant] = []
    for agreement in agreements:
        granted, refused = _evaluate(agreement, viewer, purpose, fact, state)
        reasons.extend(refused)
        for grant in granted:
            if grant.holds_at(at):
                holding.append(grant)
            else:
                reasons.append(_outside_window(grant, at))
    for grant in emergency:
        if grant.purpose != purpose:
            reasons.append(f"rule 5: emergency access {grant.basis.grant_id} is for "
                           f"{grant.purpose}, not {purpose}")
        elif grant.holds_at(at):
            holding.append(grant)
        else:
            reasons.append(_outside_window(grant, at))
    if holding:
        chosen = min(holding, key=lambda grant: preference(grant.basis))
        return Decision(True, chosen.basis, chosen.fields, (*reasons, chosen.reason))
    return Decision(False, None, None, (*reasons, "rule 6: denied by default"))


#: Where several bases hold at once, the one shown is the one least dependent on the
#: client's choices: the controller's own record, then a legal duty, then an agreement
#: without consent, then consent. The live views and ``decide`` (and so replays) use
#: this one order, so they always name the same basis and show the same fields.
#:
#: An emergency grant, while it holds, comes straight after the controller. It is the
#: least durable basis, but it is the only one that shows every field: were it ranked
#: after an agreement, a fact the agreement shares would stay masked to the agreement's
#: fields (no substances, no full identity) exactly when breaking glass was needed. Named
#: first, the view, the access record and the replay all say that what was shown in the
#: window was shown because of the emergency, which is what its IG review must judge.
#: When it lapses, the rows of the other bases (never removed) are shown again.
BASIS_PREFERENCE = {
    BasisKind.CONTROLLER.value: 0,
    BasisKind.EMERGENCY.value: 1,
    BasisKind.LEGAL_DUTY.value: 2,
    BasisKind.AGREEMENT.value: 3,
    BasisKind.AGREEMENT_AND_CONSENT.value: 4,
}


def basis_key(basis: Basis) -> str:
    """A stable text key for a basis: its kind, agreement and consent (or emergency grant)."""
    return (f"{basis.kind.value}:{basis.agreement_id or ''}:"
            f"{basis.consent_id or basis.grant_id or ''}")


def preference(basis: Basis) -> tuple[int, str]:
    """Sort key choosing among bases that hold at once (lowest first)."""
    return preference_of_key(basis_key(basis))


def preference_of_key(key: str) -> tuple[int, str]:
    return (BASIS_PREFERENCE.get(key.split(":", 1)[0], 9), key)


def _controller_grant(fact: Fact) -> Grant:
    return _controller_grant_of(fact.controller)


@functools.lru_cache(maxsize=256)
def _controller_grant_of(controller: str) -> Grant:
    return Grant(
        purpose=ANY_PURPOSE, basis=Basis(BasisKind.CONTROLLER), fields=None,
        not_before=None, not_after=None,
        reason=f"rule 1: {controller} recorded this fact and controls it",
    )


def _emergency_grants(
    viewer: Viewer, fact: Fact, state: PolicyState, *, explain: bool = True
) -> tuple[list[Grant], list[str]]:
    """Rule 5: the grants the viewer's emergency grants give for this fact, or (if
    ``explain``) why one does not cover it. Each holds for its purpose, in its window."""
    granted: list[Grant] = []
    refused: list[str] = []
    for scope in state.emergencies_of(fact.client_id):
        if scope.agency != viewer.agency:
            continue
        if not scope.covers(fact.category):
            if explain:
                refused.append(f"rule 5: emergency access {scope.grant_id} does not cover "
                               f"clinical notes: {viewer.agency} is not a clinical agency")
            continue
        granted.append(_emergency_grant(scope))
    return granted, refused


#: How the reason of an ended grant says why it ended.
_END_CAUSES = {
    EmergencyEndCause.REVIEW_NOT_JUSTIFIED.value: "its IG review found it not justified",
    EmergencyEndCause.ENDED_BY_IG_LEAD.value: "ended by the controller's IG lead",
}


@functools.lru_cache(maxsize=4096)
def _emergency_grant(scope: EmergencyScope) -> Grant:
    """Rule 5: what an emergency grant gives, for its purpose, in its window: from when
    it was granted until it expires, or until it was ended if that came first."""
    reason = (f"rule 5: emergency access {scope.grant_id} by {scope.principal} for "
              f"{scope.purpose}, from {scope.granted_at.isoformat()} until "
              f"{scope.expires_at.isoformat()}; under IG review")
    if scope.ended_at is not None:
        why = _END_CAUSES.get(scope.end_cause or "", scope.end_cause or "ended")
        reason += f"; ended at {scope.ended_at.isoformat()} ({why})"
    return Grant(
        purpose=scope.purpose, basis=Basis(BasisKind.EMERGENCY, grant_id=scope.grant_id),
        fields=None, not_before=scope.granted_at, not_after=scope.until, reason=reason,
    )


def _evaluate(
    agreement: AgreementInForce, viewer: Viewer, purpose: str, fact: Fact, state: PolicyState,
    *, explain: bool = True,
) -> tuple[list[Grant], list[str]]:
    """The grants one agreement gives for one purpose, or (if ``explain``) why it gives none."""
    terms = agreement.terms
    name = agreement.label
    if fact.category not in terms.categories:
        return [], [f"rule 2: {name} does not share {fact.category.value}"]
    if purpose not in agreement.purposes:
        return [], [f"rule 2: {name} does not name the purpose {purpose}"]
    if not terms.consent_required:
        return [_static_grant(agreement, purpose, fact.category)], []
    granted: list[Grant] = []
    refused: list[str] = []
    for consent in state.consents_of(fact.client_id):
        problem = _consent_problem(consent, viewer, purpose, fact)
        if problem:
            if explain:
                refused.append(f"rule 3: consent {consent.consent_id} {problem}")
            continue
        granted.append(_consent_grant(agreement, consent, purpose, fact.category))
    if not granted and explain:
        refused.append(f"rule 3: {name} requires consent, and no active consent covers "
                       f"{viewer.agency}, {fact.category.value} and {purpose}")
    return granted, refused


def _consent_problem(consent: ConsentScope, viewer: Viewer, purpose: str, fact: Fact) -> str:
    if consent.withdrawn:
        return "was withdrawn"
    if consent.controller != fact.controller:
        return f"covers {consent.controller}'s data, not {fact.controller}'s"
    if not consent.covers_recipient(viewer):
        return f"does not cover {viewer.agency}"
    if fact.category.value not in consent.categories:
        return f"does not cover {fact.category.value}"
    if purpose not in consent.purposes:
        return f"does not cover the purpose {purpose}"
    if not consent.covers_data_of(fact):
        return "does not cover data from that date"
    return ""


def _outside_window(grant: Grant, at: datetime) -> str:
    if grant.not_before is not None and at < grant.not_before:
        return f"{grant.reason}, but not before {grant.not_before.isoformat()}"
    lapsed = grant.not_after.isoformat() if grant.not_after else "an unknown time"
    return f"{grant.reason}, but it lapsed at {lapsed}"
