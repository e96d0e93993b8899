"""Where a replay's answer changes: the log positions at which what an agency could see of
a client, for a purpose, became different, so that an IG lead can step through time from
one change to the next instead of one log position at a time.

A replay (``projections.replay``) answers for one moment. Asking it at every position to
find the changes would read the log once per position; this walks the log once, with the
same ``evolve`` and ``decide`` as the replay, and decides again only where the answer can
have changed:

* after an event about the client (a fact, its correction, a consent, an emergency grant
  or its end, an erasure), an agreement coming into force or revoked, or an agency
  registered;
* after the first event at or past a moment where a basis starts or lapses (an
  agreement's first or last day, a consent's expiry, an emergency grant's start, expiry
  or end): a replay at a position decides at that position's time, so time passing
  changes its answer only at the next event.

At each position it builds the client's facts exactly as the replay does and keeps those
the asking IG lead is shown (``shown_to``: the replay route's rule), and compares them
with the answer before: which facts, permitted or withheld, with which data, basis,
reasons and corrections. A test replays every position of a log and finds the same
changes (tests/integration/test_replay_changes.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from consent.policy import Viewer, decide, mask
from consent.state import (
    AgreementChanged,
    AmendedFact,
    ClientPolicyChanged,
    Correction,
    EmergencyEnded,
    EmergencyGranted,
    LogState,
    NewFact,
    RetractedFact,
    evolve,
)
from domain.agencies import Agency, AgencyKind
from domain.agreements import Agreement
from domain.application import AccordApplication
from domain.clients import Client
from projections.follower import topics_of
from projections.replay import ReplayedFact, logged_events

Shown = Callable[[ReplayedFact], bool]


def shown_to(ig_agency: str, agency: str) -> Shown:
    """What a replay of ``agency``'s view shows an IG lead of ``ig_agency`` (the replay
    route's rule): its own agency's view, every fact it could see; another agency's view,
    only the asking agency's own facts, permitted or withheld."""
    own_view = ig_agency == agency
    return lambda fact: fact.controller == ig_agency or (own_view and fact.permitted)


@dataclass(frozen=True)
class Change:
    """From ``position`` on (recorded at ``at``), the answer was different from before:
    ``permitted`` facts shown and ``withheld`` withheld."""

    position: int
    at: datetime
    permitted: int
    withheld: int


@dataclass
class Changes:
    """Every change up to ``head`` (the last log position walked), oldest first, and each
    fact any of the answers showed, as last shown (for the access record)."""

    head: int
    changes: list[Change] = field(default_factory=list)
    facts: dict[int, ReplayedFact] = field(default_factory=dict)


def answer_of(facts: Iterable[ReplayedFact]) -> tuple[Any, ...]:
    """What an answer says, comparable: each fact shown, permitted or withheld, with its
    data, basis, reasons and corrections."""
    return tuple(
        (f.position, f.permitted, f.fact_type, f.category, f.controller,
         f.occurred_at.isoformat(), json.dumps(f.data, sort_keys=True, default=str),
         json.dumps(f.basis, sort_keys=True, default=str), f.reasons,
         tuple(c.position for c in f.amendments),
         f.retraction.position if f.retraction else None)
        for f in sorted(facts, key=lambda f: f.position)
    )


class ReplayChanges:
    """Walks the log once for IG leads, finding where a replay's answer changes."""

    def __init__(self, app: AccordApplication, batch_size: int = 5000) -> None:
        self.app = app
        self.batch_size = batch_size
        self.topics = topics_of(Client, Agency, Agreement)

    def changes(self, agency: str, kind: AgencyKind, client_id: UUID, purpose: str,
                shown: Shown) -> Changes:
        head = self.app.recorder.max_notification_id() or 0
        walk = _Walk(Viewer(agency, kind), client_id, purpose, shown)
        result = Changes(head)
        for position, event in logged_events(self.app, self.topics, head, self.batch_size):
            walk.step(event, position, result)
        return result


