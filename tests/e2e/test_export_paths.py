"""Every export path goes through the same policy: none is a way round it.

For one client of the treatment provider and a partner, on both databases:

* with **no basis** (no agreement in force), the partner gets nothing about the client
  from any path: the FHIR consent export and import (``api.routers.fhir``), the Kafka
  per-agency feed and alert stream (``infra.relay``, with a producer that keeps what it
  is sent), the NDTMS extract (``accord extract ndtms``, for the commissioner, the only
  agency it is for) and subject access: each answer is the one an unknown client gets;
* **with a basis**, each path gives exactly what the partner's view gives and no more: the
  feed sends the facts the view shows, each with the view's masked data; the extract
  holds only the fields the commissioner's share names; the consent export and subject
  access stay the recording (registering) agency's own.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from api.cli import main
from domain.agencies import Role
from infra.keys import load_key_file
from infra.relay import Relay, pseudonym
from infra.settings import Settings
from projections.reports.extract import FILES
from projections.reports.projection import OutcomeReports
from projections.views import AgencyViews
from tests.builders import (
    STARTED,
    VALID_IDENTITY,
    Partnership,
    Story,
    agency_views,
    agree,
    changes,
    commissioning_terms,
    fact,
    fhir_consent,
    hdr,
    housing_terms,
    post_fact,
    settle,
    view,
)

IG = Role.IG_LEAD
NHS = VALID_IDENTITY["nhs_number"].replace(" ", "")
PERIOD = ["--from", "2025-04-01", "--to", "2026-03-31"]


@dataclass
class Sent:
    def get(self, timeout: float | None = None) -> None:
        return None


@dataclass
class Producer:
    """Stands in for kafka-python's producer: keeps what was sent, acknowledges at once."""

    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Any) -> Sent:
        self.sent.append((topic, json.loads(value)))
        return Sent()

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        return None


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's environment naming the test's database and key file."""
    monkeypatch.setenv("ACCORD_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ACCORD_KEY_FILE", str(settings.key_file))
    if settings.database_schema:
        monkeypatch.setenv("ACCORD_DATABASE_SCHEMA", settings.database_schema)
    else:
        monkeypatch.delenv("ACCORD_DATABASE_SCHEMA", raising=False)


def a_client(api: TestClient, partnership: Partnership) -> tuple[UUID, str, dict[str, int]]:
    """tp's client in treatment, with a housing status, a clinical note and a consent to
    children's services recorded: (client, consent id, fact positions)."""
    story = Story(partnership.accord, partnership)
    client_id = story.client()
    positions = {
        "episode": story.fact(client_id, "treatment_episode_started",
                              {"modality": "psychosocial", "substances": ["alcohol"]}),
        "housing": story.fact(client_id, "housing_status_recorded", {"status": "settled"}),
        "note": story.fact(client_id, "clinical_note_added",
                           {"text": "Disclosed a relapse in confidence."}),
    }
    consent_id, _ = story.app.give_consent(
        client_id, recipient_agency="childrens", recipient_kind=None,
        categories=["housing"], purposes=["care_coordination"], data_from=None,
        data_to=None, expires_at=None, obtained="written", by=story.actor("tp"))
    settle(api)
    return client_id, str(consent_id), positions


def relay_everything(api: TestClient, partnership: Partnership) -> list[tuple[str, Any]]:
    """Everything the Kafka relay publishes of the log so far (feeds and alerts)."""
    accord = partnership.accord
    settle(api)
    producer = Producer()
    relay = Relay(accord.app, accord.engine, "unused:9092",
                  load_key_file(accord.settings.key_file), producer_factory=lambda: producer)
    relay.drain()
    return producer.sent


