"""A real uvicorn server on a free loopback port, on both databases, spoken to with httpx.

This is how `accord serve` runs: real sockets, real HTTP/1.1 framing (Content-Length and
chunked bodies), the app's lifespan and its thread pool.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest

from api.bootstrap import Accord
from domain.agencies import Role
from tests.builders import VALID_IDENTITY, Partnership


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    def no_server_errors(response: httpx.Response) -> None:
        response.read()
        assert response.status_code < 500, response.text
        assert "Traceback" not in response.text

    with httpx.Client(base_url=server, timeout=30,
                      event_hooks={"response": [no_server_errors]}) as client:
        yield client


def test_register_record_and_read_over_real_http(
    http: httpx.Client, partnership: Partnership
) -> None:
    headers = partnership.headers("tp", Role.PRACTITIONER)
    response = http.post("/v1/clients", json={"identity": VALID_IDENTITY}, headers=headers)
    assert response.status_code == 201, response.text
    client_id = response.json()["client_id"]
    response = http.post(
        f"/v1/clients/{client_id}/events", headers=headers,
        json={"type": "referral_received", "occurred_at": "2026-01-05T09:00:00Z",
              "data": {"source": "gp", "substances": ["alcohol"]}},
    )
    assert response.status_code == 201, response.text
    response = http.get(f"/v1/clients/{client_id}/record", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["identity"]["nhs_number"] == "9434765919"
    assert [(f["sequence"], f["type"]) for f in body["facts"]] == [(2, "referral_received")]
    other = http.get(f"/v1/clients/{client_id}/record",
                     headers=partnership.headers("tp2", Role.PRACTITIONER))
    assert other.status_code == 404


def test_a_request_without_a_token_gets_401(http: httpx.Client) -> None:
    response = http.get("/v1/event-types")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"]
    response = http.get("/v1/event-types", headers={"Authorization": "Bearer acc_x_y"})
    assert response.status_code == 401


def test_chunked_bodies_are_limited_and_accepted_over_real_http(
    http: httpx.Client, accord: Accord, partnership: Partnership
) -> None:
    headers = {**partnership.headers("tp", Role.PRACTITIONER),
               "Content-Type": "application/json"}
    client_id = http.post("/v1/clients", json={"identity": VALID_IDENTITY},
                          headers=headers).json()["client_id"]
    small = json.dumps({"type": "appointment_attended", "occurred_at": "2026-01-05T09:00:00Z",
                        "data": {"appointment": "group"}}).encode()

    def chunks(body: bytes, size: int) -> Iterator[bytes]:
        for start in range(0, len(body), size):
            yield body[start:start + size]

    response = http.post(f"/v1/clients/{client_id}/events", content=chunks(small, 9),
                         headers=headers)
    assert response.status_code == 201, response.text
    before = accord.app.head_position()
    huge = json.dumps({"type": "clinical_note_added", "occurred_at": "2026-01-05T09:00:00Z",
                       "data": {"text": "x" * (accord.settings.max_body_bytes * 2)}}).encode()
    response = http.post(f"/v1/clients/{client_id}/events", content=chunks(huge, 8192),
                         headers=headers)
    assert response.status_code == 413
    response = http.post(f"/v1/clients/{client_id}/events", content=huge, headers=headers)
    assert response.status_code == 413
    assert accord.app.head_position() == before
    # The server is still serving afterwards.
    facts = http.get(f"/v1/clients/{client_id}/record", headers=headers).json()["facts"]
    assert [f["type"] for f in facts] == ["appointment_attended"]


def test_parallel_requests_over_real_http(
    server: str, partnership: Partnership
) -> None:
    headers = partnership.headers("tp", Role.PRACTITIONER)
    with httpx.Client(base_url=server, timeout=30) as http:
        client_id = http.post("/v1/clients", json={"identity": VALID_IDENTITY},
                              headers=headers).json()["client_id"]
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=server, timeout=30) as own:
            for _ in range(5):
                response = own.post(
                    f"/v1/clients/{client_id}/events", headers=headers,
                    json={"type": "appointment_attended", "occurred_at": "2026-01-05T09:00:00Z",
                          "data": {"appointment": "keywork"}},
                )
                with lock:
                    statuses.append(response.status_code)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(statuses) == 20
    assert set(statuses) <= {201, 409}
    with httpx.Client(base_url=server, timeout=30) as http:
        facts = http.get(f"/v1/clients/{client_id}/record", headers=headers).json()["facts"]
    assert len(facts) == statuses.count(201)
