"""The safeguarding rules and the agency views (and the replay) agree about which
agreement is in force, because they follow the policy the same way: one
``consent.state.evolve`` into a ``LogState``, stored as ``AgreementDraft.to_json`` and put
back by ``LogState.restore``, and one "agreement in force for this purpose on this day"
(``consent.policy.agreements_in_force``, whose window is the one every grant of the
agreement, so every view row on it, carries).

First on a state evolved from the aggregates' own events (an agreement in force, with an
amendment awaiting approval, with an amendment approved, revoked, out of date, not yet in
date, never approved, for another purpose), at moments on either side of its dates. The
same through the API on both databases, comparing what the rules and the views store and
what an alert and a view name as the basis, is tests/integration/test_one_policy_follower.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.utils import get_topic

from consent.policy import (
    BasisKind,
    Fact,
    Viewer,
    agreements_in_force,
    decide,
    standing_shares,
)
from consent.state import AgreementDraft, LogState, evolve
from domain.agencies import Agency, AgencyKind
from domain.agreements import Agreement
from domain.categories import DataCategory
from projections.safeguarding import legal_duty_basis
from tests.builders import (
    childrens_terms,
)

PURPOSE = "safeguarding_children"
CHILDRENS = Viewer("childrens", AgencyKind.CHILDRENS_SERVICES)
#: Moments: before, inside and after the dates of the terms below.
EARLY = datetime(2024, 6, 1, 9, tzinfo=UTC)
LAST_MOMENT_OF_2025 = datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
FIRST_MOMENT_OF_2026 = datetime(2026, 1, 1, tzinfo=UTC)
LATER = datetime(2026, 9, 1, 12, tzinfo=UTC)
MOMENTS = (EARLY, LAST_MOMENT_OF_2025, FIRST_MOMENT_OF_2026, LATER)
#: Terms valid from 2024-04-01, open-ended.
OPEN = childrens_terms()
#: Terms that ran out at the end of 2025.
ENDED_2025 = childrens_terms(valid_to="2025-12-31")


class _Agreement:
    """One agreement's events, as its aggregate records them (built here directly, so
    that only ``evolve`` is under test)."""

    def __init__(self, terms: dict[str, Any], *, in_force: bool = True) -> None:
        self.id = uuid4()
        self.events: list[Any] = [Agreement.Proposed(
            originator_id=self.id, originator_version=1, timestamp=EARLY,
            originator_topic=get_topic(Agreement), controller="tp", terms=terms,
            proposed_by="tp:ig")]
        if in_force:
            self.comes_into_force(1)

    def _next(self, kind: type[Any], **fields: Any) -> _Agreement:
        self.events.append(kind(originator_id=self.id, originator_version=len(self.events) + 1,
                                timestamp=EARLY, **fields))
        return self

    def comes_into_force(self, version: int) -> _Agreement:
        return self._next(Agreement.CameIntoForce, version=version)

    def amended(self, terms: dict[str, Any]) -> _Agreement:
        return self._next(Agreement.Amended, terms=terms, proposed_by="tp:ig")

    def revoked(self) -> _Agreement:
        return self._next(Agreement.Revoked, agency="childrens", reason="superseded",
                          revoked_by="childrens:ig")


def _state(*agreements: _Agreement) -> LogState:
    """The policy state after the two agencies and the agreements, through ``evolve``."""
    registered = [Agency.Registered(
        originator_id=uuid4(), originator_version=1, timestamp=EARLY,
        originator_topic=get_topic(Agency), slug=slug, name=slug, kind=kind,
        registered_by="operator")
        for slug, kind in (("tp", AgencyKind.TREATMENT_PROVIDER),
                           ("childrens", AgencyKind.CHILDRENS_SERVICES))]
    state = LogState()
    for position, event in enumerate(chain(registered, *(a.events for a in agreements)), 1):
        evolve(state, event, position)
    return state


#: Each history, with the version of its agreement in force for the purpose at each of
#: ``MOMENTS`` (None: none).
HISTORIES = {
    "in force": (lambda: _Agreement(OPEN), (1, 1, 1, 1)),
    "amendment awaiting approval": (lambda: _Agreement(OPEN).amended(ENDED_2025),
                                    (1, 1, 1, 1)),
    "amendment approved": (lambda: _Agreement(OPEN).amended(ENDED_2025).comes_into_force(2),
                           (2, 2, None, None)),
    "revoked": (lambda: _Agreement(OPEN).revoked(), (None, None, None, None)),
    "out of date": (lambda: _Agreement(ENDED_2025), (1, 1, None, None)),
    "not yet in date": (lambda: _Agreement(childrens_terms(valid_from="2026-01-01")),
                        (None, None, 1, 1)),
    "never approved": (lambda: _Agreement(OPEN, in_force=False), (None, None, None, None)),
    "for another purpose": (lambda: _Agreement(childrens_terms(purposes=["direct_care"])),
                            (None, None, None, None)),
}


def _rules(state: LogState, at: datetime) -> tuple[str, int] | None:
    """What an alert's basis would name."""
    basis = legal_duty_basis(state, "tp", "childrens", PURPOSE, at)
    return None if basis is None else (basis["agreement_id"], basis["agreement_version"])


