"""The API's hardening that needs no server and no database: every string of every request
body refuses a lone surrogate and NUL, and every date and time refuses bare numbers; the
read-your-writes waits are bounded; the security headers mark every /v1 path; the
vendored reference assets are package data. The same over HTTP, and the rest of the
hardening, is tests/e2e/test_input_hardening.py."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from api import catching_up, hardening
from api.catching_up import CatchUp, TooManyWaiting
from domain.errors import InvalidCommand
from tests.builders import fields_of, refuses

ROOT = Path(__file__).resolve().parents[2]

# -- request bodies refuse lone surrogates and NUL -----------------------------------------


def test_every_string_of_every_request_body_refuses_a_lone_surrogate_and_nul() -> None:
    strings = fields_of(str)
    assert len(strings) > 20, "the walk found too few string fields to be complete"
    accepted = [f"{model.__name__}.{name} accepts {value!r}"
                for model, name, annotation in strings
                for value in ("x\ud800", "x\x00y")
                if not refuses(model, name, annotation, value)]
    assert not accepted, "\n".join(accepted)


# -- dates and times refuse bare numbers ---------------------------------------------------


def test_every_date_and_time_in_a_request_body_refuses_bare_numbers() -> None:
    moments = fields_of(date)
    assert {name for _, name, _ in moments} >= {"date_of_birth", "occurred_at", "valid_from",
                                                 "data_from", "expires_at", "ends_on"}
    accepted = [f"{model.__name__}.{name} accepts {value!r}"
                for model, name, annotation in moments
                for value in ("0", 0, 0.5, "0.5", "1700000000", 1700000000)
                if not refuses(model, name, annotation, value)]
    assert not accepted, "\n".join(accepted)


# -- min_position: bounded waits -----------------------------------------------------------


def test_waits_are_bounded_and_released_as_the_read_model_catches_up() -> None:
    position = {"views": 5}

    async def scenario() -> None:
        catch_up = CatchUp(lambda: position["views"], lambda: 10, poll_seconds=0.01,
                           max_waiting=2)
        assert await catch_up.until(5, timeout=5)  # reached: no wait at all
        with pytest.raises(InvalidCommand) as refused:
            await catch_up.until(10 + catching_up.MARGIN + 1, timeout=5)
        assert refused.value.field == "min_position"
        first = asyncio.ensure_future(catch_up.until(7, timeout=30))
        second = asyncio.ensure_future(catch_up.until(8, timeout=30))
        while catch_up.waiting < 2:
            await asyncio.sleep(0.01)
        with pytest.raises(TooManyWaiting) as busy:
            await catch_up.until(9, timeout=30)
        assert busy.value.status_code == 503
        assert not first.done() and not second.done()
        position["views"] = 7
        assert await first is True
        assert not second.done()
        position["views"] = 9
        assert await second is True
        assert catch_up.waiting == 0
        assert await catch_up.until(9, timeout=5)
        assert await catch_up.until(10, timeout=0.05) is False  # a time-out reads anyway

    asyncio.run(scenario())


# -- security headers and the vendored assets ----------------------------------------------


def test_the_security_headers_middleware_marks_every_v1_path() -> None:
    """The middleware decides by path, so every /v1 route, present and future, is marked."""
    async def plain(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"cache-control", b"public, max-age=60")]})
        await send({"type": "http.response.body", "body": b"{}"})

    async def call(path: str) -> dict[bytes, bytes]:
        sent: list[dict[str, Any]] = []

        async def send(message: Any) -> None:
            sent.append(message)

        async def receive() -> Any:
            return {"type": "http.request", "body": b""}

        await hardening.SecurityHeaders(plain)({"type": "http", "path": path, "headers": []},
                                               receive, send)
        return dict(sent[0]["headers"])

    for path in ("/v1", "/v1/clients/x/view", "/v1/anything/new"):
        headers = asyncio.run(call(path))
        assert headers[b"cache-control"] == b"no-store"
        assert headers[b"x-content-type-options"] == b"nosniff"
    for path in ("/docs", "/v10", "/openapi.json"):
        headers = asyncio.run(call(path))
        assert headers[b"cache-control"] == b"public, max-age=60"
        assert headers[b"x-content-type-options"] == b"nosniff"



def test_the_vendored_assets_and_their_licences_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["api"]
    static = ROOT / "api" / "static"
    files = [p.relative_to(ROOT / "api") for p in static.rglob("*") if p.is_file()]
    assert {f.name for f in files} >= {"swagger-ui-bundle.js", "swagger-ui.css", "LICENSE",
                                       "NOTICE", "redoc.standalone.js"}
    unpackaged = [f for f in files if not any(f.match(p) for p in patterns)]
    assert not unpackaged
    for name, (path, _) in hardening.ASSETS.items():
        assert (static / path).is_file(), name


def test_the_web_applications_templates_and_assets_are_package_data() -> None:
    """Every template and static file of the web application (accord's own scripts, the
    vendored NHS.UK and htmx files) is installed with the package."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["api"]
    ui = ROOT / "api" / "ui"
    files = [p.relative_to(ROOT / "api") for folder in ("static", "templates")
             for p in (ui / folder).rglob("*") if p.is_file()]
    assert {f.name for f in files} >= {"accord.js", "alerts.js", "base.html"}
    unpackaged = [f for f in files if not any(f.match(p) for p in patterns)]
    assert not unpackaged
