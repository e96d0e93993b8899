"""Information governance leads' pages: the register of data-sharing agreements, the
access audit, a client's disclosures, the point-in-time replay (stepping through time),
emergency-access reviews, and the log's signed tree head and its verification.

Every page calls the API's own route function (``api.routers.agreements``, ``audit``,
``replay_changes``, ``reviews``, ``emergency``, ``tree``, ``admin``) with the
dependencies it declared itself, so it shows what the API would and each read of client
data is on the access record as the API's is. A refusal raised there is the same error
page (404 for what the caller may not see, as for what does not exist). Forms are checked
by the API's own models and commands; their refusals are shown beside each field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import (
    Access,
    AccessAuditPage,
    AgreementAmendForm,
    AgreementApproveForm,
    AgreementPage,
    AgreementProposeForm,
    AgreementRevokeForm,
    AgreementsPage,
    App,
    DisclosuresPage,
    GrantEndForm,
    Index,
    PageViewsCaughtUp,
    ReadEngine,
    ReplayPage,
    ReviewCloseForm,
    ReviewsPage,
    Tree,
    TreeKeys,
    TreePage,
)
from api.models import (
    AgencyOut,
    AgreementOut,
    EmergencyAccessEndIn,
    ReplayChangesOut,
    ReplayOut,
    ReviewCloseIn,
    ReviewOut,
    RevokeIn,
)
from api.routers import admin as admin_api
from api.routers import agreements as agreements_api
from api.routers import audit as audit_api
from api.routers import emergency as emergency_api
from api.routers import replay_changes as changes_api
from api.routers import reviews as reviews_api
from api.routers import tree as tree_api
from api.ui.form_errors import Problems, Submitted, day_parts, submitted
from api.ui.templating import add_section, render
from domain.agreements import AgreementStatus, AgreementTerms, shareable_fields
from domain.categories import NEVER_SHARED_BY_AGREEMENT, DataCategory
from domain.errors import (
    AgencyNotFound,
    AgreementRevoked,
    ClientNotFound,
    Conflict,
    Forbidden,
    InvalidCommand,
    NotFound,
    ReviewNotFound,
)
from domain.permissions import Action, permits
from domain.results import Actor
from domain.reviews import ReviewOutcome, ReviewStatus
from domain.vocabulary import Article6, Article9, Article10, LegalDuty, Purpose

router = APIRouter(prefix="/ui", include_in_schema=False)

add_section("Agreements", "/ui/agreements", Action.PROPOSE_AGREEMENT)
add_section("Access audit", "/ui/audit/accesses", Action.READ_AUDIT)
add_section("Replay", "/ui/audit/replay", Action.REPLAY)
add_section("Emergency access reviews", "/ui/audit/reviews", Action.READ_REVIEWS)
add_section("Tamper evidence", "/ui/audit/tree", Action.READ_TREE_HEAD)

Form = Annotated[Submitted, Depends(submitted)]

#: What a page says after a change it redirected to (``?done=``).
DONE = {
    "proposed": "The agreement was proposed. It comes into force when both parties' IG "
                "leads have approved it.",
    "approved": "You approved the agreement's latest terms.",
    "amended": "The amendment was proposed as a new version. The terms in force stay until "
               "both parties approve it.",
    "revoked": "The agreement was revoked. Partners' views lose what it shared.",
    "review-closed": "The review was closed.",
    "access-ended": "The emergency access was ended. The grantee no longer sees what it "
                    "alone showed.",
}


def may(actor: Actor, action: Action) -> bool:
    """Whether the permission table lets the actor take the action (to offer it)."""
    return permits(action, actor.role, actor.agency_kind)


def said(value: Any) -> str:
    """An enum's value as words: ``care_coordination`` is "Care coordination"."""
    text = str(getattr(value, "value", value)).replace("_", " ")
    return text[:1].upper() + text[1:]


def _done(done: str | None) -> str | None:
    return DONE.get(done or "")


async def _agencies(app: App, actor: Actor) -> dict[str, AgencyOut]:
    """The partnership's agencies by id (the directory is for everyone)."""
    found = await run_in_threadpool(admin_api.list_agencies, app, actor)
    return {a.id: a for a in found}


