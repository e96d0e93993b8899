"""Erasure, legal holds, restriction and sealed free text, without a database.

The client aggregate keeps its own rules: a legal hold or a child protection status in
force refuses erasure; a hold or a restriction is placed and lifted once each, by the
registering controller only; an erased client is as unknown. The catalogue names every
free-text field of every fact type, and ``domain.sealing`` seals them, opens them, and
withholds them once the client's key is gone (those written before sealing too). The
policy hides a restricted client from every partner as it does an erased one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from consent.policy import PolicyState, Viewer, client_shares, decide
from consent.state import LogState, RestrictionChanged, evolve
from domain.agencies import AgencyKind
from domain.catalogue import CATALOGUE
from domain.clients import Client
from domain.errors import ClientNotFound, ErasureRefused, LegalHoldConflict, RestrictionConflict
from domain.identity import SEALED_TEXT_PREFIX, IdentityErased
from domain.sealing import (
    erased_payload,
    held_back,
    is_sealed,
    opened,
    plain_text_withheld,
    seal_payload,
)
from tests.builders import FACT_EXAMPLES, Untouchable
from tests.unit.test_aggregate_rules import refuses

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
#: Strings of a fact's payload that name nobody: not free text about the client.
NOT_ABOUT_THE_CLIENT = {("treatment_episode_started", "key_worker")}  # a member of staff


def client() -> Client:
    return Client(id=uuid4(), controller="tp", registered_by="p1", sealed_identity="v1:x",
                  nhs_fingerprint="n", name_fingerprint="f")


def record(client: Client, fact_type: str, data: dict[str, Any],
           occurred_at: datetime = NOW) -> int:
    client.record_fact(fact_type=fact_type, category=CATALOGUE[fact_type].category.value,
                       data=data, occurred_at=occurred_at, controller="tp", recorded_by="p1")
    return client.version


class Vault:
    """Data keys as a dictionary (the sealing is infra.keys'; here only whether the key is
    still there matters): a sealed text is the prefix and the text reversed."""

    def __init__(self) -> None:
        self.keys: set[UUID] = set()
        self.opened = 0

    def seal_texts(self, client_id: UUID, texts: list[str]) -> list[str]:
        if client_id not in self.keys:
            raise IdentityErased(str(client_id))
        return [SEALED_TEXT_PREFIX + text[::-1] for text in texts]

    def open_texts(self, client_id: UUID, sealed: list[str]) -> list[str]:
        self.opened += 1
        if client_id not in self.keys:
            raise IdentityErased(str(client_id))
        return [text[len(SEALED_TEXT_PREFIX):][::-1] for text in sealed]


# -- the catalogue's free text ------------------------------------------------------------------


def _free_strings(schema: dict[str, Any]) -> bool:
    """Whether a property's JSON Schema admits free text: a string (or strings) with no
    pattern, format or enumeration to hold it to."""
    options = schema.get("anyOf", [schema])
    for option in options:
        if option.get("type") == "array":
            option = option.get("items", {})
        if option.get("type") == "string" and not {"pattern", "format", "enum"} & set(option):
            return True
    return False


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_free_text_field_of_the_catalogue_is_sealed(name: str) -> None:
    entry = CATALOGUE[name]
    properties = entry.schema.model_json_schema()["properties"]
    free = {field for field, schema in properties.items() if _free_strings(schema)}
    assert free - set(entry.free_text) - {f for t, f in NOT_ABOUT_THE_CLIENT if t == name} \
        == set(), f"{name}: free text that is not sealed"
    assert set(entry.free_text) <= set(properties)


def test_free_text_is_sealed_opened_and_gone_with_the_key() -> None:
    vault: Any = Vault()  # the vault's protocol, but for what sealing uses
    client_id = uuid4()
    vault.keys.add(client_id)
    plan = seal_payload(vault, client_id, "care_plan_agreed", FACT_EXAMPLES["care_plan_agreed"])
    note = seal_payload(vault, client_id, "clinical_note_added", {"text": "Saw Ann Smith."})
    assert all(is_sealed(goal) for goal in plan["goals"])
    assert is_sealed(note["text"]) and "Ann Smith" not in json.dumps([plan, note])
    assert plan["review_on"] == FACT_EXAMPLES["care_plan_agreed"]["review_on"]  # not free text
    payloads = [("care_plan_agreed", plan), ("clinical_note_added", note),
                ("housing_status_recorded", {"status": "settled"}), ("clinical_note_added", None)]
    assert opened(vault, client_id, payloads) == [
        FACT_EXAMPLES["care_plan_agreed"], {"text": "Saw Ann Smith."}, {"status": "settled"}, None]
    assert vault.opened == 1  # the key read once for them all

    vault.keys.discard(client_id)  # erased
    legacy = {"text": "Recorded before sealing: Ann Smith."}
    assert opened(vault, client_id, [("clinical_note_added", note),
                                     ("clinical_note_added", legacy),
                                     ("care_plan_agreed", plan)]) == [
        {"text": None}, {"text": None}, {"goals": None, "review_on": plan["review_on"]}]
    assert erased_payload("clinical_note_added", legacy) == {"text": None}
    # A read model keeps sealed text (nobody can open it) and blanks plain text.
    assert plain_text_withheld("clinical_note_added", legacy) == {"text": None}
    assert plain_text_withheld("clinical_note_added", note) == note
    assert plain_text_withheld("care_plan_agreed", plan) == plan
    with pytest.raises(IdentityErased):
        seal_payload(vault, client_id, "clinical_note_added", {"text": "Too late."})


def test_a_payload_without_free_text_never_asks_for_the_key() -> None:
    untouchable: Any = Untouchable()
    data = FACT_EXAMPLES["housing_status_recorded"]
    assert seal_payload(untouchable, uuid4(), "housing_status_recorded", data) == data
    assert opened(untouchable, uuid4(), [("housing_status_recorded", data)]) == [data]


def test_the_feed_holds_free_text_back_and_names_it() -> None:
    data = {"concern": "neglect", "summary": "sealed:v1:abc", "children_affected": 2}
    assert held_back("child_safeguarding_concern_raised", data) == (
        {"concern": "neglect", "children_affected": 2}, ["summary"])
    masked = {"concern": "neglect"}  # the share leaves the summary out anyway
    assert held_back("child_safeguarding_concern_raised", masked) == (masked, [])


# -- the client aggregate ---------------------------------------------------------------------


def test_a_legal_hold_refuses_erasure_until_it_is_lifted() -> None:
    c = client()
    c.place_legal_hold(reason="sealed:v1:r", agency="tp", placed_by="ig1")
    refuses(c, lambda: c.place_legal_hold(reason="sealed:v1:r", agency="tp", placed_by="ig1"),
            LegalHoldConflict, "already")
    with pytest.raises(ErasureRefused, match="legal hold"):
        c.check_erasable()
    c.lift_legal_hold(reason="sealed:v1:r", agency="tp", lifted_by="ig1")
    refuses(c, lambda: c.lift_legal_hold(reason="sealed:v1:r", agency="tp", lifted_by="ig1"),
            LegalHoldConflict, "no legal hold")
    c.check_erasable()
    c.erase(reason_fingerprint="hmac-sha256:00", erased_by="ig1")
    refuses(c, lambda: c.place_legal_hold(reason="sealed:v1:r", agency="tp", placed_by="ig1"),
            ClientNotFound)
    refuses(c, lambda: c.restrict_processing(reason="sealed:v1:r", agency="tp",
                                             restricted_by="ig1"), ClientNotFound)


def test_only_the_registering_controller_holds_or_restricts() -> None:
    c = client()
    record(c, "housing_status_recorded", {"status": "settled"})
    c.controllers.add("police")  # a partner holding a record of its own
    for agency in ("police", "tp2"):
        def hold(agency: str = agency) -> None:
            c.place_legal_hold(reason="r", agency=agency, placed_by="x")

        def restrict(agency: str = agency) -> None:
            c.restrict_processing(reason="r", agency=agency, restricted_by="x")

        refuses(c, hold, ClientNotFound)
        refuses(c, restrict, ClientNotFound)


def test_a_child_protection_status_in_force_keeps_the_record() -> None:
    c = client()
    c.check_erasable()
    plan = record(c, "child_protection_status_recorded",
                  {"status": "child_protection_plan", "children": 1})
    with pytest.raises(ErasureRefused, match="child protection plan"):
        c.check_erasable()
    record(c, "child_protection_status_recorded", {"status": "closed", "children": 1},
           NOW.replace(month=4))
    c.check_erasable()
    # Recorded later, but about an earlier time: the status closed later still stands.
    record(c, "child_protection_status_recorded", {"status": "child_in_need", "children": 1},
           NOW.replace(month=1))
    c.check_erasable()
    c._retract_fact(position=9, sequence=plan, fact_type="child_protection_status_recorded",
                    category="safeguarding_children", reason="wrong family", controller="tp",
                    retracted_by="p1")
    c.check_erasable()


def test_a_restriction_is_placed_and_lifted_once_each() -> None:
    c = client()
    c.restrict_processing(reason="sealed:v1:r", agency="tp", restricted_by="ig1")
    assert c.restricted
    refuses(c, lambda: c.restrict_processing(reason="r", agency="tp", restricted_by="ig1"),
            RestrictionConflict, "already")
    c.lift_restriction(reason="sealed:v1:r", agency="tp", lifted_by="ig1")
    refuses(c, lambda: c.lift_restriction(reason="r", agency="tp", lifted_by="ig1"),
            RestrictionConflict, "not restricted")


def test_an_erasure_recorded_before_version_2_is_read_without_its_reason() -> None:
    state: dict[str, Any] = {"reason": "Ann Smith asked", "erased_by": "ig1"}
    Client.Erased.upcast_v1_v2(state)
    assert state == {"reason_fingerprint": "", "erased_by": "ig1"}


# -- the policy ------------------------------------------------------------------------------


def test_partners_see_nothing_of_a_restricted_client_until_it_is_lifted() -> None:
    from consent.policy import Fact
    from domain.categories import DataCategory

    c = client()
    c.restrict_processing(reason="sealed:v1:r", agency="tp", restricted_by="ig1")
    restricted = c.collect_events()[-1]
    state = LogState(agency_kinds={"tp": AgencyKind.TREATMENT_PROVIDER,
                                   "police": AgencyKind.POLICE})
    assert evolve(state, restricted, 5) == RestrictionChanged(c.id, restricted=True)
    fact = Fact(c.id, 3, DataCategory.HOUSING, "tp", NOW)
    refused = decide(Viewer("police", AgencyKind.POLICE), "care_coordination", fact, state)
    assert not refused.permit and "restricted" in refused.reasons[-1]
    assert decide(Viewer("tp", AgencyKind.TREATMENT_PROVIDER), "direct_care", fact,
                  state).permit  # its controller keeps its record
    assert client_shares(state, c.id) == []
    c.lift_restriction(reason="sealed:v1:r", agency="tp", lifted_by="ig1")
    lifted = c.collect_events()[-1]
    assert evolve(state, lifted, 6) == RestrictionChanged(c.id, restricted=False)
    assert not PolicyState.hidden_from_partners(state, c.id)
