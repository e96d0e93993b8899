"""Signing in and out in a real browser, by keyboard alone, with axe-core on each page."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from domain.agencies import Role
from tests.e2e.browser.conftest import Live, assert_accessible, shoot, sign_in


def test_sign_in_by_keyboard_reaches_the_page_asked_for_and_signs_out(
        page: Page, live: Live) -> None:
    page.goto(f"{live.url}/ui")
    expect(page).to_have_url(f"{live.url}/ui/sign-in?next=%2Fui&why=none")
    expect(page.get_by_text("Sign in to continue.")).to_be_visible()
    assert_accessible(page)
    shoot(page, "sign-in")
    # Keyboard alone: the skip link first, then into the token field, then the button.
    page.get_by_label("Token").focus()
    page.keyboard.type(live.token("tp"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("tp practitioner")
    expect(page.get_by_text("Practitioner, tp", exact=True)).to_be_visible()
    assert_accessible(page)
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    page.goto(f"{live.url}/ui")
    expect(page).to_have_url(re.compile(r".*/ui/sign-in\b.*"))


def test_a_wrong_token_is_said_in_an_error_summary(page: Page, live: Live) -> None:
    page.goto(f"{live.url}/ui/sign-in")
    page.get_by_label("Token").fill("accord_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    expect(page.locator(".nhsuk-error-message")).to_contain_text("not recognised")
    assert_accessible(page)


def test_each_role_sees_its_name_agency_and_role(page: Page, live: Live) -> None:
    sign_in(page, live, "childrens", Role.SAFEGUARDING)
    expect(page.get_by_text("Safeguarding team, childrens", exact=True)).to_be_visible()
    assert_accessible(page)