def extract(out: Path, agency: str = "commissioner") -> dict[str, list[dict[str, str]]]:
    assert main(["extract", "ndtms", *PERIOD, "--out", str(out), "--agency", agency]) == 0
    found = {}
    for name in FILES:
        with (out / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
            found[name] = list(csv.DictReader(handle))
    return found


def subject_access(api: TestClient, partnership: Partnership, client_id: str,
                   agency: str) -> Any:
    return api.get(f"/v1/clients/{client_id}/subject-access",
                   headers=hdr(partnership, agency, IG))


def fhir_export(api: TestClient, partnership: Partnership, client_id: str, consent_id: str,
                agency: str) -> Any:
    return api.get(f"/v1/clients/{client_id}/consents/{consent_id}/fhir",
                   headers=hdr(partnership, agency))


def mentions(text: str, client_id: UUID, key: bytes) -> bool:
    """Whether a message names the client: its id, pseudonym or identity."""
    return any(secret in text for secret in (
        str(client_id), client_id.hex, pseudonym(key, client_id), NHS,
        VALID_IDENTITY["family_name"], VALID_IDENTITY["postcode"]))


def test_with_no_basis_no_export_path_tells_the_partner_anything(
        api: TestClient, partnership: Partnership, cli_env: None, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Children's services see housing status, so the relay has something to send; and
    # the other provider's client is commissioned, so the extract has someone in it.
    agree(api, partnership, housing_terms("childrens"))
    agree(api, partnership, commissioning_terms({"treatment": ["modality"]}), "tp2")
    story = Story(partnership.accord, partnership)
    story.client("tp2")
    story.episode(story.clients[0], "tp2")
    client_id, consent_id, _ = a_client(api, partnership)
    unknown = str(uuid4())
    assert view(api, partnership, str(client_id), "police", "care_coordination",
                partnership.accord.app.head_position()).status_code == 404
    before = changes(partnership.accord)

    # FHIR out: the consent is the same 404 as an unknown client's unknown consent.
    theirs = fhir_export(api, partnership, str(client_id), consent_id, "police")
    made_up = fhir_export(api, partnership, unknown, str(uuid4()), "police")
    assert theirs.status_code == made_up.status_code == 404
    assert theirs.json() == made_up.json()
    # FHIR in: naming the client's NHS number finds no client, as a made-up number does.
    named = api.post("/v1/fhir/Consent", json=fhir_consent(NHS),
                     headers=hdr(partnership, "police"))
    nobody = api.post("/v1/fhir/Consent", json=fhir_consent("4010232137"),
                      headers=hdr(partnership, "police"))
    assert named.status_code == nobody.status_code == 404
    assert named.json() == nobody.json()
    # Subject access: as an unknown client.
    sar = subject_access(api, partnership, str(client_id), "police")
    assert sar.status_code == 404
    assert sar.json() == subject_access(api, partnership, unknown, "police").json()
    assert changes(partnership.accord) == before  # reads and refusals only

    # The Kafka relay sends the police nothing, and nobody anything about the client.
    key = load_key_file(partnership.accord.settings.key_file)
    sent = relay_everything(api, partnership)
    assert [topic for topic, _ in sent if ".police" in topic] == []
    assert {topic for topic, value in sent
            if mentions(json.dumps(value), client_id, key)} == {"accord.feed.childrens"}

    # The NDTMS extract: the commissioner has no agreement with tp, so only the other
    # provider's client is in it; and no other agency can be named for it.
    rows = extract(tmp_path / "none")
    reports = partnership.accord.find(OutcomeReports)
    assert [r["client_id"] for r in rows["client"]] == [reports.pseudonym(story.clients[0])]
    assert reports.pseudonym(client_id) not in json.dumps(rows)
    assert main(["extract", "ndtms", *PERIOD, "--out", str(tmp_path / "police"),
                 "--agency", "police"]) == 2
    assert not (tmp_path / "police").exists()
    capsys.readouterr()


def test_with_a_basis_each_path_gives_exactly_what_the_view_gives(
        api: TestClient, partnership: Partnership, cli_env: None, tmp_path: Path) -> None:
    # The police see housing status for care coordination (no consent needed); the
    # commissioner sees treatment modality (and nothing else) for commissioning.
    agree(api, partnership, housing_terms("police"))
    agree(api, partnership, commissioning_terms({"treatment": ["modality"]}))
    client_id, consent_id, positions = a_client(api, partnership)
    views: AgencyViews = agency_views(api)

    shown = view(api, partnership, str(client_id), "police", "care_coordination",
                 partnership.accord.app.head_position())
    assert shown.status_code == 200, shown.text
    in_view = {f["position"]: f for f in shown.json()["facts"]}
    assert set(in_view) == {positions["housing"]}

    # Kafka: the police's feed carries exactly the view's facts, masked as the view is.
    key = load_key_file(partnership.accord.settings.key_file)
    sent = relay_everything(api, partnership)
    police = [value for topic, value in sent if topic == "accord.feed.police"]
    entered = {m["position"]: m for m in police if m["kind"] == "fact.entered"}
    assert set(entered) == set(in_view)
    for position, message in entered.items():
        assert {s["purpose"] for s in message["shown"]} == {"care_coordination"}
        assert [s["data"] for s in message["shown"]] == [in_view[position]["data"]]
        assert message["client_id"] == str(client_id)
    assert not any("relapse" in json.dumps(m) for m in police)
    assert {t for t, v in sent if mentions(json.dumps(v), client_id, key)} == {
        "accord.feed.police", "accord.feed.commissioner"}  # the commissioner's share: next

    # The commissioner's feed and extract: the modality of the episode, nothing more.
    commissioned = views.items("commissioner", client_id, "commissioning")
    assert [(i.position, i.data) for i in commissioned] == [
        (positions["episode"], {"modality": "psychosocial"})]
    feed = [v for t, v in sent if t == "accord.feed.commissioner" and v["kind"] ==
            "fact.entered"]
    assert [(m["position"], [s["data"] for s in m["shown"]]) for m in feed] == [
        (positions["episode"], [{"modality": "psychosocial"}])]
    rows = extract(tmp_path / "with")
    [client_row] = rows["client"]
    assert {k for k, v in client_row.items() if v} == {"client_id", "consent_for_ndtms"}
    [episode] = rows["episode"]
    assert {k for k, v in episode.items() if v} == {"episode_id", "client_id",
                                                    "start_date", "modality"}
    assert (episode["modality"], episode["start_date"]) == (
        "psychosocial", STARTED.date().isoformat())
    assert rows["intervention"] == rows["top"] == []

    # The consent export and subject access stay the provider's own: the police, with a
    # basis to see the client, still get the answer an unknown client gets.
    theirs = fhir_export(api, partnership, str(client_id), consent_id, "police")
    assert theirs.status_code == 404
    assert theirs.json() == fhir_export(api, partnership, str(uuid4()), str(uuid4()),
                                        "police").json()
    sar = subject_access(api, partnership, str(client_id), "police")
    assert sar.status_code == 404
    # A fact the police record is theirs; the provider's IG lead answers for all of it.
    post_fact(api, partnership, str(client_id), fact(
        "domestic_abuse_incident_recorded", {"role": "victim", "children_present": False}),
        agency="police")
    assert subject_access(api, partnership, str(client_id), "police").status_code == 404
    answered = subject_access(api, partnership, str(client_id), "tp")
    assert answered.status_code == 200
    assert {f["controller"] for f in answered.json()["facts"]} == {"tp", "police"}
