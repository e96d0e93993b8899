"""Who may act on what is on a client's stream, and ending emergency access (issue 12,
items 1 and 4), through the API on both databases.

Item 1: a consent belongs to the agency that recorded it. A partner that recorded one
fact about a client (so it controls that fact) must not be able to withdraw the
treatment provider's consent: for it the consent is the same 404 as an unknown one, the
provider's register is unchanged and the police keep the view the consent gives them.

Item 4: break glass can be ended. Closing a grant's review as ``not_justified`` ends the
grant at that log position, and the IG lead of the client's registering controller can
end a running grant early. The partner's view loses what the grant alone showed at once,
the feed says so, a replay shows the grant before the end and not after, and a rebuild
gives what the incremental views hold.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consent.policy import BasisKind, Viewer, decide
from domain.agencies import AgencyKind, Role
from domain.application import OPERATOR
from domain.clients import Client, EmergencyEndCause
from domain.errors import (
    ClientNotFound,
)
from infra.schema import feed_outbox
from projections.views import AgencyViews
from tests.builders import (
    Partnership,
    agency_views,
    agree,
    changes,
    consent,
    fact,
    granted,
    hdr,
    police_terms,
    policy_state,
    register,
    view,
)

UNKNOWN = "00000000-0000-4000-8000-000000000000"
NOT_JUSTIFIED = {"outcome": "not_justified", "note": "No emergency on the record."}


@pytest.fixture
def probation(partnership: Partnership) -> str:
    """A probation service with a practitioner and an IG lead."""
    app = partnership.accord.app
    app.register_agency("probation", "Probation", AgencyKind.PROBATION, OPERATOR)
    for role in (Role.PRACTITIONER, Role.IG_LEAD):
        partnership.tokens[("probation", role)] = app.add_principal(
            "probation", role, f"probation {role}", OPERATOR).token
    return "probation"


def probation_terms() -> dict[str, Any]:
    """Probation sees name, date of birth and criminal-justice status, without consent."""
    return {
        **police_terms(recipient="probation", consent_required=False,
                       title="Offender management: criminal-justice status"),
        "categories": {"identity": ["given_name", "family_name", "date_of_birth"],
                       "criminal_justice": ["order", "status"]},
    }


@pytest.fixture
def shared(api: TestClient, partnership: Partnership, probation: str) -> dict[str, Any]:
    """A client of ``tp`` who consented to the police seeing their treatment and order;
    probation, which sees the client under an agreement, has recorded one fact (and so
    controls that fact)."""
    client_id = register(api, partnership)
    positions = [
        api.post(f"/v1/clients/{client_id}/events", json=body,
                 headers=hdr(partnership, "tp")).json()["position"]
        for body in (fact(), fact("criminal_justice_status", {
            "order": "drug_rehabilitation_requirement", "status": "compliant",
            "ends_on": "2026-12-01"}))
    ]
    agree(api, partnership, police_terms())
    given = consent(api, partnership, client_id)
    agree(api, partnership, probation_terms())
    seen = view(api, partnership, client_id, probation, "offender_management",
                position=partnership.accord.app.head_position())
    assert seen.status_code == 200, seen.text
    recorded = api.post(f"/v1/clients/{client_id}/events", json=fact(
        "criminal_justice_status", {"order": "community_order", "status": "breached"}),
        headers=hdr(partnership, probation))
    assert recorded.status_code == 201, recorded.text
    assert probation in partnership.accord.app._client(UUID(client_id)).controllers
    return {"client_id": client_id, "consent_id": given["consent_id"],
            "positions": positions}


def withdraw(api: TestClient, partnership: Partnership, client_id: str, consent_id: str,
             agency: str) -> Any:
    return api.post(f"/v1/clients/{client_id}/consents/{consent_id}/withdraw",
                    json={"reason": "client asked to stop sharing"},
                    headers=hdr(partnership, agency))


def register_of(api: TestClient, partnership: Partnership, client_id: str,
                agency: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/clients/{client_id}/consents", headers=hdr(partnership, agency))
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


# -- item 1: only the agency that recorded a consent withdraws it ---------------------------------


def test_a_partner_controlling_one_fact_cannot_withdraw_the_providers_consent(
    api: TestClient, partnership: Partnership, shared: dict[str, Any], probation: str
) -> None:
    client_id, consent_id = shared["client_id"], shared["consent_id"]
    before = changes(partnership.accord)
    foreign = withdraw(api, partnership, client_id, consent_id, probation)
    unknown = withdraw(api, partnership, client_id, str(uuid4()), probation)
    assert foreign.status_code == unknown.status_code == 404, foreign.text
    assert foreign.json() == unknown.json()
    assert changes(partnership.accord) == before

    # The provider's register still shows the consent as the client gave it...
    [record] = register_of(api, partnership, client_id, "tp")
    assert record["consent_id"] == consent_id
    assert record["active"] is True and record["withdrawn_at"] is None
    # ...and the police keep the view the consent gives them.
    police = view(api, partnership, client_id, "police", "offender_management",
                  position=partnership.accord.app.head_position())
    assert police.status_code == 200, police.text
    shown = {f["position"]: f["basis"] for f in police.json()["facts"]}
    assert set(shared["positions"]) <= set(shown)
    assert {shown[p]["consent_id"] for p in shared["positions"]} == {consent_id}

    # The provider withdraws it; a second time is a conflict for the provider only: to
    # probation the withdrawn consent is still as unknown (a 409 would confirm it).
    assert withdraw(api, partnership, client_id, consent_id, "tp").status_code == 200
    again = withdraw(api, partnership, client_id, consent_id, "tp")
    assert again.status_code == 409
    assert "already been withdrawn" in again.json()["detail"]
    late = withdraw(api, partnership, client_id, consent_id, probation)
    assert (late.status_code, late.json()) == (404, unknown.json())


def test_each_agency_withdraws_only_the_consents_it_recorded(
    api: TestClient, partnership: Partnership, shared: dict[str, Any], probation: str
) -> None:
    """The other way round too: probation's consent (covering probation's data) is the
    provider's 404, and probation withdraws it itself."""
    client_id = shared["client_id"]
    given = api.post(f"/v1/clients/{client_id}/consents", headers=hdr(partnership, probation),
                     json={"recipient_agency": "police", "categories": ["criminal_justice"],
                           "purposes": ["offender_management"], "obtained": "written"})
    assert given.status_code == 201, given.text
    mine = given.json()["consent_id"]
    foreign = withdraw(api, partnership, client_id, mine, "tp")
    unknown = withdraw(api, partnership, client_id, str(uuid4()), "tp")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json() == unknown.json()
    assert [c["consent_id"] for c in register_of(api, partnership, client_id, probation)] == [
        mine]
    assert withdraw(api, partnership, client_id, mine, probation).status_code == 200
    [record] = register_of(api, partnership, client_id, probation)
    assert record["active"] is False
    [providers] = register_of(api, partnership, client_id, "tp")
    assert providers["active"] is True


