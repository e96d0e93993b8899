"""The safeguarding rules, run as a tracked projection that raises ``Alert`` aggregates.

It follows a topic-filtered read of the log: client facts, household links, agencies and
agreements. It keeps what the rules need in its own tables (``accord_rule_facts``: the
rule-relevant facts of every client; ``accord_rule_households``: who lives with whom;
``accord_rule_state``: agency kinds and agreement drafts), written with its tracked
position in one transaction, so a restart resumes where the last commit left off without
replaying the log. For each triggering event it builds the client's (or household's)
``Situation`` and asks the pure rules of ``domain.rules`` what it finds.

For each finding and each agency of a recipient kind, the recipient must have, from every
controller of the facts the finding rests on, an agreement in force (on the day the
trigger was recorded) that names the rule's purpose and has a legal-duty basis
(``terms.lawful_basis.legal_duty``). Then an ``Alert`` is raised, its ``basis`` naming
those agreements; otherwise an ``AlertWithheld`` records the evaluation and why (and
when no agency of the recipient kind is in the partnership, the recipient is the kind).
A recipient that recorded every one of those facts itself is not alerted: it holds them.

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
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Notification
from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from consent.state import AgreementDraft
from domain.agencies import Agency, AgencyKind
from domain.agreements import Agreement, AgreementTerms
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
from infra.schema import rule_facts, rule_households, rule_state
from infra.wiring import Accord
from projections.alerts import AlertInbox
from projections.follower import LogFollower

TOPICS = [get_topic(t) for t in (
    Client.FactRecorded, Household.Linked, Household.MemberAdded, Agency.Registered,
    Agreement.Proposed, Agreement.Amended, Agreement.CameIntoForce, Agreement.Revoked,
)]


@dataclass
class _Policy:
    """Agency kinds and agreement drafts, as of the projection's position."""

    kinds: dict[str, AgencyKind] = field(default_factory=dict)
    drafts: dict[UUID, AgreementDraft] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)

    def agencies_of(self, kind: AgencyKind) -> list[str]:
        return sorted(slug for slug, k in self.kinds.items() if k is kind)

    def duty(self, controller: str, recipient: str, purpose: str,
             day: date) -> dict[str, Any] | None:
        """The agreement in force from ``controller`` to ``recipient`` on ``day`` that names
        ``purpose`` with a legal-duty basis, if any (the first by id, for determinism)."""
        for agreement_id in sorted(self.drafts):
            draft = self.drafts[agreement_id]
            if (draft.controller, draft.recipient) != (controller, recipient) or \
                    draft.revoked or draft.in_force is None:
                continue
            terms = AgreementTerms.model_validate(draft.versions[draft.in_force - 1])
            duty = terms.lawful_basis.legal_duty
            if duty is None or purpose not in terms.purposes or day < terms.valid_from or (
                    terms.valid_to is not None and day > terms.valid_to):
                continue
            return {"agreement_id": str(agreement_id), "agreement_version": draft.in_force,
                    "controller": controller, "legal_duty": duty.value}
        return None


