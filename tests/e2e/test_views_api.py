"""Agreements, consent and the consent-scoped views through the HTTP API, on both databases.

These follow a partnership's working day: IG leads agree to share, a keyworker records
the client's consent, the police read what the agreement and the consent allow, the
client withdraws, and the police lose it. Every response is checked: never a 5xx.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from domain.agencies import Role
from domain.vocabulary import LegalDuty
from tests.builders import (
    HEALTH_PUBLIC_TASK,
    VALID_IDENTITY,
    Partnership,
    agree,
    childrens_terms,
    consent,
    fact,
    hdr,
    police_terms,
    post_fact,
    register,
    view,
)

# -- agreements --------------------------------------------------------------------------------


def test_an_agreement_comes_into_force_only_when_both_ig_leads_approve(
    api: TestClient, partnership: Partnership
) -> None:
    proposed = api.post("/v1/agreements", json=police_terms(),
                        headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert proposed.status_code == 201
    agreement_id = proposed.json()["agreement_id"]
    first = api.post(f"/v1/agreements/{agreement_id}/approve",
                     headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert first.json()["status"] == "proposed"
    assert first.json()["version_in_force"] is None
    # An agency that is not a party may neither approve nor see it.
    outsider = api.post(f"/v1/agreements/{agreement_id}/approve",
                        headers=hdr(partnership, "childrens", Role.IG_LEAD))
    assert outsider.status_code == 404
    listed = api.get("/v1/agreements", headers=hdr(partnership, "childrens", Role.IG_LEAD))
    assert agreement_id not in [a["agreement_id"] for a in listed.json()]
    second = api.post(f"/v1/agreements/{agreement_id}/approve",
                      headers=hdr(partnership, "police", Role.IG_LEAD))
    assert second.json()["status"] == "active"
    assert set(second.json()["approvals"]) == {"tp", "police"}
    listed = api.get("/v1/agreements", headers=hdr(partnership, "police", Role.IG_LEAD))
    assert [a["agreement_id"] for a in listed.json()] == [agreement_id]


def test_an_agreement_that_shares_clinical_notes_or_lacks_a_condition_is_refused(
    api: TestClient, partnership: Partnership
) -> None:
    lead = hdr(partnership, "tp", Role.IG_LEAD)
    notes = police_terms(categories={"clinical_notes": ["text"]})
    assert api.post("/v1/agreements", json=notes, headers=lead).status_code == 422
    no_article_10 = police_terms(lawful_basis=HEALTH_PUBLIC_TASK)
    refused = api.post("/v1/agreements", json=no_article_10, headers=lead)
    assert refused.status_code == 422
    assert "Art. 10" in refused.text
    assert api.get("/v1/agreements", headers=lead).json() == []


def test_an_amendment_is_a_new_version_and_the_old_one_stays_in_force_until_approved(
    api: TestClient, partnership: Partnership, treated: dict[str, Any]
) -> None:
    client_id = treated["client_id"]
    agreement_id = agree(api, partnership, police_terms())
    given = consent(api, partnership, client_id)
    narrower = police_terms(categories={"treatment": ["appointment"]})
    amended = api.post(f"/v1/agreements/{agreement_id}/amend", json=narrower,
                       headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert amended.status_code == 200, amended.text
    assert amended.json()["version"] == 2 and amended.json()["version_in_force"] == 1
    assert "criminal_justice" in amended.json()["terms_in_force"]["categories"]
    assert amended.json()["amendment_proposed"] is True
    seen = view(api, partnership, client_id, "police", "offender_management",
                position=given["position"])
    assert {f["type"] for f in seen.json()["facts"]} >= {"criminal_justice_status"}
    for party in ("tp", "police"):
        approved = api.post(f"/v1/agreements/{agreement_id}/approve",
                            headers=hdr(partnership, party, Role.IG_LEAD))
    assert approved.json()["version_in_force"] == 2
    seen = view(api, partnership, client_id, "police", "offender_management",
                position=partnership.accord.app.head_position())
    assert {f["type"] for f in seen.json()["facts"]} == {"appointment_attended",
                                                         "treatment_episode_started"}
    assert all(f["basis"]["agreement_version"] == 2 for f in seen.json()["facts"])
    assert seen.json()["identity"] is None  # version 2 no longer shares identity


# -- consent and the view ----------------------------------------------------------------------


def test_the_police_see_what_the_agreement_and_consent_allow_and_lose_it_on_withdrawal(
    api: TestClient, partnership: Partnership, treated: dict[str, Any]
) -> None:
    client_id, positions = treated["client_id"], treated["positions"]
    agreement_id = agree(api, partnership, police_terms())
    # An agreement that requires consent shows nothing without it: the client is unknown.
    assert view(api, partnership, client_id, "police", "offender_management").status_code == 404

    given = consent(api, partnership, client_id)
    response = view(api, partnership, client_id, "police", "offender_management",
                    position=given["position"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["position"] >= given["position"]
    assert body["identity"] == {"given_name": "Ann", "family_name": "Example"}
    shown = {f["position"]: f for f in body["facts"]}
    assert set(shown) == {positions["appointment"], positions["episode"], positions["order"]}
    # Masked to the fields the agreement shares: no substances, no end date of the order.
    assert shown[positions["episode"]]["data"] == {"modality": "pharmacological"}
    assert shown[positions["order"]]["data"] == {"order": "drug_rehabilitation_requirement",
                                                 "status": "compliant"}
    basis = shown[positions["order"]]["basis"]
    assert basis["kind"] == "agreement_and_consent"
    assert basis["agreement_id"] == agreement_id
    assert basis["consent_id"] == given["consent_id"]
    assert "Disclosed" not in response.text  # clinical notes are shared with nobody

    withdrawn = api.post(f"/v1/clients/{client_id}/consents/{given['consent_id']}/withdraw",
                         json={"reason": "client asked to stop sharing"},
                         headers=hdr(partnership, "tp"))
    assert withdrawn.status_code == 200, withdrawn.text
    after = view(api, partnership, client_id, "police", "offender_management",
                 position=withdrawn.json()["position"])
    assert after.status_code == 404
    listed = api.get(f"/v1/clients/{client_id}/consents", headers=hdr(partnership, "tp"))
    [record] = listed.json()
    assert record["active"] is False
    assert record["withdrawal_reason"] == "client asked to stop sharing"


def test_a_purpose_the_agreement_does_not_name_is_403_with_the_reason(
    api: TestClient, partnership: Partnership, treated: dict[str, Any]
) -> None:
    client_id = treated["client_id"]
    agree(api, partnership, police_terms())
    given = consent(api, partnership, client_id)
    refused = view(api, partnership, client_id, "police", "direct_care",
                   position=given["position"])
    assert refused.status_code == 403
    assert "direct_care" in refused.json()["detail"]
    unknown_purpose = view(api, partnership, client_id, "police", "curiosity")
    assert unknown_purpose.status_code == 422
    assert "purpose" in unknown_purpose.text


def test_no_basis_an_unknown_client_and_an_erased_client_are_the_same_404(
    api: TestClient, partnership: Partnership, treated: dict[str, Any]
) -> None:
    client_id = treated["client_id"]
    no_basis = view(api, partnership, client_id, "police", "offender_management")
    unknown = view(api, partnership, "00000000-0000-4000-8000-000000000000", "police",
                   "offender_management")
    agree(api, partnership, police_terms())
    given = consent(api, partnership, client_id)
    assert view(api, partnership, client_id, "police", "offender_management",
                position=given["position"]).status_code == 200
    accord = partnership.accord
    erasure = accord.app.erase_client(
        UUID(client_id), "subject asked for erasure",
        accord.app.authenticate(partnership.token("tp", Role.IG_LEAD)))
    erased = view(api, partnership, client_id, "police", "offender_management",
                  position=erasure)
    assert (no_basis.status_code, unknown.status_code, erased.status_code) == (404, 404, 404)
    assert no_basis.json() == unknown.json() == erased.json()


def test_a_consent_covers_only_its_period_of_data_and_lapses_when_it_expires(
    api: TestClient, partnership: Partnership
) -> None:
    client_id = register(api, partnership)
    agree(api, partnership, police_terms())
    old = post_fact(api, partnership, client_id, fact(occurred_at="2025-03-01T10:00:00Z"))
    recent = post_fact(api, partnership, client_id, fact(occurred_at="2026-02-01T10:00:00Z"))
    given = consent(api, partnership, client_id, data_from="2026-01-01", data_to=None,
                    categories=["treatment"])
    body = view(api, partnership, client_id, "police", "offender_management",
                position=given["position"]).json()
    assert [f["position"] for f in body["facts"]] == [recent]
    assert old not in [f["position"] for f in body["facts"]]
    listed = api.get(f"/v1/clients/{client_id}/consents", headers=hdr(partnership, "tp"))
    assert listed.json()[0]["data_from"] == "2026-01-01"

    # A second client whose consent has already expired shows nothing.
    other = register(api, partnership, identity={**VALID_IDENTITY, "nhs_number": "4010232137"})
    post_fact(api, partnership, other, fact())
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    lapsed = consent(api, partnership, other, expires_at=past)
    assert view(api, partnership, other, "police", "offender_management",
                position=lapsed["position"]).status_code == 404


def test_a_bad_consent_gets_422_and_records_nothing(
    api: TestClient, partnership: Partnership, treated: dict[str, Any]
) -> None:
    client_id = treated["client_id"]
    url = f"/v1/clients/{client_id}/consents"
    bad = [
        {"recipient_agency": "police", "categories": [], "purposes": ["offender_management"],
         "obtained": "written"},
        {"recipient_agency": "police", "categories": ["treatment"], "purposes": ["gossip"],
         "obtained": "written"},
        {"recipient_agency": "police", "categories": ["treatment"],
         "purposes": ["offender_management"], "obtained": "assumed"},
        {"recipient_agency": "police", "categories": ["treatment"],
         "purposes": ["offender_management"], "obtained": "written",
         "expires_at": "2027-01-01T00:00:00"},  # no time zone
    ]
    for body in bad:
        response = api.post(url, json=body, headers=hdr(partnership, "tp"))
        assert response.status_code == 422, body
    assert api.get(url, headers=hdr(partnership, "tp")).json() == []
    # Another agency's practitioner cannot record consent to share the provider's data.
    response = api.post(url, json={"recipient_agency": "police", "categories": ["treatment"],
                                   "purposes": ["offender_management"], "obtained": "written"},
                        headers=hdr(partnership, "police"))
    assert response.status_code == 404
    assert api.get(url, headers=hdr(partnership, "tp")).json() == []


# -- legal duty, revocation, partners contributing ---------------------------------------------


def test_a_legal_duty_shares_without_consent_and_revocation_removes_it(
    api: TestClient, partnership: Partnership
) -> None:
    client_id = register(api, partnership)
    household = post_fact(api, partnership, client_id, fact(
        "household_updated", {"children_in_household": 2, "parental_responsibility": True,
                              "pregnant": False}))
    agreement_id = agree(api, partnership, childrens_terms())
    assert household < partnership.accord.app.head_position()
    body = view(api, partnership, client_id, "childrens", "safeguarding_children",
                position=partnership.accord.app.head_position()).json()
    [shown] = body["facts"]
    assert shown["data"] == {"children_in_household": 2}
    assert shown["basis"]["kind"] == "legal_duty"
    assert shown["basis"]["legal_duty"] == LegalDuty.CHILDREN_ACT_S47.value
    assert body["identity"] is None  # the agreement does not share identity

    no_reason = api.post(f"/v1/agreements/{agreement_id}/revoke", json={},
                         headers=hdr(partnership, "childrens", Role.IG_LEAD))
    assert no_reason.status_code == 422
    revoked = api.post(f"/v1/agreements/{agreement_id}/revoke",
                       json={"reason": "superseded by the MASH agreement"},
                       headers=hdr(partnership, "childrens", Role.IG_LEAD))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    position = partnership.accord.app.head_position()
    assert view(api, partnership, client_id, "childrens", "safeguarding_children",
                position=position).status_code == 404


def test_an_agreement_past_its_valid_to_shares_nothing(
    api: TestClient, partnership: Partnership
) -> None:
    client_id = register(api, partnership)
    position = post_fact(api, partnership, client_id, fact(
        "household_updated", {"children_in_household": 1, "parental_responsibility": True,
                              "pregnant": False}))
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    agree(api, partnership, childrens_terms(valid_from="2024-04-01", valid_to=yesterday))
    listed = api.get("/v1/agreements", headers=hdr(partnership, "childrens", Role.IG_LEAD))
    assert listed.json()[0]["status"] == "out_of_date"
    assert listed.json()[0]["version_in_force"] == 1
    assert view(api, partnership, client_id, "childrens", "safeguarding_children",
                position=position).status_code == 404


def test_a_partner_with_a_basis_contributes_facts_it_then_controls(
    api: TestClient, partnership: Partnership
) -> None:
    client_id = register(api, partnership)
    post_fact(api, partnership, client_id, fact(
        "household_updated", {"children_in_household": 2, "parental_responsibility": True,
                              "pregnant": False}))
    # Without a basis the partner cannot write about the client either (same 404).
    plan = fact("child_protection_status_recorded",
                {"status": "child_protection_plan", "children": 2})
    refused = api.post(f"/v1/clients/{client_id}/events", json=plan,
                       headers=hdr(partnership, "childrens"))
    assert refused.status_code == 404
    agree(api, partnership, childrens_terms())
    assert view(api, partnership, client_id, "childrens", "safeguarding_children",
                position=partnership.accord.app.head_position()).status_code == 200
    contributed = post_fact(api, partnership, client_id, plan, agency="childrens")
    body = view(api, partnership, client_id, "childrens", "safeguarding_children",
                position=contributed).json()
    mine = [f for f in body["facts"] if f["position"] == contributed]
    assert mine and mine[0]["controller"] == "childrens"
    assert mine[0]["basis"]["kind"] == "controller"
    assert mine[0]["data"] == {"status": "child_protection_plan", "children": 2}
    # The provider has no agreement with children's services in that direction: its own
    # record does not include the partner's fact.
    record = api.get(f"/v1/clients/{client_id}/record", headers=hdr(partnership, "tp"))
    assert [f["controller"] for f in record.json()["facts"]] == ["tp"]


# -- match -------------------------------------------------------------------------------------


def test_match_finds_a_client_only_with_a_basis_for_the_purpose(
    api: TestClient, partnership: Partnership, treated: dict[str, Any]
) -> None:
    client_id = treated["client_id"]
    police = hdr(partnership, "police")
    by_nhs = {"purpose": "offender_management", "nhs_number": "943 476 5919"}
    by_name = {"purpose": "offender_management", "family_name": "EXAMPLE",
               "date_of_birth": "1985-04-12"}
    nobody = {"purpose": "offender_management", "nhs_number": "4010232137"}
    before = api.post("/v1/clients/match", json=by_nhs, headers=police)
    missing = api.post("/v1/clients/match", json=nobody, headers=police)
    assert before.status_code == missing.status_code == 404
    assert before.json() == missing.json()

    agree(api, partnership, police_terms())
    given = consent(api, partnership, client_id)
    view(api, partnership, client_id, "police", "offender_management",
         position=given["position"])
    for body in (by_nhs, by_name):
        found = api.post("/v1/clients/match", json=body, headers=police)
        assert found.status_code == 200, found.text
        assert found.json() == {"client_id": client_id}
    other_purpose = api.post("/v1/clients/match", json={**by_nhs, "purpose": "direct_care"},
                             headers=police)
    assert other_purpose.status_code == 404
    # An agency without any agreement still cannot tell the person is a client.
    assert api.post("/v1/clients/match", json={**by_nhs, "purpose": "safeguarding_children"},
                    headers=hdr(partnership, "childrens")).status_code == 404


def test_a_match_needs_an_nhs_number_or_name_and_date_of_birth(
    api: TestClient, partnership: Partnership
) -> None:
    police = hdr(partnership, "police")
    for body in ({"purpose": "offender_management"},
                 {"purpose": "offender_management", "family_name": "Example"},
                 {"purpose": "offender_management", "nhs_number": "943 476 5918"},
                 {"nhs_number": "943 476 5919"}):
        response = api.post("/v1/clients/match", json=body, headers=police)
        assert response.status_code == 422, body
