"""Shared fixtures: a wired accord on SQLite and on PostgreSQL, and a small partnership.

Every API test runs against both databases. PostgreSQL is the one on 127.0.0.1:5432
(database ``test``, trust auth); each test gets its own schema, dropped afterwards.
Under ``CI=true`` an unreachable PostgreSQL fails the run; elsewhere those cases skip
with a message.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from api.bootstrap import Accord, bootstrap
from domain.agencies import AgencyKind, Principal, Role, role_fits
from domain.application import OPERATOR, TOKEN_PREFIX, AccordApplication
from infra.keys import generate_key_file
from infra.settings import Settings
from tests.kafka_broker import free_port

PG_URL = os.environ.get("ACCORD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def postgres_available() -> str | None:
    """None if PostgreSQL answers, else why not."""
    try:
        with psycopg.connect(PG_URL.replace("+psycopg", ""), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


def require_postgres() -> None:
    problem = postgres_available()
    if problem is not None:
        message = f"PostgreSQL at {PG_URL} is unreachable: {problem}"
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing service is a failure)")
        pytest.skip(message)


def drop_schema(schema: str) -> None:
    with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


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


@dataclass
class Partnership:
    """Agencies and one token per (agency, role) for tests."""

    accord: Accord
    tokens: dict[tuple[str, Role], str] = field(default_factory=dict)

    def token(self, agency: str, role: Role) -> str:
        return self.tokens[(agency, role)]

    def headers(self, agency: str, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(agency, role)}"}


#: Two treatment providers (after a re-procurement there can be several) and the partners.
AGENCIES = {
    "tp": AgencyKind.TREATMENT_PROVIDER,
    "tp2": AgencyKind.TREATMENT_PROVIDER,
    "police": AgencyKind.POLICE,
    "childrens": AgencyKind.CHILDRENS_SERVICES,
    "commissioner": AgencyKind.COMMISSIONER,
}


def enrol_unfitting(app: AccordApplication, agency: str, role: Role, name: str) -> str:
    """Enrols a principal whose role does not fit its agency's kind (a practitioner of the
    commissioner, a commissioner of a treatment provider), as a database from before
    ``role_fits`` may hold; no command can add one now. Returns its token."""
    secret = secrets.token_urlsafe(32)
    principal = Principal(agency=agency, role=role, name=name,
                          token_hash=hashlib.sha256(secret.encode()).hexdigest(),
                          added_by=OPERATOR.reference)
    enrolling = app.agency(agency)
    enrolling.enrol(principal.id)
    app.save(enrolling, principal)
    return f"{TOKEN_PREFIX}_{principal.id.hex}_{secret}"


@pytest.fixture
def partnership(accord: Accord) -> Partnership:
    """Every role in every agency, the unfitting ones as an old database may hold them, so
    the tests show every route still refuses them."""
    app = accord.app
    result = Partnership(accord)
    for slug, kind in AGENCIES.items():
        app.register_agency(slug, slug.title(), kind, OPERATOR)
        for role in Role:
            name = f"{slug} {role}"
            result.tokens[(slug, role)] = (
                app.add_principal(slug, role, name, OPERATOR).token if role_fits(kind, role)
                else enrol_unfitting(app, slug, role, name))
    return result


@pytest.fixture
def client(accord: Accord) -> Iterator[TestClient]:
    with TestClient(create_app(accord)) as test_client:
        yield test_client


VALID_IDENTITY = {
    "given_name": "Ann",
    "family_name": "Example",
    "date_of_birth": "1985-04-12",
    "nhs_number": "943 476 5919",
    "postcode": "NR1 3QU",
}


def no_server_errors(response: httpx.Response) -> None:
    response.read()
    assert response.status_code < 500, f"{response.request.url}: {response.text}"
    assert "Traceback" not in response.text
    assert 'File "' not in response.text


@pytest.fixture
def api(client: TestClient) -> TestClient:
    client.event_hooks["response"].append(no_server_errors)
    return client


ACCESS_TOPIC = "domain.access:AccessRecord.Recorded"


def _topics(accord: Accord) -> list[str]:
    recorder = accord.app.recorder
    topics: list[str] = []
    position = 0
    while True:
        batch = recorder.select_notifications(start=position, limit=1000,
                                              inclusive_of_start=False)
        if not batch:
            return topics
        topics.extend(n.topic for n in batch)
        position = batch[-1].id


def changes(accord: Accord) -> int:
    """How many events other than access records the log holds. Reads are recorded by
    design, so "a refused request changes nothing" means this count stays the same."""
    return sum(1 for topic in _topics(accord) if topic != ACCESS_TOPIC)


def access_records(accord: Accord) -> int:
    return sum(1 for topic in _topics(accord) if topic == ACCESS_TOPIC)


@pytest.fixture
def server(accord: Accord) -> Iterator[str]:
    """A real uvicorn serving the app on a free loopback port, as `accord serve` runs."""
    port = free_port()
    config = uvicorn.Config(create_app(accord), host="127.0.0.1", port=port,
                            log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        if not thread.is_alive():
            pytest.fail("uvicorn stopped before it started")
        if time.monotonic() > deadline:
            pytest.fail("uvicorn did not start within 30 s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "uvicorn did not shut down"
