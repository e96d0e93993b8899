"""The FHIR R4 Consent mapping (consent/fhir.py), pure: what accord writes is valid R4 to
an independent implementation (fhirclient's 4.0.1 models, strict) and reads back as the
same terms; the code tables; R4 Consent's invariants ppc-1 to ppc-5; and each way a
partner's resource can be unreadable, each named by its element."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from fhir.resources.R4B.consent import Consent as R4BConsent
from fhirclient.models.consent import Consent as R4Consent
from fhirclient.models.operationoutcome import OperationOutcome as R4Outcome
from hypothesis import given, settings
from hypothesis import strategies as st

from consent import fhir
from consent.fhir import ConsentTerms, ImportedConsent, Issue, PatientId, RecordedConsent
from domain.agencies import AgencyKind
from domain.categories import DataCategory
from domain.vocabulary import ConsentObtained, Purpose
from tests.builders import fhir_consent

NOW = datetime(2026, 2, 1, 12, tzinfo=UTC)
AGENCIES = {"tp": AgencyKind.TREATMENT_PROVIDER, "police": AgencyKind.POLICE,
            "childrens": AgencyKind.CHILDRENS_SERVICES}
NAMES = {"tp": "Riverside Recovery", "police": "Northshire Police"}
NHS = "9434765919"


def read(resource: Any, controller: str = "tp") -> ImportedConsent | list[Issue]:
    return fhir.read(resource, controller=controller, agencies=AGENCIES, now=NOW)


def terms_of(resource: Any) -> ConsentTerms:
    found = read(resource)
    assert isinstance(found, ImportedConsent), found
    return found.terms


def problems(resource: Any, controller: str = "tp") -> dict[str, Issue]:
    """Each issue by the element it names (one issue per element in these cases)."""
    found = read(resource, controller)
    assert isinstance(found, list), f"accepted: {found}"
    return {issue.expression: issue for issue in found}


def exported(terms: ConsentTerms, *, active: bool = True,
             patient: PatientId | None = None) -> dict[str, Any]:
    recorded = RecordedConsent(uuid4(), "tp", terms, datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
                               active)
    return fhir.export(recorded, patient or PatientId(fhir.NHS_NUMBER, NHS), NAMES)


TERMS = ConsentTerms(
    recipient_agency="police", recipient_kind=None,
    categories=(DataCategory.DOMESTIC_ABUSE, DataCategory.HOUSING,
                DataCategory.MENTAL_HEALTH, DataCategory.TREATMENT),
    purposes=(Purpose.CARE_COORDINATION, Purpose.SAFEGUARDING_CHILDREN),
    data_from=date(2024, 4, 1), data_to=date(2025, 12, 31),
    expires_at=datetime(2027, 1, 1, 9, tzinfo=UTC), obtained=ConsentObtained.VERBAL)


# -- out ------------------------------------------------------------------------------------


def test_the_export_is_a_valid_r4_consent_claiming_uk_core() -> None:
    resource = exported(TERMS)
    parsed = R4Consent(resource, strict=True)  # raises on anything R4 4.0.1 does not allow
    assert parsed.meta.profile == [fhir.UK_CORE_CONSENT]
    assert parsed.status == "active"
    assert [(c.system, c.code) for c in parsed.scope.coding] == [
        ("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy")]
    assert [(c.system, c.code) for c in parsed.category[0].coding] == [
        ("http://loinc.org", "59284-0")]
    assert resource["patient"] == {"type": "Patient", "identifier": {
        "system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS}}  # no display, no name
    assert resource["performer"] == [resource["patient"]]
    assert resource["organization"][0]["identifier"]["value"] == "tp"
    assert resource["policyRule"]["coding"][0]["code"] == "OPTIN"
    assert resource["dateTime"] == "2026-01-05T09:30:00Z"
    assert resource["provision"]["type"] == "deny"
    permits = resource["provision"]["provision"]
    assert [p["class"][0]["code"] for p in permits] == [c.value for c in TERMS.categories]
    for permit in permits:
        assert permit["type"] == "permit"
        [actor] = permit["actor"]
        assert actor["role"]["coding"][0]["code"] == "PRCP"
        assert actor["reference"]["identifier"] == {"system": fhir.ACCORD_AGENCY,
                                                    "value": "police"}
        assert [(c["system"], c["code"]) for c in permit["purpose"]] == [
            (fhir.ACT_REASON, "COC"), (fhir.ACCORD_PURPOSE, "care_coordination"),
            (fhir.ACT_REASON, "THREAT"), (fhir.ACCORD_PURPOSE, "safeguarding_children")]
        assert permit["dataPeriod"] == {"start": "2024-04-01", "end": "2025-12-31"}
        assert permit["period"] == {"end": "2027-01-01T09:00:00Z"}
    labels = {p["class"][0]["code"]: [c["code"] for c in p.get("securityLabel", [])]
              for p in permits}
    assert labels == {"domestic_abuse": ["SDV"], "housing": [], "mental_health": ["PSY"],
                      "treatment": ["ETH"]}


def test_a_withdrawn_consent_is_inactive_and_a_kind_is_named_as_such() -> None:
    terms = ConsentTerms(None, AgencyKind.CHILDRENS_SERVICES, (DataCategory.HOUSING,),
                         (Purpose.SAFEGUARDING_ADULTS,), None, None, None,
                         ConsentObtained.WRITTEN)
    resource = exported(terms, active=False)
    R4Consent(resource, strict=True)
    assert resource["status"] == "inactive"
    [permit] = resource["provision"]["provision"]
    assert permit["actor"][0]["reference"]["identifier"] == {
        "system": fhir.ACCORD_AGENCY_KIND, "value": "childrens_services"}
    assert "dataPeriod" not in permit and "period" not in permit


def test_the_code_tables_use_real_v3_codes() -> None:
    """CAREMGT excludes care coordination (v3: COC is coordination of care); the
    sensitivity labels are v3 ActCode's ETH, SDV and PSY."""
    assert {p: code for p, (code, _) in fhir.PURPOSE_CODES.items()} == {
        Purpose.DIRECT_CARE: "TREAT", Purpose.CARE_COORDINATION: "COC",
        Purpose.SAFEGUARDING_CHILDREN: "THREAT", Purpose.SAFEGUARDING_ADULTS: "THREAT",
        Purpose.OFFENDER_MANAGEMENT: "GOV", Purpose.COMMISSIONING: "PUBHLTH"}
    assert {c: code for c, (code, _) in fhir.SENSITIVITY.items()} == {
        DataCategory.TREATMENT: "ETH", DataCategory.PRESCRIBING: "ETH",
        DataCategory.DOMESTIC_ABUSE: "SDV", DataCategory.MENTAL_HEALTH: "PSY"}


