"""The read side (projections/queries.py), called as any entry point calls it: no HTTP.

The JSON API's routers render these results, and the web application will render the
same ones, so the rules of what a caller may read live here, not in a router: the
permission table first (before anything is looked up), then the commissioner rule, the
identity masking, 403 for a client seen but not for this purpose, and the same 404 for
a client an agency may not see as for one that does not exist. The API's own tests
(test_views_api, test_access_matrix, test_disclosure_accountability) check the same
answers through HTTP; these check that they do not need it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.agencies import AgencyKind, Role
from domain.application import AccordApplication, Actor
from domain.errors import ClientNotFound, Forbidden, InvalidCommand
from domain.identity import Identity, IdentityErased
from domain.permissions import PERMISSIONS, Action, permits
from domain.vocabulary import Purpose
from projections import queries
from projections.views import ViewItem
from tests.builders import Untouchable, identity

P, S, IG, A, C, PA = (Role.PRACTITIONER, Role.SAFEGUARDING, Role.IG_LEAD, Role.ADMIN,
                      Role.COMMISSIONER, Role.PARTNERSHIP_ADMIN)
CLIENT = uuid4()
OTHER = uuid4()
NOW = datetime(2026, 1, 5, 9, tzinfo=UTC)


def actor(role: Role, kind: AgencyKind | None = AgencyKind.POLICE,
          agency: str = "police") -> Actor:
    return Actor(uuid4(), "someone", agency, kind, role)


def item(category: str, *, kind: str = "agreement", controller: str = "tp",
         fields: tuple[str, ...] | None = None, agreement: str = "a1",
         position: int = 7) -> ViewItem:
    return ViewItem(
        position=position, fact_type=f"{category}_recorded", category=category,
        controller=controller, occurred_at=NOW, recorded_at=NOW, fields=fields,
        data={"status": "settled"}, purpose="care_coordination",
        basis={"kind": kind, "agreement_id": agreement}, reason="shared",
    )


class Views:
    """A stand-in for the agency views: what ``read`` and ``matching_clients`` answer."""

    def __init__(self, seen: dict[UUID, list[ViewItem]],
                 matching: tuple[UUID, ...] = ()) -> None:
        self.seen = seen
        self.matching = matching
        self.asked: list[tuple[str, UUID, str]] = []

    def read(self, agency: str, client_id: UUID, purpose: str,
             at: datetime | None = None) -> tuple[int, bool, list[ViewItem]]:
        self.asked.append((agency, client_id, purpose))
        items = self.seen.get(client_id)
        return 42, items is not None, list(items or [])

    def matching_clients(self, fingerprint: str) -> list[UUID]:
        assert fingerprint == "fingerprint"
        return list(self.matching)


class App:
    """A stand-in for the application's lookups a view and a match use."""

    def __init__(self, erased: bool = False) -> None:
        self.erased = erased

    def identity_of(self, client_id: UUID) -> Identity:
        if self.erased:
            raise IdentityErased(str(client_id))
        return identity()

    def match_keys(self, nhs_number: str | None, family_name: str | None,
                   date_of_birth: date | None) -> str:
        if nhs_number is None and (family_name is None or date_of_birth is None):
            raise InvalidCommand("body", "give nhs_number, or family_name and date_of_birth")
        return "fingerprint"


def view(by: Actor, views: Views, app: Any = None,
         purpose: Purpose = Purpose.CARE_COORDINATION) -> queries.PartnerView:
    return queries.partner_view(app or App(), views, by, CLIENT, purpose)  # type: ignore[arg-type]


def match(by: Actor, views: Views, purpose: Purpose | None = Purpose.CARE_COORDINATION,
          nhs_number: str | None = "9434765919") -> queries.Match:
    return queries.match(App(), views, by, nhs_number=nhs_number,  # type: ignore[arg-type]
                         family_name=None, date_of_birth=None, purpose=purpose)


# -- the permission table comes first ------------------------------------------------------

