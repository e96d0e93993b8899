"""The treatment provider's IG lead in a real browser: replays what the police could see
of a client before and after the client withdrew consent, stepping from change to change
(htmx replaces only the answer; the address follows), and finds the police's reads on
the access audit. The agreement, the consent, the police's read and the withdrawal are
made through the app and the API, as the partnership would. axe-core runs on every page.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from uuid import UUID

import httpx
from playwright.sync_api import Page, expect

from domain.agencies import Role
from domain.agreements import AgreementTerms
from domain.identity import Identity
from tests.builders import VALID_IDENTITY, nhs_number, police_terms
from tests.e2e.browser.conftest import Live, assert_accessible, shoot, sign_in


def shared_then_withdrawn(live: Live) -> tuple[UUID, UUID, int, int]:
    """(client, agreement, consent's position, withdrawal's position): the police saw the
    client's engagement with consent, through the API, until the client withdrew it."""
    app = live.accord.app
    actor = app.authenticate
    agreement = app.propose_agreement(AgreementTerms.model_validate(police_terms()),
                                      actor(live.token("tp", Role.IG_LEAD)))
    for party in ("tp", "police"):
        app.approve_agreement(UUID(str(agreement.id)), actor(live.token(party, Role.IG_LEAD)))
    tp = actor(live.token("tp"))
    client_id, _ = app.register_client(
        Identity.model_validate({**VALID_IDENTITY, "nhs_number": nhs_number(7)}), tp)
    app.record_fact(client_id, "appointment_attended", {"appointment": "keywork"},
                    datetime(2026, 1, 5, 9, 30, tzinfo=UTC), tp)
    consent_id, given = app.give_consent(
        client_id, recipient_agency="police", recipient_kind=None,
        categories=["identity", "treatment"], purposes=["offender_management"],
        data_from=None, data_to=None, expires_at=None, obtained="written", by=tp)
    seen = httpx.get(f"{live.url}/v1/clients/{client_id}/view",
                     params={"purpose": "offender_management", "min_position": given},
                     headers={"Authorization": f"Bearer {live.token('police')}"})
    assert seen.status_code == 200 and seen.json()["facts"], seen.text
    withdrawn = app.withdraw_consent(client_id, consent_id, "changed their mind", tp)
    return client_id, UUID(str(agreement.id)), given, withdrawn


def test_the_ig_lead_replays_before_and_after_a_withdrawal_and_audits_the_reads(
        page: Page, live: Live) -> None:
    client_id, agreement_id, given, withdrawn = shared_then_withdrawn(live)
    sign_in(page, live, "tp", Role.IG_LEAD, "/ui/agreements")
    expect(page.get_by_role("heading", level=1)).to_have_text("Data-sharing agreements")
    assert_accessible(page)
    shoot(page, "ig-agreements")
    page.get_by_role("link", name=police_terms()["title"]).click()
    expect(page.get_by_test_id("agreement-summary")).to_contain_text("Active")
    assert_accessible(page)

    # The replay, asked by keyboard.
    page.get_by_role("link", name="Replay", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Replay")
    assert_accessible(page)
    page.get_by_label("Whose view").select_option("police")
    page.get_by_label("For what purpose").select_option("offender_management")
    page.get_by_label("Client id").fill(str(client_id))
    page.get_by_label("Client id").press("Enter")
    # Now, after the withdrawal: withheld, with the rule that withheld it.
    withheld = page.get_by_test_id("withheld")
    expect(withheld).to_contain_text("Appointment attended")
    expect(withheld).to_contain_text("withdrawn")
    expect(page.locator("#step-next")).to_contain_text("(none)")
    assert_accessible(page)
    page.get_by_test_id("steps").evaluate("steps => steps.scrollIntoView()")
    shoot(page, "ig-replay-after-withdrawal")

    # One change back: what the police saw while the consent stood; only the answer is
    # replaced, and the address follows (so the back button and a reload work).
    page.locator("#step-previous").focus()
    page.keyboard.press("Enter")
    permitted = page.get_by_test_id("permitted")
    expect(permitted).to_contain_text("Appointment attended")
    expect(permitted).to_contain_text("keywork")
    expect(page).to_have_url(re.compile(rf".*at={given}\b.*"))
    expect(page.locator("#replay-status")).to_contain_text(f"position {given}")
    expect(page.get_by_test_id("changes")).to_contain_text(f"{given} (shown)")
    assert_accessible(page)
    page.get_by_test_id("steps").evaluate("steps => steps.scrollIntoView()")
    shoot(page, "ig-replay-before-withdrawal")
    # And forward again to the withdrawal.
    page.locator("#step-next").click()
    expect(page).to_have_url(re.compile(rf".*at={withdrawn}\b.*"))
    expect(page.get_by_test_id("withheld")).to_contain_text("withdrawn")

    # The police's read is on the access audit.
    page.get_by_role("link", name="Access audit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Access audit")
    page.get_by_label("Client id").fill(str(client_id))
    page.get_by_role("button", name="Apply filters").click()
    reads = page.get_by_test_id("access").filter(has_text="police practitioner")
    expect(reads.first).to_contain_text("View for offender management")
    expect(page.get_by_test_id("accesses")).to_contain_text("tp ig_lead")  # the replays
    assert_accessible(page)
    shoot(page, "ig-access-audit")
    # From a read, the client's disclosures.
    page.get_by_role("link", name=re.compile("disclosures")).first.click()
    expect(page.get_by_test_id("disclosures")).to_contain_text("police practitioner")
    assert_accessible(page)
    assert str(agreement_id) in page.content()


def test_the_ig_leads_other_pages(page: Page, live: Live) -> None:
    """An amendment beside the terms in force, the terms form sent empty (its error
    summary), the reviews and the tree head."""
    app = live.accord.app
    ig_lead = app.authenticate(live.token("tp2", Role.IG_LEAD))
    agreement = app.propose_agreement(
        AgreementTerms.model_validate(police_terms()), ig_lead)
    app.approve_agreement(UUID(str(agreement.id)), ig_lead)
    app.approve_agreement(UUID(str(agreement.id)),
                          app.authenticate(live.token("police", Role.IG_LEAD)))
    app.amend_agreement(UUID(str(agreement.id)), AgreementTerms.model_validate(police_terms(
        title="Drug intervention: second year", retention_days=1095)), ig_lead)
    sign_in(page, live, "tp2", Role.IG_LEAD, f"/ui/agreements/{agreement.id}")
    terms = page.get_by_test_id("terms")
    expect(terms).to_contain_text("Version 1 (in force)")
    expect(terms).to_contain_text("Version 2 (awaiting approval)")
    expect(terms.locator("th", has_text="Changed")).to_have_count(2)  # title, retention
    assert_accessible(page)
    terms.evaluate("terms => terms.scrollIntoView()")
    shoot(page, "ig-agreement-amended")
    page.get_by_role("link", name="Agreements", exact=True).click()
    page.get_by_role("button", name="Propose an agreement").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Propose an agreement")
    assert_accessible(page)
    page.get_by_role("button", name="Propose the agreement").click()
    expect(page.get_by_role("alert")).to_contain_text("Choose the agency that receives the data")
    assert_accessible(page)
    for path, heading in (("/ui/audit/reviews", "Emergency access reviews"),
                          ("/ui/audit/tree", "Tamper evidence")):
        page.goto(f"{live.url}{path}")
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        assert_accessible(page)
