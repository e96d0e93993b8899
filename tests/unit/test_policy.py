"""Unit tests of the pure policy: ``decide`` and ``grants`` over hand-built states.

Each test states one rule of DESIGN.md "Who may see what" and checks the decision, its
basis, the fields it shares and that it explains itself.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.policy import (
    ANY_PURPOSE,
    AgreementInForce,
    BasisKind,
    ConsentScope,
    Decision,
    Fact,
    PolicyState,
    Viewer,
    decide,
    grants,
    mask,
)
from domain.agencies import AgencyKind
from domain.agreements import AgreementTerms
from domain.categories import DataCategory
from domain.vocabulary import Article6, Article9, Article10, LegalDuty, Purpose
from tests.builders import childrens_terms, police_terms

TP = Viewer("tp", AgencyKind.TREATMENT_PROVIDER)
POLICE = Viewer("police", AgencyKind.POLICE)
PROBATION = Viewer("probation", AgencyKind.PROBATION)
CHILDRENS = Viewer("childrens", AgencyKind.CHILDRENS_SERVICES)
KINDS = {v.agency: v.kind for v in (TP, POLICE, PROBATION, CHILDRENS)}

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)
OCCURRED = datetime(2026, 1, 10, 9, 30, tzinfo=UTC)
CLIENT = uuid4()

OFFENDER = Purpose.OFFENDER_MANAGEMENT.value
SAFEGUARDING = Purpose.SAFEGUARDING_CHILDREN.value


#: The windows of these tests' agreements (AT falls inside both); the tests of the
#: agreement's dates below are written against them.
POLICE_WINDOW = {"valid_from": "2025-01-01", "valid_to": "2026-12-31",
                 "review_on": "2026-06-30", "retention_days": 730}
CHILDRENS_WINDOW = {"valid_from": "2025-01-01", "review_on": "2026-06-30",
                    "retention_days": 730}


def police_agreement(**overrides: Any) -> AgreementTerms:
    """tp -> police, offender management, with the client's consent."""
    return AgreementTerms.model_validate(police_terms(**{**POLICE_WINDOW, **overrides}))


def childrens_agreement(**overrides: Any) -> AgreementTerms:
    """tp -> children's services under a legal duty (Children Act s.47), no consent."""
    return AgreementTerms.model_validate(childrens_terms(**{**CHILDRENS_WINDOW, **overrides}))


def in_force(terms: AgreementTerms, controller: str = "tp", version: int = 1,
             agreement_id: UUID | None = None) -> AgreementInForce:
    return AgreementInForce(agreement_id or uuid4(), controller, terms.recipient, version, terms)


def consent(
    *,
    controller: str = "tp",
    recipient_agency: str | None = "police",
    recipient_kind: str | None = None,
    categories: tuple[str, ...] = ("identity", "treatment", "criminal_justice"),
    purposes: tuple[str, ...] = (OFFENDER,),
    data_from: date | None = None,
    data_to: date | None = None,
    expires_at: datetime | None = None,
    withdrawn: bool = False,
    client_id: UUID = CLIENT,
) -> ConsentScope:
    return ConsentScope(
        consent_id=uuid4(), client_id=client_id, controller=controller,
        recipient_agency=recipient_agency, recipient_kind=recipient_kind,
        categories=frozenset(categories), purposes=frozenset(purposes),
        data_from=data_from, data_to=data_to, expires_at=expires_at, withdrawn=withdrawn,
    )


def state_with(*agreements: AgreementInForce, consents: tuple[ConsentScope, ...] = (),
               erased: tuple[UUID, ...] = ()) -> PolicyState:
    scopes: dict[UUID, dict[UUID, ConsentScope]] = {}
    for scope in consents:
        scopes.setdefault(scope.client_id, {})[scope.consent_id] = scope
    return PolicyState(
        position=100, agency_kinds=dict(KINDS),
        agreements={a.agreement_id: a for a in agreements},
        consents=scopes, erased=set(erased),
    )


def fact(category: DataCategory = DataCategory.TREATMENT, controller: str = "tp",
         occurred_at: datetime = OCCURRED, client_id: UUID = CLIENT,
         position: int = 7) -> Fact:
    return Fact(client_id, position, category, controller, occurred_at)


