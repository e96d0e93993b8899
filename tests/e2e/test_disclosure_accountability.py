"""Who learns what about a person, and whether the controller can find out: matching
needs the identity share (the commissioner cannot re-identify anyone), IG leads find
their own clients for a subject access request, alert reads are disclosures of the
client they are about, attempts that found nothing (reads and writes) reach the client's
controllers, and the alert stream tells each alert's current state and every change.
On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.bootstrap import Accord
from domain.agencies import Role
from infra.schema import access_clients, access_controllers, access_log
from projections.audit import AccessIndex
from tests.builders import (
    ACCESS_TOPIC,
    SAFEGUARDING,
    VALID_IDENTITY,
    Partnership,
    agree,
    changes,
    childrens_terms,
    commissioning_terms,
    concern,
    concern_raised,
    consent,
    events,
    fact,
    hdr,
    inbox,
    nhs_number,
    police_terms,
    post_fact,
    register,
    registered,
    settle,
)

UNKNOWN_NHS = "4010232137"  # valid, and nobody's here
OTHER_NHS = nhs_number(1)  # another person's


#: As the demo's commissioning agreement: outcomes and modality, no identifiers.
NO_IDENTIFIERS = {"outcomes": ["stage", "substance_use", "injecting", "crime",
                               "health_and_social_functioning"],
                  "treatment": ["modality", "discharge_reason"]}


def in_treatment(api: TestClient, partnership: Partnership) -> tuple[str, int]:
    """A client of the treatment provider with an episode (its modality is shared with
    the commissioner); returns the id and the episode's position."""
    client_id = register(api, partnership)
    position = post_fact(api, partnership, client_id, fact(
        "treatment_episode_started", {"modality": "pharmacological",
                                      "substances": ["opioids"]}))
    return client_id, position


def match(api: TestClient, partnership: Partnership, agency: str, role: Role,
          **body: Any) -> httpx.Response:
    return api.post("/v1/clients/match", json=body, headers=hdr(partnership, agency, role))


def records(accord: Accord, since: int) -> list[Any]:
    """The access records appended after the first ``since``."""
    return events(accord, ACCESS_TOPIC)[since:]


