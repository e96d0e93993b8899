"""Browser tests: a real uvicorn on a free port, driven by Playwright in Debian's chromium.

The browser is the machine's ``/usr/bin/chromium`` (package ``chromium``; ``.ci/run``
installs it when absent), never one Playwright downloads. Under ``CI=true`` a missing
chromium fails the run; elsewhere these tests skip with a message.

``live`` is one server per test module, on SQLite in a temporary folder, with the
partnership of ``tests.builders.enrol_partnership`` (one principal of every role in every
agency). ``sign_in`` signs a page in as one of them; ``assert_accessible`` runs axe-core
(vendored in ``tests/vendor/axe-core``) over the page and fails on any WCAG 2.2 A or AA
violation. ``shoot`` saves a screenshot for the README's tour when ``ACCORD_TOUR`` names
a folder (``make tour``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from api.bootstrap import Accord, bootstrap
from domain.agencies import Role
from infra.keys import generate_key_file
from infra.settings import Settings
from tests.builders import Partnership, enrol_partnership, serving

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).resolve().parents[2] / "vendor" / "axe-core" / "axe.min.js"
#: The WCAG 2.2 success criteria at levels A and AA, as axe-core tags them.
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
#: Chromium on this machine's closed network: no background calls home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM),
            "args": CHROMIUM_ARGS, "headless": True}


@dataclass
class Live:
    """A running accord: its base URL, the system and the partnership's tokens."""

    url: str
    accord: Accord
    partnership: Partnership

    def token(self, agency: str, role: Role = Role.PRACTITIONER) -> str:
        return self.partnership.token(agency, role)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("live")
    key_file = folder / "kek.key"
    generate_key_file(key_file)
    settings = Settings(database_url=f"sqlite:///{folder / 'accord.db'}", key_file=key_file)
    accord = bootstrap(settings)
    try:
        partnership = enrol_partnership(accord)
        with serving(accord) as url:
            yield Live(url, accord, partnership)
    finally:
        accord.close()


@pytest.fixture
def page(page: Page) -> Page:
    """Playwright's page, failing the test on any error the page's scripts raise (a
    blocked script, a broken htmx swap) or any refused Content-Security-Policy."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(f"console: {message.text}")
            if message.type == "error" and "assets.nhs.uk" not in message.text
            and "Failed to load resource" not in message.text else None)
    page.set_default_timeout(10_000)
    yield page
    assert not problems, "\n".join(problems)


def sign_in(page: Page, live: Live, agency: str, role: Role = Role.PRACTITIONER,
            next_path: str = "/ui") -> None:
    """Signs ``page`` in as the partnership's principal of ``agency`` and ``role`` through
    the sign-in form, and lands on ``next_path``."""
    page.goto(f"{live.url}{next_path}")
    expect(page).to_have_url(re.compile(r".*/ui/sign-in\b.*"))
    page.get_by_label("Token").fill(live.token(agency, role))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("sign-out")).to_be_visible()


def assert_accessible(page: Page) -> None:
    """axe-core over the page as it is now: no WCAG 2.2 A or AA violation."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate(
        "async (tags) => await axe.run(document, "
        "{runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})", WCAG_AA)
    violations = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(n["target"][0] if n["target"] else "?" for n in v["nodes"][:5])
        for v in result["violations"]
    ]
    assert not violations, f"{page.url}:\n" + "\n".join(violations)


def shoot(page: Page, name: str) -> None:
    """A screenshot for the README's tour (``docs/tour``), when ``ACCORD_TOUR`` is set."""
    folder = os.environ.get("ACCORD_TOUR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        # caret="initial": hiding the caret would inject a style the CSP refuses.
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=False,
                        caret="initial")
