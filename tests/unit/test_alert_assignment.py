"""Working an alert, without a database: the alert aggregate's own assignment rules, the
ISO 8601 durations the inbox filters by age with, and the rule names it filters by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.agencies import Role
from domain.alerts import Alert, AlertStatus, TeamMember
from domain.errors import Conflict, Forbidden
from domain.inputs import IsoDuration
from domain.rules import (
    ADULT_CONCERN,
    CHILD_CONCERN,
    CONDITION_RULES,
    FACT_RULES,
    RuleConfig,
    RuleFact,
    RuleName,
    Situation,
)

RECIPIENT = "childrens"
LEAD = TeamMember("lead", RECIPIENT, Role.SAFEGUARDING)
COLLEAGUE = TeamMember("colleague", RECIPIENT, Role.SAFEGUARDING)


def alert() -> Alert:
    return Alert(rule="toxic_trio", severity="high", recipient=RECIPIENT, client_id=uuid4(),
                 household_id=None, reason="r", basis={}, trigger_position=7,
                 acknowledge_by=datetime.now(UTC) + timedelta(hours=4))


def test_an_open_alert_is_assigned_and_reassigned_to_team_members() -> None:
    worked = alert()
    worked.assign(to=COLLEAGUE, by=LEAD)
    assert worked.assigned_to == "colleague"
    worked.acknowledge(by="colleague")
    worked.assign(to=LEAD, by=COLLEAGUE)  # handed back
    assert worked.assigned_to == "lead"
    assigned = [e for e in worked.collect_events() if isinstance(e, Alert.Assigned)]
    assert [(e.principal, e.by) for e in assigned] == [("colleague", "lead"),
                                                       ("lead", "colleague")]


def test_an_escalated_alert_can_still_be_assigned() -> None:
    worked = alert()
    worked.escalate(reason="not acknowledged in time")
    worked.assign(to=COLLEAGUE, by=LEAD)
    assert worked.status is AlertStatus.ESCALATED and worked.assigned_to == "colleague"


REFUSED_ASSIGNEES = {
    "another agency's officer": TeamMember("x", "police", Role.SAFEGUARDING),
    "a practitioner of the agency": TeamMember("x", RECIPIENT, Role.PRACTITIONER),
    "the agency's IG lead": TeamMember("x", RECIPIENT, Role.IG_LEAD),
    "a revoked officer": TeamMember("x", RECIPIENT, Role.SAFEGUARDING, active=False),
}
REFUSED_ASSIGNERS = {
    "another agency's officer": TeamMember("x", "police", Role.SAFEGUARDING),
    "a practitioner of the agency": TeamMember("x", RECIPIENT, Role.PRACTITIONER),
    "the CLI operator": TeamMember("operator:cli", "", Role.PARTNERSHIP_ADMIN),
}


@pytest.mark.parametrize("who", list(REFUSED_ASSIGNEES))
def test_only_an_active_safeguarding_officer_of_the_recipient_is_assigned(who: str) -> None:
    worked = alert()
    with pytest.raises(Forbidden, match="safeguarding team"):
        worked.assign(to=REFUSED_ASSIGNEES[who], by=LEAD)
    assert worked.assigned_to is None and worked.collect_events()[1:] == []


@pytest.mark.parametrize("who", list(REFUSED_ASSIGNERS))
def test_only_the_recipients_safeguarding_staff_assign(who: str) -> None:
    worked = alert()
    with pytest.raises(Forbidden, match="recipient agency's safeguarding staff"):
        worked.assign(to=COLLEAGUE, by=REFUSED_ASSIGNERS[who])
    assert worked.assigned_to is None


def test_a_closed_alert_or_the_same_assignee_again_conflicts() -> None:
    worked = alert()
    worked.assign(to=COLLEAGUE, by=LEAD)
    with pytest.raises(Conflict, match="already assigned"):
        worked.assign(to=COLLEAGUE, by=LEAD)
    worked.close(outcome="no_further_action", note="n", by="lead")
    with pytest.raises(Conflict, match="closed"):
        worked.assign(to=LEAD, by=LEAD)
    assert worked.assigned_to == "colleague"


DURATION: TypeAdapter[timedelta] = TypeAdapter(IsoDuration)


@pytest.mark.parametrize(("text", "span"), [
    ("PT4H", timedelta(hours=4)), ("P2D", timedelta(days=2)), ("P1W", timedelta(weeks=1)),
    ("P1DT12H", timedelta(days=1, hours=12)), ("PT90M", timedelta(minutes=90)),
    ("PT30S", timedelta(seconds=30)), ("P521W", timedelta(weeks=521)),
])
def test_durations_are_iso_8601(text: str, span: timedelta) -> None:
    assert DURATION.validate_python(text) == span


@pytest.mark.parametrize("text", [
    "3600", 3600, "4h", "PT4", "P", "PT", "P1DT", "P1Y", "P2M", "-PT4H", "PT0S", "P0D",
    "P3654D", "P600W", "PT4H ", " PT4H", "pt4h", "P1.5D", "PT٤H",
])
def test_anything_else_is_refused(text: Any) -> None:
    with pytest.raises(ValidationError):
        DURATION.validate_python(text)


def test_every_rule_names_itself_by_a_rule_name() -> None:
    """The inbox's ``rule`` filter accepts ``RuleName``: each rule's findings carry one."""
    client, now = uuid4(), datetime(2026, 3, 1, tzinfo=UTC)
    facts = [
        RuleFact(1, client, "household_updated", "tp", now,
                 {"children_in_household": 2, "parental_responsibility": True,
                  "pregnant": True}),
        RuleFact(2, client, "treatment_episode_started", "tp", now,
                 {"substances": ["opioids"]}),
        RuleFact(3, client, "domestic_abuse_risk_recorded", "police", now, {}),
        RuleFact(4, client, "mental_health_concern_recorded", "tp", now, {}),
        *(RuleFact(5 + n, client, "appointment_missed", "tp", now, {}) for n in range(3)),
        RuleFact(8, client, CHILD_CONCERN, "tp", now, {"concern": "neglect"}),
        RuleFact(9, client, ADULT_CONCERN, "tp", now, {}),
    ]
    situation = Situation(None, (client,), tuple(facts))
    names = {f.rule for rule in FACT_RULES for fact in facts for f in rule(fact, situation)}
    names |= {f.rule for rule in CONDITION_RULES for f in rule(situation, now, RuleConfig())}
    # The one name no rule over facts gives: projections.flags raises it.
    names.add(RuleName.INTEREST_IN_FLAGGED_CLIENT.value)
    assert names == {name.value for name in RuleName}
