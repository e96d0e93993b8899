"""The alert inbox: each alert's current state, for its recipient's safeguarding team.

A tracked projection over a topic-filtered read of the log (the ``Alert`` aggregates'
events only), one row per alert, written with its position in one transaction. Queries
read only the recipient's own rows.

Each alert is indexed with the time of its triggering fact (``triggered_at``: the fact's
``occurred_at``, or when the household was linked), read from the log at its
``trigger_position`` when the alert is raised, and with whom it is assigned to.

The inbox is filtered (status, severity, rule, assignee, when raised), sorted (oldest or
newest raised first, most severe first, soonest due, oldest trigger, most urgent
first) and paged in the database (``AlertQuery``).

Escalation: each ``catch_up`` (the runner calls it every poll interval, even when the log
has not moved) escalates alerts still ``raised`` after their ``acknowledge_by`` time
(``ACCORD_ALERT_ACK_HOURS`` after they were raised, 4 by default). Escalating is a command
on the alert's own stream, so two processes doing it at once escalate it once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from sqlalchemy import Engine, case, func, insert, select, update

from domain.alerts import Alert, AlertStatus, Severity
from domain.application import AccordApplication
from infra.dialect import to_utc
from infra.schema import alerts
from projections.follower import LogFollower

TOPICS = [get_topic(t) for t in (Alert.Raised, Alert.Acknowledged, Alert.Assigned,
                                 Alert.Escalated, Alert.Closed)]
OPEN = (AlertStatus.RAISED.value, AlertStatus.ESCALATED.value, AlertStatus.ACKNOWLEDGED.value)


@dataclass(frozen=True)
class AlertItem:
    alert_id: UUID
    recipient: str
    rule: str
    severity: str
    status: str
    client_id: UUID
    household_id: UUID | None
    reason: str
    basis: dict[str, Any]
    trigger_position: int
    raised_position: int
    raised_at: datetime
    acknowledge_by: datetime
    triggered_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    escalated_at: datetime | None
    assigned_to: str | None
    assigned_by: str | None
    assigned_at: datetime | None
    closed_by: str | None
    closed_at: datetime | None
    outcome: str | None
    note: str | None
    updated_position: int

    @property
    def references(self) -> set[str]:
        """Everyone the alert names (who acknowledged, assigned, was assigned, closed)."""
        return {r for r in (self.acknowledged_by, self.assigned_to, self.assigned_by,
                            self.closed_by) if r is not None}


class AlertSort(StrEnum):
    """How an inbox is ordered; ties go to the alert raised first."""

    RAISED = "raised"  # oldest first: the alerts that have waited longest
    NEWEST = "-raised"  # newest first
    SEVERITY = "severity"  # high before medium, then oldest first
    DUE = "due"  # the soonest acknowledge-by first
    TRIGGERED = "triggered"  # the oldest triggering fact first
    RECENTLY_TRIGGERED = "-triggered"  # the most recent triggering fact first
    URGENCY = "urgency"  # escalated, then raised, acknowledged, closed; oldest first


#: Severities, most severe first.
SEVERITY_ORDER = (Severity.HIGH, Severity.MEDIUM)


@dataclass(frozen=True)
class AlertQuery:
    """Which of an agency's alerts, in which order, which page. Every filter narrows:
    ``statuses``, ``severities`` and ``rules`` each match any of their values;
    ``assigned_to`` is a principal's reference, or ``UNASSIGNED``; ``raised_after`` and
    ``raised_before`` bound when it was raised (after is exclusive, before inclusive);
    ``older_than`` and ``newer_than`` its age, measured from the inbox's clock."""

    statuses: tuple[AlertStatus, ...] = ()
    severities: tuple[Severity, ...] = ()
    rules: tuple[str, ...] = ()
    assigned_to: str | None = None
    raised_after: datetime | None = None
    raised_before: datetime | None = None
    older_than: timedelta | None = None
    newer_than: timedelta | None = None
    sort: AlertSort = AlertSort.RAISED
    limit: int = 100
    offset: int = 0


#: ``AlertQuery.assigned_to`` for alerts assigned to nobody.
UNASSIGNED = ""


@dataclass(frozen=True)
class AlertPage:
    """One page of an inbox, and how many alerts the filters matched in all."""

    items: list[AlertItem]
    total: int


