"""Correcting the record: the client aggregate's own rules about amending and retracting
a fact, and how a correction moves the policy state (``consent.state.evolve``).

Each rule is tested on the aggregate directly, as any caller that bypassed the
application would call it: the command refuses with the domain's error and records
nothing. A stream written before facts could be corrected still replays.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from consent.state import AmendedFact, LogState, RetractedFact, evolve
from domain.catalogue import InvalidPayload
from domain.clients import Client, check_correction_reason
from domain.errors import ClientNotFound, FactAlreadyRetracted, FactNotFound, InvalidCommand
from tests.unit.test_aggregate_rules import client_of, refuses, replayed

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REASON = "typed into the wrong client's record"


def recorded(client: Client, controller: str = "tp", **changes: Any) -> int:
    """Records a housing status by ``controller``; returns its place in the stream."""
    client.record_fact(**{
        "fact_type": "housing_status_recorded", "category": "housing",
        "data": {"status": "settled"}, "occurred_at": NOW, "controller": controller,
        "recorded_by": f"{controller}-worker", **changes})
    return client.version


def amend(client: Client, sequence: int, *, agency: str = "tp", data: Any = None,
          occurred_at: datetime | None = None, reason: str = REASON) -> None:
    client.amend_fact(position=100 + sequence, sequence=sequence,
                      data={"status": "temporary"} if data is None else data,
                      occurred_at=occurred_at, reason=reason, agency=agency,
                      amended_by=f"{agency}-worker")


def retract(client: Client, sequence: int, *, agency: str = "tp",
            reason: str = REASON) -> None:
    client.retract_fact(position=100 + sequence, sequence=sequence, reason=reason,
                        agency=agency, retracted_by=f"{agency}-worker")


def test_the_controller_amends_its_fact_restating_what_readers_need() -> None:
    client = client_of("tp")
    sequence = recorded(client)
    client.collect_events()
    later = NOW - timedelta(days=1)
    amend(client, sequence, occurred_at=later, reason="  the status was typed wrongly  ")
    [amended] = client.collect_events()
    assert isinstance(amended, Client.FactAmended)
    assert (amended.position, amended.sequence, amended.fact_type, amended.category,
            amended.data, amended.occurred_at, amended.reason, amended.controller,
            amended.amended_by) == (
        100 + sequence, sequence, "housing_status_recorded", "housing",
        {"status": "temporary"}, later, "the status was typed wrongly", "tp", "tp-worker")
    # Without a new time, the amendment restates the time the fact has.
    amend(client, sequence, data={"status": "supported"})
    [again] = client.collect_events()
    assert isinstance(again, Client.FactAmended) and again.occurred_at == later


def test_another_agency_may_not_correct_a_fact_nor_learn_what_it_is() -> None:
    client = client_of("tp")
    providers = recorded(client, "tp")
    police = recorded(client, "police")  # the police hold a record of the client too
    for command in (lambda: amend(client, providers, agency="police"),
                    lambda: retract(client, providers, agency="police"),
                    lambda: amend(client, police, agency="tp"),
                    # Not a fact (the registration), and no such place in the stream:
                    # the same answer.
                    lambda: amend(client, 1), lambda: retract(client, 99)):
        error = refuses(client, command, FactNotFound)
        assert str(error) == "fact not found"
    # Invalid data for another agency's fact is still "not found": the payload is judged
    # only once the caller is known to control the fact.
    refuses(client, lambda: amend(client, providers, agency="police", data={"status": "x"}),
            FactNotFound)
    amend(client, police, agency="police", data={"status": "rough_sleeping"})


def test_a_retracted_fact_is_neither_amended_nor_retracted_again() -> None:
    client = client_of()
    sequence = recorded(client)
    amend(client, sequence)
    retract(client, sequence)
    refuses(client, lambda: retract(client, sequence), FactAlreadyRetracted)
    refuses(client, lambda: amend(client, sequence), FactAlreadyRetracted,
            "record a new fact instead")
    # The agency still holds its record of the client (the retraction is on it).
    assert "tp" in client.controllers


@pytest.mark.parametrize("reason", ["", "  too short ", "x" * 1001, " \n\t "])
def test_a_correction_says_why_in_10_to_1000_characters(reason: str) -> None:
    client = client_of()
    sequence = recorded(client)
    for command in (lambda: amend(client, sequence, reason=reason),
                    lambda: retract(client, sequence, reason=reason)):
        error = refuses(client, command, InvalidCommand)
        assert isinstance(error, InvalidCommand) and error.field == "reason"
    assert check_correction_reason(" " + "x" * 1000 + " ") == "x" * 1000
    assert check_correction_reason("ten chars!") == "ten chars!"


def test_the_amended_payload_must_fit_the_facts_type() -> None:
    client = client_of()
    sequence = recorded(client)
    error = refuses(client, lambda: amend(client, sequence, data={"status": "a palace"}),
                    InvalidPayload)
    assert isinstance(error, InvalidPayload)
    assert [e["field"] for e in error.errors] == ["data.status"]
    refuses(client, lambda: amend(client, sequence, data={"status": "settled", "x": 1}),
            InvalidPayload)


def test_nothing_is_corrected_on_an_erased_client() -> None:
    client = client_of()
    sequence = recorded(client)
    client.erase(reason_fingerprint="hmac-sha256:00", erased_by="ig1")
    refuses(client, lambda: amend(client, sequence), ClientNotFound)
    refuses(client, lambda: retract(client, sequence), ClientNotFound)


def uncollected() -> Client:
    """A client whose registration is still to be collected (to replay its stream)."""
    return Client(id=uuid4(), controller="tp", registered_by="p1", sealed_identity="sealed",
                  nhs_fingerprint="n", name_fingerprint="f")


def test_the_stream_replays_with_its_corrections_and_without_them() -> None:
    client = uncollected()
    first = recorded(client)
    second = recorded(client, "police")
    amend(client, first)
    retract(client, second, agency="police")
    again = replayed(list(client.collect_events()))
    assert again.facts == client.facts
    assert again.facts[first].occurred_at == NOW and not again.facts[first].retracted
    assert again.facts[second].retracted
    assert again.facts_recorded == 2
    # A stream written before corrections existed (facts only) replays as it did.
    old = uncollected()
    recorded(old)
    assert replayed(list(old.collect_events())).facts_recorded == 1


def test_evolve_says_which_fact_a_correction_changes() -> None:
    client_id = uuid4()
    # The library's event classes take their fields as keyword arguments.
    amended_event: Any = Client.FactAmended
    retracted_event: Any = Client.FactRetracted
    amended = amended_event(
        originator_id=client_id, originator_version=5, timestamp=NOW, position=12,
        sequence=3, fact_type="housing_status_recorded", category="housing",
        data={"status": "temporary"}, occurred_at=NOW - timedelta(days=2), reason=REASON,
        controller="tp", amended_by="p1")
    effect = evolve(LogState(), amended, 40)
    assert isinstance(effect, AmendedFact)
    assert (effect.fact.client_id, effect.fact.position, effect.fact.controller,
            effect.fact.occurred_at, effect.data) == (
        client_id, 12, "tp", NOW - timedelta(days=2), {"status": "temporary"})
    assert (effect.correction.kind, effect.correction.position, effect.correction.by,
            effect.correction.reason) == ("amended", 40, "p1", REASON)
    retracted = retracted_event(
        originator_id=client_id, originator_version=6, timestamp=NOW, position=12,
        sequence=3, fact_type="housing_status_recorded", category="housing", reason=REASON,
        controller="tp", retracted_by="p2")
    gone = evolve(LogState(), retracted, 41)
    assert isinstance(gone, RetractedFact)
    assert (gone.client_id, gone.position, gone.correction.kind, gone.correction.by) == (
        client_id, 12, "retracted", "p2")
