"""Domain behaviour without HTTP: NHS numbers, identity, the catalogue and the application.

The application tests run on both databases through the ``accord`` fixture and act
through real principals (a token added by the operator, then authenticated), exactly
as the API does.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from api.bootstrap import Accord, bootstrap
from domain.agencies import AgencyKind, Role, agency_uuid
from domain.application import OPERATOR, Actor
from domain.catalogue import CATALOGUE, InvalidPayload, UnknownFactType, fact_type
from domain.categories import DataCategory
from domain.errors import (
    AgencyExists,
    ClientAlreadyRegistered,
    ClientNotFound,
    Forbidden,
    InvalidCommand,
    Unauthenticated,
)
from domain.identity import Identity, nhs_number_is_valid, normalise_nhs_number
from projections import queries
from tests.builders import VALID_IDENTITY, Partnership

# -- NHS numbers ---------------------------------------------------------------------------

#: Checked by hand: 9434765919 (sum 299, 299 % 11 = 2, check 9), 4010232137 (sum 92, check 7),
#: 9990000018 (sum 245, check 8) and 9990000050 (sum 253 = 23 x 11, check 11 -> 0).
VALID_NHS_NUMBERS = ["9434765919", "4010232137", "9990000018", "9990000050"]


@pytest.mark.parametrize("number", VALID_NHS_NUMBERS)
def test_valid_nhs_numbers_pass_the_modulus_11_check(number: str) -> None:
    assert nhs_number_is_valid(number)


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("9434765918", "wrong check digit"),
        ("4010232138", "wrong check digit"),
        ("9990000051", "check digit should be 0"),
        ("943476591", "nine digits"),
        ("94347659190", "eleven digits"),
        ("", "empty"),
        ("94347659a9", "a letter"),
        ("943 476 5919", "not normalised"),
        ("-943476591", "a sign"),
    ],
)
def test_invalid_nhs_numbers_fail_the_check(number: str, why: str) -> None:
    assert not nhs_number_is_valid(number), why


@pytest.mark.parametrize("last", "0123456789")
def test_a_body_whose_check_digit_would_be_10_is_never_valid(last: str) -> None:
    # 9,9,9,0,0,0,0,0,0 weighted 10..2 sums to 243; 243 % 11 = 1, so the check digit is 10.
    assert not nhs_number_is_valid("999000000" + last)


@pytest.mark.parametrize("number", VALID_NHS_NUMBERS)
def test_every_single_digit_typo_and_adjacent_transposition_is_caught(number: str) -> None:
    for i, original in enumerate(number):
        for digit in "0123456789":
            if digit != original:
                typo = number[:i] + digit + number[i + 1:]
                assert not nhs_number_is_valid(typo), typo
    for i in range(9):
        if number[i] != number[i + 1]:
            swapped = number[:i] + number[i + 1] + number[i] + number[i + 2:]
            assert not nhs_number_is_valid(swapped), swapped


def test_written_forms_of_an_nhs_number_normalise_to_ten_digits() -> None:
    assert normalise_nhs_number("943 476 5919") == "9434765919"
    assert normalise_nhs_number("943-476-5919") == "9434765919"
    assert normalise_nhs_number(" 943\t476-5919 ") == "9434765919"


# -- identity ------------------------------------------------------------------------------


def identity(**changes: Any) -> Identity:
    return Identity.model_validate({**VALID_IDENTITY, **changes})


@pytest.mark.parametrize("written", ["943 476 5919", "943-476-5919", "9434765919", " 9434765919 "])
def test_identity_keeps_the_nhs_number_as_ten_digits(written: str) -> None:
    assert identity(nhs_number=written).nhs_number == "9434765919"


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("nr1 3qu", "NR1 3QU"),
        ("NR13QU", "NR1 3QU"),
        ("  nr13qu ", "NR1 3QU"),
        ("sw1a1aa", "SW1A 1AA"),
        ("M1 1AE", "M1 1AE"),
        ("b338th", "B33 8TH"),
    ],
)
def test_identity_upper_cases_and_spaces_the_postcode(written: str, stored: str) -> None:
    assert identity(postcode=written).postcode == stored


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nhs_number", "9434765918"),
        ("nhs_number", "943476591"),
        ("postcode", "NOT A CODE"),
        ("postcode", "12345"),
        ("given_name", "   "),
        ("family_name", ""),
        ("date_of_birth", (date.today() + timedelta(days=1)).isoformat()),
        ("date_of_birth", "1899-12-31"),
        ("date_of_birth", "12/04/1985"),
    ],
)
def test_identity_refuses_bad_values(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        identity(**{field: value})
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]


def test_identity_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        identity(ethnicity="not collected here")


def test_non_ascii_digits_are_refused_or_normalised_to_ascii() -> None:
    full_width = "".join(chr(0xFF10 + int(d)) for d in "9434765919")
    try:
        stored = identity(nhs_number=full_width).nhs_number
    except ValidationError:
        return
    assert stored == "9434765919"


# -- the catalogue -------------------------------------------------------------------------

#: One realistic payload per fact type, every field given.
EXAMPLES: dict[str, dict[str, Any]] = {
    "demographics_recorded": {"sex": "female", "ethnicity": "N", "sexual_orientation":
                              "not_stated", "religion": "christian", "disability": "no",
                              "area": "E06000032"},
    "referral_received": {"source": "gp", "substances": ["opioids", "crack"]},
    "assessment_completed": {"assessment": "comprehensive", "substances": ["alcohol"],
                             "injecting": False},
    "treatment_episode_started": {"modality": "pharmacological", "substances": ["opioids"]},
    "treatment_episode_ended": {"modality": "psychosocial",
                                "discharge_reason": "completed_drug_free"},
    "intervention_recorded": {"kind": "naloxone_supply", "sessions": 1},
    "prescription_changed": {"medication": "methadone", "change": "started",
                             "daily_dose_mg": 60.0, "supervised_consumption": True},
    "appointment_attended": {"appointment": "keywork"},
    "appointment_missed": {"appointment": "prescriber", "contacted_afterwards": True},
    "criminal_justice_status": {"order": "drug_rehabilitation_requirement", "status": "started",
                                "ends_on": "2027-03-31"},
    "domestic_abuse_risk_recorded": {"role": "victim", "risk_level": "high",
                                     "marac_referral": True},
    "domestic_abuse_incident_recorded": {"role": "victim", "children_present": True,
                                         "police_reference": "NP/2026/01234"},
    "mental_health_concern_recorded": {"concern": "anxiety", "risk_level": "medium",
                                       "in_mental_health_service": False},
    "self_harm_risk_recorded": {"risk_level": "medium", "recent_attempt": False},
    "overdose_risk_recorded": {"risk_level": "high", "recent_overdose": True,
                               "naloxone_held": True},
    "household_updated": {"children_in_household": 2, "parental_responsibility": True,
                          "pregnant": True, "due_date": "2027-01-15"},
    "child_safeguarding_concern_raised": {
        "concern": "parental_substance_use",
        "summary": "Children left unsupervised while parent intoxicated; school raised concern.",
        "children_affected": 2,
    },
    "child_protection_status_recorded": {"status": "child_protection_plan", "children": 2},
    "adult_safeguarding_concern_raised": {
        "concern": "financial_abuse",
        "summary": "Benefits taken by an acquaintance who supplies drugs.",
        "section_42_enquiry": True,
    },
    "housing_status_recorded": {"status": "temporary"},
    "employment_status_recorded": {"status": "volunteering"},
    "blood_borne_virus_test": {"virus": "hepatitis_c", "result": "negative"},
    "blood_borne_virus_vaccination": {"vaccine": "hepatitis_b", "dose": 2,
                                      "course_completed": False},
    "treatment_outcomes_profile": {
        "stage": "review",
        "substance_use": {"alcohol": 4, "opiates": 12, "crack": 3, "cocaine": 0,
                          "amphetamines": 0, "cannabis": 20, "other": 0},
        "injecting": {"days_injected": 5, "shared_equipment": False},
        "crime": {"shoplifting_days": 2, "selling_drugs_days": 0, "other_theft": False,
                  "assault_or_violence": False},
        "health_and_social_functioning": {
            "psychological_health": 9, "physical_health": 11, "quality_of_life": 8,
            "days_paid_work": 0, "days_education": 4, "acute_housing_problem": False,
            "at_risk_of_eviction": True,
        },
    },
    "care_plan_agreed": {"goals": ["reduce use", "stable housing"], "review_on": "2027-02-01"},
    "clinical_note_added": {"text": "Reviewed progress against care plan; discussed harm "
                                    "reduction and next steps."},
    "discharged": {"reason": "transferred"},
}


def test_every_fact_type_has_an_example_here() -> None:
    assert set(EXAMPLES) == set(CATALOGUE)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_fact_type_accepts_a_realistic_payload_unchanged(name: str) -> None:
    entry = fact_type(name)
    canonical = entry.validate(EXAMPLES[name])
    assert canonical == EXAMPLES[name]
    assert set(canonical) == set(entry.fields)
    assert json.loads(json.dumps(canonical)) == canonical
    assert entry.validate(canonical) == canonical
    assert isinstance(entry.category, DataCategory)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_fact_type_refuses_unknown_fields(name: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        fact_type(name).validate({**EXAMPLES[name], "client_name": "Ann Example"})
    assert caught.value.fact_type == name
    assert [e["field"] for e in caught.value.errors] == ["data.client_name"]


def test_unknown_fields_are_refused_inside_nested_sections() -> None:
    payload = json.loads(json.dumps(EXAMPLES["treatment_outcomes_profile"]))
    payload["substance_use"]["heroin"] = 3
    with pytest.raises(InvalidPayload) as caught:
        fact_type("treatment_outcomes_profile").validate(payload)
    assert [e["field"] for e in caught.value.errors] == ["data.substance_use.heroin"]


@pytest.mark.parametrize(
    ("name", "change", "field"),
    [
        ("referral_received", {"substances": []}, "data.substances"),
        ("referral_received", {"source": "neighbour"}, "data.source"),
        ("prescription_changed", {"daily_dose_mg": -1}, "data.daily_dose_mg"),
        ("intervention_recorded", {"sessions": 0}, "data.sessions"),
        ("household_updated", {"children_in_household": "two"}, "data.children_in_household"),
        ("child_safeguarding_concern_raised", {"summary": "x" * 281}, "data.summary"),
        ("domestic_abuse_incident_recorded", {"police_reference": "a b"},
         "data.police_reference"),
        ("blood_borne_virus_vaccination", {"vaccine": "measles"}, "data.vaccine"),
        ("care_plan_agreed", {"review_on": "soon"}, "data.review_on"),
        ("clinical_note_added", {"text": ""}, "data.text"),
    ],
)
def test_payload_values_outside_the_schema_are_refused_and_named(
    name: str, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidPayload) as caught:
        fact_type(name).validate({**EXAMPLES[name], **change})
    assert [e["field"] for e in caught.value.errors] == [field]


def test_top_day_counts_are_limited_to_the_past_28_days() -> None:
    payload = json.loads(json.dumps(EXAMPLES["treatment_outcomes_profile"]))
    payload["substance_use"]["opiates"] = 29
    with pytest.raises(InvalidPayload) as caught:
        fact_type("treatment_outcomes_profile").validate(payload)
    assert [e["field"] for e in caught.value.errors] == ["data.substance_use.opiates"]


def test_missing_required_fields_are_named() -> None:
    with pytest.raises(InvalidPayload) as caught:
        fact_type("prescription_changed").validate({"medication": "methadone"})
    assert {e["field"] for e in caught.value.errors} == {
        "data.change", "data.daily_dose_mg", "data.supervised_consumption"
    }


def test_categories_of_sensitive_fact_types() -> None:
    assert fact_type("clinical_note_added").category is DataCategory.CLINICAL_NOTES
    assert fact_type("criminal_justice_status").category is DataCategory.CRIMINAL_JUSTICE
    assert fact_type("household_updated").category is DataCategory.SAFEGUARDING_CHILDREN
    assert fact_type("prescription_changed").category is DataCategory.PRESCRIBING


def test_an_unknown_fact_type_is_refused() -> None:
    with pytest.raises(UnknownFactType):
        fact_type("gossip_recorded")


# -- the application: agencies and principals ----------------------------------------------


def actor(partnership: Partnership, agency: str, role: Role) -> Actor:
    return partnership.accord.app.authenticate(partnership.token(agency, role))


def test_registering_an_agency_twice_is_refused(accord: Accord) -> None:
    app = accord.app
    app.register_agency("housing", "Housing Options", AgencyKind.HOUSING, OPERATOR)
    before = app.head_position()
    with pytest.raises(AgencyExists):
        app.register_agency("housing", "Another name", AgencyKind.POLICE, OPERATOR)
    assert app.head_position() == before
    assert [(a.slug, a.name, a.kind) for a in app.agencies()] == [
        ("housing", "Housing Options", AgencyKind.HOUSING)
    ]


def test_only_a_partnership_admin_registers_agencies(partnership: Partnership) -> None:
    for role in Role:
        if role is not Role.PARTNERSHIP_ADMIN:
            with pytest.raises(Forbidden):
                partnership.accord.app.register_agency(
                    "housing", "Housing", AgencyKind.HOUSING, actor(partnership, "tp", role)
                )
    admin = actor(partnership, "police", Role.PARTNERSHIP_ADMIN)
    assert partnership.accord.app.register_agency(
        "housing", "Housing", AgencyKind.HOUSING, admin
    ).slug == "housing"


def test_a_token_authenticates_as_its_principal(accord: Accord) -> None:
    app = accord.app
    app.register_agency("police", "Police", AgencyKind.POLICE, OPERATOR)
    issued = app.add_principal("police", Role.SAFEGUARDING, "DS Vera Stanhope", OPERATOR)
    who = app.authenticate(issued.token)
    assert (who.principal_id, who.agency, who.agency_kind, who.role, who.name) == (
        issued.principal_id, "police", AgencyKind.POLICE, Role.SAFEGUARDING, "DS Vera Stanhope"
    )
    [listed] = queries.principals(app, "police", OPERATOR)
    assert (listed.principal_id, listed.role, listed.revoked) == (
        issued.principal_id, Role.SAFEGUARDING, False
    )


def test_a_revoked_token_fails_on_the_next_call(accord: Accord) -> None:
    app = accord.app
    app.register_agency("tp", "TP", AgencyKind.TREATMENT_PROVIDER, OPERATOR)
    issued = app.add_principal("tp", Role.PRACTITIONER, "Leaver", OPERATOR)
    other = app.add_principal("tp", Role.PRACTITIONER, "Stayer", OPERATOR)
    app.authenticate(issued.token)
    app.revoke_principal(issued.principal_id, "left the service", OPERATOR)
    with pytest.raises(Unauthenticated):
        app.authenticate(issued.token)
    assert app.authenticate(other.token).name == "Stayer"
    revoked = {p.name: p.revoked for p in queries.principals(app, "tp", OPERATOR)}
    assert revoked == {"Leaver": True, "Stayer": False}
    app.revoke_principal(issued.principal_id, "again", OPERATOR)  # idempotent
    with pytest.raises(Unauthenticated):
        app.authenticate(issued.token)


def test_revocation_reaches_another_process_on_the_same_database(accord: Accord) -> None:
    """Several `accord serve` processes share one database: each must see a revocation."""
    app = accord.app
    app.register_agency("tp", "TP", AgencyKind.TREATMENT_PROVIDER, OPERATOR)
    issued = app.add_principal("tp", Role.PRACTITIONER, "Leaver", OPERATOR)
    other = bootstrap(accord.settings)
    try:
        assert other.app.authenticate(issued.token).name == "Leaver"  # now cached there
        app.revoke_principal(issued.principal_id, "left", OPERATOR)
        with pytest.raises(Unauthenticated):
            other.app.authenticate(issued.token)
    finally:
        other.close()


def test_only_an_admin_adds_or_revokes_principals(partnership: Partnership) -> None:
    app = partnership.accord.app
    victim = app.authenticate(partnership.token("tp", Role.PRACTITIONER))
    assert victim.principal_id is not None
    for role in Role:
        if role not in (Role.ADMIN, Role.PARTNERSHIP_ADMIN):
            by = actor(partnership, "tp", role)
            with pytest.raises(Forbidden):
                app.add_principal("tp", Role.ADMIN, "Self-promoted", by)
            with pytest.raises(Forbidden):
                app.revoke_principal(victim.principal_id, "spite", by)
    assert app.authenticate(partnership.token("tp", Role.PRACTITIONER)).role is Role.PRACTITIONER


def test_a_tampered_secret_is_refused(partnership: Partnership) -> None:
    app = partnership.accord.app
    token = partnership.token("tp", Role.ADMIN)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (flipped, token + "x", token[:-1]):
        with pytest.raises(Unauthenticated):
            app.authenticate(bad)


def test_a_token_cannot_borrow_another_principals_id(partnership: Partnership) -> None:
    app = partnership.accord.app
    admin = app.authenticate(partnership.token("tp", Role.ADMIN))
    assert admin.principal_id is not None
    practitioner_secret = partnership.token("tp", Role.PRACTITIONER).split("_", 2)[2]
    with pytest.raises(Unauthenticated):
        app.authenticate(f"acc_{admin.principal_id.hex}_{practitioner_secret}")


MALFORMED_TOKENS = {
    "empty": "", "garbage": "garbage", "prefix only": "acc", "empty parts": "acc__",
    "id not hex": "acc_nothex_secret", "with scheme": "Bearer acc_x_y",
    "wrong prefix": f"xyz_{uuid4().hex}_secret", "no secret part": f"acc_{uuid4().hex}",
    "unknown principal": f"acc_{uuid4().hex}_secret",
    "an agency's id": f"acc_{agency_uuid('tp').hex}_secret",
}


@pytest.mark.parametrize("token", MALFORMED_TOKENS.values(), ids=MALFORMED_TOKENS.keys())
def test_malformed_or_unknown_tokens_are_refused(partnership: Partnership, token: str) -> None:
    with pytest.raises(Unauthenticated):
        partnership.accord.app.authenticate(token)


# -- the application: clients and facts ----------------------------------------------------


def test_registering_the_same_nhs_number_twice_in_one_agency_names_the_first(
    partnership: Partnership,
) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    first, _ = app.register_client(identity(), worker)
    before = app.head_position()
    # The same person written differently is still the same NHS number.
    with pytest.raises(ClientAlreadyRegistered) as caught:
        app.register_client(identity(nhs_number="943-476-5919", given_name="Annie"), worker)
    assert caught.value.client_id == first
    assert app.head_position() == before
    assert queries.client_record(app, first, worker).identity == identity()


def test_another_treatment_provider_registers_the_same_person_as_its_own_client(
    partnership: Partnership,
) -> None:
    app = partnership.accord.app
    tp, tp2 = actor(partnership, "tp", Role.PRACTITIONER), actor(partnership, "tp2",
                                                                   Role.PRACTITIONER)
    first, _ = app.register_client(identity(), tp)
    second, _ = app.register_client(identity(), tp2)
    assert first != second
    assert queries.client_record(app, second, tp2).controller == "tp2"
    with pytest.raises(ClientNotFound):
        queries.client_record(app, first, tp2)
    with pytest.raises(ClientNotFound):
        queries.client_record(app, second, tp)


def test_facts_get_consecutive_sequences_and_increasing_positions(
    partnership: Partnership,
) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    safeguarding = actor(partnership, "tp", Role.SAFEGUARDING)
    client_id, registered_at = app.register_client(identity(), worker)
    when = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    written = [
        ("referral_received", EXAMPLES["referral_received"], worker),
        ("assessment_completed", EXAMPLES["assessment_completed"], worker),
        ("household_updated", EXAMPLES["household_updated"], safeguarding),
        ("appointment_missed", EXAMPLES["appointment_missed"], worker),
    ]
    positions = [registered_at]
    for i, (name, data, by) in enumerate(written):
        positions.append(app.record_fact(client_id, name, data, when + timedelta(days=i), by))
        assert positions[-1] == app.head_position()
    assert positions == sorted(set(positions))
    record = queries.client_record(app, client_id, worker)
    assert [f.sequence for f in record.facts] == [2, 3, 4, 5]
    assert [(f.fact_type, f.data) for f in record.facts] == [(n, d) for n, d, _ in written]
    assert [f.occurred_at for f in record.facts] == [when + timedelta(days=i) for i in range(4)]
    assert {f.controller for f in record.facts} == {"tp"}
    assert [f.recorded_by for f in record.facts] == [
        str(by.principal_id) for _, _, by in written
    ]
    assert [f.category for f in record.facts] == [
        "referral", "treatment", "safeguarding_children", "treatment"
    ]


def test_occurred_at_is_kept_as_the_same_instant_in_utc(partnership: Partnership) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    client_id, _ = app.register_client(identity(), worker)
    local = datetime(2026, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    app.record_fact(client_id, "appointment_attended", {"appointment": "group"}, local, worker)
    [fact] = queries.client_record(app, client_id, worker).facts
    assert fact.occurred_at == local
    assert fact.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "occurred_at",
    [datetime(2026, 1, 5, 9, 30), datetime.now(UTC) + timedelta(days=1)],
    ids=["no time zone", "tomorrow"],
)
def test_occurred_at_without_a_time_zone_or_in_the_future_is_refused(
    partnership: Partnership, occurred_at: datetime
) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    client_id, _ = app.register_client(identity(), worker)
    before = app.head_position()
    with pytest.raises(InvalidCommand) as caught:
        app.record_fact(client_id, "appointment_attended", {"appointment": "group"},
                        occurred_at, worker)
    assert caught.value.field == "occurred_at"
    assert app.head_position() == before
    assert queries.client_record(app, client_id, worker).facts == []


def test_a_minute_of_clock_skew_between_partners_is_tolerated(partnership: Partnership) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    client_id, _ = app.register_client(identity(), worker)
    app.record_fact(client_id, "appointment_attended", {"appointment": "group"},
                    datetime.now(UTC) + timedelta(minutes=1), worker)
    assert len(queries.client_record(app, client_id, worker).facts) == 1


def test_bad_payloads_and_unknown_types_append_nothing(partnership: Partnership) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    client_id, _ = app.register_client(identity(), worker)
    before = app.head_position()
    when = datetime(2026, 1, 5, tzinfo=UTC)
    with pytest.raises(InvalidPayload):
        app.record_fact(client_id, "housing_status_recorded", {"status": "castle"}, when, worker)
    with pytest.raises(UnknownFactType):
        app.record_fact(client_id, "rumour_heard", {}, when, worker)
    assert app.head_position() == before


@pytest.mark.parametrize(
    ("agency", "role"),
    [("police", Role.PRACTITIONER), ("commissioner", Role.COMMISSIONER),
     ("commissioner", Role.PRACTITIONER), ("tp", Role.SAFEGUARDING), ("tp", Role.IG_LEAD),
     ("tp", Role.ADMIN), ("tp", Role.COMMISSIONER), ("childrens", Role.SAFEGUARDING)],
)
def test_only_treatment_provider_practitioners_register_clients(
    partnership: Partnership, agency: str, role: Role
) -> None:
    app = partnership.accord.app
    before = app.head_position()
    with pytest.raises(Forbidden):
        app.register_client(identity(), actor(partnership, agency, role))
    assert app.head_position() == before


def test_roles_that_may_not_record_or_read_are_refused(partnership: Partnership) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    client_id, _ = app.register_client(identity(), worker)
    when = datetime(2026, 1, 5, tzinfo=UTC)
    for role in (Role.IG_LEAD, Role.ADMIN, Role.COMMISSIONER):
        with pytest.raises(Forbidden):
            app.record_fact(client_id, "appointment_attended", {"appointment": "keywork"},
                            when, actor(partnership, "tp", role))
    for role in (Role.ADMIN, Role.COMMISSIONER):
        with pytest.raises(Forbidden):
            queries.client_record(app, client_id, actor(partnership, "tp", role))
    assert queries.client_record(app, client_id, actor(partnership, "tp", Role.IG_LEAD)).facts == []


def test_other_agencies_cannot_write_to_or_read_a_client(partnership: Partnership) -> None:
    app = partnership.accord.app
    client_id, _ = app.register_client(identity(), actor(partnership, "tp", Role.PRACTITIONER))
    before = app.head_position()
    when = datetime(2026, 1, 5, tzinfo=UTC)
    for agency in ("tp2", "police", "childrens"):
        for role in (Role.PRACTITIONER, Role.SAFEGUARDING):
            by = actor(partnership, agency, role)
            with pytest.raises(ClientNotFound):
                app.record_fact(client_id, "appointment_attended", {"appointment": "keywork"},
                                when, by)
            with pytest.raises(ClientNotFound):
                queries.client_record(app, client_id, by)
    assert app.head_position() == before


def test_an_unknown_client_is_not_found(partnership: Partnership) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    for unknown in (uuid4(), agency_uuid("tp"), worker.principal_id):
        assert isinstance(unknown, UUID)
        with pytest.raises(ClientNotFound):
            queries.client_record(app, unknown, worker)
        with pytest.raises(ClientNotFound):
            app.record_fact(unknown, "appointment_attended", {"appointment": "keywork"},
                            datetime(2026, 1, 5, tzinfo=UTC), worker)


def test_crypto_shredding_erases_the_identity_but_keeps_the_facts(
    partnership: Partnership,
) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    kept, _ = app.register_client(identity(), worker)
    erased, _ = app.register_client(identity(nhs_number="4010232137"), worker)
    app.record_fact(erased, "appointment_attended", {"appointment": "keywork"},
                    datetime(2026, 1, 5, tzinfo=UTC), worker)
    app.vault.shred(erased)
    record = queries.client_record(app, erased, worker)
    assert record.identity is None
    assert record.identity_erased is True
    assert [f.fact_type for f in record.facts] == ["appointment_attended"]
    assert queries.client_record(app, kept, worker).identity == identity()
    # A fresh process with the same key-encryption key cannot read it either.
    other = bootstrap(partnership.accord.settings)
    try:
        again = queries.client_record(other.app, erased, other.app.authenticate(
            partnership.token("tp", Role.PRACTITIONER)))
        assert (again.identity, again.identity_erased) == (None, True)
    finally:
        other.close()