class AlertInbox(LogFollower):
    """The alert inbox; each catch-up also escalates alerts past their acknowledge-by."""

    name = "alert_inbox"
    doing = "indexing alerts"
    tables = (alerts,)

    def __init__(self, app: AccordApplication, engine: Engine, batch_size: int = 2000) -> None:
        super().__init__(app, engine, TOPICS, batch_size)
        #: "Now", for escalation; tests may replace it.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def _caught_up(self) -> None:
        self.escalate_due()

    def escalate_due(self) -> int:
        """Escalates every raised alert past its acknowledge-by time; returns how many."""
        now = self.clock().astimezone(UTC)
        query = select(alerts.c.alert_id, alerts.c.acknowledge_by).where(
            alerts.c.status == AlertStatus.RAISED.value, alerts.c.acknowledge_by < now)
        with self.engine.connect() as conn:
            due = list(conn.execute(query))
        escalated = 0
        for alert_id, acknowledge_by in due:
            by = to_utc(acknowledge_by)
            if by >= now:  # SQLite compares the stored text; check again
                continue
            if self.app.escalate_alert(UUID(hex=alert_id), reason=(
                    f"not acknowledged by {by.isoformat()}")) is not None:
                escalated += 1
        return escalated

    def _process(self, batch: Sequence[Notification], upto: int) -> int:
        with self.engine.begin() as conn:
            self._advance(conn, upto)
            for notification in batch:
                event: Any = self.app.mapper.to_domain_event(notification)
                key = alerts.c.alert_id == event.originator_id.hex
                at = to_utc(event.timestamp)
                changes: dict[str, Any] = {"updated_position": notification.id}
                if isinstance(event, Alert.Raised):
                    conn.execute(insert(alerts).values(
                        alert_id=event.originator_id.hex, recipient=event.recipient,
                        rule=event.rule, severity=event.severity,
                        status=AlertStatus.RAISED.value, client_id=event.client_id.hex,
                        household_id=event.household_id.hex if event.household_id else None,
                        reason=event.reason, basis=json.dumps(event.basis),
                        trigger_position=event.trigger_position,
                        raised_position=notification.id, raised_at=at,
                        acknowledge_by=to_utc(event.acknowledge_by),
                        triggered_at=self._triggered_at(event.trigger_position), **changes))
                    continue
                if isinstance(event, Alert.Acknowledged):
                    changes.update(status=AlertStatus.ACKNOWLEDGED.value,
                                   acknowledged_by=event.by, acknowledged_at=at)
                elif isinstance(event, Alert.Assigned):
                    changes.update(assigned_to=event.principal, assigned_by=event.by,
                                   assigned_at=at)
                elif isinstance(event, Alert.Escalated):
                    changes.update(status=AlertStatus.ESCALATED.value, escalated_at=at)
                elif isinstance(event, Alert.Closed):
                    changes.update(status=AlertStatus.CLOSED.value, closed_by=event.by,
                                   closed_at=at, outcome=event.outcome, note=event.note)
                else:
                    continue
                conn.execute(update(alerts).where(key).values(**changes))
        self.tracking.committed()
        return len(batch)

    def _triggered_at(self, position: int) -> datetime | None:
        """When what triggered an alert happened: the ``occurred_at`` of the fact at the
        trigger's position, or the time the household link there was recorded (what the
        rules measured their windows from). None if no event is at that position."""
        found = self.app.recorder.select_notifications(start=position, limit=1)
        if not found or found[0].id != position:
            return None
        trigger: Any = self.app.mapper.to_domain_event(found[0])
        when: datetime = getattr(trigger, "occurred_at", None) or trigger.timestamp
        return to_utc(when)

    # -- queries ---------------------------------------------------------------------

    def last_change(self, recipient: str) -> int:
        """The log position of the latest change to any of the recipient's alerts (0 if
        none): where a live stream that has sent every alert's state carries on from."""
        query = select(func.max(alerts.c.updated_position)).where(
            alerts.c.recipient == recipient)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def changed(self, recipient: str, *, after: int, upto: int | None = None,
                open_only: bool = False, limit: int = 500) -> list[AlertItem]:
        """The recipient's alerts whose latest change is after log position ``after`` (and
        at most ``upto``), each in its current state, in the order of those changes. An
        alert changed twice since ``after`` appears once, as it is now."""
        query = select(alerts).where(alerts.c.recipient == recipient,
                                     alerts.c.updated_position > after)
        if upto is not None:
            query = query.where(alerts.c.updated_position <= upto)
        if open_only:
            query = query.where(alerts.c.status.in_(OPEN))
        query = query.order_by(alerts.c.updated_position).limit(limit)
        with self.engine.connect() as conn:
            return [_item(row) for row in conn.execute(query)]

    def page(self, recipient: str, query: AlertQuery) -> AlertPage:
        """One page of the recipient's alerts that match ``query``, in its order, and how
        many match in all."""
        conditions = [alerts.c.recipient == recipient]
        if query.statuses:
            conditions.append(alerts.c.status.in_([s.value for s in query.statuses]))
        if query.severities:
            conditions.append(alerts.c.severity.in_([s.value for s in query.severities]))
        if query.rules:
            conditions.append(alerts.c.rule.in_(query.rules))
        if query.assigned_to == UNASSIGNED:
            conditions.append(alerts.c.assigned_to.is_(None))
        elif query.assigned_to is not None:
            conditions.append(alerts.c.assigned_to == query.assigned_to)
        now = self.clock().astimezone(UTC)
        after = [t for t in (query.raised_after,
                             now - query.newer_than if query.newer_than else None) if t]
        before = [t for t in (query.raised_before,
                              now - query.older_than if query.older_than else None) if t]
        if after:
            conditions.append(alerts.c.raised_at > max(after).astimezone(UTC))
        if before:
            conditions.append(alerts.c.raised_at <= min(before).astimezone(UTC))
        rows = select(alerts).where(*conditions).order_by(
            *_ORDER[query.sort], alerts.c.raised_position).limit(query.limit).offset(
            query.offset)
        count = select(func.count()).select_from(alerts).where(*conditions)
        with self.engine.connect() as conn:
            total = int(conn.execute(count).scalar() or 0)
            return AlertPage([_item(row) for row in conn.execute(rows)], total)

    def get(self, recipient: str, alert_id: UUID) -> AlertItem | None:
        """One of the recipient's alerts as it is now; None for an unknown alert and for
        another recipient's (the two are the same to the caller)."""
        query = select(alerts).where(alerts.c.recipient == recipient,
                                     alerts.c.alert_id == alert_id.hex)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _item(row)

    def alerts_of(self, recipient: str, status: AlertStatus | None = None, *,
             open_only: bool = False, after: int = 0, limit: int = 500) -> list[AlertItem]:
        """The recipient's alerts, oldest first, raised after log position ``after``."""
        query = select(alerts).where(alerts.c.recipient == recipient,
                                     alerts.c.raised_position > after)
        if status is not None:
            query = query.where(alerts.c.status == status.value)
        if open_only:
            query = query.where(alerts.c.status.in_(OPEN))
        query = query.order_by(alerts.c.raised_position).limit(limit)
        with self.engine.connect() as conn:
            return [_item(row) for row in conn.execute(query)]

    def about(self, client_id: UUID) -> list[AlertItem]:
        """Every alert about the client, whichever agency received it, oldest first: for
        the answer to the client's subject access request (``projections.subject_access``),
        never for an inbox (which reads only its recipient's rows)."""
        query = select(alerts).where(alerts.c.client_id == client_id.hex).order_by(
            alerts.c.raised_position)
        with self.engine.connect() as conn:
            return [_item(row) for row in conn.execute(query)]


