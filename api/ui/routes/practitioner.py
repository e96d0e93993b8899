"""Practitioners' pages, reading: finding a client, the caseload or cohort, the client's
page as the agency sees it for a purpose (summary and chronology), the agency's own record.

Each page calls the API's own route function (``api.routers.views``, ``caseload``,
``clients``) with the dependencies it declared itself, so a page shows exactly what the
API would and each read is on the access record as the API's is; a refusal raised there
becomes the same error page (404 for a client the caller may not see, as for an unknown
one). The helpers the other practitioners' pages share (the submitted form, the purpose
choices, facts and bases in words) are here too.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.deps import (
    Access,
    App,
    Births,
    ClientListPage,
    ClientPage,
    FindPage,
    PageViewsCaughtUp,
    ReadEngine,
    RecordPage,
    Views,
)
from api.models import AgreementOut, MatchIn
from api.routers import agreements as agreements_api
from api.routers import caseload as caseload_api
from api.routers import catalogue as catalogue_api
from api.routers import clients as clients_api
from api.routers import views as views_api
from api.ui.restricted import BANNER as RESTRICTED_BANNER
from api.ui.restricted import FIELD as CLAIM_FIELD
from api.ui.restricted import FIELD_ID as CLAIM_ID
from api.ui.restricted import own_path, restricted_page, stated_claim
from api.ui.schema_form import FieldErrors, Form, choice_labels, date_of, words
from api.ui.templating import add_section, render
from domain.agencies import AgencyKind, Role
from domain.categories import DataCategory
from domain.errors import InvalidCommand, NotFound, RestrictionReasonRequired
from domain.permissions import Action, permits
from domain.results import Actor
from domain.vocabulary import Purpose
from projections import queries
from projections.caseload import DEFAULT_PAGE

router = APIRouter(prefix="/ui", include_in_schema=False)

add_section("Find a client", "/ui/find", Action.MATCH)
add_section("Clients", "/ui/clients", Action.LIST_CLIENTS)
add_section("Emergency access", "/ui/emergency-access", Action.GRANT_EMERGENCY_ACCESS)

#: The most pages a list offers (a bound, so a page number stays a number).
MAX_PAGES = 10_000


# -- shared by the practitioners' pages ------------------------------------------------------


async def _submitted(request: Request) -> Form:
    """The submitted form's text values by name (the guard has already read it for the
    CSRF token; Starlette keeps the parsed form)."""
    data = await request.form()
    return Form({key: [v for v in data.getlist(key) if isinstance(v, str)]
                 for key in data})


Submitted = Annotated[Form, Depends(_submitted)]

#: Purposes as the partnership says them.
PURPOSE_NAMES: dict[Purpose, str] = {
    Purpose.DIRECT_CARE: "Direct care",
    Purpose.CARE_COORDINATION: "Care coordination",
    Purpose.SAFEGUARDING_CHILDREN: "Safeguarding children",
    Purpose.SAFEGUARDING_ADULTS: "Safeguarding adults",
    Purpose.OFFENDER_MANAGEMENT: "Offender management",
    Purpose.COMMISSIONING: "Commissioning",
}


def purpose_items(chosen: str | None, *, commissioning: bool = False,
                  blank: str | None = "Choose a purpose") -> list[dict[str, Any]]:
    """The purposes as select items (a client is seen for every purpose but
    commissioning, which is for aggregates)."""
    items: list[dict[str, Any]] = [{"value": "", "text": blank}] if blank else []
    items += [{"value": p.value, "text": name, "selected": p.value == chosen}
              for p, name in PURPOSE_NAMES.items()
              if commissioning or p is not Purpose.COMMISSIONING]
    return items


def purpose_of(text: str) -> Purpose | None:
    try:
        return Purpose(text)
    except ValueError:
        return None


def may(actor: Actor, action: Action) -> bool:
    """Whether the permission table lets the actor take the action (to offer a link)."""
    return permits(action, actor.role, actor.agency_kind)


def client_href(client_id: UUID | str, purpose: Purpose | str | None, **more: Any) -> str:
    from urllib.parse import urlencode

    params = {"purpose": str(purpose) if purpose else None, **more}
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"/ui/clients/{client_id}" + (f"?{query}" if query else "")


_ENUM_LIKE = re.compile(r"^[a-z][a-z0-9_]*$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def value_text(value: Any) -> str:
    """A payload value in words: yes or no, a list joined, a code's words, a date."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if value is None:
        return "Not given"
    if isinstance(value, list):
        return ", ".join(value_text(v) for v in value) or "None"
    if isinstance(value, Mapping):
        return "; ".join(f"{words(str(k)).lower()}: {value_text(v)}" for k, v in value.items())
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.strftime("%-d %B %Y, %H:%M")
    if isinstance(value, date):
        return value.strftime("%-d %B %Y")
    text = str(value)
    if _ISO_DATE.match(text):
        try:
            return date.fromisoformat(text).strftime("%-d %B %Y")
        except ValueError:
            return text
    if _ENUM_LIKE.match(text):
        return text.replace("_", " ")
    return text


