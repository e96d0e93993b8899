"""The tour: `accord demo` opens with an inbox a safeguarding team would recognise, prints
export lines that paste into a shell, and every `curl` in the README then answers.

The demo is seeded once for the module through the CLI (``api.cli.main``) on a fresh
SQLite file, as `make run` does; the README's commands are run, as written, against the
app on that database (``TestClient``: the same routes `accord serve` serves).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.bootstrap import Accord, bootstrap
from api.cli import main
from api.demo import PRINCIPALS
from api.demo_tour import EXPORTS, HISTORIC, SAMPLES, TEAMS
from domain.alerts import AlertStatus
from infra.settings import Settings
from projections.alerts import AlertInbox

ROOT = Path(__file__).resolve().parents[2]
EXPORT = re.compile(r"\b([A-Z][A-Z0-9_]*)=(\S+)")


@dataclass
class Demo:
    first: str  # what the first `accord demo` printed
    second: str  # ... and a second one, on the seeded partnership
    accord: Accord
    seeded_at: datetime

    def exports(self, printed: str | None = None) -> dict[str, str]:
        """The variables the printed ``export`` lines set (the comments left out)."""
        found: dict[str, str] = {}
        for line in (printed or self.first).splitlines():
            if line.startswith("export "):
                found.update(EXPORT.findall(line.split("#", 1)[0]))
        return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    where = tmp_path_factory.mktemp("tour")
    saved = {name: os.environ.pop(name) for name in list(os.environ)
             if name.startswith("ACCORD_")}
    os.environ.update(ACCORD_DATABASE_URL=f"sqlite:///{where / 'accord.db'}",
                      ACCORD_KEY_FILE=str(where / "keys" / "kek.key"))
    try:
        printed = []
        seeded_at = datetime.now(UTC)
        for _ in range(2):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert main(["demo", "--clients", "40"]) == 0
            printed.append(out.getvalue())
        accord = bootstrap(Settings.from_env())
        try:
            yield Demo(printed[0], printed[1], accord, seeded_at)
        finally:
            accord.close()
    finally:
        for name in [n for n in os.environ if n.startswith("ACCORD_")]:
            del os.environ[name]
        os.environ.update(saved)


def test_the_inbox_opens_as_a_team_would_have_it(demo: Demo) -> None:
    inbox = demo.accord.find(AlertInbox)
    inbox.catch_up()
    now = datetime.now(UTC)
    every = {agency: inbox.alerts_of(agency, limit=100_000) for agency in TEAMS}
    alerts = [a for found in every.values() for a in found]
    # Not dozens about to escalate at once: at most a few due within the next hour.
    due_soon = [a for a in alerts if a.status == AlertStatus.RAISED.value
                and a.acknowledge_by <= now + timedelta(hours=1)]
    assert 1 <= len(due_soon) <= 3, [(a.rule, a.recipient) for a in due_soon]
    # Staggered: the open alerts' deadlines differ.
    raised = [a for a in alerts if a.status == AlertStatus.RAISED.value]
    assert len({a.acknowledge_by.replace(second=0, microsecond=0) for a in raised}) >= 3
    # Historic ones worked and closed, with an outcome, a note and a name.
    historic = [a for a in alerts if a.triggered_at and a.triggered_at < now - HISTORIC]
    assert len(historic) >= 5
    assert all(a.status == AlertStatus.CLOSED.value and a.outcome and a.note and a.closed_by
               for a in historic)
    assert len({a.outcome for a in historic}) >= 2
    # Children's services: a handful open, one escalated, some assigned.
    childrens = every["northshire-childrens"]
    open_ = [a for a in childrens if a.status != AlertStatus.CLOSED.value]
    assert 3 <= len(open_) <= 12
    assert [a.rule for a in childrens if a.status == AlertStatus.ESCALATED.value] == [
        "child_safeguarding_concern"]
    assert sum(1 for a in open_ if a.assigned_to) >= 2
    assert any(a.status == AlertStatus.RAISED.value and a.assigned_to is None for a in open_)
    # Every event at its true time: nothing was raised before the demo was seeded.
    assert all(a.raised_at >= demo.seeded_at - timedelta(seconds=1) for a in alerts)
    assert all(a.closed_at is None or a.closed_at >= a.raised_at for a in alerts)


def test_the_demo_prints_export_lines_and_where_to_sign_in(demo: Demo) -> None:
    exports = demo.exports()
    app = demo.accord.app
    for agency, role, name in PRINCIPALS:
        variable = EXPORTS[(agency, role.value)]
        actor = app.authenticate(exports[variable])
        assert (actor.agency, actor.role, actor.name) == (agency, role, name)
    for prefix, agency, purpose in SAMPLES:
        client_id = UUID(exports[f"{prefix}_CLIENT"])
        items = demo.accord.views.items(agency, client_id, purpose.value)
        assert {"identity"} < {i.category for i in items}, (prefix, agency)
        assert app.identity_of(client_id).nhs_number == exports[f"{prefix}_NHS"]
    assert {"CHILDRENS_HOUSEHOLD", "CHILDRENS_ALERT", "CHILDRENS_COLLEAGUE"} <= set(exports)
    assert "Sign in at http://127.0.0.1:8000/ui with a demo token" in demo.first
    # A second run finds the partnership and prints the same lines.
    assert demo.exports(demo.second) == exports
    assert "demo partnership already seeded" in demo.second
    # The lines paste into a shell as they are.
    lines = [line for line in demo.first.splitlines() if line.startswith("export ")]
    for line in lines:
        words = shlex.split(line, comments=True)
        assert words[0] == "export" and all("=" in w for w in words[1:]), line


def readme_commands() -> list[list[str]]:
    """Every `curl` in the README's shell blocks, split as a shell would (lines joined)."""
    readme = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", readme, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("curl "):
                commands.append(line)
    return [shlex.split(c) for c in commands]