_SEVERITY_RANK = case({s.value: rank for rank, s in enumerate(SEVERITY_ORDER)},
                      value=alerts.c.severity, else_=len(SEVERITY_ORDER))
#: Statuses, the most urgent first: an escalated alert is overdue, a raised one waits.
URGENCY_ORDER = (AlertStatus.ESCALATED, AlertStatus.RAISED, AlertStatus.ACKNOWLEDGED,
                 AlertStatus.CLOSED)
_URGENCY_RANK = case({s.value: rank for rank, s in enumerate(URGENCY_ORDER)},
                     value=alerts.c.status, else_=len(URGENCY_ORDER))
#: Each sort's ordering (the raising position breaks ties, so a page is stable).
_ORDER: dict[AlertSort, tuple[Any, ...]] = {
    AlertSort.RAISED: (alerts.c.raised_at,),
    AlertSort.NEWEST: (alerts.c.raised_at.desc(), alerts.c.raised_position.desc()),
    AlertSort.SEVERITY: (_SEVERITY_RANK, alerts.c.raised_at),
    AlertSort.DUE: (alerts.c.acknowledge_by,),
    AlertSort.TRIGGERED: (alerts.c.triggered_at.is_(None), alerts.c.triggered_at),
    AlertSort.RECENTLY_TRIGGERED: (alerts.c.triggered_at.is_(None),
                                   alerts.c.triggered_at.desc()),
    AlertSort.URGENCY: (_URGENCY_RANK, alerts.c.raised_at),
}


def _item(row: Any) -> AlertItem:
    return AlertItem(
        alert_id=UUID(hex=row.alert_id), recipient=row.recipient, rule=row.rule,
        severity=row.severity, status=row.status, client_id=UUID(hex=row.client_id),
        household_id=UUID(hex=row.household_id) if row.household_id else None,
        reason=row.reason, basis=json.loads(row.basis), trigger_position=row.trigger_position,
        raised_position=row.raised_position, raised_at=to_utc(row.raised_at),
        acknowledge_by=to_utc(row.acknowledge_by), triggered_at=to_utc(row.triggered_at),
        acknowledged_by=row.acknowledged_by, acknowledged_at=to_utc(row.acknowledged_at),
        escalated_at=to_utc(row.escalated_at), assigned_to=row.assigned_to,
        assigned_by=row.assigned_by, assigned_at=to_utc(row.assigned_at),
        closed_by=row.closed_by, closed_at=to_utc(row.closed_at), outcome=row.outcome,
        note=row.note, updated_position=row.updated_position,
    )
