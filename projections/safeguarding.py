"""The safeguarding rules, run as a tracked projection that raises ``Alert`` aggregates.

It follows a topic-filtered read of the log: client facts, household links, agencies and
agreements. It keeps what the rules need in its own tables (``accord_rule_facts``: the
rule-relevant facts of every client; ``accord_rule_households``: who lives with whom;
``accord_rule_state``: agency kinds and agreement drafts), written with its tracked
position in one transaction, so a restart resumes where the last commit left off without
replaying the log. For each triggering event it builds the client's (or household's)
``Situation`` and asks the pure rules of ``domain.rules`` what it finds.

The agencies and agreements follow the log through the same ``consent.state.evolve`` as
the agency views and the replay, into a ``LogState``, stored the same way
(``AgreementDraft.to_json``, put back by ``LogState.restore``); and "an agreement in
force for this purpose on this day" is ``consent.policy.agreements_in_force``. So the
rules and the views cannot disagree about which agreement is in force.

For each finding and each agency of a recipient kind, the recipient must have, from every
controller of the facts the finding rests on, an agreement in force (on the day the
trigger was recorded) that names the rule's purpose and has a legal-duty basis
(``terms.lawful_basis.legal_duty``). Then an ``Alert`` is raised, its ``basis`` naming
those agreements; otherwise an ``AlertWithheld`` records the evaluation and why (and
when no agency of the recipient kind is in the partnership, the recipient is the kind).
A recipient that recorded every one of those facts itself is not alerted: it holds them.

A fact its controller corrects is corrected here too, from then on: an amended fact
stands in the rules' state as amended, and the amendment is a trigger like a new fact
for the condition rules (a condition the corrected fact makes hold, that did not hold
with the fact as recorded, raises its alert; a fact rule, such as a concern raised, has
fired already on the fact itself); a retracted fact leaves the state and raises
nothing. Alerts already raised stay as they are: they were right on what was recorded,
and the recipient's team closes them.

Exactly once: alerts are events in the event store and the rules' state is in read-model
tables, which one transaction cannot span on SQLite (one writer at a time). So each batch
is evaluated first (reading state, writing nothing), then its alerts are appended, then
the state and position commit together. An alert's id is derived from rule, recipient,
subject and triggering position (``domain.alerts.alert_id``), so if the process dies
between the append and the commit, the re-run raises the same ids and the event store
refuses them (IntegrityError: already raised). A ``rebuild`` therefore re-evaluates the
whole log without raising anything twice.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Notification
from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Engine, delete, select

from consent.policy import agreements_in_force
from consent.state import AgreementDraft, LogState, evolve
from domain.agencies import Agency, AgencyKind
from domain.agreements import Agreement
from domain.alerts import Alert, AlertWithheld
from domain.application import AccordApplication
from domain.clients import Client
from domain.households import Household
from domain.rules import (
    RELEVANT_TYPES,
    Finding,
    RuleConfig,
    RuleFact,
    Situation,
    evaluate_fact,
    newly_holding,
)
from infra.dialect import insert_new, to_utc, upsert
from infra.schema import rule_facts, rule_households, rule_state
from projections.alerts import AlertInbox
from projections.flags import FlaggedInterest
from projections.follower import LogFollower

TOPICS = [get_topic(t) for t in (
    Client.FactRecorded, Client.FactAmended, Client.FactRetracted, Household.Linked,
    Household.MemberAdded, Agency.Registered,
    Agreement.Proposed, Agreement.Amended, Agreement.CameIntoForce, Agreement.Revoked,
)]


def legal_duty_basis(state: LogState, controller: str, recipient: str, purpose: str,
                     at: datetime) -> dict[str, Any] | None:
    """The agreement in force from ``controller`` to ``recipient`` at ``at`` that names
    ``purpose`` with a legal-duty basis, if any (the first by id, for determinism), as an
    alert's basis names it."""
    for agreement in agreements_in_force(state, controller, recipient, purpose, at):
        duty = agreement.terms.lawful_basis.legal_duty
        if duty is not None:
            return {"agreement_id": str(agreement.agreement_id),
                    "agreement_version": agreement.version, "controller": controller,
                    "legal_duty": duty.value}
    return None


