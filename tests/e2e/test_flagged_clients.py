"""The owning agency hears about interest in its client (issue 16, item 4), on SQLite and
PostgreSQL: a partner's match or name search that found a client it may not be told of is
an attempt in the client's controllers' access audit (the partner learns nothing, its own
IG lead is not handed the client's id); an agency flags a client it holds a record of,
and its safeguarding team is told, once a day per agency, when another agency reads,
looks up or records something about the client, in the alert inbox and on the alert
stream to Kafka; its own reads, and unflagged clients, raise nothing."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.bootstrap import Accord
from domain.agencies import Role
from domain.sealing import open_reason
from infra.relay import Relay
from infra.schema import client_flags, interest_notices
from projections.flags import FlaggedInterest
from tests.builders import (
    ACCESS_TOPIC,
    RAISED,
    SAFEGUARDING,
    VALID_IDENTITY,
    Partnership,
    agree,
    changes,
    childrens_terms,
    consent,
    events,
    fact,
    hdr,
    inbox,
    police_terms,
    post_fact,
    register,
    settle,
)

RULE = "interest_in_flagged_client"
FLAGGED = "domain.clients:Client.Flagged"
UNKNOWN_NHS = "4010232137"  # valid, and nobody's here
REASON = "Child protection plan in the household since March."


def answer(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    """Everything a caller receives."""
    return response.status_code, response.content, dict(response.headers)


def audit(api: TestClient, partnership: Partnership, holder: str,
          **params: Any) -> list[dict[str, Any]]:
    """What the IG lead of ``holder`` finds in the access audit."""
    response = api.get("/v1/audit/accesses", params=params,
                       headers=hdr(partnership, holder, Role.IG_LEAD))
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def match(api: TestClient, partnership: Partnership, agency: str, **body: Any) -> httpx.Response:
    response: httpx.Response = api.post("/v1/clients/match", json=body,
                                        headers=hdr(partnership, agency))
    return response


def search(api: TestClient, partnership: Partnership, agency: str,
           **body: Any) -> httpx.Response:
    response: httpx.Response = api.post("/v1/clients/search", json=body,
                                        headers=hdr(partnership, agency))
    return response


def flag(api: TestClient, partnership: Partnership, client_id: str, agency: str = "tp",
         role: Role = SAFEGUARDING, reason: str = REASON) -> httpx.Response:
    response: httpx.Response = api.post(f"/v1/clients/{client_id}/flags",
                                        json={"reason": reason},
                                        headers=hdr(partnership, agency, role))
    return response


def flagged(api: TestClient, partnership: Partnership, client_id: str,
            agency: str = "tp") -> str:
    response = flag(api, partnership, client_id, agency)
    assert response.status_code == 201, response.text
    return str(response.json()["flag_id"])


def notifications(api: TestClient, partnership: Partnership, agency: str = "tp",
                  **params: str) -> list[dict[str, Any]]:
    return inbox(api, partnership, agency, rule=RULE, **params)


def police_read(api: TestClient, partnership: Partnership, client_id: str,
                what: str = "view") -> httpx.Response:
    response: httpx.Response = api.get(f"/v1/clients/{client_id}/{what}",
                                       params={"purpose": "offender_management"},
                                       headers=hdr(partnership, "police"))
    return response


def shared_with_the_police(api: TestClient, partnership: Partnership) -> str:
    """A client of the treatment provider whom the police may see and identify."""
    client_id = register(api, partnership)
    post_fact(api, partnership, client_id, fact())
    agree(api, partnership, police_terms())
    consent(api, partnership, client_id)
    settle(api)
    return client_id


# -- a match that found a client the caller may not be told of ---------------------------


def test_a_partners_match_on_a_known_client_is_an_attempt_only_the_controller_sees(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id = register(api, partnership)
    agree(api, partnership, police_terms())  # a basis to come, but no consent yet
    settle(api)
    body = {"purpose": "offender_management"}
    hidden = match(api, partnership, "police", nhs_number=VALID_IDENTITY["nhs_number"], **body)
    nobody = match(api, partnership, "police", nhs_number=UNKNOWN_NHS, **body)
    assert hidden.status_code == 404
    assert answer(hidden) == answer(nobody)  # the partner learns nothing
    by_name = {"family_name": VALID_IDENTITY["family_name"],
               "date_of_birth": VALID_IDENTITY["date_of_birth"]}
    found_by_name = search(api, partnership, "police", **by_name, **body)
    no_one = search(api, partnership, "police", family_name="Nobody",
                    date_of_birth=VALID_IDENTITY["date_of_birth"], **body)
    assert answer(found_by_name) == answer(no_one)
    # The record names the client apart, for its controllers.
    records = [r for r in events(accord, ACCESS_TOPIC) if r.agency == "police"]
    assert [(r.action, r.outcome, r.client_id, r.client_ids, r.withheld_client_ids)
            for r in records] == [
        ("match", "no_match", None, [], [UUID(client_id)]),
        ("match", "no_match", None, [], []),
        ("match", "no_match", None, [], [UUID(client_id)]),
        ("match", "no_match", None, [], []),
    ]
    # The controller's IG lead sees each attempt on its client: who, when, for what.
    attempts = [a for a in audit(api, partnership, "tp") if a["agency"] == "police"]
    assert [(a["action"], a["outcome"], a["client_id"], a["client_ids"], a["purpose"],
             a["principal_name"]) for a in attempts] == [
        ("match", "no_match", client_id, [client_id], "offender_management",
         "police practitioner")] * 2
    assert all(a["detail"] is None and a["returned"] == [] for a in attempts)
    assert audit(api, partnership, "tp", client_id=client_id, agency="police") == attempts
    # The police's own IG lead sees its staff's four lookups, none naming the client,
    # and cannot find them by the client's id.
    own = [a for a in audit(api, partnership, "police") if a["action"] == "match"]
    assert len(own) == 4
    assert all(a["client_id"] is None and a["client_ids"] == [] for a in own)
    assert client_id not in str(audit(api, partnership, "police"))
    assert audit(api, partnership, "police", client_id=client_id) == []
    # An agency holding no record of the client sees none of it.
    assert [a for a in audit(api, partnership, "tp2") if a["agency"] == "police"] == []


def test_a_match_told_of_one_client_routes_another_it_found_to_that_clients_controller(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    """The same person registered by two providers: the police may identify one provider's
    client and not the other's. The other provider sees the lookup as a no-match attempt
    on its client; the first sees what it disclosed, and nothing of the other client."""
    seen = shared_with_the_police(api, partnership)
    other = register(api, partnership, "tp2")
    settle(api)
    found = match(api, partnership, "police", purpose="offender_management",
                  nhs_number=VALID_IDENTITY["nhs_number"])
    assert found.json() == {"client_id": seen}
    [attempt] = [a for a in audit(api, partnership, "tp2") if a["agency"] == "police"]
    assert (attempt["outcome"], attempt["client_id"], attempt["client_ids"]) == (
        "no_match", other, [other])
    [disclosed] = [a for a in audit(api, partnership, "tp") if a["agency"] == "police"
                   and a["action"] == "match"]
    assert (disclosed["outcome"], disclosed["client_ids"]) == ("returned", [seen])
    [own] = [a for a in audit(api, partnership, "police") if a["action"] == "match"]
    assert own["client_ids"] == [seen] and other not in str(own)


# -- flags ------------------------------------------------------------------------------


def test_a_flagged_clients_read_by_another_agency_raises_one_notification(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id = shared_with_the_police(api, partnership)
    flag_id = flagged(api, partnership, client_id)
    # The police read the view, the chronology, look the client up: one notification.
    for what in ("view", "chronology", "view"):
        assert police_read(api, partnership, client_id, what).status_code == 200
    assert match(api, partnership, "police", purpose="offender_management",
                 nhs_number=VALID_IDENTITY["nhs_number"]).status_code == 200
    [told] = notifications(api, partnership)
    assert (told["recipient"], told["client_id"], told["severity"], told["status"]) == (
        "tp", client_id, "medium", "raised")
    assert told["reason"] == ("police read the record of this flagged client for "
                              "offender_management")
    assert told["basis"] == {"kind": "flag", "flags": [flag_id], "agency": "police",
                             "action": "view", "purpose": "offender_management"}
    assert REASON not in str(told)  # the flag's reason stays the flagging agency's record
    # Raised by the first of those reads: the police's first view after the flag.
    assert told["trigger_position"] == min(
        position for position, record in access_records(accord)
        if record.agency == "police" and record.action == "view")
    # Nobody else is told, and the police learn nothing: its answers name no flag.
    assert notifications(api, partnership, "police") == []
    assert notifications(api, partnership, "childrens") == []
    # On the alert stream, so to Kafka's accord.alerts.tp.
    [raised] = [e for e in events(accord, RAISED) if e.rule == RULE]
    sent = _relayed(accord)
    assert [(m["topic"], m["value"]["kind"], m["value"]["rule"], m["value"]["alert_id"])
            for m in sent] == [("accord.alerts.tp", "alert.raised", RULE,
                                str(raised.originator_id))]
    assert REASON not in str(sent)
    # Another agency's interest the same day is its own notification: children's
    # services record a fact under their legal duty.
    agree(api, partnership, childrens_terms())
    settle(api)
    post_fact(api, partnership, client_id, fact(
        "child_protection_status_recorded", {"status": "child_protection_plan",
                                             "children": 2}),
        agency="childrens")
    reasons = sorted(n["reason"] for n in notifications(api, partnership))
    assert reasons == ["childrens recorded a fact about this flagged client",
                       "police read the record of this flagged client for "
                       "offender_management"]
    # Exactly once across a rebuild of the projection, and a restart.
    interest = api.app.state.projections.find(FlaggedInterest)  # type: ignore[attr-defined]
    with accord.engine.connect() as conn:
        before = sorted(tuple(r) for r in conn.execute(select(interest_notices)))
    interest.rebuild()
    restarted = FlaggedInterest(accord.app, accord.engine)
    assert restarted.catch_up() == 0
    with accord.engine.connect() as conn:
        assert sorted(tuple(r) for r in conn.execute(select(interest_notices))) == before
    assert len([e for e in events(accord, RAISED) if e.rule == RULE]) == 2


def access_records(accord: Accord) -> list[tuple[int, Any]]:
    """Every access record on the log, with its position."""
    return [(n.id, accord.app.mapper.to_domain_event(n))
            for n in accord.app.recorder.select_notifications(
                start=0, limit=100_000, topics=[ACCESS_TOPIC])]


def _relayed(accord: Accord) -> list[dict[str, Any]]:
    """What the Kafka relay publishes of the alert stream, to a producer that keeps it."""
    import json

    sent: list[dict[str, Any]] = []

    class Acknowledged:
        def get(self, timeout: float) -> None:
            return None

    class Keeping:
        def send(self, topic: str, *, key: bytes, value: bytes,
                 headers: list[tuple[str, bytes]]) -> Acknowledged:
            sent.append({"topic": topic, "value": json.loads(value)})
            return Acknowledged()

        def flush(self, timeout: float) -> None:
            return None

        def close(self, timeout: float) -> None:
            return None

    relay = Relay(accord.app, accord.engine, "localhost:1", b"k" * 32, feed=False,
                  producer_factory=Keeping)
    relay.publish_alerts()
    return [m for m in sent if m["value"]["rule"] == RULE]


def test_own_reads_unflagged_clients_and_removed_flags_raise_nothing(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id = shared_with_the_police(api, partnership)
    unflagged = register(api, partnership,
                         identity={**VALID_IDENTITY, "nhs_number": UNKNOWN_NHS})
    post_fact(api, partnership, unflagged, fact())
    consent(api, partnership, unflagged)
    settle(api)
    flag_id = flagged(api, partnership, client_id)
    # The flagging agency's own reads and writes.
    assert api.get(f"/v1/clients/{client_id}/view", params={"purpose": "direct_care"},
                   headers=hdr(partnership, "tp")).status_code == 200
    assert api.get(f"/v1/clients/{client_id}/record",
                   headers=hdr(partnership, "tp")).status_code == 200
    assert match(api, partnership, "tp", purpose="direct_care",
                 nhs_number=VALID_IDENTITY["nhs_number"]).status_code == 200
    post_fact(api, partnership, client_id, fact())
    # Another agency's reads of a client nobody flagged.
    assert police_read(api, partnership, unflagged).status_code == 200
    assert notifications(api, partnership) == []
    # Once the flag is off, the police's reads are not told either.
    removed = api.post(f"/v1/clients/{client_id}/flags/{flag_id}/remove",
                       json={"reason": "Plan ended at review conference."},
                       headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert removed.status_code == 200, removed.text
    assert police_read(api, partnership, client_id).status_code == 200
    assert notifications(api, partnership) == []
    assert [e for e in events(accord, RAISED) if e.rule == RULE] == []


def test_interest_that_found_nothing_is_told_too_and_the_partner_learns_nothing(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    """A 404 for want of a basis, and a match answered "no match", are interest in the
    flagged client: the flagging agency is told, the partner's answer is unchanged."""
    client_id = register(api, partnership)
    agree(api, partnership, police_terms())
    settle(api)
    unknown = str(uuid4())
    before = answer(police_read(api, partnership, client_id))
    flagged(api, partnership, client_id)
    after = answer(police_read(api, partnership, client_id))
    assert before[:2] == after[:2] == answer(police_read(api, partnership, unknown))[:2]
    assert match(api, partnership, "childrens", purpose="safeguarding_children",
                 nhs_number=VALID_IDENTITY["nhs_number"]).status_code == 404
    told = notifications(api, partnership)
    assert sorted(n["reason"] for n in told) == [
        "childrens looked up this flagged client for safeguarding_children",
        "police read the record of this flagged client for offender_management"]