# -- agreement terms as a form -------------------------------------------------------------

#: Each category an agreement can share, with the fields it can share.
CATEGORY_FIELDS: dict[DataCategory, list[str]] = {
    category: sorted(shareable_fields(category)) for category in DataCategory
    if category not in NEVER_SHARED_BY_AGREEMENT and shareable_fields(category)
}
FIRST_CATEGORY = next(iter(CATEGORY_FIELDS))
DATES = ("valid_from", "valid_to", "review_on")
#: The element an error about each field links to.
LINKS = {"categories": f"share-{FIRST_CATEGORY.value}", "purposes": "purposes",
         "consent_required": "consent_required",
         **{name: f"{name}-day" for name in DATES}}
#: The terms form's fields, in the order it asks for them.
TERMS_ORDER = ("recipient", "title", "purposes", "categories", "article_6", "article_9",
               "article_10", "legal_duty", "consent_required", *DATES, "retention_days")
#: What to do, for a field the model refuses without words of its own.
TERMS_WORDS = {
    "recipient": "Choose the agency that receives the data",
    "title": "Enter a title of at most 200 characters",
    "purposes": "Choose at least one purpose",
    "categories": "Choose the fields shared for at least one category",
    "article_6": "Choose the Article 6 lawful basis",
    "article_9": "Choose an Article 9 condition from the list",
    "article_10": "Choose an Article 10 condition from the list",
    "legal_duty": "Choose a legal duty from the list",
    "consent_required": "Say whether sharing needs the client's consent",
    "valid_from": "Enter the date the agreement starts, for example 1 4 2026",
    "valid_to": "Enter the date the agreement ends as a real date, or leave it empty",
    "review_on": "Enter the date the agreement is to be reviewed, for example 1 4 2027",
    "retention_days": "Enter how many days the recipient keeps the data, from 1 to 36500",
}


def _terms_field(loc: tuple[Any, ...], message: str) -> str:
    """The form field a validation error of ``AgreementTerms`` is about."""
    if not loc:  # the model's own checks, which name what they are about
        for name in ("article_9", "article_10", "valid_to", "consent"):
            if name in message:
                return "consent_required" if name == "consent" else name
        return "recipient" if "recipient" in message else "categories"
    if loc[0] == "lawful_basis":
        return str(loc[1]) if len(loc) > 1 else "article_6"
    return str(loc[0])


def _terms_submitted(form: Submitted, recipient: str | None,
                     problems: Problems) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the terms as the API takes them, the values to show the form again with)."""
    values: dict[str, Any] = {
        "recipient": recipient or form.one("recipient"),
        "title": form.one("title"),
        "purposes": form.many("purposes"),
        "shared": {c.value: form.many(f"share-{c.value}") for c in CATEGORY_FIELDS},
        "article_6": form.one("article_6"), "article_9": form.one("article_9"),
        "article_10": form.one("article_10"), "legal_duty": form.one("legal_duty"),
        "consent_required": form.one("consent_required"),
        "retention_days": form.one("retention_days"),
        **{name: form.day_parts(name) for name in DATES},
    }
    raw: dict[str, Any] = {
        "recipient": values["recipient"], "title": values["title"],
        "purposes": values["purposes"],
        "categories": {c: f for c, f in values["shared"].items() if f},
        "lawful_basis": {name: values[name] or None
                         for name in ("article_6", "article_9", "article_10", "legal_duty")},
        "consent_required": {"yes": True, "no": False}.get(values["consent_required"]),
        "retention_days": values["retention_days"],
    }
    for name in DATES:
        day, real = form.day(name)
        if not real:
            problems.add(name, "Enter a real date, for example 1 4 2026", LINKS[name])
        raw[name] = day
    return raw, values


def _terms_values(terms: AgreementTerms) -> dict[str, Any]:
    """An agreement's terms as the form shows them (to amend them)."""
    basis = terms.lawful_basis
    return {
        "recipient": terms.recipient, "title": terms.title,
        "purposes": [p.value for p in terms.purposes],
        "shared": {c.value: list(terms.categories.get(c, [])) for c in CATEGORY_FIELDS},
        "article_6": basis.article_6.value,
        "article_9": basis.article_9.value if basis.article_9 else "",
        "article_10": basis.article_10.value if basis.article_10 else "",
        "legal_duty": basis.legal_duty.value if basis.legal_duty else "",
        "consent_required": "yes" if terms.consent_required else "no",
        "retention_days": str(terms.retention_days),
        "valid_from": day_parts(terms.valid_from), "valid_to": day_parts(terms.valid_to),
        "review_on": day_parts(terms.review_on),
    }


