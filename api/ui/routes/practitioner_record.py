"""Practitioners' pages, writing the record: registering a client, recording a fact with a
form generated from the catalogue's JSON Schema, amending or retracting a fact.

Each form posts to a page that calls the API's own route function (``register_client``,
``record_event``, ``amend_fact``, ``retract_fact``), so the same validation, permission
table and access record apply. Invalid input gets the form again (422) with an error
summary and each message beside its field, and changes nothing: the catalogue and the
request models judge what was typed, the page only says it in words.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.deps import (
    Access,
    AmendForm,
    App,
    FactForm,
    PageViewsCaughtUp,
    ReadEngine,
    RegisterForm,
    RetractForm,
    Views,
)
from api.models import ClientIn, EventIn, FactAmendIn, FactOut, FactRetractIn
from api.routers import catalogue as catalogue_api
from api.routers import clients as clients_api
from api.routers import views as views_api
from api.ui.restricted import restricted_elsewhere
from api.ui.routes.practitioner import (
    Submitted,
    client_href,
    data_rows,
    fact_labels,
    fact_name,
    purpose_of,
    validation_messages,
)
from api.ui.schema_form import (
    FieldErrors,
    Form,
    FormField,
    date_of,
    errors_of,
    every_field,
    fields_of,
    payload_of,
    values_of,
)
from api.ui.templating import render
from domain.catalogue import InvalidPayload, fact_type
from domain.errors import (
    ClientAlreadyRegistered,
    FactNotFound,
    InvalidCommand,
    NotFound,
    RestrictionReasonRequired,
)
from domain.results import Actor
from domain.vocabulary import Purpose

router = APIRouter(prefix="/ui", include_in_schema=False)

#: Times are typed as the partnership lives them; the API takes them with a time zone.
LOCAL = ZoneInfo("Europe/London")
#: The reason the API asks for a correction: this long (``FactAmendIn``, ``FactRetractIn``).
REASON_MIN, REASON_MAX = 10, 1000


def _event_types(app: App, actor: Actor) -> dict[str, Any]:
    """The catalogue as ``GET /v1/event-types`` serves it, by type name."""
    return {t.type: t for t in catalogue_api.event_types(app, actor)}


# -- registering a client -------------------------------------------------------------------

_IDENTITY_MESSAGES = {
    "given_name": ("given-name", "Enter the client's given name",
                   "Enter the given name in letters, up to 100 characters"),
    "family_name": ("family-name", "Enter the client's family name",
                    "Enter the family name in letters, up to 100 characters"),
    "date_of_birth": ("date-of-birth-day", "Enter the date of birth",
                      "Date of birth must be a real date in the past, after 1900"),
    "nhs_number": ("nhs-number", "Enter the NHS number",
                   "Enter a valid NHS number: 10 digits, like 943 476 5919"),
    "postcode": ("postcode", "Enter the postcode", "Enter a real UK postcode, like NR1 3QU"),
}


def _register_page(request: Request, form: Form | None = None,
                   errors: FieldErrors | None = None, *, existing: UUID | None = None,
                   status_code: int = 200) -> Response:
    errors = errors or FieldErrors()
    return render(request, "practitioner/register.html", {
        "form": form or Form({}), "errors": errors.summary(), "messages": errors.messages,
        "existing": existing}, status_code=status_code)


@router.get("/clients/new")
def register_form(request: Request, actor: RegisterForm) -> Response:
    """The registration form: who the client is (sealed at once when registered)."""
    return _register_page(request)


@router.post("/clients/new")
def register(request: Request, app: App, actor: RegisterForm, form: Submitted) -> Response:
    """Registers the client (``POST /v1/clients``) and goes to their page."""
    identity = {
        "given_name": form.one("given_name"), "family_name": form.one("family_name"),
        "date_of_birth": date_of(form, "date-of-birth") or "",
        "nhs_number": form.one("nhs_number"), "postcode": form.one("postcode"),
    }
    errors = FieldErrors()
    try:
        body = ClientIn.model_validate({"identity": identity})
    except ValidationError as exc:
        refused = validation_messages(exc)
        for name, (link, missing, invalid) in _IDENTITY_MESSAGES.items():
            if name in refused:
                errors.add(name, link, missing if not identity[name] else invalid)
        return _register_page(request, form, errors, status_code=422)
    try:
        created = clients_api.register_client(body, app, actor)
    except ClientAlreadyRegistered as exc:
        errors.add("nhs_number", "nhs-number",
                   "Your agency has already registered a client with this NHS number")
        return _register_page(request, form, errors, existing=exc.client_id, status_code=409)
    return RedirectResponse(client_href(created.client_id, Purpose.DIRECT_CARE,
                                        done="client-registered",
                                        min_position=created.position), status_code=303)


# -- recording a fact -----------------------------------------------------------------------


def _occurred_at(form: Form, errors: FieldErrors, *, required: bool = True
                 ) -> datetime | None:
    """When it happened, typed as a date and an optional time (24-hour, UK time)."""
    typed = date_of(form, "occurred-at")
    clock = form.one("occurred_time")
    if typed is None:
        if required:
            errors.add("occurred_at", "occurred-at-day", "Enter the date it happened")
        return None
    try:
        day = datetime.strptime(typed, "%Y-%m-%d").date()
    except ValueError:
        errors.add("occurred_at", "occurred-at-day",
                   "The date it happened must be a real date, like 5 1 2026")
        return None
    at = time(9, 0)
    if clock:
        try:
            at = time.fromisoformat(clock.replace(".", ":").zfill(5))
        except ValueError:
            errors.add("occurred_time", "occurred-time",
                       "Enter the time as hours and minutes, like 14:30")
            return None
    return datetime.combine(day, at, tzinfo=LOCAL).astimezone(UTC)


def _refusal(errors: FieldErrors, fields: list[FormField], refused: list[dict[str, str]]
             ) -> None:
    """The API's field errors, beside the form's fields (and at the date for when)."""
    by_name = {f.name: f for f in every_field(fields)}
    for name, message in errors_of(fields, refused).items():
        errors.add(name, by_name[name].focus_id, message)
    for e in refused:
        if e.get("field") == "occurred_at":
            errors.add("occurred_at", "occurred-at-day",
                       "The date it happened must not be in the future")


def _fact_page(request: Request, template: str, *, entry: Any, fields: list[FormField],
               values: dict[str, Any], form: Form, errors: FieldErrors,
               status_code: int = 200, **more: Any) -> Response:
    return render(request, template, {
        "entry": entry, "name": fact_name(entry.type), "fields": fields, "values": values,
        "form": form, "errors": errors.summary(), "messages": errors.messages, **more,
    }, status_code=status_code)


def _today(form: Form) -> Form:
    """A fresh fact form says today, at the time it is now (UK time)."""
    now = datetime.now(LOCAL)
    return Form({"occurred-at-day": [str(now.day)], "occurred-at-month": [str(now.month)],
                 "occurred-at-year": [str(now.year)],
                 "occurred_time": [now.strftime("%H:%M")], **form.values})


@router.get("/clients/{client_id}/facts/new")
def fact_form(
    request: Request,
    client_id: UUID,
    app: App,
    views: Views,
    access: Access,
    actor: FactForm,
    _: PageViewsCaughtUp,
    purpose: Annotated[Purpose, Query()],
    type_name: Annotated[str | None, Query(alias="type", max_length=64)] = None,
) -> Response:
    """Choose the fact type, then its form, generated from the type's JSON Schema. The
    form names the client as the caller sees them for the purpose
    (``GET /v1/clients/{id}/view``, recorded), so nobody records a fact about the wrong
    person, and a client the caller may not see is not found, as an unknown one."""
    try:
        seen = views_api.view(client_id, app, views, access, actor, None, purpose)
    except RestrictionReasonRequired:
        return restricted_elsewhere(request, client_id, purpose=purpose.value)
    named = _name(seen.identity)
    types = _event_types(app, actor)
    entry = types.get(type_name or "")
    if entry is None:
        return render(request, "practitioner/choose_type.html", {
            "client_id": client_id, "purpose": purpose, "named": named, "types": sorted(
                types.values(), key=lambda t: (t.category, t.type)),
            "unknown": type_name is not None and type_name != ""},
            status_code=404 if type_name else 200)
    fields = fields_of(entry.schema_)
    return _fact_page(request, "practitioner/fact_form.html", entry=entry, fields=fields,
                      values=values_of(fields, None, None), form=_today(Form({})),
                      errors=FieldErrors(), client_id=client_id, purpose=purpose,
                      named=named)


def _name(identity: Mapping[str, Any] | None) -> str | None:
    """The client's name as far as the caller sees it, or None."""
    if not identity:
        return None
    name = " ".join(str(identity[k]) for k in ("given_name", "family_name") if identity.get(k))
    return name or None


