"""How the policy state moves along the log, one domain event at a time.

``evolve`` applies an event to a ``PolicyState`` and says what it means for the views:
a new fact to project, a fact corrected by its controller (amended or retracted), a
client whose consents changed (or who was erased), a client whose processing was
restricted or the restriction lifted, an agreement that came into
force or was revoked, or an emergency grant that lets one agency see one client (or
its ending, which closes the grant's window at the end's time). Live projections (the
agency views and the safeguarding rules) and replays all step through the log with it,
so they all hold the same agreements in force; a follower that stores its state beside
its position stores agreements as ``AgreementDraft.to_json`` and puts them back with
``LogState.restore``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from consent.policy import AgreementInForce, ConsentScope, EmergencyScope, Fact, PolicyState
from domain.agencies import Agency, AgencyKind
from domain.agreements import Agreement, AgreementTerms
from domain.categories import DataCategory
from domain.clients import Client


@dataclass(frozen=True)
class NewFact:
    fact: Fact
    fact_type: str
    data: dict[str, Any]
    recorded_at: Any
    recorded_by: str


@dataclass(frozen=True)
class Correction:
    """A fact amended or retracted by its controller: ``kind`` (``amended`` or
    ``retracted``), the correction's own log position and time, who made it and why."""

    kind: str
    position: int
    at: datetime
    by: str
    reason: str


@dataclass(frozen=True)
class AmendedFact:
    """A fact as its controller corrected it (``fact.position`` is the fact's own log
    position; ``fact.occurred_at`` and ``data`` are as amended): from ``correction``'s
    position on it stands in place of the fact as recorded."""

    fact: Fact
    fact_type: str
    data: dict[str, Any]
    correction: Correction


@dataclass(frozen=True)
class RetractedFact:
    """A fact its controller retracted: from ``correction``'s position on it is no
    longer shown or counted anywhere."""

    client_id: UUID
    position: int  # the retracted fact's
    fact_type: str
    controller: str
    correction: Correction


@dataclass(frozen=True)
class ClientPolicyChanged:
    """The client's consents (for one controller's data) changed, or the client was erased."""

    client_id: UUID
    controller: str | None = None  # None: every controller


@dataclass(frozen=True)
class RestrictionChanged:
    """Processing of the client was restricted (UK GDPR Art. 18: partners see nothing of
    them) or the restriction lifted (they see again what agreements and consents allow)."""

    client_id: UUID
    restricted: bool


@dataclass(frozen=True)
class AgreementChanged:
    controller: str
    recipient: str


@dataclass(frozen=True)
class EmergencyGranted:
    """An emergency grant: the (agency, client) pair must be re-projected."""

    client_id: UUID
    agency: str


@dataclass(frozen=True)
class EmergencyEnded:
    """An emergency grant ended before it expired: the (agency, client) pair must be
    re-projected, and what the grant alone showed at ``ended_at`` leaves the view."""

    client_id: UUID
    agency: str
    ended_at: datetime


Effect = (NewFact | AmendedFact | RetractedFact | ClientPolicyChanged | AgreementChanged
          | EmergencyGranted | EmergencyEnded | RestrictionChanged | None)


@dataclass
class AgreementDraft:
    """Every version of an agreement's terms, so that the version that comes into force
    can be looked up; kept for agreements not yet (or no longer) in force too."""

    controller: str
    recipient: str
    versions: list[dict[str, Any]] = field(default_factory=list)
    in_force: int | None = None
    revoked: bool = False

    def to_json(self) -> str:
        """The draft as a follower stores it beside its position."""
        return json.dumps(self.__dict__, default=str)

    @classmethod
    def from_json(cls, stored: str) -> AgreementDraft:
        return cls(**json.loads(stored))

    def agreement(self, agreement_id: UUID, version: int) -> AgreementInForce:
        """The agreement in force with this version of the terms."""
        return AgreementInForce(agreement_id, self.controller, self.recipient, version,
                                AgreementTerms.model_validate(self.versions[version - 1]))


@dataclass
class LogState(PolicyState):
    """A ``PolicyState`` that also keeps agreement drafts, to follow the log."""

    drafts: dict[UUID, AgreementDraft] = field(default_factory=dict)

    def restore(self, agreement_id: UUID, draft: AgreementDraft) -> None:
        """Puts back a stored draft, and the agreement in force it gives, as ``evolve``
        left them."""
        self.drafts[agreement_id] = draft
        if draft.in_force is not None and not draft.revoked:
            self.agreements[agreement_id] = draft.agreement(agreement_id, draft.in_force)


