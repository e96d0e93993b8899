"""The safeguarding team's pages through the app (TestClient), on both databases: the
inbox (escalated first, filters, the fragment its script fetches, the live stream), one
alert and the work on it (acknowledge, assign, close: CSRF, errors beside the fields,
nothing changed on bad input), and the alert's client and household under its basis;
each read on the record, another agency's alert the same 404 as an unknown one."""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.bootstrap import Accord
from api.ui.routes import safeguarding
from domain.agencies import Role
from domain.application import OPERATOR
from tests.builders import (
    SAFEGUARDING,
    Partnership,
    access_records,
    agree,
    browser_of,
    changes,
    childrens_terms,
    concern,
    concern_raised,
    hdr,
    inbox,
    nhs_number,
    post_fact,
    registered,
    settle,
    ui_sign_in,
)

NONCE = re.compile(r"nonce[-=]\"?[A-Za-z0-9_\-]+")


def team_browser(api: TestClient, partnership: Partnership,
                 agency: str = "childrens", role: Role = SAFEGUARDING) -> tuple[TestClient, str]:
    browser = browser_of(api)
    return browser, ui_sign_in(browser, partnership.token(agency, role))


def error_summary(html: str) -> str:
    found = re.search(r'nhsuk-error-summary__list">(.*?)</ul>', html, re.DOTALL)
    assert found, "no error summary"
    return found.group(1)


def rows(html: str) -> list[str]:
    """The status of each row of the inbox table, in order."""
    return re.findall(r'data-testid="alert-row" data-status="([a-z]+)"', html)