@router.post("/clients/{client_id}/facts/new")
def record_fact(request: Request, client_id: UUID, app: App, access: Access,
                actor: FactForm, form: Submitted) -> Response:
    """Records the fact (``POST /v1/clients/{id}/events``) and goes to the client's page."""
    types = _event_types(app, actor)
    entry = types.get(form.one("type"))
    if entry is None:
        raise NotFound("no fact type of that name; choose one from the list")
    purpose = purpose_of(form.one("purpose"))
    fields = fields_of(entry.schema_)
    errors = FieldErrors()
    occurred_at = _occurred_at(form, errors)
    data = payload_of(fields, form)
    position = None
    try:
        if occurred_at is not None:
            body = EventIn(type=entry.type, occurred_at=occurred_at, data=data)
            position = clients_api.record_event(client_id, body, app, access, actor).position
        else:  # the payload is judged all the same, so every error shows at once
            fact_type(entry.type).validate(data)
    except InvalidPayload as exc:
        _refusal(errors, fields, exc.errors)
    except InvalidCommand as exc:
        _refusal(errors, fields, [{"field": exc.field, "message": exc.message}])
    if errors or position is None:
        return _fact_page(request, "practitioner/fact_form.html", entry=entry, fields=fields,
                          values=values_of(fields, None, form), form=form, errors=errors,
                          client_id=client_id, purpose=purpose, status_code=422)
    return RedirectResponse(client_href(client_id, purpose or Purpose.DIRECT_CARE,
                                        done="fact-recorded", min_position=position),
                            status_code=303)