def test_other_commands_on_the_stream_act_only_on_the_callers_own(
    api: TestClient, partnership: Partnership, shared: dict[str, Any], probation: str
) -> None:
    """The other commands on a client's stream, checked for the same mistake: a partner
    that controls one fact records facts only as itself, reads and lists only its own
    facts and consents, and cannot erase the provider's client (as unknown)."""
    app = partnership.accord.app
    client_id = UUID(shared["client_id"])
    ig_lead = app.authenticate(partnership.token(probation, Role.IG_LEAD))
    before = changes(partnership.accord)
    for target in (client_id, UUID(UNKNOWN)):
        with pytest.raises(ClientNotFound):
            app.erase_client(target, "not ours to erase", ig_lead)
    assert changes(partnership.accord) == before
    record = api.get(f"/v1/clients/{client_id}/record", headers=hdr(partnership, probation))
    assert record.status_code == 200
    assert record.json()["identity"] is None
    assert {f["controller"] for f in record.json()["facts"]} == {probation}
    assert register_of(api, partnership, str(client_id), probation) == []
    written = api.post(f"/v1/clients/{client_id}/events", headers=hdr(partnership, probation),
                       json=fact("criminal_justice_status", {"order": "licence",
                                                             "status": "started"}))
    [recorded] = [e for e in app.events.get(client_id)
                  if isinstance(e, Client.FactRecorded)][-1:]
    assert written.status_code == 201 and recorded.controller == probation


