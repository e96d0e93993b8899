"""An agency's admin in a real browser: issues a token (copied from the one page that
shows it), the new principal signs in with it in a second browser, the admin revokes it
with a reason, and the second browser's next request lands on the sign-in page saying
its access was revoked. axe-core runs on every page."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from domain.agencies import Role
from tests.e2e.browser.conftest import Live, assert_accessible, shoot, sign_in


def test_an_admin_issues_a_token_and_revokes_it(page: Page, browser: Browser,
                                                 live: Live) -> None:
    sign_in(page, live, "tp", Role.ADMIN, "/ui/admin/principals")
    expect(page.get_by_role("heading", level=1)).to_have_text("Principals")
    assert_accessible(page)
    page.get_by_role("button", name="Add a principal").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a principal")
    assert_accessible(page)
    # Sent without a name or role first: the error summary, then the form by keyboard.
    page.get_by_role("button", name="Add the principal").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the person's or system's name")
    assert_accessible(page)
    page.get_by_label("Name").fill("Jo Keyworker")
    page.get_by_label("Practitioner").check()
    page.get_by_label("Practitioner").press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Copy the token now")
    expect(page.get_by_text("You will not see this token again")).to_be_visible()
    token = page.get_by_test_id("issued-token").input_value()
    assert re.fullmatch(r"acc_[0-9a-f]{32}_\S+", token), token
    assert_accessible(page)
    shoot(page, "admin-token-shown-once")

    # The new principal signs in with it, in a browser of their own.
    context = browser.new_context()
    theirs = context.new_page()
    try:
        theirs.goto(f"{live.url}/ui")
        theirs.get_by_label("Token").fill(token)
        theirs.get_by_role("button", name="Sign in").click()
        expect(theirs.get_by_role("heading", level=1)).to_have_text("Jo Keyworker")

        # Back to the list: the token is nowhere; the admin revokes it, with a reason.
        page.get_by_role("link", name=re.compile("back to the principals")).click()
        assert token not in page.content()
        row = page.get_by_test_id("principal").filter(has_text="Jo Keyworker")
        expect(row).to_contain_text("by tp admin")
        row.get_by_role("link", name=re.compile("Revoke")).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Revoke Jo Keyworker's access?")
        assert_accessible(page)
        page.get_by_label("Why is their access revoked?").fill("Left the service")
        page.get_by_role("button", name="Revoke access").click()
        expect(page.get_by_text("access was revoked")).to_be_visible()
        row = page.get_by_test_id("principal").filter(has_text="Jo Keyworker")
        expect(row).to_contain_text("Revoked")
        expect(row).to_contain_text("Left the service")
        assert_accessible(page)
        row.evaluate("row => row.scrollIntoView({block: 'center'})")
        shoot(page, "admin-principals")

        # Their next request: the sign-in page, saying their access was revoked.
        theirs.reload()
        expect(theirs).to_have_url(re.compile(r".*/ui/sign-in\?.*why=revoked.*"))
        expect(theirs.get_by_text("Your access has been revoked")).to_be_visible()
        assert_accessible(theirs)
    finally:
        context.close()

    page.get_by_role("link", name="Agencies").click()
    expect(page.get_by_test_id("agencies")).to_contain_text("Police")
    assert_accessible(page)