# -- correcting a fact ------------------------------------------------------------------------


def _recorded_fact(client_id: UUID, position: int, app: App, access: Access,
                   engine: ReadEngine, actor: Actor) -> FactOut:
    """The fact as the agency's own record holds it (``GET /v1/clients/{id}/record``);
    another agency's fact, or one already retracted, is not there to correct."""
    record = clients_api.read_record(client_id, app, access, engine, actor)
    found = next((f for f in record.facts if f.position == position), None)
    if found is None or found.retraction is not None:
        raise FactNotFound()
    return found


def _local(moment: datetime) -> Form:
    here = moment.astimezone(LOCAL)
    return Form({"occurred-at-day": [str(here.day)], "occurred-at-month": [str(here.month)],
                 "occurred-at-year": [str(here.year)],
                 "occurred_time": [here.strftime("%H:%M")]})


@router.get("/clients/{client_id}/facts/{position}/amend")
def amend_form(request: Request, client_id: UUID, position: clients_api.FactPosition,
               app: App, access: Access, engine: ReadEngine, actor: AmendForm) -> Response:
    """The fact's form, filled in as it stands, with a reason for the correction."""
    try:
        fact = _recorded_fact(client_id, position, app, access, engine, actor)
    except RestrictionReasonRequired:
        return restricted_elsewhere(request, client_id)
    entry = _event_types(app, actor)[fact.type]
    fields = fields_of(entry.schema_)
    return _fact_page(request, "practitioner/amend.html", entry=entry, fields=fields,
                      values=values_of(fields, fact.data, None), form=_local(fact.occurred_at),
                      errors=FieldErrors(), client_id=client_id, position=position)


