"""Administrators' pages: the partnership's agencies (a partnership administrator
registers one), an agency's principals with who added and revoked each, adding a
principal (its token shown once, on the page that answers the form, and never again) and
revoking one with a reason.

The scope rules are the API's: each page calls its route function
(``api.routers.admin``), whose commands decide who may add or revoke whom (an agency's
admin its own agency's staff, a partnership administrator the admins of any agency), so a
page can do exactly what the API would. Every ``/ui`` answer is ``no-store``, so the page
holding a new token is kept by no cache.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import (
    AgenciesPage,
    AgencyForm,
    App,
    PrincipalForm,
    PrincipalRevokeForm,
    PrincipalsPage,
    Sessions,
    current_session,
)
from api.models import AgencyIn, AgencyOut, PrincipalIn, PrincipalOut, RevokeIn
from api.routers import admin as admin_api
from api.ui.form_errors import Problems, Submitted, submitted
from api.ui.templating import ROLE_NAMES, add_section, render
from domain.agencies import AgencyKind, Role, role_fits
from domain.errors import AgencyExists, Conflict, InvalidCommand, PrincipalNotFound
from domain.permissions import Action, permits
from domain.results import Actor

router = APIRouter(prefix="/ui/admin", include_in_schema=False)

add_section("Principals", "/ui/admin/principals", Action.LIST_PRINCIPALS)
# Every role may read the directory; the section is for those who administer it.
add_section("Agencies", "/ui/admin/agencies", Action.ADD_PRINCIPAL)

Form = Annotated[Submitted, Depends(submitted)]

DONE = {
    "agency-registered": "The agency was registered. Add its first admin next.",
    "principal-revoked": "The principal's access was revoked. Their sessions end at their "
                         "next request.",
}


def may(actor: Actor, action: Action) -> bool:
    return permits(action, actor.role, actor.agency_kind)


def said(value: Any) -> str:
    text = str(getattr(value, "value", value)).replace("_", " ")
    return text[:1].upper() + text[1:]


async def _agencies(app: App, actor: Actor) -> list[AgencyOut]:
    found: list[AgencyOut] = await run_in_threadpool(admin_api.list_agencies, app, actor)
    return found


def _message(text: str) -> str:
    return text[:1].upper() + text[1:]


# -- agencies ----------------------------------------------------------------------------


@router.get("/agencies")
async def agencies(request: Request, app: App, actor: AgenciesPage,
                   done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """The partner agencies (everyone's directory)."""
    return render(request, "admin/agencies.html", {
        "agencies": await _agencies(app, actor), "done": DONE.get(done or ""),
        "may_register": may(actor, Action.REGISTER_AGENCY), "said": said,
        "may_add": may(actor, Action.ADD_PRINCIPAL),
    })


def _agency_form(request: Request, values: dict[str, str], problems: Problems) -> Response:
    return render(request, "admin/agency_form.html", {
        "values": values, "messages": problems.messages, "errors": problems.summary(),
        "kinds": [(k.value, said(k)) for k in AgencyKind],
    }, status_code=422 if problems else 200)


@router.get("/agencies/new")
async def agency_form(request: Request, actor: AgencyForm) -> Response:
    return _agency_form(request, {}, Problems())


@router.post("/agencies")
async def register_agency(request: Request, app: App, actor: AgencyForm,
                          form: Form) -> Response:
    """Registers an agency (partnership administrators): its id is permanent."""
    values = {name: form.one(name) for name in ("id", "name", "kind", "contact")}
    problems = Problems()
    try:
        body = AgencyIn.model_validate({**values, "contact": values["contact"] or None})
    except ValidationError as exc:
        problems.add_validation(exc, lambda loc, _: str(loc[0]) if loc else "id", {
            "id": "Enter an id of lower-case letters, digits and hyphens, for example "
                  "housing-north",
            "name": "Enter the agency's name",
            "kind": "Choose what kind of agency it is",
            "contact": "Enter how partners reach the agency in at most 200 characters"})
        problems.order_by(("name", "id", "kind", "contact"))
    else:
        try:
            await run_in_threadpool(admin_api.register_agency, body, app, actor)
        except AgencyExists:
            problems.add("id", "An agency with this id is registered already")
        else:
            return RedirectResponse("/ui/admin/agencies?done=agency-registered",
                                    status_code=303)
    return _agency_form(request, values, problems)


# -- principals ----------------------------------------------------------------------------


def _roles_offered(actor: Actor, kind: AgencyKind | None) -> list[Role]:
    """The roles the caller may add (the command's scope, said before it is asked):
    a partnership administrator adds administrators; an agency's admin its own staff,
    in the roles that fit its agency's kind."""
    if actor.role is Role.PARTNERSHIP_ADMIN:
        return [Role.ADMIN, Role.PARTNERSHIP_ADMIN]
    return [r for r in Role if r is not Role.PARTNERSHIP_ADMIN
            and (kind is None or role_fits(kind, r))]


def _agency_of(actor: Actor, asked: str | None, known: list[AgencyOut]) -> str:
    """Whose principals a page is about: the one asked for by a partnership
    administrator, else the caller's own agency."""
    if asked and actor.role is Role.PARTNERSHIP_ADMIN and asked in {a.id for a in known}:
        return asked
    return actor.agency


@router.get("/principals")
async def principals(request: Request, app: App, actor: PrincipalsPage,
                     agency: Annotated[str | None, Query(max_length=64)] = None,
                     done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """An agency's principals (the caller's own; any, for a partnership administrator),
    with who added each and when, and who revoked it, when and why."""
    known = await _agencies(app, actor)
    chosen = _agency_of(actor, agency, known)
    found = await run_in_threadpool(admin_api.list_principals, chosen, app, actor)
    revocable = {p.principal_id for p in found if not p.revoked
                 and may(actor, Action.REVOKE_PRINCIPAL)
                 and (actor.role is Role.PARTNERSHIP_ADMIN
                      or (p.agency == actor.agency and p.role is not Role.PARTNERSHIP_ADMIN))}
    return render(request, "admin/principals.html", {
        "principals": found, "agency": next((a for a in known if a.id == chosen), None),
        "agency_id": chosen, "agencies": known, "done": DONE.get(done or ""),
        "revocable": revocable, "may_add": may(actor, Action.ADD_PRINCIPAL),
        "choose_agency": actor.role is Role.PARTNERSHIP_ADMIN, "role_names": ROLE_NAMES,
    })


def _principal_form(request: Request, actor: Actor, known: list[AgencyOut],
                    values: dict[str, str], problems: Problems,
                    status_code: int = 200) -> Response:
    chosen = values.get("agency") or actor.agency
    kind = next((a.kind for a in known if a.id == chosen), None)
    return render(request, "admin/principal_form.html", {
        "once": secrets.token_urlsafe(24),
        "values": {**values, "agency": chosen}, "messages": problems.messages,
        "errors": problems.summary(), "agencies": known,
        "choose_agency": actor.role is Role.PARTNERSHIP_ADMIN,
        "roles": [(r.value, ROLE_NAMES[r]) for r in _roles_offered(actor, kind)],
    }, status_code=422 if problems and status_code == 200 else status_code)


@router.get("/principals/new")
async def principal_form(request: Request, app: App, actor: PrincipalForm,
                         agency: Annotated[str | None, Query(max_length=64)] = None
                         ) -> Response:
    known = await _agencies(app, actor)
    return _principal_form(request, actor, known,
                           {"agency": _agency_of(actor, agency, known)}, Problems())


@router.post("/principals")
async def add_principal(request: Request, app: App, actor: PrincipalForm,
                        form: Form, store: Sessions) -> Response:
    """Enrols a principal and shows its token on this answer, once: it is never stored,
    and no page shows it again. The form carries a one-time key, so the same form sent
    again (a reload of this answer, a double click) adds nobody."""
    if not await run_in_threadpool(store.use_once, current_session(request), form.one("once")):
        return render(request, "admin/already_added.html", {}, status_code=409)
    known = await _agencies(app, actor)
    values = {name: form.one(name) for name in ("agency", "role", "name")}
    if actor.role is not Role.PARTNERSHIP_ADMIN:
        values["agency"] = actor.agency  # an admin adds to its own agency
    problems = Problems()
    try:
        body = PrincipalIn.model_validate(values)
    except ValidationError as exc:
        problems.add_validation(exc, lambda loc, _: str(loc[0]) if loc else "name", {
            "agency": "Choose the agency the principal acts for",
            "role": "Choose the principal's role",
            "name": "Enter the person's or system's name, in at most 200 characters"})
        problems.order_by(("agency", "name", "role"))
    else:
        try:
            issued = await run_in_threadpool(admin_api.add_principal, body, app, actor)
        except InvalidCommand as exc:  # a role that does not fit the agency's kind
            problems.add(exc.field, _message(exc.message))
        else:
            return render(request, "admin/token.html", {
                "token": issued.token, "principal_id": issued.principal_id,
                "name": body.name, "role": ROLE_NAMES[body.role], "agency": body.agency,
            }, status_code=201)
    return _principal_form(request, actor, known, values, problems)


async def _principal(app: App, actor: Actor, principal_id: UUID) -> PrincipalOut:
    """The principal, from the lists the caller may read (its own agency's; every
    agency's for a partnership administrator); as unknown otherwise."""
    agencies = ([a.id for a in await _agencies(app, actor)]
                if actor.role is Role.PARTNERSHIP_ADMIN else [actor.agency])
    for agency in agencies:
        found = await run_in_threadpool(admin_api.list_principals, agency, app, actor)
        for principal in found:
            if principal.principal_id == principal_id:
                return principal
    raise PrincipalNotFound()


def _revoke_page(request: Request, principal: PrincipalOut, reason: str,
                 problems: Problems, status_code: int = 200) -> Response:
    return render(request, "admin/revoke.html", {
        "principal": principal, "reason": reason, "messages": problems.messages,
        "errors": problems.summary(), "role_names": ROLE_NAMES,
    }, status_code=status_code)


@router.get("/principals/{principal_id}/revoke")
async def revoke_form(request: Request, principal_id: UUID, app: App,
                      actor: PrincipalRevokeForm) -> Response:
    """Asks to confirm, with a reason."""
    return _revoke_page(request, await _principal(app, actor, principal_id), "", Problems())


@router.post("/principals/{principal_id}/revoke")
async def revoke(request: Request, principal_id: UUID, app: App, actor: PrincipalRevokeForm,
                 form: Form) -> Response:
    """Revokes the principal's token: its sessions end at their next request."""
    problems, status = Problems(), 422
    reason = form.one("reason")
    try:
        body = RevokeIn(reason=reason)
    except ValidationError as exc:
        problems.add_validation(exc, lambda loc, _: "reason",
                                {"reason": "Enter why the access is revoked, for the record"})
    else:
        try:
            await run_in_threadpool(admin_api.revoke_principal, principal_id, body, app, actor)
        except Conflict as exc:  # the last administrator
            problems.add("reason", _message(str(exc)))
            status = 409
        else:
            target = "/ui/admin/principals?done=principal-revoked"
            if actor.role is Role.PARTNERSHIP_ADMIN:
                target += "&" + urlencode({"agency": form.one("agency")})
            return RedirectResponse(target, status_code=303)
    return _revoke_page(request, await _principal(app, actor, principal_id), reason, problems,
                        status)
