"""Practitioners' pages about sharing: the client's consents (record, withdraw), households
(link, add a member, see who lives there as far as the caller may), and emergency
("break-glass") access with a justification, showing when it expires.

As everywhere in the web application, each page calls the API's own route function, so
the refusals, the access record and the answers are the API's.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.deps import (
    Access,
    App,
    ConsentForm,
    ConsentsPage,
    EmergencyForm,
    HouseholdForm,
    HouseholdPage,
    MemberForm,
    PageViewsCaughtUp,
    ReadEngine,
    Views,
    WithdrawConsentForm,
)
from api.models import ConsentIn, ConsentOut, EmergencyAccessIn, WithdrawIn
from api.routers import admin as admin_api
from api.routers import clients as clients_api
from api.routers import consents as consents_api
from api.routers import emergency as emergency_api
from api.routers import households as households_api
from api.ui.restricted import restricted_elsewhere
from api.ui.routes.practitioner import (
    PURPOSE_NAMES,
    Submitted,
    client_href,
    may,
    purpose_items,
    purpose_of,
    receipt,
    validation_messages,
)
from api.ui.schema_form import FieldErrors, Form, date_of
from api.ui.templating import render
from domain.agencies import AgencyKind
from domain.categories import DataCategory
from domain.errors import (
    ConsentNotFound,
    InvalidCommand,
    NotFound,
    RestrictionReasonRequired,
)
from domain.permissions import Action
from domain.results import Actor
from domain.vocabulary import ConsentObtained, Purpose

router = APIRouter(prefix="/ui", include_in_schema=False)


# -- consents ---------------------------------------------------------------------------------

CONSENT_DONE = {"consent-recorded": "The consent is recorded.",
                "consent-withdrawn": "The consent is withdrawn. Partners no longer see what "
                                     "it covered."}


@router.get("/clients/{client_id}/consents")
def consents(request: Request, client_id: UUID, app: App, access: Access,
             actor: ConsentsPage,
             done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """The consents recorded for sharing the agency's data about the client
    (``GET /v1/clients/{id}/consents``), each with what it covers and any withdrawal."""
    found = consents_api.list_consents(client_id, app, access, actor)
    return render(request, "practitioner/consents.html", {
        "client_id": client_id, "consents": found, "done": CONSENT_DONE.get(done or ""),
        "may_give": may(actor, Action.GIVE_CONSENT),
        "may_withdraw": may(actor, Action.WITHDRAW_CONSENT),
    })


def _recipients(app: App, actor: Actor, chosen: str) -> list[dict[str, Any]]:
    """Whom a consent may name: one partner agency, or every agency of a kind
    (``GET /v1/agencies``, open to every role)."""
    items: list[dict[str, Any]] = [{"value": "", "text": "Choose who may see it"}]
    items += [{"value": f"agency:{a.id}", "text": a.name, "selected": chosen == f"agency:{a.id}"}
              for a in admin_api.list_agencies(app, actor) if a.id != actor.agency]
    items += [{"value": f"kind:{k.value}", "text": f"Any {k.value.replace('_', ' ')} agency",
               "selected": chosen == f"kind:{k.value}"}
              for k in AgencyKind if k is not AgencyKind.COMMISSIONER]
    return items


def _choices(values: list[str], chosen: list[str], names: dict[str, str] | None = None
             ) -> list[dict[str, Any]]:
    return [{"value": v, "text": (names or {}).get(v, v.replace("_", " ").capitalize()),
             "checked": v in chosen} for v in values]


def _consent_page(request: Request, app: App, actor: Actor, client_id: UUID, form: Form,
                  errors: FieldErrors, status_code: int = 200, named: str | None = None
                  ) -> Response:
    return render(request, "practitioner/consent_form.html", {
        "client_id": client_id, "named": named,
        "form": form, "errors": errors.summary(),
        "messages": errors.messages,
        "recipients": _recipients(app, actor, form.one("recipient")),
        "categories": _choices([c.value for c in DataCategory if c is not DataCategory.CONSENT],
                               form.many("categories")),
        "purposes": _choices([p.value for p in Purpose if p is not Purpose.COMMISSIONING],
                             form.many("purposes"), {p.value: n for p, n in PURPOSE_NAMES.items()}),
        "obtained": [{"value": o.value, "text": o.value.capitalize(),
                      "checked": form.one("obtained") == o.value} for o in ConsentObtained],
    }, status_code=status_code)


@router.get("/clients/{client_id}/consents/new")
def consent_form(request: Request, client_id: UUID, app: App, access: Access,
                 engine: ReadEngine, actor: ConsentForm) -> Response:
    """The form to record the client's consent to share the agency's data. It names the
    client from the agency's own record (``GET /v1/clients/{id}/record``, recorded): only
    an agency holding a record of the client records their consent, so to any other the
    client is not found, as an unknown one."""
    try:
        record = clients_api.read_record(client_id, app, access, engine, actor)
    except RestrictionReasonRequired:
        return restricted_elsewhere(request, client_id)
    named = (f"{record.identity.given_name} {record.identity.family_name}"
             if record.identity else None)
    return _consent_page(request, app, actor, client_id, Form({}), FieldErrors(),
                         named=named)


_CONSENT_FIELDS = {
    "recipient": ("recipient", "Select who may see the client's information"),
    "recipient_agency": ("recipient", "Select who may see the client's information"),
    "recipient_kind": ("recipient", "Select who may see the client's information"),
    "categories": ("categories", "Select at least one kind of information"),
    "purposes": ("purposes", "Select at least one purpose"),
    "data_from": ("data-from-day", "The start of the period must be a real date"),
    "data_to": ("data-to-day", "The end of the period must be a real date, not before "
                               "its start"),
    "expires_at": ("expires-day", "The date the consent ends must be a real date"),
    "obtained": ("obtained", "Select how the consent was given"),
}


@router.post("/clients/{client_id}/consents/new")
def give_consent(request: Request, client_id: UUID, app: App, access: Access,
                 actor: ConsentForm, form: Submitted) -> Response:
    """Records the consent (``POST /v1/clients/{id}/consents``)."""
    recipient = form.one("recipient")
    kind, _, name = recipient.partition(":")
    expires = date_of(form, "expires")
    body: dict[str, Any] = {
        "recipient_agency": name if kind == "agency" else None,
        "recipient_kind": name if kind == "kind" else None,
        "categories": form.many("categories"), "purposes": form.many("purposes"),
        "data_from": date_of(form, "data-from"), "data_to": date_of(form, "data-to"),
        "expires_at": f"{expires}T23:59:59+00:00" if expires else None,
        "obtained": form.one("obtained") or None,
    }
    errors = FieldErrors()
    if kind not in ("agency", "kind") or not name:
        errors.add("recipient", "recipient", "Select who may see the client's information")
    try:
        checked = ConsentIn.model_validate(body)
    except ValidationError as exc:
        for field in validation_messages(exc):
            link, message = _CONSENT_FIELDS.get(field, (field, f"Check {field}"))
            errors.add(link, link, message)
        return _consent_page(request, app, actor, client_id, form, errors, status_code=422)
    if errors:
        return _consent_page(request, app, actor, client_id, form, errors, status_code=422)
    try:
        consents_api.give(client_id, checked, app, access, actor)
    except InvalidCommand as exc:  # the domain's word on the terms, beside its field
        link, message = _CONSENT_FIELDS.get(exc.field, (exc.field, exc.message))
        errors.add(link, link, message)
        return _consent_page(request, app, actor, client_id, form, errors, status_code=422)
    return RedirectResponse(f"/ui/clients/{client_id}/consents?done=consent-recorded",
                            status_code=303)


def _consent(client_id: UUID, consent_id: UUID, app: App, access: Access,
             actor: Actor) -> ConsentOut:
    found = next((c for c in consents_api.list_consents(client_id, app, access, actor)
                  if c.consent_id == consent_id), None)
    if found is None:
        raise ConsentNotFound()
    return found


@router.get("/clients/{client_id}/consents/{consent_id}/withdraw")
def withdraw_form(request: Request, client_id: UUID, consent_id: UUID, app: App,
                  access: Access, actor: WithdrawConsentForm) -> Response:
    """Asks to confirm the withdrawal, showing what the consent covers."""
    found = _consent(client_id, consent_id, app, access, actor)
    return render(request, "practitioner/withdraw.html", {
        "client_id": client_id, "consent": found, "form": Form({}), "errors": [],
        "messages": {}})


@router.post("/clients/{client_id}/consents/{consent_id}/withdraw")
def withdraw(request: Request, client_id: UUID, consent_id: UUID, app: App, access: Access,
             actor: WithdrawConsentForm, form: Submitted) -> Response:
    """Withdraws the consent (``POST /v1/clients/{id}/consents/{cid}/withdraw``): partners'
    views lose what it covered from then on."""
    try:
        body = WithdrawIn(reason=form.one("reason"))
    except ValidationError:
        errors = FieldErrors()
        errors.add("reason", "reason", "Enter why the consent is withdrawn, in up to 500 "
                                       "characters")
        found = _consent(client_id, consent_id, app, access, actor)
        return render(request, "practitioner/withdraw.html", {
            "client_id": client_id, "consent": found, "form": form,
            "errors": errors.summary(), "messages": errors.messages}, status_code=422)
    consents_api.withdraw(client_id, consent_id, body, app, access, actor)
    return RedirectResponse(f"/ui/clients/{client_id}/consents?done=consent-withdrawn",
                            status_code=303)


# -- households -------------------------------------------------------------------------------


def _references(text: str) -> tuple[list[UUID], list[str]]:
    """Client references typed one a line (or separated by commas or spaces)."""
    found, bad = [], []
    for part in text.replace(",", " ").split():
        try:
            found.append(UUID(part))
        except ValueError:
            bad.append(part)
    return list(dict.fromkeys(found)), bad


def _household_form(request: Request, form: Form, errors: FieldErrors,
                    status_code: int = 200) -> Response:
    return render(request, "practitioner/household_form.html", {
        "form": form, "errors": errors.summary(), "messages": errors.messages,
        "purposes": purpose_items(form.one("purpose") or Purpose.DIRECT_CARE.value, blank=None),
    }, status_code=status_code)


@router.get("/households/new")
def household_form(request: Request, actor: HouseholdForm,
                   client: Annotated[UUID | None, Query()] = None,
                   purpose: Annotated[Purpose | None, Query()] = None) -> Response:
    """The form to link clients who live together."""
    return _household_form(request, Form({
        "members": [str(client)] if client else [],
        "purpose": [purpose.value] if purpose else []}), FieldErrors())


@router.post("/households/new")
def link_household(request: Request, app: App, access: Access, actor: HouseholdForm,
                   form: Submitted) -> Response:
    """Links the clients (``POST /v1/households``) and shows the household."""
    members, bad = _references(form.one("members"))
    errors = FieldErrors()
    if bad:
        errors.add("members", "members", "Enter each client reference as shown on the "
                                         "client's page, one a line")
    elif not members:
        errors.add("members", "members", "Enter the reference of at least one client")
    if errors:
        return _household_form(request, form, errors, status_code=422)
    try:
        body = households_api.HouseholdIn(client_ids=members)
    except ValidationError:
        errors.add("members", "members", "Enter no more clients than a household holds")
        return _household_form(request, form, errors, status_code=422)
    created = households_api.link(body, app, access, actor)
    purpose = purpose_of(form.one("purpose")) or Purpose.DIRECT_CARE
    return RedirectResponse(
        f"/ui/households/{created.household_id}?purpose={purpose.value}&done=household-linked"
        f"&min_position={created.position}", status_code=303)


HOUSEHOLD_DONE = {"household-linked": "The household is linked.",
                  "member-added": "The client is added to the household."}


@router.get("/households/{household_id}")
def household(request: Request, household_id: UUID, app: App, views: Views, access: Access,
              actor: HouseholdPage, _: PageViewsCaughtUp,
              purpose: Annotated[Purpose, Query()] = Purpose.DIRECT_CARE,
              done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """Who lives in the household, as far as the agency may see them for the purpose
    (``GET /v1/households/{id}``), and a form to add a member."""
    found = households_api.household(household_id, app, views, access, actor, None, purpose)
    return render(request, "practitioner/household.html", {
        "household": found, "purpose": purpose, "purposes": purpose_items(purpose.value,
                                                                           blank=None),
        "members": [{"member": m, "href": client_href(m.client_id, purpose)}
                    for m in found.members],
        "done": HOUSEHOLD_DONE.get(done or ""), "may_add": may(actor, Action.ADD_HOUSEHOLD_MEMBER),
        "form": Form({}), "errors": [], "messages": {}})


@router.post("/households/{household_id}/members")
def add_member(request: Request, household_id: UUID, app: App, access: Access,
               actor: MemberForm, form: Submitted) -> Response:
    """Adds a client to the household (``POST /v1/households/{id}/members``)."""
    members, bad = _references(form.one("client"))
    purpose = purpose_of(form.one("purpose")) or Purpose.DIRECT_CARE
    if bad or len(members) != 1:
        errors = FieldErrors()
        errors.add("client", "client", "Enter one client reference, as shown on the client's "
                                       "page")
        return render(request, "practitioner/member_form.html", {
            "household_id": household_id, "purpose": purpose, "form": form,
            "errors": errors.summary(), "messages": errors.messages}, status_code=422)
    added = households_api.add_member(household_id, households_api.MemberIn(
        client_id=members[0]), app, access, actor)
    return RedirectResponse(
        f"/ui/households/{household_id}?purpose={purpose.value}&done=member-added"
        f"&min_position={added.position}", status_code=303)


# -- emergency access -------------------------------------------------------------------------

#: How long emergency access may last, as a practitioner would choose it (at most 24 hours).
DURATIONS = [(30, "30 minutes"), (60, "1 hour"), (120, "2 hours"), (240, "4 hours"),
             (480, "8 hours"), (1440, "24 hours")]


def _emergency_page(request: Request, form: Form, errors: FieldErrors,
                    status_code: int = 200) -> Response:
    return render(request, "practitioner/emergency.html", {
        "form": form, "errors": errors.summary(), "messages": errors.messages,
        "purposes": purpose_items(form.one("purpose") or None),
        "durations": [{"value": str(m), "text": t, "checked": form.one("minutes") == str(m)}
                      for m, t in DURATIONS],
    }, status_code=status_code)


@router.get("/emergency-access")
def emergency_form(request: Request, actor: EmergencyForm,
                   client: Annotated[UUID | None, Query()] = None) -> Response:
    """The break-glass form: the client, the purpose, a justification and how long."""
    return _emergency_page(request, Form({"client": [str(client)] if client else []}),
                           FieldErrors())


_EMERGENCY_FIELDS = {
    "purpose": ("purpose", "Select why you need to see the client now"),
    "justification": ("justification", "Describe the emergency in 10 to 1000 characters, "
                                       "in words the information governance lead will review"),
    "minutes": ("minutes", "Select how long you need access for"),
}


@router.post("/emergency-access")
def break_glass(request: Request, app: App, access: Access, actor: EmergencyForm,
                form: Submitted) -> Response:
    """Breaks glass (``POST /v1/clients/{id}/emergency-access``) and shows the client
    under the grant, saying until when."""
    errors = FieldErrors()
    client_id = None
    try:
        client_id = UUID(form.one("client"))
    except ValueError:
        errors.add("client", "client", "Enter the client reference the service that holds "
                                       "the record gave you")
    purpose = purpose_of(form.one("purpose"))
    try:
        body = EmergencyAccessIn.model_validate({
            "purpose": purpose, "justification": form.one("justification"),
            "minutes": form.one("minutes") or None})
    except ValidationError as exc:
        for field in validation_messages(exc):
            link, message = _EMERGENCY_FIELDS.get(field, (field, f"Check {field}"))
            errors.add(link, link, message)
        return _emergency_page(request, form, errors, status_code=422)
    if client_id is None:
        return _emergency_page(request, form, errors, status_code=422)
    try:
        grant = emergency_api.break_glass(client_id, body, app, access, actor)
    except NotFound:
        errors.add("client", "client", "No client has this reference. Check it with the "
                                       "service that holds the record")
        return _emergency_page(request, form, errors, status_code=404)
    except InvalidCommand as exc:
        link, message = _EMERGENCY_FIELDS.get(exc.field, (exc.field, exc.message))
        errors.add(link, link, message)
        return _emergency_page(request, form, errors, status_code=422)
    until = grant.expires_at.isoformat()
    return RedirectResponse(client_href(
        client_id, body.purpose, done="emergency-access", until=until,
        check=receipt(request, str(client_id), until), min_position=grant.position),
        status_code=303)
