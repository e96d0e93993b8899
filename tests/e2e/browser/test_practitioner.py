"""Practitioners in a real browser, axe-core on every page.

(1) A treatment provider's practitioner registers a client and records facts by keyboard
alone, through forms generated from the catalogue, a mistake first to see its errors;
then filters the chronology (an htmx update of the list) and reads the agency's own
record. (2) The police find the client only once an agreement is in force and the client
has consented, see the facts masked with their basis in words, and lose them when the
consent is withdrawn (recorded and withdrawn through the provider's pages)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from uuid import UUID

from playwright.sync_api import Browser, Page, expect

from domain.agencies import Role
from domain.agreements import AgreementTerms
from domain.identity import Identity
from tests.builders import VALID_IDENTITY, nhs_number, police_terms
from tests.e2e.browser.conftest import Live, assert_accessible, shoot, sign_in

#: How long the agency views may take to follow a write made elsewhere (their poll).
VIEWS_S = 15


def keyboard_to(page: Page, label: str) -> None:
    """Moves the keyboard's focus to the field labelled ``label`` (as Tab would)."""
    page.get_by_label(label, exact=True).focus()


def test_a_practitioner_registers_a_client_and_records_facts_by_keyboard(
        page: Page, live: Live) -> None:
    sign_in(page, live, "tp")
    page.get_by_role("link", name="Clients").first.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Caseload")
    assert_accessible(page)
    page.get_by_role("link", name="Register a client").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Register a client")
    assert_accessible(page)

    # Typed field to field with Tab, the NHS number mistyped; Enter sends the form.
    keyboard_to(page, "Given name")
    for text in ("Grace", "Okoro", "3", "9", "1990", "999 000 0601"):
        page.keyboard.type(text)
        page.keyboard.press("Tab")
    page.keyboard.type("LU1 2AB")
    page.keyboard.press("Enter")
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text("Enter a valid NHS number")
    expect(page).to_have_title(re.compile("^Error: Register a client"))
    assert_accessible(page)
    shoot(page, "practitioner-register-errors")
    summary.get_by_role("link", name=re.compile("valid NHS number")).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("NHS number", exact=True)).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type(nhs_number(601))
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("client-name")).to_have_text("Grace Okoro")
    expect(page.get_by_text("The client is registered.")).to_be_visible()
    assert_accessible(page)

    # The fact type chosen from the catalogue, then its generated form.
    page.get_by_role("link", name="Record a fact").focus()
    page.keyboard.press("Enter")
    kind = page.get_by_label("What do you want to record?")
    kind.focus()
    page.keyboard.type("Treatment episode s")
    expect(kind).to_have_value("treatment_episode_started")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Treatment episode started")
    assert_accessible(page)
    page.get_by_label("Pharmacological").focus()
    page.keyboard.press("Space")
    page.get_by_label("Opioids").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")  # crack
    page.keyboard.press("Space")
    keyboard_to(page, "Key worker")
    page.keyboard.type("Sam Okafor")
    page.get_by_role("heading", level=1).evaluate("e => e.scrollIntoView()")
    shoot(page, "practitioner-fact-form")
    keyboard_to(page, "Key worker")
    page.keyboard.press("Enter")
    expect(page.get_by_text("The fact is recorded.")).to_be_visible()
    chronology = page.get_by_test_id("chronology")
    expect(chronology).to_contain_text("Treatment episode started")
    expect(chronology).to_contain_text("Opioids, Crack")
    expect(page.get_by_test_id("summary")).to_contain_text("Sam Okafor")
    assert_accessible(page)

    # A prescription, its number mistyped first: the error beside the field.
    page.goto(f"{page.url.split('?')[0]}/facts/new?type=prescription_changed"
              "&purpose=direct_care")
    page.get_by_label("Methadone").focus()
    page.keyboard.press("Space")
    page.get_by_label("Started").focus()
    page.keyboard.press("Space")
    keyboard_to(page, "Daily dose (mg)")
    page.keyboard.type("sixty")
    page.get_by_role("radio", name="Yes").focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name=re.compile("^Record")).focus()
    page.keyboard.press("Enter")
    expect(page.locator("#data-daily-dose-mg-error")).to_contain_text(
        "Daily dose (mg) must be a number from 0 to 1000")
    assert_accessible(page)
    shoot(page, "practitioner-fact-errors")
    keyboard_to(page, "Daily dose (mg)")
    page.keyboard.press("Control+A")
    page.keyboard.type("60")
    page.keyboard.press("Enter")
    expect(page.get_by_text("The fact is recorded.")).to_be_visible()
    expect(page.get_by_test_id("summary")).to_contain_text("Methadone 60 mg a day, supervised")
    assert_accessible(page)
    shoot(page, "practitioner-client")

    # The chronology filtered by category: htmx replaces the list and the address.
    page.evaluate("() => { window.stillTheSamePage = true; }")
    category = page.get_by_label("Show facts of")
    category.focus()
    page.keyboard.type("Prescribing")
    category.dispatch_event("change")
    expect(page.get_by_test_id("chronology-count")).to_contain_text("1 fact of prescribing")
    expect(chronology).not_to_contain_text("Treatment episode started")
    expect(page).to_have_url(re.compile(r"category=prescribing"))
    assert page.evaluate("() => window.stillTheSamePage === true"), "the page was reloaded"
    assert_accessible(page)

    page.get_by_role("link", name="Your agency's own record").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Grace Okoro")
    expect(page.get_by_test_id("record-facts")).to_contain_text("recorded by tp practitioner")
    assert_accessible(page)
    shoot(page, "practitioner-own-record")


