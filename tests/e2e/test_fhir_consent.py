"""FHIR R4 Consent in and out through the API (issue 16, item 1), on both databases.

Out: ``GET /v1/clients/{id}/consents/{consent_id}/fhir`` is the consent as FHIR R4,
valid to an independent implementation (fhirclient's 4.0.1 models, strict), and a read
of the client's consents like the JSON one: the same guard, the same 404 for anyone but
the agency that recorded it, one access record either way.

In: ``POST /v1/fhir/Consent`` records a partner system's Consent through the same command
as ``POST /v1/clients/{id}/consents``: a round trip gives the same terms, an HL7 example
adapted to accord's codes is recorded, each invalid resource is a 422 OperationOutcome
naming every problem with nothing appended to the log, and a client the caller's agency
holds no record of is the same 404 as an unknown one, recorded as an attempt.
"""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from fhirclient.models.consent import Consent as R4Consent
from fhirclient.models.operationoutcome import OperationOutcome as R4Outcome

from api.bootstrap import Accord
from consent import fhir
from domain.agencies import Role
from tests.builders import (
    VALID_IDENTITY,
    Partnership,
    access_records,
    agree,
    changes,
    consent,
    fact,
    fhir_consent,
    granted,
    hdr,
    police_terms,
    post_fact,
    register,
    registered,
    view,
)

NHS = "9434765919"  # VALID_IDENTITY's
OTHER_NHS = "4010232137"
FHIR_JSON = {"content-type": "application/fhir+json"}
EXPIRES = (datetime.now(UTC) + timedelta(days=365)).replace(microsecond=0)


def export(api: TestClient, partnership: Partnership, client_id: str, consent_id: str,
           agency: str = "tp", role: Role = Role.PRACTITIONER) -> Any:
    return api.get(f"/v1/clients/{client_id}/consents/{consent_id}/fhir",
                   headers=hdr(partnership, agency, role))


def send(api: TestClient, partnership: Partnership, resource: Any, agency: str = "tp",
         role: Role = Role.PRACTITIONER) -> Any:
    return api.post("/v1/fhir/Consent", json=resource,
                    headers={**hdr(partnership, agency, role), **FHIR_JSON})


def consents_of(api: TestClient, partnership: Partnership, client_id: str,
                agency: str = "tp") -> list[dict[str, Any]]:
    response = api.get(f"/v1/clients/{client_id}/consents", headers=hdr(partnership, agency))
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


TERMS = ("recipient_agency", "recipient_kind", "categories", "purposes", "data_from",
         "data_to", "expires_at", "obtained", "controller", "active")


def terms(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in TERMS}


@pytest.fixture
def given(api: TestClient, partnership: Partnership) -> dict[str, Any]:
    """A client of ``tp`` who consented to the police seeing four categories (three of
    them sensitive) for care coordination and children's safeguarding."""
    client_id = register(api, partnership)
    recorded = consent(api, partnership, client_id,
                       categories=["domestic_abuse", "housing", "mental_health", "treatment"],
                       purposes=["care_coordination", "safeguarding_children"],
                       data_from="2024-04-01", data_to="2025-12-31",
                       expires_at=EXPIRES.isoformat(), obtained="verbal")
    return {"client_id": client_id, **recorded}


