"""Erasure, its legal hold, safeguarding retention and restriction, through the API.

Erasure is refused (409, saying why, changing nothing) under a legal hold, while a
safeguarding alert about the client is open and while a child protection status recorded
about the client is in force; otherwise the registering controller's IG lead erases, and
anyone else is refused as for an unknown client (on the record as an attempt). A
restriction (UK GDPR Art. 18) hides the client from every partner (view 404, match and
search no match, cohort without them, the feed saying each fact left) until lifted; the
controller's own reads then state a legal claim, recorded with each read. Both databases.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.bootstrap import Accord
from api.cli import main
from domain.agencies import Role
from infra.settings import Settings
from tests.builders import (
    SHARED,
    VALID_IDENTITY,
    Partnership,
    Story,
    access_records,
    agree,
    changes,
    concern_raised,
    fact,
    hdr,
    inbox,
    post_fact,
    registered,
    settle,
)

IG = Role.IG_LEAD
REASON = {"reason": "The client asked in writing to be forgotten."}
CLAIM = "Defence of claim KB-2026-000123 brought against the service"
#: The police see the client's name and housing status for care coordination.
POLICE_TERMS = {
    "recipient": "police", "title": "Housing status for care coordination",
    "purposes": ["care_coordination"],
    "categories": {"identity": ["given_name", "family_name", "date_of_birth"],
                   "housing": ["status"]},
    "lawful_basis": {"article_6": "6(1)(e) public task"}, "consent_required": False,
    "valid_from": "2026-01-01", "review_on": "2027-01-01", "retention_days": 365,
}


def erase(api: TestClient, partnership: Partnership, client_id: str,
          agency: str = "tp", role: Role = IG) -> Any:
    return api.post(f"/v1/clients/{client_id}/erase", json=REASON,
                    headers=hdr(partnership, agency, role))


def act(api: TestClient, partnership: Partnership, client_id: str, path: str,
        reason: str = "Litigation about the care given.", agency: str = "tp") -> Any:
    return api.post(f"/v1/clients/{client_id}/{path}", json={"reason": reason},
                    headers=hdr(partnership, agency, IG))


def record(api: TestClient, partnership: Partnership, client_id: str,
           **params: str) -> Any:
    return api.get(f"/v1/clients/{client_id}/record", params=params,
                   headers=hdr(partnership, "tp", IG))


# -- erasure and what keeps the record ---------------------------------------------------------


def test_erasure_under_a_legal_hold_is_refused_and_changes_nothing(
        api: TestClient, accord: Accord, partnership: Partnership) -> None:
    client_id = registered(api, partnership)
    assert act(api, partnership, client_id, "legal-hold").status_code == 200
    again = act(api, partnership, client_id, "legal-hold")
    assert again.status_code == 409 and "already" in again.json()["detail"]
    assert record(api, partnership, client_id).json()["legal_hold"] is True
    before = changes(accord)

    refused = erase(api, partnership, client_id)
    assert refused.status_code == 409, refused.text
    assert "legal hold" in refused.json()["detail"]
    assert changes(accord) == before  # the log is as it was
    body = record(api, partnership, client_id).json()
    assert body["identity_erased"] is False
    assert body["identity"]["family_name"] == VALID_IDENTITY["family_name"]

    assert act(api, partnership, client_id, "legal-hold/lift", "The claim was settled.")\
        .status_code == 200
    nothing = act(api, partnership, client_id, "legal-hold/lift", "The claim was settled.")
    assert nothing.status_code == 409 and "no legal hold" in nothing.json()["detail"]
    erased = erase(api, partnership, client_id)
    assert erased.status_code == 200, erased.text
    assert record(api, partnership, client_id).json()["identity"] is None
    # An erased client is as unknown to every further command.
    assert act(api, partnership, client_id, "legal-hold").status_code == 404
    assert erase(api, partnership, client_id).status_code == 404


def test_only_the_registering_controllers_ig_lead_erases_or_holds(
        api: TestClient, accord: Accord, partnership: Partnership) -> None:
    client_id = registered(api, partnership)
    before, reads = changes(accord), access_records(accord)
    assert erase(api, partnership, client_id, role=Role.PRACTITIONER).status_code == 403
    for agency in ("tp2", "police"):  # as for an unknown client, and on the record
        assert erase(api, partnership, client_id, agency=agency).status_code == 404
        assert act(api, partnership, client_id, "legal-hold", agency=agency).status_code == 404
        assert act(api, partnership, client_id, "restriction", agency=agency).status_code == 404
    assert changes(accord) == before
    assert access_records(accord) == reads + 6
    short = act(api, partnership, client_id, "legal-hold", reason="because")
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "reason"


def test_an_open_safeguarding_alert_keeps_the_record_until_it_is_closed(
        api: TestClient, accord: Accord, partnership: Partnership) -> None:
    client_id = concern_raised(api, partnership)
    [alert] = inbox(api, partnership)
    before = changes(accord)
    refused = erase(api, partnership, client_id)
    assert refused.status_code == 409, refused.text
    assert "safeguarding alert" in refused.json()["detail"]
    assert changes(accord) == before
    closed = api.post(f"/v1/alerts/{alert['alert_id']}/close",
                      json={"outcome": "referral_made", "note": "Strategy discussion held."},
                      headers=hdr(partnership, "childrens", Role.SAFEGUARDING))
    assert closed.status_code == 200, closed.text
    settle(api)
    assert erase(api, partnership, client_id).status_code == 200


def test_a_child_protection_status_in_force_keeps_the_record(
        api: TestClient, accord: Accord, partnership: Partnership) -> None:
    client_id = registered(api, partnership)
    plan = post_fact(api, partnership, client_id, fact(
        "child_protection_status_recorded", {"status": "child_protection_plan", "children": 2},
        "2026-01-05T09:00:00Z"))
    refused = erase(api, partnership, client_id)
    assert refused.status_code == 409
    assert "child protection plan" in refused.json()["detail"]
    # Closed later: the latest status decides.
    post_fact(api, partnership, client_id, fact(
        "child_protection_status_recorded", {"status": "closed", "children": 2},
        "2026-02-05T09:00:00Z"))
    # An earlier status amended to a later date is in force again.
    amended = api.post(f"/v1/clients/{client_id}/facts/{plan}/amend", headers=hdr(
        partnership, "tp"), json={"data": {"status": "looked_after", "children": 2},
                                  "occurred_at": "2026-03-01T09:00:00Z",
                                  "reason": "the plan was recorded with the wrong date"})
    assert amended.status_code == 200, amended.text
    assert "looked after" in erase(api, partnership, client_id).json()["detail"]
    retracted = api.post(f"/v1/clients/{client_id}/facts/{plan}/retract",
                         headers=hdr(partnership, "tp"),
                         json={"reason": "recorded about the wrong family"})
    assert retracted.status_code == 200
    assert erase(api, partnership, client_id).status_code == 200


# -- restriction ---------------------------------------------------------------------------


def police_view(api: TestClient, partnership: Partnership, client_id: str,
                position: int) -> Any:
    return api.get(f"/v1/clients/{client_id}/view", headers=hdr(partnership, "police"),
                   params={"purpose": "care_coordination", "min_position": position})


def test_a_restricted_client_is_hidden_from_partners_and_read_by_its_controller_for_a_claim(
        api: TestClient, accord: Accord, partnership: Partnership) -> None:
    agree(api, partnership, POLICE_TERMS)
    client_id = registered(api, partnership)
    shown = post_fact(api, partnership, client_id,
                      fact("housing_status_recorded", {"status": "temporary"}))
    police = hdr(partnership, "police")
    match = {"purpose": "care_coordination", "nhs_number": VALID_IDENTITY["nhs_number"]}
    assert police_view(api, partnership, client_id, shown).status_code == 200
    assert api.post("/v1/clients/match", json=match, headers=police).status_code == 200

    restricted = act(api, partnership, client_id, "restriction",
                     "The client contests the accuracy of the record.")
    assert restricted.status_code == 200, restricted.text
    at = restricted.json()["position"]
    assert act(api, partnership, client_id, "restriction",
               "The client contests it again.").status_code == 409
    assert police_view(api, partnership, client_id, at).status_code == 404
    assert api.post("/v1/clients/match", json=match, headers=police).status_code == 404
    search = {"purpose": "care_coordination", "family_name": VALID_IDENTITY["family_name"],
              "date_of_birth": VALID_IDENTITY["date_of_birth"]}
    assert api.post("/v1/clients/search", json=search, headers=police).status_code == 404
    cohort = api.get("/v1/clients", params={"purpose": "care_coordination"}, headers=police)
    assert client_id not in {c["client_id"] for c in cohort.json()["clients"]}
    replay = api.get("/v1/audit/replay", headers=hdr(partnership, "tp", IG), params={
        "agency": "police", "client_id": client_id, "purpose": "care_coordination"})
    assert replay.json()["permitted"] == []
    assert any("restricted" in reason for f in replay.json()["withheld"]
               for reason in f["reasons"])

    # The controller's reads state the legal claim, or are refused.
    refused = record(api, partnership, client_id)
    assert refused.status_code == 409
    assert "restriction_reason" in refused.json()["detail"]
    view = api.get(f"/v1/clients/{client_id}/view", headers=hdr(partnership, "tp"),
                   params={"purpose": "care_coordination"})
    assert view.status_code == 409
    chronology = api.get(f"/v1/clients/{client_id}/chronology", headers=hdr(partnership, "tp"),
                         params={"purpose": "care_coordination"})
    assert chronology.status_code == 409
    reads = access_records(accord)
    read = record(api, partnership, client_id, restriction_reason=CLAIM)
    assert read.status_code == 200, read.text
    assert read.json()["restricted"] is True
    for path in ("view", "chronology"):
        stated = api.get(f"/v1/clients/{client_id}/{path}", headers=hdr(partnership, "tp"),
                         params={"purpose": "care_coordination", "restriction_reason": CLAIM})
        assert stated.status_code == 200, stated.text
    assert access_records(accord) == reads + 3
    audit = api.get("/v1/audit/accesses", params={"client_id": client_id},
                    headers=hdr(partnership, "tp", IG)).json()
    claims = [a["detail"] for a in audit if a["detail"] and CLAIM in a["detail"]]
    assert len(claims) == 3
    assert all("legal claim" in detail for detail in claims)

    lifted = act(api, partnership, client_id, "restriction/lift", "The record was verified.")
    assert lifted.status_code == 200
    assert police_view(api, partnership, client_id, lifted.json()["position"]).status_code == 200
    assert record(api, partnership, client_id).json()["restricted"] is False


def test_the_feed_says_a_restricted_clients_facts_left_and_entered_again_when_lifted(
        api: TestClient, accord: Accord, partnership: Partnership) -> None:
    from infra.schema import feed_outbox

    agree(api, partnership, POLICE_TERMS)
    client_id = registered(api, partnership)
    shown = post_fact(api, partnership, client_id,
                      fact("housing_status_recorded", {"status": "temporary"}))

    def feed(cause: int) -> set[tuple[str, int]]:
        settle(api)
        with accord.engine.connect() as conn:
            return {(row.change, row.position) for row in conn.execute(
                feed_outbox.select().where(feed_outbox.c.cause == cause,
                                           feed_outbox.c.agency == "police"))}

    restricted = act(api, partnership, client_id, "restriction", "Accuracy is contested.")
    assert ("left", shown) in feed(restricted.json()["position"])
    lifted = act(api, partnership, client_id, "restriction/lift", "The record was verified.")
    assert ("entered", shown) in feed(lifted.json()["position"])


def test_commissioners_reports_stop_counting_a_restricted_client_until_it_is_lifted(
        accord: Accord, partnership: Partnership) -> None:
    story = Story(accord, partnership)
    story.agree("tp", SHARED)
    client_id = story.client()
    story.episode(client_id)
    assert story.in_treatment() == 1
    lead = story.actor("tp", IG)
    story.app.restrict_processing(client_id, "The client contests its accuracy.", lead)
    assert story.in_treatment() == 0
    story.episode(client_id)  # nor what is recorded meanwhile
    assert story.in_treatment() == 0
    story.app.lift_restriction(client_id, "The record was verified.", lead)
    assert story.in_treatment() == 1


# -- the command line ----------------------------------------------------------------------------


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCORD_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ACCORD_KEY_FILE", str(settings.key_file))
    if settings.database_schema:
        monkeypatch.setenv("ACCORD_DATABASE_SCHEMA", settings.database_schema)
    else:
        monkeypatch.delenv("ACCORD_DATABASE_SCHEMA", raising=False)


def test_accord_clients_erase_acts_as_the_ig_lead_in_accord_token(
        api: TestClient, accord: Accord, partnership: Partnership, env: None,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    client_id = registered(api, partnership)
    assert act(api, partnership, client_id, "legal-hold").status_code == 200
    argv = ["clients", "erase", client_id, "--reason", "The client asked to be forgotten."]

    monkeypatch.delenv("ACCORD_TOKEN", raising=False)
    assert main(argv) == 2
    assert "ACCORD_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("ACCORD_TOKEN", partnership.token("tp2", IG))
    assert main(argv) == 2
    assert "client not found" in capsys.readouterr().err
    monkeypatch.setenv("ACCORD_TOKEN", partnership.token("tp", IG))
    assert main(argv) == 2
    assert "legal hold" in capsys.readouterr().err
    assert main(["clients", "erase", client_id, "--reason", "short"]) == 2
    assert "--reason" in capsys.readouterr().err

    assert act(api, partnership, client_id, "legal-hold/lift",
               "The claim was settled.").status_code == 200
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"erased client {client_id}" in out and "hmac-sha256:" in out
    assert record(api, partnership, client_id).json()["identity_erased"] is True
    assert UUID(client_id)
