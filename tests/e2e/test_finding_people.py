"""Finding people and reading a client through the HTTP API, on both databases: a
treatment provider's caseload, a partner's cohort for a purpose, the typo-tolerant name
search, and a client's chronology with its summary.

Each answer is checked against the same rules as a client's view: nobody is listed or
found without a basis, names only where a share of identity names them, another agency's
clients never, every listing and search on the access record (each client listed among
its disclosures), never with the search terms.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from api.bootstrap import Accord
from domain.agencies import Role
from domain.application import OPERATOR
from tests.builders import (
    ACCESS_TOPIC,
    VALID_IDENTITY,
    Partnership,
    access_records,
    agree,
    childrens_terms,
    consent,
    events,
    fact,
    hdr,
    nhs_number,
    police_terms,
    post_fact,
    register,
    settle,
)

STARTED = "treatment_episode_started"


def person(seq: int, family_name: str, date_of_birth: str = "1985-04-12",
           given_name: str = "Ann") -> dict[str, str]:
    return {**VALID_IDENTITY, "nhs_number": nhs_number(seq), "family_name": family_name,
            "date_of_birth": date_of_birth, "given_name": given_name}


def start(api: TestClient, partnership: Partnership, client_id: str, when: str,
          key_worker: str | None = None, modality: str = "pharmacological",
          agency: str = "tp") -> int:
    data: dict[str, Any] = {"modality": modality, "substances": ["opioids"]}
    if key_worker:
        data["key_worker"] = key_worker
    return post_fact(api, partnership, client_id, fact(STARTED, data, when), agency)


def listing(api: TestClient, partnership: Partnership, agency: str = "tp",
            role: Role = Role.PRACTITIONER, **params: Any) -> Any:
    settle(api)
    return api.get("/v1/clients", params=params, headers=hdr(partnership, agency, role))


def search(api: TestClient, partnership: Partnership, family_name: str,
           date_of_birth: str = "1985-04-12", agency: str = "tp",
           purpose: str | None = "direct_care", role: Role = Role.PRACTITIONER) -> Any:
    settle(api)
    body = {"family_name": family_name, "date_of_birth": date_of_birth,
            **({"purpose": purpose} if purpose else {})}
    return api.post("/v1/clients/search", json=body, headers=hdr(partnership, agency, role))


def disclosed(api: TestClient, partnership: Partnership, client_id: str) -> list[Any]:
    response = api.get(f"/v1/clients/{client_id}/disclosures",
                       headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert response.status_code == 200, response.text
    result: list[Any] = response.json()
    return result


# -- a treatment provider's caseload -------------------------------------------------------


def test_the_caseload_is_the_providers_clients_in_treatment_paged(
    api: TestClient, partnership: Partnership, accord: Accord
) -> None:
    ann = register(api, partnership, identity=person(1, "Smith"))
    bob = register(api, partnership, identity=person(2, "Jones", given_name="Bob"))
    ended = register(api, partnership, identity=person(3, "Taylor"))
    discharged = register(api, partnership, identity=person(4, "Brown"))
    never = register(api, partnership, identity=person(5, "Green"))
    elsewhere = register(api, partnership, "tp2", identity=person(6, "Hall"))
    start(api, partnership, ann, "2026-01-05T09:00:00Z", "Sam Okafor")
    start(api, partnership, bob, "2026-02-05T09:00:00Z", "Lucy Grant", "psychosocial")
    start(api, partnership, ended, "2026-01-10T09:00:00Z")
    post_fact(api, partnership, ended, fact("treatment_episode_ended", {
        "modality": "pharmacological", "discharge_reason": "completed_drug_free"},
        "2026-03-01T09:00:00Z"))
    start(api, partnership, discharged, "2026-01-10T09:00:00Z")
    post_fact(api, partnership, discharged, fact("discharged", {"reason": "dropped_out"},
                                                 "2026-03-01T09:00:00Z"))
    post_fact(api, partnership, never, fact())  # attended, but never in treatment
    start(api, partnership, elsewhere, "2026-03-05T09:00:00Z", agency="tp2")

    first = listing(api, partnership, limit=1)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["kind"], body["agency"], body["purpose"]) == ("caseload", "tp", None)
    assert (body["total"], body["limit"], body["offset"], body["next_offset"]) == (2, 1, 0, 1)
    [latest] = body["clients"]  # the latest started first
    assert latest["client_id"] == bob
    assert latest["identity"] == {"given_name": "Bob", "family_name": "Jones",
                                  "date_of_birth": "1985-04-12"}
    assert (latest["modality"], latest["modalities"], latest["key_worker"]) == (
        "psychosocial", ["psychosocial"], "Lucy Grant")
    assert latest["episode_started"].startswith("2026-02-05T09:00")
    second = listing(api, partnership, limit=1, offset=1).json()
    assert [c["client_id"] for c in second["clients"]] == [ann]
    assert second["clients"][0]["key_worker"] == "Sam Okafor"
    assert second["next_offset"] is None
    assert listing(api, partnership, offset=5).json()["clients"] == []

    # The other provider's caseload is its own client alone, never tp's.
    other = listing(api, partnership, "tp2").json()
    assert [c["client_id"] for c in other["clients"]] == [elsewhere]
    assert {ann, bob, ended, discharged, never}.isdisjoint(json.dumps(other))

    # Each listing is recorded, naming the clients listed (none: still recorded).
    reads = [r for r in events(accord, ACCESS_TOPIC) if r.action == "list_clients"]
    assert [[str(c) for c in r.client_ids] for r in reads] == [[bob], [ann], [], [elsewhere]]
    assert all(r.outcome == "returned" and r.purpose is None for r in reads)


def test_a_caseload_needs_a_treatment_provider_and_pages_are_checked(
    api: TestClient, partnership: Partnership, accord: Accord
) -> None:
    before = access_records(accord)
    for agency, params, field in (
            ("police", {}, "purpose"),  # only a treatment provider has a caseload
            ("tp", {"limit": 0}, "limit"), ("tp", {"limit": 101}, "limit"),
            ("tp", {"offset": -1}, "offset"), ("tp", {"limit": "ten"}, "limit"),
            ("tp", {"purpose": "curiosity"}, "purpose")):
        response = listing(api, partnership, agency, **params)
        assert response.status_code == 422, (agency, params, response.text)
        assert field in json.dumps(response.json()["errors"]), response.text
    for role in (Role.IG_LEAD, Role.ADMIN, Role.PARTNERSHIP_ADMIN):
        assert listing(api, partnership, "tp", role).status_code == 403
    assert listing(api, partnership, "commissioner", Role.COMMISSIONER,
                   purpose="commissioning").status_code == 403
    assert access_records(accord) == before  # bad input and the table's refusals: no read


# -- a partner's cohort ---------------------------------------------------------------------


def test_a_partners_cohort_is_who_its_view_shows_for_the_purpose(
    api: TestClient, partnership: Partnership, accord: Accord
) -> None:
    consented = register(api, partnership, identity=person(1, "Smith"))
    unconsented = register(api, partnership, identity=person(2, "Jones"))
    for client_id in (consented, unconsented):
        start(api, partnership, client_id, "2026-01-05T09:00:00Z")
    other_providers = register(api, partnership, "tp2", identity=person(3, "Hall"))
    start(api, partnership, other_providers, "2026-01-05T09:00:00Z", agency="tp2")

    # Before any agreement the police may see nobody, for any purpose.
    nobody = listing(api, partnership, "police", purpose="offender_management")
    assert nobody.status_code == 200
    assert (nobody.json()["total"], nobody.json()["clients"]) == (0, [])

    agree(api, partnership, police_terms())  # identity (names), treatment; with consent
    consent(api, partnership, consented)
    agree(api, partnership, childrens_terms())  # a legal duty: treatment, no identity
    police = listing(api, partnership, "police", purpose="offender_management").json()
    assert (police["kind"], police["total"]) == ("cohort", 1)
    [entry] = police["clients"]
    assert entry["client_id"] == consented
    # Only the identity fields the agreement names: no date of birth.
    assert entry["identity"] == {"given_name": "Ann", "family_name": "Smith"}
    assert entry["controllers"] == ["tp"]
    assert entry["latest"].startswith("2026-01-05T09:00")
    # Another purpose: the agreement names only offender management.
    assert listing(api, partnership, "police", purpose="direct_care").json()["total"] == 0

    # Children's services see both of tp's clients under the legal duty, unnamed (the
    # agreement shares no identity), and never the other provider's.
    childrens = listing(api, partnership, "childrens", Role.SAFEGUARDING,
                        purpose="safeguarding_children").json()
    assert {c["client_id"] for c in childrens["clients"]} == {consented, unconsented}
    assert all(c["identity"] is None for c in childrens["clients"])
    assert "Smith" not in json.dumps(childrens) and "Jones" not in json.dumps(childrens)
    # The provider's own cohort: every client it registered or recorded about.
    own = listing(api, partnership, "tp", purpose="direct_care").json()
    assert {c["client_id"] for c in own["clients"]} == {consented, unconsented}
    assert other_providers not in json.dumps(own)

    # Each listed client finds the listing among its disclosures, with what it showed.
    [police_listing] = [d for d in disclosed(api, partnership, consented)
                        if d["action"] == "list_clients" and d["recipient"] == "police"]
    assert police_listing["purpose"] == "offender_management"
    assert {i["category"] for i in police_listing["items"]} == {"identity", "listing"}
    assert {i["client_id"] for i in police_listing["items"]} == {consented}
    childrens_disclosures = [d for d in disclosed(api, partnership, unconsented)
                             if d["action"] == "list_clients"]
    assert [d["recipient"] for d in childrens_disclosures] == ["childrens"]
    assert {i["category"] for i in childrens_disclosures[0]["items"]} == {"listing"}
    assert [d for d in disclosed(api, partnership, unconsented)
            if d["recipient"] == "police"] == []


def test_a_cohort_pages_in_order_of_the_latest_fact_seen(
    api: TestClient, partnership: Partnership
) -> None:
    clients = [register(api, partnership, identity=person(i, f"Person{'abcdef'[i]}"))
               for i in range(5)]
    for day, client_id in enumerate(clients, start=1):
        post_fact(api, partnership, client_id, fact(occurred_at=f"2026-01-0{day}T09:00:00Z"))
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = listing(api, partnership, "tp", purpose="direct_care", limit=2,
                       offset=offset).json()
        assert page["total"] == 5
        seen += [c["client_id"] for c in page["clients"]]
        offset = page["next_offset"]
    assert seen == list(reversed(clients))  # the latest recorded first, none twice


# -- the name search --------------------------------------------------------------------------


def test_a_search_forgives_typos_and_half_names_and_lists_the_candidates(
    api: TestClient, partnership: Partnership, accord: Accord
) -> None:
    smith = register(api, partnership, identity=person(1, "Smith"))
    smyth = register(api, partnership, identity=person(2, "Smyth", given_name="Sue"))
    obrien = register(api, partnership, identity=person(3, "O'Brien-Kowalski"))
    register(api, partnership, identity=person(4, "Smith", "1990-01-01"))  # another day
    register(api, partnership, "tp2", identity=person(5, "Smith"))  # another provider's

    exact = search(api, partnership, "SMITH")
    assert exact.status_code == 200, exact.text
    candidates = exact.json()["candidates"]
    assert [(c["client_id"], c["closeness"], c["edits"]) for c in candidates] == [
        (smith, "exact", 0), (smyth, "similar", 1)]
    assert candidates[0]["identity"] == {"given_name": "Ann", "family_name": "Smith",
                                         "date_of_birth": "1985-04-12"}
    partial = search(api, partnership, "sm").json()["candidates"]
    assert [(c["client_id"], c["closeness"]) for c in partial] == [
        (smith, "partial"), (smyth, "partial")]
    for typed in ("obrien", "O Brien", "Kowalsky", "brien"):  # a part, a typo, punctuation
        found = search(api, partnership, typed)
        assert found.status_code == 200, typed
        assert [c["client_id"] for c in found.json()["candidates"]] == [obrien], typed
    # Too far off, a short name with a typo, or the wrong day: the no-match answer.
    for typed, born in (("Smoth-Jonas", "1985-04-12"), ("Smi", "1985-04-13"),
                        ("Smith", "1985-04-13")):
        assert search(api, partnership, typed, born).status_code == 404
    typo = search(api, partnership, "Smiht").json()["candidates"]  # two letters swapped
    assert [(c["client_id"], c["closeness"], c["edits"]) for c in typo] == [
        (smith, "similar", 1)]
    assert search(api, partnership, "Smu").status_code == 404  # too short to forgive

    # The exact match keeps its contract.
    matched = api.post("/v1/clients/match", json={
        "purpose": "direct_care", "family_name": "Smyth", "date_of_birth": "1985-04-12"},
        headers=hdr(partnership, "tp"))
    assert matched.status_code == 200 and matched.json() == {"client_id": smyth}

    # Every search is recorded, the candidates named, never what was searched for.
    searches = [r for r in events(accord, ACCESS_TOPIC) if r.detail == "name search"]
    assert [r.outcome for r in searches][:2] == ["returned", "returned"]
    assert {str(c) for c in searches[0].client_ids} == {smith, smyth}
    assert all(r.action == "match" for r in searches)
    recorded = json.dumps([r.__dict__ for r in searches], default=str)
    for term in ("SMITH", "Smith", "Kowalsky", "obrien", "1985-04-12", "1985-04-13"):
        assert term not in recorded


def test_a_partner_without_basis_is_told_no_more_than_about_an_unknown_person(
    api: TestClient, partnership: Partnership, accord: Accord
) -> None:
    consented = register(api, partnership, identity=person(1, "Smith"))
    hidden = register(api, partnership, identity=person(2, "Smyth"))
    for client_id in (consented, hidden):
        start(api, partnership, client_id, "2026-01-05T09:00:00Z")
    no_agreement = search(api, partnership, "Smith", agency="police", purpose="offender_management")
    unknown = search(api, partnership, "Nobody", agency="police", purpose="offender_management")
    assert no_agreement.status_code == unknown.status_code == 404
    assert no_agreement.content == unknown.content
    before = access_records(accord)
    agree(api, partnership, police_terms())
    consent(api, partnership, consented)
    found = search(api, partnership, "Smith", agency="police", purpose="offender_management")
    # Smyth is a typo away, but the police have no basis to know who they are: even
    # asked for by their exact name, only the client they may see (a typo away) is found.
    assert [c["client_id"] for c in found.json()["candidates"]] == [consented]
    assert found.json()["candidates"][0]["identity"] == {"given_name": "Ann",
                                                         "family_name": "Smith"}
    asked_for_hidden = search(api, partnership, "Smyth", agency="police",
                              purpose="offender_management").json()["candidates"]
    assert [(c["client_id"], c["closeness"]) for c in asked_for_hidden] == [
        (consented, "similar")]
    assert hidden not in json.dumps(asked_for_hidden)
    assert search(api, partnership, "Smith", agency="police",
                  purpose="direct_care").content == unknown.content
    # Children's services see the clients under a legal duty, but not who they are.
    agree(api, partnership, childrens_terms())
    assert search(api, partnership, "Smith", agency="childrens",
                  purpose="safeguarding_children",
                  role=Role.SAFEGUARDING).content == unknown.content
    records = [r for r in events(accord, ACCESS_TOPIC)][before:]
    assert [r.outcome for r in records if r.detail == "name search"] == [
        "returned", "returned", "no_match", "no_match"]
    # An IG lead finds its own agency's clients without a purpose; another's: no match.
    assert search(api, partnership, "Smith", purpose=None,
                  role=Role.IG_LEAD).status_code == 200
    assert search(api, partnership, "Smith", agency="police", purpose=None,
                  role=Role.IG_LEAD).content == unknown.content
    assert search(api, partnership, "Smith", purpose=None).status_code == 422


def test_a_search_checks_its_input(api: TestClient, partnership: Partnership) -> None:
    for body in ({"purpose": "direct_care", "family_name": "Smith"},
                 {"purpose": "direct_care", "date_of_birth": "1985-04-12"},
                 {"purpose": "direct_care", "family_name": "  ",
                  "date_of_birth": "1985-04-12"},
                 {"purpose": "direct_care", "family_name": "-'-",
                  "date_of_birth": "1985-04-12"},
                 {"purpose": "direct_care", "family_name": "Smith",
                  "date_of_birth": "12/04/1985"}):
        response = api.post("/v1/clients/search", json=body, headers=hdr(partnership, "tp"))
        assert response.status_code == 422, body


# -- a chronology and its summary ----------------------------------------------------------------


def test_a_chronology_sorts_what_the_caller_sees_and_sums_it_up(
    api: TestClient, partnership: Partnership, accord: Accord
) -> None:
    accord.app.record_agency_contact("tp", "Duty worker, 01632 960 101", OPERATOR)
    client_id = register(api, partnership)
    later = post_fact(api, partnership, client_id, fact(occurred_at="2026-02-01T09:00:00Z"))
    episode = start(api, partnership, client_id, "2026-01-02T09:00:00Z", "Sam Okafor")
    for when, change, dose in (("2026-01-03T09:00:00Z", "started", 30.0),
                               ("2026-01-20T09:00:00Z", "increased", 60.0)):
        post_fact(api, partnership, client_id, fact("prescription_changed", {
            "medication": "methadone", "change": change, "daily_dose_mg": dose,
            "supervised_consumption": True}, when))
    post_fact(api, partnership, client_id, fact("prescription_changed", {
        "medication": "naltrexone", "change": "stopped", "daily_dose_mg": 0,
        "supervised_consumption": False}, "2026-01-21T09:00:00Z"))
    for order, status, ends in (("drug_rehabilitation_requirement", "compliant", "2099-01-01"),
                                ("licence", "ended", None),
                                ("community_order", "started", "2020-01-01")):
        post_fact(api, partnership, client_id, fact("criminal_justice_status", {
            "order": order, "status": status, **({"ends_on": ends} if ends else {})},
            "2026-01-04T09:00:00Z"))
    post_fact(api, partnership, client_id, fact(
        "clinical_note_added", {"text": "Disclosed a relapse in confidence."},
        "2026-01-06T09:00:00Z"))

    settle(api)
    response = api.get(f"/v1/clients/{client_id}/chronology",
                       params={"purpose": "direct_care"}, headers=hdr(partnership, "tp"))
    assert response.status_code == 200, response.text
    body = response.json()
    happened = [f["occurred_at"] for f in body["facts"]]
    assert happened == sorted(happened) and body["facts"][-1]["position"] == later
    assert body["identity"]["family_name"] == "Example"
    recorder = body["facts"][0]["recorded_by"]
    assert (recorder["name"], recorder["agency"], recorder["role"]) == (
        "tp practitioner", "tp", "practitioner")
    summary = body["summary"]
    assert (summary["in_treatment"], summary["modalities"], summary["key_worker"]) == (
        True, ["pharmacological"], "Sam Okafor")
    assert summary["episode_started"].startswith("2026-01-02T09:00")
    [methadone] = summary["prescriptions"]
    assert (methadone["medication"], methadone["change"], methadone["daily_dose_mg"]) == (
        "methadone", "increased", 60.0)
    assert [o["order"] for o in summary["orders"]] == ["drug_rehabilitation_requirement"]
    assert summary["last_attended"]["position"] == later
    assert summary["open_alerts"] is None  # a practitioner does not read alerts
    assert summary["provider"] == {"agency": "tp", "name": "Tp",
                                   "contact": "Duty worker, 01632 960 101"}
    assert any(f["position"] == episode for f in body["facts"])

    prescribing = api.get(f"/v1/clients/{client_id}/chronology",
                          params={"purpose": "direct_care", "category": "prescribing"},
                          headers=hdr(partnership, "tp", Role.SAFEGUARDING)).json()
    assert {f["category"] for f in prescribing["facts"]} == {"prescribing"}
    assert prescribing["summary"]["in_treatment"] is True  # the summary reads everything
    assert prescribing["summary"]["open_alerts"] == 0
    bad = api.get(f"/v1/clients/{client_id}/chronology",
                  params={"purpose": "direct_care", "category": "gossip"},
                  headers=hdr(partnership, "tp"))
    assert bad.status_code == 422 and "category" in bad.text


def test_a_partners_chronology_shows_and_sums_up_only_what_it_may_see(
    api: TestClient, partnership: Partnership, accord: Accord
) -> None:
    client_id = register(api, partnership)
    start(api, partnership, client_id, "2026-01-02T09:00:00Z", "Sam Okafor")
    post_fact(api, partnership, client_id, fact("prescription_changed", {
        "medication": "methadone", "change": "started", "daily_dose_mg": 30.0,
        "supervised_consumption": True}, "2026-01-03T09:00:00Z"))
    post_fact(api, partnership, client_id, fact("criminal_justice_status", {
        "order": "drug_rehabilitation_requirement", "status": "compliant",
        "ends_on": "2020-01-01"}, "2026-01-04T09:00:00Z"))

    def police_chronology(purpose: str = "offender_management") -> Any:
        settle(api)
        return api.get(f"/v1/clients/{client_id}/chronology", params={"purpose": purpose},
                       headers=hdr(partnership, "police"))

    unknown = api.get("/v1/clients/00000000-0000-4000-8000-000000000000/chronology",
                      params={"purpose": "offender_management"},
                      headers=hdr(partnership, "police"))
    hidden = police_chronology()
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.content == unknown.content
    agree(api, partnership, police_terms())
    consent(api, partnership, client_id)
    response = police_chronology()
    assert response.status_code == 200, response.text
    body = response.json()
    assert {f["type"] for f in body["facts"]} == {STARTED, "criminal_justice_status"}
    summary = body["summary"]
    # The modality is shared, the key worker and the prescription are not; the order's
    # end date is masked, so the order reads as in force (as far as the police can tell).
    assert (summary["in_treatment"], summary["modalities"], summary["key_worker"]) == (
        True, ["pharmacological"], None)
    assert summary["prescriptions"] == []
    assert [(o["order"], o["status"]) for o in summary["orders"]] == [
        ("drug_rehabilitation_requirement", "compliant")]
    assert summary["provider"]["agency"] == "tp"
    assert "Sam Okafor" not in response.text and "methadone" not in response.text
    assert police_chronology("direct_care").status_code == 403
    # The read is on the record as a view, naming exactly what was shown.
    [read] = [r for r in events(accord, ACCESS_TOPIC)
              if r.agency == "police" and r.detail == "chronology" and r.outcome == "returned"]
    assert (read.action, read.client_id) == ("view", UUID(client_id))
    assert {i["category"] for i in read.returned} == {"identity", "treatment",
                                                      "criminal_justice"}
    refused = api.get(f"/v1/clients/{client_id}/chronology",
                      params={"purpose": "commissioning"},
                      headers=hdr(partnership, "commissioner", Role.COMMISSIONER))
    assert refused.status_code == 403


def test_agencies_carry_a_contact(api: TestClient, partnership: Partnership) -> None:
    admin = hdr(partnership, "commissioner", Role.PARTNERSHIP_ADMIN)
    created = api.post("/v1/agencies", json={"id": "housing", "name": "Housing Options",
                                             "kind": "housing", "contact": "01632 960 707"},
                       headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["contact"] == "01632 960 707"
    listed = {a["id"]: a for a in api.get("/v1/agencies", headers=admin).json()}
    assert listed["housing"]["contact"] == "01632 960 707"
    assert listed["police"]["contact"] is None
    assert api.post("/v1/agencies", json={"id": "other", "name": "Other", "kind": "housing",
                                          "contact": " \u200b "},
                    headers=admin).status_code == 422
