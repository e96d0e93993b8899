"""The record's life, for the IG lead of the client's registering controller: restrict
processing (UK GDPR Art. 18) and lift it, place a legal hold and lift it, and erase the
client (Art. 17), each a form with a reason and a confirmation.

Each page calls the API's own route function (``api.routers.erasure``): where the
record stands (``GET /v1/clients/{id}/rights``, recorded), and each change, which the
application checks, seals and records as the API does. A refusal (409: already
restricted, no hold to lift, an erasure a legal hold or a safeguarding retention
prevents) is shown in words on the page and changes nothing; to anyone but the
registering controller's IG lead the client is as unknown (404), as in the API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.deps import (
    Access,
    App,
    EraseForm,
    LegalHoldForm,
    LiftLegalHoldForm,
    LiftRestrictionForm,
    ReadEngine,
    RecordLifePage,
    RestrictForm,
)
from api.models import StatedReasonIn
from api.routers import erasure as erasure_api
from api.ui.routes.practitioner import Submitted, receipt, receipt_holds
from api.ui.schema_form import FieldErrors, Form
from api.ui.templating import render
from domain.commands.erasure import REASON_LENGTH
from domain.errors import Conflict, InvalidCommand
from domain.results import Actor

router = APIRouter(prefix="/ui", include_in_schema=False)

#: pydantic's refusals of a text's length.
LENGTH_ERRORS = ("string_too_short", "string_too_long", "too_short", "too_long")


@dataclass(frozen=True)
class Change:
    """One of the record's changes: its form's name (and ids), what it asks, its button,
    and what the page says once it is done."""

    name: str
    heading: str
    question: str
    confirm: str
    button: str
    done: str


CHANGES = {c.name: c for c in (
    Change("restrict", "Restrict processing", "Why is processing restricted?",
           "I confirm that processing of this client is to be restricted",
           "Restrict processing",
           "Processing is restricted. Partners see nothing of this client; your agency "
           "reads the record only stating a legal claim."),
    Change("lift-restriction", "Lift the restriction", "Why is the restriction lifted?",
           "I confirm that the restriction is to be lifted", "Lift the restriction",
           "The restriction is lifted. Partners see the client again as agreements and "
           "consents allow."),
    Change("hold", "Place a legal hold", "Why is the record held?",
           "I confirm that the record is to be kept from erasure", "Place a legal hold",
           "A legal hold is in place. The record cannot be erased until it is lifted."),
    Change("lift-hold", "Lift the legal hold", "Why is the hold lifted?",
           "I confirm that the legal hold is to be lifted", "Lift the legal hold",
           "The legal hold is lifted."),
    Change("erase", "Erase the client", "Why is the client erased?",
           "I understand that the erasure cannot be undone", "Erase the client",
           "The client is erased."),
)}

def _page(request: Request, client_id: UUID, app: App, access: Access, actor: Actor, *,
          done: str | None = None, change: str | None = None, form: Form | None = None,
          errors: FieldErrors | None = None, refused: str | None = None,
          status_code: int = 200) -> Response:
    """The record's life: where it stands (read through the API, so recorded, and a
    client the caller's agency did not register is as unknown), and the forms that
    apply, one of them with its errors or its refusal."""
    rights = erasure_api.record_rights(client_id, app, access, actor)
    errors = errors or FieldErrors()
    shortest, longest = REASON_LENGTH
    return render(request, "governance/record_life.html", {
        "client_id": client_id, "rights": rights, "changes": CHANGES,
        "done": CHANGES[done].done if done in CHANGES and done != "erase" else None,
        "change": change, "form": form or Form({}), "errors": errors.summary(),
        "messages": errors.messages, "refused": refused,
        "shortest": shortest, "longest": longest,
    }, status_code=status_code)


@router.get("/clients/{client_id}/governance")
def record_life(request: Request, client_id: UUID, app: App, access: Access,
                actor: RecordLifePage,
                done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """Where the client's record stands (legal hold, restriction) and the forms to
    change it or to erase the client."""
    return _page(request, client_id, app, access, actor, done=done)


def _checked(name: str, form: Form) -> tuple[StatedReasonIn | None, FieldErrors]:
    """The reason, checked as the API checks it, and the confirmation; or the errors."""
    errors = FieldErrors()
    body = None
    try:
        body = StatedReasonIn.model_validate({"reason": form.one("reason")})
    except ValidationError as exc:
        shortest, longest = REASON_LENGTH
        problem = exc.errors()[0]
        if not form.one("reason").strip():
            message = "Enter the reason"
        elif problem["type"] in LENGTH_ERRORS:
            message = f"The reason must be {shortest} to {longest} characters"
        else:
            message = "The reason " + str(problem["msg"]).removeprefix("Value error, ")
        errors.add("reason", f"{name}-reason", message)
    if form.one("confirm") != "yes":
        errors.add("confirm", f"{name}-confirm", f"Tick the box: {CHANGES[name].confirm.lower()}")
    return body, errors


def _change(name: str, request: Request, client_id: UUID, app: App, access: Access,
            actor: Actor, form: Form, run: Callable[[StatedReasonIn], Any]) -> Response:
    """Checks the form, makes the change through the API's route function, and goes back
    to the page saying it is done; or shows the errors or the refusal, changing nothing."""
    body, errors = _checked(name, form)
    if body is not None and not errors:
        try:
            answer = run(body)
        except InvalidCommand as exc:
            errors.add("reason", f"{name}-reason", "The reason: " + exc.message)
        except Conflict as exc:
            return _page(request, client_id, app, access, actor, change=name, form=form,
                         refused=str(exc), status_code=409)
        else:
            if name == "erase":
                fingerprint = answer.reason_fingerprint
                return RedirectResponse(
                    f"/ui/governance/erased?fingerprint={fingerprint}"
                    f"&check={receipt(request, fingerprint)}", status_code=303)
            return RedirectResponse(f"/ui/clients/{client_id}/governance?done={name}",
                                    status_code=303)
    return _page(request, client_id, app, access, actor, change=name, form=form,
                 errors=errors, status_code=422)


@router.post("/clients/{client_id}/governance/restrict")
def restrict(request: Request, client_id: UUID, app: App, access: Access,
             actor: RestrictForm, form: Submitted) -> Response:
    """Restricts processing (``POST /v1/clients/{id}/restriction``)."""
    return _change("restrict", request, client_id, app, access, actor, form,
                   lambda body: erasure_api.restrict_processing(client_id, body, app, access,
                                                                actor))


@router.post("/clients/{client_id}/governance/lift-restriction")
def lift_restriction(request: Request, client_id: UUID, app: App, access: Access,
                     actor: LiftRestrictionForm, form: Submitted) -> Response:
    """Lifts the restriction (``POST /v1/clients/{id}/restriction/lift``)."""
    return _change("lift-restriction", request, client_id, app, access, actor, form,
                   lambda body: erasure_api.lift_restriction(client_id, body, app, access,
                                                             actor))


@router.post("/clients/{client_id}/governance/hold")
def place_hold(request: Request, client_id: UUID, app: App, access: Access,
               actor: LegalHoldForm, form: Submitted) -> Response:
    """Places a legal hold (``POST /v1/clients/{id}/legal-hold``)."""
    return _change("hold", request, client_id, app, access, actor, form,
                   lambda body: erasure_api.place_legal_hold(client_id, body, app, access,
                                                             actor))


@router.post("/clients/{client_id}/governance/lift-hold")
def lift_hold(request: Request, client_id: UUID, app: App, access: Access,
              actor: LiftLegalHoldForm, form: Submitted) -> Response:
    """Lifts the legal hold (``POST /v1/clients/{id}/legal-hold/lift``)."""
    return _change("lift-hold", request, client_id, app, access, actor, form,
                   lambda body: erasure_api.lift_legal_hold(client_id, body, app, access,
                                                            actor))


@router.post("/clients/{client_id}/governance/erase")
def erase(request: Request, client_id: UUID, app: App, access: Access, engine: ReadEngine,
          actor: EraseForm, form: Submitted) -> Response:
    """Erases the client (``POST /v1/clients/{id}/erase``): refused in words, changing
    nothing, under a legal hold or a safeguarding retention."""
    return _change("erase", request, client_id, app, access, actor, form,
                   lambda body: erasure_api.erase(client_id, body, app, access, engine,
                                                  actor))


@router.get("/governance/erased")
def erased(request: Request, actor: EraseForm,
           fingerprint: Annotated[str, Query(max_length=100)] = "",
           check: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    """Says the client is erased, with the reason's keyed fingerprint for the case file
    (the log keeps only that); shown only as this session's own erasure made it."""
    shown = fingerprint if receipt_holds(request, check, fingerprint) else None
    return render(request, "governance/erased.html", {"fingerprint": shown})
