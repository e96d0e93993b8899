"""The OpenAPI document tells the truth: schemathesis calls every operation, as three of
the partnership's users, and checks each answer against the document (issue 12).

Partners build clients from ``/openapi.json``; a status or body the document does not
describe breaks them (and the interactive reference misleads whoever reads it). So, for
every operation, as a practitioner of the treatment provider, a police practitioner and
the treatment provider's IG lead, on a small seeded partnership (the demo's agencies,
agreements, consents, households and alerts, an emergency grant under review) on SQLite:

* no request gets a 5xx (``not_a_server_error``);
* every status is one the operation documents (``status_code_conformance``, ST103);
* every body has the documented content type and conforms to the documented schema
  (``content_type_conformance``, ``response_schema_conformance``, ST108): a 422 is
  accord's ``{"detail", "errors": [{"field", "message"}]}``, not FastAPI's default.

Generation is bounded (a few examples per operation and role) and derandomised with a
fixed seed, so the run is the same on every machine and takes well under a minute. Path
and query identifiers are mostly swapped for ids that exist (chosen from the generated
value, so deterministically): random UUIDs alone would only ever meet 404s.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from api import demo
from api.app import create_app
from api.bootstrap import Accord, bootstrap
from domain.agencies import Role
from domain.vocabulary import Purpose
from infra.keys import generate_key_file
from infra.settings import Settings
from infra.signing import generate_signing_key_file
from tests.builders import Partnership

#: The plugin behind ``parametrize`` (pyproject.toml keeps it from loading for every run).
pytest_plugins = ["schemathesis.pytest.plugin"]

PROVIDER = "riverside-recovery"
POLICE = "northshire-police"

#: The users the run acts as: (agency, role) of a demo principal.
ROLES: dict[str, tuple[str, Role]] = {
    "provider practitioner": (PROVIDER, Role.PRACTITIONER),
    "police practitioner": (POLICE, Role.PRACTITIONER),
    "provider ig lead": (PROVIDER, Role.IG_LEAD),
}

#: No 5xx (ST101), only documented statuses (ST103), the documented content type and
#: body schema (ST105, ST108), and input the document calls invalid is refused with a
#: 4xx (ST201).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

#: Generated requests per operation and role (the fuzzing phase), on top of the
#: document's own examples.
MAX_EXAMPLES = 8
SEED = 20261212


def _config(*, coverage: bool) -> SchemathesisConfig:
    """Deterministic generation from a fixed seed; either the document's examples and
    ``MAX_EXAMPLES`` generated requests, or the coverage phase: every boundary and every
    kind of invalid value of each parameter and body field, each once."""
    return SchemathesisConfig.from_dict({
        "seed": SEED,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            "no-shrink": True,
        },
        "phases": {
            "examples": {"enabled": not coverage},
            "fuzzing": {"enabled": not coverage},
            "coverage": {"enabled": coverage, "unexpected-methods": []},
            "stateful": {"enabled": False},
        },
        "suppress-health-check": ["all"],
        # An alert stream ends after a moment (``max_seconds`` is set below) or this many
        # events.
        "max-stream-events": 20,
    })


@dataclass
class Seeded:
    """A small partnership, the app over it, and ids that exist, by parameter name."""

    accord: Accord
    app: FastAPI
    tokens: dict[str, str]
    ids: dict[str, list[str]] = field(default_factory=dict)


def _demo_tokens(accord: Accord) -> dict[tuple[str, str], str]:
    listed = json.loads(demo.tokens_file(accord).read_text())
    return {(t["agency"], t["role"]): t["token"] for t in listed}


def _existing_ids(accord: Accord) -> dict[str, list[str]]:
    """Every id on the log that a route takes, by the name of the parameter that takes it."""
    app = accord.app
    ids: dict[str, set[str]] = {}
    position = 0
    while True:
        batch = app.recorder.select_notifications(start=position, limit=1000,
                                                  inclusive_of_start=False)
        if not batch:
            break
        position = batch[-1].id
        for notification in batch:
            name = {
                "domain.clients:Client.Registered": "client_id",
                "domain.agreements:Agreement.Proposed": "agreement_id",
                "domain.households:Household.Linked": "household_id",
                "domain.agencies:Principal.Added": "principal_id",
                "domain.alerts:Alert.Raised": "alert_id",
                "domain.reviews:Review.Opened": "review_id",
                "domain.clients:Client.ConsentGiven": "consent_id",
                "domain.clients:Client.EmergencyAccessGranted": "grant_id",
            }.get(notification.topic)
            if name is None:
                continue
            event = app.mapper.to_domain_event(notification)
            value = getattr(event, name) if name in ("consent_id", "grant_id") \
                else event.originator_id
            ids.setdefault(name, set()).add(str(value))
    ids["agency"] = {slug for slug, _, _ in demo.AGENCIES}
    return {name: sorted(values) for name, values in ids.items()}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    directory: Path = tmp_path_factory.mktemp("conformance")
    key_file = directory / "kek.key"
    generate_key_file(key_file)
    generate_signing_key_file(directory / "signing.key")  # so tree heads are signed
    accord = bootstrap(Settings(database_url=f"sqlite:///{directory / 'accord.db'}",
                            key_file=key_file))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            demo.seed(accord, clients=12, seed_value=12)
        tokens = _demo_tokens(accord)
        # Raise the demo's alerts, then break glass once, so reviews have something to list.
        accord.catch_up()
        police = accord.app.authenticate(tokens[(POLICE, Role.PRACTITIONER.value)])
        first_client = _existing_ids(accord)["client_id"][0]
        accord.app.grant_emergency_access(
            uuid.UUID(first_client), Purpose.OFFENDER_MANAGEMENT,
            "Arrested in crisis; custody nurse needs current prescribing.", 60, police)
        yield Seeded(
            accord=accord,
            app=create_app(accord),
            tokens={name: tokens[(agency, role.value)] for name, (agency, role) in ROLES.items()},
            ids=_existing_ids(accord),
        )
    finally:
        # schemathesis keeps an in-process app's lifespan running until told otherwise.
        asgi.shutdown_lifespans()
        accord.close()


#: The document as the app serves it (building it needs no database), once for the
#: examples and generated requests and once for the coverage phase.
DOCUMENT = create_app(settings=Settings(database_url="sqlite://")).openapi()
generated = schemathesis.openapi.from_dict(DOCUMENT, config=_config(coverage=False))
boundaries = schemathesis.openapi.from_dict(DOCUMENT, config=_config(coverage=True))


def _pick(value: object, choices: list[str]) -> str | None:
    """An existing id for three generated values in four, chosen by the generated value
    itself, so the same generation sends the same requests."""
    digest = hashlib.sha256(repr(value).encode()).digest()
    if digest[0] % 4 == 0 or not choices:
        return None
    return choices[digest[1] % len(choices)]


def _existing(name: str, value: object, ids: dict[str, list[str]]) -> object:
    """``value``, or an existing id in its place if it is a well-formed one of ``name``."""
    if name not in ids or not isinstance(value, str):
        return value
    if name != "agency":
        try:
            uuid.UUID(value)
        except ValueError:
            return value  # an invalid id stays: it is what the case is testing
    return _pick(value, ids[name]) or value


def _use_existing_ids(case: Any, ids: dict[str, list[str]]) -> None:
    """Points most of the generated ids in the path, the query and the body at records
    that exist, so the run reaches past the 404s to real answers."""
    for container in (case.path_parameters, case.query):
        for name, value in list((container or {}).items()):
            container[name] = _existing(name, value, ids)
    body = case.body if isinstance(case.body, dict) else {}
    if "client_id" in body:
        body["client_id"] = _existing("client_id", body["client_id"], ids)
    if isinstance(body.get("client_ids"), list):
        body["client_ids"] = [_existing("client_id", v, ids) for v in body["client_ids"]]
    if "recipient" in body:
        body["recipient"] = _existing("agency", body["recipient"], ids)
    if case.path == "/v1/alerts/stream":  # end the stream at once
        case.query = {**(case.query or {}), "max_seconds": 0.05}


def _as(seeded: Seeded, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {seeded.tokens[role]}"}


def _call_and_validate(case: Any, seeded: Seeded, role: str) -> Any:
    response = case.call(app=seeded.app, headers=_as(seeded, role))
    try:
        case.validate_response(response, checks=CHECKS, headers=_as(seeded, role))
    except AssertionError as failure:
        failure.add_note(f"(sent as the {role})")
        raise
    return response


@generated.parametrize()
def test_every_operation_answers_as_documented(case: Any, seeded: Seeded) -> None:
    """The document's examples and generated requests, each sent as every one of
    ``ROLES`` (generating a case costs more than sending it)."""
    _use_existing_ids(case, seeded.ids)
    for role in ROLES:
        _call_and_validate(case, seeded, role)


#: Which provider role the coverage phase sends each operation's cases as.
BOUNDARY_ROLE: dict[str, str] = {}


@boundaries.parametrize()
def test_boundary_and_invalid_input_answers_as_documented(case: Any, seeded: Seeded) -> None:
    """Every boundary and invalid value, as the treatment provider's practitioner or, for
    an operation a practitioner may not use (its first case is a 403), its IG lead. A
    refused role answers 403 before the input is looked at, so sending every case as
    each role would test little more for three times the time."""
    _use_existing_ids(case, seeded.ids)
    label = case.operation.label
    if label not in BOUNDARY_ROLE:
        response = case.call(app=seeded.app, headers=_as(seeded, "provider practitioner"))
        BOUNDARY_ROLE[label] = ("provider ig lead" if response.status_code == 403
                                else "provider practitioner")
    _call_and_validate(case, seeded, BOUNDARY_ROLE[label])


def test_the_document_gives_accords_error_body_for_every_error() -> None:
    """No operation documents FastAPI's own 422 body (accord never sends it); each
    documents accord's, and the errors its shape implies: 401 where it needs a token, 422
    where it takes input, 400 and 413 where it takes a body."""
    assert "HTTPValidationError" not in json.dumps(DOCUMENT)
    bodies = {"ErrorBody", "InvalidInputBody", "ClientExistsBody"}
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            implied = {"401"} if operation.get("security") else set()
            if operation.get("parameters") or operation.get("requestBody"):
                implied.add("422")
            if operation.get("requestBody"):
                implied |= {"400", "413"}
            assert implied <= set(responses), (method, path, sorted(responses))
            for status, response in responses.items():
                if status >= "400":
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.rsplit("/", 1)[-1] in bodies, (method, path, status)
            if "422" in responses:
                ref = responses["422"]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/InvalidInputBody"), (method, path)
    invalid = DOCUMENT["components"]["schemas"]["InvalidInputBody"]
    assert set(invalid["required"]) == {"detail", "errors"}


def test_a_body_that_is_not_utf8_is_a_400_naming_the_body(
        api: TestClient, partnership: Partnership) -> None:
    """FastAPI answers an undecodable body with a bare 400; accord's answer has the
    error shape every other refusal has, and the document lists it."""
    response = api.post("/v1/clients", content=b'{"identity": "\xff\xfe"}',
                        headers={**partnership.headers("tp", Role.PRACTITIONER),
                                 "content-type": "application/json"})
    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == [{"field": "body", "message": body["detail"]}]
    assert "UTF-8" in body["detail"]
    assert "400" in DOCUMENT["paths"]["/v1/clients"]["post"]["responses"]