# -- item 4: ending emergency access -------------------------------------------------------------


@pytest.fixture
def in_treatment(api: TestClient, partnership: Partnership) -> dict[str, Any]:
    """A client of ``tp`` with an episode and a housing status; no agreements."""
    client_id = register(api, partnership)
    episode = api.post(f"/v1/clients/{client_id}/events", headers=hdr(partnership, "tp"),
                       json=fact("treatment_episode_started", {
                           "modality": "pharmacological", "substances": ["opioids"]}))
    housing = api.post(f"/v1/clients/{client_id}/events", headers=hdr(partnership, "tp"),
                       json=fact("housing_status_recorded", {"status": "temporary"}))
    return {"client_id": client_id, "episode": episode.json()["position"],
            "housing": housing.json()["position"]}


def share_housing_with_the_police(api: TestClient, partnership: Partnership) -> None:
    """The police see housing status for care coordination, without consent."""
    agree(api, partnership, {
        **police_terms(title="Housing for care coordination", consent_required=False,
                       purposes=["care_coordination"]),
        "categories": {"housing": ["status"]},
        "lawful_basis": {"article_6": "6(1)(e) public task"},
    })


def end(api: TestClient, partnership: Partnership, client_id: str, grant_id: str,
        agency: str = "tp", role: Role = Role.IG_LEAD, **body: Any) -> Any:
    return api.post(f"/v1/clients/{client_id}/emergency-access/{grant_id}/end",
                    json=body or {"reason": "The emergency is over."},
                    headers=hdr(partnership, agency, role))


def ig_replay(api: TestClient, partnership: Partnership, client_id: str,
              at: int) -> dict[str, Any]:
    """The provider's IG lead replays the police's view of its data at log position ``at``."""
    response = api.get("/v1/audit/replay", headers=hdr(partnership, "tp", Role.IG_LEAD),
                       params={"agency": "police", "client_id": client_id,
                               "purpose": "safeguarding_adults", "at": str(at)})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def ends_on_stream(partnership: Partnership, client_id: str) -> list[Any]:
    return [e for e in partnership.accord.app.events.get(UUID(client_id))
            if isinstance(e, Client.EmergencyAccessEnded)]


def feed(partnership: Partnership, cause: int) -> dict[str, set[int]]:
    """The feed outbox entries one log position caused, by change."""
    found: dict[str, set[int]] = {}
    with partnership.accord.engine.connect() as conn:
        for row in conn.execute(select(feed_outbox).where(feed_outbox.c.cause == cause,
                                                          feed_outbox.c.agency == "police")):
            found.setdefault(row.change, set()).add(row.position)
    return found


