"""The Kafka relay: the notification log is the outbox, published with kafka-python.

Two streams, each with its own tracked position in ``accord_tracking``:

* ``kafka_relay`` follows the log (a topic-filtered read of the Alert events) and
  publishes each alert lifecycle event to ``accord.alerts.<recipient>``;
* ``kafka_feed`` follows the feed outbox the agency-views projector writes in the same
  transaction as its rows (``accord_feed_outbox``: which facts entered or left a
  partner's view, and which log position caused it) and publishes each change to
  ``accord.feed.<agency>``, with the masked data and basis the agency's view holds for
  an entered fact (or one its controller amended, sent again as it now stands), less
  its free text (``domain.sealing.held_back``), and just the position for a fact that
  left (a retracted fact leaves, as do an erased or restricted client's). It never reads
  unmasked data. Published outbox rows are deleted in the tracking transaction.

Every message is JSON, keyed by the client's pseudonym (HMAC-SHA256 of the client id
under a key derived from the key file), so one client's messages stay in order in one
partition and no identity is in the key, and carries a ``message-id`` header that is the
same every time the same change is published.

Delivery is at-least-once: a batch is sent, flushed, and every send acknowledged by the
broker before its position is recorded. A crash between the two publishes the batch
again; consumers de-duplicate by ``message-id``. When Kafka is unreachable the relay
logs a warning, backs off (0.2 s doubling to 5 s) and retries the same batch with a new
producer: it never crashes and never records a position past an unacknowledged message.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from typing import Any, TextIO
from uuid import UUID

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from sqlalchemy import Engine, delete, select

from consent.policy import mask
from domain.alerts import Alert
from domain.application import AccordApplication
from domain.sealing import held_back
from infra.dialect import as_utc
from infra.runner import BackgroundLoop
from infra.schema import feed_outbox, view_items, view_rows
from infra.tracking import SqlTrackingRecorder

log = logging.getLogger("accord.relay")

ALERT_TOPICS = [get_topic(cls) for cls in (Alert.Raised, Alert.Acknowledged, Alert.Assigned,
                                           Alert.Escalated, Alert.Closed)]
ALERT_KINDS: dict[type[Any], str] = {
    Alert.Raised: "alert.raised", Alert.Acknowledged: "alert.acknowledged",
    Alert.Assigned: "alert.assigned", Alert.Escalated: "alert.escalated",
    Alert.Closed: "alert.closed",
}
#: The views projector's tracking name: the feed outbox is complete up to its position.
VIEWS_TRACKING = "agency_views"
MESSAGE_ID = "message-id"


class KafkaNotConfigured(RuntimeError):
    """``ACCORD_KAFKA_BOOTSTRAP`` is not set."""


def pseudonym_key(master_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"accord/v1/kafka-pseudonym").derive(master_key)


def pseudonym(key: bytes, client_id: UUID) -> str:
    """A stable pseudonym of a client for message keys: no client id or identity in it."""
    return hmac.new(key, client_id.bytes, hashlib.sha256).hexdigest()[:32]


def alerts_topic(prefix: str, agency: str) -> str:
    return f"{prefix}.alerts.{agency}"


def feed_topic(prefix: str, agency: str) -> str:
    return f"{prefix}.feed.{agency}"


@dataclass(frozen=True)
class Message:
    topic: str
    key: str
    value: dict[str, Any]

    @property
    def message_id(self) -> str:
        return str(self.value["message_id"])

    def encode(self) -> bytes:
        return json.dumps(self.value, separators=(",", ":"), default=str).encode()


def producer_config(bootstrap: str) -> dict[str, Any]:
    """kafka-python producer settings: idempotent (the kafka-python 3 default, acks=all),
    and short timeouts so an unreachable broker fails a batch in seconds, not minutes."""
    return {
        "bootstrap_servers": bootstrap.split(","),
        "client_id": "accord-relay",
        "acks": "all",
        "linger_ms": 2,
        "request_timeout_ms": 4000,
        "delivery_timeout_ms": 8000,
        "max_block_ms": 4000,
        "bootstrap_timeout_ms": 4000,
        "reconnect_backoff_ms": 100,
        "reconnect_backoff_max_ms": 1000,
    }


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    failures: int = 0
    last_error: str | None = None
    errors: list[str] = field(default_factory=list)


class Relay(BackgroundLoop):
    alerts_name = "kafka_relay"
    feed_name = "kafka_feed"
    thread_name = "accord-kafka-relay"
    join_timeout = 15.0

    def __init__(self, app: AccordApplication, engine: Engine, bootstrap: str, key: bytes,
                 *, prefix: str = "accord", batch_size: int = 500, poll_interval: float = 0.2,
                 feed: bool = True, backoff: tuple[float, float] = (0.2, 5.0),
                 producer_factory: Callable[[], Any] | None = None,
                 producer_options: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.app = app
        self.engine = engine
        self.bootstrap = bootstrap
        self.key = key
        self.prefix = prefix
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.feed = feed
        self.backoff = backoff
        self.tracking = SqlTrackingRecorder(engine)
        self.stats = RelayStats()
        self._producer_factory = producer_factory or self._default_producer
        self._producer_options = producer_options or {}
        self._producer: Any = None
        self._alerts: dict[UUID, Alert.Raised] = {}

    # -- positions -------------------------------------------------------------------------

    def position(self) -> int:
        return self.tracking.max_tracking_id(self.alerts_name) or 0

    def feed_position(self) -> int:
        return self.tracking.max_tracking_id(self.feed_name) or 0

    # -- running ---------------------------------------------------------------------------

    def stop(self) -> None:
        super().stop()
        self.close()

    def close(self) -> None:
        self._reset_producer()

    def run(self) -> None:
        """Publishes until stopped; a failing batch is retried with bounded backoff."""
        delay = self.backoff[0]
        while not self._stop.is_set():
            self._wake.clear()
            try:
                published = self.step()
            except Exception as exc:  # Kafka or the database: never give up, never skip
                self.stats.failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("kafka relay: batch not delivered (%s); retrying in %.1fs",
                            self.stats.last_error, delay)
                self._reset_producer()
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])
                continue
            delay = self.backoff[0]
            if not published:
                self._wake.wait(self.poll_interval)

    def step(self) -> int:
        """Publishes one batch of each stream; returns how many messages were acknowledged."""
        return self.publish_alerts() + (self.publish_feed() if self.feed else 0)

    def drain(self) -> int:
        """Publishes everything there is now (raising on the first failure)."""
        total = 0
        while True:
            published = self.step()
            total += published
            if published:
                continue
            head = self.app.recorder.max_notification_id() or 0
            if self.position() >= head and (
                    not self.feed or self.feed_position() >= self._views_position()):
                return total

    # -- the alert stream ------------------------------------------------------------------

    def publish_alerts(self) -> int:
        head = self.app.recorder.max_notification_id() or 0
        position = self.position()
        if position >= head:
            return 0
        batch = self.app.recorder.select_notifications(
            start=position, limit=self.batch_size, stop=head, topics=ALERT_TOPICS,
            inclusive_of_start=False,
        )
        upto = batch[-1].id if len(batch) == self.batch_size else head
        messages = [self.alert_message(n) for n in batch]
        self._send(messages)
        with self.engine.begin() as conn:
            self.tracking.record(conn, self.alerts_name, upto)
        return len(messages)

    def alert_message(self, notification: Notification) -> Message:
        event: Any = self.app.mapper.to_domain_event(notification)
        raised = event if isinstance(event, Alert.Raised) else self._raised(event.originator_id)
        self._alerts[raised.originator_id] = raised
        client = pseudonym(self.key, raised.client_id)
        value: dict[str, Any] = {
            "message_id": f"alert:{notification.id}",
            "kind": ALERT_KINDS[type(event)],
            "position": notification.id,
            "timestamp": event.timestamp.astimezone(UTC).isoformat(),
            "alert_id": str(raised.originator_id),
            "agency": raised.recipient,
            "client": client,
            "client_id": str(raised.client_id),
            "household_id": str(raised.household_id) if raised.household_id else None,
            "rule": raised.rule,
            "severity": raised.severity,
        }
        if isinstance(event, Alert.Raised):
            value.update(reason=event.reason, basis=event.basis,
                         trigger_position=event.trigger_position,
                         acknowledge_by=event.acknowledge_by.astimezone(UTC).isoformat())
        elif isinstance(event, Alert.Acknowledged):
            value["by"] = event.by
        elif isinstance(event, Alert.Assigned):
            value.update(assigned_to=event.principal, by=event.by)
        elif isinstance(event, Alert.Escalated):
            value["reason"] = event.reason
        elif isinstance(event, Alert.Closed):
            value.update(outcome=event.outcome, by=event.by)  # the free-text note stays in the API
        return Message(alerts_topic(self.prefix, raised.recipient), client, value)

    def _raised(self, alert_id: UUID) -> Alert.Raised:
        cached = self._alerts.get(alert_id)
        if cached is not None:
            return cached
        if len(self._alerts) > 10_000:
            self._alerts.clear()
        stored = self.app.recorder.select_events(alert_id, lte=1)
        event = self.app.mapper.to_domain_event(stored[0])
        assert isinstance(event, Alert.Raised)
        return event

    # -- the feed stream -------------------------------------------------------------------

    def _views_position(self) -> int:
        return self.tracking.max_tracking_id(VIEWS_TRACKING) or 0

    def publish_feed(self) -> int:
        upto = self._views_position()  # the outbox is complete up to here
        position = self.feed_position()
        if position >= upto:
            return 0
        with self.engine.connect() as conn:
            window = feed_outbox.c.cause > position, feed_outbox.c.cause <= upto
            order = feed_outbox.c.cause, feed_outbox.c.agency, feed_outbox.c.position
            rows = list(conn.execute(select(feed_outbox).where(*window).order_by(*order)
                                     .limit(self.batch_size)))
            if len(rows) == self.batch_size:  # finish the last cause: it is one change
                upto = rows[-1].cause
                rows = [r for r in rows if r.cause < upto] + list(conn.execute(
                    select(feed_outbox).where(feed_outbox.c.cause == upto).order_by(*order)))
            shown = self._view_items(conn, [r for r in rows if r.change in _SHOWN])
        messages = []
        for row in rows:
            message = self.feed_message(row, shown.get((row.agency, row.position)))
            if message is not None:
                messages.append(message)
        self._send(messages)
        with self.engine.begin() as conn:
            self.tracking.record(conn, self.feed_name, upto)
            conn.execute(delete(feed_outbox).where(feed_outbox.c.cause <= upto))
        return len(messages)

    @staticmethod
    def _view_items(conn: Any, entered: Sequence[Any]) -> dict[tuple[str, int], list[Any]]:
        """The agency's view rows of each entered (or amended) fact, as the view holds
        them now."""
        shown: dict[tuple[str, int], list[Any]] = {}
        pairs = sorted(entered, key=lambda r: (r.agency, r.client_id))
        for (agency, client), group in groupby(pairs, key=lambda r: (r.agency, r.client_id)):
            positions = sorted({r.position for r in group})
            for start in range(0, len(positions), 500):
                query = view_items().where(
                    view_rows.c.agency == agency, view_rows.c.client_id == client,
                    view_rows.c.position.in_(positions[start:start + 500]),
                ).order_by(view_rows.c.position, view_rows.c.purpose, view_rows.c.ground)
                for item in conn.execute(query):
                    shown.setdefault((agency, item.position), []).append(item)
        return shown

    def feed_message(self, row: Any, items: list[Any] | None) -> Message | None:
        client_id = UUID(hex=row.client_id)
        client = pseudonym(self.key, client_id)
        value: dict[str, Any] = {
            "message_id": f"feed:{row.cause}:{row.agency}:{row.position}:{row.change}",
            "kind": f"fact.{row.change}",
            "cause": row.cause,
            "agency": row.agency,
            "client": client,
            "client_id": str(client_id),
            "position": row.position,
        }
        if row.change in _SHOWN:
            if not items:
                return None  # it has left the view again since; its "left" follows
            first = items[0]
            value.update(
                fact_type=first.fact_type, category=first.category,
                controller=first.controller, occurred_at=_iso(first.occurred_at),
                recorded_at=_iso(first.recorded_at), amended=first.amended,
                shown=[_shown(first.fact_type, i) for i in items],
            )
        return Message(feed_topic(self.prefix, row.agency), client, value)

    # -- Kafka -----------------------------------------------------------------------------

    def _default_producer(self) -> Any:
        from kafka import KafkaProducer

        return KafkaProducer(**{**producer_config(self.bootstrap), **self._producer_options})

    def _send(self, messages: Sequence[Message]) -> None:
        """Sends, flushes and waits for every acknowledgement; raises if any failed."""
        if not messages:
            return
        if self._producer is None:
            self._producer = self._producer_factory()
        producer = self._producer
        futures = [producer.send(m.topic, key=m.key.encode(), value=m.encode(),
                                 headers=[(MESSAGE_ID, m.message_id.encode()),
                                          ("content-type", b"application/json")])
                   for m in messages]
        producer.flush(timeout=10)
        for future in futures:
            future.get(timeout=10)
        self.stats.published += len(messages)
        self.stats.batches += 1

    def _reset_producer(self) -> None:
        """Drops the producer (a new one starts a fresh idempotent session)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):  # a broken producer is being discarded
                producer.close(timeout=1)


