"""Scoped administration (issue 12, item 3).

An agency's admin manages only its own agency's principals; registering agencies and
appointing an agency's first admin is for a partnership administrator (or the CLI
operator); a role must fit the agency's kind; nobody revokes the partnership's last
partnership administrator; an agency's IG lead sees who added (and revoked) each of its
principals. API tests run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi.testclient import TestClient

from api.bootstrap import Accord
from api.cli import main
from api.demo import seed, tokens_file
from domain.agencies import AgencyKind, Role
from domain.application import OPERATOR, AccordApplication
from domain.errors import (
    Forbidden,
    InvalidCommand,
    LastAdministrator,
    PrincipalNotFound,
    Unauthenticated,
)
from infra.settings import Settings
from projections import queries
from tests.builders import Partnership, assert_error_shape, changes

HOSPITAL = "hospital"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def principals_of(accord: Accord, agency: str) -> list[tuple[str, Role, bool]]:
    return [(p.name, p.role, p.revoked) for p in queries.principals(accord.app, agency, OPERATOR)]


@pytest.fixture
def hospital_admin(api: TestClient, partnership: Partnership) -> str:
    """A newly added hospital, registered by a partnership administrator who also appoints
    its first admin (through the API); returns that admin's token."""
    lead = partnership.headers("commissioner", Role.PARTNERSHIP_ADMIN)
    response = api.post("/v1/agencies", headers=lead,
                        json={"id": HOSPITAL, "name": "Northshire General Hospital",
                              "kind": "mental_health"})
    assert response.status_code == 201, response.text
    response = api.post("/v1/principals", headers=lead,
                        json={"agency": HOSPITAL, "role": "admin", "name": "Hospital admin"})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


# -- an agency's admin and other agencies ----------------------------------------------------


def test_a_hospital_admin_cannot_create_principals_in_the_treatment_provider(
    api: TestClient, accord: Accord, partnership: Partnership, hospital_admin: str
) -> None:
    before = changes(accord)
    tp_before = principals_of(accord, "tp")
    for role in ("ig_lead", "practitioner", "admin", "safeguarding", "partnership_admin"):
        response = api.post("/v1/principals", headers=bearer(hospital_admin),
                            json={"agency": "tp", "role": role, "name": "Planted"})
        assert response.status_code == 403, (role, response.text)
        assert "token" not in assert_error_shape(response)
    # An agency that does not exist gets the same answer: the rule is about scope.
    response = api.post("/v1/principals", headers=bearer(hospital_admin),
                        json={"agency": "nowhere", "role": "practitioner", "name": "Planted"})
    assert response.status_code == 403
    # No token was minted: the treatment provider's principals and the log are unchanged.
    assert principals_of(accord, "tp") == tp_before
    assert "Planted" not in {name for name, _, _ in tp_before}
    assert changes(accord) == before


def test_an_agency_admin_cannot_revoke_another_agencys_principals(
    api: TestClient, accord: Accord, partnership: Partnership, hospital_admin: str
) -> None:
    app = accord.app
    before = changes(accord)
    unknown = api.post(f"/v1/principals/{uuid4()}/revoke", headers=bearer(hospital_admin),
                       json={"reason": "spite"})
    assert unknown.status_code == 404
    for agency in ("tp", "police", "commissioner"):
        for role in Role:
            victim = app.authenticate(partnership.token(agency, role)).principal_id
            response = api.post(f"/v1/principals/{victim}/revoke",
                                headers=bearer(hospital_admin), json={"reason": "spite"})
            # The same answer as for an id that does not exist: nothing to learn from it.
            assert (response.status_code, response.json()) == (404, unknown.json()), (
                agency, role)
            assert app.authenticate(partnership.token(agency, role)).role is role
    assert changes(accord) == before
    # The application gives the same answer as for an unknown principal.
    tp_admin = app.authenticate(partnership.token("tp", Role.ADMIN)).principal_id
    assert tp_admin is not None
    with pytest.raises(PrincipalNotFound):
        app.revoke_principal(tp_admin, "spite", app.authenticate(hospital_admin))


def test_an_agency_admin_cannot_register_agencies_or_list_another_agency(
    api: TestClient, accord: Accord, partnership: Partnership, hospital_admin: str
) -> None:
    before = changes(accord)
    response = api.post("/v1/agencies", headers=bearer(hospital_admin),
                        json={"id": "shadow", "name": "Shadow agency", "kind": "police"})
    assert response.status_code == 403
    assert "shadow" not in {a.slug for a in accord.app.agencies()}
    response = api.get("/v1/agencies/tp/principals", headers=bearer(hospital_admin))
    assert response.status_code == 403
    assert "tp " not in response.text
    assert changes(accord) == before
    with pytest.raises(Forbidden):
        accord.app.register_agency("shadow", "Shadow", AgencyKind.POLICE,
                                   accord.app.authenticate(partnership.token("tp", Role.ADMIN)))


