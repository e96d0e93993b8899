"""Who may call what: every endpoint x every role x whose resource, as one table.

The table is generated from the permission table (``domain.permissions``): each route
declares the one action it offers (its actor dependency in ``api.deps``), and a caller
whose role, in its agency's kind, the table does not permit that action gets 403. The
endpoints are enumerated from the app itself, so a route that declares no action, or
whose action has no entry in the table, fails ``test_every_route_declares_an_action``.

What a caller the table permits gets is the data-visibility part, stated here per route
(``PERMITTED``): one status per column,

* ``own``:        a caller from treatment provider ``tp`` on ``tp``'s client, agreement,
                  principal or agency;
* ``other``:      a caller from ``tp`` on the same kind of resource of ``tp2``, the other
                  treatment provider;
* ``police``:     a caller from ``police`` on ``tp``'s resource;
* ``commission``: a caller from the ``commissioner`` agency on ``tp``'s resource.

No data-sharing agreement is in force, so no partner has a basis to see a client: a
client of another agency must be indistinguishable from an unknown one (404).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import fastapi.routing
import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.bootstrap import Accord
from api.deps import route_actions
from domain.agencies import AgencyKind, Role
from domain.agreements import AgreementTerms
from domain.application import OPERATOR, Actor
from domain.identity import Identity
from domain.permissions import PERMISSIONS, Action, permits, roles_for
from domain.vocabulary import Purpose
from infra.settings import Settings
from tests.builders import (
    VALID_IDENTITY,
    Partnership,
    access_records,
    changes,
    fhir_consent,
    housing_terms,
    nhs_number,
)

COLUMNS = ("own", "other", "police", "commission")
CALLER = {"own": "tp", "other": "tp", "police": "police", "commission": "commissioner"}
#: Whose resource each column's caller acts on.
OWNER = {"own": "tp", "other": "tp2", "police": "tp", "commission": "tp"}
#: The kind of the caller's agency in each column (the table is asked with it).
KIND = {"own": AgencyKind.TREATMENT_PROVIDER, "other": AgencyKind.TREATMENT_PROVIDER,
        "police": AgencyKind.POLICE, "commission": AgencyKind.COMMISSIONER}
ROLES = (Role.PRACTITIONER, Role.SAFEGUARDING, Role.IG_LEAD, Role.ADMIN, Role.COMMISSIONER,
         Role.PARTNERSHIP_ADMIN)
P, S, I, A, C, PA = ROLES  # noqa: E741 - the roles' initials read best in the table

Row = tuple[int, int, int, int]  # statuses for (own, other, police, commission)
#: A permitted caller's statuses; None in a column where the table refuses every role the
#: row is for (by its agency's kind), so that the cell is the table's 403.
Permitted = tuple[int | None, int | None, int | None, int | None]
ALL = {P, S, I, A, C, PA}


def only(*roles: Role) -> frozenset[Role]:
    return frozenset(roles)


DENIED: Row = (403, 403, 403, 403)
CONTROLLER_ONLY = (404, 404, 404)  # other, police, commission: not their client
EVERYWHERE = (200, 200, 200, 200)

#: The API's own description is public: it declares no action and needs no token.
PUBLIC = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"),
          ("GET", "/redoc"), ("GET", "/docs/assets/{name}")}

def is_page(path: str) -> bool:
    """The web application's routes (``/`` and ``/ui``): their matrix, signed in by session
    instead of token, is tests/e2e/test_ui_access_matrix.py, from the same table."""
    return path == "/" or path == "/ui" or path.startswith("/ui/")


#: What a caller whose role the table permits gets, per route: one row for every such
#: role, or {roles: row} where the permitted roles differ in scope (each permitted role
#: in exactly one). Every other cell is the table's 403.
PERMITTED: dict[tuple[str, str], Permitted | dict[frozenset[Role], Permitted]] = {
    # Clients: only a treatment provider's practitioner registers (the police and the
    # commissioner are of other kinds).
    ("POST", "/v1/clients"): (201, 201, None, None),
    ("POST", "/v1/clients/{client_id}/events"): (201, *CONTROLLER_ONLY),
    ("GET", "/v1/clients/{client_id}/record"): (200, *CONTROLLER_ONLY),
    # The client's rights over the record: the registering controller's IG lead erases
    # (a fresh client each cell), places and lifts a legal hold, restricts processing and
    # lifts it; to anyone else the client is as unknown.
    ("POST", "/v1/clients/{client_id}/erase"): (200, *CONTROLLER_ONLY),
    ("POST", "/v1/clients/{client_id}/legal-hold"): (200, *CONTROLLER_ONLY),
    ("POST", "/v1/clients/{client_id}/legal-hold/lift"): (200, *CONTROLLER_ONLY),
    ("POST", "/v1/clients/{client_id}/restriction"): (200, *CONTROLLER_ONLY),
    ("POST", "/v1/clients/{client_id}/restriction/lift"): (200, *CONTROLLER_ONLY),
    # Flags: an agency holding its own record of the client sets, reads and removes its
    # own flags (each cell a fresh client, which no other cell reads); to anyone else the
    # client is as unknown.
    ("POST", "/v1/clients/{client_id}/flags"): (201, *CONTROLLER_ONLY),
    ("POST", "/v1/clients/{client_id}/flags/{flag_id}/remove"): (200, *CONTROLLER_ONLY),
    ("GET", "/v1/clients/{client_id}/flags"): (200, *CONTROLLER_ONLY),
    # Correcting the record: only the fact's controller amends or retracts it (each cell
    # corrects a fresh fact); anyone else is refused as for an unknown client.
    ("POST", "/v1/clients/{client_id}/facts/{position}/amend"): (200, *CONTROLLER_ONLY),
    ("POST", "/v1/clients/{client_id}/facts/{position}/retract"): (200, *CONTROLLER_ONLY),
    # Consent is recorded by the client's own workers and read by them and their IG lead.
    ("POST", "/v1/clients/{client_id}/consents"): (201, *CONTROLLER_ONLY),
    # Only the agency that recorded a consent withdraws it: here the other provider and
    # the police have each recorded a fact about the client (under an emergency grant), so
    # they control a fact of it, and the consent is still as unknown to them.
    ("POST", "/v1/clients/{client_id}/consents/{consent_id}/withdraw"): (200, *CONTROLLER_ONLY),
    ("GET", "/v1/clients/{client_id}/consents"): (200, *CONTROLLER_ONLY),
    # A consent as FHIR is a read of the client's consents; a partner system's FHIR
    # consent is recorded for the agency's own client its NHS number names (another
    # agency's client is as unknown: 404).
    ("GET", "/v1/clients/{client_id}/consents/{consent_id}/fhir"): (200, *CONTROLLER_ONLY),
    ("POST", "/v1/fhir/Consent"): (201, *CONTROLLER_ONLY),
    # Views and matching: the controller sees its own client; nobody else has a basis here.
    # The commissioner role reads no per-client view (it works with aggregates: the table
    # refuses it, and the view records the refusal) and matches only for the purpose
    # commissioning (these cells ask for direct care): both refused before any client is
    # looked up, so its 403 says nothing of the client. A match answers a partner only on
    # a basis that shares identity (test_a_match_answers_only_on_a_share_of_identity), and
    # an IG lead for a client its own agency holds a record of (a subject access request).
    ("GET", "/v1/clients/{client_id}/view"): (200, *CONTROLLER_ONLY),
    ("POST", "/v1/clients/match"): {
        only(P, S, I): (200, *CONTROLLER_ONLY),
        only(C): DENIED,
    },
    # A name search answers as a match does (here for each owner's client by the start of
    # its family name); a chronology is refused and not found as the view is.
    ("POST", "/v1/clients/search"): {
        only(P, S, I): (200, *CONTROLLER_ONLY),
        only(C): DENIED,
    },
    ("GET", "/v1/clients/{client_id}/chronology"): (200, *CONTROLLER_ONLY),
    # A cohort lists the clients the caller's agency may see for the purpose: its own,
    # or (here, with no agreement) nobody; either way a 200, and recorded.
    ("GET", "/v1/clients"): EVERYWHERE,
    # Accountability: IG leads search reads of their data and by their staff; the
    # controller answers subject access requests; replay rebuilds what an agency could see
    # (here: the police's view, which the controller's IG lead may replay for its data).
    ("GET", "/v1/audit/accesses"): EVERYWHERE,
    ("GET", "/v1/clients/{client_id}/disclosures"): (200, *CONTROLLER_ONLY),
    # A subject access request: the registering controller's IG lead only.
    ("GET", "/v1/clients/{client_id}/subject-access"): (200, *CONTROLLER_ONLY),
    ("GET", "/v1/clients/{client_id}/rights"): (200, *CONTROLLER_ONLY),
    ("GET", "/v1/audit/replay"): (200, *CONTROLLER_ONLY),
    ("GET", "/v1/audit/replay/changes"): (200, *CONTROLLER_ONLY),
    # Tamper evidence: the signed Merkle tree head and its proofs, for IG leads and
    # administrators of any agency (a partner checks them offline).
    ("GET", "/v1/audit/tree-head"): EVERYWHERE,
    ("GET", "/v1/audit/proofs/inclusion"): EVERYWHERE,
    ("GET", "/v1/audit/proofs/consistency"): EVERYWHERE,
    ("GET", "/v1/audit/tree-verification"): EVERYWHERE,
    # Agreements: IG leads act on those their agency is party to; parties may read them.
    ("POST", "/v1/agreements"): (201, 201, 201, 201),
    ("POST", "/v1/agreements/{agreement_id}/approve"): (200, 404, 404, 404),
    ("POST", "/v1/agreements/{agreement_id}/amend"): (200, 404, 404, 404),
    ("POST", "/v1/agreements/{agreement_id}/revoke"): (200, 404, 404, 404),
    ("GET", "/v1/agreements"): EVERYWHERE,
    ("GET", "/v1/agreements/{agreement_id}"): (200, 404, 404, 404),
    # The catalogue and the directory of agencies are for everyone in the partnership.
    ("GET", "/v1/event-types"): EVERYWHERE,
    ("GET", "/v1/agencies"): EVERYWHERE,
    # Administration. Partnership admins (whichever agency they sit in) register agencies
    # and appoint admins, but add no staff (here a practitioner); an agency's admin manages
    # its own agency's principals only (another agency's principal is as unknown: 404),
    # and its IG lead sees them with who added each.
    ("POST", "/v1/agencies"): (201, 201, 201, 201),
    ("POST", "/v1/principals"): {only(A): (201, 403, 403, 403), only(PA): DENIED},
    ("GET", "/v1/agencies/{agency}/principals"): {
        only(A, I): (200, 403, 403, 403), only(PA): EVERYWHERE,
    },
    ("POST", "/v1/principals/{principal_id}/revoke"): {
        only(A): (204, 404, 404, 404), only(PA): (204, 204, 204, 204),
    },
    # Emergency (break-glass) access: a partner's practitioner or safeguarding officer, on
    # a client of another agency; never the registering agency itself (it sees its own
    # record: 403), never a commissioner (the table refuses its kind; the command records
    # the attempt). Each cell breaks glass on a fresh client.
    ("POST", "/v1/clients/{client_id}/emergency-access"): (403, 201, 201, None),
    # Ending a running grant early: the IG lead of the client's registering controller
    # only; anyone else, the grantee's own IG lead included, as unknown (a fresh grant
    # each cell).
    ("POST", "/v1/clients/{client_id}/emergency-access/{grant_id}/end"): (200, 404, 404, 404),
    # IG reviews of emergency access: the IG lead of the client's registering controller
    # closes; another agency's review is as unknown (each cell closes a fresh review).
    ("GET", "/v1/audit/reviews"): EVERYWHERE,
    ("POST", "/v1/audit/reviews/{review_id}"): (200, 404, 404, 404),
    # Households: practitioners and safeguarding staff link clients their agency sees
    # (each cell links a fresh client); another agency's client or household is as unknown.
    ("POST", "/v1/households"): (201, 404, 404, 404),
    ("POST", "/v1/households/{household_id}/members"): (201, 404, 404, 404),
    # A household's members, each only where the caller may see who they are for the
    # purpose: the owner's practitioners see their own client; to anyone else the
    # household is as unknown (it shows nobody they may see).
    ("GET", "/v1/households/{household_id}"): (200, 404, 404, 404),
    # Safeguarding alerts: the recipient agency's safeguarding staff (here each cell's
    # alert is addressed to the owner); another agency's alert is as unknown.
    ("GET", "/v1/alerts"): EVERYWHERE,
    ("GET", "/v1/alerts/stream"): EVERYWHERE,
    ("POST", "/v1/alerts/{alert_id}/acknowledge"): (200, 404, 404, 404),
    ("POST", "/v1/alerts/{alert_id}/close"): (200, 404, 404, 404),
    # Assigning to a member of the owner's safeguarding team (here the caller itself).
    ("POST", "/v1/alerts/{alert_id}/assign"): (200, 404, 404, 404),
    ("GET", "/v1/alerts/{alert_id}"): (200, 404, 404, 404),
    # The caller's own agency's team, whoever asks: no other agency's staff list.
    ("GET", "/v1/alerts/team"): EVERYWHERE,
    # Outcome reports: the measure catalogue (no client data) for commissioners and any IG
    # lead; the figures for the commissioner agency's commissioners and IG lead only.
    ("GET", "/v1/reports/measures"): EVERYWHERE,
    ("GET", "/v1/reports/outcomes"): (None, None, None, 200),
    ("GET", "/v1/reports/outcomes.csv"): (None, None, None, 200),
}


def _unused_settings(where: Path) -> Settings:
    """Settings for an app that is built to be looked at, never started."""
    return Settings(database_url=f"sqlite:///{where / 'unused.db'}", key_file=where / "unused.key")


#: The action each route declares (routes declaring none, or several, are left out here
#: and fail ``test_every_route_declares_an_action``).
ACTIONS: dict[tuple[str, str], Action] = {
    route: guards[0].action
    for route, guards in route_actions(
        create_app(settings=_unused_settings(Path("/nonexistent")))).items()
    if len(guards) == 1 and not is_page(route[1])
}


def permitted_row(route: tuple[str, str], role: Role) -> Permitted:
    """What a caller of this role gets on the route where the table permits it."""
    entry = PERMITTED[route]
    if not isinstance(entry, dict):
        return entry
    [row] = [row for roles, row in entry.items() if role in roles]
    return row


def expected_status(route: tuple[str, str], role: Role, column: str) -> int:
    """403 where the table refuses the route's action to the role in the column's kind of
    agency; otherwise the route's data-visibility cell."""
    if not permits(ACTIONS[route], role, KIND[column]):
        return 403
    status = permitted_row(route, role)[COLUMNS.index(column)]
    assert status is not None, f"{route} {role.value}@{column}: the table permits it"
    return status