#: The feed changes sent with what the view shows of the fact now: a fact that entered
#: the view, and one its controller amended that stays in it (``fact.amended``).
_SHOWN = ("entered", "amended")


def _shown(fact_type: str, item: Any) -> dict[str, Any]:
    """What one of the agency's view rows shows of a fact, for the feed: the data masked
    as the view masks it, less its free text (``sealed_fields`` names the fields held
    back; the view opens them). A message cannot be recalled from a topic, and free text
    can identify the client, so it stays behind the API and goes with the client's data
    key on erasure."""
    fields = _fields(item.fields)
    data, sealed = held_back(fact_type, mask(json.loads(item.data), fields))
    return {"purpose": item.purpose, "basis": json.loads(item.basis), "reason": item.reason,
            "fields": fields, "data": data, "sealed_fields": sealed,
            "not_before": _iso(item.not_before), "not_after": _iso(item.not_after)}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


# -- consuming ------------------------------------------------------------------------------

def consumer_config(bootstrap: str, group: str | None, from_beginning: bool) -> dict[str, Any]:
    return {
        "bootstrap_servers": bootstrap.split(","),
        "group_id": group,
        "auto_offset_reset": "earliest" if from_beginning else "latest",
        "enable_auto_commit": group is not None,
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 1000,
        "request_timeout_ms": 10000,
        "reconnect_backoff_max_ms": 1000,
    }


