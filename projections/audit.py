"""The access-audit index: every recorded read, searchable by IG leads.

It follows only access records in the log (a topic-filtered read of the notification
log) and writes one row per read, plus one row per agency whose data the read returned,
with its tracked position in the same transaction. Controllers find every disclosure of
their data; agencies find every read by their own staff.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from sqlalchemy import Engine, and_, insert, or_, select

from domain.access import AccessRecord
from domain.application import AccordApplication
from infra.schema import access_controllers, access_log
from projections.follower import LogFollower

ACCESS_TOPIC = get_topic(AccessRecord.Recorded)


@dataclass(frozen=True)
class Access:
    position: int
    access_id: UUID
    at: datetime
    principal: str
    principal_name: str
    agency: str
    role: str
    action: str
    purpose: str | None
    client_id: UUID | None
    subject_agency: str | None
    outcome: str
    detail: str | None
    returned: list[dict[str, Any]]


class AccessIndex(LogFollower):
    name = "access_audit"
    doing = "indexing access records"
    tables = (access_controllers, access_log)

    def __init__(self, app: AccordApplication, engine: Engine, batch_size: int = 2000) -> None:
        super().__init__(app, engine, [ACCESS_TOPIC], batch_size)

    def _process(self, batch: Sequence[Notification], upto: int) -> int:
        rows: list[dict[str, Any]] = []
        owners: list[dict[str, Any]] = []
        for notification in batch:
            event = self.app.mapper.to_domain_event(notification)
            if not isinstance(event, AccessRecord.Recorded):
                continue
            client = event.client_id.hex if event.client_id else None
            rows.append({
                "position": notification.id, "access_id": event.originator_id.hex,
                "at": event.timestamp, "principal": event.principal,
                "principal_name": event.principal_name, "agency": event.agency,
                "role": event.role, "action": event.action, "purpose": event.purpose,
                "client_id": client, "subject_agency": event.subject_agency,
                "outcome": event.outcome, "detail": event.detail,
                "returned": json.dumps(event.returned, separators=(",", ":")),
            })
            for controller in sorted({str(item["controller"]) for item in event.returned}):
                owners.append({"position": notification.id, "controller": controller,
                               "client_id": client, "at": event.timestamp})
        with self.engine.begin() as conn:
            self._advance(conn, upto)
            if rows:
                conn.execute(insert(access_log), rows)
            if owners:
                conn.execute(insert(access_controllers), owners)
        self.tracking.committed()
        return len(batch)

    # -- queries ------------------------------------------------------------------------

    def accesses(
        self,
        for_agency: str,
        *,
        client_id: UUID | None = None,
        agency: str | None = None,
        principal: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 500,
    ) -> list[Access]:
        """Reads an IG lead of ``for_agency`` may see: those of data their agency controls
        and those made by their own staff, newest first."""
        controlled = select(access_controllers.c.position).where(
            access_controllers.c.controller == for_agency)
        query = select(access_log).where(or_(
            access_log.c.agency == for_agency, access_log.c.position.in_(controlled)))
        query = query.where(*_filters(client_id, agency, principal, since, until))
        query = query.order_by(access_log.c.position.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_access(row) for row in conn.execute(query)]

    def disclosures(self, controller: str, client_id: UUID) -> list[Access]:
        """Every read by another agency that returned ``controller``'s data about the
        client, oldest first: what a subject access request must list."""
        query = select(access_log).join(
            access_controllers, access_controllers.c.position == access_log.c.position
        ).where(
            access_controllers.c.controller == controller,
            access_controllers.c.client_id == client_id.hex,
            access_log.c.agency != controller,
        ).order_by(access_log.c.position)
        with self.engine.connect() as conn:
            return [_access(row) for row in conn.execute(query)]


def _filters(client_id: UUID | None, agency: str | None, principal: str | None,
             since: datetime | None, until: datetime | None) -> list[Any]:
    conditions: list[Any] = []
    if client_id is not None:
        conditions.append(access_log.c.client_id == client_id.hex)
    if agency is not None:
        conditions.append(access_log.c.agency == agency)
    if principal is not None:
        conditions.append(access_log.c.principal == principal)
    if since is not None:
        conditions.append(access_log.c.at >= since.astimezone(UTC))
    if until is not None:
        conditions.append(access_log.c.at < until.astimezone(UTC))
    return [and_(*conditions)] if conditions else []


def _access(row: Any) -> Access:
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
    return Access(
        position=row.position, access_id=UUID(hex=row.access_id), at=at,
        principal=row.principal, principal_name=row.principal_name, agency=row.agency,
        role=row.role, action=row.action, purpose=row.purpose,
        client_id=UUID(hex=row.client_id) if row.client_id else None,
        subject_agency=row.subject_agency, outcome=row.outcome, detail=row.detail,
        returned=json.loads(row.returned),
    )
