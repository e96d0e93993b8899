"""Correcting the record, on both databases: every read model follows a fact's amendment
or retraction by its controller from the correction's log position on.

* the agency views show the fact as amended (its consent-based rows follow a corrected
  time), and a retracted fact in no view; a rebuild gives exactly the incremental rows;
* the per-agency feeds say what a partner now sees (``fact.amended``, ``fact.left``);
* a point-in-time replay before the correction shows the original, after it the
  corrected fact and the correction (when, by whom, why);
* the outcome reports count the corrected fact, and no retracted one, also when their
  rows are derived again from the log (and after a rebuild);
* the safeguarding rules judge later facts on the corrected record: an amendment that
  makes a condition hold raises its alert, a retraction raises nothing, and alerts
  already raised stay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import inspect, text

from api.bootstrap import Accord, bootstrap
from domain.agencies import AgencyKind, Role
from domain.agreements import AgreementTerms
from domain.identity import Identity
from infra.keys import load_key_file
from infra.relay import Relay
from infra.settings import Settings
from projections.replay import PointInTime
from projections.reports.projection import OutcomeReports
from projections.safeguarding import SafeguardingRules
from projections.views import AgencyViews
from tests.builders import (
    COMMISSIONER,
    RAISED,
    SHARED,
    VALID_IDENTITY,
    Partnership,
    Story,
    childrens_terms,
    enrol_partnership,
    events,
    housing_terms,
    police_terms,
)

JANUARY = datetime(2026, 1, 5, 9, tzinfo=UTC)
REASON = "entered against the wrong client in error"


def actor(partnership: Partnership, agency: str, role: Role = Role.PRACTITIONER) -> Any:
    return partnership.accord.app.authenticate(partnership.token(agency, role))


def in_force(partnership: Partnership, terms: dict[str, Any], controller: str = "tp") -> UUID:
    app = partnership.accord.app
    proposed = app.propose_agreement(AgreementTerms.model_validate(terms),
                                     actor(partnership, controller, Role.IG_LEAD))
    for party in (controller, terms["recipient"]):
        app.approve_agreement(UUID(str(proposed.id)), actor(partnership, party, Role.IG_LEAD))
    return UUID(str(proposed.id))


def client_of_tp(partnership: Partnership, seq: int = 0) -> UUID:
    identity = Identity.model_validate(
        {**VALID_IDENTITY, "nhs_number": ("9434765919", "4010232137", "9876543210")[seq]})
    client_id, _ = partnership.accord.app.register_client(identity, actor(partnership, "tp"))
    return client_id


def record(partnership: Partnership, client_id: UUID, type_name: str, data: dict[str, Any],
           when: datetime = JANUARY, agency: str = "tp") -> int:
    return partnership.accord.app.record_fact(client_id, type_name, data, when,
                                              actor(partnership, agency))


# -- the feed, without a broker ----------------------------------------------------------------


@dataclass
class Sent:
    value: bytes

    def get(self, timeout: float | None = None) -> None:
        return None


@dataclass
class Producer:
    """Stands in for kafka-python's producer: keeps what was sent, acknowledges at once."""

    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Any) -> Sent:
        self.sent.append((topic, json.loads(value)))
        return Sent(value)

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        return None


def feed_of(accord: Accord, producer: Producer) -> Relay:
    return Relay(accord.app, accord.engine, "unused:9092",
                 load_key_file(accord.settings.key_file), producer_factory=lambda: producer)