def data_rows(data: Mapping[str, Any], labels: Mapping[str, Mapping[str, str]] | None = None
              ) -> list[dict[str, str]]:
    """A payload as label and value rows, in the order it was recorded; a choice's value
    in the words its form offers (``labels``, from the type's schema) where known."""
    def shown(key: str, value: Any) -> str:
        named = (labels or {}).get(key)
        if named and isinstance(value, list):
            return ", ".join(named.get(str(v), value_text(v)) for v in value) or "None"
        if named and isinstance(value, str) and value in named:
            return named[value]
        return value_text(value)

    return [{"label": words(str(key)), "value": shown(str(key), value)}
            for key, value in data.items()]


#: The catalogue's choice labels by fact type, made once: the catalogue is the code's, the
#: same for every caller for the life of the process, and holds no client data.
_LABELS: dict[str, dict[str, dict[str, str]]] = {}


def fact_labels(app: Any, actor: Actor) -> dict[str, dict[str, dict[str, str]]]:
    """Each fact type's choice labels, from the catalogue (``GET /v1/event-types``, open
    to every role)."""
    if not _LABELS:
        _LABELS.update({t.type: choice_labels(t.schema_)
                        for t in catalogue_api.event_types(app, actor)})
    return _LABELS


def agreement_names(app: Any, actor: Actor) -> dict[str, AgreementOut]:
    """The agreements the caller's agency is a party to, by id, to name a basis by its
    title (``GET /v1/agreements``, open to every role)."""
    return {str(a.agreement_id): a for a in agreements_api.list_agreements(app, actor)}


def basis_words(basis: Mapping[str, Any], agreements: Mapping[str, AgreementOut]) -> str:
    """Why the caller sees a fact, in words: its own record, an agreement (named, with
    its version), with the client's consent, under a legal duty, or emergency access."""
    kind = basis.get("kind")
    if kind == "controller":
        return "Your agency's own record"
    if kind == "emergency":
        return ("Emergency access (break glass): reviewed by the information governance "
                "lead of the agency that holds the record")
    found = agreements.get(str(basis.get("agreement_id")))
    title = f"“{found.terms.title}”" if found else "a data-sharing agreement"
    version = basis.get("agreement_version")
    named = f"the agreement {title}" + (f" (version {version})" if version else "")
    if kind == "agreement_and_consent":
        text = f"Shared under {named}, with the client's consent"
    elif kind == "legal_duty":
        text = f"Shared under a legal duty, {basis.get('legal_duty')}, by {named}"
    else:
        text = f"Shared under {named}"
    lawful = basis.get("lawful_basis") or {}
    conditions = [str(v) for v in lawful.values() if v]
    if conditions:
        text += ". Lawful basis: " + "; ".join(conditions)
    return text


def fact_name(fact_type: str) -> str:
    return words(fact_type)


def receipt(request: Request, *parts: str) -> str:
    """A check that this session's own server made a page's ``done`` values (a grant's
    expiry, say), so a link from elsewhere cannot make a page say something untrue."""
    key = request.state.session.csrf_token.encode()
    return hmac.new(key, "|".join(parts).encode(), hashlib.sha256).hexdigest()[:32]


def receipt_holds(request: Request, check: str | None, *parts: str) -> bool:
    return check is not None and hmac.compare_digest(receipt(request, *parts), check)


