"""The alert inbox: each alert's current state, for its recipient's safeguarding team.

A tracked projection over a topic-filtered read of the log (the ``Alert`` aggregates'
events only), one row per alert, written with its position in one transaction. Queries
read only the recipient's own rows.

Escalation: each ``catch_up`` (the runner calls it every poll interval, even when the log
has not moved) escalates alerts still ``raised`` after their ``acknowledge_by`` time
(``ACCORD_ALERT_ACK_HOURS`` after they were raised, 4 by default). Escalating is a command
on the alert's own stream, so two processes doing it at once escalate it once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from sqlalchemy import Engine, func, insert, select, update

from domain.alerts import Alert, AlertStatus
from domain.application import AccordApplication
from infra.dialect import to_utc
from infra.schema import alerts
from projections.follower import LogFollower

TOPICS = [get_topic(t) for t in (Alert.Raised, Alert.Acknowledged, Alert.Escalated,
                                 Alert.Closed)]
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
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    escalated_at: datetime | None
    closed_by: str | None
    closed_at: datetime | None
    outcome: str | None
    note: str | None
    updated_position: int


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
                        acknowledge_by=to_utc(event.acknowledge_by), **changes))
                    continue
                if isinstance(event, Alert.Acknowledged):
                    changes.update(status=AlertStatus.ACKNOWLEDGED.value,
                                   acknowledged_by=event.by, acknowledged_at=at)
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


def _item(row: Any) -> AlertItem:
    return AlertItem(
        alert_id=UUID(hex=row.alert_id), recipient=row.recipient, rule=row.rule,
        severity=row.severity, status=row.status, client_id=UUID(hex=row.client_id),
        household_id=UUID(hex=row.household_id) if row.household_id else None,
        reason=row.reason, basis=json.loads(row.basis), trigger_position=row.trigger_position,
        raised_position=row.raised_position, raised_at=to_utc(row.raised_at),
        acknowledge_by=to_utc(row.acknowledge_by), acknowledged_by=row.acknowledged_by,
        acknowledged_at=to_utc(row.acknowledged_at), escalated_at=to_utc(row.escalated_at),
        closed_by=row.closed_by, closed_at=to_utc(row.closed_at), outcome=row.outcome,
        note=row.note, updated_position=row.updated_position,
    )