def tail(bootstrap: str, topics: Sequence[str], out: TextIO, *, group: str | None = None,
         from_beginning: bool = False, stop: threading.Event | None = None,
         limit: int | None = None, idle_exit: float | None = None) -> int:
    """Prints one JSON line per message, each ``message-id`` once in this run.

    With a group, offsets are committed, so the next run of the group starts after what
    this one printed; without one, it reads from the end (or the beginning). It returns
    when ``stop`` is set, after ``limit`` lines, or after ``idle_exit`` quiet seconds."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(*topics, **consumer_config(bootstrap, group, from_beginning))
    seen: set[str] = set()
    printed = 0
    quiet_since = time.monotonic()
    try:
        while not (stop is not None and stop.is_set()):
            polled = consumer.poll(timeout_ms=500)
            if polled:
                quiet_since = time.monotonic()
            elif idle_exit is not None and time.monotonic() - quiet_since > idle_exit:
                return printed
            for message in _records(polled):
                message_id = dict(message.headers or []).get(MESSAGE_ID, b"").decode()
                if message_id and message_id in seen:
                    continue
                seen.add(message_id)
                out.write(message.value.decode() + "\n")
                out.flush()
                printed += 1
                if limit is not None and printed >= limit:
                    return printed
    finally:
        consumer.close()
    return printed


def _records(polled: dict[Any, list[Any]]) -> Iterator[Any]:
    for records in polled.values():
        yield from records


def _fields(stored: str | None) -> list[str] | None:
    """A ground's fields as stored: None for every field."""
    return None if stored is None else list(json.loads(stored))