def _terms() -> st.SearchStrategy[ConsentTerms]:
    day = st.dates(min_value=date(2015, 1, 1), max_value=date(2026, 1, 31))
    return st.builds(
        lambda recipient, categories, purposes, days, expires, obtained: ConsentTerms(
            recipient_agency=recipient if recipient in AGENCIES else None,
            recipient_kind=None if recipient in AGENCIES else AgencyKind(recipient),
            categories=tuple(sorted(categories)), purposes=tuple(sorted(purposes)),
            data_from=days[0], data_to=days[1],
            expires_at=NOW + expires if expires else None, obtained=obtained),
        st.sampled_from(["police", "childrens", *[k.value for k in AgencyKind]]),
        st.sets(st.sampled_from(list(DataCategory)), min_size=1),
        st.sets(st.sampled_from(list(Purpose)), min_size=1),
        st.tuples(st.none() | day, st.none() | day).filter(
            lambda d: d[0] is None or d[1] is None or d[0] <= d[1]),
        st.none() | st.timedeltas(min_value=timedelta(minutes=1),
                                  max_value=timedelta(days=3650)),
        st.sampled_from(list(ConsentObtained)))


@settings(max_examples=150, deadline=None)
@given(_terms())
def test_any_consent_exports_as_valid_r4_and_reads_back_the_same(terms: ConsentTerms) -> None:
    resource = exported(terms)
    R4Consent(resource, strict=True)
    assert terms_of(resource) == terms


# -- in: what is read -----------------------------------------------------------------------


def test_a_partners_consent_is_read() -> None:
    terms = terms_of(fhir_consent(NHS, categories=("housing", "treatment"),
                                  purposes=("TREAT", "PUBHLTH")))
    assert terms == ConsentTerms("police", None, (DataCategory.HOUSING, DataCategory.TREATMENT),
                                 (Purpose.COMMISSIONING, Purpose.DIRECT_CARE), None, None,
                                 None, ConsentObtained.WRITTEN)


