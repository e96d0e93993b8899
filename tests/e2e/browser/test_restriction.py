"""A restricted client in a real browser, with axe-core on every page: the IG lead
restricts processing from the record's life page (a missing confirmation said first),
then a practitioner opening the record is asked for the legal claim, is told when none is
given, and reads the record for the claim under the banner; the claim is in no address."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from domain.agencies import Role
from tests.builders import VALID_IDENTITY, hdr, nhs_number
from tests.e2e.browser.conftest import Live, assert_accessible, shoot, sign_in

CLAIM = "Defence of claim KB-2026-000123 brought against the service"


def test_a_restricted_record_is_read_for_a_stated_claim(page: Page, live: Live) -> None:
    registered = httpx.post(f"{live.url}/v1/clients", headers=hdr(live.partnership, "tp"),
                            json={"identity": {**VALID_IDENTITY, "nhs_number": nhs_number(7)}})
    assert registered.status_code == 201, registered.text
    client_id = registered.json()["client_id"]

    sign_in(page, live, "tp", Role.IG_LEAD, f"/ui/clients/{client_id}/governance")
    assert_accessible(page)
    form = page.get_by_test_id("form-restrict")
    form.get_by_label("Why is processing restricted?").fill(
        "The client contests the accuracy of the record.")
    form.get_by_role("button", name="Restrict processing").click()
    expect(page.get_by_role("alert").first).to_contain_text("There is a problem")
    assert_accessible(page)
    form = page.get_by_test_id("form-restrict")
    form.get_by_label("I confirm that processing of this client is to be restricted").check()
    form.get_by_role("button", name="Restrict processing").click()
    expect(page.get_by_test_id("restricted")).to_have_text("Restricted (UK GDPR Article 18)")
    assert_accessible(page)
    shoot(page, "restriction-record-life")
    page.context.clear_cookies()

    sign_in(page, live, "tp", Role.PRACTITIONER, f"/ui/clients/{client_id}/record")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "This client's record is restricted")
    assert_accessible(page)
    page.get_by_role("button", name="Read the record for this claim").click()
    expect(page.locator(".nhsuk-error-message")).to_contain_text("Enter the legal claim")
    assert_accessible(page)
    page.get_by_label("Which legal claim do you need to read the record for?").fill(CLAIM)
    page.get_by_role("button", name="Read the record for this claim").click()
    expect(page.get_by_test_id("restricted-read")).to_contain_text(
        "Restricted: read for the stated legal claim")
    assert_accessible(page)
    shoot(page, "restriction-read-for-a-claim")
    assert "KB-2026" not in page.url
