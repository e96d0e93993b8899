"""The safeguarding rules and the agency views (and the replay) agree about which
agreement is in force, because they follow the policy the same way: one
``consent.state.evolve`` into a ``LogState``, stored as ``AgreementDraft.to_json`` and put
back by ``LogState.restore``, and one "agreement in force for this purpose on this day"
(``consent.policy.agreements_in_force``, whose window is the one every grant of the
agreement, so every view row on it, carries).

First on a state evolved from the aggregates' own events (an agreement in force, with an
amendment awaiting approval, with an amendment approved, revoked, out of date, not yet in
date, never approved, for another purpose), at moments on either side of its dates; then
through the API on both databases, comparing what the rules and the views store and what
an alert and a view name as the basis.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.utils import get_topic
from fastapi.testclient import TestClient

from api.bootstrap import Accord
from consent.policy import (
    BasisKind,
    Fact,
    Viewer,
    agreements_in_force,
    decide,
    standing_shares,
)
from consent.state import AgreementDraft, LogState, evolve
from domain.agencies import Agency, AgencyKind, Role
from domain.agreements import Agreement
from domain.categories import DataCategory
from projections.safeguarding import SafeguardingRules, legal_duty_basis
from projections.views import AgencyViews
from tests.builders import (
    RAISED,
    WITHHELD,
    Partnership,
    agree,
    childrens_terms,
    concern,
    events,
    hdr,
    inbox,
    post_fact,
    registered,
    view,
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


# -- through the API, on both databases ---------------------------------------------------

def _in_force(state: LogState) -> dict[UUID, tuple[int, dict[str, Any]]]:
    return {agreement_id: (agreement.version, agreement.terms.model_dump(mode="json"))
            for agreement_id, agreement in state.agreements.items()}


def test_the_rules_and_the_views_store_and_use_the_same_agreements_in_force(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    current = agree(api, partnership, childrens_terms())
    agree(api, partnership, childrens_terms(valid_from="2020-01-01", valid_to="2021-12-31"))
    revoked = agree(api, partnership, childrens_terms())
    lead = hdr(partnership, "childrens", Role.IG_LEAD)
    assert api.post(f"/v1/agreements/{revoked}/revoke", json={"reason": "superseded"},
                    headers=lead).status_code == 200
    amendment = childrens_terms(purposes=["direct_care"])
    amend = api.post(f"/v1/agreements/{current}/amend", json=amendment,
                     headers=hdr(partnership, "tp", Role.IG_LEAD))
    assert amend.status_code == 200, amend.text
    client_id = registered(api, partnership)
    raised_at = post_fact(api, partnership, client_id, concern())

    [alert] = inbox(api, partnership)
    assert [(a["agreement_id"], a["agreement_version"]) for a in alert["basis"]["agreements"]] \
        == [(current, 1)]
    seen = view(api, partnership, client_id, "childrens", PURPOSE, position=raised_at)
    assert {(f["basis"]["agreement_id"], f["basis"]["agreement_version"])
            for f in seen.json()["facts"]} == {(current, 1)}
    _same_state_stored(api, accord)

    # Version 2 names another purpose: in force once both approve, and then neither the
    # rules nor the views have an agreement for safeguarding children.
    for party in ("tp", "childrens"):
        assert api.post(f"/v1/agreements/{current}/approve",
                        headers=hdr(partnership, party, Role.IG_LEAD)).status_code == 200
    withheld_at = post_fact(api, partnership, client_id, concern())
    assert len(inbox(api, partnership)) == 1
    assert [e.reason for e in events(accord, WITHHELD) if e.trigger_position == withheld_at] \
        == ["no agreement in force from tp to childrens for safeguarding_children with a "
            "legal-duty basis"]
    assert view(api, partnership, client_id, "childrens", PURPOSE,
                position=withheld_at).status_code == 403  # sees it, not for this purpose
    _same_state_stored(api, accord)
    assert len(events(accord, RAISED)) == 1


def _same_state_stored(api: TestClient, accord: Accord) -> None:
    """What the rules and the views stored beside their positions (both caught up) loads
    to the same agencies and agreements in force."""
    projections = api.app.state.projections  # type: ignore[attr-defined]
    projections.catch_up()
    rules, views = projections.find(SafeguardingRules), projections.find(AgencyViews)
    with accord.engine.connect() as conn:
        by_rules, by_views = rules._load_state(conn), views._load_state(conn)
    assert by_rules.agency_kinds == by_views.agency_kinds
    assert _in_force(by_rules) == _in_force(by_views)
    assert by_rules.drafts == by_views.drafts
