"""Partial updates (htmx) never leave a user looking at a stale page without a word."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from domain.agencies import Role
from tests.e2e.browser.conftest import Live, assert_accessible, sign_in


def test_a_refused_partial_update_shows_the_page_the_server_answered(
        page: Page, live: Live) -> None:
    """A replay asked for with input the server refuses (a client id that is not one):
    the user sees the refusal, as without JavaScript, not the old answer."""
    sign_in(page, live, "tp", Role.IG_LEAD, next_path="/ui/audit/replay")
    page.get_by_label("Whose view").select_option("police")
    page.get_by_label("For what purpose").select_option("offender_management")
    page.get_by_label("Client id").fill("not-a-client-id")
    page.get_by_role("button", name="Replay").click()
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    assert "client_id=not-a-client-id" in page.url
    assert_accessible(page)