def _checked_terms(raw: Mapping[str, Any], problems: Problems) -> AgreementTerms | None:
    try:
        terms = AgreementTerms.model_validate(raw)
    except ValidationError as exc:
        problems.add_validation(exc, _terms_field, TERMS_WORDS)
        for key in problems.messages:
            problems.links[key] = LINKS.get(key, key)
        problems.order_by(TERMS_ORDER)
        return None
    return None if problems else terms


def _terms_form(request: Request, actor: Actor, agencies: Mapping[str, AgencyOut],
                values: Mapping[str, Any], problems: Problems,
                agreement: AgreementOut | None = None) -> Response:
    return render(request, "ig/terms_form.html", {
        "agreement": agreement, "values": values, "messages": problems.messages,
        "errors": problems.summary(),
        "recipients": [a for a in agencies.values() if a.id != actor.agency],
        "agencies": agencies,
        "purposes": [(p.value, said(p)) for p in Purpose],
        "categories": [(c.value, said(c), [(f, said(f)) for f in fields])
                       for c, fields in CATEGORY_FIELDS.items()],
        "article_6": [a.value for a in Article6], "article_9": [a.value for a in Article9],
        "article_10": [a.value for a in Article10], "duties": [d.value for d in LegalDuty],
        "current": terms_lines(agreement.terms, agencies) if agreement else None,
        "rows": ROWS,
    }, status_code=422 if problems else 200)


# -- agreement terms as words, side by side ---------------------------------------------------

ROWS = ("Title", "Recipient", "Purposes", "What is shared", "Article 6 basis",
        "Article 9 condition", "Article 10 condition", "Legal duty",
        "Needs the client's consent", "Valid from", "Valid to", "Review on", "Kept for")


def _day_words(value: Any) -> str:
    return value.strftime("%-d %B %Y") if value else "No end date"


def terms_lines(terms: AgreementTerms, agencies: Mapping[str, AgencyOut]) -> dict[str, list[str]]:
    """Each row of the terms, as lines of words."""
    basis = terms.lawful_basis
    recipient = agencies.get(terms.recipient)
    return {
        "Title": [terms.title],
        "Recipient": [recipient.name if recipient else terms.recipient],
        "Purposes": [said(p) for p in terms.purposes],
        "What is shared": [f"{said(c)}: {', '.join(said(f) for f in fields)}"
                           for c, fields in terms.categories.items()],
        "Article 6 basis": [basis.article_6.value],
        "Article 9 condition": [basis.article_9.value if basis.article_9 else "None"],
        "Article 10 condition": [basis.article_10.value if basis.article_10 else "None"],
        "Legal duty": [basis.legal_duty.value if basis.legal_duty else "None"],
        "Needs the client's consent": ["Yes" if terms.consent_required else "No"],
        "Valid from": [_day_words(terms.valid_from)],
        "Valid to": [_day_words(terms.valid_to)],
        "Review on": [_day_words(terms.review_on)],
        "Kept for": [f"{terms.retention_days} days"],
    }


def _version_of(text: str | None, latest: int) -> int | None:
    return int(text) if text and text.isdigit() and 1 <= int(text) <= latest else None


def _compared(agreement: AgreementOut, left: str | None, right: str | None) -> list[int]:
    """The versions shown side by side: as asked, else the terms in force beside a
    proposed amendment, else the latest beside the one before."""
    latest, in_force = agreement.version, agreement.version_in_force
    chosen = [v for v in (_version_of(left, latest), _version_of(right, latest)) if v]
    if len(chosen) == 2 and chosen[0] != chosen[1]:
        return sorted(chosen)
    if chosen:
        other = in_force if in_force and in_force != chosen[0] else (
            latest if latest != chosen[0] else latest - 1)
        return sorted({chosen[0], other} - {0})
    if agreement.amendment_proposed and in_force:
        return [in_force, latest]
    return [latest - 1, latest] if latest > 1 else [latest]