#: Every endpoint x role x column: "public", or each role's statuses (generated).
MATRIX: dict[tuple[str, str], dict[Role, Row] | str] = {
    **{route: "public" for route in PUBLIC},
    **{route: {role: (expected_status(route, role, "own"),
                      expected_status(route, role, "other"),
                      expected_status(route, role, "police"),
                      expected_status(route, role, "commission"))
               for role in ROLES}
       for route in PERMITTED if route in ACTIONS},
}


#: Cells where the code is known to disagree with the matrix; each is reported in the
#: strict-xfail test below, so that fixing the code makes that test fail until removed here.
KNOWN_BUGS: dict[tuple[str, str, Role, str], str] = {}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the API serves, including routes of included routers (not the
    web application's pages: ``is_page``)."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    found: set[tuple[str, str]] = set()
    for route in iterate(app.routes) if iterate else app.routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path and is_page(path):
            continue
        assert path and methods, f"cannot enumerate route {route!r}"
        found.update((method, path) for method in methods - {"HEAD"})
    return found


def test_every_route_declares_an_action(tmp_path: Path) -> None:
    """A new route fails here until it declares its action (an actor from ``api.deps``)
    and that action has an entry in the permission table, and until its
    data-visibility row is in ``PERMITTED`` and its request in ``REQUESTS``."""
    app = create_app(settings=_unused_settings(tmp_path))
    routes = app_routes(app)
    documented = {(method.upper(), path) for path, item in app.openapi()["paths"].items()
                  for method in item}
    assert documented <= routes, "the enumeration missed documented routes"
    declared = {route: guards for route, guards in route_actions(app).items()
                if not is_page(route[1])}
    undeclared = {route for route in routes - PUBLIC if len(declared.get(route, [])) != 1}
    assert undeclared == set(), "routes declaring no action (or several)"
    assert all(declared.get(route, []) == [] for route in PUBLIC), "a public route checks roles"
    assert {declared[route][0].action for route in routes - PUBLIC} <= set(PERMISSIONS), \
        "actions without an entry in the permission table"
    assert routes - PUBLIC - set(PERMITTED) == set(), "routes without a data-visibility row"
    assert set(PERMITTED) - routes == set(), "rows for routes that no longer exist"
    assert set(MATRIX) == routes


def test_each_permitted_role_has_one_row() -> None:
    """A route whose permitted roles differ in scope names each such role in exactly one
    row, and names no role the table refuses (that row would never be used)."""
    for route, entry in PERMITTED.items():
        if not isinstance(entry, dict) or route not in ACTIONS:
            continue
        named = [role for roles in entry for role in roles]
        assert len(named) == len(set(named)), route
        assert set(named) == roles_for(ACTIONS[route]), route


# -- the world the matrix runs in ----------------------------------------------------------

NHS_NUMBERS = ("9434765919", "4010232137")  # the clients of tp and tp2


CONSENT = {"recipient_agency": "police", "categories": ["housing"],
           "purposes": ["care_coordination"], "obtained": "written"}
EMERGENCY = {"purpose": "safeguarding_adults", "minutes": 30,
             "justification": "Collapsed at the station; suspected overdose."}


@dataclass
class World:
    accord: Accord
    partnership: Partnership
    clients: dict[str, UUID] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def actor(self, agency: str, role: Role) -> Actor:
        return self.accord.app.authenticate(self.partnership.token(agency, role))

    def agreement(self, controller: str) -> UUID:
        """A fresh agreement proposed by ``controller`` to children's services."""
        proposed = self.accord.app.propose_agreement(
            AgreementTerms.model_validate(housing_terms("childrens")),
            self.actor(controller, Role.IG_LEAD),
        )
        return UUID(str(proposed.id))

    def principal(self, owner: str) -> UUID:
        """A fresh practitioner of ``owner``, for the matrix to revoke."""
        return self.accord.app.add_principal(owner, Role.PRACTITIONER, "To be revoked",
                                             OPERATOR).principal_id

    def fresh_client(self, owner: str) -> UUID:
        """A new client of ``owner`` (a treatment provider), untouched by other cells."""
        identity = Identity.model_validate(
            {**VALID_IDENTITY, "nhs_number": nhs_number(next(self.counter))})
        client_id, _ = self.accord.app.register_client(identity,
                                                       self.actor(owner, Role.PRACTITIONER))
        return client_id

    def flagged(self, owner: str) -> tuple[UUID, UUID]:
        """(client, flag): a fresh client of ``owner``, flagged by its IG lead."""
        client_id = self.fresh_client(owner)
        flag_id, _ = self.accord.app.flag_client(
            client_id, "Child protection plan in the household.",
            self.actor(owner, Role.IG_LEAD))
        return client_id, flag_id

    def held(self, owner: str) -> UUID:
        """A fresh client of ``owner`` under a legal hold its IG lead placed."""
        client_id = self.fresh_client(owner)
        self.accord.app.place_legal_hold(client_id, "Litigation about the care given.",
                                         self.actor(owner, Role.IG_LEAD))
        return client_id

    def restricted(self, owner: str) -> UUID:
        """A fresh client of ``owner`` whose processing its IG lead restricted."""
        client_id = self.fresh_client(owner)
        self.accord.app.restrict_processing(client_id, "The client contests its accuracy.",
                                            self.actor(owner, Role.IG_LEAD))
        return client_id

    def fresh_fact(self, owner: str) -> tuple[UUID, int]:
        """(client, position): a fact ``owner``'s practitioner records about its client,
        for the cell to correct."""
        position = self.accord.app.record_fact(
            self.clients[owner], "housing_status_recorded", {"status": "settled"},
            datetime(2026, 1, 5, 9, tzinfo=UTC), self.actor(owner, Role.PRACTITIONER))
        return self.clients[owner], position

    def searchable(self, owner: str) -> dict[str, str]:
        """A name search for a fresh client of ``owner``, by the start of a family name
        only its clients have (so another agency's search finds none of them)."""
        family_name = {"tp": "Oakley", "tp2": "Ashworth"}[owner]
        identity = Identity.model_validate(
            {**VALID_IDENTITY, "family_name": family_name,
             "nhs_number": nhs_number(next(self.counter))})
        self.accord.app.register_client(identity, self.actor(owner, Role.PRACTITIONER))
        self.accord.catch_up()  # the views and the index of dates of birth
        return {"family_name": family_name[:4], "date_of_birth": VALID_IDENTITY["date_of_birth"]}

    def household(self, owner: str) -> UUID:
        """A household of one fresh client of ``owner``, linked by its practitioner."""
        household_id, _ = self.accord.app.link_household(
            [self.fresh_client(owner)], self.actor(owner, Role.PRACTITIONER))
        return household_id

    def alert(self, owner: str) -> UUID:
        """A fresh alert addressed to ``owner`` about its client."""
        from datetime import UTC, datetime, timedelta

        from domain.alerts import Alert

        alert = Alert(rule="matrix", severity="medium", recipient=owner,
                      client_id=self.clients[owner], household_id=None, reason="matrix",
                      basis={}, trigger_position=10**9 + next(self.counter),
                      acknowledge_by=datetime.now(UTC) + timedelta(hours=4))
        self.accord.app.save(alert)
        return UUID(str(alert.id))

    def review(self, owner: str) -> UUID:
        """The open review of a police emergency grant on a fresh client of ``owner``."""
        grant = self.accord.app.grant_emergency_access(
            self.fresh_client(owner), Purpose.SAFEGUARDING_ADULTS, EMERGENCY["justification"],
            30, self.actor("police", Role.PRACTITIONER))
        return grant.review_id

    def running_grant(self, owner: str) -> tuple[UUID, UUID]:
        """(client, grant): a running police emergency grant on a fresh client of ``owner``."""
        client_id = self.fresh_client(owner)
        grant = self.accord.app.grant_emergency_access(
            client_id, Purpose.SAFEGUARDING_ADULTS, EMERGENCY["justification"], 30,
            self.actor("police", Role.PRACTITIONER))
        return client_id, grant.grant_id

    def consent(self, owner: str) -> tuple[UUID, UUID]:
        """(client, consent): a consent ``owner``'s practitioner records for its client."""
        consent_id, _ = self.accord.app.give_consent(
            self.clients[owner], recipient_agency="police", recipient_kind=None,
            categories=["housing"], purposes=["care_coordination"], data_from=None,
            data_to=None, expires_at=None, obtained="written",
            by=self.actor(owner, Role.PRACTITIONER))
        return self.clients[owner], consent_id

    def consent_beside_a_partners_fact(self, owner: str) -> tuple[UUID, UUID]:
        """(client, consent): a fresh client of ``owner`` with a consent ``owner``
        recorded, about whom a partner (the other provider for ``tp2``'s client, else the
        police) has recorded a fact under an emergency grant, so that it controls a fact
        of the client. The consent is still not the partner's to withdraw."""
        import time
        from datetime import UTC, datetime

        app = self.accord.app
        partner = self.actor("tp" if owner == "tp2" else "police", Role.PRACTITIONER)
        client_id = self.fresh_client(owner)
        app.grant_emergency_access(client_id, Purpose.SAFEGUARDING_ADULTS,
                                   EMERGENCY["justification"], 30, partner)
        deadline = time.monotonic() + 10
        while not app.sees_client(partner.agency, client_id):  # the views catch up
            assert time.monotonic() < deadline, "the grant never reached the views"
            time.sleep(0.02)
        app.record_fact(client_id, "housing_status_recorded", {"status": "settled"},
                        datetime.now(UTC), partner)
        consent_id, _ = app.give_consent(
            client_id, recipient_agency="police", recipient_kind=None,
            categories=["housing"], purposes=["care_coordination"], data_from=None,
            data_to=None, expires_at=None, obtained="written",
            by=self.actor(owner, Role.PRACTITIONER),
        )
        return client_id, consent_id


def signed_tree_size(accord: Accord) -> int:
    """Signs a tree head over the log so far (the matrix's app runs without a signing key,
    so without the in-process log tree) and returns its size."""
    from infra.signing import generate_signing_key_file, load_signer
    from projections.log_tree import LogTree

    path = accord.settings.signing_key_path
    generate_signing_key_file(path)
    tree = LogTree(accord.app, accord.engine, load_signer(path))
    tree.catch_up(sign_now=True)
    return tree.size()


Request = tuple[str, dict[str, Any] | None]  # url, JSON body
Build = Callable[[World, str], Request]


def _client(world: World, owner: str) -> str:
    return str(world.clients[owner])


REQUESTS: dict[tuple[str, str], Build] = {
    ("GET", "/openapi.json"): lambda w, o: ("/openapi.json", None),
    ("GET", "/docs"): lambda w, o: ("/docs", None),
    ("GET", "/docs/oauth2-redirect"): lambda w, o: ("/docs/oauth2-redirect", None),
    ("GET", "/redoc"): lambda w, o: ("/redoc", None),
    ("GET", "/docs/assets/{name}"): lambda w, o: ("/docs/assets/swagger-ui.css", None),
    ("POST", "/v1/clients"): lambda w, o: (
        "/v1/clients",
        {"identity": {**VALID_IDENTITY, "nhs_number": nhs_number(next(w.counter))}},
    ),
    ("POST", "/v1/clients/{client_id}/events"): lambda w, o: (
        f"/v1/clients/{_client(w, o)}/events",
        {"type": "housing_status_recorded", "occurred_at": "2026-01-05T09:00:00Z",
         "data": {"status": "settled"}},
    ),
    ("GET", "/v1/clients/{client_id}/record"): lambda w, o: (
        f"/v1/clients/{_client(w, o)}/record", None),
    ("POST", "/v1/clients/{client_id}/erase"): lambda w, o: (
        f"/v1/clients/{w.fresh_client(o)}/erase", {"reason": "The client asked to be forgotten."}),
    ("POST", "/v1/clients/{client_id}/legal-hold"): lambda w, o: (
        f"/v1/clients/{w.fresh_client(o)}/legal-hold",
        {"reason": "Litigation about the care given."}),
    ("POST", "/v1/clients/{client_id}/legal-hold/lift"): lambda w, o: (
        f"/v1/clients/{w.held(o)}/legal-hold/lift", {"reason": "The claim was settled."}),
    ("POST", "/v1/clients/{client_id}/restriction"): lambda w, o: (
        f"/v1/clients/{w.fresh_client(o)}/restriction",
        {"reason": "The client contests its accuracy."}),
    ("POST", "/v1/clients/{client_id}/restriction/lift"): lambda w, o: (
        f"/v1/clients/{w.restricted(o)}/restriction/lift",
        {"reason": "The record was verified."}),
    ("POST", "/v1/clients/{client_id}/flags"): lambda w, o: (
        f"/v1/clients/{w.fresh_client(o)}/flags",
        {"reason": "Child protection plan in the household."}),
    ("POST", "/v1/clients/{client_id}/flags/{flag_id}/remove"): lambda w, o: (
        "/v1/clients/{}/flags/{}/remove".format(*w.flagged(o)),
        {"reason": "The plan ended at the review conference."}),
    ("GET", "/v1/clients/{client_id}/flags"): lambda w, o: (
        f"/v1/clients/{w.flagged(o)[0]}/flags", None),
    ("POST", "/v1/clients/{client_id}/facts/{position}/amend"): lambda w, o: (
        "/v1/clients/{}/facts/{}/amend".format(*w.fresh_fact(o)),
        {"data": {"status": "temporary"}, "reason": "status was typed in wrongly"}),
    ("POST", "/v1/clients/{client_id}/facts/{position}/retract"): lambda w, o: (
        "/v1/clients/{}/facts/{}/retract".format(*w.fresh_fact(o)),
        {"reason": "recorded about the wrong client"}),
    ("POST", "/v1/clients/{client_id}/consents"): lambda w, o: (
        f"/v1/clients/{_client(w, o)}/consents", CONSENT),
    ("POST", "/v1/clients/{client_id}/consents/{consent_id}/withdraw"): lambda w, o: (
        "/v1/clients/{}/consents/{}/withdraw".format(*w.consent_beside_a_partners_fact(o)),
        {"reason": "client changed their mind"}),
    ("GET", "/v1/clients/{client_id}/consents"): lambda w, o: (
        f"/v1/clients/{_client(w, o)}/consents", None),
    ("GET", "/v1/clients/{client_id}/consents/{consent_id}/fhir"): lambda w, o: (
        "/v1/clients/{}/consents/{}/fhir".format(*w.consent(o)), None),
    ("POST", "/v1/fhir/Consent"): lambda w, o: (
        "/v1/fhir/Consent", fhir_consent(NHS_NUMBERS[0 if o == "tp" else 1])),
    ("GET", "/v1/clients"): lambda w, o: (
        f"/v1/clients?purpose=direct_care&min_position={w.accord.app.head_position()}", None),
    ("POST", "/v1/clients/search"): lambda w, o: (
        "/v1/clients/search", {"purpose": "direct_care", **w.searchable(o)}),
    ("GET", "/v1/clients/{client_id}/chronology"): lambda w, o: (
        f"/v1/clients/{_client(w, o)}/chronology?purpose=direct_care"
        f"&min_position={w.accord.app.head_position()}", None),
    ("GET", "/v1/clients/{client_id}/view"): lambda w, o: (
        f"/v1/clients/{_client(w, o)}/view?purpose=direct_care"
        f"&min_position={w.accord.app.head_position()}", None),
    ("POST", "/v1/clients/match"): lambda w, o: (
        "/v1/clients/match",
        {"purpose": "direct_care", "nhs_number": NHS_NUMBERS[0 if o == "tp" else 1]}),
    ("GET", "/v1/audit/accesses"): lambda w, o: (
        f"/v1/audit/accesses?client_id={_client(w, o)}", None),
    ("GET", "/v1/clients/{client_id}/disclosures"): lambda w, o: (
        f"/v1/clients/{_client(w, o)}/disclosures", None),
    ("GET", "/v1/clients/{client_id}/subject-access"): lambda w, o: (
        f"/v1/clients/{_client(w, o)}/subject-access", None),
    ("GET", "/v1/clients/{client_id}/rights"): lambda w, o: (
        f"/v1/clients/{_client(w, o)}/rights", None),
    ("GET", "/v1/audit/replay"): lambda w, o: (
        f"/v1/audit/replay?agency=police&client_id={_client(w, o)}"
        "&purpose=care_coordination", None),
    ("GET", "/v1/audit/replay/changes"): lambda w, o: (
        f"/v1/audit/replay/changes?agency=police&client_id={_client(w, o)}"
        "&purpose=care_coordination", None),
    ("GET", "/v1/audit/tree-verification"): lambda w, o: ("/v1/audit/tree-verification", None),
    ("GET", "/v1/audit/tree-head"): lambda w, o: (
        f"/v1/audit/tree-head?_={signed_tree_size(w.accord)}", None),
    ("GET", "/v1/audit/proofs/inclusion"): lambda w, o: (
        f"/v1/audit/proofs/inclusion?position=1&tree_size={signed_tree_size(w.accord)}", None),
    ("GET", "/v1/audit/proofs/consistency"): lambda w, o: (
        f"/v1/audit/proofs/consistency?first=1&second={signed_tree_size(w.accord)}", None),
    ("POST", "/v1/agreements"): lambda w, o: ("/v1/agreements", housing_terms("childrens")),
    ("POST", "/v1/agreements/{agreement_id}/approve"): lambda w, o: (
        f"/v1/agreements/{w.agreement(o)}/approve", None),
    ("POST", "/v1/agreements/{agreement_id}/amend"): lambda w, o: (
        f"/v1/agreements/{w.agreement(o)}/amend", housing_terms("childrens", "Amended title")),
    ("POST", "/v1/agreements/{agreement_id}/revoke"): lambda w, o: (
        f"/v1/agreements/{w.agreement(o)}/revoke", {"reason": "no longer needed"}),
    ("GET", "/v1/agreements"): lambda w, o: ("/v1/agreements", None),
    ("GET", "/v1/agreements/{agreement_id}"): lambda w, o: (
        f"/v1/agreements/{w.agreement(o)}", None),
    ("GET", "/v1/event-types"): lambda w, o: ("/v1/event-types", None),
    ("GET", "/v1/agencies"): lambda w, o: ("/v1/agencies", None),
    ("POST", "/v1/agencies"): lambda w, o: (
        "/v1/agencies", {"id": f"agency-{next(w.counter)}", "name": "New partner",
                         "kind": "housing"}),
    ("POST", "/v1/principals"): lambda w, o: (
        "/v1/principals", {"agency": o, "role": "practitioner", "name": "New worker"}),
    ("GET", "/v1/agencies/{agency}/principals"): lambda w, o: (
        f"/v1/agencies/{o}/principals", None),
    ("POST", "/v1/principals/{principal_id}/revoke"): lambda w, o: (
        f"/v1/principals/{w.principal(o)}/revoke", {"reason": "matrix"}),
    ("POST", "/v1/clients/{client_id}/emergency-access"): lambda w, o: (
        f"/v1/clients/{w.fresh_client(o)}/emergency-access", EMERGENCY),
    ("POST", "/v1/clients/{client_id}/emergency-access/{grant_id}/end"): lambda w, o: (
        "/v1/clients/{}/emergency-access/{}/end".format(*w.running_grant(o)),
        {"reason": "the emergency is over"}),
    ("GET", "/v1/audit/reviews"): lambda w, o: ("/v1/audit/reviews", None),
    ("POST", "/v1/audit/reviews/{review_id}"): lambda w, o: (
        f"/v1/audit/reviews/{w.review(o)}", {"outcome": "justified", "note": "matrix"}),
    ("POST", "/v1/households"): lambda w, o: (
        "/v1/households", {"client_ids": [str(w.fresh_client(o))]}),
    ("POST", "/v1/households/{household_id}/members"): lambda w, o: (
        f"/v1/households/{w.household(o)}/members", {"client_id": str(w.fresh_client(o))}),
    ("GET", "/v1/households/{household_id}"): lambda w, o: (
        f"/v1/households/{w.household(o)}?purpose=direct_care"
        f"&min_position={w.accord.app.head_position()}", None),
    ("GET", "/v1/alerts"): lambda w, o: ("/v1/alerts", None),
    ("GET", "/v1/alerts/stream"): lambda w, o: ("/v1/alerts/stream?max_seconds=0", None),
    ("POST", "/v1/alerts/{alert_id}/acknowledge"): lambda w, o: (
        f"/v1/alerts/{w.alert(o)}/acknowledge", None),
    ("POST", "/v1/alerts/{alert_id}/close"): lambda w, o: (
        f"/v1/alerts/{w.alert(o)}/close", {"outcome": "no_further_action", "note": "matrix"}),
    ("POST", "/v1/alerts/{alert_id}/assign"): lambda w, o: (
        f"/v1/alerts/{w.alert(o)}/assign",
        {"principal_id": str(w.actor(o, Role.SAFEGUARDING).principal_id)}),
    ("GET", "/v1/alerts/{alert_id}"): lambda w, o: (
        f"/v1/alerts/{w.alert(o)}?min_position={w.accord.app.head_position()}", None),
    ("GET", "/v1/alerts/team"): lambda w, o: ("/v1/alerts/team", None),
    ("GET", "/v1/reports/measures"): lambda w, o: ("/v1/reports/measures", None),
    ("GET", "/v1/reports/outcomes"): lambda w, o: (
        "/v1/reports/outcomes?from=2025-04-01&to=2026-03-31&disclosure=internal", None),
    ("GET", "/v1/reports/outcomes.csv"): lambda w, o: (
        "/v1/reports/outcomes.csv?from=2025-04-01&to=2026-03-31", None),
}


#: Writes about clients: each refused (404, or 403 once a client is looked up) is
#: recorded as an attempt, so the client's controllers find it in their access audit.
CLIENT_WRITES = {
    ("POST", "/v1/clients/{client_id}/events"), ("POST", "/v1/clients/{client_id}/consents"),
    ("POST", "/v1/clients/{client_id}/facts/{position}/amend"),
    ("POST", "/v1/clients/{client_id}/facts/{position}/retract"),
    ("POST", "/v1/clients/{client_id}/consents/{consent_id}/withdraw"),
    ("POST", "/v1/fhir/Consent"),
    ("POST", "/v1/clients/{client_id}/emergency-access"),
    ("POST", "/v1/clients/{client_id}/emergency-access/{grant_id}/end"),
    ("POST", "/v1/households"),
    ("POST", "/v1/households/{household_id}/members"),
    ("POST", "/v1/alerts/{alert_id}/assign"),
    ("POST", "/v1/clients/{client_id}/flags"),
    ("POST", "/v1/clients/{client_id}/flags/{flag_id}/remove"),
    ("POST", "/v1/clients/{client_id}/erase"),
    ("POST", "/v1/clients/{client_id}/legal-hold"),
    ("POST", "/v1/clients/{client_id}/legal-hold/lift"),
    ("POST", "/v1/clients/{client_id}/restriction"),
    ("POST", "/v1/clients/{client_id}/restriction/lift"),
}

#: Routes outside the /v1/clients/{client_id}/... family that read client data.
OTHER_READS = {("POST", "/v1/clients/match"), ("POST", "/v1/clients/search"),
               ("GET", "/v1/clients"), ("GET", "/v1/audit/replay"),
               ("GET", "/v1/audit/replay/changes"),
               ("GET", "/v1/alerts"), ("GET", "/v1/alerts/stream"),
               ("GET", "/v1/alerts/{alert_id}"),
               ("GET", "/v1/households/{household_id}"),
               ("GET", "/v1/reports/outcomes"), ("GET", "/v1/reports/outcomes.csv")}


def reads_client_data(key: tuple[str, str]) -> bool:
    """Every GET under a client, and the reads named above, must record each access."""
    method, path = key
    return (method == "GET" and "{client_id}" in path) or key in OTHER_READS


def test_every_matrix_entry_has_a_request() -> None:
    assert set(REQUESTS) == set(MATRIX)


def build_world(accord: Accord, partnership: Partnership, client: TestClient) -> World:
    world = World(accord, partnership)
    for owner, nhs in zip(("tp", "tp2"), NHS_NUMBERS, strict=True):
        response = client.post(
            "/v1/clients", json={"identity": {**VALID_IDENTITY, "nhs_number": nhs}},
            headers=partnership.headers(owner, Role.PRACTITIONER),
        )
        assert response.status_code == 201, response.text
        world.clients[owner] = UUID(response.json()["client_id"])
    # Let the agency views catch up with the registrations (matching reads them).
    client.get(f"/v1/clients/{world.clients['tp']}/view?purpose=direct_care"
               f"&min_position={accord.app.head_position()}",
               headers=partnership.headers("tp", Role.PRACTITIONER))
    return world


def call(client: TestClient, method: str, url: str, body: dict[str, Any] | None,
         headers: dict[str, str]) -> httpx.Response:
    return client.request(method, url, json=body, headers=headers)


def check_cells(
    accord: Accord, partnership: Partnership, client: TestClient,
    cells: Callable[[tuple[str, str], Role, str], bool],
) -> None:
    world = build_world(accord, partnership, client)
    wrong: list[str] = []
    leaks: list[str] = []
    for key, entry in MATRIX.items():
        method = key[0]
        for role in ROLES:
            for i, column in enumerate(COLUMNS):
                if not cells(key, role, column):
                    continue
                url, body = REQUESTS[key](world, OWNER[column])
                expected = 200 if isinstance(entry, str) else entry[role][i]
                before = changes(accord)
                reads_before = access_records(accord)
                response = call(client, method, url, body,
                                partnership.headers(CALLER[column], role))
                if response.status_code != expected:
                    wrong.append(f"{method} {key[1]} {role.value}@{column}: expected "
                                 f"{expected}, got {response.status_code} {response.text[:120]}")
                assert response.status_code < 500, response.text
                recorded = access_records(accord) - reads_before
                if reads_client_data(key) and response.status_code in (200, 404):
                    if recorded != 1:
                        wrong.append(f"{method} {key[1]} {role.value}@{column}: "
                                     f"{recorded} access records for one read")
                elif key in CLIENT_WRITES and response.status_code >= 400:
                    # A write refused about a client is an attempt on the record, once: a
                    # 404 always; a 403 where the command refused it (not where the role
                    # was refused before anything was looked up).
                    allowed = {404: {1}, 403: {0, 1}}.get(response.status_code, {0})
                    if recorded not in allowed:
                        wrong.append(f"{method} {key[1]} {role.value}@{column}: "
                                     f"{recorded} access records for one refused write")
                elif recorded and not reads_client_data(key):
                    wrong.append(f"{method} {key[1]} {role.value}@{column}: recorded a "
                                 f"read for a route that reads no client data")
                if response.status_code >= 400:
                    if changes(accord) != before:
                        wrong.append(f"{method} {key[1]} {role.value}@{column}: refused "
                                     f"({response.status_code}) yet appended to the log")
                    if VALID_IDENTITY["family_name"] in response.text:
                        leaks.append(f"{method} {key[1]} {role.value}@{column}")
    assert not wrong, "\n".join(map(str, wrong))
    assert not leaks, "\n".join(leaks)


def test_access_matrix(accord: Accord, partnership: Partnership, client: TestClient) -> None:
    check_cells(accord, partnership, client,
                lambda key, role, column: (*key, role, column) not in KNOWN_BUGS)


#: Who a match answers about ``tp``'s client, once the police see its housing status and
#: children's services its housing status and name: (agency, role, purpose, status).
MATCH_BY_SHARE = (
    ("police", P, "care_coordination", 404),  # a basis, but none that shares identity
    ("childrens", P, "care_coordination", 200),  # the identity share
    ("tp", I, None, 200),  # its own agency's client, for a subject access request
    ("tp2", I, None, 404),  # holds no record of the client
    ("childrens", I, None, 404),  # sees the client, but holds no record of its own
)


def test_a_match_answers_only_on_a_share_of_identity(
    accord: Accord, partnership: Partnership, client: TestClient
) -> None:
    world = build_world(accord, partnership, client)
    app = accord.app
    for recipient, categories in (("police", {"housing": ["status"]}),
                                  ("childrens", {"housing": ["status"],
                                                 "identity": ["family_name"]})):
        proposed = app.propose_agreement(AgreementTerms.model_validate(
            {**housing_terms(recipient), "categories": categories}), world.actor("tp", I))
        for party in ("tp", recipient):
            app.approve_agreement(UUID(str(proposed.id)), world.actor(party, I))
    app.record_fact(world.clients["tp"], "housing_status_recorded", {"status": "settled"},
                    datetime(2026, 1, 5, 9, tzinfo=UTC), world.actor("tp", P))
    client.app.state.projections.catch_up()  # type: ignore[attr-defined]
    wrong = []
    for agency, role, purpose, expected in MATCH_BY_SHARE:
        body = {"nhs_number": NHS_NUMBERS[0], **({"purpose": purpose} if purpose else {})}
        reads_before = access_records(accord)
        response = call(client, "POST", "/v1/clients/match", body,
                        partnership.headers(agency, role))
        if response.status_code != expected or access_records(accord) != reads_before + 1:
            wrong.append(f"{role.value}@{agency}: {response.status_code} {response.text}")
        if expected == 200 and response.json() != {"client_id": str(world.clients["tp"])}:
            wrong.append(f"{role.value}@{agency}: {response.text}")
    assert not wrong, "\n".join(wrong)


def test_anonymous_callers_get_401_everywhere_but_the_docs(
    accord: Accord, partnership: Partnership, client: TestClient
) -> None:
    world = build_world(accord, partnership, client)
    wrong = []
    for key, entry in MATRIX.items():
        expected = 200 if isinstance(entry, str) else 401
        for headers in ({}, {"Authorization": "Bearer not-a-token"},
                        {"Authorization": f"Basic {partnership.token('tp', Role.ADMIN)}"}):
            url, body = REQUESTS[key](world, "tp")
            before = changes(accord)
            response = call(client, key[0], url, body, headers)
            if response.status_code != expected:
                wrong.append(f"{key[0]} {key[1]} {headers}: {response.status_code}")
            elif expected == 401 and response.headers.get("www-authenticate") != "Bearer":
                wrong.append(f"{key[0]} {key[1]}: 401 without WWW-Authenticate: Bearer")
            if changes(accord) != before:
                wrong.append(f"{key[0]} {key[1]} {headers}: appended to the log")
    assert not wrong, "\n".join(map(str, wrong))
