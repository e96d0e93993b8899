"""Flagged clients: the flagging agency hears of every other agency's interest in them.

As the Child Protection Information Sharing service (CP-IS) tells a child's council when
the child attends an unscheduled care setting anywhere in England, an agency that holds
its own record of a client flags them (``POST /v1/clients/{id}/flags``: a child
protection plan in the household, say) and from then on its safeguarding team is told,
through the alert inbox and the alert stream (so Kafka's ``accord.alerts.<agency>`` too),
whenever another agency

* reads the client's view or chronology (action ``view``, whatever the answer: a 404 for
  want of a basis is interest too),
* looks the client up (action ``match``: a match or a name search that found the client,
  whether it told the caller of them or answered "no match"),
* records a fact about the client, or is refused recording one.

The notification is an ``Alert`` of rule ``interest_in_flagged_client`` (severity
medium), raised by this tracked projection, which follows the access records, the facts
recorded and the flags themselves. It names the agency, what it did and for which
purpose, and when: never what that agency saw or recorded, which the flagging agency may
have no basis to see. The agency that showed interest is told nothing (its answer is the
one it would get for any client), and its own reads are not recorded anew.

At most one notification a day (UTC) per flagging agency, client and interested agency:
the first interest of the day raises it, later interest that day by the same agency is
in the flagging agency's access audit where it concerns the agency's data or was an
attempt. A flagging agency's own reads raise nothing; nor does anything before the flag
was set or after it was removed, nor anything about an erased client.

Exactly once, as the safeguarding rules (``projections.safeguarding``): each batch is
evaluated reading the committed state, its alerts appended (an alert's id derives from
the rule, recipient, client and the log position of the interest, so a re-run finds it
taken), and then the state commits with the position. A rebuild decides everything again
the same way, in log order, and raises nothing twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Notification
from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Engine, delete, insert, select, update

from domain.access import AccessAction, AccessRecord
from domain.alerts import Alert, Severity
from domain.application import AccordApplication, Actor
from domain.clients import Client
from domain.errors import ClientNotFound
from domain.permissions import Action, require
from domain.rules import RuleName
from domain.sealing import open_reason
from infra.dialect import to_utc
from infra.schema import client_flags, interest_notices
from projections.follower import LogFollower

RULE = RuleName.INTEREST_IN_FLAGGED_CLIENT.value
SEVERITY = Severity.MEDIUM
#: What showed interest, in the notification's words ("{agency} {words} this client").
FACT_RECORDED = "fact_recorded"
INTEREST_WORDS: Mapping[str, str] = {
    AccessAction.VIEW.value: "read the record of",
    AccessAction.MATCH.value: "looked up",
    AccessAction.RECORD_FACT.value: "tried to record a fact about",
    FACT_RECORDED: "recorded a fact about",
}
TOPICS = [get_topic(t) for t in (
    Client.Flagged, Client.FlagRemoved, Client.Erased, Client.FactRecorded,
    AccessRecord.Recorded,
)]


# -- what interest is, and whom it is told to (pure) --------------------------------------


@dataclass(frozen=True)
class Interest:
    """Another agency's interest in one client: which agency, doing what (a key of
    ``INTEREST_WORDS``), for which purpose, when, and at which log position."""

    client_id: UUID
    agency: str
    action: str
    purpose: str | None
    at: datetime
    position: int

    @property
    def day(self) -> str:
        """The (UTC) day it fell on: one notification a day per agency and client."""
        return to_utc(self.at).date().isoformat()


def interests(event: Any, position: int) -> list[Interest]:
    """The interest an event of the log shows: a view, a match or name search (every
    client it found, told of or not) or a refused attempt to record a fact (each an
    access record), or a fact recorded. Anything else (an agency's own record, its alert
    inbox, a listing, a replay...) shows none."""
    if isinstance(event, Client.FactRecorded):
        return [Interest(event.originator_id, event.controller, FACT_RECORDED, None,
                         event.timestamp, position)]
    if not isinstance(event, AccessRecord.Recorded) or event.action not in INTEREST_WORDS:
        return []
    about = [*([event.client_id] if event.client_id else []), *event.client_ids,
             *(event.withheld_client_ids or [])]
    return [Interest(client_id, event.agency, event.action, event.purpose, event.timestamp,
                     position) for client_id in dict.fromkeys(about)]


@dataclass(frozen=True)
class Notice:
    """A notification to raise: to ``recipient``, about ``interest``, on its flags."""

    recipient: str
    interest: Interest
    flags: tuple[UUID, ...]

    @property
    def reason(self) -> str:
        """One line, naming the agency and what it did, and nothing it saw or recorded."""
        i = self.interest
        said = f"{i.agency} {INTEREST_WORDS[i.action]} this flagged client"
        return f"{said} for {i.purpose}" if i.purpose else said

    @property
    def basis(self) -> dict[str, Any]:
        """Why the recipient is told: its own flags on the client (no agreement: it is
        told of another agency's interest, not given anyone's data)."""
        i = self.interest
        return {"kind": "flag", "flags": [str(f) for f in self.flags], "agency": i.agency,
                "action": i.action, "purpose": i.purpose}


def notices(interest: Interest, flags: Mapping[str, Sequence[UUID]],
            told: Callable[[str, Interest], bool]) -> list[Notice]:
    """Whom one interest is told to: each agency with a flag on the client (``flags``:
    its flags in force, by agency), but the interested agency itself, unless it was
    already ``told`` of that agency's interest in the client that day."""
    return [Notice(recipient, interest, tuple(ids))
            for recipient, ids in sorted(flags.items())
            if ids and recipient != interest.agency and not told(recipient, interest)]


