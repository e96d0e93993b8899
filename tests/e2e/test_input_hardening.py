"""Inputs that used to crash or mislead the API, waits that held threads, and what every
response says about itself (issue 12, items 7, 8, 11 and 13), on SQLite and PostgreSQL
where the database matters.

- Item 7: a lone surrogate in any string, superscript digits or 20 digits as a log
  position were 500s; they are 422s with the usual error body, and change nothing.
- Item 8: ``min_position`` far beyond the head is refused, and a wait holds no thread.
- Item 11: ``Cache-Control: no-store`` and ``X-Content-Type-Options: nosniff``, no server
  banner, the reference pages' assets from the package, dates and times strictly ISO
  8601, no names made of invisible characters, no NUL in free text (on PostgreSQL a NUL
  in a fact stopped the agency views' projector for good), ASCII digits for positions.
- Item 13: an erased person can be registered again, and nobody is told the erased id.

What needs no server (the request models, the bounded waits, the headers middleware, the
packaged assets) is tests/unit/test_api_hardening.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from api import catching_up
from api.app import create_app
from api.bootstrap import Accord
from api.cli import main
from domain.agencies import Role
from tests.builders import (
    VALID_IDENTITY,
    Partnership,
    changes,
    fact,
    fields_of,
    hdr,
    police_terms,
    refuses,
    register,
)
from tests.kafka_broker import free_port

ROOT = Path(__file__).resolve().parents[2]
OTHER_IDENTITY = {**VALID_IDENTITY, "nhs_number": "401 023 2137"}


def assert_422(response: httpx.Response, field: str) -> None:
    """The usual 422: ``{"detail", "errors": [{"field", "message"}]}`` naming ``field``."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and field in body["detail"]
    assert body["errors"] and all(set(e) == {"field", "message"} for e in body["errors"])
    assert field in [e["field"] for e in body["errors"]], body


def post_raw(api: TestClient, url: str, body: dict[str, Any],
             headers: dict[str, str]) -> httpx.Response:
    """Posts JSON as ``json.dumps`` writes it: a lone surrogate becomes ``\\ud800``, which
    is valid JSON (httpx's own encoder would refuse to send it)."""
    return api.post(url, content=json.dumps(body),
                    headers={**headers, "content-type": "application/json"})


# -- item 7: lone surrogates, superscript digits, 20 digits ----------------------------------


