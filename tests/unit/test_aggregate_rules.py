"""The rules about one aggregate's own state hold in the aggregate itself.

Each test calls an aggregate's command directly, without the application, as any caller
that bypassed it could: the command refuses with the domain's error and records nothing.
And because the rules sit before the events, not in them, a stream that already holds
what a rule now refuses (written before the rule) still replays.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate

from domain.agencies import Agency, AgencyKind, Partnership, Principal, Role, role_fits
from domain.agreements import Agreement, AgreementTerms
from domain.alerts import Alert, AlertStatus
from domain.clients import Client, EmergencyEndCause, check_emergency_request
from domain.errors import (
    AgencyExists,
    AgreementNotFound,
    AgreementRevoked,
    ClientNotFound,
    Conflict,
    ConsentAlreadyWithdrawn,
    ConsentNotFound,
    EmergencyAccessNotFound,
    EmergencyAccessOver,
    Forbidden,
    InvalidCommand,
)
from domain.households import MAX_MEMBERS, Household
from domain.reviews import Review, ReviewOutcome
from tests.builders import housing_terms

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def refuses(aggregate: Aggregate, command: Callable[[], Any],
            error: type[Exception], says: str = "") -> Exception:
    """Runs a command that must be refused: the error (whose message contains ``says``),
    and not one event more on the aggregate."""
    aggregate.collect_events()
    before = aggregate.version
    with pytest.raises(error) as refused:
        command()
    assert says in str(refused.value)
    assert aggregate.version == before
    assert aggregate.collect_events() == []
    return refused.value


def replayed(events: list[Any]) -> Any:
    """The aggregate rebuilt from its events, as the repository does."""
    aggregate = None
    for e in events:
        aggregate = e.mutate(aggregate)
    return aggregate


# -- the client ------------------------------------------------------------------------------


def client_of(controller: str = "tp") -> Client:
    client = Client(id=uuid4(), controller=controller, registered_by="p1",
                    sealed_identity="sealed", nhs_fingerprint="n", name_fingerprint="f")
    client.collect_events()
    return client


def grant(client: Client, *, agency: str = "police", minutes: float = 30,
          purpose: str = "safeguarding_adults",
          justification: str = "Collapsed at the station; suspected overdose.") -> None:
    client.grant_emergency_access(
        grant_id=uuid4(), review_id=uuid4(), agency=agency, agency_kind="police",
        principal="p2", principal_name="DC Reid", role="practitioner", purpose=purpose,
        justification=justification, clinical_notes=False, granted_at=NOW,
        expires_at=NOW + timedelta(minutes=minutes))


def consent(client: Client, *, controller: str = "tp", recipient_agency: str | None = "police",
            recipient_kind: str | None = None, data_from: Any = None,
            data_to: Any = None) -> UUID:
    consent_id = uuid4()
    client.give_consent(
        consent_id=consent_id, controller=controller, recipient_agency=recipient_agency,
        recipient_kind=recipient_kind, categories=["housing"], purposes=["care_coordination"],
        data_from=data_from, data_to=data_to, expires_at=None, obtained="written",
        recorded_by="p1")
    return consent_id


def test_emergency_access_is_refused_to_the_registering_agency_and_on_an_erased_client() -> None:
    client = client_of("tp")
    refuses(client, lambda: grant(client, agency="tp"), Forbidden,
            "your agency registered this client")
    grant(client, agency="police")
    assert len(client.collect_events()) == 1

    client.erase(reason_fingerprint="hmac-sha256:00", erased_by="ig1")
    refuses(client, lambda: grant(client, agency="police"), ClientNotFound)


@pytest.mark.parametrize(("terms", "field"), [
    ({"purpose": "commissioning"}, "purpose"),
    ({"minutes": 24 * 60 + 1}, "minutes"),
    ({"minutes": 0}, "minutes"),
    ({"justification": "   urgent  "}, "justification"),
    ({"justification": "x" * 1001}, "justification"),
])
def test_emergency_access_terms_are_checked_by_the_aggregate(terms: dict[str, Any],
                                                             field: str) -> None:
    client = client_of()
    error = refuses(client, lambda: grant(client, **terms), InvalidCommand)
    assert isinstance(error, InvalidCommand) and error.field == field


def test_the_longest_emergency_window_and_a_stripped_justification_are_accepted() -> None:
    client = client_of()
    grant(client, minutes=24 * 60, justification="  Collapsed in custody.  ")
    [granted] = client.collect_events()
    assert isinstance(granted, Client.EmergencyAccessGranted)
    assert granted.justification == "Collapsed in custody."
    assert check_emergency_request("direct_care", " Collapsed in custody. ", 1) == \
        "Collapsed in custody."


def test_a_client_is_erased_once() -> None:
    client = client_of()
    client.erase(reason_fingerprint="hmac-sha256:00", erased_by="ig1")
    refuses(client, lambda: client.erase(reason_fingerprint="hmac-sha256:00", erased_by="ig1"),
            ClientNotFound)


def test_a_consent_is_withdrawn_once() -> None:
    client = client_of()
    consent_id = consent(client)
    client.withdraw_consent(consent_id, "client asked", "p1", agency="tp")
    refuses(client, lambda: client.withdraw_consent(consent_id, "again", "p1", agency="tp"),
            ConsentAlreadyWithdrawn)


def test_a_consent_names_one_recipient_and_a_period_that_does_not_run_backwards() -> None:
    from datetime import date

    client = client_of()
    for kwargs, field in (
        ({"recipient_agency": None, "recipient_kind": None}, "recipient"),
        ({"recipient_agency": "police", "recipient_kind": "police"}, "recipient"),
        ({"data_from": date(2026, 2, 1), "data_to": date(2026, 1, 1)}, "data_to"),
    ):
        error = refuses(client, lambda kwargs=kwargs: consent(client, **kwargs), InvalidCommand)
        assert isinstance(error, InvalidCommand) and error.field == field
    consent(client, recipient_agency=None, recipient_kind="police")


def test_only_an_agency_holding_a_record_of_the_client_records_a_consent() -> None:
    client = client_of("tp")
    refuses(client, lambda: consent(client, controller="police"), ClientNotFound)
    client.record_fact(fact_type="housing_status_recorded", category="housing",
                       data={"status": "settled"}, occurred_at=NOW, controller="police",
                       recorded_by="p2")
    consent(client, controller="police")  # it controls a fact of the client now


# -- reviews -----------------------------------------------------------------------------------


def review_of(controller: str = "tp") -> Review:
    review = Review(grant_id=uuid4(), client_id=uuid4(), controller=controller,
                    audience=[controller, "tp2"], granted_to="police", principal="p2",
                    principal_name="DC Reid", role="practitioner",
                    purpose="safeguarding_adults", justification="Collapsed in custody.",
                    clinical_notes=False, granted_at=NOW, expires_at=NOW + timedelta(hours=1))
    review.collect_events()
    return review


def test_a_review_is_closed_once_and_only_by_the_registering_controller() -> None:
    review = review_of("tp")
    refuses(review, lambda: review.close(ReviewOutcome.JUSTIFIED, "fine", "ig2", agency="tp2"),
            Forbidden, "registering controller")
    review.close(ReviewOutcome.NOT_JUSTIFIED, "no emergency", "ig1", agency="tp")
    refuses(review, lambda: review.close(ReviewOutcome.JUSTIFIED, "on reflection", "ig1",
                                         agency="tp"),
            Conflict, "already closed (not_justified)")
    assert review.outcome is ReviewOutcome.NOT_JUSTIFIED


# -- alerts ------------------------------------------------------------------------------------


def alert_of() -> Alert:
    alert = Alert(rule="rule", severity="high", recipient="childrens", client_id=uuid4(),
                  household_id=None, reason="one line", basis={}, trigger_position=7,
                  acknowledge_by=NOW + timedelta(hours=4))
    alert.collect_events()
    return alert


def test_a_closed_alert_is_neither_acknowledged_nor_closed_again() -> None:
    alert = alert_of()
    alert.close(outcome="no_further_action", note="known", by="s1")
    refuses(alert, lambda: alert.acknowledge(by="s1"), Conflict, "already closed")
    refuses(alert, lambda: alert.close(outcome="referral_made", note="x", by="s1"), Conflict,
            "already closed")
    refuses(alert, lambda: alert.escalate(reason="late"), Conflict)


def test_an_alert_is_acknowledged_once_and_escalated_only_while_raised() -> None:
    alert = alert_of()
    alert.escalate(reason="not acknowledged in time")
    refuses(alert, lambda: alert.escalate(reason="again"), Conflict, "escalated")
    alert.acknowledge(by="s1")  # an escalated alert is still taken on
    refuses(alert, lambda: alert.acknowledge(by="s2"), Conflict, "already acknowledged")
    refuses(alert, lambda: alert.escalate(reason="late"), Conflict)
    alert.close(outcome="referral_made", note="strategy discussion", by="s1")
    assert alert.status is AlertStatus.CLOSED


def test_a_stream_holding_what_a_rule_now_refuses_still_replays() -> None:
    """Rules sit in the commands, not in the events: history is history."""
    alert = Alert(rule="rule", severity="high", recipient="childrens", client_id=uuid4(),
                  household_id=None, reason="one line", basis={}, trigger_position=7,
                  acknowledge_by=NOW + timedelta(hours=4))
    alert.close(outcome="no_further_action", note="known", by="s1")
    alert._acknowledge(by="s1")  # as an older version, without the rule, could record
    assert replayed(alert.collect_events()).status is AlertStatus.ACKNOWLEDGED


# -- agreements --------------------------------------------------------------------------------


def terms(recipient: str = "childrens", title: str = "Housing status") -> AgreementTerms:
    return AgreementTerms.model_validate(housing_terms(recipient, title))


def agreement_of() -> Agreement:
    agreement = Agreement.propose("tp", terms(), proposed_by="ig1")
    agreement.collect_events()
    return agreement


def test_an_agency_does_not_propose_an_agreement_with_itself() -> None:
    with pytest.raises(InvalidCommand) as refused:
        Agreement.propose("tp", terms(recipient="tp"), proposed_by="ig1")
    assert refused.value.field == "recipient"


def test_an_agreement_comes_into_force_with_both_approvals_and_each_counts_once() -> None:
    agreement = agreement_of()
    agreement.approve(agency="tp", approved_by="ig1")
    agreement.approve(agency="tp", approved_by="ig1")  # again: nothing more
    assert len(agreement.collect_events()) == 1 and agreement.in_force is None
    agreement.approve(agency="childrens", approved_by="ig3")
    assert [type(e).__name__ for e in agreement.collect_events()] == ["Approved",
                                                                       "CameIntoForce"]
    assert agreement.in_force == 1
    refuses(agreement, lambda: agreement.approve(agency="police", approved_by="ig4"),
            AgreementNotFound)


def test_a_revoked_agreement_is_neither_approved_nor_amended_and_is_revoked_once() -> None:
    agreement = agreement_of()
    agreement.revoke(agency="childrens", reason="no longer needed", revoked_by="ig3")
    agreement.revoke(agency="tp", reason="again", revoked_by="ig1")
    assert len(agreement.collect_events()) == 1
    assert agreement.revoked_reason == "no longer needed"
    refuses(agreement, lambda: agreement.approve(agency="tp", approved_by="ig1"),
            AgreementRevoked)
    refuses(agreement, lambda: agreement.amend(terms(title="New"), "ig1", agency="tp"),
            AgreementRevoked)


def test_only_the_controller_amends_and_never_the_recipient() -> None:
    agreement = agreement_of()
    refuses(agreement, lambda: agreement.amend(terms(title="New"), "ig3", agency="childrens"),
            Forbidden, "only the controller's IG lead amends")
    refuses(agreement, lambda: agreement.amend(terms(title="New"), "ig9", agency="police"),
            AgreementNotFound)
    error = refuses(agreement, lambda: agreement.amend(terms(recipient="police"), "ig1",
                                                       agency="tp"), InvalidCommand)
    assert isinstance(error, InvalidCommand) and error.field == "recipient"
    agreement.amend(terms(title="New"), "ig1", agency="tp")
    assert agreement.latest == 2


# -- households --------------------------------------------------------------------------------


def test_a_household_has_one_to_max_different_members() -> None:
    for client_ids in ([], [uuid4() for _ in range(MAX_MEMBERS + 1)]):
        with pytest.raises(InvalidCommand) as refused:
            Household.link(client_ids, agency="tp", linked_by="p1")
        assert refused.value.field == "client_ids"
    one = uuid4()
    assert Household.link([one, one], agency="tp", linked_by="p1").members == [one]


def test_a_member_is_added_once_and_not_to_a_full_household() -> None:
    first = uuid4()
    household = Household.link([first], agency="tp", linked_by="p1")
    household.collect_events()
    refuses(household, lambda: household.add_member(first, agency="tp", added_by="p1"),
            Conflict, "already belongs to a household")
    for _ in range(MAX_MEMBERS - 1):
        household.add_member(uuid4(), agency="tp", added_by="p1")
    household.collect_events()
    refuses(household, lambda: household.add_member(uuid4(), agency="tp", added_by="p1"),
            Conflict, f"already has {MAX_MEMBERS} members")


# -- the partnership, agencies and principals ------------------------------------------------


def test_an_agency_joins_the_partnership_once() -> None:
    partnership = Partnership()
    partnership.admit("police")
    partnership.collect_events()
    refuses(partnership, lambda: partnership.admit("police"), AgencyExists)


def test_an_agency_refuses_a_role_that_does_not_fit_its_kind() -> None:
    commissioner = Agency(slug="commissioner", name="Commissioning",
                          kind=AgencyKind.COMMISSIONER, registered_by="operator:cli")
    with pytest.raises(InvalidCommand) as refused:
        commissioner.check_role_fits(Role.PRACTITIONER)
    assert refused.value.field == "role" and "roles that fit" in refused.value.message
    commissioner.check_role_fits(Role.COMMISSIONER)


def test_a_principal_is_revoked_once() -> None:
    principal = Principal(agency="tp", role=Role.PRACTITIONER, name="Ann", token_hash="h",
                          added_by="operator:cli")
    principal.collect_events()
    principal.revoke(reason="left", revoked_by="a1")
    principal.revoke(reason="again", revoked_by="a2")
    [revoked] = principal.collect_events()
    assert isinstance(revoked, Principal.Revoked) and principal.revoked_reason == "left"


# -- consents and grants belong to the agency that recorded them ---------------------------


def test_the_client_aggregate_keeps_consents_and_grants_to_their_owners() -> None:
    """The invariant lives in the aggregate, so no command can forget it; and a stream
    that already holds a foreign withdrawal (written before the check) still replays."""
    client = Client(id=uuid4(), controller="tp", registered_by="p1", sealed_identity="s",
                    nhs_fingerprint="n", name_fingerprint="f")
    consent_id, grant_id = uuid4(), uuid4()
    client.give_consent(consent_id=consent_id, controller="tp", recipient_agency="police",
                        recipient_kind=None, categories=["treatment"],
                        purposes=["offender_management"], data_from=None, data_to=None,
                        expires_at=None, obtained="written", recorded_by="p1")
    now = datetime.now(UTC)
    client.grant_emergency_access(
        grant_id=grant_id, review_id=uuid4(), agency="police", agency_kind="police",
        principal="p2", principal_name="DC Reid", role="practitioner",
        purpose="safeguarding_adults", justification="Collapsed in custody.",
        clinical_notes=False, granted_at=now, expires_at=now + timedelta(hours=1))
    pending = len(client.collect_events())

    for refused, error in (
        (lambda: client.withdraw_consent(consent_id, "r", "p3", agency="probation"),
         ConsentNotFound),
        (lambda: client.withdraw_consent(uuid4(), "r", "p1", agency="tp"), ConsentNotFound),
        (lambda: client.end_emergency_access(
            grant_id, agency="police", ended_at=now, cause=EmergencyEndCause.ENDED_BY_IG_LEAD,
            reason="r", ended_by="p2"), EmergencyAccessNotFound),
        (lambda: client.end_emergency_access(
            uuid4(), agency="tp", ended_at=now, cause=EmergencyEndCause.ENDED_BY_IG_LEAD,
            reason="r", ended_by="p1"), EmergencyAccessNotFound),
        (lambda: client.end_emergency_access(
            grant_id, agency="tp", ended_at=now + timedelta(hours=1),
            cause=EmergencyEndCause.ENDED_BY_IG_LEAD, reason="r", ended_by="p1"),
         EmergencyAccessOver),
    ):
        with pytest.raises(error):
            refused()
    assert client.collect_events() == []

    client.withdraw_consent(consent_id, "client asked", "p1", agency="tp")
    client.end_emergency_access(grant_id, agency="tp", ended_at=now,
                                cause=EmergencyEndCause.ENDED_BY_IG_LEAD, reason="r",
                                ended_by="p1")
    with pytest.raises(ConsentAlreadyWithdrawn):
        client.withdraw_consent(consent_id, "again", "p1", agency="tp")
    with pytest.raises(ConsentNotFound):  # not a 409: that would confirm the consent
        client.withdraw_consent(consent_id, "again", "p3", agency="probation")
    with pytest.raises(EmergencyAccessOver):
        client.end_emergency_access(grant_id, agency="tp", ended_at=now,
                                    cause=EmergencyEndCause.ENDED_BY_IG_LEAD, reason="r",
                                    ended_by="p1")
    assert pending == 3 and len(client.collect_events()) == 2

    # A withdrawal by another agency already on a stream applies without the check.
    old = Client(id=uuid4(), controller="tp", registered_by="p1", sealed_identity="s",
                 nhs_fingerprint="n", name_fingerprint="f")
    old.give_consent(consent_id=consent_id, controller="tp", recipient_agency="police",
                     recipient_kind=None, categories=["treatment"], purposes=["direct_care"],
                     data_from=None, data_to=None, expires_at=None, obtained="written",
                     recorded_by="p1")
    old._withdraw_consent(consent_id=consent_id, reason="r", recorded_by="probation-worker")
    replayed: Any = None
    for stored in old.collect_events():
        replayed = stored.mutate(replayed)
    assert replayed.consents[consent_id].withdrawn


# -- roles fit the agency's kind -----------------------------------------------------------


def test_role_fits_the_agency_kind() -> None:
    for kind in AgencyKind:
        commissioning = kind is AgencyKind.COMMISSIONER
        assert role_fits(kind, Role.COMMISSIONER) is commissioning
        assert role_fits(kind, Role.PRACTITIONER) is not commissioning
        assert role_fits(kind, Role.SAFEGUARDING) is not commissioning
        for role in (Role.IG_LEAD, Role.ADMIN, Role.PARTNERSHIP_ADMIN):
            assert role_fits(kind, role)
