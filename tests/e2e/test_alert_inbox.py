"""Working alerts through the HTTP API, on both databases: the inbox's filters, sorts and
pages (each bad value a 422 that reads nothing), when each alert's trigger happened, people
named rather than ids, assigning an alert to a team member (and every refusal on the
record), and a household shown only as far as the caller may know its members."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from api.bootstrap import Accord
from domain.agencies import Role
from domain.application import OPERATOR
from projections.alerts import AlertInbox
from tests.builders import (
    SAFEGUARDING,
    VALID_IDENTITY,
    Partnership,
    access_records,
    agree,
    assert_error_shape,
    at,
    changes,
    childrens_terms,
    consent,
    events,
    fact,
    hdr,
    inbox,
    nhs_number,
    police_terms,
    post_fact,
    register,
    registered,
    settle,
)

ACCESS = "domain.access:AccessRecord.Recorded"


def child_concern(days_ago: float, concern: str = "neglect") -> dict[str, Any]:
    return fact("child_safeguarding_concern_raised",
                {"concern": concern, "summary": "Seen by the school.", "children_affected": 1},
                at(days_ago))


def three_alerts(api: TestClient, partnership: Partnership) -> list[dict[str, Any]]:
    """Children's services' alerts about three clients, raised in this order: a high one
    (physical abuse, 3 days ago), a medium one (1 day ago), a medium one (10 days ago)."""
    agree(api, partnership, childrens_terms())
    for seq, (days, concern) in enumerate([(3, "physical_abuse"), (1, "neglect"),
                                           (10, "neglect")]):
        client_id = registered(api, partnership, nhs_number(seq))
        post_fact(api, partnership, client_id, child_concern(days, concern))
    alerts = inbox(api, partnership)
    assert len(alerts) == 3
    return alerts


def ids(alerts: list[dict[str, Any]]) -> list[str]:
    return [a["alert_id"] for a in alerts]


def listed(api: TestClient, partnership: Partnership, query: str,
           agency: str = "childrens") -> tuple[list[str], int]:
    response = api.get(f"/v1/alerts?{query}", headers=hdr(partnership, agency, SAFEGUARDING))
    assert response.status_code == 200, response.text
    return ids(response.json()), int(response.headers["x-total-count"])


def test_the_inbox_filters_sorts_and_pages(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    high, medium, old = three_alerts(api, partnership)
    a, b, c = ids([high, medium, old])
    # Each alert says when its trigger happened: the fact's occurred_at, not when it was
    # recorded or raised.
    for alert, days in ((high, 3), (medium, 1), (old, 10)):
        assert datetime.fromisoformat(alert["triggered_at"]) == datetime.fromisoformat(
            at(days))
        assert datetime.fromisoformat(alert["raised_at"]) > datetime.fromisoformat(at(0.1))
    assert listed(api, partnership, "") == ([a, b, c], 3)
    assert listed(api, partnership, "sort=-raised") == ([c, b, a], 3)
    assert listed(api, partnership, "sort=triggered") == ([c, a, b], 3)
    assert listed(api, partnership, "sort=-triggered") == ([b, a, c], 3)
    assert listed(api, partnership, "sort=severity")[0][0] == a
    assert listed(api, partnership, "sort=due")[0] == [a, b, c]  # due in raising order
    assert listed(api, partnership, "severity=high") == ([a], 1)
    assert listed(api, partnership, "severity=medium&severity=high")[1] == 3
    assert listed(api, partnership, "rule=child_safeguarding_concern")[1] == 3
    assert listed(api, partnership, "rule=toxic_trio") == ([], 0)
    assert listed(api, partnership, "limit=2") == ([a, b], 3)
    assert listed(api, partnership, "limit=2&offset=2") == ([c], 3)
    assert listed(api, partnership, "offset=5") == ([], 3)
    # When raised: after is exclusive, before inclusive.
    raised_b = medium["raised_at"].replace("+00:00", "Z")
    assert listed(api, partnership, f"raised_after={raised_b}")[0] == [c]
    assert listed(api, partnership, f"raised_before={raised_b}")[0] == [a, b]
    # How old, by the inbox's clock: moved two hours on, every alert is over an hour old.
    found = api.app.state.projections.find(AlertInbox)  # type: ignore[attr-defined]
    assert listed(api, partnership, "newer_than=PT1H")[1] == 3
    assert listed(api, partnership, "older_than=PT1H")[1] == 0
    found.clock = lambda: datetime.now(UTC) + timedelta(hours=2)
    try:
        assert listed(api, partnership, "older_than=PT1H")[1] == 3
        assert listed(api, partnership, "newer_than=PT1H")[1] == 0
        assert listed(api, partnership, "newer_than=P1D&older_than=PT1H")[1] == 3
    finally:
        found.clock = lambda: datetime.now(UTC)
    # Status, several at once.
    acknowledged = api.post(f"/v1/alerts/{b}/acknowledge",
                            headers=hdr(partnership, "childrens", SAFEGUARDING))
    assert acknowledged.status_code == 200
    settle(api)
    assert listed(api, partnership, "status=acknowledged") == ([b], 1)
    assert listed(api, partnership, "status=raised&status=acknowledged")[1] == 3
    # Another agency's inbox is its own.
    assert listed(api, partnership, "", agency="police") == ([], 0)


BAD_QUERIES = {
    "status=open": "status", "severity=low": "severity", "rule=anything": "rule",
    "assigned_to=someone": "assigned_to", "assigned_to=ME": "assigned_to",
    "raised_after=2026-01-05T09:30:00": "raised_after",  # no zone
    "raised_before=1767000000": "raised_before",  # seconds since 1970
    "raised_after=2026-02-01T00:00:00Z&raised_before=2026-01-01T00:00:00Z": "raised_before",
    "older_than=3600": "older_than", "older_than=P1Y": "older_than",
    "newer_than=PT0S": "newer_than", "older_than=P2D&newer_than=P1D": "newer_than",
    "sort=age": "sort", "sort=": "sort", "limit=0": "limit", "limit=501": "limit",
    "limit=ten": "limit", "offset=-1": "offset",
}


@pytest.mark.parametrize("query", list(BAD_QUERIES))
def test_a_bad_filter_is_a_422_naming_it_and_reads_nothing(
    api: TestClient, accord: Accord, partnership: Partnership, query: str
) -> None:
    before = access_records(accord)
    response = api.get(f"/v1/alerts?{query}", headers=hdr(partnership, "childrens",
                                                           SAFEGUARDING))
    assert response.status_code == 422, response.text
    body = assert_error_shape(response)
    assert BAD_QUERIES[query] in {e["field"].split(".")[0] for e in body["errors"]}, body
    assert access_records(accord) == before


def colleague(accord: Accord, agency: str = "childrens",
              role: Role = SAFEGUARDING, name: str = "Aisha Rahman") -> tuple[UUID, str]:
    issued = accord.app.add_principal(agency, role, name, OPERATOR)
    return issued.principal_id, issued.token


def assign(api: TestClient, partnership: Partnership, alert_id: str, principal_id: object,
           agency: str = "childrens", role: Role = SAFEGUARDING) -> Any:
    return api.post(f"/v1/alerts/{alert_id}/assign", json={"principal_id": str(principal_id)},
                    headers=hdr(partnership, agency, role))


def test_an_alert_is_assigned_to_a_team_member_and_named(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    first, second, _ = three_alerts(api, partnership)
    aisha, aisha_token = colleague(accord)
    lead = accord.app.authenticate(partnership.token("childrens", SAFEGUARDING))
    assigned = assign(api, partnership, first["alert_id"], aisha)
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "raised"
    settle(api)
    alert = inbox(api, partnership, severity="high")[0]
    assert alert["assigned_to"] == {"principal": str(aisha), "name": "Aisha Rahman"}
    assert alert["assigned_by"] == {"principal": str(lead.principal_id), "name": lead.name}
    assert alert["assigned_at"] is not None
    # Her inbox, by assignee: ``me`` is whoever asks.
    mine = api.get("/v1/alerts?assigned_to=me",
                   headers={"Authorization": f"Bearer {aisha_token}"})
    assert ids(mine.json()) == [first["alert_id"]]
    assert listed(api, partnership, "assigned_to=me") == ([], 0)
    assert listed(api, partnership, f"assigned_to={aisha}")[0] == [first["alert_id"]]
    assert listed(api, partnership, "assigned_to=nobody")[1] == 2
    # Acknowledged and closed by people with names; reassigned to the lead.
    url = f"/v1/alerts/{first['alert_id']}"
    assert api.post(f"{url}/acknowledge",
                    headers={"Authorization": f"Bearer {aisha_token}"}).status_code == 200
    assert assign(api, partnership, first["alert_id"], lead.principal_id).status_code == 200
    assert assign(api, partnership, first["alert_id"], lead.principal_id).status_code == 409
    assert api.post(f"{url}/close", json={"outcome": "referral_made", "note": "s.47 begun"},
                    headers=hdr(partnership, "childrens", SAFEGUARDING)).status_code == 200
    settle(api)
    alert = inbox(api, partnership, status="closed")[0]
    assert alert["acknowledged_by"]["name"] == "Aisha Rahman"
    assert alert["assigned_to"]["name"] == lead.name
    assert alert["closed_by"] == {"principal": str(lead.principal_id), "name": lead.name}
    before = changes(accord)
    assert assign(api, partnership, first["alert_id"], aisha).status_code == 409  # closed
    assert changes(accord) == before
    # The stream sends the assignment as a change, with the names.
    position = assign(api, partnership, second["alert_id"], aisha).json()["position"]
    settle(api)
    streamed = api.get("/v1/alerts/stream?max_seconds=0",
                       headers={**hdr(partnership, "childrens", SAFEGUARDING),
                                "Last-Event-ID": str(position - 1)})
    assert f"id: {position}\n" in streamed.text
    assert '"name":"Aisha Rahman"' in streamed.text


def last_access(accord: Accord) -> Any:
    return events(accord, ACCESS)[-1]


def test_assignment_refusals_are_recorded_and_change_nothing(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    alert_id = three_alerts(api, partnership)[0]["alert_id"]
    aisha, _ = colleague(accord)
    practitioner, _ = colleague(accord, role=Role.PRACTITIONER, name="A practitioner")
    police_officer, _ = colleague(accord, agency="police", name="Police officer")
    revoked, _ = colleague(accord, name="Left the team")
    accord.app.revoke_principal(revoked, "left", OPERATOR)
    cases = [
        # (caller agency, assignee, status, outcome recorded)
        ("police", aisha, 404, "not_found"),  # another agency's alert: as unknown
        ("tp", aisha, 404, "not_found"),
        ("childrens", police_officer, 404, "not_found"),  # another agency's principal
        ("childrens", uuid4(), 404, "not_found"),  # nobody at all
        ("childrens", practitioner, 403, "refused"),  # not of the safeguarding team
        ("childrens", revoked, 403, "refused"),
    ]
    for agency, assignee, status, outcome in cases:
        before, reads = changes(accord), access_records(accord)
        response = assign(api, partnership, alert_id, assignee, agency=agency)
        assert response.status_code == status, (agency, assignee, response.text)
        assert changes(accord) == before, (agency, assignee)
        assert access_records(accord) == reads + 1, (agency, assignee)
        record = last_access(accord)
        assert (record.action, record.agency, record.outcome) == (
            "assign_alert", agency, outcome)
        assert record.client_id is None and record.client_ids == []  # names no client
        assert alert_id in record.detail and str(assignee) in record.detail
    # Unknown alerts and hidden ones read the same; the role and bad input come first,
    # unrecorded.
    unknown = assign(api, partnership, str(uuid4()), aisha, agency="police")
    hidden = assign(api, partnership, alert_id, aisha, agency="police")
    assert unknown.json() == hidden.json()
    for response in (assign(api, partnership, alert_id, aisha, role=Role.PRACTITIONER),
                     api.post(f"/v1/alerts/{alert_id}/assign", json={"principal_id": "x"},
                              headers=hdr(partnership, "childrens", SAFEGUARDING)),
                     api.post(f"/v1/alerts/{alert_id}/assign",
                              json={"principal_id": str(aisha), "note": "extra"},
                              headers=hdr(partnership, "childrens", SAFEGUARDING))):
        reads = access_records(accord)
        assert response.status_code in (403, 422), response.text
        assert access_records(accord) == reads
    settle(api)
    assert inbox(api, partnership, severity="high")[0]["assigned_to"] is None


def household_of_two(api: TestClient, partnership: Partnership) -> tuple[str, str, str]:
    """Two of the treatment provider's clients living together: (household, first, second)."""
    first = registered(api, partnership, nhs_number(1))
    second = register(api, partnership, identity={
        **VALID_IDENTITY, "given_name": "Bea", "family_name": "Other",
        "nhs_number": nhs_number(2)})
    linked = api.post("/v1/households", json={"client_ids": [first, second]},
                      headers=hdr(partnership, "tp"))
    assert linked.status_code == 201, linked.text
    return linked.json()["household_id"], first, second


