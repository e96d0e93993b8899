"""The outcome reports' read model (``projections.reports.projection``), on both databases.

It must keep only what the commissioner may see for the purpose ``commissioning``, by
the same policy as the views: under the agreement's shares, masked to their fields, and
never a client id or an identity; a consent withdrawn or an agreement revoked takes the
client's facts out of the figures; an age band only under a ``demographics`` share; and a
rebuild gives exactly the incremental rows, however the log is cut into batches.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from api.bootstrap import Accord
from domain.agencies import AgencyKind, Role
from domain.alerts import Alert
from domain.clients import Client
from infra.keys import load_key_file
from projections.reports.projection import (
    AGE_BAND,
    FACT_RECORDED,
    REPORTED_TYPES,
    OutcomeReports,
    _read_recorded,
    _skipped,
    report_pseudonym_key,
)
from tests.builders import (
    COMMISSIONER,
    NHS_NUMBERS,
    SHARED,
    STARTED,
    VALID_IDENTITY,
    Partnership,
    Story,
)


def test_only_what_the_agreement_shares_for_commissioning_masked_and_pseudonymous(
        accord: Accord, partnership: Partnership) -> None:
    story = Story(accord, partnership)
    story.agree("tp", SHARED)
    client = story.client()
    story.episode(client)
    story.fact(client, "demographics_recorded",
               {"sex": "female", "ethnicity": "A", "religion": "hindu", "area": "E06000032"})
    story.fact(client, "clinical_note_added", {"text": "never shared"})
    story.fact(client, "appointment_attended", {"appointment": "keywork"})  # not read
    story.fact(client, "housing_status_recorded", {"status": "settled"})  # not shared
    other = story.client("tp2")  # no agreement from tp2
    story.episode(other, "tp2")

    reports = story.catch_up()
    rows = reports.all_rows()["accord_report_facts"]
    kept = {(row[2], json.loads(row[9]).get("religion")) for row in rows}
    assert kept == {("treatment_episode_started", None), (AGE_BAND, None),
                    ("demographics_recorded", None)}
    snapshot = reports.snapshot(COMMISSIONER)
    demographics = next(f for f in snapshot.facts if f.fact_type == "demographics_recorded")
    assert dict(demographics.data) == {"sex": "female", "ethnicity": "A", "area": "E06000032"}
    start = next(f for f in snapshot.facts if f.fact_type == "treatment_episode_started")
    assert start.data["age_band"] == "40-44"  # the band, never the date of birth
    assert start.client == reports.pseudonym(client) != client.hex
    everything = json.dumps(reports.all_rows(), default=str)
    for secret in (client.hex, str(client), other.hex, str(other), NHS_NUMBERS[0],
                   VALID_IDENTITY["family_name"], VALID_IDENTITY["given_name"],
                   VALID_IDENTITY["postcode"], VALID_IDENTITY["date_of_birth"], "1985"):
        assert secret not in everything
    assert story.in_treatment() == 1


def test_an_age_band_only_under_a_demographics_share(
        accord: Accord, partnership: Partnership) -> None:
    story = Story(accord, partnership)
    story.agree("tp", {k: v for k, v in SHARED.items() if k != "demographics"})
    client = story.client()
    story.episode(client)
    snapshot = story.catch_up().snapshot(COMMISSIONER)
    (start,) = snapshot.facts
    assert "age_band" not in start.data
    assert all(row[2] != AGE_BAND for row in story.reports.all_rows()["accord_report_facts"])


def test_a_withdrawal_and_a_revocation_take_the_clients_out(
        accord: Accord, partnership: Partnership) -> None:
    story = Story(accord, partnership)
    tp_agreement = story.agree("tp", SHARED)
    story.agree("tp2", {"treatment": SHARED["treatment"]}, consent=True)
    ours = story.client()
    story.episode(ours)
    theirs = story.client("tp2")
    story.episode(theirs, "tp2")
    assert story.in_treatment() == 1  # tp2's client has not consented
    consent_id, _ = story.app.give_consent(
        theirs, recipient_agency=None, recipient_kind=AgencyKind.COMMISSIONER,
        categories=["treatment"], purposes=["commissioning"], data_from=None, data_to=None,
        expires_at=None, obtained="written", by=story.actor("tp2"))
    assert story.in_treatment() == 2  # the facts before the consent count too
    assert story.reports.snapshot(COMMISSIONER).consenting == {story.reports.pseudonym(theirs)}
    story.app.withdraw_consent(theirs, consent_id, "no longer", story.actor("tp2"))
    assert story.in_treatment() == 1
    assert story.reports.snapshot(COMMISSIONER).consenting == frozenset()
    story.app.revoke_agreement(tp_agreement, "re-procured", story.actor("tp", Role.IG_LEAD))
    assert story.in_treatment() == 0
    assert story.reports.all_rows()["accord_report_facts"] == []


def test_an_erased_client_leaves_no_row(accord: Accord, partnership: Partnership) -> None:
    story = Story(accord, partnership)
    story.agree("tp", SHARED)
    client = story.client()
    story.episode(client)
    assert story.in_treatment() == 1
    story.app.erase_client(client, "the client asked", story.actor("tp", Role.IG_LEAD))
    assert story.in_treatment() == 0
    assert not any(story.reports.all_rows().values())


def _alert(story: Story, client_id: UUID, recipient: str, purpose: str, position: int) -> UUID:
    alert = Alert(rule="test_rule", severity="high", recipient=recipient, client_id=client_id,
                  household_id=None, reason="a test alert",
                  basis={"kind": "legal_duty", "purpose": purpose,
                         "agreements": [{"controller": "tp", "legal_duty": "children_act_s47"}]},
                  trigger_position=position,
                  acknowledge_by=datetime.now(UTC) + timedelta(hours=4))
    story.app.save(alert)
    return UUID(str(alert.id))


def test_alerts_are_kept_only_under_a_share_of_their_category(
        accord: Accord, partnership: Partnership) -> None:
    story = Story(accord, partnership)
    story.agree("tp", SHARED)  # shares safeguarding_children, not safeguarding_adults
    client = story.client()
    story.episode(client)
    child = _alert(story, client, "childrens", "safeguarding_children", 10**6)
    _alert(story, client, "childrens", "safeguarding_adults", 10**6 + 1)
    story.catch_up()
    story.app.acknowledge_alert(child, story.actor("childrens", Role.SAFEGUARDING))
    (kept,) = story.catch_up().snapshot(COMMISSIONER).alerts
    assert (kept.rule, kept.recipient_kind, kept.client) == (
        "test_rule", "childrens_services", story.reports.pseudonym(client))
    assert kept.acknowledged_in_time


def _story_with_every_kind_of_change(story: Story) -> None:
    tp_agreement = story.agree("tp", SHARED)
    story.agree("tp2", {"treatment": SHARED["treatment"],
                        "demographics": SHARED["demographics"]}, consent=True)
    first, second = story.client(), story.client(born="2001-02-03")
    story.episode(first, ended="completed_drug_free")
    story.episode(second, ended="dropped_out")
    story.fact(first, "demographics_recorded", {"sex": "male", "ethnicity": "N"})
    theirs = story.client("tp2", born="1960-01-01")
    story.episode(theirs, "tp2")
    consent_id, _ = story.app.give_consent(
        theirs, recipient_agency=COMMISSIONER, recipient_kind=None,
        categories=["treatment", "demographics"], purposes=["commissioning"], data_from=None,
        data_to=None, expires_at=None, obtained="written", by=story.actor("tp2"))
    story.fact(theirs, "demographics_recorded", {"sex": "female", "ethnicity": "A"},
               provider="tp2")
    child = _alert(story, first, "childrens", "safeguarding_children", 10**6)
    story.catch_up()
    story.app.acknowledge_alert(child, story.actor("childrens", Role.SAFEGUARDING))
    story.app.revoke_agreement(tp_agreement, "amending", story.actor("tp", Role.IG_LEAD))
    story.agree("tp", SHARED)  # and in force again
    story.app.withdraw_consent(theirs, consent_id, "no longer", story.actor("tp2"))
    story.app.give_consent(
        theirs, recipient_agency=None, recipient_kind=AgencyKind.COMMISSIONER,
        categories=["treatment"], purposes=["commissioning"], data_from=None, data_to=None,
        expires_at=None, obtained="written", by=story.actor("tp2"))
    story.app.erase_client(second, "the client asked", story.actor("tp", Role.IG_LEAD))
    story.episode(first, when=STARTED + timedelta(days=150))


@pytest.mark.parametrize("batch_size", [2000, 3])
def test_a_rebuild_gives_exactly_the_incremental_rows(
        accord: Accord, partnership: Partnership, batch_size: int) -> None:
    story = Story(accord, partnership)
    _story_with_every_kind_of_change(story)
    reports = story.catch_up()
    incremental, seen = reports.all_rows(), reports.snapshot(COMMISSIONER)
    assert all(incremental.values())  # facts, the alert, the consent
    assert len({row[4] for row in incremental["accord_report_facts"]}) == 2  # one erased
    rebuilt = OutcomeReports(accord.app, accord.engine,
                             report_pseudonym_key(load_key_file(accord.settings.key_file)),
                             batch_size=batch_size)
    rebuilt.rebuild()
    assert rebuilt.all_rows() == incremental
    again = rebuilt.snapshot(COMMISSIONER, seen.at)
    assert (again.facts, again.alerts, again.consenting, again.sources) == (
        seen.facts, seen.alerts, seen.consenting, seen.sources)


def test_a_restarted_projection_resumes_with_the_same_policy(
        accord: Accord, partnership: Partnership) -> None:
    """The policy state (which names clients) is not stored: a new process evolves it
    again from the log, and goes on as if it had never stopped."""
    story = Story(accord, partnership)
    story.agree("tp2", {"treatment": SHARED["treatment"]}, consent=True)
    theirs = story.client("tp2")
    story.episode(theirs, "tp2")
    consent_id, _ = story.app.give_consent(
        theirs, recipient_agency=COMMISSIONER, recipient_kind=None, categories=["treatment"],
        purposes=["commissioning"], data_from=None, data_to=None, expires_at=None,
        obtained="written", by=story.actor("tp2"))
    assert story.in_treatment() == 1
    restarted = OutcomeReports(accord.app, accord.engine, story.reports.key)
    story.app.withdraw_consent(theirs, consent_id, "no longer", story.actor("tp2"))
    restarted.catch_up()
    assert restarted.snapshot(COMMISSIONER).facts == ()


def test_facts_read_from_the_stored_json_are_the_librarys_decoding(
        accord: Accord, partnership: Partnership) -> None:
    """The read model reads facts from the event store's JSON (and skips those it never
    keeps by their type there): each must be exactly what the library decodes."""
    story = Story(accord, partnership)
    client = story.client()
    story.episode(client, ended="completed_drug_free")
    story.fact(client, "demographics_recorded", {"sex": "other", "ethnicity": "Z"})
    story.fact(client, "treatment_outcomes_profile", {
        "stage": "start", "substance_use": {"alcohol": 3}, "injecting": {},
        "crime": {"other_theft": True},
        "health_and_social_functioning": {"psychological_health": 1, "physical_health": 2,
                                          "quality_of_life": 3}},
        datetime(2025, 6, 3, 10, 11, 12, 131415, tzinfo=UTC))
    story.fact(client, "clinical_note_added",
               {"text": 'He said "fact_type":"discharged" \\ and left. Ünïcödé ✓'})
    story.fact(client, "discharged", {"reason": "completed_drug_free"})
    found = accord.app.recorder.select_notifications(
        start=0, limit=1000, topics=[FACT_RECORDED], inclusive_of_start=False)
    assert len(found) == 6  # the episode's start and end, and four more
    for notification in found:
        library = accord.app.mapper.to_domain_event(notification)
        assert isinstance(library, Client.FactRecorded)
        read = _read_recorded(notification)
        assert read is not None
        assert (read.originator_id, read.fact_type, read.category, read.controller,
                read.occurred_at, read.data) == (
            library.originator_id, library.fact_type, library.category, library.controller,
            library.occurred_at, library.data)
        assert read.data_json is not None and json.loads(read.data_json) == library.data
        assert _skipped(notification) is (library.fact_type not in REPORTED_TYPES)