# -- the projection ------------------------------------------------------------------------


class _Working:
    """The flags and notices one batch reads (loaded on demand from the committed rows),
    with the batch's own changes on top, and the rows it will write."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        #: By client: each flag's agency and whether it is in force.
        self.flags: dict[UUID, dict[UUID, tuple[str, bool]]] = {}
        self.new_flags: dict[UUID, dict[str, Any]] = {}
        self.removed: dict[UUID, int] = {}
        self.erased: set[UUID] = set()
        self.notices: list[dict[str, Any]] = []
        self._told: set[tuple[str, UUID, str, str]] = set()

    def flags_of(self, client_id: UUID) -> dict[UUID, tuple[str, bool]]:
        if client_id not in self.flags:
            rows = self.conn.execute(select(
                client_flags.c.flag_id, client_flags.c.agency, client_flags.c.removed_position
            ).where(client_flags.c.client_id == client_id.hex))
            self.flags[client_id] = {UUID(hex=f): (agency, removed is None)
                                     for f, agency, removed in rows}
        return self.flags[client_id]

    def in_force(self, client_id: UUID) -> dict[str, list[UUID]]:
        """The flags in force on the client, by the agency that set them."""
        found: dict[str, list[UUID]] = {}
        for flag_id, (agency, active) in sorted(self.flags_of(client_id).items()):
            if active:
                found.setdefault(agency, []).append(flag_id)
        return found

    def flag(self, event: Client.Flagged, position: int) -> None:
        self.flags_of(event.originator_id)[event.flag_id] = (event.agency, True)
        self.new_flags[event.flag_id] = {
            "flag_id": event.flag_id.hex, "client_id": event.originator_id.hex,
            "agency": event.agency, "position": position, "removed_position": None}

    def unflag(self, event: Client.FlagRemoved, position: int) -> None:
        self.flags_of(event.originator_id)[event.flag_id] = (event.agency, False)
        if event.flag_id in self.new_flags:
            self.new_flags[event.flag_id]["removed_position"] = position
        else:
            self.removed[event.flag_id] = position

    def erase(self, client_id: UUID) -> None:
        """An erased client is flagged no more: its rows go, and nothing is told of it."""
        self.flags[client_id] = {}
        self.erased.add(client_id)
        self.new_flags = {f: row for f, row in self.new_flags.items()
                          if row["client_id"] != client_id.hex}
        self.notices = [n for n in self.notices if n["client_id"] != client_id.hex]

    def told(self, recipient: str, interest: Interest) -> bool:
        key = (recipient, interest.client_id, interest.agency, interest.day)
        if key in self._told:
            return True
        found = self.conn.execute(select(interest_notices.c.position).where(
            interest_notices.c.recipient == recipient,
            interest_notices.c.client_id == interest.client_id.hex,
            interest_notices.c.agency == interest.agency,
            interest_notices.c.day == interest.day)).first()
        if found is not None:
            self._told.add(key)
        return found is not None

    def tell(self, notice: Notice) -> None:
        i = notice.interest
        self._told.add((notice.recipient, i.client_id, i.agency, i.day))
        self.notices.append({"recipient": notice.recipient, "client_id": i.client_id.hex,
                             "agency": i.agency, "day": i.day, "position": i.position})

    def write(self, conn: Connection) -> None:
        if self.erased:
            gone = [c.hex for c in self.erased]
            conn.execute(delete(client_flags).where(client_flags.c.client_id.in_(gone)))
            conn.execute(delete(interest_notices).where(
                interest_notices.c.client_id.in_(gone)))
        if self.new_flags:
            conn.execute(insert(client_flags), list(self.new_flags.values()))
        for flag_id, position in self.removed.items():
            conn.execute(update(client_flags).where(
                client_flags.c.flag_id == flag_id.hex).values(removed_position=position))
        if self.notices:
            conn.execute(insert(interest_notices), self.notices)


class FlaggedInterest(LogFollower):
    """The tracked projection that tells a flagging agency of others' interest."""

    name = "flagged_interest"
    doing = "telling flagging agencies of interest"
    tables = (client_flags, interest_notices)

    def __init__(self, app: AccordApplication, engine: Engine, *,
                 acknowledge_within: timedelta | None = None, batch_size: int = 2000) -> None:
        super().__init__(app, engine, TOPICS, batch_size)
        self.acknowledge_within = acknowledge_within or timedelta(hours=4)
        #: "Now", for a notification's acknowledge-by time; tests may replace it.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def _process(self, batch: Sequence[Notification], upto: int) -> int:
        # 1. Decide, reading the committed state (no write lock is held)...
        with self.engine.connect() as conn:
            work = _Working(conn)
            raised: list[Alert] = []
            for notification in batch:
                event = self.app.mapper.to_domain_event(notification)
                raised.extend(self._apply(work, event, notification.id))
            # A rebuild elsewhere may have emptied what was just read: start again if so.
            self._still_at_start(conn)
        # 2. ...raise the notifications (a re-run after a crash finds their ids taken)...
        for alert in raised:
            with contextlib.suppress(IntegrityError):
                self.app.save(alert)
        # 3. ...then commit the state with the position.
        with self.engine.begin() as conn:
            self._advance(conn, upto)
            work.write(conn)
        self.tracking.committed()
        return len(batch)

    def _apply(self, work: _Working, event: Any, position: int) -> list[Alert]:
        if isinstance(event, Client.Flagged):
            work.flag(event, position)
            return []
        if isinstance(event, Client.FlagRemoved):
            work.unflag(event, position)
            return []
        if isinstance(event, Client.Erased):
            work.erase(event.originator_id)
            return []
        raised = []
        for interest in interests(event, position):
            if interest.client_id in work.erased:
                continue
            for notice in notices(interest, work.in_force(interest.client_id), work.told):
                work.tell(notice)
                raised.append(self._alert(notice))
        return raised

    def _alert(self, notice: Notice) -> Alert:
        return Alert(
            rule=RULE, severity=SEVERITY.value, recipient=notice.recipient,
            client_id=notice.interest.client_id, household_id=None, reason=notice.reason,
            basis=notice.basis, trigger_position=notice.interest.position,
            acknowledge_by=self.clock().astimezone(UTC) + self.acknowledge_within,
        )