def explained(decision: Decision) -> Decision:
    """Every decision carries at least one non-empty reason."""
    assert decision.reasons, decision
    assert all(isinstance(r, str) and r.strip() for r in decision.reasons), decision
    return decision


def denied(decision: Decision, *words: str) -> str:
    explained(decision)
    assert not decision.permit
    assert decision.basis is None
    text = " | ".join(decision.reasons)
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
    return text


# -- rule 1: the controller ------------------------------------------------------------------


def test_the_controller_sees_its_own_fact_with_every_field_for_any_purpose() -> None:
    state = state_with()  # no agreements at all
    for purpose in Purpose:
        decision = explained(decide(TP, purpose, fact(), state, AT))
        assert decision.permit
        assert decision.basis is not None and decision.basis.kind is BasisKind.CONTROLLER
        assert decision.basis.agreement_id is None and decision.basis.consent_id is None
        assert decision.fields is None  # every field
        assert "rule 1" in " ".join(decision.reasons)
    data = {"appointment": "keywork", "contacted_afterwards": True}
    assert mask(data, None) == data


def test_the_controller_keeps_seeing_an_erased_clients_facts() -> None:
    decision = explained(decide(TP, OFFENDER, fact(), state_with(erased=(CLIENT,)), AT))
    assert decision.permit and decision.basis is not None
    assert decision.basis.kind is BasisKind.CONTROLLER


def test_a_partner_that_recorded_a_fact_controls_it() -> None:
    police_fact = fact(DataCategory.DOMESTIC_ABUSE, controller="police")
    decision = explained(decide(POLICE, SAFEGUARDING, police_fact, state_with(), AT))
    assert decision.permit and decision.basis is not None
    assert decision.basis.kind is BasisKind.CONTROLLER
    # ...and the client's registering agency does not see it without an agreement.
    denied(decide(TP, SAFEGUARDING, police_fact, state_with(), AT), "police", "tp")


def test_the_controllers_grant_covers_every_purpose_at_every_time() -> None:
    [grant] = grants(TP, fact(), state_with())
    assert grant.purpose == ANY_PURPOSE
    assert grant.basis.kind is BasisKind.CONTROLLER
    assert grant.fields is None and grant.not_before is None and grant.not_after is None
    assert grant.reason


# -- rule 2: an agreement in force must cover the category and the purpose -------------------


def test_no_agreement_is_denied_and_the_reason_names_it() -> None:
    text = denied(decide(POLICE, OFFENDER, fact(), state_with(), AT), "rule 2")
    assert "no data-sharing agreement" in text
    assert "tp" in text and "police" in text
    assert grants(POLICE, fact(), state_with()) == []


def test_an_agreement_with_another_agency_does_not_count() -> None:
    state = state_with(in_force(police_agreement()),
                       consents=(consent(recipient_agency="probation"),))
    denied(decide(PROBATION, OFFENDER, fact(), state, AT), "no data-sharing agreement")


def test_an_agreement_in_the_other_direction_does_not_count() -> None:
    # police -> tp does not let police see tp's facts.
    reverse = in_force(AgreementTerms.model_validate({
        **police_agreement().model_dump(mode="json"), "recipient": "tp",
    }), controller="police")
    state = state_with(reverse, consents=(consent(),))
    denied(decide(POLICE, OFFENDER, fact(), state, AT), "no data-sharing agreement")


def test_an_agreement_not_covering_the_category_is_denied() -> None:
    agreement = in_force(police_agreement())
    state = state_with(agreement, consents=(consent(categories=("housing",)),))
    text = denied(decide(POLICE, OFFENDER, fact(DataCategory.HOUSING), state, AT), "rule 2")
    assert "does not share housing" in text
    assert str(agreement.agreement_id) in text
    assert grants(POLICE, fact(DataCategory.HOUSING), state) == []


def test_clinical_notes_are_never_shared_with_a_partner() -> None:
    state = state_with(in_force(police_agreement()), in_force(childrens_agreement()),
                       consents=(consent(categories=("clinical_notes", "treatment")),))
    note = fact(DataCategory.CLINICAL_NOTES)
    for viewer in (POLICE, CHILDRENS, PROBATION):
        for purpose in Purpose:
            denied(decide(viewer, purpose, note, state, AT))
        assert grants(viewer, note, state) == []


