"""What the IG leads' pages needed from the API, through the API: where a replay's answer
changes (to step through time), verifying the log against its signed tree heads (as
``accord audit verify`` does), and every version of an agreement's terms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.bootstrap import Accord
from domain.agencies import Role
from infra.settings import Settings
from infra.signing import generate_signing_key_file
from projections.log_tree import LogTree
from tests.builders import (
    Partnership,
    agree,
    consent,
    hdr,
    police_terms,
    post_fact,
    register,
)

# -- where a replay's answer changes --------------------------------------------------------


def changes(api: TestClient, partnership: Partnership, client_id: str, asking: str,
            agency: str = "police", purpose: str = "offender_management") -> Any:
    return api.get("/v1/audit/replay/changes",
                   params={"agency": agency, "client_id": client_id, "purpose": purpose},
                   headers=hdr(partnership, asking, Role.IG_LEAD))


def replay(api: TestClient, partnership: Partnership, client_id: str, asking: str,
           at: int) -> dict[str, Any]:
    answer = api.get("/v1/audit/replay", headers=hdr(partnership, asking, Role.IG_LEAD),
                     params={"agency": "police", "client_id": client_id,
                             "purpose": "offender_management", "at": str(at)})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_the_changes_are_where_the_replay_answers_otherwise(
        api: TestClient, partnership: Partnership) -> None:
    agree(api, partnership, police_terms())
    client_id = register(api, partnership)
    post_fact(api, partnership, client_id, {"type": "appointment_attended",
                                            "occurred_at": "2026-01-05T09:30:00Z",
                                            "data": {"appointment": "keywork"}})
    given = consent(api, partnership, client_id)
    withdrawn = api.post(f"/v1/clients/{client_id}/consents/{given['consent_id']}/withdraw",
                         json={"reason": "changed their mind"}, headers=hdr(partnership, "tp"))
    assert withdrawn.status_code == 200
    answer = changes(api, partnership, client_id, "tp")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    positions = [c["position"] for c in body["changes"]]
    assert given["position"] in positions and withdrawn.json()["position"] in positions
    assert positions == sorted(positions) and body["head"] >= positions[-1]
    by_position = {c["position"]: c for c in body["changes"]}
    assert by_position[given["position"]]["permitted"] == 2  # identity and the attendance
    assert by_position[withdrawn.json()["position"]]["permitted"] == 0
    # Each change is where the replay's answer is what the change says, unlike just before.
    for change in body["changes"]:
        now = replay(api, partnership, client_id, "tp", change["position"])
        before = replay(api, partnership, client_id, "tp", change["position"] - 1)
        assert (len(now["permitted"]), len(now["withheld"])) == (change["permitted"],
                                                                  change["withheld"])
        assert (now["permitted"], now["withheld"]) != (before["permitted"], before["withheld"])
    # The police's own IG lead sees its view's changes: shown with the consent, gone after.
    own = changes(api, partnership, client_id, "police").json()["changes"]
    assert [(c["permitted"], c["withheld"]) for c in own] == [(2, 0), (0, 0)]


def test_changes_are_on_the_record_and_refused_as_a_replay_is(
        api: TestClient, partnership: Partnership) -> None:
    agree(api, partnership, police_terms())
    client_id = register(api, partnership)
    # Never shown to the police: their IG lead gets the 404 an unknown client gets.
    hidden = changes(api, partnership, client_id, "police")
    unknown = changes(api, partnership, "7a4b1f0e-8a61-4cf1-9d3c-2f1e0c9d8b7a", "police")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json() == unknown.json()
    # Another agency's IG lead replaying the police: nothing of its own, so 404.
    assert changes(api, partnership, client_id, "tp2").status_code == 404
    # Roles other than IG leads are refused before anything is looked up.
    refused = api.get("/v1/audit/replay/changes", headers=hdr(partnership, "tp"),
                      params={"agency": "police", "client_id": client_id,
                              "purpose": "offender_management"})
    assert refused.status_code == 403
    assert changes(api, partnership, client_id, "tp", agency="nowhere").status_code == 404
    assert changes(api, partnership, client_id, "tp", purpose="gossip").status_code == 422
    # The controller's IG lead's walk is on the record, with the facts it was about.
    assert changes(api, partnership, client_id, "tp").status_code == 200
    audit = api.get("/v1/audit/accesses", params={"client_id": client_id},
                    headers=hdr(partnership, "tp", Role.IG_LEAD)).json()
    walks = [a for a in audit if a["action"] == "replay" and a["outcome"] == "returned"]
    assert walks and walks[0]["subject_agency"] == "police"
    assert walks[0]["returned"] and walks[0]["returned"][0]["controller"] == "tp"
    refusals = [a for a in audit if a["action"] == "replay" and a["outcome"] == "not_found"]
    assert refusals  # the police's and tp2's attempts, on tp's record of its client


# -- verifying the log -------------------------------------------------------------------


@pytest.fixture
def signing_key(settings: Settings) -> Path:
    """The tree-head signing key, where the app looks for it when it starts."""
    generate_signing_key_file(settings.signing_key_path)
    return settings.signing_key_path


def verification(api: TestClient, partnership: Partnership,
                 role: Role = Role.IG_LEAD) -> Any:
    return api.get("/v1/audit/tree-verification", headers=hdr(partnership, "tp", role))


def test_verifying_the_log_finds_it_intact_then_names_the_altered_position(
        signing_key: Path, api: TestClient, partnership: Partnership,
        accord: Accord) -> None:
    register(api, partnership)
    accord.find(LogTree).catch_up(sign_now=True)
    answer = verification(api, partnership)
    assert answer.status_code == 200, answer.text
    intact = answer.json()
    assert intact["verified"] is True and intact["heads"] >= 1
    assert intact["first_altered_position"] is None and intact["findings"] == []
    assert intact["events"] >= intact["covered_size"] > 0
    assert len(intact["trusted_keys"]) == 1
    assert verification(api, partnership, Role.ADMIN).status_code == 200
    assert verification(api, partnership, Role.PRACTITIONER).status_code == 403
    # Someone edits an event in the database.
    recorder: Any = accord.app.recorder
    column = "rowid" if accord.engine.dialect.name == "sqlite" else "notification_id"
    with accord.engine.begin() as conn:
        conn.execute(text(f"UPDATE {recorder.events_table_name} SET state = :s "
                          f"WHERE {column} = 5"), {"s": b'{"tampered": true}'})
    tampered = verification(api, partnership).json()
    assert tampered["verified"] is False
    assert tampered["first_altered_position"] == 5
    assert tampered["findings"][0]["position"] == 5 and tampered["finding_count"] >= 1


def test_without_a_signing_key_nothing_is_verified_and_it_says_why(
        api: TestClient, partnership: Partnership) -> None:
    answer = verification(api, partnership)
    assert answer.status_code == 200
    assert answer.json()["verified"] is False
    assert "no tree-head signing key" in answer.json()["problems"][0]


# -- every version of an agreement ---------------------------------------------------------


def test_an_agreement_shows_every_version_of_its_terms(
        api: TestClient, partnership: Partnership) -> None:
    agreement_id = agree(api, partnership, police_terms())
    amended = api.post(f"/v1/agreements/{agreement_id}/amend",
                       json=police_terms(title="Drug intervention, second year"),
                       headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert amended.status_code == 200, amended.text
    body = amended.json()
    assert [v["title"] for v in body["versions"]] == [police_terms()["title"],
                                                       "Drug intervention, second year"]
    assert body["version"] == 2 and body["version_in_force"] == 1
    assert body["terms_in_force"] == body["versions"][0]
