"""Safeguarding rules: small pure functions over a client's or a household's situation.

A ``Situation`` is what the rules know of one household (or of one client who is in no
household) at one log position: its members and their rule-relevant facts, whoever
recorded them. Two kinds of rule:

* **fact rules** fire on one triggering fact (a safeguarding concern about a child, a
  safeguarding-adults concern): ``rule(fact, situation) -> list[Finding]``;
* **condition rules** describe a state (the toxic trio, a parent disengaging, pregnancy in
  treatment, concerns from several agencies): ``rule(situation, at, config) ->
  list[Finding]``. The runner (``projections.safeguarding``) fires a condition when it
  holds after the triggering event and did not hold before it, for the same ``key``, so
  one situation raises one alert rather than one per later fact. Windows are measured
  back from ``at`` (the trigger's ``occurred_at``, or the time a household was linked),
  both ends inclusive: a fact exactly ``window`` before ``at`` counts.

A finding names the rule, the client, the recipients (agency kinds) and the purpose
under which they must have a legal-duty basis, the severity, a one-line reason without
clinical detail (Caldicott: no substances, diagnoses or summaries), and the facts it
rests on: every controller of those facts needs an agreement with the recipient, or
no alert is raised (``projections.safeguarding`` records that it was withheld).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from domain.agencies import AgencyKind
from domain.alerts import Severity
from domain.vocabulary import Purpose

CHILD_CONCERN = "child_safeguarding_concern_raised"
ADULT_CONCERN = "adult_safeguarding_concern_raised"
HOUSEHOLD = "household_updated"
DA_TYPES = frozenset({"domestic_abuse_risk_recorded", "domestic_abuse_incident_recorded"})
MENTAL_HEALTH = "mental_health_concern_recorded"
MISSED = "appointment_missed"
EPISODE_STARTED = "treatment_episode_started"
EPISODE_ENDED = "treatment_episode_ended"
DISCHARGED = "discharged"
#: Concerns counted by the multi-agency rule.
CONCERN_TYPES = frozenset({CHILD_CONCERN, ADULT_CONCERN, MENTAL_HEALTH, *DA_TYPES})
#: Every fact type any rule reads; the runner keeps only these.
RELEVANT_TYPES = frozenset({
    *CONCERN_TYPES, HOUSEHOLD, MISSED, EPISODE_STARTED, EPISODE_ENDED, DISCHARGED,
    "referral_received", "assessment_completed",
})
PREGNANCY_SUBSTANCES = frozenset({"opioids", "alcohol"})
SERIOUS_CHILD_CONCERNS = frozenset({"physical_abuse", "sexual_abuse", "exploitation"})


class RuleName(StrEnum):
    """The rules, by the name each finding (and so each alert) carries."""

    CHILD_SAFEGUARDING_CONCERN = "child_safeguarding_concern"
    ADULT_SAFEGUARDING_CONCERN = "adult_safeguarding_concern"
    TOXIC_TRIO = "toxic_trio"
    PARENT_DISENGAGING = "parent_disengaging"
    PREGNANCY_IN_TREATMENT = "pregnancy_in_treatment"
    MULTI_AGENCY_CONCERNS = "multi_agency_concerns"
    #: Not a rule over facts: another agency's interest in a client an agency flagged,
    #: told to that agency by ``projections.flags``.
    INTEREST_IN_FLAGGED_CLIENT = "interest_in_flagged_client"


@dataclass(frozen=True)
class RuleConfig:
    """The rules' thresholds (``ACCORD_TOXIC_TRIO_DAYS`` sets the toxic-trio window)."""

    toxic_trio_window: timedelta = timedelta(days=90)
    missed_appointments: int = 3
    disengagement_window: timedelta = timedelta(days=28)
    multi_agency_window: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class RuleFact:
    position: int
    client_id: UUID
    fact_type: str
    controller: str
    occurred_at: datetime
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Situation:
    household_id: UUID | None
    members: tuple[UUID, ...]
    facts: tuple[RuleFact, ...]  # in log order

    def before(self, position: int) -> Situation:
        """The same situation without the facts at or after ``position``."""
        return Situation(self.household_id, self.members,
                         tuple(f for f in self.facts if f.position < position))

    def of(self, client_id: UUID) -> list[RuleFact]:
        return [f for f in self.facts if f.client_id == client_id]