def test_the_export_is_valid_r4_with_accords_codes_and_is_a_recorded_read(
        api: TestClient, partnership: Partnership, accord: Accord,
        given: dict[str, Any]) -> None:
    reads = access_records(accord)
    response = export(api, partnership, given["client_id"], given["consent_id"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    resource = response.json()
    parsed = R4Consent(copy.deepcopy(resource), strict=True)
    assert parsed.id == given["consent_id"] and parsed.status == "active"
    assert parsed.meta.profile == [fhir.UK_CORE_CONSENT]
    assert parsed.patient.identifier.system == "https://fhir.nhs.uk/Id/nhs-number"
    assert parsed.patient.identifier.value == NHS and parsed.patient.display is None
    assert VALID_IDENTITY["family_name"] not in response.text
    assert parsed.organization[0].identifier.value == "tp"
    permits = resource["provision"]["provision"]
    assert {p["class"][0]["code"]: [c["code"] for c in p.get("securityLabel", [])]
            for p in permits} == {"domestic_abuse": ["SDV"], "housing": [],
                                  "mental_health": ["PSY"], "treatment": ["ETH"]}
    assert {c["code"] for p in permits for c in p["purpose"]} == {
        "COC", "care_coordination", "THREAT", "safeguarding_children"}
    assert all(p["dataPeriod"] == {"start": "2024-04-01", "end": "2025-12-31"}
               for p in permits)
    assert all(datetime.fromisoformat(p["period"]["end"]) == EXPIRES for p in permits)
    assert resource["extension"] == [{"url": fhir.OBTAINED, "valueCode": "verbal"}]
    # One read of the client's consents, with the NHS number it showed.
    assert access_records(accord) == reads + 1
    audit = api.get("/v1/audit/accesses", params={"client_id": given["client_id"]},
                    headers=hdr(partnership, "tp", Role.IG_LEAD)).json()
    [read] = [a for a in audit if a["action"] == "consents"]
    assert read["outcome"] == "returned"
    assert {i["category"] for i in read["returned"]} == {"identity", "consent"}


def test_a_withdrawn_consent_exports_as_inactive(
        api: TestClient, partnership: Partnership, given: dict[str, Any]) -> None:
    withdrawn = api.post(
        f"/v1/clients/{given['client_id']}/consents/{given['consent_id']}/withdraw",
        json={"reason": "Client changed their mind."}, headers=hdr(partnership, "tp"))
    assert withdrawn.status_code == 200, withdrawn.text
    resource = export(api, partnership, given["client_id"], given["consent_id"]).json()
    assert R4Consent(resource, strict=True).status == "inactive"


def test_another_agencys_consent_is_not_found_and_the_refusal_recorded(
        api: TestClient, partnership: Partnership, accord: Accord,
        given: dict[str, Any]) -> None:
    nobody = "00000000-0000-4000-8000-000000000000"
    before = access_records(accord)
    for agency in ("police", "tp2"):
        refused = export(api, partnership, given["client_id"], given["consent_id"], agency)
        unknown = export(api, partnership, nobody, given["consent_id"], agency)
        assert refused.status_code == unknown.status_code == 404, refused.text
        assert refused.json() == unknown.json()
    assert access_records(accord) == before + 4
    missing = export(api, partnership, given["client_id"], nobody)
    assert missing.status_code == 404 and access_records(accord) == before + 5
    assert export(api, partnership, given["client_id"], given["consent_id"], "tp",
                  Role.ADMIN).status_code == 403


def test_a_round_trip_records_the_same_terms_for_another_client(
        api: TestClient, partnership: Partnership, given: dict[str, Any]) -> None:
    other = registered(api, partnership, OTHER_NHS)
    resource = export(api, partnership, given["client_id"], given["consent_id"]).json()
    resource["patient"]["identifier"]["value"] = OTHER_NHS
    resource["performer"][0]["identifier"]["value"] = OTHER_NHS
    response = send(api, partnership, resource)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    created = response.json()
    R4Consent(copy.deepcopy(created), strict=True)
    [recorded] = consents_of(api, partnership, other)
    assert created["id"] == recorded["consent_id"] != given["consent_id"]
    assert response.headers["location"] == (
        f"/v1/clients/{other}/consents/{recorded['consent_id']}/fhir")
    [original] = consents_of(api, partnership, given["client_id"])
    assert terms(recorded) == terms(original)
    # What the Location gives is what the answer was.
    assert api.get(response.headers["location"], headers=hdr(partnership, "tp")).json() \
        == created


def test_an_hl7_example_adapted_to_accords_codes_gives_the_police_their_view(
        api: TestClient, partnership: Partnership) -> None:
    """HL7's R4 consent-example-smartonfhir, adapted: the patient by NHS number, the
    police as recipient on the root, housing as the permit's class; the signed form as
    source. The police then see the client's housing status for care coordination
    (an agreement that needs consent is in force)."""
    client_id = register(api, partnership)
    agree(api, partnership, {**police_terms(purposes=["care_coordination"]),
                             "categories": {"housing": ["status"]}})
    post_fact(api, partnership, client_id, fact("housing_status_recorded",
                                                 {"status": "temporary"}))
    example = fhir_consent(NHS, categories=(), purposes=("COC",))
    root = example["provision"]
    example.update(
        id="consent-example-smartonfhir", extension=[],
        sourceAttachment={"title": "The signed consent form"},
        provision={"period": {"end": EXPIRES.date().isoformat()}, "actor": root["actor"],
                   "purpose": root["purpose"],
                   "provision": [{"type": "permit", "action": [{"coding": [
                       {"system": fhir.CONSENT_ACTION, "code": "access"}]}],
                       "class": [{"system": fhir.ACCORD_CATEGORY, "code": "housing"}]}]})
    R4Consent(copy.deepcopy(example), strict=True)
    response = send(api, partnership, example)
    assert response.status_code == 201, response.text
    [recorded] = consents_of(api, partnership, client_id)
    assert (recorded["recipient_agency"], recorded["categories"], recorded["purposes"],
            recorded["obtained"]) == ("police", ["housing"], ["care_coordination"], "written")
    seen = view(api, partnership, client_id, "police", "care_coordination",
                position=api.app.state.accord.app.head_position())  # type: ignore[attr-defined]
    assert seen.status_code == 200, seen.text
    assert [f["data"] for f in seen.json()["facts"]] == [{"status": "temporary"}]


def _r5() -> dict[str, Any]:
    return {"resourceType": "Consent", "status": "active", "decision": "permit",
            "subject": {"identifier": {"system": fhir.NHS_NUMBER, "value": NHS}},
            "grantee": [{"identifier": {"system": fhir.ACCORD_AGENCY, "value": "police"}}],
            "controller": [{"identifier": {"system": fhir.ACCORD_AGENCY, "value": "tp"}}],
            "provision": [{"purpose": [{"system": fhir.ACT_REASON, "code": "TREAT"}]}]}


def _without_patient() -> dict[str, Any]:
    resource = fhir_consent(NHS)
    del resource["patient"]
    return resource


def _bad_dates() -> dict[str, Any]:
    resource = fhir_consent(NHS)
    resource["provision"]["dataPeriod"] = {"start": "2025-06-01", "end": "2025-01-31"}
    resource["provision"]["period"] = {"end": "2020-01-01"}
    resource["dateTime"] = "2026-02-30"
    return resource


def _unknown_recipient() -> dict[str, Any]:
    resource = fhir_consent(NHS)
    resource["provision"]["actor"][0]["reference"]["identifier"]["value"] = "northshire-bank"
    return resource


INVALID: dict[str, tuple[Any, dict[str, str]]] = {
    "a wrong status code": (fhir_consent(NHS, status="granted"),
                            {"Consent.status": "code-invalid"}),
    "no patient with scope patient-privacy": (_without_patient,
                                              {"Consent.patient": "invariant"}),
    "an R5-shaped resource": (_r5, {
        "Consent.decision": "not-supported", "Consent.subject": "not-supported",
        "Consent.grantee": "not-supported", "Consent.controller": "not-supported",
        "Consent.provision": "not-supported", "Consent.scope": "required",
        "Consent.category": "required", "Consent.policyRule": "invariant",
        "Consent.extension": "required"}),
    "an unknown purpose": (fhir_consent(NHS, purposes=("COC", "HMARKT")),
                           {"Consent.provision.purpose[1]": "not-supported"}),
    "an unknown recipient": (_unknown_recipient, {
        "Consent.provision.actor[0].reference.identifier.value": "value"}),
    "bad dates": (_bad_dates, {"Consent.dateTime": "value",
                               "Consent.provision.dataPeriod.end": "value",
                               "Consent.provision.period.end": "value"}),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_an_invalid_resource_is_an_operation_outcome_naming_each_problem(
        api: TestClient, partnership: Partnership, accord: Accord, case: str) -> None:
    register(api, partnership)
    made, expected = INVALID[case]
    resource = made() if callable(made) else copy.deepcopy(made)
    before, reads = changes(accord), access_records(accord)
    response = send(api, partnership, resource)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    outcome = response.json()
    R4Outcome(copy.deepcopy(outcome), strict=True)
    named = {issue["expression"][0]: issue["code"] for issue in outcome["issue"]}
    assert named == expected
    assert all(issue["severity"] == "error" and issue["diagnostics"]
               for issue in outcome["issue"])
    assert (changes(accord), access_records(accord)) == (before, reads)


def test_a_body_that_is_not_a_resource_is_an_operation_outcome(
        api: TestClient, partnership: Partnership, accord: Accord) -> None:
    before = changes(accord)
    for body in (b"not json", b"[1, 2]", b'{"resourceType": "Patient"}', b"\xff\xfe"):
        response = api.post("/v1/fhir/Consent", content=body,
                            headers={**hdr(partnership, "tp"), **FHIR_JSON})
        assert response.status_code == 422, response.text
        assert response.json()["resourceType"] == "OperationOutcome"
    assert changes(accord) == before


def test_a_client_the_agency_holds_no_record_of_is_the_same_404_as_an_unknown_one(
        api: TestClient, partnership: Partnership, accord: Accord) -> None:
    register(api, partnership, "tp2", {**VALID_IDENTITY, "nhs_number": OTHER_NHS})
    register(api, partnership)
    answers = []
    for nhs, agency in ((OTHER_NHS, "tp"), ("9990000018", "tp"), (NHS, "police")):
        before, reads = changes(accord), access_records(accord)
        response = send(api, partnership, fhir_consent(nhs), agency)
        assert response.status_code == 404, response.text
        answers.append(response.json())
        assert changes(accord) == before
        assert access_records(accord) == reads + 1  # an attempt, on the record
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["issue"][0]["code"] == "not-found"
    assert send(api, partnership, fhir_consent(NHS), "tp", Role.IG_LEAD).status_code == 403


def test_a_partner_that_recorded_about_a_client_imports_its_consent_by_nhs_number(
        api: TestClient, partnership: Partnership) -> None:
    """The police did not register the client (so hold no NHS number of their own) but
    recorded a fact under an emergency grant: their FHIR consent finds the client by
    NHS number among the clients whose data they control, and their export names the
    client by accord's id, not by an NHS number they were never given."""
    client_id = register(api, partnership)
    granted(api, partnership, client_id)
    app = api.app.state.accord.app  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while not app.sees_client("police", UUID(client_id)):
        assert time.monotonic() < deadline, "the grant never reached the views"
        time.sleep(0.02)
    post_fact(api, partnership, client_id, fact("housing_status_recorded",
                                                {"status": "settled"}), agency="police")
    resource = fhir_consent(NHS, recipient="tp", purposes=("TREAT",))
    response = api.post(f"/v1/fhir/Consent?min_position={app.head_position()}",
                        json=resource, headers={**hdr(partnership, "police"), **FHIR_JSON})
    assert response.status_code == 201, response.text
    [recorded] = consents_of(api, partnership, client_id, "police")
    assert (recorded["controller"], recorded["recipient_agency"]) == ("police", "tp")
    exported = export(api, partnership, client_id, recorded["consent_id"], "police").json()
    assert exported["patient"]["identifier"] == {"system": fhir.ACCORD_CLIENT,
                                                 "value": client_id}
    assert NHS not in str(exported)
