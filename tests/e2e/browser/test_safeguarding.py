"""Children's services' safeguarding team in a real browser: an alert arrives in the open
inbox live (no reload), an escalated one comes first in red, and the team member works
the alert by keyboard (a closing form sent empty first, to see its errors), then reads
the alert's client under the alert's basis. axe-core runs on every page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

from playwright.sync_api import Page, expect

from domain.agencies import Role
from domain.agreements import AgreementTerms
from domain.identity import Identity
from projections.alerts import AlertInbox
from tests.builders import VALID_IDENTITY, childrens_terms, nhs_number
from tests.e2e.browser.conftest import Live, assert_accessible, shoot, sign_in

#: How long the live inbox may take: the rules, then the inbox, each on its poll, then
#: the stream's poll and the table's refresh.
LIVE_MS = 15_000


def agreed_with_a_client(live: Live) -> UUID:
    """A legal-duty agreement from the treatment provider to children's services (sharing
    the client's name), and a client of the provider; no alert yet."""
    app = live.accord.app
    terms = childrens_terms(categories={
        "safeguarding_children": ["children_in_household", "concern"],
        "treatment": ["appointment"], "identity": ["given_name", "family_name"]})
    proposed = app.propose_agreement(AgreementTerms.model_validate(terms),
                                     app.authenticate(live.token("tp", Role.IG_LEAD)))
    for party in ("tp", "childrens"):
        app.approve_agreement(UUID(str(proposed.id)),
                              app.authenticate(live.token(party, Role.IG_LEAD)))
    client_id, _ = app.register_client(
        Identity.model_validate({**VALID_IDENTITY, "nhs_number": nhs_number(42)}),
        app.authenticate(live.token("tp")))
    return client_id


def raise_concern(live: Live, client_id: UUID) -> None:
    """The treatment provider records a child safeguarding concern, as through the API."""
    app = live.accord.app
    app.record_fact(client_id, "child_safeguarding_concern_raised",
                    {"concern": "neglect", "summary": "Children left alone overnight.",
                     "children_affected": 2},
                    datetime.now(UTC) - timedelta(hours=2), app.authenticate(live.token("tp")))


def test_an_alert_arrives_live_and_the_team_closes_it_by_keyboard(
        page: Page, live: Live) -> None:
    client_id = agreed_with_a_client(live)
    sign_in(page, live, "childrens", Role.SAFEGUARDING, "/ui/alerts")
    expect(page.get_by_role("heading", level=1)).to_have_text("Safeguarding alerts")
    expect(page.get_by_test_id("no-alerts")).to_be_visible()
    expect(page.locator("#alert-live")).to_have_text("Updating live.")
    assert_accessible(page)
    page.evaluate("() => { window.stillTheSamePage = true; }")

    # Raised while the page is open: it appears without a reload, and is announced.
    raise_concern(live, client_id)
    row = page.get_by_test_id("alert-row")
    expect(row).to_have_count(1, timeout=LIVE_MS)
    expect(row).to_contain_text("Child safeguarding concern")
    expect(page.locator("#alert-live")).to_contain_text("Inbox updated: 1 alert")
    assert page.evaluate("() => window.stillTheSamePage === true"), "the page was reloaded"

    # A second alert, escalated: it arrives live too, first and in red.
    second, _ = live.accord.app.register_client(
        Identity.model_validate({**VALID_IDENTITY, "nhs_number": nhs_number(43)}),
        live.accord.app.authenticate(live.token("tp")))
    raise_concern(live, second)
    expect(row).to_have_count(2, timeout=LIVE_MS)
    newest = max(live.accord.find(AlertInbox).alerts_of("childrens"),
                 key=lambda a: a.raised_position)
    live.accord.app.escalate_alert(newest.alert_id, reason="not acknowledged in time")
    expect(row.first).to_have_attribute("data-status", "escalated", timeout=LIVE_MS)
    expect(row.first.locator(".nhsuk-tag--red")).to_have_text("Escalated")
    assert page.evaluate("() => window.stillTheSamePage === true"), "the page was reloaded"
    assert_accessible(page)
    shoot(page, "safeguarding-inbox")

    # Work the older alert by keyboard: open it, acknowledge, close.
    link = row.nth(1).get_by_role("link")
    link.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Child safeguarding concern")
    assert_accessible(page)
    shoot(page, "safeguarding-alert")
    page.get_by_role("button", name="Acknowledge this alert").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("You acknowledged this alert.")).to_be_visible()
    expect(page.get_by_test_id("acknowledged")).to_contain_text("childrens safeguarding")
    assert_accessible(page)

    # Closing with nothing chosen: the errors, in the summary and beside each field.
    page.get_by_role("button", name="Close this alert").focus()
    page.keyboard.press("Enter")
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text("Select the outcome")
    expect(summary).to_contain_text("Enter a note saying what was done")
    assert_accessible(page)
    summary.get_by_role("link", name="Enter a note saying what was done").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Note")).to_be_focused()
    page.keyboard.type("Strategy discussion held with the family's social worker.")
    page.get_by_label("Referral made").focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Close this alert").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("You closed this alert.")).to_be_visible()
    expect(page.get_by_test_id("closed")).to_contain_text("Referral made")
    expect(page.get_by_role("button", name="Close this alert")).to_have_count(0)
    assert_accessible(page)
    shoot(page, "safeguarding-closed")

    # The alert's client, under the alert's basis: the name and the concern, shared.
    page.get_by_role("link", name=re.compile("The client, as you may see them")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("The alert's client")
    expect(page.get_by_test_id("identity")).to_contain_text("Example")
    expect(page.get_by_test_id("facts")).to_contain_text("Child safeguarding concern raised")
    assert_accessible(page)
    shoot(page, "safeguarding-client")
