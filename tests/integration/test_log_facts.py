"""The agency views copy facts from the event store's rows in SQL (``projections.log_facts``):
each copied fact must be exactly the event as the eventsourcing library decodes it."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select

from api.bootstrap import Accord
from api.demo import seed
from domain.agencies import Role
from domain.application import OPERATOR, AccordApplication
from domain.clients import Client
from infra.schema import facts
from projections.log_facts import REGISTRATION_FACT, copy_statement
from projections.views import AgencyViews


def aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def decoded_facts(app: AccordApplication) -> dict[int, tuple[Any, ...]]:
    """Every fact of the log as the library decodes it, by position."""
    expected = {}
    for notification in app.recorder.select_notifications(start=1, limit=10**9):
        event = app.mapper.to_domain_event(notification)
        if isinstance(event, Client.FactRecorded):
            expected[notification.id] = (
                event.originator_id.hex, event.fact_type, event.category, event.controller,
                event.occurred_at, event.timestamp, event.recorded_by, event.data)
        elif isinstance(event, Client.Registered):
            expected[notification.id] = (
                event.originator_id.hex, REGISTRATION_FACT, "identity", event.controller,
                event.timestamp, event.timestamp, event.registered_by, {})
    return expected


def test_every_copied_fact_is_the_event_as_the_library_decodes_it(accord: Accord) -> None:
    with contextlib.redirect_stdout(io.StringIO()):  # the demo prints its tokens
        seed(accord, clients=8)
    app = accord.app
    worker = app.authenticate(app.add_principal(
        "riverside-recovery", Role.PRACTITIONER, "Test worker", OPERATOR).token)
    client_id = UUID(hex=next(iter(decoded_facts(app).values()))[0])
    # Times given in another zone, to the microsecond and not, and text beyond ASCII (a
    # key worker's name: free text about the client would be sealed, domain.sealing).
    for occurred_at, text in (
        (datetime(2026, 3, 1, 0, 30, 0, 250_000, tzinfo=timezone(timedelta(hours=2))),
         "Zoë said «naloxone» 💊"),
        (datetime(2026, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=-5))), 'quote " and \\'),
    ):
        app.record_fact(client_id, "treatment_episode_started",
                        {"modality": "psychosocial", "substances": ["alcohol"],
                         "key_worker": text}, occurred_at, worker)
    views = AgencyViews(app, accord.engine)
    views.catch_up()

    with accord.engine.connect() as conn:
        copied = {row.position: (row.client_id, row.fact_type, row.category, row.controller,
                                 aware(row.occurred_at), aware(row.recorded_at),
                                 row.recorded_by, json.loads(row.data))
                  for row in conn.execute(select(facts))}
    assert copied == decoded_facts(app)
    assert any(row[-1].get("key_worker") == "Zoë said «naloxone» 💊" for row in copied.values())


def test_an_event_store_that_hides_its_json_is_refused(accord: Accord) -> None:
    env = {**accord.app.env, "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor"}
    compressing = AccordApplication(vault=accord.app.vault, env=env)
    try:
        with pytest.raises(ValueError, match="must not compress or encrypt"):
            copy_statement(compressing, accord.engine.dialect.name)
    finally:
        compressing.close()
