"""One alert, the safeguarding team and the most-urgent-first inbox, through the HTTP API
(what the web application's alert pages call): another agency's alert is as unknown, the
read of one alert is on the record naming its client, and the team is the caller's own
agency's active safeguarding members."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from api.bootstrap import Accord
from domain.agencies import Role
from domain.alerts import AlertOutcome
from domain.application import OPERATOR
from tests.builders import (
    SAFEGUARDING,
    Partnership,
    access_records,
    concern,
    concern_raised,
    hdr,
    inbox,
    nhs_number,
    post_fact,
    registered,
)


def test_one_alert_for_its_recipient_only_and_on_the_record(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id = concern_raised(api, partnership)
    [listed] = inbox(api, partnership)
    url = f"/v1/alerts/{listed['alert_id']}"
    mine = hdr(partnership, "childrens", SAFEGUARDING)
    before = access_records(accord)
    one = api.get(url, headers=mine)
    assert one.status_code == 200, one.text
    assert one.json() == listed
    assert access_records(accord) == before + 1
    audit = api.get(f"/v1/audit/accesses?client_id={client_id}",
                    headers=hdr(partnership, "tp", Role.IG_LEAD)).json()
    assert any(r["action"] == "alerts" and r["agency"] == "childrens" for r in audit), audit
    # Another agency's safeguarding team, and a made-up id: the same 404, recorded too.
    for headers, alert_url in ((hdr(partnership, "police", SAFEGUARDING), url),
                               (mine, f"/v1/alerts/{uuid.uuid4()}")):
        before = access_records(accord)
        refused = api.get(alert_url, headers=headers)
        assert (refused.status_code, refused.json()["detail"]) == (404, "alert not found")
        assert access_records(accord) == before + 1
    # A practitioner of the recipient agency does not read alerts.
    assert api.get(url, headers=hdr(partnership, "childrens")).status_code == 403


def test_the_team_is_the_callers_agencys_active_safeguarding_members(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    mine = hdr(partnership, "childrens", SAFEGUARDING)
    colleague = accord.app.add_principal("childrens", Role.SAFEGUARDING, "Alex Adams",
                                         OPERATOR)
    accord.app.add_principal("childrens", Role.PRACTITIONER, "Not Safeguarding", OPERATOR)
    team = api.get("/v1/alerts/team", headers=mine)
    assert team.status_code == 200, team.text
    assert [m["name"] for m in team.json()] == ["Alex Adams", "childrens safeguarding"]
    assert team.json()[0]["principal"] == str(colleague.principal_id)
    police = api.get("/v1/alerts/team", headers=hdr(partnership, "police", SAFEGUARDING))
    assert [m["name"] for m in police.json()] == ["police safeguarding"]
    accord.app.revoke_principal(colleague.principal_id, "left the team", OPERATOR)
    assert [m["name"] for m in api.get("/v1/alerts/team", headers=mine).json()] == [
        "childrens safeguarding"]
    assert api.get("/v1/alerts/team",
                   headers=hdr(partnership, "childrens")).status_code == 403


def test_most_urgent_first_puts_escalated_alerts_before_raised_and_worked_ones(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    """Four alerts raised in turn (the oldest first): the newest is escalated, the oldest
    closed, the second acknowledged; most urgent first is then escalated, raised,
    acknowledged, closed, whatever their age."""
    clients = [concern_raised(api, partnership)]
    for seq in (1, 2, 3):
        clients.append(registered(api, partnership, nhs_number(seq)))
        post_fact(api, partnership, clients[-1], concern())
    alerts = {a["client_id"]: a["alert_id"] for a in inbox(api, partnership)}
    oldest, second, third, newest = (uuid.UUID(alerts[c]) for c in clients)
    team = accord.app.authenticate(partnership.token("childrens", SAFEGUARDING))
    accord.app.close_alert(oldest, AlertOutcome.ALREADY_KNOWN, "Known to the team.", team)
    accord.app.acknowledge_alert(second, team)
    accord.app.escalate_alert(newest, reason="not acknowledged in time")
    urgent = inbox(api, partnership, sort="urgency")
    assert [(a["alert_id"], a["status"]) for a in urgent] == [
        (str(newest), "escalated"), (str(third), "raised"), (str(second), "acknowledged"),
        (str(oldest), "closed")]