class _Walk:
    """The replay's state along the log, for one viewer, client and purpose."""

    def __init__(self, viewer: Viewer, client_id: UUID, purpose: str, shown: Shown) -> None:
        self.viewer = viewer
        self.client_id = client_id
        self.purpose = purpose
        self.shown = shown
        self.state = LogState()
        self.mine: dict[int, NewFact] = {}  # the client's facts, as they stand
        self.amendments: dict[int, list[Correction]] = {}
        self.retractions: dict[int, Correction] = {}
        self.answer: tuple[Any, ...] = ()
        self.next_boundary: datetime | None = None

    def step(self, event: Any, position: int, result: Changes) -> None:
        effect = evolve(self.state, event, position)
        moment: datetime = event.timestamp
        relevant = self._follow(effect) or isinstance(effect, AgreementChanged) \
            or isinstance(event, Agency.Registered)
        if not relevant and (self.next_boundary is None or moment < self.next_boundary):
            return
        facts = [f for f in self._facts(moment) if self.shown(f)]
        answer = answer_of(facts)
        if answer != self.answer:
            self.answer = answer
            result.changes.append(Change(position, moment, sum(f.permitted for f in facts),
                                         sum(not f.permitted for f in facts)))
            result.facts.update((f.position, f) for f in facts)
        self.next_boundary = min((b for b in self._boundaries() if b > moment), default=None)

    def _follow(self, effect: Any) -> bool:
        """Keeps the client's facts as the replay does; whether the effect concerns it."""
        if isinstance(effect, NewFact):
            if effect.fact.client_id != self.client_id:
                return False
            self.mine[effect.fact.position] = effect
            return True
        if isinstance(effect, AmendedFact):
            old = self.mine.get(effect.fact.position)
            if old is None:
                return False
            self.mine[effect.fact.position] = NewFact(effect.fact, effect.fact_type,
                                                      effect.data, old.recorded_at,
                                                      old.recorded_by)
            self.amendments.setdefault(effect.fact.position, []).append(effect.correction)
            return True
        if isinstance(effect, RetractedFact):
            if effect.position not in self.mine:
                return False
            self.retractions[effect.position] = effect.correction
            return True
        if isinstance(effect, ClientPolicyChanged | EmergencyGranted | EmergencyEnded):
            return effect.client_id == self.client_id
        return False

    def _facts(self, moment: datetime) -> list[ReplayedFact]:
        """The client's facts as a replay at this moment gives them (``PointInTime``)."""
        facts = []
        for new_fact in self.mine.values():
            fact = new_fact.fact
            retraction = self.retractions.get(fact.position)
            if retraction is not None:
                permit, data, basis = False, None, None
                reasons: tuple[str, ...] = (
                    f"retracted by {fact.controller} at position {retraction.position} "
                    f"({retraction.at.isoformat()}): nobody sees it from then on",)
            else:
                decision = decide(self.viewer, self.purpose, fact, self.state, moment)
                permit, reasons = decision.permit, decision.reasons
                data = mask(new_fact.data, decision.fields) if decision.permit else None
                basis = decision.basis.as_json() if decision.basis else None
            facts.append(ReplayedFact(
                position=fact.position, fact_type=new_fact.fact_type,
                category=fact.category.value, controller=fact.controller,
                occurred_at=fact.occurred_at, recorded_at=new_fact.recorded_at,
                permitted=permit, data=data, basis=basis, reasons=reasons,
                amendments=tuple(self.amendments.get(fact.position, ())),
                retraction=retraction,
            ))
        return facts

    def _boundaries(self) -> Iterable[datetime]:
        """The moments at which a basis for the client's facts starts or lapses."""
        for agreement in self.state.agreements.values():
            yield agreement.starts
            if agreement.ends is not None:
                yield agreement.ends
        for consent in self.state.consents_of(self.client_id):
            if consent.expires_at is not None:
                yield consent.expires_at
        for grant in self.state.emergencies_of(self.client_id):
            yield grant.granted_at
            yield grant.until