def test_views_feeds_and_replay_follow_a_correction(accord: Accord,
                                                    partnership: Partnership) -> None:
    app = accord.app
    views = accord.find(AgencyViews)
    in_force(partnership, housing_terms("police"))  # housing status, no consent needed
    in_force(partnership, police_terms())  # engagement, with consent
    client_id = client_of_tp(partnership)
    housing = record(partnership, client_id, "housing_status_recorded", {"status": "settled"})
    attended = record(partnership, client_id, "appointment_attended",
                      {"appointment": "keywork"})
    missed = record(partnership, client_id, "appointment_missed", {"appointment": "prescriber"})
    app.give_consent(client_id, recipient_agency="police", recipient_kind=None,
                     categories=["treatment"], purposes=["offender_management"],
                     data_from=date(2026, 1, 1), data_to=date(2026, 1, 31), expires_at=None,
                     obtained="written", by=actor(partnership, "tp"))
    producer = Producer()
    relay = feed_of(accord, producer)
    accord.catch_up()
    relay.drain()
    producer.sent.clear()

    def police(purpose: str) -> dict[int, Any]:
        return {i.position: i for i in views.items("police", client_id, purpose)}

    assert set(police("offender_management")) == {attended, missed}
    assert police("care_coordination")[housing].data == {"status": "settled"}

    # The provider corrects the housing status, moves the attendance out of January (so
    # out of the consent's data period), and retracts the missed appointment.
    tp = actor(partnership, "tp")
    amended = app.amend_fact(client_id, housing, {"status": "temporary"}, None, REASON, tp)
    moved = app.amend_fact(client_id, attended, {"appointment": "group"},
                           datetime(2025, 12, 20, 9, tzinfo=UTC), REASON, tp)
    retracted = app.retract_fact(client_id, missed, REASON, tp)
    accord.catch_up()

    shown = police("care_coordination")[housing]
    assert (shown.data, shown.amended) == ({"status": "temporary"}, amended)
    assert police("offender_management") == {}  # moved out of the period; retracted
    own = {i.position: i for i in views.items("tp", client_id, "direct_care")}
    assert own[attended].occurred_at == datetime(2025, 12, 20, 9, tzinfo=UTC)
    assert (own[attended].data, own[attended].amended) == ({"appointment": "group"}, moved)
    assert missed not in own  # nobody sees a retracted fact, its controller included

    relay.drain()
    feed = [value for topic, value in producer.sent if topic.endswith(".feed.police")]
    producer.sent.clear()
    assert {(v["kind"], v["position"], v["cause"]) for v in feed} == {
        ("fact.amended", housing, amended), ("fact.left", attended, moved),
        ("fact.left", missed, retracted)}
    [sent] = [v for v in feed if v["kind"] == "fact.amended"]
    assert [s["data"] for s in sent["shown"]] == [{"status": "temporary"}]
    assert sent["amended"] == amended
    assert REASON not in json.dumps(producer.sent)  # the reason stays behind the API

    # Rows derived again later (a wider consent) follow the corrections too: the moved
    # attendance is covered again, the retracted fact is not.
    app.give_consent(client_id, recipient_agency="police", recipient_kind=None,
                     categories=["treatment"], purposes=["offender_management"],
                     data_from=None, data_to=None, expires_at=None, obtained="written",
                     by=tp)
    accord.catch_up()
    assert set(police("offender_management")) == {attended}
    assert police("offender_management")[attended].data == {"appointment": "group"}

    # A rebuild from the log gives exactly what the corrections left.
    incremental = views.all_rows()
    rebuilt = AgencyViews(app, accord.engine, batch_size=3)
    rebuilt.rebuild()
    assert rebuilt.all_rows() == incremental

    # Replay: before the amendment the original, after it the amended fact and who,
    # when and why; after the retraction the fact is withheld, saying so.
    replay = PointInTime(app)
    before = replay.replay("police", AgencyKind.POLICE, client_id, "care_coordination",
                           position=amended - 1)
    [original] = [f for f in before.permitted if f.position == housing]
    assert (original.data, original.amendments) == ({"status": "settled"}, ())
    after = replay.replay("police", AgencyKind.POLICE, client_id, "care_coordination")
    [corrected] = [f for f in after.permitted if f.position == housing]
    assert corrected.data == {"status": "temporary"}
    [amendment] = corrected.amendments
    assert (amendment.kind, amendment.position, amendment.by, amendment.reason) == (
        "amended", amended, str(tp.principal_id), REASON)
    earlier = replay.replay("police", AgencyKind.POLICE, client_id, "offender_management",
                            position=retracted - 1)
    assert missed in {f.position for f in earlier.permitted}
    later = replay.replay("police", AgencyKind.POLICE, client_id, "offender_management")
    [gone] = [f for f in later.withheld if f.position == missed]
    assert gone.retraction is not None and gone.retraction.position == retracted
    assert gone.data is None and "retracted by tp" in gone.reasons[0]
    # By time as well as by position: a moment before the retraction shows the fact.
    by_time = replay.replay("police", AgencyKind.POLICE, client_id, "offender_management",
                            at=gone.retraction.at - timedelta(microseconds=1))
    assert missed in {f.position for f in by_time.permitted}
    # At the head of the log the replay equals the live view.
    for purpose in ("care_coordination", "offender_management"):
        now = datetime.now(UTC)
        live = views.items("police", client_id, purpose, now)
        replayed = replay.replay("police", AgencyKind.POLICE, client_id, purpose, at=now)
        assert [(f.position, f.data) for f in replayed.permitted] == [
            (i.position, i.data) for i in live]