# -- reading an agency's flags -------------------------------------------------------------


@dataclass(frozen=True)
class FlagRecord:
    """One of the caller agency's flags on a client, with its removal if any, and the
    reasons opened (they are sealed with the client's data key on its stream)."""

    flagged: Client.Flagged
    removed: Client.FlagRemoved | None
    reason: str | None = None
    removal_reason: str | None = None


def flags(app: AccordApplication, client_id: UUID, by: Actor) -> list[FlagRecord]:
    """The flags the caller's agency set on the client (in force or removed), oldest
    first, from the client's own stream. Another agency's flags are its own (a partner
    learns nothing of them); an agency holding no record of the client, and anyone once
    the client is erased, gets ClientNotFound, as for an unknown client."""
    require(Action.READ_FLAGS, by)
    app.require_controller(client_id, by)
    found: dict[UUID, FlagRecord] = {}
    for event in app.events.get(client_id):
        if isinstance(event, Client.Erased):
            raise ClientNotFound()
        if isinstance(event, Client.Flagged) and event.agency == by.agency:
            found[event.flag_id] = FlagRecord(event, None)
        elif isinstance(event, Client.FlagRemoved) and event.flag_id in found:
            found[event.flag_id] = FlagRecord(found[event.flag_id].flagged, event)
    return [FlagRecord(r.flagged, r.removed, open_reason(app.vault, client_id, r.flagged.reason),
                       open_reason(app.vault, client_id, r.removed.reason) if r.removed else None)
            for r in found.values()]