def validation_messages(error: ValidationError) -> dict[str, str]:
    """A request model's refusal by field name (the last name in its location)."""
    found: dict[str, str] = {}
    for e in error.errors():
        names = [str(p) for p in e["loc"] if not isinstance(p, int)]
        found.setdefault(names[-1] if names else "body", e["msg"])
    return found


# -- finding a client -----------------------------------------------------------------------


def _find_page(request: Request, actor: Actor, form: Form | None = None,
               errors: FieldErrors | None = None, *, no_match: str | None = None,
               status_code: int = 200) -> Response:
    values = form or Form({})
    return render(request, "practitioner/find.html", {
        "purposes": purpose_items(values.one("purpose") or None,
                                  commissioning=actor.role is Role.COMMISSIONER,
                                  blank="Choose a purpose"),
        "purpose_optional": actor.role is Role.IG_LEAD,
        "form": values, "errors": (errors or FieldErrors()).summary(),
        "messages": (errors or FieldErrors()).messages, "no_match": no_match,
        "may_break_glass": may(actor, Action.GRANT_EMERGENCY_ACCESS),
    }, status_code=status_code)


@router.get("/find")
def find_form(request: Request, actor: FindPage) -> Response:
    """Find a client by NHS number, or by family name and date of birth, for a purpose."""
    return _find_page(request, actor)


def _found_href(actor: Actor, client_id: UUID, purpose: Purpose | None) -> str | None:
    if may(actor, Action.READ_VIEW) and purpose is not None:
        return client_href(client_id, purpose)
    if may(actor, Action.READ_RECORD):
        return f"/ui/clients/{client_id}/record"
    return None


@router.post("/find")
def find(request: Request, app: App, views: Views, births: Births, access: Access,
         actor: FindPage, form: Submitted) -> Response:
    """Finds the client through ``POST /v1/clients/match`` (NHS number) or
    ``POST /v1/clients/search`` (family name, forgiving a typo, and date of birth). No
    basis to know who the person is gets the same "no match" as an unknown person."""
    errors = FieldErrors()
    purpose = purpose_of(form.one("purpose"))
    if purpose is None and actor.role is not Role.IG_LEAD:
        errors.add("purpose", "purpose", "Select why you need to find this person")
    nhs_number, family_name = form.one("nhs_number"), form.one("family_name")
    born = date_of(form, "date-of-birth")
    if not nhs_number and not (family_name or born):
        errors.add("nhs_number", "nhs-number",
                   "Enter an NHS number, or a family name and date of birth")
    elif not nhs_number:
        if not family_name:
            errors.add("family_name", "family-name", "Enter the family name")
        if not born:
            errors.add("date_of_birth", "date-of-birth-day", "Enter the date of birth")
    if errors:
        return _find_page(request, actor, form, errors, status_code=422)
    no_match = ("No client found. Either nobody with these details is a client, or your "
                "agency has no basis to know who they are for this purpose.")
    if nhs_number:
        try:
            body = MatchIn.model_validate({"purpose": purpose, "nhs_number": nhs_number})
        except ValidationError:
            errors.add("nhs_number", "nhs-number",
                       "Enter a valid NHS number: 10 digits, like 943 476 5919")
            return _find_page(request, actor, form, errors, status_code=422)
        try:
            found = views_api.match(body, app, views, access, actor)
        except queries.AmbiguousMatch:
            return _find_page(request, actor, form, no_match=(
                "More than one client your agency may see has this NHS number. Ask the "
                "service that holds the record for the client's reference."))
        except NotFound:
            return _find_page(request, actor, form, no_match=no_match)
        href = _found_href(actor, found.client_id, purpose)
        if href is None:
            return render(request, "practitioner/candidates.html", {
                "candidates": [], "found": found.client_id, "purpose": purpose})
        return RedirectResponse(href, status_code=303)
    try:
        search = caseload_api.SearchIn.model_validate({
            "purpose": purpose, "family_name": family_name, "date_of_birth": born})
    except ValidationError as exc:
        refused = validation_messages(exc)
        if "family_name" in refused:
            errors.add("family_name", "family-name",
                       "Enter the family name in letters, up to 100 characters")
        if "date_of_birth" in refused:
            errors.add("date_of_birth", "date-of-birth-day",
                       "Date of birth must be a real date, like 12 4 1985")
        return _find_page(request, actor, form, errors, status_code=422)
    try:
        result = caseload_api.search(search, app, views, births, access, actor)
    except NotFound:
        return _find_page(request, actor, form, no_match=no_match)
    candidates = [{"client_id": c.client_id, "identity": c.identity,
                   "closeness": c.closeness, "href": _found_href(actor, c.client_id, purpose)}
                  for c in result.candidates]
    if len(candidates) == 1 and result.candidates[0].closeness == "exact" and \
            candidates[0]["href"]:
        return RedirectResponse(str(candidates[0]["href"]), status_code=303)
    return render(request, "practitioner/candidates.html", {
        "candidates": candidates, "purpose": purpose, "found": None})