def _views(state: LogState, at: datetime) -> set[tuple[str, int]]:
    """The legal-duty bases of the views' rows of tp's safeguarding facts that hold at
    ``at`` (the shares the projector stores)."""
    return {(str(s.grant.basis.agreement_id), s.grant.basis.agreement_version or 0)
            for s in standing_shares(state)
            if s.agency == "childrens" and s.controller == "tp"
            and s.category is DataCategory.SAFEGUARDING_CHILDREN and s.grant.purpose == PURPOSE
            and s.grant.basis.kind is BasisKind.LEGAL_DUTY and s.grant.holds_at(at)}


def _replay(state: LogState, at: datetime) -> tuple[str, int] | None:
    """The basis ``decide`` (so the replay) gives children's services for one of tp's
    safeguarding facts at ``at``."""
    fact = Fact(uuid4(), 1, DataCategory.SAFEGUARDING_CHILDREN, "tp", at - timedelta(days=1))
    decision = decide(CHILDRENS, PURPOSE, fact, state, at)
    if not decision.permit or decision.basis is None:
        return None
    return str(decision.basis.agreement_id), decision.basis.agreement_version or 0


@pytest.mark.parametrize("history", sorted(HISTORIES))
def test_the_rules_the_views_and_the_replay_name_the_same_agreement_in_force(
        history: str) -> None:
    make, versions = HISTORIES[history]
    agreement = make()
    state = _state(agreement)
    # The rules keep their state the way the views do: stored and put back, it answers alike.
    restored = LogState(agency_kinds=dict(state.agency_kinds))
    for agreement_id, draft in state.drafts.items():
        restored.restore(agreement_id, AgreementDraft.from_json(draft.to_json()))
    for at, version in zip(MOMENTS, versions, strict=True):
        expected = None if version is None else (str(agreement.id), version)
        in_force = agreements_in_force(state, "tp", "childrens", PURPOSE, at)
        assert [(str(a.agreement_id), a.version) for a in in_force] == \
            ([] if expected is None else [expected]), (history, at)
        assert _rules(state, at) == _rules(restored, at) == expected, (history, at)
        assert _views(state, at) == _views(restored, at) == \
            (set() if expected is None else {expected}), (history, at)
        assert _replay(state, at) == expected, (history, at)


def test_of_several_in_force_the_rules_name_the_first_by_id_and_the_views_show_each() -> None:
    agreements = [_Agreement(OPEN), _Agreement(OPEN), _Agreement(ENDED_2025),
                  _Agreement(OPEN).revoked()]
    state = _state(*agreements)
    live = sorted(str(a.id) for a in agreements[:2])
    assert _rules(state, LATER) == (min(live), 1)
    assert _views(state, LATER) == {(agreement_id, 1) for agreement_id in live}
    assert _rules(state, EARLY) == (min(str(a.id) for a in agreements[:3]), 1)
    assert len(_views(state, EARLY)) == 3