def _agencies_of(state: LogState, kind: AgencyKind) -> list[str]:
    return sorted(slug for slug, k in state.agency_kinds.items() if k is kind)


class _Working:
    """The state one batch reads, loaded on demand, with the batch's own changes on top."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.facts: dict[UUID, list[RuleFact]] = {}
        self.households: dict[UUID, UUID | None] = {}
        self.members: dict[UUID, set[UUID]] = {}
        #: Facts new in the batch, by position (amended in place if corrected in it).
        self.fact_rows: dict[int, dict[str, Any]] = {}
        #: Facts stored before the batch that it amended, or retracted.
        self.amended_rows: dict[int, dict[str, Any]] = {}
        self.retracted: set[int] = set()
        self.household_rows: list[dict[str, Any]] = []
        #: The agencies and agreements (``rule_state`` keys) the batch changed.
        self.policy_changed: set[str] = set()

    def facts_of(self, client_id: UUID) -> list[RuleFact]:
        if client_id not in self.facts:
            rows = self.conn.execute(select(rule_facts).where(
                rule_facts.c.client_id == client_id.hex).order_by(rule_facts.c.position))
            self.facts[client_id] = [_fact(row) for row in rows]
        return self.facts[client_id]

    def household_of(self, client_id: UUID) -> UUID | None:
        if client_id not in self.households:
            found = self.conn.execute(select(rule_households.c.household_id).where(
                rule_households.c.client_id == client_id.hex)).scalar()
            self.households[client_id] = UUID(hex=found) if found else None
        return self.households[client_id]

    def members_of(self, household_id: UUID) -> set[UUID]:
        if household_id not in self.members:
            self.members[household_id] = {UUID(hex=c) for c in self.conn.execute(
                select(rule_households.c.client_id).where(
                    rule_households.c.household_id == household_id.hex)).scalars()}
        return self.members[household_id]

    def add_fact(self, fact: RuleFact) -> None:
        self.facts_of(fact.client_id).append(fact)
        self.fact_rows[fact.position] = _row(fact)

    def amend(self, fact: RuleFact) -> bool:
        """The fact at ``fact.position`` stands corrected as ``fact``; False if the rules
        never kept it."""
        kept = self.facts_of(fact.client_id)
        found = [i for i, f in enumerate(kept) if f.position == fact.position]
        if not found:
            return False
        kept[found[0]] = fact
        rows = self.fact_rows if fact.position in self.fact_rows else self.amended_rows
        rows[fact.position] = _row(fact)
        return True

    def retract(self, client_id: UUID, position: int) -> None:
        """The fact at ``position`` no longer counts."""
        self.facts[client_id] = [f for f in self.facts_of(client_id) if f.position != position]
        if self.fact_rows.pop(position, None) is None:
            self.amended_rows.pop(position, None)
            self.retracted.add(position)

    def link(self, household_id: UUID, client_id: UUID) -> None:
        self.members_of(household_id).add(client_id)
        self.households[client_id] = household_id
        self.household_rows.append({"client_id": client_id.hex,
                                    "household_id": household_id.hex})

    def situation(self, client_id: UUID) -> Situation:
        household_id = self.household_of(client_id)
        members = sorted(self.members_of(household_id) if household_id else {client_id})
        facts = sorted(chain.from_iterable(self.facts_of(m) for m in members),
                       key=lambda f: f.position)
        return Situation(household_id, tuple(members), tuple(facts))


class SafeguardingRules(LogFollower):
    """The tracked projection that runs ``domain.rules`` and raises alerts.

    Its ``rebuild`` forgets the rules' state and re-evaluates the whole log; alerts
    already raised are not raised again (their ids are taken)."""

    name = "safeguarding_rules"
    doing = "running safeguarding rules"
    tables = (rule_facts, rule_households, rule_state)

    def __init__(self, app: AccordApplication, engine: Engine, *,
                 config: RuleConfig | None = None, acknowledge_within: timedelta | None = None,
                 batch_size: int = 2000) -> None:
        super().__init__(app, engine, TOPICS, batch_size)
        self.config = config or RuleConfig()
        self.acknowledge_within = acknowledge_within or timedelta(hours=4)
        #: "Now", for an alert's acknowledge-by time; tests may replace it.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._state: LogState | None = None

    def _forget(self) -> None:
        self._state = None

    def _process(self, batch: Sequence[Notification], upto: int) -> int:
        try:
            # 1. Evaluate, reading the committed state (no write lock is held)...
            with self.engine.connect() as conn:
                state = self._state or self._load_state(conn)
                work = _Working(conn)
                outcomes: list[Aggregate] = []
                for notification in batch:
                    event = self.app.mapper.to_domain_event(notification)
                    outcomes.extend(self._apply(work, state, event, notification.id))
                # A rebuild elsewhere may have emptied what was just read: judged on
                # half the facts, an alert could be missed. Start again if so.
                self._still_at_start(conn)
            # 2. ...append the alerts (a re-run after a crash finds their ids taken)...
            for aggregate in outcomes:
                # Already raised (or withheld) by an earlier run of this batch: skip it.
                with contextlib.suppress(IntegrityError):
                    self.app.save(aggregate)
            # 3. ...then commit the state with the position.
            with self.engine.begin() as conn:
                self._advance(conn, upto)
                insert_new(conn, rule_facts, list(work.fact_rows.values()), "position")
                upsert(conn, rule_facts, list(work.amended_rows.values()), "position")
                if work.retracted:
                    conn.execute(delete(rule_facts).where(
                        rule_facts.c.position.in_(sorted(work.retracted))))
                upsert(conn, rule_households, work.household_rows, "client_id")
                upsert(conn, rule_state, [
                    {"key": key, "value": _stored(state, key)}
                    for key in sorted(work.policy_changed)], "key")
            self._state = state
        except BaseException:
            self._state = None  # may be ahead of the committed rows
            raise
        self.tracking.committed()
        return len(batch)

    def _apply(self, work: _Working, state: LogState, event: Any,
               position: int) -> list[Aggregate]:
        if isinstance(event, Client.FactRecorded):
            if event.fact_type not in RELEVANT_TYPES:
                return []
            fact = RuleFact(position, event.originator_id, event.fact_type, event.controller,
                            to_utc(event.occurred_at), event.data)
            work.add_fact(fact)
            situation = work.situation(fact.client_id)
            findings = evaluate_fact(fact, situation, self.config)
            return self._outcomes(findings, situation, position, event.timestamp, state)
        if isinstance(event, Client.FactAmended):
            if event.fact_type not in RELEVANT_TYPES:
                return []
            corrected = RuleFact(event.position, event.originator_id, event.fact_type,
                                 event.controller, to_utc(event.occurred_at), event.data)
            as_recorded = work.situation(corrected.client_id)
            if not work.amend(corrected):
                return []
            as_amended = work.situation(corrected.client_id)
            findings = newly_holding(as_amended, [as_recorded], corrected.occurred_at,
                                     self.config)
            return self._outcomes(findings, as_amended, position, event.timestamp, state)
        if isinstance(event, Client.FactRetracted):
            if event.fact_type in RELEVANT_TYPES:
                work.retract(event.originator_id, event.position)
            return []
        if isinstance(event, Household.Linked | Household.MemberAdded):
            household_id = event.originator_id
            joining = event.client_ids if isinstance(event, Household.Linked) \
                else [event.client_id]
            before = [work.situation(c) for c in joining]
            existing = sorted(work.members_of(household_id))
            if existing:
                before.append(work.situation(existing[0]))
            for client_id in joining:
                work.link(household_id, client_id)
            now = work.situation(joining[0])
            findings = newly_holding(now, before, to_utc(event.timestamp), self.config)
            return self._outcomes(findings, now, position, event.timestamp, state)
        # An agency or an agreement: the policy state moves as the views' does.
        evolve(state, event, position)
        if isinstance(event, Agency.Registered):
            work.policy_changed.add(f"{_AGENCY}{event.slug}")
        elif isinstance(event, Agreement.Event):
            work.policy_changed.add(f"{_AGREEMENT}{event.originator_id.hex}")
        return []

    def _outcomes(self, findings: list[Finding], situation: Situation, position: int,
                  recorded_at: datetime, state: LogState) -> list[Aggregate]:
        """An alert for each recipient with a legal-duty basis; a withheld evaluation for
        each without."""
        result: list[Aggregate] = []
        at = to_utc(recorded_at)
        for finding in findings:
            for kind in finding.recipients:
                recipients = _agencies_of(state, kind)
                if not recipients:
                    result.append(AlertWithheld(
                        rule=finding.rule, recipient=kind.value, client_id=finding.client_id,
                        household_id=situation.household_id, trigger_position=position,
                        reason=f"no agency of kind {kind.value} is in the partnership"))
                for recipient in recipients:
                    outcome = self._outcome(finding, situation, position, recipient, at,
                                            state)
                    if outcome is not None:
                        result.append(outcome)
        return result

    def _outcome(self, finding: Finding, situation: Situation, position: int,
                 recipient: str, at: datetime, state: LogState) -> Aggregate | None:
        controllers = sorted(finding.controllers - {recipient})
        if not controllers:
            return None  # the recipient recorded it all itself
        agreements = [legal_duty_basis(state, c, recipient, finding.purpose.value, at)
                      for c in controllers]
        missing = [c for c, a in zip(controllers, agreements, strict=True) if a is None]
        if missing:
            return AlertWithheld(
                rule=finding.rule, recipient=recipient, client_id=finding.client_id,
                household_id=situation.household_id, trigger_position=position,
                reason=(f"no agreement in force from {', '.join(missing)} to {recipient} "
                        f"for {finding.purpose.value} with a legal-duty basis"))
        return Alert(
            rule=finding.rule, severity=finding.severity.value, recipient=recipient,
            client_id=finding.client_id, household_id=situation.household_id,
            reason=finding.reason,
            basis={"kind": "legal_duty", "purpose": finding.purpose.value,
                   "agreements": agreements},
            trigger_position=position,
            acknowledge_by=self.clock().astimezone(UTC) + self.acknowledge_within,
        )

    def _load_state(self, conn: Connection) -> LogState:
        state = LogState(position=self._start)
        for key, value in conn.execute(select(rule_state.c.key, rule_state.c.value)):
            if key.startswith(_AGENCY):
                state.agency_kinds[key.removeprefix(_AGENCY)] = AgencyKind(json.loads(value))
            else:
                state.restore(UUID(hex=key.removeprefix(_AGREEMENT)),
                              AgreementDraft.from_json(value))
        return state


#: The keys of ``accord_rule_state``: an agency (by slug) or an agreement (by id).
_AGENCY, _AGREEMENT = "agency:", "agreement:"


def _stored(state: LogState, key: str) -> str:
    """What ``accord_rule_state`` holds under ``key``: an agency's kind (JSON), or an
    agreement's draft as the views store it."""
    if key.startswith(_AGENCY):
        return json.dumps(state.agency_kinds[key.removeprefix(_AGENCY)].value)
    return state.drafts[UUID(hex=key.removeprefix(_AGREEMENT))].to_json()