def test_an_agency_admin_manages_its_own_agency(
    api: TestClient, accord: Accord, partnership: Partnership, hospital_admin: str
) -> None:
    admin = bearer(hospital_admin)
    issued: dict[str, dict[str, Any]] = {}
    for role in ("practitioner", "safeguarding", "ig_lead", "admin"):
        response = api.post("/v1/principals", headers=admin,
                            json={"agency": HOSPITAL, "role": role, "name": f"Hospital {role}"})
        assert response.status_code == 201, (role, response.text)
        issued[role] = response.json()
        who = accord.app.authenticate(issued[role]["token"])
        assert (who.agency, who.role) == (HOSPITAL, Role(role))
    listed = api.get(f"/v1/agencies/{HOSPITAL}/principals", headers=admin)
    assert listed.status_code == 200
    assert {p["name"] for p in listed.json()} == {
        "Hospital admin", *(f"Hospital {role}" for role in issued)}
    assert all(p["agency"] == HOSPITAL for p in listed.json())
    # It revokes its own: the token stops working at the next request.
    practitioner = issued["practitioner"]
    response = api.post(f"/v1/principals/{practitioner['principal_id']}/revoke", headers=admin,
                        json={"reason": "moved to another trust"})
    assert response.status_code == 204
    assert api.get("/v1/event-types",
                   headers=bearer(practitioner["token"])).status_code == 401
    # It does not appoint a partnership administrator, even in its own agency.
    before = changes(accord)
    response = api.post("/v1/principals", headers=admin, json={
        "agency": HOSPITAL, "role": "partnership_admin", "name": "Self-made lead"})
    assert response.status_code == 403
    assert changes(accord) == before