def test_the_hl7_smart_on_fhir_example_adapted_is_read() -> None:
    """HL7's R4 example consent-example-smartonfhir (a root period, one nested permit
    with action access and a class), adapted to accord: the patient by NHS number, the
    recipient and purpose on the root (inherited by the permit), accord's categories
    and a signed form as its source."""
    example = {
        "resourceType": "Consent", "id": "consent-example-smartonfhir", "status": "active",
        "scope": {"coding": [{"system": fhir.CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"identifier": {"system": fhir.NHS_NUMBER, "value": "943 476 5919"}},
        "dateTime": "2026-01-23T17:02:33+10:00",
        "performer": [{"reference": "RelatedPerson/peter"}],
        "organization": [{"identifier": {"system": fhir.ACCORD_AGENCY, "value": "tp"}}],
        "sourceAttachment": {"title": "The signed consent form"},
        "policyRule": {"coding": [{"system": fhir.ACT_CODE, "code": "OPTIN"}]},
        "provision": {
            "period": {"start": "2026-01-23T17:02:33+10:00", "end": "2027-03-31"},
            "actor": [{"role": {"coding": [{"system": fhir.PARTICIPATION, "code": "PRCP"}]},
                       "reference": {"identifier": {"system": fhir.ACCORD_AGENCY_KIND,
                                                    "value": "childrens_services"}}}],
            "purpose": [{"system": fhir.ACT_REASON, "code": "THREAT"},
                        {"system": fhir.ACCORD_PURPOSE, "code": "safeguarding_children"}],
            "provision": [{"type": "permit", "action": [{"coding": [
                {"system": fhir.CONSENT_ACTION, "code": "access"}]}],
                "class": [{"system": fhir.ACCORD_CATEGORY, "code": "prescribing"}]}],
        },
    }
    R4Consent(copy.deepcopy(example), strict=True)
    found = read(example)
    assert isinstance(found, ImportedConsent), found
    assert found.patient == PatientId(fhir.NHS_NUMBER, NHS)
    # The whole of 31 March 2027 in England (BST): until 23:00 UTC.
    assert found.terms == ConsentTerms(
        None, AgencyKind.CHILDRENS_SERVICES, (DataCategory.PRESCRIBING,),
        (Purpose.SAFEGUARDING_CHILDREN,), None, None,
        datetime(2027, 3, 31, 23, tzinfo=UTC), ConsentObtained.WRITTEN)


def test_sensitivity_labels_alone_name_their_categories() -> None:
    resource = fhir_consent(NHS, categories=())
    resource["provision"]["securityLabel"] = [{"system": fhir.ACT_CODE, "code": "ETH"},
                                              {"system": fhir.ACT_CODE, "code": "SDV"}]
    assert terms_of(resource).categories == (
        DataCategory.DOMESTIC_ABUSE, DataCategory.PRESCRIBING, DataCategory.TREATMENT)


def test_partial_dates_cover_whole_years_and_months() -> None:
    resource = fhir_consent(NHS)
    resource["provision"]["dataPeriod"] = {"start": "2024", "end": "2025-02"}
    resource["provision"]["period"] = {"end": "2026-12"}
    terms = terms_of(resource)
    assert (terms.data_from, terms.data_to) == (date(2024, 1, 1), date(2025, 2, 28))
    assert terms.expires_at == datetime(2027, 1, 1, tzinfo=UTC)  # GMT in January


def test_threat_with_accords_code_says_which_safeguarding() -> None:
    resource = fhir_consent(NHS, purposes=("THREAT",))
    resource["provision"]["purpose"].append(
        {"system": fhir.ACCORD_PURPOSE, "code": "safeguarding_adults"})
    assert terms_of(resource).purposes == (Purpose.SAFEGUARDING_ADULTS,)


# -- in: what is refused --------------------------------------------------------------------


@pytest.mark.parametrize(("scope", "key"), [("patient-privacy", "ppc-2"), ("research", "ppc-3"),
                                            ("adr", "ppc-4"), ("treatment", "ppc-5")])
def test_a_scope_that_needs_a_patient_without_one_breaks_its_invariant(
        scope: str, key: str) -> None:
    resource = fhir_consent(NHS, scope={"coding": [{"system": fhir.CONSENT_SCOPE,
                                                    "code": scope}]})
    del resource["patient"]
    issue = problems(resource)["Consent.patient"]
    assert (issue.code, issue.diagnostics.split(":")[0]) == ("invariant", key)
    [invariant] = fhir.invariants(R4BConsent.model_validate(resource))
    assert invariant.diagnostics.startswith(key)


def test_a_consent_without_policy_or_policy_rule_breaks_ppc_1() -> None:
    resource = fhir_consent(NHS)
    del resource["policyRule"]
    resource["provision"]["type"] = "permit"
    issue = problems(resource)["Consent.policyRule"]
    assert issue.code == "invariant" and issue.diagnostics.startswith("ppc-1")
    resource["policy"] = [{"uri": "https://example.org/partnership-consent-policy"}]
    assert isinstance(read(resource), ImportedConsent)


@pytest.mark.parametrize(("status", "code"), [("granted", "code-invalid"),
                                              ("not-done", "code-invalid"),
                                              ("draft", "not-supported"),
                                              ("inactive", "not-supported")])
def test_only_an_active_r4_status_is_recorded(status: str, code: str) -> None:
    assert problems(fhir_consent(NHS, status=status))["Consent.status"].code == code


def test_an_r5_consent_is_refused_naming_each_r5_element() -> None:
    r5 = {"resourceType": "Consent", "status": "active", "decision": "permit",
          "subject": {"reference": "Patient/1"}, "date": "2026-01-05",
          "grantee": [{"reference": "Organization/police"}],
          "controller": [{"reference": "Organization/tp"}],
          "provision": [{"purpose": [{"system": fhir.ACT_REASON, "code": "TREAT"}]}]}
    found = problems(r5)
    for element in ("decision", "subject", "date", "grantee", "controller", "provision"):
        assert found[f"Consent.{element}"].code == "not-supported", element
        assert "R5" in found[f"Consent.{element}"].diagnostics
    assert found["Consent.scope"].code == "required"  # and what R4 misses, too


def test_every_problem_is_named_at_once() -> None:
    resource = fhir_consent(NHS, purposes=("TREAT", "HMARKT"), status="granted")
    resource["provision"]["actor"][0]["reference"]["identifier"]["value"] = "nobody"
    resource["provision"]["dataPeriod"] = {"start": "2025-01-01", "end": "2024-01-01"}
    resource["provision"]["period"] = {"end": "2026-01-31T00:00:00Z"}
    resource["dateTime"] = "2026-13-01"
    found = problems(resource)
    assert {e: i.code for e, i in found.items()} == {
        "Consent.dateTime": "value",
        "Consent.status": "code-invalid",
        "Consent.provision.actor[0].reference.identifier.value": "value",
        "Consent.provision.purpose[1]": "not-supported",
        "Consent.provision.dataPeriod.end": "value",
        "Consent.provision.period.end": "value",
    }
    assert "expired" in found["Consent.provision.period.end"].diagnostics
    R4Outcome(fhir.outcome(found.values()), strict=True)


@pytest.mark.parametrize(("change", "expression", "code"), [
    (lambda r: r["provision"]["purpose"].__setitem__(0, {"system": fhir.ACT_REASON,
                                                         "code": "THREAT"}),
     "Consent.provision.purpose[0]", "value"),
    (lambda r: r["provision"]["purpose"].__setitem__(0, {"system": fhir.ACCORD_PURPOSE,
                                                         "code": "marketing"}),
     "Consent.provision.purpose[0]", "code-invalid"),
    (lambda r: r["provision"].__setitem__("purpose", []), "Consent.provision.purpose",
     "required"),
    (lambda r: r["provision"]["class"].__setitem__(0, {"system": fhir.ACCORD_CATEGORY,
                                                       "code": "everything"}),
     "Consent.provision.class[0]", "code-invalid"),
    (lambda r: r["provision"]["class"].__setitem__(0, {
        "system": "http://hl7.org/fhir/resource-types", "code": "MedicationRequest"}),
     "Consent.provision.class[0]", "not-supported"),
    (lambda r: r["provision"].__setitem__("securityLabel", [{"system": fhir.ACT_CODE,
                                                             "code": "PSY"}]),
     "Consent.provision.securityLabel[0]", "value"),
    (lambda r: r["provision"]["actor"][0]["reference"].__setitem__(
        "identifier", {"system": fhir.ACCORD_AGENCY_KIND, "value": "bank"}),
     "Consent.provision.actor[0].reference.identifier.value", "code-invalid"),
    (lambda r: r["provision"]["actor"][0].__setitem__("reference",
                                                      {"reference": "Organization/1"}),
     "Consent.provision.actor[0].reference", "not-supported"),
    (lambda r: r["provision"].__setitem__("type", "deny"), "Consent.provision.type",
     "not-supported"),
    (lambda r: r["provision"].__setitem__("dataPeriod", {"start": "2025-01-01T10:00:00Z"}),
     "Consent.provision.dataPeriod.start", "value"),
    (lambda r: r["provision"].__setitem__("period", {"start": "2026-06-01"}),
     "Consent.provision.period.start", "not-supported"),
    (lambda r: r.__setitem__("policyRule", {"coding": [{"system": fhir.ACT_CODE,
                                                         "code": "OPTOUT"}]}),
     "Consent.policyRule", "not-supported"),
    (lambda r: r.__setitem__("organization", [{"identifier": {
        "system": fhir.ACCORD_AGENCY, "value": "police"}}]),
     "Consent.organization[0]", "business-rule"),
    (lambda r: r.__setitem__("patient", {"reference": "Patient/f001"}), "Consent.patient",
     "not-supported"),
    (lambda r: r["patient"]["identifier"].__setitem__("value", "9434765910"),
     "Consent.patient.identifier.value", "value"),
    (lambda r: r.__setitem__("extension", []), "Consent.extension", "required"),
    (lambda r: r.__setitem__("category", [{"coding": [{"system": fhir.LOINC,
                                                       "code": "59283-2"}]}]),
     "Consent.category", "not-supported"),
    (lambda r: r.__setitem__("dateTime", "2026-03-01"), "Consent.dateTime", "value"),
    (lambda r: r.__setitem__("colour", "blue"), "Consent.colour", "structure"),
    (lambda r: r.__setitem__("modifierExtension", [{"url": "https://example.org/x",
                                                    "valueBoolean": True}]),
     "Consent.modifierExtension", "not-supported"),
])
def test_what_accord_cannot_record_is_named(change: Any, expression: str, code: str) -> None:
    resource = fhir_consent(NHS)
    change(resource)
    found = problems(resource)
    assert expression in found, found
    assert found[expression].code == code
    assert len(found) == 1, found


def test_a_nested_exception_or_differing_permits_are_not_supported() -> None:
    permit = fhir_consent(NHS)["provision"]
    deny = {**copy.deepcopy(permit), "type": "deny"}
    resource = fhir_consent(NHS, provision={"provision": [permit, deny]})
    assert problems(resource)["Consent.provision.provision[1].type"].code == "not-supported"
    other = {**copy.deepcopy(permit), "purpose": [{"system": fhir.ACT_REASON, "code": "TREAT"}]}
    resource = fhir_consent(NHS, provision={"type": "deny", "provision": [permit, other]})
    assert "purposes" in problems(resource)["Consent.provision.provision"].diagnostics


def test_what_is_not_a_consent_is_refused() -> None:
    refused = read([1])
    assert isinstance(refused, list) and [i.code for i in refused] == ["structure"]
    found = problems({"resourceType": "Patient"})
    assert found["Consent.resourceType"].code == "invalid"


def _elements(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    items = (value.items() if isinstance(value, dict)
             else enumerate(value) if isinstance(value, list) else ())
    for key, inner in items:
        found += _elements(inner, (*path, key))
    return found


def test_any_element_replaced_by_any_json_value_is_named_never_a_crash() -> None:
    """Every element of a full resource (root and nested provisions), replaced by null, an
    empty array or object, a number or a string: the answer is the consent or issues,
    never an exception (a 500)."""
    full = fhir_consent(NHS, organization=[{"identifier": {"system": fhir.ACCORD_AGENCY,
                                                           "value": "tp"}}])
    full["provision"].update(
        dataPeriod={"start": "2024-01-01", "end": "2025-01-01"},
        period={"start": "2025-01-01", "end": "2027-01-01"},
        securityLabel=[{"system": fhir.ACT_CODE, "code": "ETH"}],
        action=[{"coding": [{"system": fhir.CONSENT_ACTION, "code": "access"}]}])
    nested = copy.deepcopy(full)
    nested["provision"] = {"type": "deny", "period": {"end": "2027-01-01"},
                           "provision": [copy.deepcopy(full["provision"])]}
    replacements: list[Any] = [None, [], {}, "", 7, [None], "x"]
    for resource in (full, nested):
        for path in _elements(resource):
            for replacement in replacements:
                changed = copy.deepcopy(resource)
                parent = changed
                for key in path[:-1]:
                    parent = parent[key]
                parent[path[-1]] = replacement
                found = read(changed)
                assert isinstance(found, ImportedConsent | list), (path, replacement)
                if replacement is None:
                    assert isinstance(found, list), path
