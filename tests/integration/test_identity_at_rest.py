"""Identity never reaches the database in plain text.

Clients with distinctive names, NHS numbers and postcodes are registered through the
API; then the raw storage is searched: the SQLite file and its write-ahead log byte for
byte, or every row of every table in the test's PostgreSQL schema. A fact payload field
that is stored in plain text (by design: a key worker's name, which is not free text
about the client, so not sealed) is searched for too, so the scan is known to see the
data it is looking through.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import make_url

from api.bootstrap import Accord
from domain.agencies import Role
from infra.schema import client_keys
from projections.views import AgencyViews
from tests.builders import PG_URL, Partnership

PEOPLE: list[dict[str, str]] = [
    {"given_name": "Zebedia", "family_name": "Quarrington-Vex", "date_of_birth": "1979-02-28",
     "nhs_number": "401 023 2137", "postcode": "nr14 7qx"},
    {"given_name": "Philippa", "family_name": "Thistlewood", "date_of_birth": "1992-11-03",
     "nhs_number": "999-000-0018", "postcode": "YO17 9WJ"},
    {"given_name": "Oyelaran", "family_name": "Brackenbury", "date_of_birth": "2001-06-15",
     "nhs_number": "9990000050", "postcode": "tr197hz"},
]

#: What a client record shows after normalisation (NHS digits, upper-case spaced postcode).
NORMALISED = [
    ("4010232137", "NR14 7QX"),
    ("9990000018", "YO17 9WJ"),
    ("9990000050", "TR19 7HZ"),
]

#: Stored in plain text by design (a key worker's name is neither identity nor free text
#: about the client): the scan's control.
CONTROL_NOTE = "Wibbleford-Plinth Controlmarker"


def needles(person: dict[str, str], nhs: str, postcode: str) -> list[bytes]:
    """Every plain-text form of the identity that must not be found at rest."""
    forms = [
        person["given_name"], person["family_name"], nhs, f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}",
        postcode, postcode.replace(" ", ""), person["date_of_birth"],
    ]
    return [f.encode() for f in forms] + [f.lower().encode() for f in forms]


def register_everyone(client: TestClient, partnership: Partnership) -> list[str]:
    headers = partnership.headers("tp", Role.PRACTITIONER)
    ids = []
    for person in PEOPLE:
        response = client.post("/v1/clients", json={"identity": person}, headers=headers)
        assert response.status_code == 201, response.text
        ids.append(response.json()["client_id"])
    response = client.post(
        f"/v1/clients/{ids[0]}/events", headers=headers,
        json={"type": "treatment_episode_started", "occurred_at": "2026-01-05T10:00:00Z",
              "data": {"modality": "psychosocial", "substances": ["alcohol"],
                       "key_worker": CONTROL_NOTE}},
    )
    assert response.status_code == 201, response.text
    # Let the read models (agency views) catch up, so that they are searched too.
    response = client.get(
        f"/v1/clients/{ids[0]}/view?purpose=direct_care&min_position={response.json()['position']}",
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return ids


def sqlite_bytes(accord: Accord) -> bytes:
    database = Path(make_url(accord.settings.database_url).database or "")
    files = [p for p in (database, Path(f"{database}-wal"), Path(f"{database}-journal"))
             if p.exists()]
    assert database in files
    return b"".join(p.read_bytes() for p in files)


def postgres_rows(accord: Accord) -> bytes:
    """Every value of every row in the test's schema, bytea as its raw bytes."""
    schema = accord.settings.database_schema
    assert schema
    chunks: list[bytes] = []
    with psycopg.connect(PG_URL.replace("+psycopg", "")) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,),
        )]
        assert "accord_events" in tables or "stored_events" in tables
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):  # names from catalog
                chunks.extend(as_bytes(value) for value in row)
    return b"\n".join(chunks)


def as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


def test_identity_is_not_stored_in_plain_text(
    backend: str, accord: Accord, partnership: Partnership, client: TestClient
) -> None:
    register_everyone(client, partnership)
    raw = sqlite_bytes(accord) if backend == "sqlite" else postgres_rows(accord)
    assert CONTROL_NOTE.encode() in raw, "the scan did not see the stored events"
    for person, (nhs, postcode) in zip(PEOPLE, NORMALISED, strict=True):
        for needle in needles(person, nhs, postcode):
            assert needle not in raw, f"{needle!r} is stored in plain text"


def test_identity_round_trips_through_the_record(
    accord: Accord, partnership: Partnership, client: TestClient
) -> None:
    ids = register_everyone(client, partnership)
    headers = partnership.headers("tp", Role.IG_LEAD)
    for client_id, person, (nhs, postcode) in zip(ids, PEOPLE, NORMALISED, strict=True):
        response = client.get(f"/v1/clients/{client_id}/record", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["identity_erased"] is False
        assert body["identity"] == {**person, "nhs_number": nhs, "postcode": postcode}


def test_a_shredded_identity_is_gone_from_the_key_table_and_the_record(
    backend: str, accord: Accord, partnership: Partnership, client: TestClient
) -> None:
    ids = register_everyone(client, partnership)
    accord.app.vault.shred(UUID(ids[1]))
    with accord.engine.connect() as conn:
        keys = dict(conn.execute(select(client_keys.c.client_id, client_keys.c.wrapped_key)).all())
    assert keys[UUID(ids[1]).hex] is None
    assert keys[UUID(ids[0]).hex] is not None
    headers = partnership.headers("tp", Role.PRACTITIONER)
    body = client.get(f"/v1/clients/{ids[1]}/record", headers=headers).json()
    assert (body["identity"], body["identity_erased"]) == (None, True)
    assert client.get(f"/v1/clients/{ids[0]}/record", headers=headers).json()["identity"]


def test_the_scan_would_find_plain_identity(
    backend: str, accord: Accord, partnership: Partnership, client: TestClient
) -> None:
    """The needles are findable: written into a plain fact payload field, they are seen."""
    ids = register_everyone(client, partnership)
    person = PEOPLE[0]
    leak = f"{person['given_name']} {person['family_name']}"
    response = client.post(
        f"/v1/clients/{ids[1]}/events", headers=partnership.headers("tp", Role.PRACTITIONER),
        json={"type": "treatment_episode_started", "occurred_at": "2026-01-06T10:00:00Z",
              "data": {"modality": "psychosocial", "substances": ["alcohol"],
                       "key_worker": leak}},
    )
    assert response.status_code == 201
    raw = sqlite_bytes(accord) if backend == "sqlite" else postgres_rows(accord)
    assert leak.encode() in raw



@pytest.mark.parametrize("backend", ["sqlite"])
def test_deletes_are_still_zeroed_after_a_rebuild_of_the_views(accord: Accord) -> None:
    """SQLite zeroes what a delete frees (``secure_delete``), so that shredded keys and
    what an erasure removes leave nothing in free pages. A rebuild turns that off for its
    own deletes only: no pooled connection is left without it."""
    AgencyViews(accord.app, accord.engine).rebuild()
    with contextlib.ExitStack() as stack:
        connections = [stack.enter_context(accord.engine.connect()) for _ in range(6)]
        assert [c.exec_driver_sql("PRAGMA secure_delete").scalar() for c in connections] \
            == [1] * 6