def _client_with_an_order(live: Live) -> UUID:
    app = live.accord.app
    tp = app.authenticate(live.token("tp"))
    client_id, _ = app.register_client(Identity.model_validate(
        {**VALID_IDENTITY, "nhs_number": nhs_number(602)}), tp)
    when = datetime(2026, 1, 5, 9, tzinfo=UTC)
    app.record_fact(client_id, "treatment_episode_started", {
        "modality": "pharmacological", "substances": ["opioids"], "key_worker": "Sam Okafor"},
        when, tp)
    app.record_fact(client_id, "criminal_justice_status", {
        "order": "drug_rehabilitation_requirement", "status": "compliant",
        "ends_on": "2027-03-31"}, when, tp)
    app.record_fact(client_id, "clinical_note_added", {"text": "Disclosed a relapse."},
                    when, tp)
    return client_id


def _find(page: Page, nhs: str) -> None:
    page.goto(f"{page.url.split('/ui')[0]}/ui/find")
    page.get_by_label("Why do you need to find this person?").select_option(
        "offender_management")
    page.get_by_label("NHS number", exact=True).fill(nhs)
    page.get_by_role("button", name="Find").click()


def test_police_find_the_client_only_after_agreement_and_consent_and_lose_them_after(
        page: Page, live: Live, browser: Browser) -> None:
    client_id = _client_with_an_order(live)
    nhs = nhs_number(602)
    sign_in(page, live, "police", Role.PRACTITIONER, "/ui/find")
    _find(page, nhs)
    expect(page.get_by_test_id("no-match")).to_contain_text("No client found")
    assert_accessible(page)
    shoot(page, "practitioner-no-match")

    # The agreement, in force once both IG leads approve (through the application).
    app = live.accord.app
    proposed = app.propose_agreement(AgreementTerms.model_validate(police_terms()),
                                     app.authenticate(live.token("tp", Role.IG_LEAD)))
    for party in ("tp", "police"):
        app.approve_agreement(UUID(str(proposed.id)),
                              app.authenticate(live.token(party, Role.IG_LEAD)))
    _find(page, nhs)
    expect(page.get_by_test_id("no-match")).to_be_visible()  # consent is still needed

    # The provider records the client's consent on its pages.
    provider_context = browser.new_context()
    provider = provider_context.new_page()
    try:
        sign_in(provider, live, "tp", Role.PRACTITIONER, f"/ui/clients/{client_id}/consents")
        provider.get_by_role("button", name="Record a consent").click()
        provider.get_by_label("Who may see it").select_option(label="Police")
        for category in ("Identity", "Treatment", "Criminal justice"):
            provider.get_by_label(category, exact=True).check()
        provider.get_by_label("Offender management").check()
        provider.get_by_label("Written").check()
        assert_accessible(provider)
        shoot(provider, "practitioner-consent-form")
        provider.get_by_role("button", name="Record consent").click()
        expect(provider.get_by_text("The consent is recorded.")).to_be_visible()
        assert_accessible(provider)

        # The police find the client now (once the views have followed the consent).
        deadline = time.monotonic() + VIEWS_S
        _find(page, nhs)
        while page.get_by_test_id("no-match").count() and time.monotonic() < deadline:
            time.sleep(0.5)
            _find(page, nhs)
        expect(page).to_have_url(re.compile(rf"/ui/clients/{client_id}\?purpose="
                                            "offender_management"))
        expect(page.get_by_test_id("client-name")).to_have_text("Ann Example")
        chronology = page.get_by_test_id("chronology")
        expect(chronology).to_contain_text("Treatment episode started")
        expect(chronology).to_contain_text("Pharmacological")
        expect(chronology).not_to_contain_text("Sam Okafor")  # the share names no key worker
        expect(chronology).not_to_contain_text("relapse")  # clinical notes: nobody
        expect(page.get_by_test_id("basis").first).to_contain_text("with the client's consent")
        expect(page.get_by_test_id("summary")).to_contain_text("Drug rehabilitation requirement")
        assert_accessible(page)
        page.get_by_role("heading", name="Summary").evaluate("e => e.scrollIntoView()")
        shoot(page, "practitioner-police-view")

        # The provider withdraws the consent, after confirming.
        provider.get_by_role("link", name=re.compile("^Withdraw")).click()
        expect(provider.get_by_role("heading", level=1)).to_have_text("Withdraw consent")
        assert_accessible(provider)
        provider.get_by_label("Why is it withdrawn?").fill("The client asked in writing")
        shoot(provider, "practitioner-withdraw-consent")
        provider.get_by_role("button", name="Withdraw consent").click()
        expect(provider.get_by_text("The consent is withdrawn.")).to_be_visible()
        assert_accessible(provider)
    finally:
        provider_context.close()

    # The police lose the client: the same "not found" as for anyone unknown.
    deadline = time.monotonic() + VIEWS_S
    page.reload()
    while page.get_by_test_id("client-name").count() and time.monotonic() < deadline:
        time.sleep(0.5)
        page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    assert_accessible(page)
    _find(page, nhs)
    expect(page.get_by_test_id("no-match")).to_be_visible()