def household(api: TestClient, partnership: Partnership, household_id: str, agency: str,
              purpose: str, role: Role = Role.PRACTITIONER) -> Any:
    return api.get(f"/v1/households/{household_id}?purpose={purpose}"
                   f"&min_position={api.app.state.accord.app.head_position()}",  # type: ignore[attr-defined]
                   headers=hdr(partnership, agency, role))


def test_a_household_shows_only_the_members_the_caller_may_identify(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    household_id, first, second = household_of_two(api, partnership)
    # Its own clients, for any purpose.
    own = household(api, partnership, household_id, "tp", "direct_care")
    assert own.status_code == 200, own.text
    assert [m["client_id"] for m in own.json()["members"]] == [first, second]
    assert own.json()["members"][1]["identity"]["family_name"] == "Other"
    record = last_access(accord)
    assert (record.action, record.outcome, record.purpose) == (
        "household", "returned", "direct_care")
    assert sorted(map(str, record.client_ids)) == sorted([first, second])
    # The police have no basis: the household is as unknown, and the record names nobody.
    before = access_records(accord)
    hidden = household(api, partnership, household_id, "police", "offender_management")
    unknown = household(api, partnership, str(uuid4()), "police", "offender_management")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json() == unknown.json()
    assert access_records(accord) == before + 2
    record = last_access(accord)
    assert (record.action, record.outcome, record.client_ids) == ("household", "not_found", [])
    # Once the first consents to the police knowing who they are, the police see the
    # first, and of the second nothing: not the id, not the name, not that there is one.
    agree(api, partnership, police_terms())
    consent(api, partnership, first)
    shown = household(api, partnership, household_id, "police", "offender_management")
    assert shown.status_code == 200, shown.text
    assert shown.json()["members"] == [{"client_id": first, "identity": {
        "given_name": "Ann", "family_name": "Example"}}]
    assert second not in shown.text and "Other" not in shown.text and "Bea" not in shown.text
    assert [str(c) for c in last_access(accord).client_ids] == [first]
    # Only for the purpose the basis names.
    assert household(api, partnership, household_id, "police", "direct_care").status_code == 404


def test_reading_a_household_needs_a_worker_and_a_purpose(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    household_id, _, _ = household_of_two(api, partnership)
    before = access_records(accord)
    for role in (Role.IG_LEAD, Role.ADMIN):
        assert household(api, partnership, household_id, "tp", "direct_care",
                         role).status_code == 403
    assert api.get(f"/v1/households/{household_id}",
                   headers=hdr(partnership, "tp")).status_code == 422
    assert api.get(f"/v1/households/{household_id}?purpose=gossip",
                   headers=hdr(partnership, "tp")).status_code == 422
    assert access_records(accord) == before
    safeguarding = household(api, partnership, household_id, "tp", "safeguarding_children",
                             SAFEGUARDING)
    assert safeguarding.status_code == 200
