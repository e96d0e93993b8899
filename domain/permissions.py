"""Who may do what: every action the API or the CLI offers, and the roles that may take it.

One table, so that the application's commands, the API's dependencies and every later
entry point (a web application, a report runner) refuse the same callers with the same
words. A role check is the first refusal a caller meets: it says nothing about any
client, agreement or principal, so it comes before anything is looked up. What a
permitted role may then do to a given resource (its own agency's principals only, a
client its agency can see, the review of its own client) is decided afterwards, by the
command, because that needs the resource.

Where it matters, an action is also limited to some kinds of agency: only a treatment
provider registers clients, and a commissioner never breaks glass. An actor of no
agency kind (the CLI operator) passes no such limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from domain.agencies import AgencyKind, Role
from domain.errors import Forbidden


class Action(StrEnum):
    """Every command and read offered to a caller, named as the partnership says it."""

    # -- the partnership and its principals
    REGISTER_AGENCY = "register_agency"
    LIST_AGENCIES = "list_agencies"
    ADD_PRINCIPAL = "add_principal"
    LIST_PRINCIPALS = "list_principals"
    REVOKE_PRINCIPAL = "revoke_principal"
    READ_CATALOGUE = "read_catalogue"
    # -- clients and their facts
    REGISTER_CLIENT = "register_client"
    RECORD_FACT = "record_fact"
    AMEND_FACT = "amend_fact"
    RETRACT_FACT = "retract_fact"
    READ_RECORD = "read_record"
    ERASE_CLIENT = "erase_client"
    # -- the client's rights over the record (erasure's legal hold, Art. 18 restriction)
    PLACE_LEGAL_HOLD = "place_legal_hold"
    LIFT_LEGAL_HOLD = "lift_legal_hold"
    RESTRICT_PROCESSING = "restrict_processing"
    LIFT_RESTRICTION = "lift_restriction"
    FLAG_CLIENT = "flag_client"  # set or remove a flag: hear of other agencies' interest
    READ_FLAGS = "read_flags"
    # -- consent
    GIVE_CONSENT = "give_consent"
    WITHDRAW_CONSENT = "withdraw_consent"
    READ_CONSENTS = "read_consents"
    # -- partners' reads
    READ_VIEW = "read_view"
    MATCH = "match"
    LIST_CLIENTS = "list_clients"
    # -- data-sharing agreements
    PROPOSE_AGREEMENT = "propose_agreement"
    APPROVE_AGREEMENT = "approve_agreement"
    AMEND_AGREEMENT = "amend_agreement"
    REVOKE_AGREEMENT = "revoke_agreement"
    LIST_AGREEMENTS = "list_agreements"
    READ_AGREEMENT = "read_agreement"
    # -- emergency (break-glass) access and its review
    GRANT_EMERGENCY_ACCESS = "grant_emergency_access"
    END_EMERGENCY_ACCESS = "end_emergency_access"
    READ_REVIEWS = "read_reviews"
    CLOSE_REVIEW = "close_review"
    # -- households
    LINK_HOUSEHOLD = "link_household"
    ADD_HOUSEHOLD_MEMBER = "add_household_member"
    READ_HOUSEHOLD = "read_household"
    # -- safeguarding alerts
    READ_ALERTS = "read_alerts"
    ACKNOWLEDGE_ALERT = "acknowledge_alert"
    CLOSE_ALERT = "close_alert"
    ASSIGN_ALERT = "assign_alert"
    # -- accountability and tamper evidence
    READ_AUDIT = "read_audit"
    READ_DISCLOSURES = "read_disclosures"
    ANSWER_SUBJECT_ACCESS = "answer_subject_access"
    REPLAY = "replay"
    READ_TREE_HEAD = "read_tree_head"
    READ_PROOFS = "read_proofs"
    # -- reports for commissioners
    READ_MEASURES = "read_measures"
    READ_REPORTS = "read_reports"


class Acting(Protocol):
    """What a permission is checked against: an actor's role and its agency's kind
    (``domain.application.Actor`` is one; None for the CLI operator, of no agency)."""

    @property
    def role(self) -> Role: ...

    @property
    def agency_kind(self) -> AgencyKind | None: ...


def _needs(roles: frozenset[Role]) -> str:
    """The refusal for an action checked only by role so far (the API's words)."""
    return "this needs one of the roles: " + ", ".join(sorted(r.value for r in roles))


@dataclass(frozen=True)
class Permission:
    """Who may take one action, and what a refused caller is told.

    ``kinds`` limits the action to agencies of those kinds (None: any agency, and the
    CLI operator). ``message`` refuses a role outside ``roles``, unless ``role_messages``
    has words of its own for that role; ``kind_message`` refuses a permitted role of an
    agency of another kind."""

    roles: frozenset[Role]
    message: str = ""
    kinds: frozenset[AgencyKind] | None = None
    kind_message: str = ""
    role_messages: Mapping[Role, str] = field(default_factory=dict)

    def refusal(self, role: Role, kind: AgencyKind | None) -> str | None:
        """What a caller of this role and agency kind is told; None if it may act."""
        if role not in self.roles:
            return self.role_messages.get(role) or self.message or _needs(self.roles)
        if self.kinds is not None and kind not in self.kinds:
            return self.kind_message or self.message or _needs(self.roles)
        return None


_EVERYONE = frozenset(Role)
_P, _S, _I = Role.PRACTITIONER, Role.SAFEGUARDING, Role.IG_LEAD
_A, _C, _PA = Role.ADMIN, Role.COMMISSIONER, Role.PARTNERSHIP_ADMIN
#: Practitioners and safeguarding staff: those who work with clients.
_CLIENT_WORKERS = frozenset({_P, _S})
_AGREEMENTS = Permission(frozenset({_I}), "only an IG lead acts on data-sharing agreements")
_CONSENT = Permission(_CLIENT_WORKERS, "only practitioners and safeguarding staff record consent")
#: Correcting the record: those who record facts (only the fact's controller may, which
#: the client aggregate checks).
_CORRECTIONS = Permission(_CLIENT_WORKERS,
                          "only practitioners and safeguarding staff correct the facts they "
                          "recorded")
_HOUSEHOLDS = Permission(_CLIENT_WORKERS,
                         "only practitioners and safeguarding staff link households")
_ALERTS = Permission(frozenset({_S}), "only the recipient agency's safeguarding staff work alerts")
_AUDITORS = Permission(frozenset({_I, _A, _PA}))
_RECORD_RIGHTS = Permission(
    frozenset({_I}), "only the IG lead of the client's registering controller places or "
                     "lifts a legal hold or a restriction")

#: The table. Messages are those callers are given today; an action with no message of
#: its own was checked only by the API's routes, and keeps their words.
PERMISSIONS: Mapping[Action, Permission] = MappingProxyType({
    Action.REGISTER_AGENCY: Permission(
        frozenset({_PA}), "only a partnership administrator registers agencies"),
    Action.LIST_AGENCIES: Permission(_EVERYONE),
    Action.ADD_PRINCIPAL: Permission(
        frozenset({_A, _PA}), "only an admin or a partnership administrator adds principals"),
    Action.LIST_PRINCIPALS: Permission(
        frozenset({_A, _I, _PA}), "an agency's principals are listed for its admin and IG "
                                  "lead and for partnership administrators"),
    Action.REVOKE_PRINCIPAL: Permission(
        frozenset({_A, _PA}),
        "only an admin or a partnership administrator revokes principals"),
    Action.READ_CATALOGUE: Permission(_EVERYONE),
    Action.REGISTER_CLIENT: Permission(
        frozenset({_P}), "only a practitioner of a treatment provider registers clients",
        kinds=frozenset({AgencyKind.TREATMENT_PROVIDER})),
    Action.RECORD_FACT: Permission(
        _CLIENT_WORKERS, "only practitioners and safeguarding staff record facts"),
    Action.AMEND_FACT: _CORRECTIONS,
    Action.RETRACT_FACT: _CORRECTIONS,
    Action.READ_RECORD: Permission(
        frozenset({_P, _S, _I}), "this role does not read client records"),
    Action.ERASE_CLIENT: Permission(
        frozenset({_I}), "only the controller's IG lead erases a client"),
    # The IG lead of the client's registering controller (the command refuses any other
    # agency's as for an unknown client).
    Action.PLACE_LEGAL_HOLD: _RECORD_RIGHTS,
    Action.LIFT_LEGAL_HOLD: _RECORD_RIGHTS,
    Action.RESTRICT_PROCESSING: _RECORD_RIGHTS,
    Action.LIFT_RESTRICTION: _RECORD_RIGHTS,
    # A flag tells its agency of every other agency's interest in the client: a
    # safeguarding decision, for its safeguarding staff or IG lead (of an agency holding
    # its own record of the client, which the command checks); its practitioners read it.
    Action.FLAG_CLIENT: Permission(
        frozenset({_S, _I}), "only safeguarding staff and IG leads flag clients"),
    Action.READ_FLAGS: Permission(
        frozenset({_P, _S, _I}), "this role does not read client flags"),
    Action.GIVE_CONSENT: _CONSENT,
    Action.WITHDRAW_CONSENT: _CONSENT,
    Action.READ_CONSENTS: Permission(frozenset({_P, _S, _I})),
    # A commissioner works with aggregates (outcome reports), never one person's record.
    Action.READ_VIEW: Permission(
        _CLIENT_WORKERS, _needs(frozenset({_P, _S, _C})),
        role_messages={_C: "commissioners read aggregate reports, not one client's view"}),
    # A commissioner matches only for the purpose commissioning (checked with the purpose).
    Action.MATCH: Permission(frozenset({_P, _S, _C, _I})),
    # A caseload (the provider's clients in treatment) or a cohort (the clients an agency
    # may see for a purpose): for those who work with clients, never a commissioner.
    Action.LIST_CLIENTS: Permission(
        _CLIENT_WORKERS, "only practitioners and safeguarding staff list clients"),
    Action.PROPOSE_AGREEMENT: _AGREEMENTS,
    Action.APPROVE_AGREEMENT: _AGREEMENTS,
    Action.AMEND_AGREEMENT: _AGREEMENTS,
    Action.REVOKE_AGREEMENT: _AGREEMENTS,
    Action.LIST_AGREEMENTS: Permission(_EVERYONE),
    Action.READ_AGREEMENT: Permission(_EVERYONE),
    Action.GRANT_EMERGENCY_ACCESS: Permission(
        _CLIENT_WORKERS, "only practitioners and safeguarding staff may use emergency access",
        kinds=frozenset(AgencyKind) - {AgencyKind.COMMISSIONER},
        kind_message="a commissioner does not use emergency access"),
    Action.END_EMERGENCY_ACCESS: Permission(
        frozenset({_I}), "only the IG lead of the client's registering controller ends "
                         "emergency access"),
    Action.READ_REVIEWS: Permission(frozenset({_I})),
    Action.CLOSE_REVIEW: Permission(frozenset({_I}), "only an IG lead closes a review"),
    Action.LINK_HOUSEHOLD: _HOUSEHOLDS,
    Action.ADD_HOUSEHOLD_MEMBER: _HOUSEHOLDS,
    # Who lives with whom, as far as the caller's basis for the purpose shows each member.
    Action.READ_HOUSEHOLD: Permission(
        _CLIENT_WORKERS, "only practitioners and safeguarding staff read households"),
    Action.READ_ALERTS: Permission(frozenset({_S})),
    Action.ACKNOWLEDGE_ALERT: _ALERTS,
    Action.CLOSE_ALERT: _ALERTS,
    Action.ASSIGN_ALERT: _ALERTS,
    Action.READ_AUDIT: Permission(frozenset({_I})),
    Action.READ_DISCLOSURES: Permission(frozenset({_I, _P})),
    # A subject access request (UK GDPR Art. 15) is answered for the partnership by the IG
    # lead of the client's registering controller (the command refuses any other agency's
    # IG lead as for an unknown client).
    Action.ANSWER_SUBJECT_ACCESS: Permission(
        frozenset({_I}), "only the IG lead of the client's registering controller answers "
                         "a subject access request"),
    Action.REPLAY: Permission(frozenset({_I})),
    Action.READ_TREE_HEAD: _AUDITORS,
    Action.READ_PROOFS: _AUDITORS,
    # The measure catalogue holds no client data: for commissioners, and for the IG leads
    # who approve what an agreement for commissioning shares.
    Action.READ_MEASURES: Permission(frozenset({_C, _I})),
    # The figures are the commissioner agency's own (what it may see for commissioning):
    # its commissioners, and its IG lead.
    Action.READ_REPORTS: Permission(
        frozenset({_C, _I}), kinds=frozenset({AgencyKind.COMMISSIONER}),
        kind_message="outcome reports are read by the commissioner agency's commissioners "
                     "and IG lead"),
})


def permits(action: Action, role: Role, kind: AgencyKind | None) -> bool:
    """Whether a principal of this role, acting for an agency of this kind (None: the
    CLI operator), may take the action."""
    return PERMISSIONS[action].refusal(role, kind) is None


def require(action: Action, actor: Acting) -> None:
    """Refuses (``Forbidden``, HTTP 403) an actor who may not take the action."""
    refusal = PERMISSIONS[action].refusal(actor.role, actor.agency_kind)
    if refusal is not None:
        raise Forbidden(refusal)


def roles_for(action: Action) -> frozenset[Role]:
    """The roles that may take the action (for an agency of a kind it allows)."""
    return PERMISSIONS[action].roles


def kinds_for(action: Action) -> frozenset[AgencyKind] | None:
    """The kinds of agency whose principals may take the action; None for any."""
    return PERMISSIONS[action].kinds