Query = Callable[[Any, Actor], object]
#: Each read-side query, called as ``by`` on an application and views that fail if used.
QUERIES: dict[Action, Query] = {
    Action.READ_RECORD: lambda app, by: queries.client_record(app, CLIENT, by),
    Action.READ_CONSENTS: lambda app, by: queries.consents(app, CLIENT, by),
    Action.LIST_PRINCIPALS: lambda app, by: queries.principals(app, by.agency, by),
    Action.LIST_AGREEMENTS: lambda app, by: queries.agreements(app, by),
    Action.READ_AGREEMENT: lambda app, by: queries.agreement(app, CLIENT, by),
    Action.READ_VIEW: lambda app, by: queries.partner_view(
        app, Untouchable(), by, CLIENT, Purpose.DIRECT_CARE),  # type: ignore[arg-type]
    Action.MATCH: lambda app, by: queries.match(
        app, Untouchable(), by, nhs_number="9434765919",  # type: ignore[arg-type]
        family_name=None, date_of_birth=None, purpose=Purpose.DIRECT_CARE),
    Action.READ_HOUSEHOLD: lambda app, by: queries.household(
        app, Untouchable(), by, CLIENT, Purpose.DIRECT_CARE),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("action", list(QUERIES))
def test_each_query_refuses_whom_the_table_refuses_before_looking_anything_up(
        action: Action) -> None:
    for role in Role:
        for kind in (*AgencyKind, None):
            by = actor(role, kind)
            if permits(action, role, kind):
                continue
            with pytest.raises(Forbidden) as refused:
                QUERIES[action](Untouchable(), by)
            assert str(refused.value) == PERMISSIONS[action].refusal(role, kind), (role, kind)


@pytest.mark.parametrize("action", list(QUERIES))
def test_a_permitted_caller_gets_past_the_table(action: Action) -> None:
    """The query reads the table, not a list of its own: whoever the table permits
    reaches the lookup (here an application that fails if used)."""
    for role in Role:
        for kind in (*AgencyKind, None):
            if permits(action, role, kind):
                with pytest.raises(AssertionError, match="before the role was checked"):
                    QUERIES[action](Untouchable(), actor(role, kind))


def test_the_read_side_knows_nothing_of_http() -> None:
    """The web application (and the CLI) call the same functions without FastAPI."""
    code = ("import sys, projections.queries; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'fastapi', 'starlette', 'api'}))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert shown.stdout.strip() == "[]", shown.stdout + shown.stderr


# -- a partner's view --------------------------------------------------------------------------


def test_a_view_shows_only_the_identity_fields_a_share_names() -> None:
    views = Views({CLIENT: [item("identity", fields=("family_name",), position=1),
                            item("housing", position=3)]})
    shown = view(actor(P), views)
    assert shown.identity == {"family_name": "Example"}
    assert [i.category for i in shown.facts] == ["housing"]
    assert [i.category for i in shown.shown] == ["identity", "housing"]  # both are recorded
    assert (shown.client_id, shown.agency, shown.position) == (CLIENT, "police", 42)
    assert views.asked == [("police", CLIENT, "care_coordination")]


def test_a_view_without_a_share_of_identity_has_none() -> None:
    shown = view(actor(P), Views({CLIENT: [item("housing")]}))
    assert shown.identity is None and [i.category for i in shown.facts] == ["housing"]


def test_an_unseen_client_is_unknown_and_a_seen_one_without_this_purpose_is_refused() -> None:
    with pytest.raises(ClientNotFound):
        view(actor(P), Views({}))
    with pytest.raises(Forbidden) as refused:
        view(actor(P), Views({CLIENT: []}))
    assert "names the purpose care_coordination" in str(refused.value)


def test_an_erased_client_is_as_unknown_even_with_a_share_of_identity() -> None:
    with pytest.raises(ClientNotFound):
        view(actor(P), Views({CLIENT: [item("identity")]}), App(erased=True))


def test_a_commissioner_reads_no_per_client_view() -> None:
    commissioner = actor(C, AgencyKind.COMMISSIONER, "commissioner")
    with pytest.raises(Forbidden, match="aggregate reports"):
        view(commissioner, Untouchable(), purpose=Purpose.COMMISSIONING)  # type: ignore[arg-type]


# -- matching ---------------------------------------------------------------------------------


def test_a_partner_is_told_of_a_client_only_on_a_share_of_identity() -> None:
    police = actor(P)
    views = Views({CLIENT: [item("housing")], OTHER: [item("identity")]},
                  matching=(CLIENT, OTHER))
    found = match(police, views)
    assert found.client_id == OTHER
    with pytest.raises(ClientNotFound):
        match(police, Views({CLIENT: [item("housing")]}, matching=(CLIENT,)))


def test_an_ig_lead_is_told_only_of_its_own_agencys_clients() -> None:
    lead = actor(IG)
    views = Views({CLIENT: [item("identity")], OTHER: [item("housing", kind="controller")]},
                  matching=(CLIENT, OTHER))
    assert match(lead, views, purpose=None).client_id == OTHER
    assert views.asked[0][2] == "direct_care"  # its own record holds for every purpose


def test_more_than_one_client_is_an_ambiguous_match() -> None:
    views = Views({CLIENT: [item("identity")], OTHER: [item("identity")]},
                  matching=(CLIENT, OTHER))
    with pytest.raises(queries.AmbiguousMatch, match="match on the NHS number"):
        match(actor(P), views)


def test_a_match_names_each_basis_once() -> None:
    views = Views({CLIENT: [item("identity", fields=("family_name",)),
                            item("identity", fields=("date_of_birth",)),
                            item("identity", controller="probation", agreement="a2")]},
                  matching=(CLIENT,))
    found = match(actor(P), views)
    assert [(i.controller, i.basis["agreement_id"]) for i in found.bases] == [
        ("tp", "a1"), ("probation", "a2")]


def test_a_partner_states_its_purpose_and_a_commissioner_matches_only_for_commissioning(
) -> None:
    with pytest.raises(InvalidCommand) as missing:
        match(actor(P), Untouchable(), purpose=None)  # type: ignore[arg-type]
    assert missing.value.field == "purpose"
    commissioner = actor(C, AgencyKind.COMMISSIONER, "commissioner")
    with pytest.raises(Forbidden, match="only for the purpose commissioning"):
        match(commissioner, Untouchable())  # type: ignore[arg-type]
    # For commissioning, its own agency's records (controller rows) are no basis.
    views = Views({CLIENT: [item("identity", kind="controller")]}, matching=(CLIENT,))
    with pytest.raises(ClientNotFound):
        match(commissioner, views, purpose=Purpose.COMMISSIONING)
    views = Views({CLIENT: [item("identity")]}, matching=(CLIENT,))
    assert match(commissioner, views, purpose=Purpose.COMMISSIONING).client_id == CLIENT


def test_bad_search_terms_are_refused_before_the_commissioner_rule() -> None:
    """As before the read side existed: a 422 for the terms comes before a 403."""
    commissioner = actor(C, AgencyKind.COMMISSIONER, "commissioner")
    with pytest.raises(InvalidCommand):
        match(commissioner, Untouchable(), nhs_number=None)  # type: ignore[arg-type]


def test_the_application_no_longer_answers_reads() -> None:
    """Reads are the read side's: the application keeps only its commands (and the
    lookups commands need), so no second copy of a read rule can drift."""
    for name in ("client_record", "consents", "principals", "agreements_of", "agreement"):
        assert not hasattr(AccordApplication, name), name
