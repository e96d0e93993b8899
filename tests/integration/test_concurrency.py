"""Concurrent writers, through the API and the application on both databases.

Optimistic concurrency means a write that loses a race is retried once and may then
be refused with 409; what matters is that nothing is lost, duplicated or half-written,
and that no request fails with a server error.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi.testclient import TestClient

from api.bootstrap import Accord
from domain.agencies import AgencyKind, Role
from domain.application import OPERATOR, Actor
from domain.errors import LastAdministrator
from projections import queries
from tests.builders import VALID_IDENTITY, Partnership

THREADS = 8
APPENDS = 10


def run_together(work: Any, count: int) -> list[Any]:
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(work, range(count)))


def test_concurrent_appends_to_one_client_lose_nothing(
    client: TestClient, accord: Accord, partnership: Partnership
) -> None:
    headers = partnership.headers("tp", Role.PRACTITIONER)
    sg_headers = partnership.headers("tp", Role.SAFEGUARDING)
    response = client.post("/v1/clients", json={"identity": VALID_IDENTITY}, headers=headers)
    assert response.status_code == 201
    client_id = response.json()["client_id"]

    def writer(thread: int) -> list[tuple[int, int, dict[str, Any]]]:
        results = []
        for i in range(APPENDS):
            response = client.post(
                f"/v1/clients/{client_id}/events", headers=sg_headers if thread % 2 else headers,
                json={"type": "intervention_recorded", "occurred_at": "2026-01-05T09:00:00Z",
                      "data": {"kind": "psychosocial", "sessions": thread * APPENDS + i + 1}},
            )
            results.append((thread * APPENDS + i + 1, response.status_code, response.json()))
        return results

    outcomes = [r for rs in run_together(writer, THREADS) for r in rs]
    statuses = Counter(status for _, status, _ in outcomes)
    assert set(statuses) <= {201, 409}, statuses
    assert statuses[201] > 0
    for _, status, body in outcomes:
        if status == 409:
            assert "nothing was written" in body["detail"]

    record = client.get(f"/v1/clients/{client_id}/record", headers=headers).json()
    facts = record["facts"]
    assert len(facts) == statuses[201]
    assert [f["sequence"] for f in facts] == list(range(2, statuses[201] + 2))
    # Exactly the accepted writes are in the record, each once.
    accepted = sorted(marker for marker, status, _ in outcomes if status == 201)
    assert sorted(f["data"]["sessions"] for f in facts) == accepted
    positions = [body["position"] for _, status, body in outcomes if status == 201]
    assert len(set(positions)) == len(positions)
    assert max(positions) <= accord.app.head_position()


def test_concurrent_registrations_of_one_person_make_one_client(
    client: TestClient, partnership: Partnership
) -> None:
    headers = partnership.headers("tp", Role.PRACTITIONER)

    def register(_: int) -> httpx.Response:
        return client.post("/v1/clients", json={"identity": VALID_IDENTITY}, headers=headers)

    responses = run_together(register, THREADS)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == Counter({201: 1, 409: THREADS - 1})
    [created] = [r.json()["client_id"] for r in responses if r.status_code == 201]
    assert {r.json()["client_id"] for r in responses if r.status_code == 409} == {created}
    record = client.get(f"/v1/clients/{created}/record", headers=headers)
    assert record.status_code == 200
    assert record.json()["identity"]["nhs_number"] == "9434765919"


def test_concurrent_registrations_of_one_agency_make_one_agency(
    client: TestClient, partnership: Partnership
) -> None:
    headers = partnership.headers("tp", Role.PARTNERSHIP_ADMIN)

    def register(i: int) -> httpx.Response:
        return client.post("/v1/agencies", headers=headers,
                           json={"id": "housing", "name": f"Housing {i}", "kind": "housing"})

    responses = run_together(register, THREADS)
    assert Counter(r.status_code for r in responses) == Counter({201: 1, 409: THREADS - 1})
    [winner] = [r.json() for r in responses if r.status_code == 201]
    listed = client.get("/v1/agencies", headers=headers).json()
    assert [a for a in listed if a["id"] == "housing"] == [winner]


def test_concurrent_enrolments_in_one_agency_are_all_listed_and_work(
    client: TestClient, partnership: Partnership
) -> None:
    admin = partnership.headers("police", Role.ADMIN)
    before = len(client.get("/v1/agencies/police/principals", headers=admin).json())

    def enrol(i: int) -> httpx.Response:
        return client.post("/v1/principals", headers=admin,
                           json={"agency": "police", "role": "practitioner", "name": f"PC {i}"})

    responses = run_together(enrol, 2 * THREADS)
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    issued = [r.json() for r in responses if r.status_code == 201]
    listed = client.get("/v1/agencies/police/principals", headers=admin).json()
    assert len(listed) == before + len(issued)
    assert {p["principal_id"] for p in issued} <= {p["principal_id"] for p in listed}
    for p in issued:
        me = client.get("/v1/agencies", headers={"Authorization": f"Bearer {p['token']}"})
        assert me.status_code == 200


# -- the last partnership administrator ----------------------------------------------------


def test_two_partnership_admins_revoking_each_other_at_once_leave_one(
    accord: Accord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both check that another partnership administrator remains before either writes;
    the revocations must still not both succeed."""
    app = accord.app
    app.register_agency("phc", "Public Health", AgencyKind.COMMISSIONER, OPERATOR)
    first, second = (app.authenticate(app.add_principal(
        "phc", Role.PARTNERSHIP_ADMIN, name, OPERATOR).token) for name in ("First", "Second"))
    checked = app._check_not_last_administrator
    both_checked = threading.Barrier(2, timeout=20)
    waited = threading.local()

    def check_then_wait(*args: Any) -> None:
        checked(*args)
        if not getattr(waited, "once", False):  # the retry goes straight on
            waited.once = True
            both_checked.wait()

    monkeypatch.setattr(app, "_check_not_last_administrator", check_then_wait)
    outcomes: dict[str, str] = {}

    def remove(by: Actor, victim: Actor) -> Callable[[], None]:
        def run() -> None:
            try:
                app.revoke_principal(victim.principal_id or uuid4(), "a disagreement", by)
                outcomes[by.name] = "revoked"
            except LastAdministrator:
                outcomes[by.name] = "refused"
        return run

    threads = [threading.Thread(target=remove(first, second)),
               threading.Thread(target=remove(second, first))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes.values()) == ["refused", "revoked"]
    active = [p for p in queries.principals(app, "phc", OPERATOR) if not p.revoked]
    assert [p.role for p in active] == [Role.PARTNERSHIP_ADMIN]
