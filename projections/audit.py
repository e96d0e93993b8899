"""The access-audit index: every recorded read, searchable by IG leads.

It follows only access records in the log (a topic-filtered read of the notification
log) and writes one row per read, one row per client the read concerned (an alert read
names several) and one per (agency, client) whose data the read returned, with its
tracked position in the same transaction: each row is a function of its record alone, so
a rebuild writes exactly what following the log wrote. Controllers find every disclosure
of their data; agencies find every read by their own staff; and a client's controllers
(the agencies that hold their own record of the client) find every attempt on it that
found nothing or was refused, whoever made it. Those are routed when the audit is read,
from the agency views' copy of the facts (which agency recorded something about which
client), so an agency that holds a record of the client later finds earlier attempts too.

A match or name search that found a client the caller may not be told of names that
client apart (``withheld_client_ids``, indexed in ``accord_access_withheld``): the
client's controllers find it as an attempt (which agency, who, when, for what purpose),
while the caller's own IG lead sees the read with no client at all, as the caller was
answered, and cannot find it by that client's id either.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from sqlalchemy import Engine, and_, exists, insert, or_, select

from domain.access import ATTEMPTS, AccessRecord
from domain.application import AccordApplication
from infra.schema import access_clients, access_controllers, access_log, access_withheld, facts
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
    client_ids: list[UUID]
    subject_agency: str | None
    outcome: str
    detail: str | None
    returned: list[dict[str, Any]]
    #: The clients the access found but did not tell the caller of: for their
    #: controllers only (``accesses`` gives them to no one else).
    withheld_client_ids: list[UUID] = field(default_factory=list)


class AccessIndex(LogFollower):
    name = "access_audit"
    doing = "indexing access records"
    tables = (access_controllers, access_clients, access_withheld, access_log)

    def __init__(self, app: AccordApplication, engine: Engine, batch_size: int = 2000) -> None:
        super().__init__(app, engine, [ACCESS_TOPIC], batch_size)

    def _process(self, batch: Sequence[Notification], upto: int) -> int:
        rows: list[dict[str, Any]] = []
        owners: list[dict[str, Any]] = []
        concerned: list[dict[str, Any]] = []
        withheld: list[dict[str, Any]] = []
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
            concerned.extend({"client_id": c.hex, "position": notification.id}
                             for c in dict.fromkeys(event.client_ids))
            withheld.extend({"client_id": c.hex, "position": notification.id}
                            for c in dict.fromkeys(event.withheld_client_ids or []))
            # Whose data about whom: an item names its client where the read concerned
            # several (an alert read), else it is about the read's one client.
            pairs = {(str(item["controller"]), _client_of(item, client))
                     for item in event.returned}
            owners.extend({"position": notification.id, "controller": controller,
                           "client_id": about, "at": event.timestamp}
                          for controller, about in sorted(pairs))
        with self.engine.begin() as conn:
            self._advance(conn, upto)
            if rows:
                conn.execute(insert(access_log), rows)
            if concerned:
                conn.execute(insert(access_clients), concerned)
            if withheld:
                conn.execute(insert(access_withheld), withheld)
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
        """Reads an IG lead of ``for_agency`` may see: those of data their agency controls,
        those made by their own staff, and attempts by anyone on a client their agency
        holds its own record of that found nothing or were refused, or that found the
        client without telling the caller of them (by another agency's staff); newest
        first. Each ``Access`` names the withheld clients only where ``for_agency`` holds
        their record and another agency made the access."""
        controlled = select(access_controllers.c.position).where(
            access_controllers.c.controller == for_agency)
        attempt_on_own_client = and_(
            access_log.c.outcome.in_([outcome.value for outcome in ATTEMPTS]),
            exists().where(
                access_clients.c.position == access_log.c.position,
                _held_by(for_agency, access_clients.c.client_id)))
        query = select(access_log).where(or_(
            access_log.c.agency == for_agency, access_log.c.position.in_(controlled),
            attempt_on_own_client, _withheld_from_another(for_agency)))
        query = query.where(*_filters(client_id, agency, principal, since, until, for_agency))
        query = query.order_by(access_log.c.position.desc()).limit(limit)
        with self.engine.connect() as conn:
            return _accesses(conn, query, for_agency)

    def disclosures(self, controller: str, client_id: UUID) -> list[Access]:
        """Every read by another agency that returned ``controller``'s data about the
        client, oldest first: what a subject access request must list (an alert about
        the client included)."""
        query = select(access_log).join(
            access_controllers, access_controllers.c.position == access_log.c.position
        ).where(
            access_controllers.c.controller == controller,
            access_controllers.c.client_id == client_id.hex,
            access_log.c.agency != controller,
        ).order_by(access_log.c.position)
        with self.engine.connect() as conn:
            return _accesses(conn, query, controller)

    def held(self, agency: str, client_ids: Sequence[UUID]) -> set[UUID]:
        """Which of these clients ``agency`` holds its own record of (it recorded
        something about them, their registration included)."""
        if not client_ids:
            return set()
        query = select(facts.c.client_id).distinct().where(
            facts.c.controller == agency, facts.c.client_id.in_([c.hex for c in client_ids]))
        with self.engine.connect() as conn:
            return {UUID(hex=c) for c in conn.execute(query).scalars()}


def _withheld_from_another(for_agency: str, client_id: UUID | None = None) -> Any:
    """Another agency's access that found, without telling its caller, a client
    ``for_agency`` holds its own record of (that client, if given)."""
    about = [access_withheld.c.client_id == client_id.hex] if client_id else []
    return and_(access_log.c.agency != for_agency, exists().where(
        access_withheld.c.position == access_log.c.position, *about,
        _held_by(for_agency, access_withheld.c.client_id)))


def _filters(client_id: UUID | None, agency: str | None, principal: str | None,
             since: datetime | None, until: datetime | None, for_agency: str) -> list[Any]:
    conditions: list[Any] = []
    if client_id is not None:
        # A withheld client is found by its id only by its controllers, never by the
        # caller's own agency (its IG lead would learn whom its staff looked for).
        conditions.append(or_(
            access_log.c.position.in_(select(access_clients.c.position).where(
                access_clients.c.client_id == client_id.hex)),
            _withheld_from_another(for_agency, client_id)))
    if agency is not None:
        conditions.append(access_log.c.agency == agency)
    if principal is not None:
        conditions.append(access_log.c.principal == principal)
    if since is not None:
        conditions.append(access_log.c.at >= since.astimezone(UTC))
    if until is not None:
        conditions.append(access_log.c.at < until.astimezone(UTC))
    return [and_(*conditions)] if conditions else []


def _held_by(agency: str, client_id: Any) -> Any:
    """Whether ``agency`` holds its own record of the client: it recorded a fact about
    them (the registration's identity fact counts), as the agency views copied it."""
    return exists().where(facts.c.client_id == client_id, facts.c.controller == agency)


def _client_of(item: dict[str, Any], client: str | None) -> str:
    about = item.get("client_id")
    return UUID(str(about)).hex if about else (client or "")


def _accesses(conn: Any, query: Any, for_agency: str) -> list[Access]:
    """The rows the query selects from ``access_log``, each with the clients it concerned
    and, where another agency made it, the withheld clients ``for_agency`` holds."""
    rows = conn.execute(query).all()
    concerned: dict[int, list[UUID]] = {}
    withheld: dict[int, list[UUID]] = {}
    positions = [row.position for row in rows]
    others = [row.position for row in rows if row.agency != for_agency]
    for start in range(0, len(positions), 1000):
        found = select(access_clients.c.position, access_clients.c.client_id).where(
            access_clients.c.position.in_(positions[start:start + 1000])
        ).order_by(access_clients.c.position, access_clients.c.client_id)
        for position, client in conn.execute(found):
            concerned.setdefault(position, []).append(UUID(hex=client))
    for start in range(0, len(others), 1000):
        found = select(access_withheld.c.position, access_withheld.c.client_id).where(
            access_withheld.c.position.in_(others[start:start + 1000]),
            _held_by(for_agency, access_withheld.c.client_id),
        ).order_by(access_withheld.c.position, access_withheld.c.client_id)
        for position, client in conn.execute(found):
            withheld.setdefault(position, []).append(UUID(hex=client))
    return [_access(row, concerned.get(row.position, []), withheld.get(row.position, []))
            for row in rows]


def _access(row: Any, client_ids: list[UUID], withheld: list[UUID]) -> Access:
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
    return Access(
        position=row.position, access_id=UUID(hex=row.access_id), at=at,
        principal=row.principal, principal_name=row.principal_name, agency=row.agency,
        role=row.role, action=row.action, purpose=row.purpose,
        client_id=UUID(hex=row.client_id) if row.client_id else None,
        client_ids=client_ids,
        subject_agency=row.subject_agency, outcome=row.outcome, detail=row.detail,
        returned=json.loads(row.returned), withheld_client_ids=withheld,
    )
