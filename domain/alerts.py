"""Safeguarding alerts: raised by rules over the log, worked by safeguarding teams.

An alert carries the minimum a safeguarding team needs to act (Caldicott): the client,
the household, the rule, the severity, a one-line reason with no clinical detail, and
the basis on which the recipient may be told (an agreement with a legal duty). Its
lifecycle is raised → acknowledged → closed with an outcome; an alert left
unacknowledged past its deadline is escalated. While it is open, the recipient's
safeguarding staff may assign it to a member of their team (and again to another).

An alert's id is derived from the rule, the recipient, the subject and the log position
that triggered it, so a rule re-run after a crash raises the same alert at most once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.agencies import Role, namespaced_uuid
from domain.errors import Conflict, Forbidden


class Severity(StrEnum):
    MEDIUM = "medium"
    HIGH = "high"


class AlertStatus(StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"  # raised, and not acknowledged in time
    CLOSED = "closed"


class AlertOutcome(StrEnum):
    """How a safeguarding team closed an alert."""

    REFERRAL_MADE = "referral_made"  # e.g. a s.47 strategy discussion or s.42 enquiry
    ALREADY_KNOWN = "already_known"  # the team already holds this
    NO_FURTHER_ACTION = "no_further_action"
    NOT_OUR_AREA = "not_our_area"


@dataclass(frozen=True)
class TeamMember:
    """A principal as an alert's assignment rules see it: who (their reference on the
    record), of which agency, in which role, and whether their access still stands."""

    reference: str
    agency: str
    role: Role
    active: bool = True


def alert_id(rule: str, recipient: str, subject: UUID, trigger_position: int) -> UUID:
    """The same rule firing for the same recipient and subject at the same position is
    the same alert: raising it twice is refused by the event store."""
    return namespaced_uuid(f"alert:{rule}:{recipient}:{subject}:{trigger_position}")


class Alert(Aggregate):
    class Raised(Aggregate.Created):
        rule: str
        severity: str
        recipient: str
        client_id: UUID
        household_id: UUID | None
        reason: str
        basis: dict[str, Any]
        trigger_position: int
        acknowledge_by: datetime

    @staticmethod
    def create_id(rule: str, recipient: str, client_id: UUID, household_id: UUID | None,
                  trigger_position: int, **_: Any) -> UUID:
        return alert_id(rule, recipient, household_id or client_id, trigger_position)

    @event(Raised)
    def __init__(
        self,
        rule: str,
        severity: str,
        recipient: str,
        client_id: UUID,
        household_id: UUID | None,
        reason: str,
        basis: dict[str, Any],
        trigger_position: int,
        acknowledge_by: datetime,
    ) -> None:
        """``reason`` is one line without clinical detail; ``basis`` names the agreement
        and legal duty under which the recipient is told."""
        self.rule = rule
        self.severity = Severity(severity)
        self.recipient = recipient
        self.client_id = client_id
        self.household_id = household_id
        self.reason = reason
        self.basis = basis
        self.trigger_position = trigger_position
        self.acknowledge_by = acknowledge_by
        self.status = AlertStatus.RAISED
        self.acknowledged_by: str | None = None
        self.assigned_to: str | None = None
        self.outcome: AlertOutcome | None = None
        self.note: str | None = None

    class Acknowledged(Aggregate.Event):
        by: str

    def acknowledge(self, by: str) -> None:
        """The recipient's safeguarding team takes the alert on (raised or escalated);
        once acknowledged or closed, again conflicts."""
        if self.status in (AlertStatus.ACKNOWLEDGED, AlertStatus.CLOSED):
            raise Conflict(f"this alert is already {self.status.value}")
        self._acknowledge(by=by)

    @event(Acknowledged)
    def _acknowledge(self, by: str) -> None:
        self.status = AlertStatus.ACKNOWLEDGED
        self.acknowledged_by = by

    class Assigned(Aggregate.Event):
        principal: str  # the assignee's reference (a principal id)
        by: str

    def assign(self, to: TeamMember, by: TeamMember) -> None:
        """Gives an open alert to one member of the recipient agency's safeguarding team.

        The assigner must be of the recipient agency in the safeguarding role, and so must
        the assignee, whose access still stands (both ``Forbidden``); a closed alert, or
        one already assigned to that person, conflicts. Whoever calls it, these hold."""
        if by.agency != self.recipient or by.role is not Role.SAFEGUARDING or not by.active:
            raise Forbidden("only the recipient agency's safeguarding staff assign its alerts")
        if self.status is AlertStatus.CLOSED:
            raise Conflict("this alert is closed")
        if to.agency != self.recipient or to.role is not Role.SAFEGUARDING or not to.active:
            raise Forbidden(f"only an active member of {self.recipient}'s safeguarding team "
                            "may be assigned its alerts")
        if self.assigned_to == to.reference:
            raise Conflict("this alert is already assigned to them")
        self._assign(principal=to.reference, by=by.reference)

    @event(Assigned)
    def _assign(self, principal: str, by: str) -> None:
        self.assigned_to = principal

    class Escalated(Aggregate.Event):
        reason: str

    def escalate(self, reason: str) -> None:
        """Nobody acknowledged the alert in time: only a raised alert is escalated."""
        if self.status is not AlertStatus.RAISED:
            raise Conflict(f"only a raised alert is escalated; this one is {self.status.value}")
        self._escalate(reason=reason)

    @event(Escalated)
    def _escalate(self, reason: str) -> None:
        self.status = AlertStatus.ESCALATED

    class Closed(Aggregate.Event):
        outcome: str
        note: str
        by: str

    def close(self, outcome: str, note: str, by: str) -> None:
        """Closes the alert with an outcome, once: a second close conflicts."""
        if self.status is AlertStatus.CLOSED:
            raise Conflict("this alert is already closed")
        self._close(outcome=AlertOutcome(outcome).value, note=note, by=by)

    @event(Closed)
    def _close(self, outcome: str, note: str, by: str) -> None:
        self.status = AlertStatus.CLOSED
        self.outcome = AlertOutcome(outcome)
        self.note = note


def withheld_id(rule: str, recipient: str, subject: UUID, trigger_position: int) -> UUID:
    """Like ``alert_id``: a re-run after a crash records the same evaluation at most once."""
    return namespaced_uuid(f"alert-withheld:{rule}:{recipient}:{subject}:{trigger_position}")


class AlertWithheld(Aggregate):
    """A rule fired, but the recipient had no basis to be told: no alert, and the log says
    so (which rule, for whom, about whom, at which position, and why not)."""

    class Recorded(Aggregate.Created):
        rule: str
        recipient: str
        client_id: UUID
        household_id: UUID | None
        trigger_position: int
        reason: str

    @staticmethod
    def create_id(rule: str, recipient: str, client_id: UUID, household_id: UUID | None,
                  trigger_position: int, **_: Any) -> UUID:
        return withheld_id(rule, recipient, household_id or client_id, trigger_position)

    @event(Recorded)
    def __init__(self, rule: str, recipient: str, client_id: UUID, household_id: UUID | None,
                 trigger_position: int, reason: str) -> None:
        self.rule = rule
        self.recipient = recipient
        self.client_id = client_id
        self.household_id = household_id
        self.trigger_position = trigger_position
        self.reason = reason
