"""Emergency ("break-glass") access and its IG review, through the API, on both databases.

A partner with no agreement breaks glass for a client: the grant is on the client's
stream, the partner's view shows the client with the basis ``emergency`` (clinical notes
only for a clinical agency), it lapses on time with no further event, and the client's
controller gets a review item its IG lead closes once. Every response: never a 5xx.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from consent.policy import BasisKind, Viewer, decide
from domain.agencies import AgencyKind, Role
from domain.application import OPERATOR
from projections.views import AgencyViews
from tests.builders import (
    JUSTIFICATION,
    VALID_IDENTITY,
    Partnership,
    agency_views,
    break_glass,
    fact,
    granted,
    hdr,
    policy_state,
    post_fact,
    register,
    view,
)

NOTE_TEXT = "Disclosed a relapse in confidence."


@pytest.fixture
def mh(partnership: Partnership) -> str:
    """A mental health trust: a clinical agency, with a practitioner and an IG lead."""
    app = partnership.accord.app
    app.register_agency("mh", "Mental Health Trust", AgencyKind.MENTAL_HEALTH, OPERATOR)
    for role in (Role.PRACTITIONER, Role.IG_LEAD):
        partnership.tokens[("mh", role)] = app.add_principal("mh", role, f"mh {role}",
                                                             OPERATOR).token
    return "mh"


@pytest.fixture
def treated(api: TestClient, partnership: Partnership) -> dict[str, Any]:
    """A client of ``tp`` with an episode, an order and a clinical note; no agreements."""
    client_id = register(api, partnership)
    positions = {
        "episode": post_fact(api, partnership, client_id, fact(
            "treatment_episode_started", {"modality": "pharmacological",
                                          "substances": ["opioids"]})),
        "order": post_fact(api, partnership, client_id, fact(
            "criminal_justice_status", {"order": "drug_rehabilitation_requirement",
                                        "status": "compliant", "ends_on": "2026-12-01"})),
        "note": post_fact(api, partnership, client_id, fact(
            "clinical_note_added", {"text": NOTE_TEXT})),
    }
    return {"client_id": client_id, "positions": positions}


def grants_on_stream(partnership: Partnership, client_id: str) -> int:
    return len(partnership.accord.app._client(UUID(client_id)).emergency_grants)


# -- the view under an emergency grant ---------------------------------------------------------


def test_a_partner_breaks_glass_and_sees_the_client_but_not_clinical_notes(
    api: TestClient, partnership: Partnership, treated: dict[str, Any]
) -> None:
    client_id, positions = treated["client_id"], treated["positions"]
    assert view(api, partnership, client_id, "police", "safeguarding_adults").status_code == 404

    before = datetime.now(UTC)
    grant = granted(api, partnership, client_id)
    assert set(grant) == {"grant_id", "expires_at", "position", "review_id"}
    expires_at = datetime.fromisoformat(grant["expires_at"])
    assert before + timedelta(minutes=59) < expires_at <= datetime.now(UTC) + timedelta(
        minutes=60)

    response = view(api, partnership, client_id, "police", "safeguarding_adults",
                    position=grant["position"])
    assert response.status_code == 200, response.text
    body = response.json()
    # Every identity field and every field of each fact: the grant masks nothing...
    assert body["identity"]["family_name"] == "Example"
    assert body["identity"]["nhs_number"] == "9434765919"
    shown = {f["position"]: f for f in body["facts"]}
    assert set(shown) == {positions["episode"], positions["order"]}
    assert shown[positions["episode"]]["data"]["substances"] == ["opioids"]
    for item in body["facts"]:
        assert item["basis"]["kind"] == BasisKind.EMERGENCY.value
        assert item["basis"]["grant_id"] == grant["grant_id"]
        assert "rule 5" in item["reason"]
    # ...but clinical notes only go to a clinical agency.
    assert NOTE_TEXT not in response.text

    # One purpose only, and the 403 for another purpose says so without a 5xx.
    other = view(api, partnership, client_id, "police", "offender_management")
    assert other.status_code == 403
    # The grant is on the client's own stream.
    assert grants_on_stream(partnership, client_id) == 1
    # A partner with an emergency basis may record what it finds, and then controls it.
    incident = post_fact(api, partnership, client_id, fact(
        "domestic_abuse_incident_recorded", {"role": "victim", "children_present": False,
                                             "police_reference": "NP/2026/99"}), "police")
    body = view(api, partnership, client_id, "police", "safeguarding_adults",
                position=incident).json()
    [mine] = [f for f in body["facts"] if f["position"] == incident]
    assert mine["basis"]["kind"] == BasisKind.CONTROLLER.value


def test_a_clinical_agency_breaking_glass_sees_clinical_notes(
    api: TestClient, partnership: Partnership, treated: dict[str, Any], mh: str
) -> None:
    client_id, positions = treated["client_id"], treated["positions"]
    grant = granted(api, partnership, client_id, mh, purpose="direct_care")
    response = view(api, partnership, client_id, mh, "direct_care", position=grant["position"])
    assert response.status_code == 200, response.text
    shown = {f["position"]: f for f in response.json()["facts"]}
    assert set(shown) == set(positions.values())
    assert shown[positions["note"]]["data"] == {"text": NOTE_TEXT}
    assert shown[positions["note"]]["basis"]["kind"] == BasisKind.EMERGENCY.value
    # The other treatment provider is clinical too.
    other = granted(api, partnership, client_id, "tp2", purpose="direct_care")
    notes = view(api, partnership, client_id, "tp2", "direct_care", position=other["position"])
    assert NOTE_TEXT in notes.text


def test_emergency_access_expires_on_time(
    api: TestClient, partnership: Partnership, treated: dict[str, Any]
) -> None:
    """A one-minute grant: seen inside its window, gone after it, with no further event;
    the views and ``decide`` agree at each moment."""
    client_id = treated["client_id"]
    grant = granted(api, partnership, client_id, minutes=1)
    expires_at = datetime.fromisoformat(grant["expires_at"])
    granted_at = expires_at - timedelta(minutes=1)
    views = agency_views(api)
    views.tracking.wait(views.name, grant["position"], timeout=5)

    inside, just_before, at_expiry = (granted_at + timedelta(seconds=30),
                                      expires_at - timedelta(microseconds=1), expires_at)
    cid = UUID(client_id)
    assert views.items("police", cid, "safeguarding_adults", at=inside)
    assert views.items("police", cid, "safeguarding_adults", at=just_before)
    assert views.items("police", cid, "safeguarding_adults", at=at_expiry) == []
    assert not views.sees_client("police", cid, at=at_expiry)
    assert views.items("police", cid, "safeguarding_adults",
                       at=granted_at - timedelta(seconds=1)) == []

    state, facts = policy_state(partnership)
    police = Viewer("police", AgencyKind.POLICE)
    episode = next(f for f in facts if f.fact_type == "treatment_episode_started")
    permitted = decide(police, "safeguarding_adults", episode.fact, state, inside)
    assert permitted.permit and permitted.basis is not None
    assert permitted.basis.kind is BasisKind.EMERGENCY
    lapsed = decide(police, "safeguarding_adults", episode.fact, state, at_expiry)
    assert not lapsed.permit
    assert any("lapsed" in reason for reason in lapsed.reasons)
    note = next(f for f in facts if f.fact_type == "clinical_note_added")
    refused = decide(police, "safeguarding_adults", note.fact, state, inside)
    assert not refused.permit
    assert any("clinical notes" in reason for reason in refused.reasons)


def test_a_grant_whose_window_has_passed_shows_nothing_through_the_api(
    api: TestClient, partnership: Partnership, treated: dict[str, Any]
) -> None:
    """The application's clock is the one injection point: a grant recorded two minutes
    ago for one minute has lapsed now, and the view is the same 404 as before it."""
    client_id = treated["client_id"]
    app = partnership.accord.app
    real_clock = app.clock
    app.clock = lambda: datetime.now(UTC) - timedelta(minutes=2)
    try:
        grant = granted(api, partnership, client_id, minutes=1)
    finally:
        app.clock = real_clock
    assert datetime.fromisoformat(grant["expires_at"]) < datetime.now(UTC)
    lapsed = view(api, partnership, client_id, "police", "safeguarding_adults",
                  position=grant["position"])
    unknown = view(api, partnership, "00000000-0000-4000-8000-000000000000", "police",
                   "safeguarding_adults")
    assert lapsed.status_code == unknown.status_code == 404
    assert lapsed.json() == unknown.json()


# -- who may break glass, and bad input ----------------------------------------------------------


def test_bad_input_is_a_422_naming_the_field_and_records_nothing(
    api: TestClient, partnership: Partnership, treated: dict[str, Any]
) -> None:
    client_id = treated["client_id"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"minutes": 1441}, "minutes"),
        ({"minutes": 0}, "minutes"),
        ({"minutes": "soon"}, "minutes"),
        ({"justification": "because"}, "justification"),
        ({"justification": " " * 20}, "justification"),
        ({"justification": "x" * 1001}, "justification"),
        ({"purpose": "curiosity"}, "purpose"),
        ({"purpose": "commissioning"}, "purpose"),
        ({"reason": "an unknown field"}, "reason"),
    ]
    for changes, field in cases:
        response = break_glass(api, partnership, client_id, **changes)
        assert response.status_code == 422, (changes, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], (changes, response.text)
    missing = api.post(f"/v1/clients/{client_id}/emergency-access",
                       json={"purpose": "direct_care"}, headers=hdr(partnership, "police"))
    assert missing.status_code == 422
    assert {"justification", "minutes"} <= {e["field"] for e in missing.json()["errors"]}
    not_json = api.post(f"/v1/clients/{client_id}/emergency-access", content=b"{",
                        headers={**hdr(partnership, "police"),
                                 "content-type": "application/json"})
    assert not_json.status_code == 422
    assert grants_on_stream(partnership, client_id) == 0
    # A whole day is the most.
    assert break_glass(api, partnership, client_id, minutes=1440).status_code == 201


def test_who_may_break_glass(
    api: TestClient, partnership: Partnership, treated: dict[str, Any]
) -> None:
    client_id = treated["client_id"]
    own = break_glass(api, partnership, client_id, "tp")
    assert own.status_code == 403
    assert "registered this client" in own.json()["detail"]
    for role in (Role.IG_LEAD, Role.ADMIN, Role.COMMISSIONER):
        assert break_glass(api, partnership, client_id, role=role).status_code == 403
    commissioner = break_glass(api, partnership, client_id, "commissioner")
    assert commissioner.status_code == 403
    assert grants_on_stream(partnership, client_id) == 0
    assert break_glass(api, partnership, client_id, role=Role.SAFEGUARDING).status_code == 201
    assert break_glass(api, partnership, client_id, "childrens",
                       purpose="safeguarding_children").status_code == 201


def test_an_unknown_and_an_erased_client_are_the_same_404(
    api: TestClient, partnership: Partnership, treated: dict[str, Any]
) -> None:
    app = partnership.accord.app
    other = register(api, partnership, identity={**VALID_IDENTITY, "nhs_number": "4010232137"})
    app.erase_client(UUID(other), "subject asked for erasure",
                     app.authenticate(partnership.token("tp", Role.IG_LEAD)))
    erased = break_glass(api, partnership, other)
    unknown = break_glass(api, partnership, "00000000-0000-4000-8000-000000000000")
    assert erased.status_code == unknown.status_code == 404
    assert erased.json() == unknown.json()
    # The registering agency itself gets the same 404 for its erased client.
    assert break_glass(api, partnership, other, "tp").json() == unknown.json()
    assert grants_on_stream(partnership, other) == 0


# -- the IG review --------------------------------------------------------------------------------


def reviews(api: TestClient, partnership: Partnership, agency: str,
            status: str | None = None, position: int | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {}
    if status is not None:
        params["status"] = status
    if position is not None:
        params["min_position"] = position
    response = api.get("/v1/audit/reviews", params=params,
                       headers=hdr(partnership, agency, Role.IG_LEAD))
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def test_each_grant_opens_a_review_the_controllers_ig_lead_closes_once(
    api: TestClient, partnership: Partnership, treated: dict[str, Any]
) -> None:
    client_id = treated["client_id"]
    grant = granted(api, partnership, client_id)
    [review] = reviews(api, partnership, "tp", position=grant["position"])
    assert review["review_id"] == grant["review_id"]
    assert review["grant_id"] == grant["grant_id"]
    assert review["status"] == "open" and review["outcome"] is None
    assert (review["controller"], review["granted_to"], review["client_id"]) == (
        "tp", "police", client_id)
    assert review["justification"] == JUSTIFICATION
    assert review["purpose"] == "safeguarding_adults" and review["role"] == "practitioner"
    assert review["principal_name"] == "police practitioner"
    assert review["clinical_notes"] is False
    assert review["expires_at"].startswith(grant["expires_at"][:16])
    # Nobody else's IG lead is told: not the grantee, not another provider.
    for agency in ("police", "tp2", "childrens"):
        assert reviews(api, partnership, agency) == []
    # Only IG leads read the inbox.
    for role in (Role.PRACTITIONER, Role.SAFEGUARDING, Role.ADMIN, Role.COMMISSIONER):
        assert api.get("/v1/audit/reviews",
                       headers=hdr(partnership, "tp", role)).status_code == 403

    url = f"/v1/audit/reviews/{grant['review_id']}"
    close = {"outcome": "justified", "note": "Checked with the custody nurse: right call."}
    for agency in ("police", "tp2"):
        foreign = api.post(url, json=close, headers=hdr(partnership, agency, Role.IG_LEAD))
        assert foreign.status_code == 404, foreign.text
    unknown = api.post("/v1/audit/reviews/00000000-0000-4000-8000-000000000000", json=close,
                       headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert unknown.status_code == 404
    assert foreign.json() == unknown.json()
    assert api.post(url, json=close, headers=hdr(partnership, "tp")).status_code == 403
    for bad, field in (({**close, "outcome": "fine"}, "outcome"),
                       ({"outcome": "justified"}, "note"),
                       ({**close, "note": ""}, "note")):
        refused = api.post(url, json=bad, headers=hdr(partnership, "tp", Role.IG_LEAD))
        assert refused.status_code == 422
        assert field in [e["field"] for e in refused.json()["errors"]]

    closed = api.post(url, json=close, headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["outcome"] == "justified"
    again = api.post(url, json={**close, "outcome": "not_justified"},
                     headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert again.status_code == 409
    assert "already closed" in again.json()["detail"]

    position = closed.json()["position"]
    assert reviews(api, partnership, "tp", "open", position) == []
    [done] = reviews(api, partnership, "tp", "closed", position)
    assert (done["outcome"], done["note"]) == ("justified", close["note"])
    assert done["closed_by"] and done["closed_at"]
    assert api.get("/v1/audit/reviews", params={"status": "pending"},
                   headers=hdr(partnership, "tp", Role.IG_LEAD)).status_code == 422


def test_other_controllers_of_the_clients_data_are_told_but_only_the_registrant_closes(
    api: TestClient, partnership: Partnership, treated: dict[str, Any]
) -> None:
    client_id = treated["client_id"]
    police = granted(api, partnership, client_id)
    # The police's basis is in their view once it has caught up with the grant.
    assert view(api, partnership, client_id, "police", "safeguarding_adults",
                position=police["position"]).status_code == 200
    post_fact(api, partnership, client_id, fact(
        "domestic_abuse_incident_recorded", {"role": "victim", "children_present": True,
                                             "police_reference": "NP/2026/18"}), "police")
    childrens = granted(api, partnership, client_id, "childrens",
                        purpose="safeguarding_children")
    told = reviews(api, partnership, "police", position=childrens["position"])
    assert [r["review_id"] for r in told] == [childrens["review_id"]]
    assert [r["review_id"] for r in reviews(api, partnership, "tp")] == [
        police["review_id"], childrens["review_id"]]
    # The police's data was covered, so they are told; the registering controller closes.
    response = api.post(f"/v1/audit/reviews/{childrens['review_id']}",
                        json={"outcome": "escalated", "note": "Refer to the Caldicott lead."},
                        headers=hdr(partnership, "police", Role.IG_LEAD))
    assert response.status_code == 403
    assert "registering controller" in response.json()["detail"]
    # The children's services view names the police's incident on the emergency basis.
    body = view(api, partnership, client_id, "childrens", "safeguarding_children",
                position=childrens["position"]).json()
    kinds = {f["controller"]: f["basis"]["kind"] for f in body["facts"]}
    assert kinds == {"tp": "emergency", "police": "emergency"}


def test_a_rebuild_gives_the_same_views_and_review_inbox(
    api: TestClient, partnership: Partnership, treated: dict[str, Any]
) -> None:
    client_id = treated["client_id"]
    grant = granted(api, partnership, client_id)
    closed = api.post(f"/v1/audit/reviews/{grant['review_id']}",
                      json={"outcome": "not_justified", "note": "No emergency on the record."},
                      headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert closed.status_code == 200, closed.text
    granted(api, partnership, client_id, "childrens", purpose="safeguarding_children")
    views = agency_views(api)
    views.tracking.wait(views.name, partnership.accord.app.head_position(), timeout=5)
    incremental = (views.all_rows(), reviews(api, partnership, "tp"))
    assert [r["status"] for r in incremental[1]] == ["closed", "open"]
    api.app.state.projections.stop()  # type: ignore[attr-defined]  # no catch-up meanwhile
    fresh = AgencyViews(partnership.accord.app, partnership.accord.engine)
    fresh.rebuild()
    assert (fresh.all_rows(), reviews(api, partnership, "tp")) == incremental
