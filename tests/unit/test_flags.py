"""Flagged clients without a database: what counts as interest in a client, whom it is
told to (once a day per flagging agency, client and interested agency; never the
interested agency itself), what a notification says, and the ``Client`` aggregate's
rules about setting and removing flags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from domain.access import AccessAction, AccessRecord
from domain.clients import Client, check_flag_reason
from domain.errors import ClientNotFound, FlagAlreadyRemoved, FlagNotFound, InvalidCommand
from projections.flags import FACT_RECORDED, Interest, interests, notices

DAY = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def record(action: AccessAction, *, client_id: UUID | None = None,
           client_ids: tuple[UUID, ...] = (), withheld: tuple[UUID, ...] = (),
           outcome: str = "returned", purpose: str | None = "direct_care") -> AccessRecord.Recorded:
    """The event of one access record, as the log holds it."""
    concerned = list(dict.fromkeys([*([client_id] if client_id else []), *client_ids]))
    made = AccessRecord(principal="p", principal_name="P", agency="police", role="practitioner",
                        action=action.value, purpose=purpose, client_id=client_id,
                        client_ids=concerned, subject_agency=None, outcome=outcome,
                        detail=None, returned=[], withheld_client_ids=list(withheld))
    [event] = made.collect_events()
    assert isinstance(event, AccessRecord.Recorded)
    return event


def interest(agency: str = "police", at: datetime = DAY, client: UUID | None = None,
             position: int = 7) -> Interest:
    return Interest(client or CLIENT, agency, AccessAction.VIEW.value, "direct_care", at,
                    position)


CLIENT = uuid4()


def test_interest_is_a_view_a_lookup_or_a_fact_and_nothing_else() -> None:
    hidden, told = uuid4(), uuid4()
    assert [(i.client_id, i.action) for i in interests(
        record(AccessAction.VIEW, client_id=CLIENT, outcome="not_found"), 3)] == [
        (CLIENT, "view")]
    # A match names every client it found, told of or withheld.
    assert [i.client_id for i in interests(
        record(AccessAction.MATCH, client_id=told, withheld=(hidden,)), 3)] == [told, hidden]
    assert [i.client_id for i in interests(
        record(AccessAction.MATCH, withheld=(hidden,), outcome="no_match"), 3)] == [hidden]
    assert [i.action for i in interests(
        record(AccessAction.RECORD_FACT, client_id=CLIENT, outcome="not_found"), 3)] == [
        "record_fact"]
    # Its own record, a listing, an alert read, a replay, consents: no interest.
    for action in (AccessAction.RECORD, AccessAction.LIST_CLIENTS, AccessAction.ALERTS,
                   AccessAction.REPLAY, AccessAction.CONSENTS, AccessAction.FLAGS):
        assert interests(record(action, client_id=CLIENT), 3) == []
    client = Client(id=CLIENT, controller="tp", registered_by="p", sealed_identity="x",
                    nhs_fingerprint="n", name_fingerprint="f")
    client.record_fact(fact_type="appointment_attended", category="treatment",
                       data={"appointment": "keywork"}, occurred_at=DAY,
                       controller="childrens", recorded_by="q")
    recorded = [e for e in client.collect_events() if isinstance(e, Client.FactRecorded)]
    [found] = interests(recorded[0], 9)
    assert (found.agency, found.action, found.purpose, found.position) == (
        "childrens", FACT_RECORDED, None, 9)


def test_each_flagging_agency_is_told_once_a_day_of_each_other_agencys_interest() -> None:
    flags = {"tp": [uuid4()], "childrens": [uuid4(), uuid4()], "housing": []}
    told: set[tuple[str, UUID, str, str]] = set()

    def tell(first: Interest) -> list[str]:
        found = notices(first, flags, lambda r, i: (r, i.client_id, i.agency, i.day) in told)
        told.update((n.recipient, first.client_id, first.agency, first.day) for n in found)
        return [n.recipient for n in found]

    # Every agency with a flag in force, but not the one showing interest.
    assert tell(interest("police")) == ["childrens", "tp"]
    assert tell(interest("police", DAY + timedelta(hours=14))) == []  # 23:30, same day
    assert tell(interest("police", DAY + timedelta(hours=15))) == ["childrens", "tp"]  # 00:30
    assert tell(interest("tp")) == ["childrens"]  # tp's own interest is not told to tp
    assert tell(interest("police", client=uuid4())) == ["childrens", "tp"]  # another client
    assert interest(at=DAY.astimezone(UTC).replace(hour=23, minute=59)).day == "2026-03-02"


def test_a_notice_names_the_agency_what_it_did_and_the_flags_and_nothing_it_saw() -> None:
    flag_id = uuid4()
    [notice] = notices(interest(), {"tp": [flag_id]}, lambda r, i: False)
    assert notice.reason == "police read the record of this flagged client for direct_care"
    assert notice.basis == {"kind": "flag", "flags": [str(flag_id)], "agency": "police",
                            "action": "view", "purpose": "direct_care"}
    looked_up = Interest(CLIENT, "tp2", AccessAction.MATCH.value, None, DAY, 8)
    [notice] = notices(looked_up, {"tp": [flag_id]}, lambda r, i: False)
    assert notice.reason == "tp2 looked up this flagged client"


def registered() -> Client:
    client = Client(id=uuid4(), controller="tp", registered_by="p", sealed_identity="x",
                    nhs_fingerprint="n", name_fingerprint="f")
    client.record_fact(fact_type="appointment_attended", category="treatment",
                       data={"appointment": "keywork"}, occurred_at=DAY,
                       controller="police", recorded_by="q")
    return client


def test_only_an_agency_holding_a_record_of_the_client_flags_it() -> None:
    client = registered()
    flag_id = uuid4()
    with pytest.raises(ClientNotFound):
        client.flag(flag_id, agency="childrens", reason="Known to us as a parent.",
                    flagged_by="c")
    # The application checks the reason, then seals it; the aggregate records it sealed.
    with pytest.raises(InvalidCommand) as short:
        check_flag_reason("   cp  ")
    assert short.value.field == "reason"
    assert check_flag_reason("  Child protection plan.  ") == "Child protection plan."
    with pytest.raises(InvalidCommand):
        client.flag(flag_id, agency="tp", reason="", flagged_by="p")
    client.flag(flag_id, agency="tp", reason="sealed:v1:cmVhc29u", flagged_by="p")
    [flagged] = [e for e in client.collect_events() if isinstance(e, Client.Flagged)]
    assert (flagged.agency, flagged.reason) == ("tp", "sealed:v1:cmVhc29u")
    # A partner that recorded a fact about the client holds a record, and may flag too.
    client.flag(uuid4(), agency="police", reason="Under a drug rehabilitation order.",
                flagged_by="q")


def test_only_the_flagging_agency_removes_its_flag_once() -> None:
    client = registered()
    flag_id = uuid4()
    client.flag(flag_id, agency="tp", reason="Child protection plan.", flagged_by="p")
    with pytest.raises(FlagNotFound):
        client.remove_flag(flag_id, agency="police", reason="Not ours to keep.",
                           removed_by="q")
    with pytest.raises(ClientNotFound):  # holds no record: the client is as unknown
        client.remove_flag(flag_id, agency="childrens", reason="Not ours to keep.",
                           removed_by="c")
    with pytest.raises(FlagNotFound):
        client.remove_flag(uuid4(), agency="tp", reason="Plan ended at review.",
                           removed_by="p")
    client.remove_flag(flag_id, agency="tp", reason="Plan ended at review.", removed_by="p")
    with pytest.raises(FlagAlreadyRemoved):
        client.remove_flag(flag_id, agency="tp", reason="Plan ended at review.",
                           removed_by="p")
