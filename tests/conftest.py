"""Shared fixtures: a wired accord on SQLite and on PostgreSQL, and a small partnership.

Every API test runs against both databases. PostgreSQL is the one on 127.0.0.1:5432
(database ``test``, trust auth); each test gets its own schema, dropped afterwards.
Under ``CI=true`` an unreachable PostgreSQL fails the run; elsewhere those cases skip
with a message. Each case on PostgreSQL carries the ``postgres`` marker
(``pytest_collection_modifyitems`` below), as each Kafka test carries ``kafka``, so
``pytest -m "not postgres"`` runs the rest.

The fixtures are here; what the tests build their scenes from (and import) is
``tests/builders.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.bootstrap import Accord, bootstrap
from infra.keys import generate_key_file
from infra.settings import Settings
from tests.builders import (
    PG_URL,
    Partnership,
    drop_schema,
    enrol_partnership,
    fact,
    post_fact,
    register,
    require_postgres,
    serving,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks every case on PostgreSQL ``postgres``: each parametrised with
    ``backend=postgres`` and each named ``..._on_postgres``. (The Kafka tests carry
    ``kafka`` in their module.)

    Runs the browser tests (``tests/e2e/browser``) last: Playwright's synchronous API
    keeps an event loop running in the main thread until the session ends, and a test
    after it could not start one of its own (``asyncio.run``)."""
    items.sort(key=lambda item: "/e2e/browser/" in str(item.path))
    for item in items:
        callspec: Any = getattr(item, "callspec", None)
        parametrised = callspec is not None and callspec.params.get("backend") == "postgres"
        named = getattr(item, "originalname", item.name).endswith("_on_postgres")
        if parametrised or named:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    key_file = tmp_path / "kek.key"
    generate_key_file(key_file)
    if backend == "sqlite":
        yield Settings(database_url=f"sqlite:///{tmp_path / 'accord.db'}", key_file=key_file)
        return
    require_postgres()
    schema = f"accord_test_{uuid.uuid4().hex[:12]}"
    try:
        yield Settings(database_url=PG_URL, database_schema=schema, key_file=key_file)
    finally:
        drop_schema(schema)


@pytest.fixture
def accord(settings: Settings) -> Iterator[Accord]:
    """accord as its entry points build it (``api.bootstrap``), its read models not yet
    running: the app's lifespan (the ``client`` fixture) starts them."""
    wired = bootstrap(settings)
    try:
        yield wired
    finally:
        wired.close()


@pytest.fixture
def partnership(accord: Accord) -> Partnership:
    """Every role in every agency, the unfitting ones as an old database may hold them, so
    the tests show every route still refuses them."""
    return enrol_partnership(accord)


@pytest.fixture
def client(accord: Accord) -> Iterator[TestClient]:
    with TestClient(create_app(accord)) as test_client:
        yield test_client


def no_server_errors(response: httpx.Response) -> None:
    response.read()
    assert response.status_code < 500, f"{response.request.url}: {response.text}"
    assert "Traceback" not in response.text
    assert 'File "' not in response.text


@pytest.fixture
def api(client: TestClient) -> TestClient:
    client.event_hooks["response"].append(no_server_errors)
    return client


@pytest.fixture
def treated(api: TestClient, partnership: Partnership) -> dict[str, Any]:
    """A client in treatment with engagement, a criminal-justice order and a clinical note."""
    client_id = register(api, partnership)
    positions = {
        "appointment": post_fact(api, partnership, client_id, fact()),
        "episode": post_fact(api, partnership, client_id, fact(
            "treatment_episode_started", {"modality": "pharmacological",
                                          "substances": ["opioids"]})),
        "order": post_fact(api, partnership, client_id, fact(
            "criminal_justice_status", {"order": "drug_rehabilitation_requirement",
                                        "status": "compliant", "ends_on": "2026-12-01"})),
        "note": post_fact(api, partnership, client_id, fact(
            "clinical_note_added", {"text": "Disclosed a relapse in confidence."})),
    }
    return {"client_id": client_id, "positions": positions}


@pytest.fixture
def server(accord: Accord) -> Iterator[str]:
    """A real uvicorn serving the app on a free loopback port, as `accord serve` runs."""
    with serving(accord) as url:
        yield url