def request_of(words: list[str], variables: dict[str, str]) -> tuple[str, str, dict[str, str],
                                                                     str | None]:
    """(method, path, headers, body) of a `curl` command, its ``$VARIABLES`` filled in."""
    def lookup(found: re.Match[str]) -> str:
        if found.group(1) not in variables:
            pytest.fail(f"the README's `{' '.join(words)[:80]}…` uses ${found.group(1)}, "
                        "which the tour does not export")
        return variables[found.group(1)]

    def filled(text: str) -> str:
        return re.sub(r"\$([A-Z][A-Z0-9_]*)", lookup, text)

    method, headers, body, url = "GET", {}, None, None
    rest = iter(words[1:])
    for word in rest:
        if word == "-X":
            method = next(rest)
        elif word == "-H":
            name, _, value = filled(next(rest)).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            body = filled(next(rest))
        elif word.startswith("-"):
            continue
        else:
            url = filled(word)
    assert url is not None and url.startswith("http://127.0.0.1:8000/"), words
    return method, url.removeprefix("http://127.0.0.1:8000"), headers, body


def test_every_curl_in_the_readme_answers_with_data(demo: Demo) -> None:
    variables = demo.exports()
    commands = readme_commands()
    assert len(commands) >= 10
    answered = []
    with TestClient(create_app(demo.accord)) as api:
        for words in commands:
            method, path, headers, body = request_of(words, variables)
            response = api.request(method, path, headers=headers, content=body)
            assert response.status_code in (200, 201), (path, response.text[:300])
            if "text/event-stream" in response.headers["content-type"]:
                assert "event: alert" in response.text, path
                continue
            answer: Any = response.json()
            assert answer, (path, answer)  # not an empty list or object
            answered.append(path)
            if path.startswith("/v1/households/"):
                assert len(answer["members"]) >= 2
            if path.startswith("/v1/clients/") and path.endswith("offender_management"):
                assert answer["identity"] and answer["facts"]
    assert any("/assign" in p for p in answered)
    # The assignment the README makes shows in the inbox, by name.
    with TestClient(create_app(demo.accord)) as api:
        alert = api.get("/v1/alerts?assigned_to=" + variables["CHILDRENS_COLLEAGUE"],
                        headers={"Authorization": f"Bearer {variables['CHILDRENS']}"}).json()
    given = [a for a in alert if a["alert_id"] == variables["CHILDRENS_ALERT"]]
    assert given and given[0]["assigned_to"]["name"] == TEAMS["northshire-childrens"][1]
