"""Safeguarding alerts through the HTTP API, on both databases: households, the rules as a
tracked projection (once per triggering position, also across a rebuild and a restart),
no agreement → no alert (and the log says why), the lifecycle, escalation, other
agencies, access records and the live stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient

from api.bootstrap import Accord
from domain.agencies import Role
from infra.schema import tracking
from projections.alerts import AlertInbox
from projections.safeguarding import SafeguardingRules
from tests.builders import (
    RAISED,
    SAFEGUARDING,
    VALID_IDENTITY,
    WITHHELD,
    Partnership,
    agree,
    at,
    childrens_terms,
    concern,
    concern_raised,
    events,
    fact,
    hdr,
    inbox,
    nhs_number,
    post_fact,
    register,
    registered,
    settle,
)


def children(count: int = 2, pregnant: bool = False) -> dict[str, Any]:
    return fact("household_updated", {"children_in_household": count,
                                      "parental_responsibility": True,
                                      "pregnant": pregnant}, at(20))


def test_a_child_concern_raises_one_alert_with_its_basis(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    agreement_id = agree(api, partnership, childrens_terms())
    client_id = registered(api, partnership)
    position = post_fact(api, partnership, client_id, concern())
    alerts = inbox(api, partnership)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["rule"] == "child_safeguarding_concern"
    assert alert["client_id"] == client_id
    assert alert["status"] == "raised"
    assert alert["trigger_position"] == position
    assert "overnight" not in alert["reason"]  # no clinical or case detail
    assert alert["basis"]["agreements"][0]["agreement_id"] == agreement_id
    assert "Children Act" in alert["basis"]["agreements"][0]["legal_duty"]
    # Nobody else sees it.
    assert inbox(api, partnership, "police") == []
    assert inbox(api, partnership, "tp") == []


def test_no_agreement_no_alert_and_the_log_says_why(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id = registered(api, partnership)
    position = post_fact(api, partnership, client_id, concern())
    assert inbox(api, partnership) == []
    withheld = [e for e in events(accord, WITHHELD) if e.trigger_position == position]
    assert [(e.rule, e.recipient) for e in withheld] == [
        ("child_safeguarding_concern", "childrens")]
    assert "no agreement in force from tp to childrens" in withheld[0].reason
    # A purpose or basis that is not a legal duty does not count either.
    agree(api, partnership, childrens_terms(lawful_basis={
        "article_6": "6(1)(e) public task", "article_9": "9(2)(h) health or social care"}))
    post_fact(api, partnership, client_id, concern())
    assert inbox(api, partnership) == []


def test_alerts_are_raised_once_per_position_across_a_rebuild_and_a_restart(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id = concern_raised(api, partnership)
    post_fact(api, partnership, client_id, concern())
    assert len(inbox(api, partnership)) == 2
    rules = api.app.state.projections.find(SafeguardingRules)  # type: ignore[attr-defined]
    rules.rebuild()
    # A fresh instance (a restarted process) resumes from the tracked position.
    restarted = SafeguardingRules(accord.app, accord.engine)
    assert restarted.position() == rules.position()
    assert restarted.catch_up() == 0
    # A crash after the append but before the commit: forget the position and state.
    restarted.rebuild()
    assert len(events(accord, RAISED)) == 2
    assert len(inbox(api, partnership)) == 2


def test_lifecycle_acknowledge_close_and_refusals(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    concern_raised(api, partnership)
    alert_id = inbox(api, partnership)[0]["alert_id"]
    url = f"/v1/alerts/{alert_id}"
    mine = hdr(partnership, "childrens", SAFEGUARDING)
    for agency in ("police", "tp"):  # another agency's alert is as unknown
        assert api.post(f"{url}/acknowledge",
                        headers=hdr(partnership, agency, SAFEGUARDING)).status_code == 404
    assert api.post(f"{url}/acknowledge",
                    headers=hdr(partnership, "childrens")).status_code == 403
    assert api.post(f"{url}/close", json={"outcome": "maybe", "note": "x"},
                    headers=mine).status_code == 422
    acknowledged = api.post(f"{url}/acknowledge", headers=mine)
    assert acknowledged.status_code == 200
    assert acknowledged.json()["status"] == "acknowledged"
    assert api.post(f"{url}/acknowledge", headers=mine).status_code == 409
    body = {"outcome": "referral_made", "note": "Strategy discussion held."}
    closed = api.post(f"{url}/close", json=body, headers=mine)
    assert closed.status_code == 200, closed.text
    assert api.post(f"{url}/close", json=body, headers=mine).status_code == 409
    [shown] = inbox(api, partnership, status="closed")
    assert shown["outcome"] == "referral_made"
    assert inbox(api, partnership, status="raised") == []


def test_an_unacknowledged_alert_is_escalated_after_its_time(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    concern_raised(api, partnership)
    [alert] = inbox(api, partnership)
    due = datetime.fromisoformat(alert["acknowledge_by"])
    assert timedelta(hours=3.9) < due - datetime.now(UTC) <= timedelta(hours=4)
    index = api.app.state.projections.find(AlertInbox)  # type: ignore[attr-defined]
    index.clock = lambda: due - timedelta(seconds=1)
    assert index.escalate_due() == 0
    index.clock = lambda: due + timedelta(seconds=1)
    assert index.escalate_due() == 1
    [escalated] = inbox(api, partnership)
    assert escalated["status"] == "escalated"
    assert escalated["escalated_at"] is not None
    assert index.escalate_due() == 0  # once
    mine = hdr(partnership, "childrens", SAFEGUARDING)
    assert api.post(f"/v1/alerts/{alert['alert_id']}/acknowledge",
                    headers=mine).status_code == 200


def test_households_the_toxic_trio_and_disengagement(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    agree(api, partnership, childrens_terms())
    parent = registered(api, partnership)
    partner = registered(api, partnership, "4010232137")
    post_fact(api, partnership, parent, children())
    post_fact(api, partnership, parent, fact(
        "treatment_episode_started", {"modality": "pharmacological",
                                      "substances": ["opioids"]}, at(30)))
    post_fact(api, partnership, parent, fact(
        "mental_health_concern_recorded", {"concern": "low_mood", "risk_level": "medium"},
        at(10)))
    post_fact(api, partnership, partner, fact(
        "domestic_abuse_risk_recorded", {"role": "perpetrator", "risk_level": "high"},
        at(5)))
    assert inbox(api, partnership) == []  # apart, nobody holds the whole picture
    # Linking: another agency's client is as unknown; a practitioner links.
    other = register(api, partnership, "tp2")
    refused = api.post("/v1/households", json={"client_ids": [parent, other]},
                       headers=hdr(partnership, "tp"))
    assert refused.status_code == 404
    assert api.post("/v1/households", json={"client_ids": [parent]},
                    headers=hdr(partnership, "tp", Role.IG_LEAD)).status_code == 403
    linked = api.post("/v1/households", json={"client_ids": [parent, partner]},
                      headers=hdr(partnership, "tp"))
    assert linked.status_code == 201, linked.text
    household_id = linked.json()["household_id"]
    [trio] = inbox(api, partnership)
    assert trio["rule"] == "toxic_trio"
    assert trio["severity"] == "high"
    assert trio["household_id"] == household_id
    assert trio["client_id"] == parent
    # A client is in at most one household.
    again = api.post("/v1/households", json={"client_ids": [partner]},
                     headers=hdr(partnership, "tp"))
    assert again.status_code == 409
    # The parent disengages: the third missed appointment in 28 days raises one alert.
    for days in (27, 14, 2, 1):
        post_fact(api, partnership, parent, fact("appointment_missed",
                                                 {"appointment": "keywork"}, at(days)))
    rules = [a["rule"] for a in inbox(api, partnership)]
    assert rules == ["toxic_trio", "parent_disengaging"]
    # A new member: added by an agency that sees a member and the client.
    third = registered(api, partnership, nhs_number(1))
    added = api.post(f"/v1/households/{household_id}/members", json={"client_id": third},
                     headers=hdr(partnership, "tp", SAFEGUARDING))
    assert added.status_code == 201, added.text
    assert api.post(f"/v1/households/{household_id}/members", json={"client_id": third},
                    headers=hdr(partnership, "tp2")).status_code == 404


def test_multi_agency_concerns_and_pregnancy(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    agree(api, partnership, childrens_terms())
    client_id = registered(api, partnership)
    post_fact(api, partnership, client_id, fact(
        "treatment_episode_started", {"modality": "pharmacological",
                                      "substances": ["alcohol"]}, at(30)))
    # Children's services records its own concern (it sees the client under the duty):
    # it holds that itself, so no alert; the treatment provider's DA record within 7 days
    # makes two agencies' concerns about one household.
    settle(api)
    post_fact(api, partnership, client_id, concern(at(3)), agency="childrens")
    assert inbox(api, partnership) == []
    position = post_fact(api, partnership, client_id, fact(
        "domestic_abuse_incident_recorded", {"role": "victim", "children_present": True},
        at(1)))
    [escalation] = inbox(api, partnership)
    assert escalation["rule"] == "multi_agency_concerns"
    assert escalation["severity"] == "high"
    # Pregnancy in treatment for alcohol: children's services, and primary care (none in
    # this partnership, so the log says so).
    position = post_fact(api, partnership, client_id, children(0, pregnant=True))
    assert [a["rule"] for a in inbox(api, partnership)][-1] == "pregnancy_in_treatment"
    withheld = [(e.rule, e.recipient) for e in events(accord, WITHHELD)
                if e.trigger_position == position]
    assert withheld == [("pregnancy_in_treatment", "primary_care")]


def test_each_inbox_read_is_recorded(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    concern_raised(api, partnership)
    settle(api)
    before = len(events(accord, "domain.access:AccessRecord.Recorded"))
    inbox(api, partnership)
    records = events(accord, "domain.access:AccessRecord.Recorded")[before:]
    assert [(r.action, r.agency, r.outcome) for r in records] == [
        ("alerts", "childrens", "returned")]
    assert [i["controller"] for i in records[0].returned] == ["tp"]


def test_the_stream_sends_open_alerts(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id = concern_raised(api, partnership)
    settle(api)
    response = api.get("/v1/alerts/stream?max_seconds=0",
                       headers=hdr(partnership, "childrens", SAFEGUARDING))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.count("event: alert") == 1
    assert client_id in response.text
    assert api.get("/v1/alerts/stream?max_seconds=0",
                   headers=hdr(partnership, "childrens")).status_code == 403


def test_the_live_stream_over_real_http(server: str, partnership: Partnership) -> None:
    with httpx.Client(base_url=server, timeout=10) as http:
        agree(http, partnership, childrens_terms())  # type: ignore[arg-type]
        response = http.post("/v1/clients", json={"identity": VALID_IDENTITY},
                             headers=hdr(partnership, "tp"))
        client_id = response.json()["client_id"]
        with http.stream("GET", "/v1/alerts/stream",
                         headers=hdr(partnership, "childrens", SAFEGUARDING)) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            post = http.post(f"/v1/clients/{client_id}/events", json=concern(),
                             headers=hdr(partnership, "tp"))
            assert post.status_code == 201
            for line in lines:
                if line.startswith("data: "):
                    assert client_id in line
                    break
        # The server is still well after the client went away.
        assert http.get("/v1/alerts", headers=hdr(partnership, "childrens",
                                                  SAFEGUARDING)).status_code == 200


def test_a_rebuild_that_resets_the_rules_mid_batch_cannot_make_them_miss_an_alert(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    """The rules evaluate a batch against state read outside their write transaction. If
    an ``accord projections rebuild`` in another process empties that state meanwhile and
    is back at the same position before the batch commits, the position check alone
    would pass and the batch would have been judged on half the facts: the third missed
    appointment would raise nothing. The rules check, before any alert, that the
    position is still where the batch began; here they start again and raise it."""
    agree(api, partnership, childrens_terms())
    parent = registered(api, partnership)
    post_fact(api, partnership, parent, children())
    for days in (14, 2):
        post_fact(api, partnership, parent, fact("appointment_missed",
                                                 {"appointment": "keywork"}, at(days)))
    rules = api.app.state.projections.find(SafeguardingRules)  # type: ignore[attr-defined]
    rules.catch_up()
    own = tracking.c.name == rules.name
    with accord.engine.connect() as conn:  # the state at this position, as a rebuild ends
        kept = {table: [r._asdict() for r in conn.execute(table.select())]
                for table in rules.tables}
        position = conn.execute(tracking.select().where(own)).one()._asdict()
    post_fact(api, partnership, parent, fact("appointment_missed",
                                             {"appointment": "keywork"}, at(1)))

    def rebuild_resets() -> None:  # another process starts a rebuild: all emptied
        with accord.engine.begin() as conn:
            for table in rules.tables:
                conn.execute(table.delete())
            conn.execute(tracking.delete().where(own))

    def rebuild_is_back() -> None:  # ... and has rebuilt up to the same position
        with accord.engine.begin() as conn:
            for table, rows in kept.items():
                conn.execute(table.delete())
                if rows:
                    conn.execute(table.insert(), rows)
            conn.execute(tracking.delete().where(own))
            conn.execute(tracking.insert(), [position])

    apply, advance = rules._apply, rules._advance
    steps: list[str] = []

    def resetting_apply(*args: Any) -> Any:
        if not steps:
            steps.append("reset")
            rebuild_resets()
        return apply(*args)

    def advance_after_return(conn: Any, upto: int) -> None:
        if steps == ["reset"]:
            steps.append("back")
            rebuild_is_back()
        advance(conn, upto)

    rules._apply, rules._advance = resetting_apply, advance_after_return
    rules.catch_up()
    assert steps[0] == "reset"
    assert [a["rule"] for a in inbox(api, partnership)] == ["parent_disengaging"]