# -- caseload and cohort ------------------------------------------------------------------


@router.get("/clients")
def clients(
    request: Request,
    app: App,
    views: Views,
    access: Access,
    actor: ClientListPage,
    _: PageViewsCaughtUp,
    purpose: Annotated[Purpose | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGES)] = 1,
) -> Response:
    """A treatment provider's caseload (its clients in treatment, with key worker), or an
    agency's cohort for a purpose (``GET /v1/clients``), a page at a time."""
    provider = actor.agency_kind is AgencyKind.TREATMENT_PROVIDER
    context: dict[str, Any] = {
        "purposes": purpose_items(purpose.value if purpose else None,
                                  blank="Caseload: clients in treatment" if provider
                                  else "Choose a purpose"),
        "purpose": purpose, "provider": provider, "listing": None,
        "may_register": may(actor, Action.REGISTER_CLIENT),
    }
    if purpose is None and not provider:
        return render(request, "practitioner/clients.html", context)
    listing = caseload_api.list_clients(
        app=app, views=views, access=access, actor=actor, _=None, purpose=purpose,
        limit=DEFAULT_PAGE, offset=(page - 1) * DEFAULT_PAGE)
    shown_purpose = purpose or Purpose.DIRECT_CARE

    def link(to: int) -> str:
        return "/ui/clients?" + "&".join(
            ([f"purpose={purpose.value}"] if purpose else []) + [f"page={to}"])

    context.update(
        listing=listing, page=page,
        rows=[{"client": c, "href": client_href(c.client_id, shown_purpose)}
              for c in listing.clients],
        previous=link(page - 1) if page > 1 else None,
        next=link(page + 1) if listing.next_offset is not None else None,
        pages=max(1, -(-listing.total // DEFAULT_PAGE)))
    return render(request, "practitioner/clients.html", context)


# -- the client's page ----------------------------------------------------------------------

DONE = {
    "client-registered": "The client is registered.",
    "fact-recorded": "The fact is recorded.",
    "fact-amended": "The fact is amended. Partners see it as corrected from now on.",
    "fact-retracted": "The fact is retracted. No partner sees it any more.",
    "emergency-access": "Emergency access granted.",
}


def prescription_words(latest: Mapping[str, Any]) -> str:
    """A prescription in force as a prescriber says it, from the fields the caller sees:
    "Methadone 60 mg a day, supervised (started 5 January 2026)"."""
    text = words(str(latest.get("medication") or "Prescription"))
    if latest.get("daily_dose_mg") is not None:
        text += f" {value_text(latest['daily_dose_mg'])} mg a day"
    if latest.get("supervised_consumption") is not None:
        text += ", supervised" if latest["supervised_consumption"] else ", not supervised"
    change = latest.get("change")
    since = latest.get("since")
    when = value_text(since.date() if isinstance(since, datetime) else since) if since else ""
    detail = " ".join(x for x in (str(change).replace("_", " ") if change else "", when) if x)
    return f"{text} ({detail})" if detail else text


def order_words(latest: Mapping[str, Any]) -> str:
    """An order in force: "Drug rehabilitation requirement, compliant, ends 31 March 2027
    (since 5 January 2026)", from the fields the caller sees."""
    parts = [words(str(latest.get("order") or "Order")).replace("_", " ")]
    if latest.get("status"):
        parts.append(value_text(latest["status"]))
    if latest.get("ends_on"):
        parts.append("ends " + value_text(latest["ends_on"]))
    since = latest.get("since")
    text = ", ".join(parts)
    if since:
        text += f" (since {value_text(since.date() if isinstance(since, datetime) else since)})"
    return text


def _chronology_context(request: Request, app: App, actor: Actor, chronology: Any
                        ) -> dict[str, Any]:
    agreements = agreement_names(app, actor)
    labels = fact_labels(app, actor)
    entries = [{
        "fact": f, "name": fact_name(f.type), "rows": data_rows(f.data, labels.get(f.type)),
        "basis": basis_words(f.basis, agreements), "emergency": f.basis.get("kind") ==
        "emergency", "own": f.controller == actor.agency,
    } for f in chronology.facts]
    summary = chronology.summary
    return {"chronology": chronology, "entries": entries, "summary": summary,
            "prescriptions": [prescription_words(p) for p in summary.prescriptions],
            "orders": [order_words(o) for o in summary.orders],
            "categories": [{"value": "", "text": "Every category",
                            "selected": chronology.category is None}] + [
                {"value": c.value, "text": words(c.value),
                 "selected": chronology.category == c}
                for c in DataCategory if c not in (DataCategory.IDENTITY, DataCategory.CONSENT)]}


@router.get("/clients/{client_id}")
def client_page(
    request: Request,
    client_id: UUID,
    app: App,
    views: Views,
    access: Access,
    actor: ClientPage,
    _: PageViewsCaughtUp,
    purpose: Annotated[Purpose, Query()],
    category: Annotated[DataCategory | None, Query()] = None,
    done: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    check: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The client as the caller's agency sees them for a purpose
    (``GET /v1/clients/{id}/chronology``): the identity fields shared, a summary, and
    every fact it may see in the order they happened, each with its basis in words,
    filterable by category (an htmx request for ``#chronology`` gets the list alone).
    Every link to it names the purpose (the find page, a list, an alert ask for it).
    A client whose processing is restricted gets the page asking for the legal claim."""
    try:
        chronology = caseload_api.chronology(
            client_id=client_id, app=app, views=views, access=access, actor=actor, _=None,
            purpose=purpose, category=category)
    except RestrictionReasonRequired:
        return restricted_page(request, action=own_path(request), back="/ui/clients",
                               back_text="Back to your clients without reading the record")
    return _client_page(request, client_id, app, actor, chronology, purpose,
                        done=done, until=until, check=check)


@router.post("/clients/{client_id}")
def client_page_for_a_claim(
    request: Request,
    client_id: UUID,
    app: App,
    views: Views,
    access: Access,
    actor: ClientPage,
    _: PageViewsCaughtUp,
    form: Submitted,
    purpose: Annotated[Purpose, Query()],
    category: Annotated[DataCategory | None, Query()] = None,
) -> Response:
    """The client's page read stating a legal claim (``restriction_reason``, in the
    body, never the URL), for a client whose processing is restricted: the chronology's
    own route function checks the claim and records it with the read."""
    claim, errors = stated_claim(form.one(CLAIM_FIELD))
    if claim is None:
        return restricted_page(request, action=own_path(request), back="/ui/clients",
                               back_text="Back to your clients without reading the record",
                               claim=form.one(CLAIM_FIELD), errors=errors, status_code=422)
    try:
        chronology = caseload_api.chronology(
            client_id=client_id, app=app, views=views, access=access, actor=actor, _=None,
            purpose=purpose, category=category, restriction_reason=claim)
    except InvalidCommand as exc:  # the API's own check of the claim, after ours
        errors.add(CLAIM_FIELD, CLAIM_ID, "The legal claim: " + exc.message)
        return restricted_page(request, action=own_path(request), back="/ui/clients",
                               back_text="Back to your clients without reading the record",
                               claim=form.one(CLAIM_FIELD), errors=errors, status_code=422)
    return _client_page(request, client_id, app, actor, chronology, purpose,
                        restricted_read=True)


def _client_page(request: Request, client_id: UUID, app: App, actor: Actor,
                 chronology: Any, purpose: Purpose, *, done: str | None = None,
                 until: str | None = None, check: str | None = None,
                 restricted_read: bool = False) -> Response:
    context = _chronology_context(request, app, actor, chronology)
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "chronology":
        return render(request, "practitioner/chronology.html", context)
    granted_until = None
    if done == "emergency-access" and until and receipt_holds(
            request, check, str(client_id), until):
        granted_until = until
    provider = chronology.summary.provider
    controller = provider is not None and provider.agency == actor.agency
    context.update({
        "client_id": client_id, "purpose": purpose,
        "purpose_name": PURPOSE_NAMES[purpose],
        "identity_rows": list(identity_rows(chronology.identity)),
        "purposes": purpose_items(purpose.value, blank=None),
        "done": DONE.get(done or "") if done != "emergency-access" else None,
        "granted_until": granted_until,
        "restricted_read": RESTRICTED_BANNER if restricted_read else None,
        "may_record": may(actor, Action.RECORD_FACT),
        "may_read_record": may(actor, Action.READ_RECORD) and controller,
        "may_consents": may(actor, Action.READ_CONSENTS) and controller,
        "may_household": may(actor, Action.LINK_HOUSEHOLD),
        "may_break_glass": may(actor, Action.GRANT_EMERGENCY_ACCESS) and not controller,
    })
    return render(request, "practitioner/client.html", context)


# -- the agency's own record -----------------------------------------------------------------


@router.get("/clients/{client_id}/record")
def own_record(request: Request, client_id: UUID, app: App, access: Access,
               engine: ReadEngine, actor: RecordPage,
               done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """What the caller's agency itself recorded about the client
    (``GET /v1/clients/{id}/record``): identity if it registered them, and each of its
    facts as corrected, with who recorded and corrected it, by name. A client whose
    processing is restricted gets the page asking for the legal claim."""
    try:
        record = clients_api.read_record(client_id, app, access, engine, actor)
    except RestrictionReasonRequired:
        return restricted_page(request, action=own_path(request), back="/ui",
                               back_text="Back to the start without reading the record")
    return _record_page(request, client_id, app, actor, record, done)


@router.post("/clients/{client_id}/record")
def own_record_for_a_claim(request: Request, client_id: UUID, app: App, access: Access,
                           engine: ReadEngine, actor: RecordPage,
                           form: Submitted) -> Response:
    """The agency's own record read stating a legal claim (``restriction_reason``, in
    the body, never the URL), for a client whose processing is restricted: the record's
    own route function checks the claim and records it with the read."""
    claim, errors = stated_claim(form.one(CLAIM_FIELD))
    if claim is not None:
        try:
            record = clients_api.read_record(client_id, app, access, engine, actor,
                                             restriction_reason=claim)
        except InvalidCommand as exc:  # the API's own check of the claim, after ours
            errors.add(CLAIM_FIELD, CLAIM_ID, "The legal claim: " + exc.message)
        else:
            return _record_page(request, client_id, app, actor, record, None)
    return restricted_page(request, action=own_path(request), back="/ui",
                           back_text="Back to the start without reading the record",
                           claim=form.one(CLAIM_FIELD), errors=errors, status_code=422)


def _record_page(request: Request, client_id: UUID, app: App, actor: Actor, record: Any,
                 done: str | None) -> Response:
    references: list[str] = []
    for f in record.facts:
        references.append(f.recorded_by)
        references += [c.by for c in f.amendments if c.by]
        if f.retraction and f.retraction.by:
            references.append(f.retraction.by)
    names = queries.principal_names(app, references)
    labels = fact_labels(app, actor)
    return render(request, "practitioner/record.html", {
        "record": record, "client_id": client_id, "names": names,
        "identity_rows": list(identity_rows(
            record.identity.model_dump() if record.identity else None)),
        "facts": [{"fact": f, "name": fact_name(f.type),
                   "rows": data_rows(f.data, labels.get(f.type))} for f in record.facts],
        "done": DONE.get(done or ""),
        "restricted_read": RESTRICTED_BANNER if record.restricted else None,
        "may_amend": may(actor, Action.AMEND_FACT),
        "may_retract": may(actor, Action.RETRACT_FACT),
        "may_record": may(actor, Action.RECORD_FACT),
        "may_consents": may(actor, Action.READ_CONSENTS),
        "may_view": may(actor, Action.READ_VIEW),
    })


def identity_rows(identity: Mapping[str, Any] | None) -> Iterable[dict[str, str]]:
    for key in ("given_name", "family_name", "date_of_birth", "nhs_number", "postcode"):
        if identity and identity.get(key) is not None:
            yield {"label": words(key).replace("Nhs", "NHS"), "value": value_text(
                identity[key]) if key == "date_of_birth" else str(identity[key])}