def _version_name(agreement: AgreementOut, version: int) -> str:
    if version == agreement.version_in_force:
        return f"Version {version} (in force)"
    if version == agreement.version and agreement.status is not AgreementStatus.REVOKED:
        return f"Version {version} (awaiting approval)"
    return f"Version {version}"


# -- the register ------------------------------------------------------------------------------


@router.get("/agreements")
async def agreements(request: Request, app: App, actor: AgreementsPage,
                     done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """The agreements the caller's agency is party to: status, parties, purposes."""
    found = await run_in_threadpool(agreements_api.list_agreements, app, actor)
    return render(request, "ig/agreements.html", {
        "agreements": found, "agencies": await _agencies(app, actor), "done": _done(done),
        "may_propose": may(actor, Action.PROPOSE_AGREEMENT), "said": said,
    })


@router.get("/agreements/new")
async def propose_form(request: Request, app: App, actor: AgreementProposeForm) -> Response:
    values: dict[str, Any] = {"shared": {}, "purposes": [],
                              **{name: day_parts(None) for name in DATES}}
    return _terms_form(request, actor, await _agencies(app, actor), values, Problems())


@router.post("/agreements")
async def propose(request: Request, app: App, actor: AgreementProposeForm,
                  form: Form) -> Response:
    """Proposes the agreement the terms form describes; the caller's agency controls."""
    problems = Problems()
    raw, values = _terms_submitted(form, None, problems)
    terms = _checked_terms(raw, problems)
    if terms is not None:
        try:
            created = await run_in_threadpool(agreements_api.propose, terms, app, actor)
        except InvalidCommand as exc:
            problems.add(exc.field, exc.message[:1].upper() + exc.message[1:])
        except AgencyNotFound:
            problems.add("recipient", "Choose an agency of the partnership")
        else:
            return RedirectResponse(f"/ui/agreements/{created.agreement_id}?done=proposed",
                                    status_code=303)
    return _terms_form(request, actor, await _agencies(app, actor), values, problems)


@router.get("/agreements/{agreement_id}")
async def agreement(request: Request, agreement_id: UUID, app: App, actor: AgreementPage,
                    left: Annotated[str | None, Query(max_length=10)] = None,
                    right: Annotated[str | None, Query(max_length=10)] = None,
                    done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """One agreement: where it stands, each party's approval, its terms (versions side by
    side: in force beside a proposed amendment, or any two), and what the caller may do."""
    found = await run_in_threadpool(agreements_api.read_agreement, agreement_id, app, actor)
    agencies = await _agencies(app, actor)
    shown = _compared(found, left, right)
    columns = [(_version_name(found, v), terms_lines(found.versions[v - 1], agencies))
               for v in shown]
    changed = {row for row in ROWS if len({tuple(lines[row]) for _, lines in columns}) > 1}
    party = actor.agency in (found.controller, found.recipient)
    live = found.status is not AgreementStatus.REVOKED
    return render(request, "ig/agreement.html", {
        "agreement": found, "agencies": agencies, "columns": columns, "rows": ROWS,
        "changed": changed, "shown": shown, "done": _done(done), "said": said,
        "versions": [(v, _version_name(found, v)) for v in range(1, found.version + 1)],
        "may_approve": live and party and actor.agency not in found.approvals
        and may(actor, Action.APPROVE_AGREEMENT),
        "may_amend": live and actor.agency == found.controller
        and may(actor, Action.AMEND_AGREEMENT),
        "may_revoke": live and party and may(actor, Action.REVOKE_AGREEMENT),
    })


@router.post("/agreements/{agreement_id}/approve")
async def approve(agreement_id: UUID, app: App, actor: AgreementApproveForm) -> Response:
    await run_in_threadpool(agreements_api.approve, agreement_id, app, actor)
    return RedirectResponse(f"/ui/agreements/{agreement_id}?done=approved", status_code=303)


@router.get("/agreements/{agreement_id}/amend")
async def amend_form(request: Request, agreement_id: UUID, app: App,
                     actor: AgreementAmendForm) -> Response:
    """The terms form, filled with the latest terms, to propose the next version (the
    controller's IG lead only, as the command says; a revoked agreement is not amended)."""
    found = await run_in_threadpool(agreements_api.read_agreement, agreement_id, app, actor)
    if actor.agency != found.controller:
        raise Forbidden("only the controller's IG lead amends an agreement")
    if found.status is AgreementStatus.REVOKED:
        raise AgreementRevoked()
    return _terms_form(request, actor, await _agencies(app, actor),
                       _terms_values(found.terms), Problems(), found)


@router.post("/agreements/{agreement_id}/amend")
async def amend(request: Request, agreement_id: UUID, app: App, actor: AgreementAmendForm,
                form: Form) -> Response:
    found = await run_in_threadpool(agreements_api.read_agreement, agreement_id, app, actor)
    problems = Problems()
    raw, values = _terms_submitted(form, found.recipient, problems)
    terms = _checked_terms(raw, problems)
    if terms is not None:
        try:
            await run_in_threadpool(agreements_api.amend, agreement_id, terms, app, actor)
        except InvalidCommand as exc:
            problems.add(exc.field, exc.message[:1].upper() + exc.message[1:])
        else:
            return RedirectResponse(f"/ui/agreements/{agreement_id}?done=amended",
                                    status_code=303)
    return _terms_form(request, actor, await _agencies(app, actor), values, problems, found)


@router.get("/agreements/{agreement_id}/revoke")
async def revoke_form(request: Request, agreement_id: UUID, app: App,
                      actor: AgreementRevokeForm) -> Response:
    found = await run_in_threadpool(agreements_api.read_agreement, agreement_id, app, actor)
    return render(request, "ig/revoke.html", {"agreement": found, "reason": "",
                                              "messages": {}, "errors": []})


@router.post("/agreements/{agreement_id}/revoke")
async def revoke(request: Request, agreement_id: UUID, app: App, actor: AgreementRevokeForm,
                 form: Form) -> Response:
    """Revokes with the reason given (confirmed on the page before)."""
    problems = Problems()
    try:
        body = RevokeIn(reason=form.one("reason"))
    except ValidationError as exc:
        problems.add_validation(exc, lambda loc, _: "reason",
                                {"reason": "Enter why the agreement is revoked"})
    else:
        await run_in_threadpool(agreements_api.revoke, agreement_id, body, app, actor)
        return RedirectResponse(f"/ui/agreements/{agreement_id}?done=revoked",
                                status_code=303)
    found = await run_in_threadpool(agreements_api.read_agreement, agreement_id, app, actor)
    return render(request, "ig/revoke.html", {
        "agreement": found, "reason": form.one("reason"), "messages": problems.messages,
        "errors": problems.summary()}, status_code=422)


# -- the access audit and disclosures ------------------------------------------------------

LIMITS = (50, 100, 500, 1000, 5000)
_PRINCIPAL = re.compile(audit_api.PRINCIPAL_REFERENCE)


def _day_start(form: Submitted, prefix: str, problems: Problems,
               next_day: bool = False) -> datetime | None:
    day, real = form.day(prefix)
    if not real:
        problems.add(prefix, "Enter a real date, for example 5 3 2026", f"{prefix}-day")
        return None
    if day is None:
        return None
    start = datetime.combine(datetime.fromisoformat(day).date(), time(), tzinfo=UTC)
    return start + timedelta(days=1) if next_day else start


@router.get("/audit/accesses")
async def accesses(request: Request, app: App, index: Index,
                   actor: AccessAuditPage) -> Response:
    """Who read what, about whom, why: the API's access audit with its filters (a
    client, the agency that read, a principal, a period, how many)."""
    form = Submitted({k: request.query_params.getlist(k) for k in request.query_params})
    problems = Problems()
    agencies = await _agencies(app, actor)
    client_id = None
    if form.one("client_id"):
        try:
            client_id = UUID(form.one("client_id"))
        except ValueError:
            problems.add("client_id", "Enter a client id as the audit shows it, for example "
                                      "3f2c1a0b-5d6e-4f70-8a9b-0c1d2e3f4a5b")
    agency = form.one("agency") or None
    if agency is not None and agency not in agencies:
        problems.add("agency", "Choose an agency of the partnership")
    principal = form.one("principal") or None
    if principal is not None and not _PRINCIPAL.fullmatch(principal):
        problems.add("principal", "Enter a principal id as the audit shows it")
    since = _day_start(form, "from", problems)
    until = _day_start(form, "to", problems, next_day=True)
    if since and until and until <= since:
        problems.add("to", "The last day must be on or after the first day", "to-day")
    limit = int(form.one("limit")) if form.one("limit") in {str(n) for n in LIMITS} else 100
    rows = []
    if not problems:
        rows = await run_in_threadpool(lambda: audit_api.accesses(
            app, index, actor, client_id=client_id, agency=agency, principal=principal,
            from_=since, to=until, limit=limit))
    return render(request, "ig/accesses.html", {
        "rows": rows, "agencies": agencies, "form": form, "limit": limit, "limits": LIMITS,
        "messages": problems.messages, "errors": problems.summary(), "said": said,
        "filtered": any(form.one(k) for k in ("client_id", "agency", "principal")) or since
        or until, "may_replay": may(actor, Action.REPLAY),
        "may_disclosures": may(actor, Action.READ_DISCLOSURES),
        "from_parts": form.day_parts("from"), "to_parts": form.day_parts("to"),
    }, status_code=422 if problems else 200)


@router.get("/clients/{client_id}/disclosures")
async def disclosures(request: Request, client_id: UUID, app: App, index: Index,
                      access: Access, actor: DisclosuresPage) -> Response:
    """Every disclosure of the caller's agency's data about the client to another agency
    (for a subject access request)."""
    found = await run_in_threadpool(audit_api.disclosures, client_id, app, index, access,
                                    actor)
    return render(request, "ig/disclosures.html", {
        "client_id": client_id, "rows": found, "agencies": await _agencies(app, actor),
        "said": said})


# -- the replay, stepping through time -----------------------------------------------------


def _steps(changes: ReplayChangesOut | None, position: int) -> dict[str, Any]:
    """The change the answer at ``position`` comes from, and the ones before and after."""
    if changes is None:
        return {"previous": None, "next": None, "current": None}
    here = [c.position for c in changes.changes if c.position <= position]
    current = here[-1] if here else None
    earlier = [c.position for c in changes.changes
               if current is not None and c.position < current]
    later = [c.position for c in changes.changes if c.position > position]
    return {"previous": earlier[-1] if earlier else None,
            "next": later[0] if later else None, "current": current}


@router.get("/audit/replay")
async def replay(request: Request, app: App, access: Access, actor: ReplayPage) -> Response:
    """What an agency could see of a client for a purpose at a moment (a log position or
    a time), each fact permitted with its basis or withheld with the rule; and stepping
    to the previous or next change of that answer, or one log position either way. With
    htmx, a step replaces only the answer (``#replay``); without, it is a link."""
    form = Submitted({k: request.query_params.getlist(k) for k in request.query_params})
    problems = Problems()
    agencies = await _agencies(app, actor)
    agency, purpose_text, at = form.one("agency"), form.one("purpose"), form.one("at")
    client_text = form.one("client_id")
    asked = any((agency, client_text, purpose_text, at))
    purpose: Purpose | None = None
    client_id: UUID | None = None
    if asked:
        if agency not in agencies:
            problems.add("agency", "Choose the agency whose view to rebuild")
        try:
            client_id = UUID(client_text)
        except ValueError:
            problems.add("client_id", "Enter the client's id, for example "
                                      "3f2c1a0b-5d6e-4f70-8a9b-0c1d2e3f4a5b")
        try:
            purpose = Purpose(purpose_text)
        except ValueError:
            problems.add("purpose", "Choose the purpose of the view")
        if len(at) > 40:
            problems.add("at", "Enter a log position or a time of at most 40 characters")
    result: ReplayOut | None = None
    changes: ReplayChangesOut | None = None
    if asked and not problems and client_id is not None and purpose is not None:
        chosen_purpose, chosen_client = purpose, client_id
        try:
            result = await run_in_threadpool(lambda: audit_api.replay(
                app, access, actor, agency=agency, client_id=chosen_client,
                purpose=chosen_purpose, at=at or None))
        except InvalidCommand as exc:
            problems.add("at", exc.message[:1].upper() + exc.message[1:])
        except ClientNotFound:
            result = None  # nothing to show at this moment; the changes may say more
        if not problems:
            try:
                changes = await run_in_threadpool(lambda: changes_api.replay_changes(
                    app, access, actor, agency=agency, client_id=chosen_client,
                    purpose=chosen_purpose))
            except ClientNotFound:
                changes = None
            if result is None and changes is None:
                raise ClientNotFound()
    position = result.position if result else (
        _position_of(at) if at else (changes.head if changes else None))
    context = {
        "agencies": agencies, "form": form, "result": result, "changes": changes,
        "steps": _steps(changes, position) if position is not None else {},
        "position": position, "head": changes.head if changes else None,
        "messages": problems.messages, "errors": problems.summary(), "said": said,
        "base": {"agency": agency, "client_id": client_text, "purpose": purpose_text},
        "purposes": [(p.value, said(p)) for p in Purpose],
    }
    status = 422 if problems else 200
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "replay":
        # htmx swaps only a 2xx answer: the errors are in the fragment it swaps in.
        return render(request, "ig/replay_answer.html", {**context, "oob": True})
    return render(request, "ig/replay.html", context, status_code=status)


def _position_of(at: str) -> int | None:
    return int(at) if at.isascii() and at.isdigit() and len(at) < 19 else None


# -- emergency-access reviews --------------------------------------------------------------


def _running(review: ReviewOut) -> bool:
    return review.grant_ended_at is None and review.expires_at > datetime.now(UTC)


async def _review(engine: ReadEngine, actor: Actor, review_id: UUID) -> ReviewOut:
    """One review of the caller's, from the API's list (404 for any other)."""
    found = await run_in_threadpool(reviews_api.list_open_or_closed, engine, actor, None, None)
    for review in found:
        if review.review_id == review_id:
            return review
    raise ReviewNotFound()


@router.get("/audit/reviews")
async def reviews(request: Request, engine: ReadEngine, actor: ReviewsPage,
                  _: PageViewsCaughtUp,
                  status: Annotated[str | None, Query(max_length=10)] = None,
                  done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """Reviews of emergency access to the agency's clients: open ones to close, with
    any grant still running, which the registering controller's IG lead may end now.
    After a change, ``min_position`` (the change's) waits until the list includes it."""
    chosen = ReviewStatus(status) if status in {s.value for s in ReviewStatus} else None
    if status is None:
        chosen = ReviewStatus.OPEN
    found = await run_in_threadpool(reviews_api.list_open_or_closed, engine, actor, None,
                                    chosen)
    return render(request, "ig/reviews.html", {
        "reviews": found, "status": chosen.value if chosen else "all", "done": _done(done),
        "running": {r.review_id for r in found if _running(r)}, "said": said,
        "may_close": may(actor, Action.CLOSE_REVIEW),
        "may_end": may(actor, Action.END_EMERGENCY_ACCESS),
    })


@router.get("/audit/reviews/{review_id}/close")
async def close_form(request: Request, review_id: UUID, engine: ReadEngine,
                     actor: ReviewCloseForm) -> Response:
    found = await _review(engine, actor, review_id)
    return render(request, "ig/close_review.html", {
        "review": found, "values": {}, "messages": {}, "errors": [], "said": said,
        "outcomes": [(o.value, said(o)) for o in ReviewOutcome]})


@router.post("/audit/reviews/{review_id}/close")
async def close(request: Request, review_id: UUID, app: App, engine: ReadEngine,
                actor: ReviewCloseForm, form: Form) -> Response:
    """Closes the review with an outcome and a note (not justified ends a running grant)."""
    problems, status = Problems(), 422
    values = {"outcome": form.one("outcome"), "note": form.one("note")}
    try:
        body = ReviewCloseIn.model_validate(values)
    except ValidationError as exc:
        problems.add_validation(exc, lambda loc, _: str(loc[0]) if loc else "note", {
            "outcome": "Choose the outcome of the review",
            "note": "Enter a note saying why, for the record"})
        problems.links["outcome"] = "outcome"
    else:
        try:
            closed = await run_in_threadpool(reviews_api.close, review_id, body, app, actor)
        except Conflict as exc:  # closed meanwhile
            problems.add("outcome", str(exc)[:1].upper() + str(exc)[1:])
            status = 409
        else:
            return RedirectResponse("/ui/audit/reviews?done=review-closed&min_position="
                                    f"{closed.position}", status_code=303)
    found = await _review(engine, actor, review_id)
    return render(request, "ig/close_review.html", {
        "review": found, "values": values, "messages": problems.messages,
        "errors": problems.summary(), "said": said,
        "outcomes": [(o.value, said(o)) for o in ReviewOutcome]}, status_code=status)


@router.get("/audit/reviews/{review_id}/end-access")
async def end_form(request: Request, review_id: UUID, engine: ReadEngine,
                   actor: GrantEndForm) -> Response:
    found = await _review(engine, actor, review_id)
    return render(request, "ig/end_access.html", {
        "review": found, "running": _running(found), "reason": "", "messages": {},
        "errors": [], "said": said})


@router.post("/audit/reviews/{review_id}/end-access")
async def end_access(request: Request, review_id: UUID, app: App, engine: ReadEngine,
                     access: Access, actor: GrantEndForm, form: Form) -> Response:
    """Ends the review's grant now, if it still runs (the review stays open)."""
    found = await _review(engine, actor, review_id)
    problems, status = Problems(), 422
    try:
        body = EmergencyAccessEndIn(reason=form.one("reason"))
    except ValidationError as exc:
        problems.add_validation(exc, lambda loc, _: "reason",
                                {"reason": "Enter why the access ends now, for the record"})
    else:
        try:
            ended = await run_in_threadpool(emergency_api.end, found.client_id,
                                            found.grant_id, body, app, access, actor)
        except Conflict as exc:  # it ended or expired meanwhile
            problems.add("reason", str(exc)[:1].upper() + str(exc)[1:])
            status = 409
        else:
            return RedirectResponse("/ui/audit/reviews?done=access-ended&min_position="
                                    f"{ended.position}", status_code=303)
    return render(request, "ig/end_access.html", {
        "review": found, "running": _running(found), "reason": form.one("reason"),
        "messages": problems.messages, "errors": problems.summary(), "said": said},
        status_code=status)


# -- the signed tree head and verifying the log ---------------------------------------------


async def _head(tree: Tree, actor: Actor) -> dict[str, Any] | None:
    try:
        return await run_in_threadpool(tree_api.tree_head, tree, actor)
    except NotFound:
        return None


def _signed_at(head: Mapping[str, Any] | None) -> datetime | None:
    return datetime.fromtimestamp(head["timestamp"] / 1000, UTC) if head else None


@router.get("/audit/tree")
async def tree_page(request: Request, tree: Tree, actor: TreePage) -> Response:
    """The latest signed tree head over the log, to compare with a copy held elsewhere."""
    head = await _head(tree, actor)
    return render(request, "ig/tree.html", {"head": head, "signed_at": _signed_at(head),
                                            "verification": None})


@router.get("/audit/tree/verification")
async def verification(request: Request, tree: Tree, keys: TreeKeys,
                       actor: TreePage) -> Response:
    """Verifies the log against every signed head now (``accord audit verify``)."""
    result = await run_in_threadpool(tree_api.tree_verification, tree, keys, actor)
    context = {"verification": result}
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "verification":
        return render(request, "ig/verification.html", context)
    head = await _head(tree, actor)
    return render(request, "ig/tree.html", {**context, "head": head,
                                            "signed_at": _signed_at(head)})