def evolve(state: LogState, event: Any, position: int) -> Effect:
    state.position = position
    if isinstance(event, Client.FactRecorded):
        return NewFact(
            Fact(event.originator_id, position, DataCategory(event.category), event.controller,
                 event.occurred_at),
            event.fact_type, event.data, event.timestamp, event.recorded_by,
        )
    if isinstance(event, Client.FactAmended):
        return AmendedFact(
            Fact(event.originator_id, event.position, DataCategory(event.category),
                 event.controller, event.occurred_at),
            event.fact_type, event.data,
            Correction("amended", position, event.timestamp, event.amended_by, event.reason),
        )
    if isinstance(event, Client.FactRetracted):
        return RetractedFact(
            event.originator_id, event.position, event.fact_type, event.controller,
            Correction("retracted", position, event.timestamp, event.retracted_by,
                       event.reason),
        )
    if isinstance(event, Client.Registered):
        return NewFact(
            Fact(event.originator_id, position, DataCategory.IDENTITY, event.controller,
                 event.timestamp),
            "client_registered", {}, event.timestamp, event.registered_by,
        )
    if isinstance(event, Client.ConsentGiven):
        state.consents.setdefault(event.originator_id, {})[event.consent_id] = ConsentScope(
            consent_id=event.consent_id, client_id=event.originator_id,
            controller=event.controller, recipient_agency=event.recipient_agency,
            recipient_kind=event.recipient_kind, categories=frozenset(event.categories),
            purposes=frozenset(event.purposes), data_from=event.data_from,
            data_to=event.data_to, expires_at=event.expires_at,
        )
        return ClientPolicyChanged(event.originator_id, event.controller)
    if isinstance(event, Client.ConsentWithdrawn):
        scopes = state.consents.setdefault(event.originator_id, {})
        old = scopes.get(event.consent_id)
        if old is None:
            return None
        scopes[event.consent_id] = ConsentScope(**{**old.__dict__, "withdrawn": True})
        return ClientPolicyChanged(event.originator_id, old.controller)
    if isinstance(event, Client.EmergencyAccessGranted):
        state.emergencies.setdefault(event.originator_id, {})[event.grant_id] = EmergencyScope(
            grant_id=event.grant_id, client_id=event.originator_id, agency=event.agency,
            principal=event.principal, purpose=event.purpose,
            clinical_notes=event.clinical_notes, granted_at=event.granted_at,
            expires_at=event.expires_at,
        )
        return EmergencyGranted(event.originator_id, event.agency)
    if isinstance(event, Client.EmergencyAccessEnded):
        grants = state.emergencies.get(event.originator_id, {})
        scope = grants.get(event.grant_id)
        if scope is None:
            return None
        grants[event.grant_id] = replace(scope, ended_at=event.ended_at, end_cause=event.cause)
        return EmergencyEnded(event.originator_id, scope.agency, event.ended_at)
    if isinstance(event, Client.Erased):
        state.erased.add(event.originator_id)
        return ClientPolicyChanged(event.originator_id)
    if isinstance(event, Client.ProcessingRestricted):
        state.restricted.add(event.originator_id)
        return RestrictionChanged(event.originator_id, restricted=True)
    if isinstance(event, Client.RestrictionLifted):
        state.restricted.discard(event.originator_id)
        return RestrictionChanged(event.originator_id, restricted=False)
    if isinstance(event, Agency.Registered):
        state.agency_kinds[event.slug] = AgencyKind(event.kind)
        return None
    if isinstance(event, Agreement.Proposed):
        state.drafts[event.originator_id] = AgreementDraft(
            event.controller, str(event.terms["recipient"]), [event.terms]
        )
        return None
    if isinstance(event, Agreement.Amended):
        state.drafts[event.originator_id].versions.append(event.terms)
        return None
    if isinstance(event, Agreement.CameIntoForce):
        draft = state.drafts[event.originator_id]
        draft.in_force = event.version
        state.agreements[event.originator_id] = draft.agreement(event.originator_id,
                                                                event.version)
        return AgreementChanged(draft.controller, draft.recipient)
    if isinstance(event, Agreement.Revoked):
        draft = state.drafts[event.originator_id]
        draft.revoked = True
        if state.agreements.pop(event.originator_id, None) is not None:
            return AgreementChanged(draft.controller, draft.recipient)
    return None