@dataclass(frozen=True)
class Finding:
    rule: str
    key: str  # what "the same situation" means for this rule: a client, or the household
    client_id: UUID
    recipients: tuple[AgencyKind, ...]
    purpose: Purpose
    severity: Severity
    reason: str
    facts: tuple[RuleFact, ...] = field(default=())

    @property
    def controllers(self) -> frozenset[str]:
        return frozenset(f.controller for f in self.facts)


# -- what the rules ask of a situation ---------------------------------------------------

def within(facts: Iterable[RuleFact], at: datetime, window: timedelta) -> list[RuleFact]:
    """Facts that occurred from ``window`` before ``at`` up to ``at``, both inclusive."""
    return [f for f in facts if at - window <= f.occurred_at <= at]


def latest(facts: Iterable[RuleFact], *types: str) -> RuleFact | None:
    found = None
    for fact in facts:
        if fact.fact_type in types:
            found = fact
    return found


def children_fact(situation: Situation) -> RuleFact | None:
    """A member's latest household record that says children live in the household."""
    for member in situation.members:
        record = latest(situation.of(member), HOUSEHOLD)
        if record is not None and int(record.data.get("children_in_household", 0)) > 0:
            return record
    return None


def episode(facts: Iterable[RuleFact]) -> RuleFact | None:
    """The start of the client's current treatment episode, if one is open."""
    last = latest(facts, EPISODE_STARTED, EPISODE_ENDED, DISCHARGED)
    return last if last is not None and last.fact_type == EPISODE_STARTED else None


# -- fact rules -------------------------------------------------------------------------

def child_concern(fact: RuleFact, situation: Situation) -> list[Finding]:
    """A safeguarding concern about a child, raised by any agency → children's services."""
    if fact.fact_type != CHILD_CONCERN:
        return []
    serious = fact.data.get("concern") in SERIOUS_CHILD_CONCERNS
    return [Finding(
        RuleName.CHILD_SAFEGUARDING_CONCERN.value, f"client:{fact.client_id}", fact.client_id,
        (AgencyKind.CHILDRENS_SERVICES,), Purpose.SAFEGUARDING_CHILDREN,
        Severity.HIGH if serious else Severity.MEDIUM,
        f"A safeguarding concern about a child was raised by {fact.controller}.", (fact,),
    )]


def adult_concern(fact: RuleFact, situation: Situation) -> list[Finding]:
    """A safeguarding-adults concern (Care Act 2014 s.42) → adult social care."""
    if fact.fact_type != ADULT_CONCERN:
        return []
    return [Finding(
        RuleName.ADULT_SAFEGUARDING_CONCERN.value, f"client:{fact.client_id}", fact.client_id,
        (AgencyKind.ADULT_SOCIAL_CARE,), Purpose.SAFEGUARDING_ADULTS, Severity.MEDIUM,
        f"A safeguarding-adults concern (Care Act s.42) was raised by {fact.controller}.",
        (fact,),
    )]


FACT_RULES: tuple[Callable[[RuleFact, Situation], list[Finding]], ...] = (
    child_concern, adult_concern,
)


# -- condition rules ----------------------------------------------------------------------

def toxic_trio(situation: Situation, at: datetime, config: RuleConfig) -> list[Finding]:
    """Cumulative harm: children in the household, a member in treatment for substance
    misuse, domestic abuse and a parental mental health concern, the last two within
    ``config.toxic_trio_window`` → children's services, high severity."""
    children = children_fact(situation)
    if children is None:
        return []
    treated = next((e for m in situation.members if (e := episode(situation.of(m)))), None)
    recent = within(situation.facts, at, config.toxic_trio_window)
    abuse = next((f for f in recent if f.fact_type in DA_TYPES), None)
    mental = next((f for f in recent if f.fact_type == MENTAL_HEALTH), None)
    if treated is None or abuse is None or mental is None:
        return []
    return [Finding(
        RuleName.TOXIC_TRIO.value, "household", treated.client_id, (AgencyKind.CHILDRENS_SERVICES,),
        Purpose.SAFEGUARDING_CHILDREN, Severity.HIGH,
        "Cumulative harm: children in the household with parental substance misuse in "
        "treatment, domestic abuse and a mental health concern.",
        (children, treated, abuse, mental),
    )]


