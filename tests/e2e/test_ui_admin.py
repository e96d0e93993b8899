"""The administrators' pages, through a browser's requests (TestClient, on both
databases): the agencies (a partnership administrator registers one), an agency's
principals with who added and revoked each, adding a principal (the token shown once, on
a page no cache keeps) and revoking one with a reason (its sessions end at their next
request). The scope is the API's: an admin manages its own agency's staff only, a
partnership administrator the administrators of any agency.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import uuid4

from fastapi.testclient import TestClient

from domain.agencies import Role
from tests.builders import Partnership, browser_of, changes, hdr, ui_sign_in

NONCE = re.compile(r"nonce[-=]\"?[A-Za-z0-9_\-]+")
TOKEN = re.compile(r'data-testid="issued-token" type="text" value="([^"]+)"')


def signed_in(api: TestClient, partnership: Partnership, agency: str,
              role: Role = Role.ADMIN) -> tuple[TestClient, str]:
    browser = browser_of(api)
    return browser, ui_sign_in(browser, partnership.token(agency, role))


def summary_links(html: str) -> list[str]:
    summary = html.split('class="nhsuk-error-summary', 1)[1].split("</div>", 2)[0]
    return re.findall(r'href="#([^"]+)"', summary)


def principals_of(api: TestClient, partnership: Partnership, agency: str) -> list[Any]:
    result: list[Any] = api.get(f"/v1/agencies/{agency}/principals",
                                headers=hdr(partnership, agency, Role.ADMIN)).json()
    return result


ONCE = re.compile(r'name="once" value="([^"]+)"')


def add(browser: TestClient, csrf: str, name: str = "Robin Keyworker",
        role: str = "practitioner", **more: str) -> Any:
    """Sends the add-a-principal form as the page gives it (with its one-time key; any
    key, for a caller the page refuses)."""
    once = next(iter(ONCE.findall(browser.get("/ui/admin/principals/new").text)), "any")
    return browser.post("/ui/admin/principals", data={"csrf_token": csrf, "once": once,
                                                      "name": name, "role": role, **more})


def test_the_same_add_form_sent_twice_adds_one_principal(
        api: TestClient, partnership: Partnership) -> None:
    """A reload of the token page (or a double click) sends the form again: nobody else
    is added, and the page says why no token is shown."""
    admin, csrf = signed_in(api, partnership, "tp")
    [once] = ONCE.findall(admin.get("/ui/admin/principals/new").text)
    form = {"csrf_token": csrf, "once": once, "name": "Sam Twice", "role": "practitioner"}
    assert admin.post("/ui/admin/principals", data=form).status_code == 201
    before = changes(partnership.accord)
    again = admin.post("/ui/admin/principals", data=form)
    assert again.status_code == 409
    assert "This form was already sent" in again.text
    assert 'data-testid="issued-token"' not in again.text
    assert changes(partnership.accord) == before
    named = [p for p in principals_of(api, partnership, "tp") if p["name"] == "Sam Twice"]
    assert len(named) == 1
    # Without its one-time key the form adds nobody either.
    assert admin.post("/ui/admin/principals", data={**form, "once": ""}).status_code == 409


def test_an_admin_adds_a_principal_whose_token_is_shown_once(
        api: TestClient, partnership: Partnership) -> None:
    admin, csrf = signed_in(api, partnership, "tp")
    form = admin.get("/ui/admin/principals/new")
    assert form.status_code == 200
    # An agency's admin adds its own staff, never a partnership administrator, and only
    # in roles that fit its agency (a treatment provider has no commissioners).
    assert 'value="practitioner"' in form.text and 'value="partnership_admin"' not in form.text
    assert 'value="commissioner"' not in form.text
    answer = add(admin, csrf)
    assert answer.status_code == 201
    assert answer.headers["cache-control"] == "no-store"
    assert "You will not see this token again" in answer.text
    [token] = TOKEN.findall(answer.text)
    # The token works: the new principal signs in with it.
    newcomer = browser_of(api)
    ui_sign_in(newcomer, token)
    assert "Robin Keyworker" in newcomer.get("/ui").text
    # No page shows it again; the list names who added the principal.
    listing = admin.get("/ui/admin/principals")
    assert token not in listing.text and token.split("_", 2)[2] not in listing.text
    row = [r for r in listing.text.split('data-testid="principal"') if "Robin Keyworker" in r]
    assert row and "by tp admin" in row[0] and "Active" in row[0]


def test_an_admin_revokes_a_principal_and_its_session_ends(
        api: TestClient, partnership: Partnership) -> None:
    admin, csrf = signed_in(api, partnership, "tp")
    [token] = TOKEN.findall(add(admin, csrf, name="Sam Leaver").text)
    leaver = browser_of(api)
    ui_sign_in(leaver, token)
    principal_id = next(p["principal_id"] for p in principals_of(api, partnership, "tp")
                        if p["name"] == "Sam Leaver")
    confirm = admin.get(f"/ui/admin/principals/{principal_id}/revoke")
    assert "Revoke Sam Leaver" in confirm.text and "Why is their access revoked?" in confirm.text
    # A reason is needed, and nothing changes without one.
    before = changes(partnership.accord)
    bad = admin.post(f"/ui/admin/principals/{principal_id}/revoke",
                     data={"csrf_token": csrf, "reason": "  "})
    assert bad.status_code == 422 and summary_links(bad.text) == ["reason"]
    assert changes(partnership.accord) == before
    # Without the CSRF token: refused, nothing changes.
    assert admin.post(f"/ui/admin/principals/{principal_id}/revoke",
                      data={"reason": "left"}).status_code == 403
    assert changes(partnership.accord) == before
    revoked = admin.post(f"/ui/admin/principals/{principal_id}/revoke",
                         data={"csrf_token": csrf, "reason": "Left the service"},
                         follow_redirects=False)
    assert revoked.status_code == 303
    listing = admin.get(revoked.headers["location"]).text
    assert "access was revoked" in listing
    row = next(r for r in listing.split('data-testid="principal"') if "Sam Leaver" in r)
    assert "Revoked" in row and "by tp admin" in row and "Left the service" in row
    # The revoked principal's next request lands on the sign-in page, saying why.
    answer = leaver.get("/ui", follow_redirects=False)
    assert answer.status_code == 303 and "why=revoked" in answer.headers["location"]
    assert "has been revoked" in leaver.get(answer.headers["location"]).text


def test_an_admins_scope_is_its_own_agency(api: TestClient, partnership: Partnership) -> None:
    admin, csrf = signed_in(api, partnership, "tp")
    # Another agency's principal is as unknown as a made-up id.
    theirs = next(p["principal_id"] for p in principals_of(api, partnership, "tp2")
                  if p["role"] == "practitioner")
    answers = [admin.get(f"/ui/admin/principals/{p}/revoke") for p in (theirs, uuid4())]
    assert [a.status_code for a in answers] == [404, 404]
    assert NONCE.sub("", answers[0].text) == NONCE.sub("", answers[1].text)
    before = changes(partnership.accord)
    assert admin.post(f"/ui/admin/principals/{theirs}/revoke",
                      data={"csrf_token": csrf, "reason": "not mine"}).status_code == 404
    # Asking for another agency's list shows its own; adding there adds to its own.
    assert "tp2 practitioner" not in admin.get("/ui/admin/principals?agency=tp2").text
    # A partnership administrator's role, forced into the form: the command's 403.
    refused = add(admin, csrf, role="partnership_admin")
    assert refused.status_code == 403 and "You cannot do this" in refused.text
    # A role that does not fit the agency: the command's words, beside the role.
    unfit = add(admin, csrf, role="commissioner")
    assert unfit.status_code == 422 and summary_links(unfit.text) == ["role"]
    missing = add(admin, csrf, name="", role="")
    assert missing.status_code == 422 and summary_links(missing.text) == ["name", "role"]
    assert changes(partnership.accord) == before
    # The last admin of an agency is not revoked by its own admin: said, nothing changes.
    own = next(p["principal_id"] for p in principals_of(api, partnership, "tp")
               if p["role"] == "admin")
    last = admin.post(f"/ui/admin/principals/{own}/revoke",
                      data={"csrf_token": csrf, "reason": "leaving"})
    assert last.status_code == 409 and "last active admin" in last.text
    assert changes(partnership.accord) == before


def test_a_partnership_administrator_registers_an_agency_and_appoints_its_admin(
        api: TestClient, partnership: Partnership) -> None:
    pa, csrf = signed_in(api, partnership, "commissioner", Role.PARTNERSHIP_ADMIN)
    assert "Register an agency" in pa.get("/ui/admin/agencies").text
    before = changes(partnership.accord)
    bad = pa.post("/ui/admin/agencies", data={"csrf_token": csrf, "id": "Not A Slug",
                                              "name": "", "kind": "pub"})
    assert bad.status_code == 422 and summary_links(bad.text) == ["name", "id", "kind"]
    taken = pa.post("/ui/admin/agencies", data={"csrf_token": csrf, "id": "police",
                                                "name": "Police again", "kind": "police"})
    assert taken.status_code == 422 and "registered already" in taken.text
    assert changes(partnership.accord) == before
    made = pa.post("/ui/admin/agencies", data={
        "csrf_token": csrf, "id": "housing-north", "name": "Northern <Homes>",
        "kind": "housing", "contact": "0161 496 0000"}, follow_redirects=False)
    assert made.status_code == 303
    listing = pa.get(made.headers["location"]).text
    assert "Northern &lt;Homes&gt;" in listing and "0161 496 0000" in listing
    # Its first admin: a partnership administrator adds administrators to any agency.
    form = pa.get("/ui/admin/principals/new?agency=housing-north").text
    assert 'value="admin"' in form and 'value="practitioner"' not in form
    issued = add(pa, csrf, name="Alex Admin", role="admin", agency="housing-north")
    assert issued.status_code == 201 and TOKEN.findall(issued.text)
    listing = pa.get("/ui/admin/principals?agency=housing-north").text
    assert "Alex Admin" in listing and "by commissioner partnership_admin" in listing


def test_other_roles_see_the_directory_and_nothing_more(
        api: TestClient, partnership: Partnership) -> None:
    practitioner, csrf = signed_in(api, partnership, "tp", Role.PRACTITIONER)
    assert practitioner.get("/ui/admin/agencies").status_code == 200
    assert "Register an agency" not in practitioner.get("/ui/admin/agencies").text
    for path in ("/ui/admin/principals", "/ui/admin/principals/new", "/ui/admin/agencies/new"):
        assert practitioner.get(path).status_code == 403, path
    before = changes(partnership.accord)
    assert add(practitioner, csrf).status_code == 403
    assert changes(partnership.accord) == before
    # The IG lead reads its agency's principals, with who added each, but adds nobody.
    ig, _ = signed_in(api, partnership, "tp", Role.IG_LEAD)
    listing = ig.get("/ui/admin/principals")
    assert listing.status_code == 200 and "tp practitioner" in listing.text
    assert "Add a principal" not in listing.text and "/revoke" not in listing.text
    home = signed_in(api, partnership, "tp")[0].get("/ui").text
    assert 'href="/ui/admin/principals"' in home and 'href="/ui/admin/agencies"' in home