def audit(api: TestClient, partnership: Partnership, agency: str,
          **params: Any) -> list[dict[str, Any]]:
    response = api.get("/v1/audit/accesses", params=params,
                       headers=hdr(partnership, agency, Role.IG_LEAD))
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def disclosures(api: TestClient, partnership: Partnership, client_id: str,
                agency: str = "tp") -> list[dict[str, Any]]:
    response = api.get(f"/v1/clients/{client_id}/disclosures",
                       headers=hdr(partnership, agency, Role.IG_LEAD))
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def answer(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    """Everything a caller receives."""
    return response.status_code, response.content, dict(response.headers)


# -- item 2: matching needs the identity share; commissioners have no per-client view ----


def test_the_commissioner_cannot_re_identify_a_client_under_a_no_identifiers_agreement(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id, _ = in_treatment(api, partnership)
    agree(api, partnership, commissioning_terms(NO_IDENTIFIERS))
    # The commissioner has a basis for commissioning (the modality), so before this was
    # fixed each of these named the client.
    by_nhs = {"purpose": "commissioning", "nhs_number": VALID_IDENTITY["nhs_number"]}
    by_name = {"purpose": "commissioning", "family_name": VALID_IDENTITY["family_name"],
               "date_of_birth": VALID_IDENTITY["date_of_birth"]}
    unknown_nhs = {"purpose": "commissioning", "nhs_number": UNKNOWN_NHS}
    unknown_name = {"purpose": "commissioning", "family_name": "Nobody",
                    "date_of_birth": "1990-01-01"}
    settle(api)
    before = len(events(accord, ACCESS_TOPIC))
    for known, unknown in ((by_nhs, unknown_nhs), (by_name, unknown_name)):
        seen = match(api, partnership, "commissioner", Role.COMMISSIONER, **known)
        nobody = match(api, partnership, "commissioner", Role.COMMISSIONER, **unknown)
        assert answer(seen) == answer(nobody)
        assert seen.status_code == 404
        assert client_id not in seen.text
    recorded = records(accord, before)
    assert [(r.action, r.outcome, r.client_id, r.client_ids, r.returned)
            for r in recorded] == [("match", "no_match", None, [], [])] * 4


def test_a_commissioner_reads_no_per_client_view_and_the_refusal_is_recorded(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id, position = in_treatment(api, partnership)
    agree(api, partnership, commissioning_terms(NO_IDENTIFIERS))
    settle(api)
    before = len(events(accord, ACCESS_TOPIC))
    response = api.get(f"/v1/clients/{client_id}/view",
                       params={"purpose": "commissioning", "min_position": position},
                       headers=hdr(partnership, "commissioner", Role.COMMISSIONER))
    assert response.status_code == 403
    assert "aggregate reports" in response.json()["detail"]
    assert "pharmacological" not in response.text
    [record] = records(accord, before)
    assert (record.action, record.outcome, record.client_id) == ("view", "refused",
                                                                 UUID(client_id))
    # The refusal names the client, so the provider's IG lead sees the attempt.
    attempts = [a for a in audit(api, partnership, "tp", client_id=client_id)
                if a["agency"] == "commissioner"]
    assert [(a["action"], a["outcome"]) for a in attempts] == [("view", "refused")]


def test_a_partner_matches_only_where_its_basis_shares_the_identity_category(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id = register(api, partnership)
    post_fact(api, partnership, client_id, fact())
    agree(api, partnership, police_terms())
    body = {"purpose": "offender_management", "nhs_number": VALID_IDENTITY["nhs_number"]}
    # Consent to engagement but not to identity: a basis to see something, not to be
    # told who this person is.
    consent(api, partnership, client_id, categories=["treatment", "criminal_justice"])
    settle(api)
    nobody = match(api, partnership, "police", Role.PRACTITIONER,
                   purpose="offender_management", nhs_number=UNKNOWN_NHS)
    assert answer(match(api, partnership, "police", Role.PRACTITIONER, **body)) == \
        answer(nobody)
    # With identity in the consent, the police (the agreement shares names) match, by
    # NHS number and by name and date of birth.
    consent(api, partnership, client_id)
    settle(api)
    found = match(api, partnership, "police", Role.PRACTITIONER, **body)
    assert found.status_code == 200, found.text
    assert found.json() == {"client_id": client_id}
    by_name = match(api, partnership, "police", Role.PRACTITIONER,
                    purpose="offender_management",
                    family_name=VALID_IDENTITY["family_name"],
                    date_of_birth=VALID_IDENTITY["date_of_birth"])
    assert by_name.json() == {"client_id": client_id}
    # What the match disclosed is the identity share, on its basis.
    last = events(accord, ACCESS_TOPIC)[-1]
    assert (last.action, last.outcome, last.client_id) == ("match", "returned",
                                                           UUID(client_id))
    assert [(i["controller"], i["basis"]["kind"]) for i in last.returned] == [
        ("tp", "agreement_and_consent")]


# -- item 6: an IG lead finds its own agency's clients for a subject access request -------


def test_an_ig_lead_finds_its_own_agencys_client_by_nhs_number_and_no_other(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id = register(api, partnership)
    other = register(api, partnership, "tp2",
                     identity={**VALID_IDENTITY, "nhs_number": OTHER_NHS})
    settle(api)
    before = len(events(accord, ACCESS_TOPIC))
    found = match(api, partnership, "tp", Role.IG_LEAD,
                  nhs_number=VALID_IDENTITY["nhs_number"])
    assert found.status_code == 200, found.text
    assert found.json() == {"client_id": client_id}
    # Another agency's client is the no-match an unknown person gets, also for an IG lead.
    elsewhere = match(api, partnership, "tp", Role.IG_LEAD, nhs_number=OTHER_NHS)
    nobody = match(api, partnership, "tp", Role.IG_LEAD, nhs_number=UNKNOWN_NHS)
    assert answer(elsewhere) == answer(nobody)
    assert elsewhere.status_code == 404
    assert match(api, partnership, "police", Role.IG_LEAD,
                 nhs_number=VALID_IDENTITY["nhs_number"]).status_code == 404
    assert match(api, partnership, "tp2", Role.IG_LEAD,
                 nhs_number=OTHER_NHS).json() == {"client_id": other}
    # Recorded like any read (the search terms never).
    recorded = records(accord, before)
    assert [(r.agency, r.role, r.action, r.outcome, r.client_id) for r in recorded] == [
        ("tp", "ig_lead", "match", "returned", UUID(client_id)),
        ("tp", "ig_lead", "match", "no_match", None),
        ("tp", "ig_lead", "match", "no_match", None),
        ("police", "ig_lead", "match", "no_match", None),
        ("tp2", "ig_lead", "match", "returned", UUID(other)),
    ]
    assert all(VALID_IDENTITY["family_name"] not in json.dumps(r.returned)
               for r in recorded)
    # Everyone else still states a purpose.
    no_purpose = match(api, partnership, "tp", Role.PRACTITIONER,
                       nhs_number=VALID_IDENTITY["nhs_number"])
    assert no_purpose.status_code == 422
    assert no_purpose.json()["errors"][0]["field"] == "purpose"


# -- item 5: alert reads are disclosures of the clients they are about --------------------


def test_alert_reads_are_in_each_clients_disclosures_and_client_filtered_audit(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    first = concern_raised(api, partnership)
    second = registered(api, partnership, "4010232137")
    post_fact(api, partnership, second, concern())
    alerts = inbox(api, partnership)  # one read of both alerts
    triggers = {a["client_id"]: a["trigger_position"] for a in alerts}
    assert set(triggers) == {first, second}
    [read] = [r for r in events(accord, ACCESS_TOPIC) if r.action == "alerts" and r.returned]
    assert set(read.client_ids) == {UUID(first), UUID(second)}
    for client_id, other in ((first, second), (second, first)):
        [disclosed] = [d for d in disclosures(api, partnership, client_id)
                       if d["action"] == "alerts"]
        assert disclosed["recipient"] == "childrens"
        # Only what went out about this client: its own alert, on its legal duty.
        assert [(i["position"], i["client_id"]) for i in disclosed["items"]] == [
            (triggers[client_id], client_id)]
        assert disclosed["items"][0]["basis"]["kind"] == "legal_duty"
        for agency in ("tp", "childrens"):
            [found] = [a for a in audit(api, partnership, agency, client_id=client_id)
                       if a["action"] == "alerts"]
            assert client_id in found["client_ids"]
            assert {i["client_id"] for i in found["returned"]} == {client_id}
        assert other not in json.dumps(disclosed)
    # An agency with no part in it finds nothing.
    assert [a for a in audit(api, partnership, "police", client_id=first)
            if a["action"] == "alerts"] == []


# -- item 6: attempts that found nothing reach the client's controllers --------------------


def test_a_partners_404_read_is_an_attempt_in_the_controllers_audit_and_looks_unknown(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id = register(api, partnership)
    agree(api, partnership, police_terms())  # no consent yet
    settle(api)
    unknown = str(uuid4())

    def police_view(target: str) -> httpx.Response:
        return api.get(f"/v1/clients/{target}/view",
                       params={"purpose": "offender_management"},
                       headers=hdr(partnership, "police"))

    hidden, nobody = police_view(client_id), police_view(unknown)
    assert hidden.status_code == 404
    # Byte for byte what an unknown id gets (the id is in neither).
    assert answer(hidden) == answer(nobody)
    [attempt] = [a for a in audit(api, partnership, "tp") if a["agency"] == "police"]
    assert (attempt["action"], attempt["outcome"], attempt["client_id"]) == (
        "view", "not_found", client_id)
    assert attempt["client_ids"] == [client_id]
    assert attempt["detail"] is None and attempt["returned"] == []
    assert attempt in audit(api, partnership, "tp", client_id=client_id)
    # The police's own IG lead sees both of its staff's reads, as before; an agency that
    # holds no record of the client sees neither.
    assert {a["client_id"] for a in audit(api, partnership, "police")
            if a["action"] == "view"} == {client_id, unknown}
    assert [a for a in audit(api, partnership, "tp2") if a["agency"] == "police"] == []
    # After a withdrawal: the same again.
    given = consent(api, partnership, client_id)
    withdrawn = api.post(f"/v1/clients/{client_id}/consents/{given['consent_id']}/withdraw",
                         json={"reason": "changed their mind"}, headers=hdr(partnership, "tp"))
    assert withdrawn.status_code == 200, withdrawn.text
    settle(api)
    assert answer(police_view(client_id)) == answer(police_view(unknown))
    assert len([a for a in audit(api, partnership, "tp", client_id=client_id)
                if a["agency"] == "police" and a["outcome"] == "not_found"]) == 2


def test_an_agency_holding_its_own_record_of_the_client_sees_attempts_on_it_too(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id = register(api, partnership)
    agree(api, partnership, police_terms())
    consent(api, partnership, client_id)
    settle(api)
    post_fact(api, partnership, client_id, fact(
        "domestic_abuse_incident_recorded",
        {"role": "victim", "children_present": False}), agency="police")
    settle(api)
    refused = api.get(f"/v1/clients/{client_id}/view",
                      params={"purpose": "safeguarding_children"},
                      headers=hdr(partnership, "childrens"))
    assert refused.status_code == 404
    for holder in ("tp", "police"):
        assert [(a["agency"], a["action"], a["outcome"])
                for a in audit(api, partnership, holder, client_id=client_id)
                if a["agency"] == "childrens"] == [("childrens", "view", "not_found")]
    assert [a for a in audit(api, partnership, "tp2") if a["agency"] == "childrens"] == []


def test_refused_writes_are_recorded_and_reach_the_controller(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    client_id = register(api, partnership)
    settle(api)
    unknown = str(uuid4())
    police = hdr(partnership, "police")
    before, written = len(events(accord, ACCESS_TOPIC)), changes(accord)

    def attempts(target: str) -> list[httpx.Response]:
        return [
            api.post(f"/v1/clients/{target}/events", json=fact(), headers=police),
            api.post(f"/v1/clients/{target}/consents", headers=police,
                     json={"recipient_agency": "childrens", "categories": ["treatment"],
                           "purposes": ["care_coordination"], "obtained": "written"}),
            api.post("/v1/households", json={"client_ids": [target]}, headers=police),
        ]

    hidden, nobody = attempts(client_id), attempts(unknown)
    for seen, not_there in zip(hidden, nobody, strict=True):
        assert seen.status_code == 404
        assert answer(seen) == answer(not_there)
    recorded = records(accord, before)
    assert [(r.agency, r.action, r.outcome, r.client_ids) for r in recorded] == [
        ("police", action, "not_found", [UUID(target)])
        for target in (client_id, unknown)
        for action in ("record_fact", "give_consent", "link_household")]
    # The controller's IG lead finds the attempts on its client (not those on the
    # unknown id), and nothing was written.
    found = [(a["action"], a["outcome"], a["client_id"])
             for a in audit(api, partnership, "tp", client_id=client_id)
             if a["agency"] == "police"]
    assert sorted(found) == sorted([
        ("record_fact", "not_found", client_id), ("give_consent", "not_found", client_id),
        ("link_household", "not_found", client_id)])
    assert changes(accord) == written
    # A write that succeeds is on the log as itself, not as an access.
    before = len(events(accord, ACCESS_TOPIC))
    post_fact(api, partnership, client_id, fact())
    assert records(accord, before) == []


def test_the_access_audit_rebuilds_to_what_it_indexed_as_it_followed_the_log(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    concern_raised(api, partnership)
    second = registered(api, partnership, "4010232137")
    post_fact(api, partnership, second, concern())
    inbox(api, partnership)
    api.post(f"/v1/clients/{second}/events", json=fact(), headers=hdr(partnership, "police"))
    api.post("/v1/households", json={"client_ids": [second, str(uuid4())]},
             headers=hdr(partnership, "police"))
    settle(api)
    index = api.app.state.projections.find(AccessIndex)  # type: ignore[attr-defined]

    def indexed() -> list[list[tuple[Any, ...]]]:
        with accord.engine.connect() as conn:
            return [[tuple(r) for r in conn.execute(select(table).order_by(*table.c))]
                    for table in (access_log, access_clients, access_controllers)]

    incremental = indexed()
    assert all(incremental)
    index.rebuild()
    assert indexed() == incremental


# -- item 10: the alert stream tells each alert's state and every change -----------------


def sse(lines: Iterator[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(id, alert) for each event of a server-sent event stream."""
    event_id, data = None, None
    for line in lines:
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and data is not None:
            assert event_id is not None
            yield event_id, data
            event_id, data = None, None


def stream(api: TestClient, partnership: Partnership,
           last_event_id: int | None = None) -> list[tuple[int, dict[str, Any]]]:
    headers = hdr(partnership, "childrens", SAFEGUARDING)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    response = api.get("/v1/alerts/stream?max_seconds=0", headers=headers)
    assert response.status_code == 200, response.text
    return list(sse(iter(response.text.split("\n"))))


def test_the_stream_sends_each_alerts_current_state_on_connecting_and_resuming(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    concern_raised(api, partnership)
    settle(api)
    [(raised_id, raised)] = stream(api, partnership)
    assert raised["status"] == "raised"
    url = f"/v1/alerts/{raised['alert_id']}"
    mine = hdr(partnership, "childrens", SAFEGUARDING)
    closed = api.post(f"{url}/close", json={"outcome": "already_known", "note": "Known."},
                      headers=mine)
    assert closed.status_code == 200
    # Connecting at once: the alert closed a moment ago is not sent as raised (a fresh
    # connection gets the open alerts, and it is not one).
    assert stream(api, partnership) == []
    # Resuming after the raise: the closure it missed, as the alert is now, with the id
    # of that change.
    [(closed_id, resumed)] = stream(api, partnership, last_event_id=raised_id)
    assert resumed["status"] == "closed" and resumed["outcome"] == "already_known"
    assert closed_id == closed.json()["position"] > raised_id
    assert stream(api, partnership, last_event_id=closed_id) == []
    # Each batch sent is recorded, naming the client.
    reads = [r for r in events(accord, ACCESS_TOPIC) if r.action == "alerts" and r.returned]
    assert all(r.client_ids == [UUID(raised["client_id"])] for r in reads)


def test_the_live_stream_sends_acknowledgements_and_closures_as_they_happen(
    server: str, partnership: Partnership
) -> None:
    with httpx.Client(base_url=server, timeout=15) as http:
        agree(http, partnership, childrens_terms())  # type: ignore[arg-type]
        client_id = http.post("/v1/clients", json={"identity": VALID_IDENTITY},
                              headers=hdr(partnership, "tp")).json()["client_id"]
        mine = hdr(partnership, "childrens", SAFEGUARDING)
        received: list[tuple[int, dict[str, Any]]] = []
        changed = threading.Event()
        done = threading.Event()

        def watch() -> None:
            with httpx.Client(base_url=server, timeout=15) as watcher, \
                    watcher.stream("GET", "/v1/alerts/stream?max_seconds=12",
                                   headers=mine) as response:
                for item in sse(response.iter_lines()):
                    received.append(item)
                    changed.set()
                    if item[1]["status"] == "closed":
                        done.set()
                        return

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()

        def next_event(status: str) -> tuple[int, dict[str, Any]]:
            for _ in range(100):
                if received and received[-1][1]["status"] == status:
                    return received[-1]
                changed.wait(0.1)
                changed.clear()
            raise AssertionError(f"no {status} event; got {received}")

        posted = http.post(f"/v1/clients/{client_id}/events", json=concern(),
                           headers=hdr(partnership, "tp"))
        assert posted.status_code == 201
        raised_id, raised = next_event("raised")
        assert raised["client_id"] == client_id
        url = f"/v1/alerts/{raised['alert_id']}"
        acknowledged = http.post(f"{url}/acknowledge", headers=mine)
        assert acknowledged.status_code == 200
        ack_id, ack = next_event("acknowledged")
        assert ack_id == acknowledged.json()["position"] > raised_id
        assert ack["acknowledged_by"] is not None
        closed = http.post(f"{url}/close", json={"outcome": "referral_made",
                                                 "note": "Strategy discussion."},
                           headers=mine)
        assert closed.status_code == 200
        assert done.wait(10), received
        close_id, final = received[-1]
        assert close_id == closed.json()["position"] > ack_id
        assert final["outcome"] == "referral_made"
        thread.join(timeout=15)
        # Ids only grow, so Last-Event-ID resumes after the last change received.
        ids = [event_id for event_id, _ in received]
        assert ids == sorted(ids)


def test_a_refused_end_of_emergency_access_is_recorded_and_reaches_the_controller(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    """Ending a grant is a write about one client: another agency's IG lead trying it is
    an attempt the client's controller finds, answered as for an unknown client."""
    client_id = register(api, partnership)
    settle(api)
    police_ig = hdr(partnership, "police", Role.IG_LEAD)
    before, written = len(events(accord, ACCESS_TOPIC)), changes(accord)
    tried = [api.post(f"/v1/clients/{target}/emergency-access/{uuid4()}/end",
                      json={"reason": "The emergency is over."}, headers=police_ig)
             for target in (client_id, str(uuid4()))]
    assert [r.status_code for r in tried] == [404, 404]
    assert answer(tried[0]) == answer(tried[1])
    assert [(r.agency, r.action, r.outcome) for r in records(accord, before)] == [
        ("police", "end_emergency_access", "not_found")] * 2
    found = [(a["action"], a["outcome"])
             for a in audit(api, partnership, "tp", client_id=client_id)
             if a["agency"] == "police"]
    assert found == [("end_emergency_access", "not_found")]
    assert changes(accord) == written
