"""Accountability through the API: every read recorded, the access audit, disclosures
for subject access requests, and point-in-time replay; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from domain.agencies import Role
from domain.application import AccordApplication
from tests.builders import (
    Partnership,
    access_records,
    agree,
    consent,
    fact,
    hdr,
    police_terms,
    post_fact,
    register,
    view,
)


@pytest.fixture
def shared(api: TestClient, partnership: Partnership) -> dict[str, Any]:
    """A client whose engagement the police see with consent, and a clinical note."""
    client_id = register(api, partnership)
    appointment = post_fact(api, partnership, client_id, fact())
    note = post_fact(api, partnership, client_id, fact(
        "clinical_note_added", {"text": "Disclosed a relapse in confidence."}))
    agreement_id = agree(api, partnership, police_terms())
    given = consent(api, partnership, client_id)
    return {"client_id": client_id, "appointment": appointment, "note": note,
            "agreement_id": agreement_id, "consent": given}


def accesses(api: TestClient, partnership: Partnership, caller: str,
             **params: Any) -> list[dict[str, Any]]:
    response = api.get("/v1/audit/accesses", params=params,
                       headers=hdr(partnership, caller, Role.IG_LEAD))
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def test_a_partners_read_is_on_the_record_for_both_ig_leads_and_nobody_else(
    api: TestClient, partnership: Partnership, shared: dict[str, Any]
) -> None:
    client_id = shared["client_id"]
    seen = view(api, partnership, client_id, "police", "offender_management",
                position=shared["consent"]["position"])
    assert seen.status_code == 200
    [read] = [a for a in accesses(api, partnership, "tp", client_id=client_id)
              if a["agency"] == "police"]
    assert read["action"] == "view" and read["outcome"] == "returned"
    assert read["purpose"] == "offender_management" and read["role"] == "practitioner"
    assert {i["position"] for i in read["returned"] if i["category"] != "identity"} == {
        shared["appointment"]}
    assert all(i["basis"]["kind"] == "agreement_and_consent" for i in read["returned"])
    assert all(i["basis"]["consent_id"] == shared["consent"]["consent_id"]
               for i in read["returned"])
    # The police IG lead sees the same read as one of their own staff's.
    [own] = [a for a in accesses(api, partnership, "police") if a["action"] == "view"]
    assert own["access_id"] == read["access_id"]
    # Children's services neither made the read nor control the data.
    assert accesses(api, partnership, "childrens", client_id=client_id) == []


def test_refused_reads_and_matches_that_found_nothing_are_recorded_without_search_terms(
    api: TestClient, partnership: Partnership, shared: dict[str, Any]
) -> None:
    police = hdr(partnership, "police")
    missing = api.post("/v1/clients/match", json={"purpose": "offender_management",
                                                  "nhs_number": "4010232137"}, headers=police)
    assert missing.status_code == 404
    refused = view(api, partnership, shared["client_id"], "childrens",
                   "safeguarding_children")
    assert refused.status_code == 404
    mine = accesses(api, partnership, "police")
    [no_match] = [a for a in mine if a["action"] == "match"]
    assert no_match["outcome"] == "no_match" and no_match["client_id"] is None
    assert "4010232137" not in str(mine)
    [denied] = [a for a in accesses(api, partnership, "childrens") if a["action"] == "view"]
    assert denied["outcome"] == "not_found" and denied["returned"] == []


def test_filters_narrow_the_audit_by_agency_principal_and_time(
    api: TestClient, partnership: Partnership, shared: dict[str, Any]
) -> None:
    client_id = shared["client_id"]
    view(api, partnership, client_id, "police", "offender_management",
         position=shared["consent"]["position"])
    api.get(f"/v1/clients/{client_id}/record", headers=hdr(partnership, "tp"))
    everything = accesses(api, partnership, "tp", client_id=client_id)
    assert {a["agency"] for a in everything} == {"tp", "police"}
    assert [a["position"] for a in everything] == sorted(
        (a["position"] for a in everything), reverse=True)
    assert {a["agency"] for a in accesses(api, partnership, "tp", agency="police")} == {
        "police"}
    principal = everything[0]["principal"]
    assert {a["principal"] for a in accesses(api, partnership, "tp",
                                             principal=principal)} == {principal}
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert accesses(api, partnership, "tp", **{"from": later}) == []
    bad = api.get("/v1/audit/accesses", params={"from": "2026-01-02T00:00:00Z",
                                                 "to": "2026-01-01T00:00:00Z"},
                  headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert bad.status_code == 422 and "to" in bad.text
    naive = api.get("/v1/audit/accesses", params={"from": "2026-01-02T00:00:00"},
                    headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert naive.status_code == 422


def test_disclosures_list_what_went_to_whom_for_a_subject_access_request(
    api: TestClient, partnership: Partnership, shared: dict[str, Any]
) -> None:
    client_id = shared["client_id"]
    view(api, partnership, client_id, "police", "offender_management",
         position=shared["consent"]["position"])
    api.get(f"/v1/clients/{client_id}/record", headers=hdr(partnership, "tp"))
    response = api.get(f"/v1/clients/{client_id}/disclosures",
                       headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert response.status_code == 200, response.text
    [disclosure] = response.json()  # the provider's own reads are not disclosures
    assert disclosure["recipient"] == "police"
    assert disclosure["purpose"] == "offender_management"
    assert {i["basis"]["agreement_id"] for i in disclosure["items"]} == {
        shared["agreement_id"]}
    other = api.get(f"/v1/clients/{client_id}/disclosures",
                    headers=hdr(partnership, "police", Role.IG_LEAD))
    assert other.status_code == 404


def test_a_read_whose_access_record_cannot_be_written_returns_nothing(
    api: TestClient, client: TestClient, partnership: Partnership, shared: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fault injection: the event store refuses the access record (e.g. the database
    fails at that moment). The caller gets 503 and none of the client's data."""
    client_id = shared["client_id"]
    view(api, partnership, client_id, "police", "offender_management",
         position=shared["consent"]["position"])
    before = access_records(partnership.accord)

    def fail(*_: Any, **__: Any) -> int:
        raise OSError("disk I/O error")

    monkeypatch.setattr(AccordApplication, "record_access", fail)
    client.event_hooks["response"].clear()  # 503 is the expected answer here
    for url, agency in ((f"/v1/clients/{client_id}/record", "tp"),
                        (f"/v1/clients/{client_id}/view?purpose=offender_management",
                         "police")):
        response = client.get(url, headers=hdr(partnership, agency))
        assert response.status_code == 503, response.text
        assert "could not be recorded" in response.json()["detail"]
        assert "Example" not in response.text and "keywork" not in response.text
    monkeypatch.undo()
    assert access_records(partnership.accord) == before


