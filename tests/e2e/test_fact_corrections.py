"""Correcting the record through the API, on both databases.

``POST /v1/clients/{id}/facts/{position}/amend`` and ``.../retract``: only the agency that
recorded a fact (its controller) corrects it, with a reason. Partners see the amended
fact (and nothing of a retracted one) from the correction's position; the controller's
record keeps each fact with its corrections; an IG lead's replay shows the fact as it
stood at the moment asked about. Another agency cannot correct a fact, nor learn that it
exists (the same 404 as an unknown fact, or an unknown client), and its attempt is on
the controller's record. Bad input is a 422 naming the field and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from domain.agencies import Role
from tests.builders import (
    VALID_IDENTITY,
    Partnership,
    agree,
    assert_error_shape,
    changes,
    fact,
    hdr,
    housing_terms,
    post_fact,
    register,
    registered,
    view,
)

REASON = "recorded against the wrong client in error"
REGISTERED = "domain.clients:Client.Registered"
HOUSED = fact("housing_status_recorded", {"status": "settled"})


def amend(api: TestClient, partnership: Partnership, client_id: str, position: int | str,
          agency: str = "tp", role: Role = Role.PRACTITIONER, **body: Any) -> Any:
    return api.post(f"/v1/clients/{client_id}/facts/{position}/amend",
                    json={"data": {"status": "temporary"}, "reason": REASON, **body},
                    headers=hdr(partnership, agency, role))


def retract(api: TestClient, partnership: Partnership, client_id: str, position: int | str,
            agency: str = "tp", role: Role = Role.PRACTITIONER, **body: Any) -> Any:
    return api.post(f"/v1/clients/{client_id}/facts/{position}/retract",
                    json={"reason": REASON, **body}, headers=hdr(partnership, agency, role))


def record_of(api: TestClient, partnership: Partnership, client_id: str,
              agency: str = "tp") -> dict[int, dict[str, Any]]:
    response = api.get(f"/v1/clients/{client_id}/record", headers=hdr(partnership, agency))
    assert response.status_code == 200, response.text
    return {f["position"]: f for f in response.json()["facts"]}


def replay(api: TestClient, partnership: Partnership, client_id: str, by: str,
           at: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"agency": "police", "client_id": client_id,
                              "purpose": "care_coordination"}
    if at is not None:
        params["at"] = at
    response = api.get("/v1/audit/replay", params=params,
                       headers=hdr(partnership, by, Role.IG_LEAD))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture
def housed(api: TestClient, partnership: Partnership) -> dict[str, Any]:
    """A client of the provider whose two housing records the police see under an
    agreement (no consent needed)."""
    agree(api, partnership, housing_terms("police"))
    client_id = register(api, partnership)
    first = post_fact(api, partnership, client_id, HOUSED)
    second = post_fact(api, partnership, client_id,
                       fact("housing_status_recorded", {"status": "supported"}))
    return {"client_id": client_id, "first": first, "second": second}


def police_view(api: TestClient, partnership: Partnership, client_id: str,
                position: int) -> dict[int, dict[str, Any]]:
    response = view(api, partnership, client_id, "police", "care_coordination", position)
    assert response.status_code == 200, response.text
    return {f["position"]: f for f in response.json()["facts"]}


def test_the_controller_amends_a_fact_and_partners_see_it_amended(
        api: TestClient, partnership: Partnership, housed: dict[str, Any]) -> None:
    client_id, first = housed["client_id"], housed["first"]
    assert police_view(api, partnership, client_id, first)[first]["data"] == {
        "status": "settled"}
    amended = amend(api, partnership, client_id, first, occurred_at="2026-01-04T18:00:00Z",
                    reason="  the status was typed in wrongly  ")
    assert amended.status_code == 200, amended.text
    at = amended.json()["position"]
    assert at > housed["second"]

    shown = police_view(api, partnership, client_id, at)[first]
    assert (shown["data"], shown["occurred_at"], shown["amended"]) == (
        {"status": "temporary"}, "2026-01-04T18:00:00Z", at)
    assert police_view(api, partnership, client_id, at)[housed["second"]]["amended"] is None

    # The provider's own record: the fact as amended, with who, when and why.
    own = record_of(api, partnership, client_id)[first]
    assert own["data"] == {"status": "temporary"}
    [correction] = own["amendments"]
    assert correction["position"] == at
    assert correction["reason"] == "the status was typed in wrongly"
    assert correction["by"] == str(partnership.accord.app.authenticate(
        partnership.token("tp", Role.PRACTITIONER)).principal_id)
    assert own["retraction"] is None

    # A second amendment is allowed; the latest stands.
    again = amend(api, partnership, client_id, first, data={"status": "rough_sleeping"})
    assert again.status_code == 200, again.text
    shown = police_view(api, partnership, client_id, again.json()["position"])[first]
    assert shown["data"] == {"status": "rough_sleeping"}
    assert shown["occurred_at"] == "2026-01-04T18:00:00Z"  # as last corrected
    assert len(record_of(api, partnership, client_id)[first]["amendments"]) == 2


def test_a_retracted_fact_leaves_every_view_and_stays_on_the_controllers_record(
        api: TestClient, partnership: Partnership, housed: dict[str, Any]) -> None:
    client_id, first, second = housed["client_id"], housed["first"], housed["second"]
    retracted = retract(api, partnership, client_id, first)
    assert retracted.status_code == 200, retracted.text
    at = retracted.json()["position"]
    assert set(police_view(api, partnership, client_id, at)) == {second}
    own = view(api, partnership, client_id, "tp", "care_coordination", at)
    assert first not in {f["position"] for f in own.json()["facts"]}
    kept = record_of(api, partnership, client_id)[first]
    assert kept["retraction"]["position"] == at and kept["retraction"]["reason"] == REASON
    assert kept["data"] == {"status": "settled"}

    # Once retracted: neither retracted again nor amended (409), and nothing appended.
    before = changes(partnership.accord)
    for again in (retract(api, partnership, client_id, first),
                  amend(api, partnership, client_id, first)):
        assert again.status_code == 409, again.text
        assert "retracted" in assert_error_shape(again)["detail"]
    assert changes(partnership.accord) == before


def test_another_agency_cannot_correct_a_fact_nor_learn_it_exists(
        api: TestClient, partnership: Partnership, housed: dict[str, Any]) -> None:
    client_id, first = housed["client_id"], housed["first"]
    # The police see the client and record a fact of their own: they hold a record too.
    police_view(api, partnership, client_id, first)
    theirs = post_fact(api, partnership, client_id, fact(
        "domestic_abuse_incident_recorded",
        {"role": "victim", "children_present": False, "police_reference": "NP/26/1"}),
        agency="police")
    other_client = registered(api, partnership, "4010232137")
    elsewhere = post_fact(api, partnership, other_client, HOUSED)

    before = changes(partnership.accord)
    attempts_before = _attempts(api, partnership, client_id)
    for command in (amend, retract):
        # The provider's fact, a position past every fact, another client's fact, a
        # position that is no fact, and the provider's fact with a payload that would be
        # invalid: one answer, which says nothing of the fact.
        answers = [command(api, partnership, client_id, position, "police")
                   for position in (first, 10**12, elsewhere, 1)]
        invalid: dict[str, Any] = {"data": {"status": "a palace"}} if command is amend else {}
        answers.append(command(api, partnership, client_id, first, "police", **invalid))
        assert {a.status_code for a in answers} == {404}
        assert {a.json()["detail"] for a in answers} == {"fact not found"}
        # An agency holding no record of the client, and an unknown client: "client not
        # found", whether or not the client or the fact exists.
        strangers = [command(api, partnership, client_id, first, "childrens"),
                     command(api, partnership, str(uuid4()), first, "childrens"),
                     command(api, partnership, str(uuid4()), first, "tp")]
        assert [(a.status_code, a.json()) for a in strangers] == [
            (404, {"detail": "client not found"})] * 3
    assert changes(partnership.accord) == before
    assert police_view(api, partnership, client_id, first)[first]["data"] == {
        "status": "settled"}
    # Each refusal about the provider's client (five by the police, one by children's
    # services, for each command) is on the provider's record as an attempt.
    attempts = _attempts(api, partnership, client_id)
    assert len(attempts) - len(attempts_before) == 2 * (5 + 1)
    assert {(a["action"], a["outcome"]) for a in attempts[:12]} == {
        ("amend_fact", "not_found"), ("retract_fact", "not_found")}

    # The police correct their own fact; the provider cannot.
    assert amend(api, partnership, client_id, theirs, "tp",
                 data={"role": "perpetrator"}).status_code == 404
    assert amend(api, partnership, client_id, theirs, "police",
                 data={"role": "perpetrator", "children_present": False}).status_code == 200
    # A retracted fact is still unknown to another agency (a 409 would confirm it).
    assert retract(api, partnership, client_id, first).status_code == 200
    late = retract(api, partnership, client_id, first, "police")
    assert (late.status_code, late.json()["detail"]) == (404, "fact not found")


def _attempts(api: TestClient, partnership: Partnership, client_id: str) -> list[Any]:
    response = api.get("/v1/audit/accesses", params={"client_id": client_id},
                       headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert response.status_code == 200, response.text
    return [a for a in response.json() if a["outcome"] in ("not_found", "refused")]


@pytest.mark.parametrize("role", [Role.IG_LEAD, Role.ADMIN, Role.COMMISSIONER,
                                  Role.PARTNERSHIP_ADMIN])
def test_roles_that_do_not_record_facts_do_not_correct_them(
        api: TestClient, partnership: Partnership, housed: dict[str, Any], role: Role) -> None:
    before = changes(partnership.accord)
    for command in (amend, retract):
        refused = command(api, partnership, housed["client_id"], housed["first"], "tp", role)
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"] == (
            "only practitioners and safeguarding staff correct the facts they recorded")
    assert changes(partnership.accord) == before
    # A safeguarding officer of the controller corrects its agency's fact.
    assert amend(api, partnership, housed["client_id"], housed["first"], "tp",
                 Role.SAFEGUARDING).status_code == 200


@pytest.mark.parametrize(("path", "body", "field"), [
    ("amend", {"reason": "too short"}, "reason"),
    ("amend", {"reason": " " * 12}, "reason"),
    ("amend", {"reason": "x" * 1001}, "reason"),
    ("retract", {"reason": "short"}, "reason"),
    ("retract", {"reason": "\u200b" * 12}, "reason"),
    ("amend", {"data": {"status": "a palace"}}, "data.status"),
    ("amend", {"data": {"status": "settled", "extra": 1}}, "data.extra"),
    ("amend", {"occurred_at": "2026-01-04T18:00:00"}, "occurred_at"),
    ("amend", {"occurred_at": "1767549600"}, "occurred_at"),
    ("amend", {"unknown": "field"}, "unknown"),
    ("retract", {"data": {"status": "settled"}}, "data"),
])
def test_bad_input_is_a_422_naming_the_field_and_changes_nothing(
        api: TestClient, partnership: Partnership, housed: dict[str, Any], path: str,
        body: dict[str, Any], field: str) -> None:
    command = amend if path == "amend" else retract
    before = changes(partnership.accord)
    refused = command(api, partnership, housed["client_id"], housed["first"], **body)
    assert refused.status_code == 422, refused.text
    assert field in [e["field"] for e in assert_error_shape(refused)["errors"]]
    assert changes(partnership.accord) == before


def test_a_time_in_the_future_a_malformed_position_and_the_registration_are_refused(
        api: TestClient, partnership: Partnership, housed: dict[str, Any]) -> None:
    client_id = housed["client_id"]
    before = changes(partnership.accord)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    refused = amend(api, partnership, client_id, housed["first"], occurred_at=future)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["occurred_at"]
    for position in ("0", "-1", "abc", "²", "1_0", "9" * 20):
        for command in (amend, retract):
            malformed = command(api, partnership, client_id, position)
            assert malformed.status_code == 422, (position, malformed.text)
            assert "position" in [e["field"] for e in malformed.json()["errors"]]
    # A client's registration is named by a log position too, but is no recorded fact.
    assert changes(partnership.accord) == before
    registration = api.post("/v1/clients", headers=hdr(partnership, "tp"), json={
        "identity": {**VALID_IDENTITY, "nhs_number": "4010232137"}}).json()
    # The registration is saved with the NHS number's index, which the answer names.
    [registered_at] = [n.id for n in partnership.accord.app.recorder.select_notifications(
        start=1, limit=registration["position"], topics=[REGISTERED])
        if str(n.originator_id) == registration["client_id"]]
    before = changes(partnership.accord)
    refused = retract(api, partnership, registration["client_id"], registered_at)
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["position"]
    # To an agency holding no record of that client it is as unknown as any other.
    stranger = retract(api, partnership, registration["client_id"], registered_at, "police")
    assert (stranger.status_code, stranger.json()) == (404, {"detail": "client not found"})
    assert changes(partnership.accord) == before


def test_nothing_is_corrected_once_the_client_is_erased(
        api: TestClient, partnership: Partnership, housed: dict[str, Any]) -> None:
    app = partnership.accord.app
    app.erase_client(UUID(housed["client_id"]), "right to erasure",
                     app.authenticate(partnership.token("tp", Role.IG_LEAD)))
    before = changes(partnership.accord)
    for command in (amend, retract):
        refused = command(api, partnership, housed["client_id"], housed["first"])
        assert (refused.status_code, refused.json()) == (404, {"detail": "client not found"})
    assert changes(partnership.accord) == before


def test_a_replay_shows_the_fact_as_it_stood_at_the_moment(
        api: TestClient, partnership: Partnership, housed: dict[str, Any]) -> None:
    client_id, first = housed["client_id"], housed["first"]
    amended = amend(api, partnership, client_id, first).json()["position"]
    retracted = retract(api, partnership, client_id, housed["second"]).json()["position"]

    for by in ("tp", "police"):  # the controller's IG lead, and the viewer's own
        before = {f["position"]: f for f in replay(api, partnership, client_id, by,
                                                   amended - 1)["permitted"]}
        assert before[first]["data"] == {"status": "settled"}
        assert before[first]["amendments"] == []
        assert housed["second"] in before
        now = replay(api, partnership, client_id, by)
        after = {f["position"]: f for f in now["permitted"]}
        assert after[first]["data"] == {"status": "temporary"}
        [correction] = after[first]["amendments"]
        assert correction["position"] == amended
        assert housed["second"] not in after
        if by == "tp":  # the controller sees who corrected its fact and why ...
            assert correction["reason"] == REASON and correction["by"]
            [withheld] = [f for f in now["withheld"] if f["position"] == housed["second"]]
            assert withheld["retraction"]["position"] == retracted
            assert withheld["retraction"]["reason"] == REASON
            assert withheld["reasons"][0].startswith("retracted by tp")
        else:  # ... a partner's IG lead only that it was corrected, and when
            assert correction["reason"] is None and correction["by"] is None
            assert now["withheld"] == []


def test_a_partner_whose_one_fact_is_retracted_still_answers_for_its_record(
        api: TestClient, partnership: Partnership, housed: dict[str, Any]) -> None:
    """An agency whose one fact about a client is retracted still holds its record of
    the client: the retraction is on it, with why, for its own staff to read."""
    client_id = housed["client_id"]
    police_view(api, partnership, client_id, housed["first"])
    theirs = post_fact(api, partnership, client_id, fact(
        "domestic_abuse_incident_recorded",
        {"role": "victim", "children_present": False, "police_reference": "NP/26/2"}),
        agency="police")
    assert retract(api, partnership, client_id, theirs, "police").status_code == 200
    kept = record_of(api, partnership, client_id, "police")
    assert list(kept) == [theirs]
    assert kept[theirs]["retraction"]["reason"] == REASON