class _Working:
    """The state one batch reads, loaded on demand, with the batch's own changes on top."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.facts: dict[UUID, list[RuleFact]] = {}
        self.households: dict[UUID, UUID | None] = {}
        self.members: dict[UUID, set[UUID]] = {}
        self.fact_rows: list[dict[str, Any]] = []
        self.household_rows: list[dict[str, Any]] = []

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
        self.fact_rows.append({
            "position": fact.position, "client_id": fact.client_id.hex,
            "fact_type": fact.fact_type, "controller": fact.controller,
            "occurred_at": fact.occurred_at, "data": json.dumps(dict(fact.data)),
        })

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
        self._policy: _Policy | None = None

    def _forget(self) -> None:
        self._policy = None

    def _process(self, batch: Sequence[Notification], upto: int) -> int:
        try:
            # 1. Evaluate, reading the committed state (no write lock is held)...
            with self.engine.connect() as conn:
                policy = self._policy or self._load_policy(conn)
                work = _Working(conn)
                outcomes: list[Aggregate] = []
                for notification in batch:
                    event = self.app.mapper.to_domain_event(notification)
                    outcomes.extend(self._apply(work, policy, event, notification.id))
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
                _insert(conn, rule_facts, work.fact_rows, "position")
                _upsert(conn, rule_households, work.household_rows, "client_id")
                _upsert(conn, rule_state, [
                    {"key": key, "value": _policy_value(policy, key)}
                    for key in sorted(policy.changed)], "key")
            policy.changed.clear()
            self._policy = policy
        except BaseException:
            self._policy = None  # may be ahead of the committed rows
            raise
        self.tracking.committed()
        return len(batch)

    def _apply(self, work: _Working, policy: _Policy, event: Any,
               position: int) -> list[Aggregate]:
        if isinstance(event, Client.FactRecorded):
            if event.fact_type not in RELEVANT_TYPES:
                return []
            fact = RuleFact(position, event.originator_id, event.fact_type, event.controller,
                            _aware(event.occurred_at), event.data)
            work.add_fact(fact)
            situation = work.situation(fact.client_id)
            findings = evaluate_fact(fact, situation, self.config)
            return self._outcomes(findings, situation, position, event.timestamp, policy)
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
            findings = newly_holding(now, before, _aware(event.timestamp), self.config)
            return self._outcomes(findings, now, position, event.timestamp, policy)
        if isinstance(event, Agency.Registered):
            policy.kinds[event.slug] = AgencyKind(event.kind)
            policy.changed.add(f"agency:{event.slug}")
        elif isinstance(event, Agreement.Proposed):
            policy.drafts[event.originator_id] = AgreementDraft(
                event.controller, str(event.terms["recipient"]), [event.terms])
        elif isinstance(event, Agreement.Amended):
            policy.drafts[event.originator_id].versions.append(event.terms)
        elif isinstance(event, Agreement.CameIntoForce):
            policy.drafts[event.originator_id].in_force = event.version
        elif isinstance(event, Agreement.Revoked):
            policy.drafts[event.originator_id].revoked = True
        if isinstance(event, Agreement.Event):
            policy.changed.add(f"agreement:{event.originator_id.hex}")
        return []

    def _outcomes(self, findings: list[Finding], situation: Situation, position: int,
                  recorded_at: datetime, policy: _Policy) -> list[Aggregate]:
        """An alert for each recipient with a legal-duty basis; a withheld evaluation for
        each without."""
        result: list[Aggregate] = []
        day = _aware(recorded_at).date()
        for finding in findings:
            for kind in finding.recipients:
                recipients = policy.agencies_of(kind)
                if not recipients:
                    result.append(AlertWithheld(
                        rule=finding.rule, recipient=kind.value, client_id=finding.client_id,
                        household_id=situation.household_id, trigger_position=position,
                        reason=f"no agency of kind {kind.value} is in the partnership"))
                for recipient in recipients:
                    outcome = self._outcome(finding, situation, position, recipient, day,
                                            policy)
                    if outcome is not None:
                        result.append(outcome)
        return result

    def _outcome(self, finding: Finding, situation: Situation, position: int,
                 recipient: str, day: date, policy: _Policy) -> Aggregate | None:
        controllers = sorted(finding.controllers - {recipient})
        if not controllers:
            return None  # the recipient recorded it all itself
        agreements = [policy.duty(c, recipient, finding.purpose.value, day)
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

    @staticmethod
    def _load_policy(conn: Connection) -> _Policy:
        policy = _Policy()
        for key, value in conn.execute(select(rule_state.c.key, rule_state.c.value)):
            kind, _, name = key.partition(":")
            if kind == "agency":
                policy.kinds[name] = AgencyKind(json.loads(value))
            else:
                policy.drafts[UUID(hex=name)] = AgreementDraft(**json.loads(value))
        return policy


def _policy_value(policy: _Policy, key: str) -> str:
    kind, _, name = key.partition(":")
    if kind == "agency":
        return json.dumps(policy.kinds[name].value)
    draft = policy.drafts[UUID(hex=name)]
    return json.dumps(draft.__dict__, default=str)


def _fact(row: Any) -> RuleFact:
    return RuleFact(row.position, UUID(hex=row.client_id), row.fact_type, row.controller,
                    _aware(row.occurred_at), json.loads(row.data))


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _insert(conn: Connection, table: Any, rows: list[dict[str, Any]], key: str) -> None:
    """Inserts rows; one already there (a re-run) is left as it is."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(table).on_conflict_do_nothing(index_elements=[key]), rows)


def _upsert(conn: Connection, table: Any, rows: list[dict[str, Any]], key: str) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for row in rows:
        statement = dialect.insert(table).values(**row)
        conn.execute(statement.on_conflict_do_update(
            index_elements=[key], set_={k: v for k, v in row.items() if k != key}))


def safeguarding_projections(accord: Accord, batch_size: int = 2000) -> list[Any]:
    """The rules and the alert inbox they feed, configured from settings (in that order,
    so an alert raised in one round is indexed in the same round)."""
    settings = accord.settings
    rules = SafeguardingRules(
        accord.app, accord.engine, batch_size=batch_size,
        config=RuleConfig(toxic_trio_window=timedelta(days=settings.toxic_trio_days)),
        acknowledge_within=timedelta(hours=settings.alert_ack_hours),
    )
    return [rules, AlertInbox(accord.app, accord.engine, batch_size=batch_size)]