def test_an_agreement_not_naming_the_purpose_is_denied() -> None:
    agreement = in_force(police_agreement())
    state = state_with(agreement, consents=(consent(purposes=(OFFENDER, SAFEGUARDING)),))
    text = denied(decide(POLICE, SAFEGUARDING, fact(), state, AT), "rule 2")
    assert f"does not name the purpose {SAFEGUARDING}" in text
    assert str(agreement.agreement_id) in text
    # The grants list only the agreement's own purposes.
    assert {g.purpose for g in grants(POLICE, fact(), state)} == {OFFENDER}


def test_an_agreement_without_consent_or_duty_has_basis_agreement() -> None:
    terms = police_agreement(consent_required=False)
    agreement = in_force(terms, version=3)
    decision = explained(decide(POLICE, OFFENDER, fact(), state_with(agreement), AT))
    assert decision.permit and decision.basis is not None
    assert decision.basis.kind is BasisKind.AGREEMENT
    assert decision.basis.agreement_id == agreement.agreement_id
    assert decision.basis.agreement_version == 3
    assert decision.basis.consent_id is None and decision.basis.legal_duty is None
    lawful = decision.basis.as_json()["lawful_basis"]
    assert lawful["article_6"] == Article6.PUBLIC_TASK.value
    assert lawful["article_9"] == Article9.SUBSTANTIAL_PUBLIC_INTEREST.value
    assert lawful["article_10"] == Article10.STATUTORY_PURPOSES.value


# -- rule 3: consent ---------------------------------------------------------------------------


def test_with_consent_the_fact_is_shared_on_agreement_and_consent() -> None:
    agreement = in_force(police_agreement(), version=2)
    scope = consent()
    decision = explained(decide(POLICE, OFFENDER, fact(), state_with(agreement, consents=(scope,)),
                                AT))
    assert decision.permit and decision.basis is not None
    assert decision.basis.kind is BasisKind.AGREEMENT_AND_CONSENT
    assert decision.basis.agreement_id == agreement.agreement_id
    assert decision.basis.agreement_version == 2
    assert decision.basis.consent_id == scope.consent_id
    assert decision.fields == ("appointment", "modality")
    text = " ".join(decision.reasons)
    assert "rule 3" in text and str(scope.consent_id) in text
    as_json = decision.basis.as_json()
    assert as_json["kind"] == "agreement_and_consent"
    assert as_json["consent_id"] == str(scope.consent_id)
    assert as_json["agreement_id"] == str(agreement.agreement_id)


def test_consent_required_and_none_given_is_denied() -> None:
    state = state_with(in_force(police_agreement()))
    denied(decide(POLICE, OFFENDER, fact(), state, AT), "rule 3", "requires consent")
    assert grants(POLICE, fact(), state) == []


def test_a_withdrawn_consent_is_denied() -> None:
    scope = consent(withdrawn=True)
    state = state_with(in_force(police_agreement()), consents=(scope,))
    denied(decide(POLICE, OFFENDER, fact(), state, AT), str(scope.consent_id), "withdrawn")
    assert grants(POLICE, fact(), state) == []


def test_consent_for_another_recipient_is_denied() -> None:
    scope = consent(recipient_agency="probation")
    state = state_with(in_force(police_agreement()), consents=(scope,))
    denied(decide(POLICE, OFFENDER, fact(), state, AT), str(scope.consent_id),
           "does not cover police")


def test_consent_for_another_category_is_denied() -> None:
    scope = consent(categories=("criminal_justice",))
    state = state_with(in_force(police_agreement()), consents=(scope,))
    denied(decide(POLICE, OFFENDER, fact(), state, AT), "does not cover treatment")
    # ...while the category it does cover is shared.
    assert decide(POLICE, OFFENDER, fact(DataCategory.CRIMINAL_JUSTICE), state, AT).permit