def test_an_agency_admin_cannot_revoke_a_partnership_admin_of_its_agency(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    lead = accord.app.authenticate(partnership.token("commissioner", Role.PARTNERSHIP_ADMIN))
    before = changes(accord)
    response = api.post(f"/v1/principals/{lead.principal_id}/revoke",
                        headers=partnership.headers("commissioner", Role.ADMIN),
                        json={"reason": "a coup"})
    assert response.status_code == 403
    assert changes(accord) == before
    assert accord.app.authenticate(
        partnership.token("commissioner", Role.PARTNERSHIP_ADMIN)).role is Role.PARTNERSHIP_ADMIN


# -- the partnership administrator -----------------------------------------------------------


def test_a_partnership_admin_registers_an_agency_and_appoints_its_first_admin(
    api: TestClient, accord: Accord, partnership: Partnership, hospital_admin: str
) -> None:
    app = accord.app
    lead = app.authenticate(partnership.token("commissioner", Role.PARTNERSHIP_ADMIN))
    # On the record: who registered the agency and who added its admin.
    assert app.agency(HOSPITAL).registered_by == str(lead.principal_id)
    [first] = queries.principals(app, HOSPITAL, OPERATOR)
    assert (first.role, first.added_by.reference, first.added_by.name) == (
        Role.ADMIN, str(lead.principal_id), lead.name)
    assert app.authenticate(hospital_admin).agency == HOSPITAL
    # It appoints admins anywhere, but adds no staff: that is the agency's own admin's job.
    before = changes(accord)
    for role in ("practitioner", "ig_lead", "safeguarding"):
        response = api.post("/v1/principals",
                            headers=partnership.headers("commissioner", Role.PARTNERSHIP_ADMIN),
                            json={"agency": "tp", "role": role, "name": "Planted"})
        assert response.status_code == 403, role
    assert changes(accord) == before
    response = api.post("/v1/principals",
                        headers=partnership.headers("commissioner", Role.PARTNERSHIP_ADMIN),
                        json={"agency": "tp", "role": "admin", "name": "Second TP admin"})
    assert response.status_code == 201
    # And it may revoke any principal (taking access away discloses nothing).
    victim = app.authenticate(partnership.token("police", Role.PRACTITIONER)).principal_id
    response = api.post(f"/v1/principals/{victim}/revoke",
                        headers=partnership.headers("commissioner", Role.PARTNERSHIP_ADMIN),
                        json={"reason": "token found in a shared drive"})
    assert response.status_code == 204


def test_the_cli_operator_adds_a_partnership_admin(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("ACCORD_DATABASE_URL", "ACCORD_KEY_FILE", "ACCORD_DATABASE_SCHEMA",
                 "ACCORD_SIGNING_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACCORD_DATABASE_URL", f"sqlite:///{tmp_path / 'accord.db'}")
    monkeypatch.setenv("ACCORD_KEY_FILE", str(tmp_path / "kek.key"))

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    assert run("keys", "generate")[0] == 0
    assert run("agencies", "add", "--id", "phc", "--name", "Public Health",
               "--kind", "commissioner")[0] == 0
    code, out, _ = run("principals", "add", "--agency", "phc", "--role", "partnership_admin",
                       "--name", "Partnership lead")
    assert code == 0
    token = out.strip().splitlines()[-1]
    code, _, err = run("principals", "add", "--agency", "phc", "--role", "practitioner",
                       "--name", "Misplaced")
    assert code == 2 and "role:" in err and "commissioner agency" in err
    code, out, _ = run("principals", "list", "--agency", "phc")
    assert code == 0
    assert "partnership_admin" in out and "added by operator:cli" in out
    assert "Misplaced" not in out
    from api.bootstrap import bootstrap
    accord = bootstrap(Settings.from_env(), read_models=False)
    try:
        who = accord.app.authenticate(token)
        assert (who.role, who.agency) == (Role.PARTNERSHIP_ADMIN, "phc")
        [listed] = queries.principals(accord.app, "phc", who)
        assert listed.added_by.reference == "operator:cli"
    finally:
        accord.close()


# -- roles fit the agency's kind --------------------------------------------------------------


@pytest.mark.parametrize(("agency", "role"), [
    ("tp", "commissioner"), ("police", "commissioner"),
    ("commissioner", "practitioner"), ("commissioner", "safeguarding"),
])
def test_a_role_that_does_not_fit_the_agency_is_422_naming_role(
    api: TestClient, accord: Accord, partnership: Partnership, agency: str, role: str
) -> None:
    before = changes(accord)
    listed_before = principals_of(accord, agency)
    response = api.post("/v1/principals", headers=partnership.headers(agency, Role.ADMIN),
                        json={"agency": agency, "role": role, "name": "Misfit"})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in assert_error_shape(response)["errors"]] == ["role"]
    assert changes(accord) == before
    assert principals_of(accord, agency) == listed_before
    # The CLI operator is held to the same table.
    with pytest.raises(InvalidCommand) as refused:
        accord.app.add_principal(agency, Role(role), "Misfit", OPERATOR)
    assert refused.value.field == "role"


# -- the last administrators --------------------------------------------------------------------


def _lone_partnership_admin(app: AccordApplication) -> tuple[str, str]:
    """A fresh partnership with one partnership administrator, who appoints the hospital's
    one admin; returns their tokens."""
    app.register_agency("phc", "Public Health", AgencyKind.COMMISSIONER, OPERATOR)
    app.register_agency(HOSPITAL, "Hospital", AgencyKind.MENTAL_HEALTH, OPERATOR)
    lead = app.add_principal("phc", Role.PARTNERSHIP_ADMIN, "Lead", OPERATOR).token
    admin = app.add_principal(HOSPITAL, Role.ADMIN, "Hospital admin", app.authenticate(lead))
    return lead, admin.token


def revoke(client: TestClient, principal_id: UUID | None, token: str) -> httpx.Response:
    response: httpx.Response = client.post(f"/v1/principals/{principal_id}/revoke",
                                           headers=bearer(token),
                                           json={"reason": "stepping down"})
    return response


def test_the_last_partnership_admin_cannot_be_revoked(
    accord: Accord, client: TestClient
) -> None:
    app = accord.app
    lead_token, _ = _lone_partnership_admin(app)
    lead = app.authenticate(lead_token)
    before = changes(accord)
    # Not by the CLI operator, not by itself: 409 with the reason.
    with pytest.raises(LastAdministrator):
        app.revoke_principal(lead.principal_id or uuid4(), "stepping down", OPERATOR)
    response = revoke(client, lead.principal_id, lead_token)
    assert response.status_code == 409
    assert "last active partnership administrator" in assert_error_shape(response)["detail"]
    assert changes(accord) == before
    assert app.authenticate(lead_token).role is Role.PARTNERSHIP_ADMIN
    # Once a successor is appointed the lead may go, and the successor is then the last.
    successor = app.add_principal("phc", Role.PARTNERSHIP_ADMIN, "Successor", lead)
    assert revoke(client, lead.principal_id, successor.token).status_code == 204
    assert revoke(client, successor.principal_id, successor.token).status_code == 409
    assert app.authenticate(successor.token).role is Role.PARTNERSHIP_ADMIN


def test_an_agencys_last_admin_is_revoked_only_by_a_partnership_admin(
    accord: Accord, client: TestClient
) -> None:
    app = accord.app
    lead_token, admin_token = _lone_partnership_admin(app)
    admin = app.authenticate(admin_token)
    before = changes(accord)
    response = revoke(client, admin.principal_id, admin_token)
    assert response.status_code == 409
    assert "only a partnership administrator" in assert_error_shape(response)["detail"]
    assert changes(accord) == before
    # With a second admin either may go; then the one remaining is the last again.
    deputy = app.add_principal(HOSPITAL, Role.ADMIN, "Deputy", admin)
    assert revoke(client, deputy.principal_id, admin_token).status_code == 204
    assert revoke(client, admin.principal_id, admin_token).status_code == 409
    # A partnership administrator may revoke it (and then appoints the next admin).
    assert revoke(client, admin.principal_id, lead_token).status_code == 204
    with pytest.raises(Unauthenticated):
        app.authenticate(admin_token)


# -- the IG lead sees who added each principal --------------------------------------------------


def test_the_ig_lead_sees_who_added_and_revoked_each_principal(
    api: TestClient, accord: Accord, partnership: Partnership
) -> None:
    app = accord.app
    tp_admin = app.authenticate(partnership.token("tp", Role.ADMIN))
    lead = app.authenticate(partnership.token("commissioner", Role.PARTNERSHIP_ADMIN))

    def add(headers: dict[str, str], role: str, name: str) -> str:
        response = api.post("/v1/principals", headers=headers,
                            json={"agency": "tp", "role": role, "name": name})
        assert response.status_code == 201, response.text
        return str(response.json()["principal_id"])

    new_lead = add(partnership.headers("tp", Role.ADMIN), "ig_lead", "New IG lead")
    new_admin = add(partnership.headers("tp", Role.ADMIN), "admin", "New admin")
    appointed = add(partnership.headers("commissioner", Role.PARTNERSHIP_ADMIN), "admin",
                    "Appointed admin")
    assert api.post(f"/v1/principals/{new_admin}/revoke",
                    headers=partnership.headers("tp", Role.ADMIN),
                    json={"reason": "created by mistake"}).status_code == 204

    response = api.get("/v1/agencies/tp/principals", headers=partnership.headers("tp",
                                                                                 Role.IG_LEAD))
    assert response.status_code == 200
    listed = {p["principal_id"]: p for p in response.json()}
    by_tp_admin = {"id": str(tp_admin.principal_id), "name": "tp admin", "agency": "tp",
                   "role": "admin"}
    assert listed[new_lead]["added_by"] == by_tp_admin
    assert (listed[new_lead]["role"], listed[new_lead]["revoked"]) == ("ig_lead", False)
    assert listed[new_lead]["revoked_at"] is None and listed[new_lead]["revoked_by"] is None
    assert listed[appointed]["added_by"] == {
        "id": str(lead.principal_id), "name": "commissioner partnership_admin",
        "agency": "commissioner", "role": "partnership_admin"}
    revoked = listed[new_admin]
    assert revoked["revoked"] is True
    assert revoked["revoked_by"] == by_tp_admin
    assert revoked["revoked_reason"] == "created by mistake"
    assert revoked["revoked_at"] >= revoked["added_at"]
    # The fixture's principals were added by the CLI operator, and say so.
    fixture_admin = listed[str(tp_admin.principal_id)]
    assert fixture_admin["added_by"] == {"id": "operator:cli", "name": "operator:cli",
                                         "agency": None, "role": None}
    assert all(p["agency"] == "tp" for p in listed.values())
    assert all("token" not in p for p in listed.values())
    # Another agency's IG lead, and staff, may not read them.
    for agency, role in (("police", Role.IG_LEAD), ("tp", Role.PRACTITIONER),
                         ("tp", Role.SAFEGUARDING)):
        response = api.get("/v1/agencies/tp/principals", headers=partnership.headers(agency, role))
        assert response.status_code == 403, (agency, role)
        assert "New IG lead" not in response.text


# -- the demo ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])  # the demo's own bookkeeping, not the database's
def test_a_demo_seeded_before_the_partnership_admin_gains_one_and_keeps_its_tokens(
    accord: Accord, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(accord, clients=2)
    path = tokens_file(accord)
    older = [t for t in json.loads(path.read_text()) if t["role"] != "partnership_admin"]
    path.write_text(json.dumps(older))  # as a demo seeded before the role existed kept them
    capsys.readouterr()
    seed(accord, clients=2)
    printed = capsys.readouterr().out
    tokens = json.loads(path.read_text())
    assert tokens[:len(older)] == older
    [lead] = [t for t in tokens if t["role"] == "partnership_admin"]
    who = accord.app.authenticate(lead["token"])
    assert (who.role, who.agency) == (Role.PARTNERSHIP_ADMIN, "northshire-commissioning")
    assert lead["token"] in printed
    for token in older:
        assert token["token"] in printed
        assert accord.app.authenticate(token["token"]).role is Role(token["role"])
