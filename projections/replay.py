"""Point-in-time replay: what an agency could see of a client at a moment, and why.

It steps through the log with the same ``evolve`` as the live views, up to a log
position or a timestamp, then asks the same ``decide`` about each of the client's facts.
So at the head of the log a replay equals the live view (a property test holds this),
and at any earlier moment it says what the view held then: each permitted fact with its
basis, each withheld fact with the rule that withheld it.

A fact its controller corrected is replayed as it stood at the moment: before an
amendment as recorded, from the amendment on as amended (with when, by whom and why it
was amended); from a retraction on it is withheld, saying so. So a replay of a moment
before a correction shows what partners saw then, and one after, what they see now.

It reads only the events the policy follows (client, agency and agreement events, by
topic), never the access records that make up most of a busy log. It still reads those
events from the start of the log: a policy snapshot index would bound that on a very
large log (noted in the README).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from consent.policy import Viewer, decide, mask
from consent.state import AmendedFact, Correction, LogState, NewFact, RetractedFact, evolve
from domain.agencies import Agency, AgencyKind
from domain.agreements import Agreement
from domain.application import AccordApplication
from domain.clients import Client
from projections.follower import topics_of


@dataclass(frozen=True)
class ReplayedFact:
    position: int
    fact_type: str
    category: str
    controller: str
    occurred_at: datetime
    recorded_at: datetime
    permitted: bool
    data: dict[str, Any] | None  # masked to the basis's fields; None when withheld
    basis: dict[str, Any] | None
    reasons: tuple[str, ...]
    #: Its controller's amendments up to the moment, oldest first, and its retraction.
    amendments: tuple[Correction, ...] = ()
    retraction: Correction | None = None


@dataclass(frozen=True)
class Replay:
    agency: str
    client_id: UUID
    purpose: str
    position: int  # the last log position the replay includes
    at: datetime  # the moment the decisions were taken at
    facts: list[ReplayedFact]
    known: bool  # whether the client existed at that position

    @property
    def permitted(self) -> list[ReplayedFact]:
        return [f for f in self.facts if f.permitted]

    @property
    def withheld(self) -> list[ReplayedFact]:
        return [f for f in self.facts if not f.permitted]


def logged_events(app: AccordApplication, topics: Sequence[str], stop: int,
                  batch_size: int) -> Iterator[tuple[int, Any]]:
    """The log's events of ``topics`` up to position ``stop``, in order, with their
    positions, read in batches (what a replay and its list of changes both walk)."""
    cursor = 0
    while cursor < stop:
        batch = app.recorder.select_notifications(
            start=cursor, limit=batch_size, stop=stop, topics=topics,
            inclusive_of_start=False)
        if not batch:
            return
        for notification in batch:
            yield notification.id, app.mapper.to_domain_event(notification)
        cursor = batch[-1].id


class PointInTime:
    """Replays the log for IG leads."""

    def __init__(self, app: AccordApplication, batch_size: int = 5000) -> None:
        self.app = app
        self.batch_size = batch_size
        self.topics = topics_of(Client, Agency, Agreement)

    def replay(self, agency: str, kind: AgencyKind, client_id: UUID, purpose: str, *,
               position: int | None = None, at: datetime | None = None) -> Replay:
        """Up to log ``position`` (decided at that event's time), or up to time ``at``
        (events recorded by then, decided at ``at``); with neither, the head and now.
        Decided at a position, time-limited bases are judged at the time of the last
        policy event the replay includes."""
        head = self.app.recorder.max_notification_id() or 0
        stop = head if position is None else min(position, head)
        until = at.astimezone(UTC) if at is not None else None
        state = LogState()
        mine: dict[int, NewFact] = {}  # the client's facts, as they stand, by position
        amendments: dict[int, list[Correction]] = {}
        retractions: dict[int, Correction] = {}
        last, last_time = 0, None
        known = False
        for notification_id, event in logged_events(self.app, self.topics, stop,
                                                    self.batch_size):
            if until is not None and event.timestamp > until:
                break
            effect = evolve(state, event, notification_id)
            last, last_time = notification_id, event.timestamp
            if isinstance(effect, NewFact) and effect.fact.client_id == client_id:
                mine[effect.fact.position] = effect
                known = True
            elif isinstance(effect, AmendedFact) and effect.fact.position in mine:
                old = mine[effect.fact.position]
                mine[effect.fact.position] = NewFact(effect.fact, effect.fact_type,
                                                     effect.data, old.recorded_at,
                                                     old.recorded_by)
                amendments.setdefault(effect.fact.position, []).append(effect.correction)
            elif isinstance(effect, RetractedFact) and effect.position in mine:
                retractions[effect.position] = effect.correction
        if until is None:
            last = stop
        if until is not None:
            moment = until
        elif position is not None and last_time is not None:
            moment = last_time
        else:
            moment = datetime.now(UTC)
        viewer = Viewer(agency, kind)
        facts = []
        for new_fact in mine.values():
            fact = new_fact.fact
            retraction = retractions.get(fact.position)
            if retraction is not None:
                permit, data, basis = False, None, None
                reasons: tuple[str, ...] = (
                    f"retracted by {fact.controller} at position {retraction.position} "
                    f"({retraction.at.isoformat()}): nobody sees it from then on",)
            else:
                decision = decide(viewer, purpose, fact, state, moment)
                permit, reasons = decision.permit, decision.reasons
                data = mask(new_fact.data, decision.fields) if decision.permit else None
                basis = decision.basis.as_json() if decision.basis else None
            facts.append(ReplayedFact(
                position=fact.position, fact_type=new_fact.fact_type,
                category=fact.category.value, controller=fact.controller,
                occurred_at=fact.occurred_at, recorded_at=new_fact.recorded_at,
                permitted=permit, data=data, basis=basis, reasons=reasons,
                amendments=tuple(amendments.get(fact.position, ())), retraction=retraction,
            ))
        return Replay(agency, client_id, purpose, last, moment, facts, known)