def test_consent_for_another_purpose_is_denied() -> None:
    both = police_agreement(purposes=[OFFENDER, Purpose.CARE_COORDINATION.value])
    scope = consent(purposes=(Purpose.CARE_COORDINATION.value,))
    state = state_with(in_force(both), consents=(scope,))
    denied(decide(POLICE, OFFENDER, fact(), state, AT),
           f"does not cover the purpose {OFFENDER}")
    assert decide(POLICE, Purpose.CARE_COORDINATION, fact(), state, AT).permit
    assert {g.purpose for g in grants(POLICE, fact(), state)} == {
        Purpose.CARE_COORDINATION.value
    }


@pytest.mark.parametrize(("data_from", "data_to", "permitted"), [
    (date(2026, 1, 10), None, True),  # from the day itself
    (date(2026, 1, 11), None, False),
    (None, date(2026, 1, 10), True),  # to the day itself (inclusive)
    (None, date(2026, 1, 9), False),
    (date(2025, 1, 1), date(2025, 12, 31), False),
    (date(2025, 1, 1), date(2026, 12, 31), True),
])
def test_consent_covers_only_facts_inside_its_data_period(
    data_from: date | None, data_to: date | None, permitted: bool
) -> None:
    scope = consent(data_from=data_from, data_to=data_to)
    state = state_with(in_force(police_agreement()), consents=(scope,))
    decision = explained(decide(POLICE, OFFENDER, fact(), state, AT))
    assert decision.permit is permitted
    if not permitted:
        assert "does not cover data from that date" in " ".join(decision.reasons)
    assert bool(grants(POLICE, fact(), state)) is permitted


def test_consent_for_another_controllers_data_is_denied() -> None:
    # The client consented to share probation's data with police, not tp's.
    scope = consent(controller="probation")
    state = state_with(in_force(police_agreement()), consents=(scope,))
    denied(decide(POLICE, OFFENDER, fact(), state, AT), "probation's data", "not tp's")


def test_consent_of_another_client_does_not_count() -> None:
    scope = consent(client_id=uuid4())
    state = state_with(in_force(police_agreement()), consents=(scope,))
    denied(decide(POLICE, OFFENDER, fact(), state, AT), "requires consent")


def test_an_expired_consent_is_denied_from_its_expiry() -> None:
    expires = AT + timedelta(days=1)
    scope = consent(expires_at=expires)
    state = state_with(in_force(police_agreement()), consents=(scope,))
    assert explained(decide(POLICE, OFFENDER, fact(), state, AT)).permit
    assert decide(POLICE, OFFENDER, fact(), state, expires - timedelta(seconds=1)).permit
    for later in (expires, expires + timedelta(seconds=1), expires + timedelta(days=30)):
        denied(decide(POLICE, OFFENDER, fact(), state, later), str(scope.consent_id), "lapsed")
    [grant] = grants(POLICE, fact(), state)
    assert grant.not_after == expires


def test_the_earlier_of_consent_expiry_and_agreement_end_applies() -> None:
    expires = datetime(2027, 6, 1, tzinfo=UTC)  # after the agreement's valid_to
    state = state_with(in_force(police_agreement()), consents=(consent(expires_at=expires),))
    [grant] = grants(POLICE, fact(), state)
    assert grant.not_after == datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("kind", "permitted"), [
    ("police", True),
    ("probation", False),
    ("treatment_provider", False),
])
def test_consent_to_an_agency_kind_covers_every_agency_of_that_kind(
    kind: str, permitted: bool
) -> None:
    scope = consent(recipient_agency=None, recipient_kind=kind)
    state = state_with(in_force(police_agreement()), consents=(scope,))
    decision = explained(decide(POLICE, OFFENDER, fact(), state, AT))
    assert decision.permit is permitted
    if permitted:
        assert decision.basis is not None and decision.basis.consent_id == scope.consent_id
    else:
        assert "does not cover police" in " ".join(decision.reasons)
    # A second police force is covered by a consent to the kind, not by one to "police".
    other_force = Viewer("police-2", AgencyKind.POLICE)
    second = in_force(police_agreement(recipient="police-2"))
    state = state_with(second, consents=(scope,))
    assert decide(other_force, OFFENDER, fact(), state, AT).permit is permitted
    by_agency = state_with(second, consents=(consent(recipient_agency="police"),))
    assert not decide(other_force, OFFENDER, fact(), by_agency, AT).permit