def test_reports_count_the_corrected_record(accord: Accord, partnership: Partnership) -> None:
    story = Story(accord, partnership)
    agreement = story.agree("tp", SHARED)
    kept, dropped = story.client(), story.client()
    started = story.fact(kept, "treatment_episode_started",
                         {"modality": "psychosocial", "substances": ["alcohol"]})
    wrong = story.fact(dropped, "treatment_episode_started",
                       {"modality": "psychosocial", "substances": ["alcohol"]})
    assert story.in_treatment() == 2

    def episodes() -> dict[str, dict[str, Any]]:
        snapshot = story.catch_up().snapshot(COMMISSIONER)
        return {f"{f.client}:{f.fact_type}": {**f.data, "on": f.occurred_at.date()}
                for f in snapshot.facts}

    pseudonym = story.reports.pseudonym
    tp = story.actor("tp")
    # The episode started for opiates, two months earlier (the client was 39 then).
    story.app.amend_fact(kept, started, {"modality": "psychosocial", "substances": ["opioids"]},
                         datetime(2025, 4, 1, 9, tzinfo=UTC), REASON, tp)
    shown = episodes()[f"{pseudonym(kept)}:treatment_episode_started"]
    assert shown == {"modality": "psychosocial", "substances": ["opioids"],
                     "age_band": "35-39", "on": date(2025, 4, 1)}
    # The other client's episode was recorded against the wrong person.
    story.app.retract_fact(dropped, wrong, REASON, tp)
    assert story.in_treatment() == 1
    assert f"{pseudonym(dropped)}:treatment_episode_started" not in episodes()

    # Rows derived again from the log take each fact as corrected: the agreement revoked
    # and a new one in force derive the commissioner's rows from the whole log.
    story.app.revoke_agreement(agreement, "replaced by new terms",
                               story.actor("tp", Role.IG_LEAD))
    assert story.in_treatment() == 0
    story.agree("tp", SHARED)
    assert story.in_treatment() == 1
    assert episodes()[f"{pseudonym(kept)}:treatment_episode_started"] == shown
    incremental = story.reports.all_rows()
    rebuilt = OutcomeReports(story.app, accord.engine, story.reports.key, batch_size=2)
    rebuilt.rebuild()
    assert rebuilt.all_rows() == incremental


def test_reports_derive_a_consenting_clients_rows_as_corrected(
        accord: Accord, partnership: Partnership) -> None:
    story = Story(accord, partnership)
    story.agree("tp", SHARED, consent=True)
    client = story.client()
    started = story.fact(client, "treatment_episode_started",
                         {"modality": "psychosocial", "substances": ["alcohol"]})
    ended = story.fact(client, "treatment_episode_ended",
                       {"modality": "psychosocial", "discharge_reason": "dropped_out"},
                       datetime(2025, 7, 1, 9, tzinfo=UTC))
    tp = story.actor("tp")
    story.app.amend_fact(client, started, {"modality": "psychosocial",
                                           "substances": ["cannabis"]}, None, REASON, tp)
    story.app.retract_fact(client, ended, REASON, tp)
    assert story.in_treatment() == 0  # no consent yet
    # The consent derives the client's rows from its stream, as corrected.
    story.app.give_consent(client, recipient_agency=COMMISSIONER, recipient_kind=None,
                           categories=list(SHARED), purposes=["commissioning"],
                           data_from=None, data_to=None, expires_at=None,
                           obtained="written", by=tp)
    snapshot = story.catch_up().snapshot(COMMISSIONER)
    assert [(f.fact_type, f.data.get("substances")) for f in snapshot.facts] == [
        ("treatment_episode_started", ["cannabis"])]
    assert story.in_treatment() == 1  # the ending was retracted: still in treatment


