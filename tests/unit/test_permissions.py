"""The permission table: who may take each action, and what a refused caller is told.

The table (domain/permissions.py) is derived from what the application and the API's
routes enforced before it existed; these tests pin it to both. The application reads it
(each command's first check), and it agrees with every cell of the access matrix
(tests/e2e/test_access_matrix.py), which exercises the routes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from domain.agencies import AgencyKind, Role
from domain.agreements import AgreementTerms
from domain.application import OPERATOR, AccordApplication, Actor
from domain.errors import Forbidden
from domain.permissions import PERMISSIONS, Action, kinds_for, permits, require, roles_for
from domain.vocabulary import Purpose
from projections import queries
from projections.flags import flags
from tests.builders import Untouchable, housing_terms, identity
from tests.e2e.test_access_matrix import CALLER, COLUMNS, MATRIX

P, S, IG, A, C, PA = (Role.PRACTITIONER, Role.SAFEGUARDING, Role.IG_LEAD, Role.ADMIN,
                      Role.COMMISSIONER, Role.PARTNERSHIP_ADMIN)


def actor(role: Role, kind: AgencyKind | None = AgencyKind.TREATMENT_PROVIDER) -> Actor:
    return Actor(uuid4(), "someone", "tp", kind, role)


def refusal(action: Action, by: Actor) -> str:
    """What ``require`` tells the actor (it must refuse)."""
    with pytest.raises(Forbidden) as refused:
        require(action, by)
    return str(refused.value)


def test_every_action_has_an_entry_naming_at_least_one_role() -> None:
    assert set(PERMISSIONS) == set(Action)
    assert all(roles_for(action) for action in Action)


def test_only_a_treatment_providers_practitioner_registers_clients() -> None:
    assert roles_for(Action.REGISTER_CLIENT) == {P}
    assert kinds_for(Action.REGISTER_CLIENT) == {AgencyKind.TREATMENT_PROVIDER}
    assert permits(Action.REGISTER_CLIENT, P, AgencyKind.TREATMENT_PROVIDER)
    for kind in set(AgencyKind) - {AgencyKind.TREATMENT_PROVIDER}:
        assert not permits(Action.REGISTER_CLIENT, P, kind)
    assert not permits(Action.REGISTER_CLIENT, S, AgencyKind.TREATMENT_PROVIDER)
    assert not permits(Action.REGISTER_CLIENT, P, None)


def test_a_commissioner_never_breaks_glass() -> None:
    assert roles_for(Action.GRANT_EMERGENCY_ACCESS) == {P, S}
    for kind in AgencyKind:
        assert permits(Action.GRANT_EMERGENCY_ACCESS, S, kind) is (
            kind is not AgencyKind.COMMISSIONER)
    assert refusal(Action.GRANT_EMERGENCY_ACCESS, actor(P, AgencyKind.COMMISSIONER)) == \
        "a commissioner does not use emergency access"
    assert refusal(Action.GRANT_EMERGENCY_ACCESS, actor(C, AgencyKind.COMMISSIONER)) == \
        "only practitioners and safeguarding staff may use emergency access"


def test_the_cli_operator_acts_as_a_partnership_administrator_of_no_agency_kind() -> None:
    for action in (Action.REGISTER_AGENCY, Action.ADD_PRINCIPAL, Action.LIST_PRINCIPALS,
                   Action.REVOKE_PRINCIPAL, Action.LIST_AGENCIES):
        require(action, OPERATOR)
    for action in (Action.REGISTER_CLIENT, Action.READ_RECORD, Action.READ_VIEW,
                   Action.GRANT_EMERGENCY_ACCESS, Action.READ_AUDIT):
        refusal(action, OPERATOR)


def test_a_commissioner_reads_no_per_client_view_and_is_told_why() -> None:
    assert roles_for(Action.READ_VIEW) == {P, S}
    assert C in roles_for(Action.MATCH)  # for the purpose commissioning only (the route)
    assert refusal(Action.READ_VIEW, actor(C, AgencyKind.COMMISSIONER)) == \
        "commissioners read aggregate reports, not one client's view"
    assert refusal(Action.READ_VIEW, actor(IG)) == \
        "this needs one of the roles: commissioner, practitioner, safeguarding"


#: Refusals as the application words them (before the table, each was its own check).
TODAYS_WORDS = {
    (Action.REGISTER_AGENCY, A): "only a partnership administrator registers agencies",
    (Action.ADD_PRINCIPAL, IG): "only an admin or a partnership administrator adds principals",
    (Action.REVOKE_PRINCIPAL, P):
        "only an admin or a partnership administrator revokes principals",
    (Action.LIST_PRINCIPALS, P): "an agency's principals are listed for its admin and IG "
                                 "lead and for partnership administrators",
    (Action.REGISTER_CLIENT, S): "only a practitioner of a treatment provider registers clients",
    (Action.RECORD_FACT, IG): "only practitioners and safeguarding staff record facts",
    (Action.AMEND_FACT, A):
        "only practitioners and safeguarding staff correct the facts they recorded",
    (Action.READ_RECORD, A): "this role does not read client records",
    (Action.FLAG_CLIENT, P): "only safeguarding staff and IG leads flag clients",
    (Action.ERASE_CLIENT, P): "only the controller's IG lead erases a client",
    (Action.RESTRICT_PROCESSING, A): "only the IG lead of the client's registering "
                                     "controller places or lifts a legal hold or a restriction",
    (Action.GIVE_CONSENT, IG): "only practitioners and safeguarding staff record consent",
    (Action.WITHDRAW_CONSENT, C): "only practitioners and safeguarding staff record consent",
    (Action.PROPOSE_AGREEMENT, P): "only an IG lead acts on data-sharing agreements",
    (Action.REVOKE_AGREEMENT, PA): "only an IG lead acts on data-sharing agreements",
    (Action.END_EMERGENCY_ACCESS, P):
        "only the IG lead of the client's registering controller ends emergency access",
    (Action.CLOSE_REVIEW, S): "only an IG lead closes a review",
    (Action.LINK_HOUSEHOLD, IG): "only practitioners and safeguarding staff link households",
    (Action.ADD_HOUSEHOLD_MEMBER, A):
        "only practitioners and safeguarding staff link households",
    (Action.ACKNOWLEDGE_ALERT, P): "only the recipient agency's safeguarding staff work alerts",
    (Action.READ_AUDIT, P): "this needs one of the roles: ig_lead",
    (Action.READ_TREE_HEAD, P): "this needs one of the roles: admin, ig_lead, partnership_admin",
}


@pytest.mark.parametrize(("action", "role"), list(TODAYS_WORDS))
def test_a_refused_caller_is_told_what_it_was_told_before(action: Action, role: Role) -> None:
    assert refusal(action, actor(role)) == TODAYS_WORDS[(action, role)]


# -- the application reads the table -----------------------------------------------------------


TERMS = AgreementTerms.model_validate(housing_terms())


Command = Callable[[AccordApplication, Actor], object]
_ID: UUID = uuid4()
#: Each command of the application that checks a role, called as ``by``.
COMMANDS: dict[Action, Command] = {
    Action.REGISTER_AGENCY: lambda app, by: app.register_agency(
        "new", "New", AgencyKind.HOUSING, by),
    Action.ADD_PRINCIPAL: lambda app, by: app.add_principal("tp", P, "Ann", by),
    Action.LIST_PRINCIPALS: lambda app, by: queries.principals(app, "tp", by),
    Action.REVOKE_PRINCIPAL: lambda app, by: app.revoke_principal(_ID, "left", by),
    Action.REGISTER_CLIENT: lambda app, by: app.register_client(
        identity(), by),
    Action.RECORD_FACT: lambda app, by: app.record_fact(
        _ID, "housing_status_recorded", {"status": "settled"}, datetime.now(UTC), by),
    Action.AMEND_FACT: lambda app, by: app.amend_fact(
        _ID, 7, {"status": "settled"}, None, "typed in wrongly", by),
    Action.RETRACT_FACT: lambda app, by: app.retract_fact(_ID, 7, "the wrong client", by),
    Action.READ_RECORD: lambda app, by: queries.client_record(app, _ID, by),
    Action.ERASE_CLIENT: lambda app, by: app.erase_client(_ID, "the client asked", by),
    Action.PLACE_LEGAL_HOLD: lambda app, by: app.place_legal_hold(_ID, "a claim is pending", by),
    Action.LIFT_LEGAL_HOLD: lambda app, by: app.lift_legal_hold(_ID, "the claim was settled", by),
    Action.RESTRICT_PROCESSING: lambda app, by: app.restrict_processing(
        _ID, "accuracy is contested", by),
    Action.LIFT_RESTRICTION: lambda app, by: app.lift_restriction(
        _ID, "the record was verified", by),
    Action.FLAG_CLIENT: lambda app, by: app.flag_client(_ID, "Child protection plan.", by),
    Action.READ_FLAGS: lambda app, by: flags(app, _ID, by),
    Action.GIVE_CONSENT: lambda app, by: app.give_consent(
        _ID, recipient_agency="police", recipient_kind=None, categories=["housing"],
        purposes=["care_coordination"], data_from=None, data_to=None, expires_at=None,
        obtained="written", by=by),
    Action.WITHDRAW_CONSENT: lambda app, by: app.withdraw_consent(_ID, _ID, "asked", by),
    Action.PROPOSE_AGREEMENT: lambda app, by: app.propose_agreement(TERMS, by),
    Action.APPROVE_AGREEMENT: lambda app, by: app.approve_agreement(_ID, by),
    Action.AMEND_AGREEMENT: lambda app, by: app.amend_agreement(_ID, TERMS, by),
    Action.REVOKE_AGREEMENT: lambda app, by: app.revoke_agreement(_ID, "done", by),
    Action.GRANT_EMERGENCY_ACCESS: lambda app, by: app.grant_emergency_access(
        _ID, Purpose.SAFEGUARDING_ADULTS, "Collapsed in custody.", 30, by),
    Action.END_EMERGENCY_ACCESS: lambda app, by: app.end_emergency_access(
        _ID, _ID, "over", by),
    Action.CLOSE_REVIEW: lambda app, by: app.close_review(_ID, "justified", "ok", by),  # type: ignore[arg-type]
    Action.LINK_HOUSEHOLD: lambda app, by: app.link_household([_ID], by),
    Action.ADD_HOUSEHOLD_MEMBER: lambda app, by: app.add_household_member(_ID, _ID, by),
    Action.ACKNOWLEDGE_ALERT: lambda app, by: app.acknowledge_alert(_ID, by),
    Action.CLOSE_ALERT: lambda app, by: app.close_alert(
        _ID, "no_further_action", "known", by),  # type: ignore[arg-type]
    Action.ASSIGN_ALERT: lambda app, by: app.assign_alert(_ID, _ID, by),
}


@pytest.fixture(scope="module")
def in_memory() -> AccordApplication:
    """The application on the library's in-memory persistence: nothing is ever found."""
    return AccordApplication(Untouchable())  # type: ignore[arg-type]