def test_one_consent_out_of_several_is_enough() -> None:
    good = consent()
    state = state_with(in_force(police_agreement()), consents=(
        consent(withdrawn=True), consent(recipient_agency="probation"), good,
    ))
    decision = explained(decide(POLICE, OFFENDER, fact(), state, AT))
    assert decision.permit and decision.basis is not None
    assert decision.basis.consent_id == good.consent_id
    assert [g.basis.consent_id for g in grants(POLICE, fact(), state)] == [good.consent_id]


# -- rule 4: legal duty --------------------------------------------------------------------------


def test_a_legal_duty_shares_without_consent_and_says_so() -> None:
    agreement = in_force(childrens_agreement())
    household = fact(DataCategory.SAFEGUARDING_CHILDREN)
    decision = explained(decide(CHILDRENS, SAFEGUARDING, household, state_with(agreement), AT))
    assert decision.permit and decision.basis is not None
    assert decision.basis.kind is BasisKind.LEGAL_DUTY
    assert decision.basis.legal_duty == LegalDuty.CHILDREN_ACT_S47.value
    assert decision.basis.agreement_id == agreement.agreement_id
    assert decision.basis.consent_id is None
    text = " ".join(decision.reasons)
    assert "rule 4" in text and "without consent" in text
    assert LegalDuty.CHILDREN_ACT_S47.value in text
    assert decision.basis.as_json()["legal_duty"] == LegalDuty.CHILDREN_ACT_S47.value


def test_a_legal_duty_ignores_a_withdrawn_consent() -> None:
    state = state_with(in_force(childrens_agreement()), consents=(
        consent(recipient_agency="childrens", categories=("treatment",),
                purposes=(SAFEGUARDING,), withdrawn=True),
    ))
    assert decide(CHILDRENS, SAFEGUARDING, fact(), state, AT).permit


def test_a_legal_duty_is_still_bounded_by_category_and_purpose() -> None:
    state = state_with(in_force(childrens_agreement()))
    denied(decide(CHILDRENS, SAFEGUARDING, fact(DataCategory.HOUSING), state, AT),
           "does not share housing")
    denied(decide(CHILDRENS, Purpose.DIRECT_CARE, fact(), state, AT), "does not name the purpose")


# -- agreement windows -------------------------------------------------------------------------


@pytest.mark.parametrize(("at", "permitted"), [
    (datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), False),  # before valid_from
    (datetime(2025, 1, 1, 0, 0, tzinfo=UTC), True),  # valid_from, first moment
    (datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), True),  # valid_to is inclusive
    (datetime(2027, 1, 1, 0, 0, tzinfo=UTC), False),  # the day after valid_to
    (datetime(2030, 1, 1, tzinfo=UTC), False),
])
@pytest.mark.parametrize("with_consent", [True, False])
def test_an_agreement_holds_from_valid_from_to_valid_to_inclusive(
    at: datetime, permitted: bool, with_consent: bool
) -> None:
    terms = police_agreement(consent_required=with_consent)
    state = state_with(in_force(terms), consents=(consent(),))
    decision = explained(decide(POLICE, OFFENDER, fact(), state, at))
    assert decision.permit is permitted
    if not permitted:
        text = " ".join(decision.reasons)
        assert "not before" in text or "lapsed" in text
    [grant] = grants(POLICE, fact(), state)
    assert grant.not_before == datetime(2025, 1, 1, tzinfo=UTC)
    assert grant.not_after == datetime(2027, 1, 1, tzinfo=UTC)
    assert grant.holds_at(at) is permitted


def test_an_open_ended_agreement_has_no_end() -> None:
    state = state_with(in_force(childrens_agreement()))
    assert decide(CHILDRENS, SAFEGUARDING, fact(), state, datetime(2099, 1, 1, tzinfo=UTC)).permit
    [grant] = grants(CHILDRENS, fact(), state)
    assert grant.not_after is None


# -- fields -----------------------------------------------------------------------------------


