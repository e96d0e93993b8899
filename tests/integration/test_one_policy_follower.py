"""One follower of the policy state, through the API on both databases: the safeguarding
rules and the views store the same agencies and agreements in force beside their
positions, and name the same agreement (its pure half, over histories built event by
event, is tests/unit/test_one_policy_follower.py)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from api.bootstrap import Accord
from consent.state import LogState
from domain.agencies import Role
from projections.safeguarding import SafeguardingRules
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