def inbox(api: TestClient, partnership: Partnership, position: int) -> list[dict[str, Any]]:
    response = api.get("/v1/audit/reviews", params={"min_position": position},
                       headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def test_a_review_closed_as_not_justified_ends_the_grant_everywhere(
    api: TestClient, partnership: Partnership, in_treatment: dict[str, Any]
) -> None:
    client_id = in_treatment["client_id"]
    grant = granted(api, partnership, client_id)
    during = view(api, partnership, client_id, "police", "safeguarding_adults",
                  position=grant["position"])
    assert during.status_code == 200, during.text
    shown = {f["position"] for f in during.json()["facts"]}
    assert {in_treatment["episode"], in_treatment["housing"]} <= shown

    closed = api.post(f"/v1/audit/reviews/{grant['review_id']}", json=NOT_JUSTIFIED,
                      headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert closed.status_code == 200, closed.text
    ended_at = closed.json()["position"]

    # The end is on the client's stream: who, why, which review, at that position.
    [ended] = ends_on_stream(partnership, client_id)
    assert str(ended.grant_id) == grant["grant_id"]
    assert str(ended.review_id) == grant["review_id"]
    assert ended.cause == EmergencyEndCause.REVIEW_NOT_JUSTIFIED.value
    assert ended.reason == NOT_JUSTIFIED["note"]
    assert ended.ended_by == str(partnership.accord.app.authenticate(
        partnership.token("tp", Role.IG_LEAD)).principal_id)
    assert ended.agency == "police"

    # The partner's view loses the client at once: the same 404 as an unknown client.
    after = view(api, partnership, client_id, "police", "safeguarding_adults",
                 position=ended_at)
    unknown = view(api, partnership, UNKNOWN, "police", "safeguarding_adults")
    assert after.status_code == unknown.status_code == 404
    assert after.json() == unknown.json()
    # The feed: every fact the grant showed has left the police's view, the registration
    # (the identity) too.
    changed = feed(partnership, ended_at)
    assert shown < changed["left"] and len(changed["left"] - shown) == 1
    assert "entered" not in changed

    # The replay: the grant is the basis before the end, and nothing is after it.
    before = ig_replay(api, partnership, client_id, grant["position"])
    assert {f["position"] for f in before["permitted"]} >= {in_treatment["episode"]}
    assert {f["basis"]["kind"] for f in before["permitted"]} == {BasisKind.EMERGENCY.value}
    later = ig_replay(api, partnership, client_id, ended_at)
    assert later["permitted"] == []
    reasons = " ".join(r for f in later["withheld"] for r in f["reasons"])
    assert "its IG review found it not justified" in reasons

    # The reviews inbox says the grant was ended, and by the review.
    [review] = inbox(api, partnership, ended_at)
    assert review["status"] == "closed" and review["outcome"] == "not_justified"
    assert review["grant_end_cause"] == "review_not_justified"
    assert review["grant_ended_at"] and review["grant_ended_by"] == ended.ended_by

    # A rebuild gives exactly what the incremental views hold.
    views = agency_views(api)
    views.tracking.wait(views.name, partnership.accord.app.head_position(), timeout=5)
    incremental = views.all_rows(), inbox(api, partnership, ended_at)
    api.app.state.projections.stop()  # type: ignore[attr-defined]  # no catch-up meanwhile
    fresh = AgencyViews(partnership.accord.app, partnership.accord.engine)
    fresh.rebuild()
    assert (fresh.all_rows(), inbox(api, partnership, ended_at)) == incremental


def test_a_fact_still_shared_when_a_grant_ends_stays_and_is_described_again(
    api: TestClient, partnership: Partnership, in_treatment: dict[str, Any]
) -> None:
    """Where an agreement also shares a fact, ending the grant leaves it in the view on
    the agreement's basis; the feed sends it again as entered, so that a consumer's copy
    no longer names the grant as holding, and the rest as left."""
    client_id = in_treatment["client_id"]
    share_housing_with_the_police(api, partnership)
    grant = granted(api, partnership, client_id)
    during = view(api, partnership, client_id, "police", "safeguarding_adults",
                  position=grant["position"])
    shown = {f["position"] for f in during.json()["facts"]}
    position = end(api, partnership, client_id, grant["grant_id"]).json()["position"]
    gone = view(api, partnership, client_id, "police", "safeguarding_adults",
                position=position)
    assert gone.status_code == 403  # the police see the client, not for that purpose
    kept = view(api, partnership, client_id, "police", "care_coordination")
    assert [f["position"] for f in kept.json()["facts"]] == [in_treatment["housing"]]
    assert kept.json()["facts"][0]["basis"]["kind"] == "agreement"
    changed = feed(partnership, position)
    assert changed["entered"] == {in_treatment["housing"]}
    assert shown - {in_treatment["housing"]} <= changed["left"]
    assert in_treatment["housing"] not in changed["left"]


def test_a_review_closed_otherwise_leaves_the_grant_running(
    api: TestClient, partnership: Partnership, in_treatment: dict[str, Any]
) -> None:
    client_id = in_treatment["client_id"]
    grant = granted(api, partnership, client_id)
    closed = api.post(f"/v1/audit/reviews/{grant['review_id']}",
                      json={"outcome": "justified", "note": "Right call."},
                      headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert closed.status_code == 200
    assert ends_on_stream(partnership, client_id) == []
    assert view(api, partnership, client_id, "police", "safeguarding_adults",
                position=closed.json()["position"]).status_code == 200


def test_the_controllers_ig_lead_ends_a_running_grant_early(
    api: TestClient, partnership: Partnership, in_treatment: dict[str, Any]
) -> None:
    client_id = in_treatment["client_id"]
    grant = granted(api, partnership, client_id)
    assert view(api, partnership, client_id, "police", "safeguarding_adults",
                position=grant["position"]).status_code == 200

    ended = end(api, partnership, client_id, grant["grant_id"])
    assert ended.status_code == 200, ended.text
    assert set(ended.json()) == {"position"}
    position = ended.json()["position"]
    assert view(api, partnership, client_id, "police", "safeguarding_adults",
                position=position).status_code == 404
    [event] = ends_on_stream(partnership, client_id)
    assert event.cause == EmergencyEndCause.ENDED_BY_IG_LEAD.value
    assert event.reason == "The emergency is over."

    # Ending twice is a conflict, and changes nothing.
    before = changes(partnership.accord)
    again = end(api, partnership, client_id, grant["grant_id"])
    assert again.status_code == 409
    assert "already been ended" in again.json()["detail"]
    assert changes(partnership.accord) == before

    # The review stays open for its outcome; closing it as not justified ends nothing twice.
    [review] = inbox(api, partnership, position)
    assert review["status"] == "open"
    assert review["grant_end_cause"] == "ended_by_ig_lead"
    closed = api.post(f"/v1/audit/reviews/{grant['review_id']}", json=NOT_JUSTIFIED,
                      headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert closed.status_code == 200, closed.text
    assert len(ends_on_stream(partnership, client_id)) == 1


def test_only_the_registering_controllers_ig_lead_ends_a_grant(
    api: TestClient, partnership: Partnership, in_treatment: dict[str, Any]
) -> None:
    client_id = in_treatment["client_id"]
    grant = granted(api, partnership, client_id)
    # The police see the client under the grant once the views have caught up with it.
    assert view(api, partnership, client_id, "police", "safeguarding_adults",
                grant["position"]).status_code == 200
    before = changes(partnership.accord)
    unknown_client = end(api, partnership, UNKNOWN, grant["grant_id"], "police")
    assert unknown_client.status_code == 404
    for agency in ("police", "tp2", "childrens", "commissioner"):
        refused = end(api, partnership, client_id, grant["grant_id"], agency)
        assert (refused.status_code, refused.json()) == (404, unknown_client.json()), agency
    for role in (Role.PRACTITIONER, Role.SAFEGUARDING, Role.ADMIN, Role.COMMISSIONER):
        assert end(api, partnership, client_id, grant["grant_id"], role=role).status_code == 403
    assert changes(partnership.accord) == before
    # Once the police record what they find, they control a fact of the client, and the
    # grant is to them the same 404 as an unknown grant.
    recorded = api.post(f"/v1/clients/{client_id}/events", headers=hdr(partnership, "police"),
                        json=fact("domestic_abuse_incident_recorded", {
                            "role": "victim", "children_present": False,
                            "police_reference": "NP/1"}))
    assert recorded.status_code == 201, recorded.text
    before = changes(partnership.accord)
    own_grant = end(api, partnership, client_id, grant["grant_id"], "police")
    unknown_grant = end(api, partnership, client_id, str(uuid4()), "police")
    assert own_grant.status_code == unknown_grant.status_code == 404
    assert own_grant.json() == unknown_grant.json()
    # The provider's IG lead gets a 404 for an unknown grant, and 422s for bad input.
    assert end(api, partnership, client_id, str(uuid4())).status_code == 404
    for body, field in (({"reason": ""}, "reason"), ({"reason": "x" * 501}, "reason"),
                        ({"reason": "ok", "extra": 1}, "extra"), ({"why": "ok"}, "reason")):
        bad = end(api, partnership, client_id, grant["grant_id"], **body)
        assert bad.status_code == 422, (body, bad.text)
        assert field in [e["field"] for e in bad.json()["errors"]]
    blank = end(api, partnership, client_id, grant["grant_id"], reason="   ")
    assert blank.status_code == 422 and blank.json()["errors"][0]["field"] == "reason"
    assert changes(partnership.accord) == before
    assert view(api, partnership, client_id, "police", "safeguarding_adults").status_code == 200


def test_an_expired_grant_cannot_be_ended_and_a_late_not_justified_ends_nothing(
    api: TestClient, partnership: Partnership, in_treatment: dict[str, Any]
) -> None:
    client_id = in_treatment["client_id"]
    app = partnership.accord.app
    real_clock = app.clock
    app.clock = lambda: datetime.now(UTC) - timedelta(minutes=2)
    try:
        grant = granted(api, partnership, client_id, minutes=1)
    finally:
        app.clock = real_clock
    expired = end(api, partnership, client_id, grant["grant_id"])
    assert expired.status_code == 409
    assert "expired" in expired.json()["detail"]
    closed = api.post(f"/v1/audit/reviews/{grant['review_id']}", json=NOT_JUSTIFIED,
                      headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert closed.status_code == 200
    assert ends_on_stream(partnership, client_id) == []


def test_an_ended_grant_still_shows_in_views_of_the_time_it_ran(
    api: TestClient, partnership: Partnership, in_treatment: dict[str, Any]
) -> None:
    """The end closes the grant's window at the end's time: the views of a moment before
    it (and ``decide`` at that moment) still name the grant, those after it do not."""
    client_id = in_treatment["client_id"]
    app = partnership.accord.app
    real_clock = app.clock
    granted_at = datetime.now(UTC) - timedelta(minutes=30)
    app.clock = lambda: granted_at
    try:
        grant = granted(api, partnership, client_id, minutes=60)
    finally:
        app.clock = real_clock
    position = end(api, partnership, client_id, grant["grant_id"]).json()["position"]
    [event] = ends_on_stream(partnership, client_id)
    views = agency_views(api)
    views.tracking.wait(views.name, position, timeout=5)
    cid = UUID(client_id)
    while_running = granted_at + timedelta(minutes=10)
    assert {i.basis["kind"] for i in views.items("police", cid, "safeguarding_adults",
                                                 at=while_running)} == {"emergency"}
    assert views.items("police", cid, "safeguarding_adults", at=event.ended_at) == []
    assert not views.sees_client("police", cid, at=event.ended_at + timedelta(seconds=1))
    assert not views.sees_client("police", cid)

    state, facts = policy_state(partnership)
    police = Viewer("police", AgencyKind.POLICE)
    episode = next(f for f in facts if f.fact_type == "treatment_episode_started")
    then = decide(police, "safeguarding_adults", episode.fact, state, while_running)
    assert then.permit and then.basis is not None and then.basis.kind is BasisKind.EMERGENCY
    now = decide(police, "safeguarding_adults", episode.fact, state, event.ended_at)
    assert not now.permit
    assert any("ended by the controller's IG lead" in reason for reason in now.reasons)