def test_the_inbox_shows_the_agencys_alerts_on_the_record_and_to_nobody_else(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    concern_raised(api, partnership)
    [alert] = inbox(api, partnership)
    browser, _ = team_browser(api, partnership)
    before = access_records(accord)
    page = browser.get("/ui/alerts")
    assert page.status_code == 200, page.text
    assert access_records(accord) == before + 1  # the inbox read, as the API's
    assert alert["reason"] in page.text
    assert f'href="/ui/alerts/{alert["alert_id"]}"' in page.text
    assert rows(page.text) == ["raised"]
    assert 'href="/ui/alerts"' in page.text  # the header's section
    # Another agency's safeguarding team has no such alert; a practitioner no inbox.
    police, _ = team_browser(api, partnership, "police")
    assert rows(police.get("/ui/alerts").text) == []
    practitioner, _ = team_browser(api, partnership, "childrens", Role.PRACTITIONER)
    refused = practitioner.get("/ui/alerts")
    assert refused.status_code == 403 and "You cannot do this" in refused.text
    assert 'href="/ui/alerts"' not in practitioner.get("/ui").text


def test_escalated_alerts_come_first_in_red_and_filters_narrow_the_inbox(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    concern_raised(api, partnership)
    second = registered(api, partnership, nhs_number(1))
    post_fact(api, partnership, second, concern())
    alerts = {a["client_id"]: a["alert_id"] for a in inbox(api, partnership)}
    accord.app.escalate_alert(uuid.UUID(alerts[second]), reason="not acknowledged in time")
    settle(api)
    browser, _ = team_browser(api, partnership)
    page = browser.get("/ui/alerts").text
    assert rows(page) == ["escalated", "raised"]
    assert "nhsuk-tag--red" in page and "Overdue" in page
    # Oldest first puts the escalated (newer) one second.
    assert rows(browser.get("/ui/alerts?sort=raised&filtered=true").text) == [
        "raised", "escalated"]
    assert rows(browser.get("/ui/alerts?status=escalated&filtered=true").text) == [
        "escalated"]
    assert rows(browser.get("/ui/alerts?status=closed&filtered=true").text) == []
    assert rows(browser.get("/ui/alerts?rule=toxic_trio&filtered=true").text) == []
    assert len(rows(browser.get("/ui/alerts?age=day&severity=medium&filtered=true").text)) \
        == 2
    assert rows(browser.get("/ui/alerts?age=over-week&filtered=true").text) == []
    assert rows(browser.get("/ui/alerts?assigned=me&filtered=true").text) == []
    assert len(rows(browser.get("/ui/alerts?assigned=nobody&filtered=true").text)) == 2
    # A value no select offers is a 422 page, not a 500.
    for bad in ("rule=nonsense", "age=forever", "assigned=someone", "sort=random",
                "status=lost"):
        answer = browser.get(f"/ui/alerts?{bad}&filtered=true")
        assert answer.status_code == 422, bad
        assert "There is a problem" in answer.text


def test_the_script_gets_the_table_alone(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    concern_raised(api, partnership)
    settle(api)
    browser, _ = team_browser(api, partnership)
    fragment = browser.get("/ui/alerts", headers={"HX-Request": "true",
                                                  "X-Accord-Background": "1"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="alert-inbox"')
    assert "<html" not in fragment.text
    assert rows(fragment.text) == ["raised"]


def sse(browser: TestClient, url: str) -> str:
    with browser.stream("GET", url, headers={"Accept": "text/event-stream"}) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        return "".join(answer.iter_text())


def test_the_stream_says_when_the_inbox_changes_and_nothing_about_the_alerts(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    browser, _ = team_browser(api, partnership)
    page = browser.get("/ui/alerts").text
    since = int(re.search(r'data-since="(\d+)"', page).group(1))  # type: ignore[union-attr]
    assert sse(browser, f"/ui/alerts/stream?after={since}&max_seconds=0.3").count(
        "event: inbox") == 0
    client_id = concern_raised(api, partnership)
    settle(api)
    before = access_records(accord)
    events = sse(browser, f"/ui/alerts/stream?after={since}&max_seconds=0.3")
    assert events.count("event: inbox") == 1
    assert client_id not in events and "reason" not in events  # a signal, not the alert
    assert access_records(accord) == before  # so it records no read
    position = int(re.search(r"id: (\d+)", events).group(1))  # type: ignore[union-attr]
    assert position > since
    # Reconnecting with Last-Event-ID: nothing new since.
    with browser.stream("GET", "/ui/alerts/stream?max_seconds=0.3",
                        headers={"Accept": "text/event-stream",
                                 "Last-Event-ID": str(position)}) as answer:
        assert "event: inbox" not in "".join(answer.iter_text())
    # Asked for as a page, it is not one.
    assert browser.get("/ui/alerts/stream").status_code == 406
    # The police's safeguarding team hears nothing of children's services' inbox.
    police, _ = team_browser(api, partnership, "police")
    assert "event: inbox" not in sse(police, f"/ui/alerts/stream?after={since}"
                                            "&max_seconds=0.3")


def test_the_stream_ends_saying_why_when_the_session_ends(
    api: TestClient, accord: Accord, partnership: Partnership,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(safeguarding, "STANDING_SECONDS", 0.0)
    member = accord.app.add_principal("childrens", SAFEGUARDING, "Sam Stream", OPERATOR)
    browser = browser_of(api)
    ui_sign_in(browser, member.token)
    assert "event: ended" not in sse(browser, "/ui/alerts/stream?max_seconds=0.3")
    # Revoked while the stream is open (the request was let in): it says so and ends,
    # long before its five seconds are up.
    revoking = threading.Timer(0.5, accord.app.revoke_principal,
                               (member.principal_id, "left", OPERATOR))
    revoking.start()
    started = time.monotonic()
    events = sse(browser, "/ui/alerts/stream?max_seconds=5")
    revoking.join()
    assert events.rstrip().endswith("event: ended\ndata: revoked")
    assert time.monotonic() - started < 4


def test_what_the_page_does_by_itself_does_not_keep_the_session_alive(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    browser, _ = team_browser(api, partnership)
    store = api.app.state.ui_sessions  # type: ignore[attr-defined]
    signed_in_at = store.clock()
    store.clock = lambda: signed_in_at + timedelta(minutes=10)
    assert browser.get("/ui/alerts", headers={"HX-Request": "true",
                                              "X-Accord-Background": "1"}).status_code == 200
    store.clock = lambda: signed_in_at + timedelta(minutes=16)
    idle = browser.get("/ui/alerts", follow_redirects=False)
    assert idle.status_code == 303 and "why=idle" in idle.headers["location"]


def test_acknowledging_takes_the_sessions_csrf_token_and_says_it_is_done(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    concern_raised(api, partnership)
    [alert] = inbox(api, partnership)
    url = f"/ui/alerts/{alert['alert_id']}"
    browser, csrf = team_browser(api, partnership)
    page = browser.get(url)
    assert page.status_code == 200
    assert "Acknowledge this alert" in page.text and alert["reason"] in page.text
    before = changes(accord)
    refused = browser.post(f"{url}/acknowledge", data={}, follow_redirects=False)
    assert refused.status_code == 403 and changes(accord) == before
    done = browser.post(f"{url}/acknowledge", data={"csrf_token": csrf},
                        follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"].startswith(f"{url}?done=acknowledged&min_position=")
    after = browser.get(done.headers["location"]).text
    assert "You acknowledged this alert." in after
    assert "By childrens safeguarding" in after
    assert "Acknowledge this alert" not in after
    # A second acknowledgement is a conflict page, not an error.
    again = browser.post(f"{url}/acknowledge", data={"csrf_token": csrf})
    assert again.status_code == 409 and "This has changed" in again.text


def test_closing_shows_what_is_missing_beside_each_field_and_changes_nothing(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    concern_raised(api, partnership)
    [alert] = inbox(api, partnership)
    url = f"/ui/alerts/{alert['alert_id']}"
    browser, csrf = team_browser(api, partnership)
    before = changes(accord)
    for form, expected in (
        ({}, ["Select the outcome", "Enter a note saying what was done"]),
        ({"outcome": "maybe", "note": "x"}, ["Select the outcome"]),
        ({"outcome": "no_further_action", "note": "   "}, ["Enter a note saying what"]),
        ({"outcome": "no_further_action", "note": "x" * 1001},
         ["The note must be 1000 characters or fewer"]),
    ):
        answer = browser.post(f"{url}/close", data={"csrf_token": csrf, **form})
        assert answer.status_code == 422, form
        summary = error_summary(answer.text)
        for message in expected:
            assert message in summary, (form, message)
            assert answer.text.count(message) == 2  # in the summary and beside the field
        assert "Error: " in answer.text.split("</title>")[0]
    assert 'href="#outcome"' in browser.post(f"{url}/close", data={"csrf_token": csrf}).text
    nul = browser.post(f"{url}/close", data={"csrf_token": csrf, "outcome": "referral_made",
                                             "note": "held\x00"})
    assert nul.status_code == 422 and "control characters" in nul.text
    assert changes(accord) == before
    # Markup in the note is kept as text and shown as text.
    note = '<script>alert("x")</script> Strategy <b>discussion</b> held.'
    closed = browser.post(f"{url}/close", data={
        "csrf_token": csrf, "outcome": "referral_made", "note": note})
    assert closed.status_code == 200, closed.text  # followed to the alert
    assert "You closed this alert." in closed.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Strategy &lt;b&gt;" in closed.text
    assert "<script>alert" not in closed.text
    assert "Referral made" in closed.text and "Close this alert" not in closed.text
    [shown] = inbox(api, partnership, status="closed")
    assert shown["note"] == note


def test_assigning_to_a_member_of_the_team(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    concern_raised(api, partnership)
    [alert] = inbox(api, partnership)
    url = f"/ui/alerts/{alert['alert_id']}"
    colleague = accord.app.add_principal("childrens", SAFEGUARDING, "Robin <Lead>", OPERATOR)
    browser, csrf = team_browser(api, partnership)
    page = browser.get(url).text
    assert f'value="{colleague.principal_id}"' in page and "Robin &lt;Lead&gt;" in page
    before = changes(accord)
    for bad in ("", "not-an-id"):
        answer = browser.post(f"{url}/assign", data={"csrf_token": csrf, "principal_id": bad})
        assert answer.status_code == 422
        assert answer.text.count("Select who will work this alert") == 2
    assert changes(accord) == before
    done = browser.post(f"{url}/assign", data={
        "csrf_token": csrf, "principal_id": str(colleague.principal_id)})
    assert done.status_code == 200 and "The alert is assigned." in done.text
    assigned = done.text.split('data-testid="assigned">')[1].split("</dd>")[0]
    assert "Robin &lt;Lead&gt;" in assigned and "by childrens safeguarding" in assigned
    again = browser.post(f"{url}/assign", data={
        "csrf_token": csrf, "principal_id": str(colleague.principal_id)})
    assert again.status_code == 409 and "already" in error_summary(again.text)
    # The inbox filters by whom it is assigned to.
    listing = browser.get(f"/ui/alerts?assigned={colleague.principal_id}&filtered=true").text
    assert rows(listing) == ["raised"]


def test_another_agencys_alert_is_the_same_404_as_an_unknown_one_on_every_alert_page(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    concern_raised(api, partnership)
    [alert] = inbox(api, partnership)
    police, csrf = team_browser(api, partnership, "police")
    for tail in ("", "/client", "/household"):
        before = access_records(accord)
        theirs = police.get(f"/ui/alerts/{alert['alert_id']}{tail}")
        made_up = police.get(f"/ui/alerts/{uuid.uuid4()}{tail}")
        assert theirs.status_code == made_up.status_code == 404
        assert NONCE.sub("", theirs.text) == NONCE.sub("", made_up.text)
        assert access_records(accord) == before + 2  # each refused read is on the record
    before = changes(accord)
    for action, form in (("acknowledge", {}), ("close", {
            "outcome": "no_further_action", "note": "x"})):
        answer = police.post(f"/ui/alerts/{alert['alert_id']}/{action}",
                             data={"csrf_token": csrf, **form})
        assert answer.status_code == 404
    assert changes(accord) == before


def test_the_alerts_client_and_household_under_the_alerts_basis(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    agree(api, partnership, childrens_terms(categories={
        "safeguarding_children": ["children_in_household", "concern"],
        "identity": ["given_name", "family_name"]}))
    parent = registered(api, partnership)
    partner = registered(api, partnership, nhs_number(1))
    linked = api.post("/v1/households", json={"client_ids": [parent, partner]},
                      headers=hdr(partnership, "tp"))
    assert linked.status_code == 201, linked.text
    post_fact(api, partnership, parent, concern())
    [alert] = inbox(api, partnership)
    assert alert["household_id"] == linked.json()["household_id"]
    browser, _ = team_browser(api, partnership)
    page = browser.get(f"/ui/alerts/{alert['alert_id']}").text
    client_link = re.search(r'href="(/ui/alerts/[^"]+/client[^"]*)"', page)
    household_link = re.search(r'href="(/ui/alerts/[^"]+/household[^"]*)"', page)
    assert client_link and household_link
    before = access_records(accord)
    client = browser.get(client_link.group(1).replace("&amp;", "&"))
    assert client.status_code == 200, client.text
    assert access_records(accord) == before + 2  # the alert, then the view
    text = client.text
    assert "Example" in text and "Ann" in text  # the identity the agreement shares
    assert "Child safeguarding concern raised" in text and "neglect" in text
    assert "overnight" not in text  # the summary is not shared
    audit: list[dict[str, Any]] = api.get(
        f"/v1/audit/accesses?client_id={parent}",
        headers=hdr(partnership, "tp", Role.IG_LEAD)).json()
    assert any(r["action"] == "view" and r["purpose"] == "safeguarding_children"
               and r["agency"] == "childrens" for r in audit)
    household = browser.get(household_link.group(1).replace("&amp;", "&"))
    assert household.status_code == 200, household.text
    members = household.text.split("data-testid=\"members\"")[1].split("</table>")[0]
    assert "The alert's client" in members and "Member 2" in members
