"""After erasure, nothing at rest or on the feed shows the person, and the log still verifies.

A client with a distinctive identity has free text recorded about them that names them
(a clinical note, an adult safeguarding concern's summary shared with the police under an
agreement, a care plan's goals, a police reference), and a key worker's name, which is not
free text about the client and is kept in plain text by design: the control that shows the
scan sees the data it looks through. The feed is published (through the Kafka relay, into a
recording producer: the bytes that would go to the broker), and the client is erased
through the API with a reason that names them.

Then the raw storage is searched: on SQLite the database file, its write-ahead log and its
shared-memory index byte for byte; on PostgreSQL every row of every table in the test's
schema, cast to text. Neither the names, the NHS number, the free text, the erasure's
reason nor the destroyed data key is found; every message the feed published, before and
after the erasure, is searched too. The API shows the person nowhere, and ``accord audit
verify`` still verifies the log against its signed tree heads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import make_url

from api.bootstrap import Accord
from api.cli import main
from domain.agencies import Role
from domain.sealing import is_sealed
from infra.keys import load_key_file
from infra.relay import Relay, pseudonym_key
from infra.schema import client_keys, facts
from infra.settings import Settings
from infra.signing import generate_signing_key_file
from tests.builders import HEALTH_PUBLIC_TASK, Partnership, agree, hdr, nhs_number, post_fact
from tests.integration.test_identity_at_rest import postgres_rows
from tests.integration.test_kafka import broker, read  # noqa: F401 - the broker fixture
from tests.kafka_broker import Tansu

PERSON = {"given_name": "Ysoldabeth", "family_name": "Quillfeather-Abernathy",
          "date_of_birth": "1983-07-19", "nhs_number": nhs_number(4711),
          "postcode": "TR19 7HZ"}
NOTE = "Ysoldabeth says her brother Caradocius keeps the spare key at Thornbury Mews."
SUMMARY = "Neighbour found Ysoldabeth Quillfeather unconscious at Thornbury Mews."
GOAL = "Leave the Thornbury Mews flat before Caradocius is released"
POLICE_REFERENCE = "QX-7731/26"
REASON = "Ysoldabeth Quillfeather-Abernathy wrote asking to be forgotten."
#: Stored in plain text by design (a key worker's name): the scan's control.
CONTROL = "Wibbleford-Plinth Controlmarker"

#: Police see adult safeguarding concerns, summary included, for safeguarding adults.
TERMS = {
    "recipient": "police", "title": "Adult safeguarding concerns",
    "purposes": ["safeguarding_adults"],
    "categories": {"identity": ["given_name", "family_name"],
                   "safeguarding_adults": ["concern", "summary", "section_42_enquiry"]},
    "lawful_basis": HEALTH_PUBLIC_TASK, "consent_required": False,
    "valid_from": "2024-04-01", "review_on": "2027-03-31", "retention_days": 365,
}


def needles() -> list[bytes]:
    """Every plain form of the person and of what was written about them."""
    nhs = PERSON["nhs_number"]
    forms = [PERSON["given_name"], PERSON["family_name"], nhs,
             f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}", NOTE, SUMMARY, GOAL, POLICE_REFERENCE,
             REASON, "Caradocius", "Thornbury Mews"]
    return [f.encode() for f in forms] + [f.lower().encode() for f in forms]


def at_rest(accord: Accord, backend: str) -> bytes:
    """SQLite: the database file, its write-ahead log and shared-memory index, as bytes;
    PostgreSQL: every value of every row of every table in the schema."""
    if backend != "sqlite":
        return postgres_rows(accord)
    database = Path(make_url(accord.settings.database_url).database or "")
    files = [p for p in (database, Path(f"{database}-wal"), Path(f"{database}-shm"),
                         Path(f"{database}-journal")) if p.exists()]
    assert database in files
    return b"".join(p.read_bytes() for p in files)


@dataclass
class Sent:
    """A producer that records what it is given, acknowledged at once: every byte the
    relay would hand to the broker."""

    values: list[bytes] = field(default_factory=list)

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Any) -> Any:
        self.values.append(topic.encode() + b" " + key + b" " + value)

        class Acknowledged:
            def get(self, timeout: float) -> None:
                return None

        return Acknowledged()

    def flush(self, timeout: float) -> None:
        return None

    def close(self, timeout: float) -> None:
        return None


@pytest.fixture
def signing_key(settings: Settings) -> Path:
    """The tree-head signing key, where the settings look for it, before accord starts
    (so the running log tree signs heads)."""
    generate_signing_key_file(settings.signing_key_path)
    return settings.signing_key_path


def _environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCORD_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ACCORD_KEY_FILE", str(settings.key_file))
    monkeypatch.setenv("ACCORD_SIGNING_KEY_FILE", str(settings.signing_key_path))
    if settings.database_schema:
        monkeypatch.setenv("ACCORD_DATABASE_SCHEMA", settings.database_schema)
    else:
        monkeypatch.delenv("ACCORD_DATABASE_SCHEMA", raising=False)


def record_everything(api: TestClient, partnership: Partnership) -> tuple[str, dict[str, int]]:
    agree(api, partnership, TERMS)
    response = api.post("/v1/clients", json={"identity": PERSON},
                        headers=hdr(partnership, "tp"))
    assert response.status_code == 201, response.text
    client_id = str(response.json()["client_id"])
    when = "2026-01-05T09:30:00Z"
    payloads = {
        "note": ("clinical_note_added", {"text": NOTE}),
        "concern": ("adult_safeguarding_concern_raised",
                    {"concern": "self_neglect", "summary": SUMMARY}),
        "plan": ("care_plan_agreed", {"goals": [GOAL, "Weekly keywork"],
                                      "review_on": "2026-06-01"}),
        "incident": ("domestic_abuse_incident_recorded",
                     {"role": "victim", "children_present": False,
                      "police_reference": POLICE_REFERENCE}),
        "episode": ("treatment_episode_started",
                    {"modality": "psychosocial", "substances": ["alcohol"],
                     "key_worker": CONTROL}),
    }
    positions = {name: post_fact(api, partnership, client_id,
                                 {"type": kind, "occurred_at": when, "data": data})
                 for name, (kind, data) in payloads.items()}
    return client_id, positions


def settle(api: TestClient) -> None:
    api.app.state.projections.catch_up()  # type: ignore[attr-defined]


def test_after_erasure_nothing_at_rest_or_on_the_feed_shows_the_person(
        backend: str, signing_key: Path, accord: Accord, partnership: Partnership,
        client: TestClient, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    api = client
    client_id, positions = record_everything(api, partnership)
    settle(api)
    lead = hdr(partnership, "tp", Role.IG_LEAD)

    # Before: the reads open the free text; what is at rest holds it only sealed.
    record = api.get(f"/v1/clients/{client_id}/record", headers=lead).json()
    shown = {f["position"]: f["data"] for f in record["facts"]}
    assert shown[positions["note"]] == {"text": NOTE}
    assert shown[positions["plan"]]["goals"] == [GOAL, "Weekly keywork"]
    police = api.get(f"/v1/clients/{client_id}/view", params={"purpose": "safeguarding_adults"},
                     headers=hdr(partnership, "police"))
    assert police.status_code == 200, police.text
    assert SUMMARY in police.text
    raw = at_rest(accord, backend)
    assert CONTROL.encode() in raw, "the scan did not see the stored facts"
    assert not [n for n in needles() if n in raw], "free text or identity stored in plain text"
    with accord.engine.connect() as conn:
        data_key = conn.execute(select(client_keys.c.wrapped_key).where(
            client_keys.c.client_id == UUID(client_id).hex)).scalar_one()
    assert bytes(data_key) in raw or data_key.hex().encode() in raw, "the scan missed the key"

    sent = Sent()
    relay = Relay(accord.app, accord.engine, "unused:9092",
                  pseudonym_key(load_key_file(accord.settings.key_file)),
                  producer_factory=lambda: sent)
    relay.drain()
    published = [json.loads(v.split(b" ", 2)[2]) for v in sent.values]
    concern = next(m for m in published if m.get("position") == positions["concern"])
    assert concern["kind"] == "fact.entered"
    assert concern["shown"][0]["sealed_fields"] == ["summary"]
    assert "summary" not in concern["shown"][0]["data"]

    # The erasure, with a reason that names the person.
    erased = api.post(f"/v1/clients/{client_id}/erase", json={"reason": REASON}, headers=lead)
    assert erased.status_code == 200, erased.text
    assert erased.json()["reason_fingerprint"].startswith("hmac-sha256:")
    settle(api)
    relay.drain()
    left = [json.loads(v.split(b" ", 2)[2]) for v in sent.values[len(published):]]
    assert {m["position"] for m in left if m["kind"] == "fact.left"} >= {positions["concern"]}

    raw = at_rest(accord, backend)
    assert CONTROL.encode() in raw, "the scan did not see the stored facts"
    found = [n for n in needles() if n in raw]
    assert not found, f"still at rest after erasure: {found}"
    assert bytes(data_key) not in raw and data_key.hex().encode() not in raw, \
        "the destroyed data key is still at rest"
    on_the_feed = b"\n".join(sent.values)
    assert not [n for n in needles() if n in on_the_feed]

    # Nobody is shown the person, nor what was written about them.
    body = api.get(f"/v1/clients/{client_id}/record", headers=lead).json()
    assert (body["identity"], body["identity_erased"]) == (None, True)
    assert {f["position"]: f["data"] for f in body["facts"]}[positions["note"]] == {"text": None}
    assert api.get(f"/v1/clients/{client_id}/view", params={"purpose": "safeguarding_adults"},
                   headers=hdr(partnership, "police")).status_code == 404
    replay = api.get("/v1/audit/replay", headers=lead, params={
        "agency": "police", "client_id": client_id, "purpose": "safeguarding_adults",
        "at": str(positions["episode"])})  # a moment before the erasure
    assert replay.status_code == 200, replay.text
    assert [f["data"] for f in replay.json()["permitted"]
            if f["position"] == positions["concern"]] == [
        {"concern": "self_neglect", "summary": None, "section_42_enquiry": False}]
    for response in (body, replay.json()):
        text = json.dumps(response).encode()
        assert not [n for n in needles() if n in text]
    with accord.engine.connect() as conn:  # the views' copy keeps only sealed free text
        copied = {row.position: json.loads(row.data) for row in conn.execute(
            select(facts.c.position, facts.c.data).where(facts.c.client_id == UUID(client_id).hex))}
    assert is_sealed(copied[positions["note"]]["text"])

    # The log and its signed tree heads still verify.
    _environment(accord.settings, monkeypatch)
    capsys.readouterr()
    code = main(["audit", "verify"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert "OK: the log matches every signed tree head" in out.out


def test_free_text_recorded_before_sealing_is_withheld_once_the_client_is_erased(
        backend: str, accord: Accord, partnership: Partnership, client: TestClient) -> None:
    """A note recorded before free text was sealed (written here as such a log holds it,
    past the command that now seals it) is plain text in the log, which is append-only:
    erasure cannot remove it from there (README, the limits), but the views' copy blanks
    it and no read shows it any more."""
    from datetime import UTC, datetime

    api = client
    response = api.post("/v1/clients", json={"identity": PERSON},
                        headers=hdr(partnership, "tp"))
    client_id = UUID(response.json()["client_id"])
    app = accord.app
    aggregate = app._client(client_id)
    aggregate.record_fact(fact_type="clinical_note_added", category="clinical_notes",
                          data={"text": NOTE}, occurred_at=datetime(2025, 5, 1, tzinfo=UTC),
                          controller="tp", recorded_by="p1")
    legacy = app._position(app.save(aggregate))
    settle(api)
    lead = hdr(partnership, "tp", Role.IG_LEAD)
    record = api.get(f"/v1/clients/{client_id}/record", headers=lead).json()
    assert [f["data"] for f in record["facts"] if f["position"] == legacy] == [{"text": NOTE}]

    assert api.post(f"/v1/clients/{client_id}/erase", json={"reason": REASON},
                    headers=lead).status_code == 200
    settle(api)
    record = api.get(f"/v1/clients/{client_id}/record", headers=lead).json()
    assert [f["data"] for f in record["facts"] if f["position"] == legacy] == [{"text": None}]
    with accord.engine.connect() as conn:
        copied = conn.execute(select(facts.c.data).where(facts.c.position == legacy)).scalar()
    assert json.loads(copied) == {"text": None}
    stored = app.recorder.select_notifications(start=legacy, limit=1)[0].state
    assert NOTE.encode() in bytes(stored)  # the limit: the append-only log keeps it


@pytest.mark.kafka
@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_topics_never_held_the_person(
        backend: str, accord: Accord, partnership: Partnership, client: TestClient,
        broker: Tansu) -> None:  # noqa: F811 - the fixture imported above
    """The same through a real Kafka-protocol broker: every message on every topic the
    relay published to, before and after the erasure, is searched."""
    api = client
    client_id, positions = record_everything(api, partnership)
    settle(api)
    prefix = f"e{UUID(client_id).hex[:10]}"
    relay = Relay(accord.app, accord.engine, broker.bootstrap,
                  pseudonym_key(load_key_file(accord.settings.key_file)), prefix=prefix,
                  poll_interval=0.05, backoff=(0.1, 0.5))
    try:
        relay.drain()
        erased = api.post(f"/v1/clients/{client_id}/erase", json={"reason": REASON},
                          headers=hdr(partnership, "tp", Role.IG_LEAD))
        assert erased.status_code == 200, erased.text
        settle(api)
        relay.drain()
    finally:
        relay.close()
    records = read(broker.bootstrap, [f"{prefix}.feed.police"])
    kinds = {(json.loads(r.value)["kind"], json.loads(r.value)["position"]) for r in records}
    assert {("fact.entered", positions["concern"]), ("fact.left", positions["concern"])} <= kinds
    on_the_topic = b"\n".join(bytes(r.value) + bytes(r.key or b"") for r in records)
    assert not [n for n in needles() if n in on_the_topic]