def test_only_the_fields_the_agreement_names_are_shared() -> None:
    state = state_with(in_force(police_agreement()), consents=(consent(),))
    order = fact(DataCategory.CRIMINAL_JUSTICE)
    decision = decide(POLICE, OFFENDER, order, state, AT)
    assert decision.permit and decision.fields == ("order", "status")
    data = {"order": "drug_rehabilitation_requirement", "status": "started",
            "ends_on": "2026-09-30"}
    assert mask(data, decision.fields) == {"order": "drug_rehabilitation_requirement",
                                           "status": "started"}
    # A shared field missing from the payload is left out, not invented.
    assert mask({"order": "licence"}, decision.fields) == {"order": "licence"}
    assert mask(data, ()) == {}


def test_identity_is_masked_to_the_shared_identity_fields() -> None:
    state = state_with(in_force(police_agreement()), consents=(consent(),))
    decision = decide(POLICE, OFFENDER, fact(DataCategory.IDENTITY), state, AT)
    assert decision.permit and decision.fields == ("given_name", "family_name")
    identity = {"given_name": "Ann", "family_name": "Example", "date_of_birth": "1985-04-12",
                "nhs_number": "9434765919", "postcode": "NR1 3QU"}
    assert mask(identity, decision.fields) == {"given_name": "Ann", "family_name": "Example"}


# -- erasure --------------------------------------------------------------------------------------


def test_an_erased_client_is_denied_to_every_partner() -> None:
    state = state_with(in_force(police_agreement(consent_required=False)),
                       in_force(childrens_agreement()),
                       consents=(consent(),), erased=(CLIENT,))
    for viewer, purpose in ((POLICE, OFFENDER), (CHILDRENS, SAFEGUARDING)):
        denied(decide(viewer, purpose, fact(), state, AT), "erased")
        assert grants(viewer, fact(), state) == []
    # Another client of the same agencies is unaffected.
    other = fact(client_id=uuid4())
    assert decide(CHILDRENS, SAFEGUARDING, other, state, AT).permit


# -- decide and grants agree ---------------------------------------------------------------------


_moments = st.datetimes(
    min_value=datetime(2024, 6, 1), max_value=datetime(2027, 6, 1), timezones=st.just(UTC)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    at=_moments,
    occurred_days=st.integers(min_value=-400, max_value=300),
    purpose=st.sampled_from([p.value for p in Purpose]),
    category=st.sampled_from([DataCategory.TREATMENT, DataCategory.CRIMINAL_JUSTICE,
                              DataCategory.HOUSING, DataCategory.SAFEGUARDING_CHILDREN,
                              DataCategory.CLINICAL_NOTES, DataCategory.IDENTITY]),
    viewer=st.sampled_from([POLICE, CHILDRENS, PROBATION]),
    expires_days=st.none() | st.integers(min_value=-200, max_value=400),
    withdrawn=st.booleans(),
    to_kind=st.booleans(),
    consent_required=st.booleans(),
)
def test_decide_permits_exactly_when_a_grant_for_the_purpose_holds(
    at: datetime, occurred_days: int, purpose: str, category: DataCategory, viewer: Viewer,
    expires_days: int | None, withdrawn: bool, to_kind: bool, consent_required: bool,
) -> None:
    expires = None if expires_days is None else AT + timedelta(days=expires_days)
    scope = consent(recipient_agency=None if to_kind else viewer.agency,
                    recipient_kind=viewer.kind.value if to_kind else None,
                    categories=("treatment", "criminal_justice", "identity"),
                    purposes=(OFFENDER, SAFEGUARDING),
                    data_from=date(2025, 6, 1), expires_at=expires, withdrawn=withdrawn)
    state = state_with(
        in_force(police_agreement(consent_required=consent_required)),
        in_force(police_agreement(recipient="probation")),
        in_force(childrens_agreement()),
        consents=(scope,),
    )
    the_fact = fact(category, occurred_at=OCCURRED + timedelta(days=occurred_days))
    decision = explained(decide(viewer, purpose, the_fact, state, at))
    holding = [g for g in grants(viewer, the_fact, state)
               if g.purpose == purpose and g.holds_at(at)]
    assert decision.permit is bool(holding)
    if decision.permit:
        assert decision.basis in {g.basis for g in holding}
        assert decision.fields in {g.fields for g in holding}