def test_a_lone_surrogate_in_an_agreements_recipient_is_a_422(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    before = changes(accord)
    response = post_raw(api, "/v1/agreements", police_terms(recipient="x\ud800"),
                        hdr(partnership, "tp", Role.IG_LEAD))
    assert_422(response, "recipient")
    assert changes(accord) == before


@pytest.mark.parametrize("at", ["²", "١٢", "1_0", "99999999999999999999", "0"])
def test_a_replay_at_a_position_that_is_not_ascii_digits_is_a_422(
    api: TestClient, partnership: Partnership, at: str
) -> None:
    client_id = register(api, partnership)
    response = api.get("/v1/audit/replay", params={
        "agency": "police", "client_id": client_id, "purpose": "offender_management",
        "at": at}, headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert_422(response, "at")


@pytest.mark.parametrize("last_event_id", ["²".encode("latin-1"), b"99999999999999999999",
                                           b"1_0"])
def test_a_last_event_id_that_is_not_a_log_position_is_a_422(
    api: TestClient, partnership: Partnership, last_event_id: bytes
) -> None:
    response = api.get("/v1/alerts/stream", params={"max_seconds": 0},
                       headers={**hdr(partnership, "childrens", Role.SAFEGUARDING),
                                "Last-Event-ID": last_event_id})  # type: ignore[dict-item]
    assert_422(response, "last-event-id")
    # A position it did send still resumes the stream.
    resumed = api.get("/v1/alerts/stream", params={"max_seconds": 0},
                      headers={**hdr(partnership, "childrens", Role.SAFEGUARDING),
                               "Last-Event-ID": "1"})
    assert resumed.status_code == 200 and "event: error" not in resumed.text


# -- item 8: min_position ----------------------------------------------------------------------


def test_a_min_position_far_beyond_the_head_is_a_422_naming_it(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id = register(api, partnership)
    far = accord.app.head_position() + catching_up.MARGIN + 1
    for url, params, headers in [
        (f"/v1/clients/{client_id}/view", {"purpose": "direct_care"}, hdr(partnership, "tp")),
        ("/v1/audit/reviews", {}, hdr(partnership, "tp", Role.IG_LEAD)),
        ("/v1/alerts", {}, hdr(partnership, "childrens", Role.SAFEGUARDING)),
    ]:
        assert_422(api.get(url, params={**params, "min_position": far}, headers=headers),
                   "min_position")
    # Within the margin it is an ordinary read-your-writes request.
    position = accord.app.head_position()
    seen = api.get(f"/v1/clients/{client_id}/view",
                   params={"purpose": "direct_care", "min_position": position},
                   headers=hdr(partnership, "tp"))
    assert seen.status_code == 200 and seen.json()["position"] >= position


@pytest.fixture
def served(accord: Accord) -> Iterator[tuple[str, Any]]:
    """A real uvicorn serving an app this test can look into (its waits), as `accord
    serve` runs it: a thread pool of anyio's default 40 threads."""
    app = create_app(accord)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_requests_waiting_for_min_position_do_not_hold_the_servers_threads(
    served: tuple[str, Any], accord: Accord, partnership: Partnership,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 requests (more than the server's 40 worker threads) wait for a position the
    log has not reached; an ordinary request is still answered while they all wait, and
    the write that reaches the position releases them, each answer current to it."""
    monkeypatch.setattr(catching_up, "MAX_WAIT_SECONDS", 60.0)  # released by the write only
    url, app = served
    headers = hdr(partnership, "tp")
    with httpx.Client(base_url=url, timeout=90) as http:
        created = http.post("/v1/clients", json={"identity": VALID_IDENTITY}, headers=headers)
        client_id = created.json()["client_id"]
        target = accord.app.head_position() + 1
        answers: list[httpx.Response] = []

        def wait() -> None:
            with httpx.Client(base_url=url, timeout=90) as own:
                answers.append(own.get(f"/v1/clients/{client_id}/view", headers=headers,
                                       params={"purpose": "direct_care",
                                               "min_position": target}))

        waiters = [threading.Thread(target=wait) for _ in range(60)]
        for waiter in waiters:
            waiter.start()
        deadline = time.monotonic() + 60
        while getattr(app.state, "catch_up", {}).get("agency_views") is None or \
                app.state.catch_up["agency_views"].waiting < len(waiters):
            assert time.monotonic() < deadline, "the requests never started waiting"
            time.sleep(0.05)

        ordinary = http.get("/v1/event-types", headers=headers)
        assert ordinary.status_code == 200
        assert answers == [], "a waiting request was answered before its position"
        written = http.post(f"/v1/clients/{client_id}/events", json=fact(), headers=headers)
        assert written.status_code == 201 and written.json()["position"] >= target
        for waiter in waiters:
            waiter.join(timeout=90)
    assert len(answers) == len(waiters)
    assert all(a.status_code == 200 and a.json()["position"] >= target for a in answers)


# -- item 11: headers, the server banner, the reference pages -----------------------------


def test_every_v1_answer_is_no_store_and_nosniff(
    api: TestClient, partnership: Partnership
) -> None:
    client_id = register(api, partnership)
    answers = [
        api.get(f"/v1/clients/{client_id}/record", headers=hdr(partnership, "tp")),  # 200
        api.get("/v1/event-types"),  # 401
        api.get(f"/v1/clients/{client_id}/record", headers=hdr(partnership, "police")),  # 404
        api.get("/v1/agreements/not-an-id", headers=hdr(partnership, "tp")),  # 422
        api.post("/v1/clients", content=b"x" * 70000,
                 headers={**hdr(partnership, "tp"), "content-type": "application/json"}),  # 413
        api.get("/v1/alerts/stream", params={"max_seconds": 0},
                headers=hdr(partnership, "childrens", Role.SAFEGUARDING)),  # the stream
    ]
    assert {a.status_code for a in answers} == {200, 401, 404, 413, 422}
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store", answer.request.url
        assert answer.headers["x-content-type-options"] == "nosniff", answer.request.url
    assert api.get("/docs").headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_reference_pages_load_nothing_from_elsewhere(api: TestClient, page: str) -> None:
    html = api.get(page).text
    sources = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)['"]""", html)
    sources += re.findall(r"""url:\s*['"]([^'"]+)['"]""", html)
    assert sources, html
    assert not [s for s in sources if "://" in s or s.startswith("//")], sources
    assert "googleapis" not in html and "jsdelivr" not in html
    scripts = [s for s in sources if s.endswith(".js") or ".js?" in s]
    assert scripts
    for source in sources:
        if source.startswith("/docs/assets/"):
            asset = api.get(source)
            assert asset.status_code == 200 and len(asset.content) > 500, source
            kind = "javascript" if ".js" in source else ("css" if ".css" in source else "png")
            assert kind in asset.headers["content-type"], source
    assert api.get("/docs/assets/LICENSE").status_code == 404  # only the listed assets
    assert api.get("/docs/assets/..%2Fhardening.py").status_code == 404


def test_accord_serve_does_not_announce_itself(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "ACCORD_DATABASE_URL": f"sqlite:///{tmp_path / 'accord.db'}",
           "ACCORD_KEY_FILE": str(tmp_path / "kek.key"), "ACCORD_PROJECTIONS": "worker"}
    accord = [sys.executable, "-m", "api.cli"]
    subprocess.run([*accord, "keys", "generate"], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    server = subprocess.Popen([*accord, "serve", "--port", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/v1/event-types", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert answer.status_code == 401
        assert "server" not in answer.headers
        assert answer.headers["x-content-type-options"] == "nosniff"
    finally:
        server.terminate()
        server.wait(timeout=30)


# -- item 11: dates and times, names, free text, positions ----------------------------------


def test_bare_numbers_are_not_dates_or_times_over_http(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id = register(api, partnership)
    before = changes(accord)
    assert_422(api.post("/v1/clients", json={"identity": {**OTHER_IDENTITY,
                                                          "date_of_birth": "0"}},
                        headers=hdr(partnership, "tp")), "identity.date_of_birth")
    assert_422(api.post(f"/v1/clients/{client_id}/events",
                        json={**fact(), "occurred_at": 1700000000},
                        headers=hdr(partnership, "tp")), "occurred_at")
    assert_422(api.post("/v1/agreements", json=police_terms(valid_from="0"),
                        headers=hdr(partnership, "tp", Role.IG_LEAD)), "valid_from")
    for bad in ("0.5", "0"):
        assert_422(api.get("/v1/audit/accesses", params={"to": bad},
                           headers=hdr(partnership, "tp", Role.IG_LEAD)), "to")
        assert_422(api.get("/v1/audit/accesses", params={"from": bad},
                           headers=hdr(partnership, "tp", Role.IG_LEAD)), "from")
    assert changes(accord) == before
    # ISO 8601 is still welcome.
    assert api.get("/v1/audit/accesses", params={"from": "2026-01-05T09:30:00Z"},
                   headers=hdr(partnership, "tp", Role.IG_LEAD)).status_code == 200


@pytest.mark.parametrize("name", ["\x00", "\x00\x00", "\u200b\u200c", " \u200b ", "\u2060",
                                  "\u202e", "\x07"])
def test_names_made_only_of_invisible_characters_are_refused(
    api: TestClient, accord: Accord, partnership: Partnership, name: str
) -> None:
    before = changes(accord)
    assert_422(post_raw(api, "/v1/clients", {"identity": {**OTHER_IDENTITY,
                                                          "given_name": name}},
                        hdr(partnership, "tp")), "identity.given_name")
    assert_422(post_raw(api, "/v1/principals", {"agency": "police", "role": "practitioner",
                                                "name": name},
                        hdr(partnership, "police", Role.ADMIN)), "name")
    assert changes(accord) == before
    for model, field, annotation in fields_of(str):
        if field in ("name", "given_name", "family_name"):
            assert refuses(model, field, annotation, name), f"{model.__name__}.{field}"


@pytest.mark.parametrize("argv", [
    ["agencies", "add", "--id", "hidden", "--name", "\u200b", "--kind", "police"],
    ["principals", "add", "--agency", "police", "--role", "practitioner", "--name", "\x07"],
])
def test_the_cli_refuses_names_made_only_of_invisible_characters(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2
    assert "argument --name" in capsys.readouterr().err


def test_nul_in_free_text_is_refused_and_the_views_keep_following_the_log(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id = register(api, partnership)
    before = changes(accord)
    assert_422(post_raw(api, f"/v1/clients/{client_id}/events",
                        fact("clinical_note_added", {"text": "said \x00 nothing"}),
                        hdr(partnership, "tp")), "data.text")
    assert changes(accord) == before
    written = api.post(f"/v1/clients/{client_id}/events",
                       json=fact("clinical_note_added", {"text": "line one\nline two"}),
                       headers=hdr(partnership, "tp"))
    assert written.status_code == 201
    position = written.json()["position"]
    seen = api.get(f"/v1/clients/{client_id}/view",
                   params={"purpose": "direct_care", "min_position": position},
                   headers=hdr(partnership, "tp"))
    assert seen.status_code == 200 and seen.json()["position"] >= position


@pytest.mark.parametrize("value", ["²", "١٢", "1_0", " 5", "99999999999999999999"])
def test_log_positions_are_ascii_digits(
    api: TestClient, partnership: Partnership, value: str
) -> None:
    client_id = register(api, partnership)
    lead = hdr(partnership, "tp", Role.IG_LEAD)
    assert_422(api.get(f"/v1/clients/{client_id}/view",
                       params={"purpose": "direct_care", "min_position": value},
                       headers=hdr(partnership, "tp")), "min_position")
    assert_422(api.get("/v1/audit/proofs/inclusion", params={"position": value},
                       headers=lead), "position")
    assert_422(api.get("/v1/audit/proofs/inclusion", params={"position": 1,
                                                             "tree_size": value},
                       headers=lead), "tree_size")
    assert_422(api.get("/v1/audit/proofs/consistency", params={"first": value},
                       headers=lead), "first")


# -- item 13: erasure releases the NHS-number index ----------------------------------------


def _erase(accord: Accord, partnership: Partnership, client_id: str) -> None:
    lead = accord.app.authenticate(partnership.token("tp", Role.IG_LEAD))
    accord.app.erase_client(UUID(client_id), "subject asked for erasure", lead)


def test_an_erased_person_can_be_registered_again_and_nobody_is_told_the_erased_id(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    erased = register(api, partnership)
    _erase(accord, partnership, erased)
    again = api.post("/v1/clients", json={"identity": VALID_IDENTITY},
                     headers=hdr(partnership, "tp"))
    assert again.status_code == 201, again.text
    assert erased not in again.text
    new = again.json()["client_id"]
    assert new != erased
    # The number leads to the new client now: a second registration names it, only it.
    duplicate = api.post("/v1/clients", json={"identity": VALID_IDENTITY},
                         headers=hdr(partnership, "tp"))
    assert duplicate.status_code == 409 and duplicate.json()["client_id"] == new
    assert erased not in duplicate.text
    record = api.get(f"/v1/clients/{new}/record", headers=hdr(partnership, "tp")).json()
    assert record["identity"]["family_name"] == VALID_IDENTITY["family_name"]
    # Erasing the new client frees the number again.
    _erase(accord, partnership, new)
    third = api.post("/v1/clients", json={"identity": VALID_IDENTITY},
                     headers=hdr(partnership, "tp"))
    assert third.status_code == 201 and erased not in third.text and new not in third.text


def test_an_index_left_by_an_erasure_before_this_fix_does_not_block_registration(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    """A database erased a client before erasure released the index: the index still
    names the erased client, which must neither block nor be revealed."""
    erased = register(api, partnership)
    app = accord.app
    client = app.repository.get(UUID(erased))
    app.vault.shred(UUID(erased))
    client.erase(reason_fingerprint="hmac-sha256:00", erased_by="operator:cli")
    app.save(client)  # as erase_client did before: the index left in place
    again = api.post("/v1/clients", json={"identity": VALID_IDENTITY},
                     headers=hdr(partnership, "tp"))
    assert again.status_code == 201, again.text
    assert erased not in again.text
