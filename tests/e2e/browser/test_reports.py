"""A commissioner in a real browser: chooses a period by keyboard (a wrong one first, to
see the errors), sees the outcome measures with small counts hidden as ``*`` and a chart
beside each table, breaks them down by sex, and downloads the CSV. axe-core runs on
every page."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from domain.agencies import Role
from tests.builders import COMMISSIONER, SHARED, Story
from tests.e2e.browser.conftest import Live, assert_accessible, shoot, sign_in


def seeded(live: Live) -> None:
    """Eight clients in treatment under the commissioning agreement, five women, two men
    and one whose sex is not recorded, two of them completing: enough that some figures
    show and some are hidden. The running server's reports catch up on their own poll;
    this waits for them."""
    story = Story(live.accord, live.partnership)
    story.agree("tp", SHARED)
    sexes = ["female"] * 5 + ["male"] * 2 + [None]
    for n, sex in enumerate(sexes):
        client = story.client(born=f"19{70 + 3 * n}-01-01")
        if sex is not None:
            story.fact(client, "demographics_recorded",
                       {"sex": sex, "ethnicity": "A", "area": "E06000032"})
        story.episode(client, ended="completed_drug_free" if n < 2 else None)
    head = live.accord.app.head_position()
    deadline = time.monotonic() + 15
    while story.reports.position() < head:
        assert time.monotonic() < deadline, "the reports did not catch up"
        time.sleep(0.1)


def choose(page: Page, prefix: str, day: str, month: str, year: str) -> None:
    """Types a date into its three fields, moving between them by keyboard."""
    page.locator(f"#{prefix}-day").focus()
    for value in (day, month, year):
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.type(value)
        page.keyboard.press("Tab")


def test_a_commissioner_sees_the_report_with_suppression_and_downloads_it(
        page: Page, live: Live) -> None:
    seeded(live)
    sign_in(page, live, COMMISSIONER, Role.COMMISSIONER, "/ui/reports")
    expect(page.get_by_role("heading", level=1)).to_have_text("Outcome reports")
    assert_accessible(page)

    # A period that ends before it starts: the errors, and no report.
    choose(page, "from", "1", "4", "2026")
    choose(page, "to", "31", "3", "2026")
    page.get_by_role("button", name="Show the report").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".nhsuk-error-summary")).to_contain_text(
        "The end of the period must be the same as or after the start")
    expect(page.get_by_test_id("figures")).to_have_count(0)
    assert_accessible(page)

    choose(page, "from", "1", "4", "2025")
    page.get_by_role("button", name="Show the report").focus()
    page.keyboard.press("Enter")
    counts = page.get_by_test_id("section").filter(has=page.get_by_role(
        "heading", name="How many"))
    treated = counts.get_by_role("row", name="Clients in treatment")
    expect(treated).to_contain_text("8")
    expect(counts.get_by_role("row", name=re.compile(r"^Successful completions \*$"))) \
        .to_be_visible()
    expect(counts.get_by_role("img", name="How many")).to_be_visible()
    expect(page.get_by_test_id("suppression")).to_contain_text("Some figures below are hidden")
    assert_accessible(page)
    page.get_by_role("heading", name=re.compile(r"^1 April 2025 to")).scroll_into_view_if_needed()
    shoot(page, "reports-outcomes")

    # The CSV: the same figures, hidden ones kept as *.
    with page.expect_download() as download:
        page.get_by_test_id("csv").click()
    assert download.value.suggested_filename == "outcomes-2025-04-01-2026-03-31.csv"
    text = open(download.value.path(), encoding="utf-8").read()  # noqa: SIM115
    assert "in_treatment,,,8," in text and "successful_completions,,,*," in text

    # Broken down by sex: five women shown; two men and one not recorded, hidden.
    page.get_by_label("Break down by").select_option("sex")
    page.get_by_role("button", name="Show the report").click()
    section = page.get_by_test_id("section").filter(has=page.get_by_role(
        "heading", name="Clients in treatment", exact=True))
    expect(section.get_by_role("row", name=re.compile("^Female "))).to_contain_text("5")
    expect(section.get_by_role("row", name=re.compile("^Male "))).to_contain_text("*")
    expect(section.get_by_role("row", name=re.compile("^Unknown "))).to_contain_text("*")
    expect(section.get_by_role("img", name="Clients in treatment by sex")).to_be_visible()
    assert_accessible(page)
    section.scroll_into_view_if_needed()
    shoot(page, "reports-by-sex")