def test_the_rules_judge_the_corrected_record(accord: Accord,
                                              partnership: Partnership) -> None:
    app = accord.app
    in_force(partnership, childrens_terms())
    tp = actor(partnership, "tp")
    now = datetime.now(UTC).replace(microsecond=0)
    alerted = client_of_tp(partnership, 0)
    record(partnership, alerted, "treatment_episode_started",
           {"modality": "pharmacological", "substances": ["opioids"]}, now - timedelta(days=9))
    household = record(partnership, alerted, "household_updated",
                       {"children_in_household": 0, "parental_responsibility": False,
                        "pregnant": False}, now - timedelta(days=8))
    accord.catch_up()
    assert events(accord, RAISED) == []

    # The household record was wrong: she is pregnant. The amendment raises the alert
    # that recording it right would have raised.
    amendment = app.amend_fact(alerted, household,
                               {"children_in_household": 0, "parental_responsibility": False,
                                "pregnant": True, "due_date": "2026-09-01"}, None, REASON, tp)
    accord.catch_up()
    [raised] = [e for e in events(accord, RAISED) if e.recipient == "childrens"]
    assert (raised.rule, raised.trigger_position, raised.client_id) == (
        "pregnancy_in_treatment", amendment, alerted)

    # Retracting the record the alert rests on raises nothing, and takes nothing away.
    app.retract_fact(alerted, household, REASON, tp)
    accord.catch_up()
    assert [e.originator_id for e in events(accord, RAISED)] == [raised.originator_id]
    # The rules no longer count it: a pregnancy recorded now is a new situation.
    again = record(partnership, alerted, "household_updated",
                   {"children_in_household": 0, "parental_responsibility": False,
                    "pregnant": True}, now - timedelta(days=1))
    accord.catch_up()
    assert [e.trigger_position for e in events(accord, RAISED)
            if e.recipient == "childrens"] == [amendment, again]

    # A retraction that would make a condition hold (the later record said "not
    # pregnant") raises nothing: only what is recorded or amended triggers a rule.
    quiet = client_of_tp(partnership, 1)
    record(partnership, quiet, "household_updated",
           {"children_in_household": 0, "parental_responsibility": False, "pregnant": True},
           now - timedelta(days=6))
    not_pregnant = record(partnership, quiet, "household_updated",
                          {"children_in_household": 0, "parental_responsibility": False,
                           "pregnant": False}, now - timedelta(days=5))
    record(partnership, quiet, "treatment_episode_started",
           {"modality": "pharmacological", "substances": ["alcohol"]}, now - timedelta(days=4))
    app.retract_fact(quiet, not_pregnant, REASON, tp)
    accord.catch_up()
    assert [e for e in events(accord, RAISED) if e.client_id == quiet] == []

    # Re-judging the whole log from scratch comes to the same alerts, raising none twice.
    raised_so_far = len(events(accord, RAISED))
    rules = SafeguardingRules(app, accord.engine, batch_size=3)
    rules.rebuild()
    assert len(events(accord, RAISED)) == raised_so_far


def test_a_copy_of_the_facts_written_before_corrections_gains_their_columns(
        settings: Settings) -> None:
    """The agency views' copy of the facts, written before facts could be corrected,
    lacks the columns that say so; accord adds them when it starts (empty, which is right
    for a log that holds no correction yet), keeps every row, and corrections then work."""
    accord = bootstrap(settings)
    try:
        partnership = enrol_partnership(accord)
        client_id = client_of_tp(partnership)
        housing = record(partnership, client_id, "housing_status_recorded",
                         {"status": "settled"})
        accord.catch_up()
        before = accord.views.all_rows()
        with accord.engine.begin() as conn:
            for column in ("amended", "retracted"):
                conn.execute(text(f"ALTER TABLE accord_facts DROP COLUMN {column}"))
    finally:
        accord.close()

    reopened = bootstrap(settings)
    try:
        columns = {c["name"] for c in inspect(reopened.engine).get_columns("accord_facts")}
        assert {"amended", "retracted"} <= columns
        assert reopened.views.all_rows() == before
        partnership.accord = reopened
        amended = reopened.app.amend_fact(client_id, housing, {"status": "temporary"}, None,
                                          REASON, actor(partnership, "tp"))
        reopened.catch_up()
        [item] = [i for i in reopened.views.items("tp", client_id, "care_coordination")
                  if i.position == housing]
        assert (item.data, item.amended) == ({"status": "temporary"}, amended)
    finally:
        reopened.close()