def test_flags_are_set_read_and_removed_by_their_own_agency_only(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id = shared_with_the_police(api, partnership)
    unknown = str(uuid4())
    # Who may flag: the table's roles, of an agency holding a record of the client.
    assert flag(api, partnership, client_id, role=Role.PRACTITIONER).status_code == 403
    before = changes(accord)
    hidden, nobody = (flag(api, partnership, c, agency="police") for c in (client_id, unknown))
    assert hidden.status_code == 404 and answer(hidden)[:2] == answer(nobody)[:2]
    short = flag(api, partnership, client_id, reason="cp")
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "reason"
    assert changes(accord) == before
    # The refused attempt is on the controller's audit.
    [attempt] = [a for a in audit(api, partnership, "tp", client_id=client_id)
                 if a["action"] == "flag_client"]
    assert (attempt["agency"], attempt["outcome"]) == ("police", "not_found")
    mine = flagged(api, partnership, client_id)
    # The police, once they hold their own record of the client, flag it for themselves.
    post_fact(api, partnership, client_id, fact(
        "criminal_justice_status", {"order": "drug_rehabilitation_requirement",
                                    "status": "compliant"}), agency="police")
    theirs = flagged(api, partnership, client_id, agency="police")

    def listed(agency: str) -> list[dict[str, Any]]:
        response = api.get(f"/v1/clients/{client_id}/flags", headers=hdr(partnership, agency))
        assert response.status_code == 200, response.text
        result: list[dict[str, Any]] = response.json()
        return result

    [own] = listed("tp")
    assert (own["flag_id"], own["reason"], own["active"]) == (mine, REASON, True)
    # The reason may name the client's children: it is sealed with the client's data key
    # on the log (so it goes with them on erasure), and opened for the flagging agency.
    [recorded] = [e for e in events(accord, FLAGGED) if str(e.flag_id) == mine]
    assert REASON not in recorded.reason and recorded.reason.startswith("sealed:")
    assert [f["flag_id"] for f in listed("police")] == [theirs]
    assert api.get(f"/v1/clients/{client_id}/flags",
                   headers=hdr(partnership, "tp2")).status_code == 404
    # Only the agency that set a flag removes it, once, with a reason.
    body = {"reason": "Plan ended at review conference."}
    other = api.post(f"/v1/clients/{client_id}/flags/{mine}/remove", json=body,
                     headers=hdr(partnership, "police", SAFEGUARDING))
    assert other.status_code == 404 and other.json()["detail"] == "flag not found"
    done = api.post(f"/v1/clients/{client_id}/flags/{mine}/remove", json=body,
                    headers=hdr(partnership, "tp", SAFEGUARDING))
    assert done.status_code == 200, done.text
    again = api.post(f"/v1/clients/{client_id}/flags/{mine}/remove", json=body,
                     headers=hdr(partnership, "tp", SAFEGUARDING))
    assert again.status_code == 409
    [own] = listed("tp")
    assert (own["active"], own["removal_reason"]) == (False, body["reason"])
    # The subject access answer opens them too.
    answer_ = api.get(f"/v1/clients/{client_id}/subject-access",
                      headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert answer_.status_code == 200, answer_.text
    assert {(f["flag_id"], f["reason"], f["removal_reason"]) for f in answer_.json()["flags"]} \
        == {(mine, REASON, body["reason"]), (theirs, REASON, None)}
    # The police's flag tells the police of the provider's interest, and not of its own.
    post_fact(api, partnership, client_id, fact())
    [told] = notifications(api, partnership, "police")
    assert told["reason"] == "tp recorded a fact about this flagged client"
    assert [n["reason"] for n in notifications(api, partnership, "tp")] == [
        "police recorded a fact about this flagged client"]
    settle(api)
    with accord.engine.connect() as conn:
        rows = {(r.flag_id, r.agency, r.removed_position is None)
                for r in conn.execute(select(client_flags))}
    assert rows == {(UUID(mine).hex, "tp", False), (UUID(theirs).hex, "police", True)}


def test_an_open_notification_keeps_the_record_and_erasure_takes_the_flags_with_it(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    """A notification of interest is a safeguarding alert about the client: while it is
    open the record is kept (erasure is refused, saying why). Once it is closed and the
    client erased, the flag's reason can no longer be opened, the flags' rows are gone,
    and nothing more is told."""
    client_id = shared_with_the_police(api, partnership)
    flagged(api, partnership, client_id)
    assert police_read(api, partnership, client_id).status_code == 200
    [told] = notifications(api, partnership)

    def erase() -> httpx.Response:
        response: httpx.Response = api.post(
            f"/v1/clients/{client_id}/erase",
            json={"reason": "The client asked to be forgotten."},
            headers=hdr(partnership, "tp", Role.IG_LEAD))
        return response

    kept = erase()
    assert kept.status_code == 409 and "safeguarding" in kept.json()["detail"]
    closed = api.post(f"/v1/alerts/{told['alert_id']}/close",
                      json={"outcome": "already_known", "note": "Known to the team."},
                      headers=hdr(partnership, "tp", SAFEGUARDING))
    assert closed.status_code == 200, closed.text
    settle(api)
    assert erase().status_code == 200
    [recorded] = events(accord, FLAGGED)
    assert open_reason(accord.app.vault, UUID(client_id), recorded.reason) is None
    assert api.get(f"/v1/clients/{client_id}/flags",
                   headers=hdr(partnership, "tp")).status_code == 404
    assert police_read(api, partnership, client_id).status_code == 404
    settle(api)
    with accord.engine.connect() as conn:
        assert conn.execute(select(client_flags)).all() == []
        assert conn.execute(select(interest_notices)).all() == []
    assert len(notifications(api, partnership, status="closed")) == 1
    assert notifications(api, partnership, status="raised") == []