@router.post("/clients/{client_id}/facts/{position}/amend")
def amend(request: Request, client_id: UUID, position: clients_api.FactPosition, app: App,
          access: Access, actor: AmendForm, form: Submitted) -> Response:
    """Amends the fact (``POST /v1/clients/{id}/facts/{position}/amend``)."""
    entry = _event_types(app, actor).get(form.one("type"))
    if entry is None:
        raise NotFound("no fact type of that name")
    fields = fields_of(entry.schema_)
    errors = FieldErrors()
    occurred_at = _occurred_at(form, errors)
    reason = form.one("reason")
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        errors.add("reason", "reason", "Enter why the record is corrected, in "
                                       f"{REASON_MIN} to {REASON_MAX} characters")
    data = payload_of(fields, form)
    try:
        if errors:  # judged all the same, so every error shows at once
            fact_type(entry.type).validate(data)
        else:
            body = FactAmendIn(data=data, occurred_at=occurred_at, reason=reason)
            at = clients_api.amend_fact(client_id, position, body, app, access, actor).position
            return RedirectResponse(
                f"/ui/clients/{client_id}/record?done=fact-amended&at={at}", status_code=303)
    except ValidationError:
        errors.add("reason", "reason", "Enter the reason as plain text")
    except InvalidPayload as exc:
        _refusal(errors, fields, exc.errors)
    except InvalidCommand as exc:
        _refusal(errors, fields, [{"field": exc.field, "message": exc.message}])
    return _fact_page(request, "practitioner/amend.html", entry=entry, fields=fields,
                      values=values_of(fields, None, form), form=form, errors=errors,
                      client_id=client_id, position=position, status_code=422)


@router.get("/clients/{client_id}/facts/{position}/retract")
def retract_form(request: Request, client_id: UUID, position: clients_api.FactPosition,
                 app: App, access: Access, engine: ReadEngine, actor: RetractForm
                 ) -> Response:
    """Asks to confirm the retraction, with the fact shown and a reason."""
    try:
        fact = _recorded_fact(client_id, position, app, access, engine, actor)
    except RestrictionReasonRequired:
        return restricted_elsewhere(request, client_id)
    rows = data_rows(fact.data, fact_labels(app, actor).get(fact.type))
    return _retract_page(request, client_id, position, fact.type, rows,
                         fact.occurred_at.isoformat(), Form({}), FieldErrors())


def _retract_page(request: Request, client_id: UUID, position: int, type_name: str,
                  rows: list[dict[str, str]], occurred: str, form: Form,
                  errors: FieldErrors, status_code: int = 200) -> Response:
    return render(request, "practitioner/retract.html", {
        "client_id": client_id, "position": position, "name": fact_name(type_name),
        "type": type_name, "rows": rows, "occurred": occurred, "form": form,
        "errors": errors.summary(), "messages": errors.messages,
    }, status_code=status_code)


@router.post("/clients/{client_id}/facts/{position}/retract")
def retract(request: Request, client_id: UUID, position: clients_api.FactPosition, app: App,
            access: Access, actor: RetractForm, form: Submitted) -> Response:
    """Retracts the fact (``POST /v1/clients/{id}/facts/{position}/retract``)."""
    errors = FieldErrors()
    reason = form.one("reason")
    try:
        body = FactRetractIn(reason=reason)
    except ValidationError:
        errors.add("reason", "reason",
                   "Enter why the fact should never have been recorded, in "
                   f"{REASON_MIN} to {REASON_MAX} characters")
        return _retract_page(request, client_id, position, form.one("type"), [],
                             form.one("occurred"), form, errors, status_code=422)
    at = clients_api.retract_fact(client_id, position, body, app, access, actor).position
    return RedirectResponse(f"/ui/clients/{client_id}/record?done=fact-retracted&at={at}",
                            status_code=303)