# -- point-in-time replay --------------------------------------------------------------------


def replay(api: TestClient, partnership: Partnership, caller: str, client_id: str,
           at: str | int | None = None, agency: str = "police",
           purpose: str = "offender_management") -> Any:
    params: dict[str, Any] = {"agency": agency, "client_id": client_id, "purpose": purpose}
    if at is not None:
        params["at"] = str(at)
    return api.get("/v1/audit/replay", params=params,
                   headers=hdr(partnership, caller, Role.IG_LEAD))


def test_replay_shows_facts_under_consent_before_a_withdrawal_and_withheld_after(
    api: TestClient, partnership: Partnership, shared: dict[str, Any]
) -> None:
    client_id = shared["client_id"]
    consented = shared["consent"]["position"]
    withdrawn = api.post(
        f"/v1/clients/{client_id}/consents/{shared['consent']['consent_id']}/withdraw",
        json={"reason": "client asked to stop"}, headers=hdr(partnership, "tp"),
    ).json()["position"]

    before = replay(api, partnership, "tp", client_id, at=consented)
    assert before.status_code == 200, before.text
    body = before.json()
    assert body["position"] == consented
    permitted = {f["position"]: f for f in body["permitted"]}
    assert shared["appointment"] in permitted
    assert permitted[shared["appointment"]]["basis"]["consent_id"] == \
        shared["consent"]["consent_id"]
    withheld = {f["position"]: f for f in body["withheld"]}
    assert any("does not share clinical_notes" in r for r in withheld[shared["note"]]["reasons"])

    after = replay(api, partnership, "tp", client_id, at=withdrawn).json()
    assert after["permitted"] == []
    reasons = {f["position"]: " ".join(f["reasons"]) for f in after["withheld"]}
    assert "was withdrawn" in reasons[shared["appointment"]]

    # The police IG lead sees what the police could see then, and nothing now.
    theirs = replay(api, partnership, "police", client_id, at=consented).json()
    assert {f["position"] for f in theirs["permitted"]} == set(permitted)
    assert theirs["withheld"] == []  # never another agency's withheld facts
    assert replay(api, partnership, "police", client_id).status_code == 404


def test_replay_by_timestamp_and_its_bad_inputs(
    api: TestClient, partnership: Partnership, shared: dict[str, Any]
) -> None:
    client_id = shared["client_id"]
    long_ago = replay(api, partnership, "tp", client_id, at="2020-01-01T00:00:00Z")
    assert long_ago.status_code == 200
    assert long_ago.json()["permitted"] == long_ago.json()["withheld"] == []
    now = datetime.now(UTC).isoformat()
    current = replay(api, partnership, "tp", client_id, at=now).json()
    assert shared["appointment"] in {f["position"] for f in current["permitted"]}
    for bad in ("yesterday", "2026-01-01T00:00:00", "0"):
        response = replay(api, partnership, "tp", client_id, at=bad)
        assert response.status_code == 422, bad
        assert response.json()["errors"][0]["field"] == "at"
    assert replay(api, partnership, "tp", client_id, agency="nobody").status_code == 404
    # Not the controller and not the agency replayed: the same 404 as for nobody.
    outsider = replay(api, partnership, "childrens", client_id)
    unknown = replay(api, partnership, "childrens", "00000000-0000-4000-8000-000000000000")
    assert outsider.status_code == unknown.status_code == 404
    assert outsider.json() == unknown.json()


def test_replays_are_themselves_recorded(
    api: TestClient, partnership: Partnership, shared: dict[str, Any]
) -> None:
    client_id = shared["client_id"]
    replay(api, partnership, "tp", client_id)
    [record] = [a for a in accesses(api, partnership, "tp", client_id=client_id)
                if a["action"] == "replay"]
    assert record["subject_agency"] == "police"
    assert record["role"] == "ig_lead"