def _row(fact: RuleFact) -> dict[str, Any]:
    """A rule fact as ``accord_rule_facts`` stores it."""
    return {"position": fact.position, "client_id": fact.client_id.hex,
            "fact_type": fact.fact_type, "controller": fact.controller,
            "occurred_at": fact.occurred_at, "data": json.dumps(dict(fact.data))}


def _fact(row: Any) -> RuleFact:
    return RuleFact(row.position, UUID(hex=row.client_id), row.fact_type, row.controller,
                    to_utc(row.occurred_at), json.loads(row.data))


def safeguarding_projections(app: AccordApplication, engine: Engine, *, toxic_trio_days: int,
                             alert_ack_hours: float, batch_size: int = 2000) -> list[Any]:
    """The rules, the notifications of interest in flagged clients
    (``projections.flags``) and the alert inbox they feed (in that order, so an alert
    raised in one round is indexed in the same round): the toxic-trio rule's window and
    the time an alert has to be acknowledged are settings (``ACCORD_TOXIC_TRIO_DAYS``,
    ``ACCORD_ALERT_ACK_HOURS``)."""
    rules = SafeguardingRules(
        app, engine, batch_size=batch_size,
        config=RuleConfig(toxic_trio_window=timedelta(days=toxic_trio_days)),
        acknowledge_within=timedelta(hours=alert_ack_hours),
    )
    interest = FlaggedInterest(app, engine, batch_size=batch_size,
                               acknowledge_within=timedelta(hours=alert_ack_hours))
    return [rules, interest, AlertInbox(app, engine, batch_size=batch_size)]
