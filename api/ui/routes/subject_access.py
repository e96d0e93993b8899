"""An IG lead's pages for a subject access request (UK GDPR Art. 15): finding the client
by NHS number, and the printable answer.

The answer page calls the API's own route function
(``api.routers.subject_access.answer_subject_access``) with the dependencies it declared,
so it shows exactly what the API answers, and the read is on the access record as the
API's is. It has a heading per section, marks each item another agency recorded for the
IG lead's redaction review (with the reason), and says when and by whom it was produced,
so that it can be printed for review and release. Finding the client is the API's match
(``POST /v1/clients/match`` without a purpose: only a client the IG lead's own agency
holds a record of), recorded as a match, never with the number searched for.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import Access, App, Inbox, Index, ReadEngine, SubjectAccessPage, Views
from api.models import MatchIn
from api.routers import admin as admin_api
from api.routers import subject_access as subject_access_api
from api.routers import views as views_api
from api.routers.subject_access import SubjectAccessOut
from api.ui.form_errors import Problems
from api.ui.routes.practitioner import data_rows, fact_labels, fact_name
from api.ui.templating import add_section, render
from domain.errors import NotFound
from domain.permissions import Action
from projections.queries import AmbiguousMatch

router = APIRouter(prefix="/ui", include_in_schema=False)

add_section("Subject access", "/ui/subject-access", Action.ANSWER_SUBJECT_ACCESS)

NO_MATCH = ("No client found. Either nobody with this NHS number is a client, or your "
            "agency holds no record of them: a subject access request is answered by the "
            "agency that registered the client.")


def _find_page(request: Request, nhs_number: str = "", problems: Problems | None = None, *,
               no_match: str | None = None, status_code: int = 200) -> Response:
    problems = problems or Problems()
    return render(request, "subject_access/find.html", {
        "nhs_number": nhs_number, "messages": problems.messages, "errors": problems.summary(),
        "no_match": no_match}, status_code=status_code)


@router.get("/subject-access")
def find_form(request: Request, actor: SubjectAccessPage) -> Response:
    """Find the client a subject access request is about, by NHS number."""
    return _find_page(request)


@router.post("/subject-access")
async def find(request: Request, app: App, views: Views, access: Access,
               actor: SubjectAccessPage) -> Response:
    """Finds the client through the API's match (no purpose: an IG lead is answered only
    for its own agency's clients) and opens the answer; anything else is "no match"."""
    form = await request.form()
    raw = form.get("nhs_number")
    nhs_number = raw.strip() if isinstance(raw, str) else ""
    problems = Problems()
    if not nhs_number:
        problems.add("nhs_number", "Enter the client's NHS number", "nhs-number")
        return _find_page(request, nhs_number, problems, status_code=422)
    try:
        body = MatchIn.model_validate({"nhs_number": nhs_number})
    except ValidationError:
        problems.add("nhs_number", "Enter a valid NHS number: 10 digits, like 943 476 5919",
                     "nhs-number")
        return _find_page(request, nhs_number, problems, status_code=422)
    try:
        found = await run_in_threadpool(views_api.match, body, app, views, access, actor)
    except (NotFound, AmbiguousMatch):
        return _find_page(request, nhs_number, no_match=NO_MATCH)
    return RedirectResponse(f"/ui/clients/{found.client_id}/subject-access", status_code=303)


@router.get("/clients/{client_id}/subject-access")
async def answer(request: Request, client_id: UUID, app: App, access: Access,
                 engine: ReadEngine, index: Index, inbox: Inbox,
                 actor: SubjectAccessPage) -> Response:
    """Everything held about the client, printable, each section under its own heading,
    another agency's items marked for redaction review."""
    found: SubjectAccessOut = await run_in_threadpool(
        subject_access_api.answer_subject_access, client_id, app, access, engine, index,
        inbox, actor)
    agencies = {a.id: a.name for a in await run_in_threadpool(
        admin_api.list_agencies, app, actor)}
    labels = await run_in_threadpool(fact_labels, app, actor)
    return render(request, "subject_access/answer.html", {
        "answer": found, "agencies": agencies, "facts": _facts(found, labels),
        "by_agency": _by_agency(found)})


def _facts(found: SubjectAccessOut, labels: dict[str, Any]) -> list[dict[str, Any]]:
    """Each fact with its name and its payload as rows (as it stands, and as first
    recorded where it was amended), in the words its form offers."""
    return [{
        "fact": f, "name": fact_name(f.type),
        "rows": data_rows(f.data, labels.get(f.type)),
        "recorded_rows": data_rows(f.recorded_data, labels.get(f.type))
        if f.amendments else [],
        "amended_rows": [data_rows(c.data or {}, labels.get(f.type)) for c in f.amendments],
    } for f in found.facts]


def _by_agency(found: SubjectAccessOut) -> dict[str, int]:
    """How many facts each agency holding a part of the record recorded."""
    counts = dict.fromkeys(found.agencies, 0)
    for f in found.facts:
        counts[f.controller] = counts.get(f.controller, 0) + 1
    return counts