@pytest.mark.parametrize("action", list(COMMANDS))
def test_each_command_refuses_whom_the_table_refuses_with_its_words(
        in_memory: AccordApplication, action: Action) -> None:
    for role in Role:
        for kind in (*AgencyKind, None):
            by = actor(role, kind)
            if permits(action, role, kind):
                entry = PERMISSIONS[action]
                role_refusals = {entry.message, entry.kind_message, *entry.role_messages.values()}
                try:  # it gets past the role check (and then finds nothing, or is out of scope)
                    COMMANDS[action](in_memory, by)
                except Forbidden as exc:
                    assert str(exc) not in role_refusals, (role, kind)
                except Exception:
                    pass
                continue
            with pytest.raises(Forbidden) as refused:
                COMMANDS[action](in_memory, by)
            assert str(refused.value) == PERMISSIONS[action].refusal(role, kind), (role, kind)


# -- the routes agree with the table ---------------------------------------------------------

#: The action each route of the API offers.
ROUTES: dict[tuple[str, str], Action] = {
    ("POST", "/v1/clients"): Action.REGISTER_CLIENT,
    ("POST", "/v1/clients/{client_id}/events"): Action.RECORD_FACT,
    ("GET", "/v1/clients/{client_id}/record"): Action.READ_RECORD,
    ("POST", "/v1/clients/{client_id}/erase"): Action.ERASE_CLIENT,
    ("POST", "/v1/clients/{client_id}/legal-hold"): Action.PLACE_LEGAL_HOLD,
    ("POST", "/v1/clients/{client_id}/legal-hold/lift"): Action.LIFT_LEGAL_HOLD,
    ("POST", "/v1/clients/{client_id}/restriction"): Action.RESTRICT_PROCESSING,
    ("POST", "/v1/clients/{client_id}/restriction/lift"): Action.LIFT_RESTRICTION,
    ("POST", "/v1/clients/{client_id}/flags"): Action.FLAG_CLIENT,
    ("POST", "/v1/clients/{client_id}/flags/{flag_id}/remove"): Action.FLAG_CLIENT,
    ("GET", "/v1/clients/{client_id}/flags"): Action.READ_FLAGS,
    ("POST", "/v1/clients/{client_id}/facts/{position}/amend"): Action.AMEND_FACT,
    ("POST", "/v1/clients/{client_id}/facts/{position}/retract"): Action.RETRACT_FACT,
    ("POST", "/v1/clients/{client_id}/consents"): Action.GIVE_CONSENT,
    ("POST", "/v1/clients/{client_id}/consents/{consent_id}/withdraw"):
        Action.WITHDRAW_CONSENT,
    ("GET", "/v1/clients/{client_id}/consents"): Action.READ_CONSENTS,
    ("GET", "/v1/clients/{client_id}/consents/{consent_id}/fhir"): Action.READ_CONSENTS,
    ("POST", "/v1/fhir/Consent"): Action.GIVE_CONSENT,
    ("GET", "/v1/clients/{client_id}/view"): Action.READ_VIEW,
    ("POST", "/v1/clients/match"): Action.MATCH,
    ("POST", "/v1/clients/search"): Action.MATCH,
    ("GET", "/v1/clients"): Action.LIST_CLIENTS,
    ("GET", "/v1/clients/{client_id}/chronology"): Action.READ_VIEW,
    ("GET", "/v1/audit/accesses"): Action.READ_AUDIT,
    ("GET", "/v1/clients/{client_id}/disclosures"): Action.READ_DISCLOSURES,
    ("GET", "/v1/clients/{client_id}/subject-access"): Action.ANSWER_SUBJECT_ACCESS,
    ("GET", "/v1/clients/{client_id}/rights"): Action.ANSWER_SUBJECT_ACCESS,
    ("GET", "/v1/audit/replay"): Action.REPLAY,
    ("GET", "/v1/audit/replay/changes"): Action.REPLAY,
    ("GET", "/v1/audit/tree-head"): Action.READ_TREE_HEAD,
    ("GET", "/v1/audit/tree-verification"): Action.READ_TREE_HEAD,
    ("GET", "/v1/audit/proofs/inclusion"): Action.READ_PROOFS,
    ("GET", "/v1/audit/proofs/consistency"): Action.READ_PROOFS,
    ("POST", "/v1/agreements"): Action.PROPOSE_AGREEMENT,
    ("POST", "/v1/agreements/{agreement_id}/approve"): Action.APPROVE_AGREEMENT,
    ("POST", "/v1/agreements/{agreement_id}/amend"): Action.AMEND_AGREEMENT,
    ("POST", "/v1/agreements/{agreement_id}/revoke"): Action.REVOKE_AGREEMENT,
    ("GET", "/v1/agreements"): Action.LIST_AGREEMENTS,
    ("GET", "/v1/agreements/{agreement_id}"): Action.READ_AGREEMENT,
    ("GET", "/v1/event-types"): Action.READ_CATALOGUE,
    ("GET", "/v1/agencies"): Action.LIST_AGENCIES,
    ("POST", "/v1/agencies"): Action.REGISTER_AGENCY,
    ("POST", "/v1/principals"): Action.ADD_PRINCIPAL,
    ("GET", "/v1/agencies/{agency}/principals"): Action.LIST_PRINCIPALS,
    ("POST", "/v1/principals/{principal_id}/revoke"): Action.REVOKE_PRINCIPAL,
    ("POST", "/v1/clients/{client_id}/emergency-access"): Action.GRANT_EMERGENCY_ACCESS,
    ("POST", "/v1/clients/{client_id}/emergency-access/{grant_id}/end"):
        Action.END_EMERGENCY_ACCESS,
    ("GET", "/v1/audit/reviews"): Action.READ_REVIEWS,
    ("POST", "/v1/audit/reviews/{review_id}"): Action.CLOSE_REVIEW,
    ("POST", "/v1/households"): Action.LINK_HOUSEHOLD,
    ("POST", "/v1/households/{household_id}/members"): Action.ADD_HOUSEHOLD_MEMBER,
    ("GET", "/v1/households/{household_id}"): Action.READ_HOUSEHOLD,
    ("GET", "/v1/alerts"): Action.READ_ALERTS,
    ("GET", "/v1/alerts/stream"): Action.READ_ALERTS,
    ("POST", "/v1/alerts/{alert_id}/acknowledge"): Action.ACKNOWLEDGE_ALERT,
    ("POST", "/v1/alerts/{alert_id}/close"): Action.CLOSE_ALERT,
    ("POST", "/v1/alerts/{alert_id}/assign"): Action.ASSIGN_ALERT,
    ("GET", "/v1/alerts/team"): Action.ASSIGN_ALERT,
    ("GET", "/v1/alerts/{alert_id}"): Action.READ_ALERTS,
    ("GET", "/v1/reports/measures"): Action.READ_MEASURES,
    ("GET", "/v1/reports/outcomes"): Action.READ_REPORTS,
    ("GET", "/v1/reports/outcomes.csv"): Action.READ_REPORTS,
}
#: Actions no route offers (none: every command is offered by a route).
UNROUTED: set[Action] = set()
#: The caller's agency kind in each column of the matrix.
KIND = {"tp": AgencyKind.TREATMENT_PROVIDER, "police": AgencyKind.POLICE,
        "commissioner": AgencyKind.COMMISSIONER}
#: Rows refused in every cell although the table permits the role: a rule past the role
#: refuses what each cell asks.
REFUSED_PAST_THE_ROLE = {
    (Action.MATCH, C): "the cells match for direct care; a commissioner only for commissioning",
    (Action.ADD_PRINCIPAL, PA): "the cells add a practitioner; a partnership administrator "
                                "adds admins and partnership administrators only",
}


def test_every_route_offers_an_action_and_every_action_a_route() -> None:
    guarded = {route for route, cells in MATRIX.items() if cells != "public"}
    assert guarded == set(ROUTES)
    assert set(ROUTES.values()) | UNROUTED == set(Action)


def test_the_access_matrix_refuses_exactly_whom_the_table_refuses() -> None:
    for route, action in ROUTES.items():
        cells = MATRIX[route]
        assert isinstance(cells, dict)
        for role, statuses in cells.items():
            for column, status in zip(COLUMNS, statuses, strict=True):
                if not permits(action, role, KIND[CALLER[column]]):
                    assert status == 403, (route, role, column)
            permitted = any(permits(action, role, KIND[CALLER[c]]) for c in COLUMNS)
            if permitted and set(statuses) == {403}:
                assert (action, role) in REFUSED_PAST_THE_ROLE, (route, role)