def disengagement(situation: Situation, at: datetime, config: RuleConfig) -> list[Finding]:
    """A parent with children in the household disengaging from treatment: at least
    ``config.missed_appointments`` missed appointments within
    ``config.disengagement_window``, or discharged (or an episode ended) as dropped out
    within that window → children's services."""
    children = children_fact(situation)
    if children is None:
        return []
    findings = []
    for member in situation.members:
        recent = within(situation.of(member), at, config.disengagement_window)
        missed = [f for f in recent if f.fact_type == MISSED]
        dropped = [f for f in recent if _dropped_out(f)]
        if dropped:
            reason = "A parent with children in the household dropped out of treatment."
            basis: tuple[RuleFact, ...] = (children, dropped[0])
        elif len(missed) >= config.missed_appointments:
            days = config.disengagement_window.days
            reason = (f"A parent with children in the household missed {len(missed)} "
                      f"appointments in {days} days.")
            basis = (children, *missed)
        else:
            continue
        findings.append(Finding(
            RuleName.PARENT_DISENGAGING.value, f"client:{member}", member,
            (AgencyKind.CHILDRENS_SERVICES,), Purpose.SAFEGUARDING_CHILDREN,
            Severity.MEDIUM, reason, basis,
        ))
    return findings


def _dropped_out(fact: RuleFact) -> bool:
    return (fact.fact_type == DISCHARGED and fact.data.get("reason") == "dropped_out") or (
        fact.fact_type == EPISODE_ENDED and fact.data.get("discharge_reason") == "dropped_out")


def pregnancy_in_treatment(situation: Situation, at: datetime,
                           config: RuleConfig) -> list[Finding]:
    """Pregnancy recorded (the client's latest household record) for a client in treatment
    for opioids or alcohol → children's services and primary care."""
    findings = []
    for member in situation.members:
        facts = situation.of(member)
        record = latest(facts, HOUSEHOLD)
        started = episode(facts)
        if record is None or not record.data.get("pregnant") or started is None:
            continue
        substances = set(started.data.get("substances", ()))
        if not substances & PREGNANCY_SUBSTANCES:
            continue
        findings.append(Finding(
            RuleName.PREGNANCY_IN_TREATMENT.value, f"client:{member}", member,
            (AgencyKind.CHILDRENS_SERVICES, AgencyKind.PRIMARY_CARE),
            Purpose.SAFEGUARDING_CHILDREN, Severity.MEDIUM,
            "Pregnancy recorded for a client in treatment for opioids or alcohol.",
            (record, started),
        ))
    return findings


def multi_agency_concerns(situation: Situation, at: datetime,
                          config: RuleConfig) -> list[Finding]:
    """Two or more concerns (safeguarding, domestic abuse, mental health) about the same
    household from different agencies within ``config.multi_agency_window`` →
    escalation: high severity, to children's services if children live in the household
    (or one of the concerns is about a child), else to adult social care."""
    recent = [f for f in within(situation.facts, at, config.multi_agency_window)
              if f.fact_type in CONCERN_TYPES]
    first: dict[str, RuleFact] = {}
    for fact in recent:
        first.setdefault(fact.controller, fact)
    if len(first) < 2:
        return []
    children = children_fact(situation) is not None or any(
        f.fact_type == CHILD_CONCERN for f in recent)
    kind = AgencyKind.CHILDRENS_SERVICES if children else AgencyKind.ADULT_SOCIAL_CARE
    purpose = Purpose.SAFEGUARDING_CHILDREN if children else Purpose.SAFEGUARDING_ADULTS
    days = config.multi_agency_window.days
    return [Finding(
        RuleName.MULTI_AGENCY_CONCERNS.value, "household", recent[-1].client_id, (kind,), purpose,
        Severity.HIGH,
        f"Concerns about the same household from {len(first)} agencies within {days} days.",
        tuple(first.values()),
    )]


CONDITION_RULES: tuple[Callable[[Situation, datetime, RuleConfig], list[Finding]], ...] = (
    toxic_trio, disengagement, pregnancy_in_treatment, multi_agency_concerns,
)


def evaluate_fact(fact: RuleFact, situation: Situation, config: RuleConfig) -> list[Finding]:
    """Every finding a new fact triggers: its fact rules, and each condition rule that
    holds with the fact and did not without it."""
    findings = [f for rule in FACT_RULES for f in rule(fact, situation)]
    return findings + newly_holding(situation, [situation.before(fact.position)],
                                    fact.occurred_at, config)


def newly_holding(now: Situation, before: Iterable[Situation], at: datetime,
                  config: RuleConfig) -> list[Finding]:
    """Condition findings that hold ``now`` and held in none of the ``before`` situations
    (compared by rule and key)."""
    earlier = list(before)
    found: list[Finding] = []
    for rule in CONDITION_RULES:
        held = {f.key for b in earlier for f in rule(b, at, config)}
        found.extend(f for f in rule(now, at, config) if f.key not in held)
    return found
