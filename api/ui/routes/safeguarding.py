"""The safeguarding team's pages: the alert inbox (live), one alert and the work on it
(acknowledge, assign, close), and the alert's client and household as its basis shows
them.

Every page calls the API's own route functions (``api.routers.alerts``, ``views``,
``households``) with the dependencies it declared itself, so a page shows what the API
would and each read is on the access record as the API's is: each view of the inbox, of
an alert, of its client and of its household.

**Live updates.** ``GET /ui/alerts/stream`` is a server-sent event stream that says only
*that* the agency's inbox changed (an alert raised, acknowledged, assigned, escalated or
closed), with the log position of the change; the page's script (``static/alerts.js``)
then fetches the inbox table again, as the user would with the refresh link. It follows
the inbox as the API's stream does (the inbox's ``last_change``, polled at the API
stream's interval, with its keep-alive), but sends no alert: the alerts reach the page
only through the inbox read, recorded once, rather than twice (once to a stream the page
would not show). What a page's script does by itself is not activity: the stream and
the refreshes do not keep a session from ending idle (``api.deps.by_the_user``), and the
stream ends, saying why, when its session ends.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from time import monotonic
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Form, Header, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import AfterValidator, ValidationError, ValidationInfo
from starlette.concurrency import run_in_threadpool

from api.deps import (
    Access,
    AlertAcknowledgeForm,
    AlertAssignForm,
    AlertCloseForm,
    AlertsPage,
    App,
    Inbox,
    PageInboxCaughtUp,
    PageViewsCaughtUp,
    Sessions,
    Views,
)
from api.routers import alerts as alerts_api
from api.routers import households as households_api
from api.routers import views as views_api
from api.ui.restricted import restricted_elsewhere
from api.ui.sessions import COOKIE, Ended, SessionStore
from api.ui.templating import add_section, render
from domain.alerts import AlertOutcome, AlertStatus, Severity
from domain.application import AccordApplication
from domain.errors import (
    ClientNotFound,
    Conflict,
    HouseholdNotFound,
    RestrictionReasonRequired,
    Unauthenticated,
)
from domain.inputs import LogPosition, checked_text
from domain.permissions import Action, permits
from domain.results import Actor
from domain.rules import RuleName
from domain.vocabulary import Purpose
from projections.alerts import AlertInbox, AlertSort

log = logging.getLogger("accord.ui")
router = APIRouter(prefix="/ui", include_in_schema=False)

add_section("Safeguarding alerts", "/ui/alerts", Action.READ_ALERTS)

#: Alerts on one page of the inbox, and the most pages it offers.
PAGE_SIZE = 50
MAX_PAGES = 10_000
#: The inbox a team opens: the alerts still to work.
OPEN = (AlertStatus.ESCALATED, AlertStatus.RAISED, AlertStatus.ACKNOWLEDGED)
#: How each status is shown: words and the NHS.UK tag colour (escalated stands out).
STATUS_TAGS: Mapping[str, tuple[str, str]] = {
    AlertStatus.ESCALATED: ("Escalated", "red"),
    AlertStatus.RAISED: ("Raised", "blue"),
    AlertStatus.ACKNOWLEDGED: ("Acknowledged", "yellow"),
    AlertStatus.CLOSED: ("Closed", "grey"),
}
SEVERITY_TAGS: Mapping[str, tuple[str, str]] = {
    Severity.HIGH: ("High", "orange"),
    Severity.MEDIUM: ("Medium", "white"),
}
SORTS: Mapping[AlertSort, str] = {
    AlertSort.URGENCY: "Most urgent first (escalated, raised, acknowledged, closed)",
    AlertSort.RAISED: "Oldest first",
    AlertSort.NEWEST: "Newest first",
    AlertSort.SEVERITY: "Most severe first",
    AlertSort.DUE: "Soonest due first",
    AlertSort.TRIGGERED: "Oldest triggering fact first",
    AlertSort.RECENTLY_TRIGGERED: "Most recent triggering fact first",
}
#: Ages an inbox is filtered by: words, then (older than, newer than).
AGES: Mapping[str, tuple[str, timedelta | None, timedelta | None]] = {
    "day": ("Raised in the last 24 hours", None, timedelta(days=1)),
    "week": ("Raised in the last 7 days", None, timedelta(days=7)),
    "over-4-hours": ("Raised more than 4 hours ago", timedelta(hours=4), None),
    "over-day": ("Raised more than a day ago", timedelta(days=1), None),
    "over-week": ("Raised more than a week ago", timedelta(days=7), None),
}
OUTCOMES: Mapping[AlertOutcome, tuple[str, str]] = {
    AlertOutcome.REFERRAL_MADE: (
        "Referral made", "For example, a section 47 strategy discussion or a section 42 "
                         "enquiry."),
    AlertOutcome.ALREADY_KNOWN: ("Already known", "The team already holds this."),
    AlertOutcome.NO_FURTHER_ACTION: ("No further action", ""),
    AlertOutcome.NOT_OUR_AREA: ("Not our area", "The family lives outside the area."),
}
#: What each page that follows a change says happened.
DONE = {"acknowledged": "You acknowledged this alert.",
        "assigned": "The alert is assigned.",
        "closed": "You closed this alert."}
#: The stream: how often it asks whether its session still stands, and how soon a
#: browser reconnects after it ends.
STANDING_SECONDS = 15.0
RETRY_MILLISECONDS = 3000
MAX_NOTE = 1000


def _as_typed(value: str, info: ValidationInfo) -> str:
    """What a form's field may carry: nothing (the page then asks for it, beside the
    field), or text as the API takes it (never a NUL or another control character)."""
    return value if not value.strip() else checked_text(value, info)


#: A form field as typed (see ``_as_typed``).
Typed = Annotated[str, AfterValidator(_as_typed)]


def _choice(field: str, value: str | None, allowed: Mapping[str, Any]) -> str | None:
    """A select's value: one it offers, or None for "any"; anything else is a 422."""
    if value in (None, "", "any"):
        return None
    if value not in allowed:
        raise HTTPException(422, f"{field}: not one of the choices offered")
    return value


# -- the inbox ---------------------------------------------------------------------------


@router.get("/alerts")
async def alert_inbox(
    request: Request,
    app: App,
    inbox: Inbox,
    access: Access,
    actor: AlertsPage,
    status: Annotated[list[AlertStatus], Query()] = [],  # noqa: B006
    severity: Annotated[list[Severity], Query()] = [],  # noqa: B006
    rule: Annotated[str | None, Query(max_length=40)] = None,
    assigned: Annotated[str | None, Query(max_length=40)] = None,
    age: Annotated[str | None, Query(max_length=20)] = None,
    sort: AlertSort = AlertSort.URGENCY,
    page: Annotated[int, Query(ge=1, le=MAX_PAGES)] = 1,
    filtered: bool = False,
) -> Response:
    """The agency's alerts, most urgent first (escalated ones highlighted), filtered and
    sorted as asked; the open alerts until the filters say otherwise. Asked for by the
    page's script (``HX-Request``), just the table, to put in place of the old one."""
    team = await run_in_threadpool(_team, app, actor)
    chosen_rule = _choice("rule", rule, {r.value: r for r in RuleName})
    chosen_age = _choice("age", age, AGES)
    members = {"me": "Me", "nobody": "Nobody", **{m.principal: m.name for m in team}}
    chosen_assignee = _choice("assigned", assigned, members)
    statuses = status if filtered else list(OPEN)
    older, newer = AGES[chosen_age][1:] if chosen_age else (None, None)
    # The position first: a change after it, even during the read, is announced later.
    since = await run_in_threadpool(inbox.last_change, actor.agency)
    headers = Response()
    alerts = await run_in_threadpool(functools.partial(
        alerts_api.inbox, app, inbox, access, actor, None, headers, status=statuses,
        severity=severity, rule=[RuleName(chosen_rule)] if chosen_rule else [],
        assigned_to=_assignee(chosen_assignee),
        raised_after=None, raised_before=None, older_than=older, newer_than=newer, sort=sort,
        limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE))
    total = int(headers.headers.get("x-total-count", "0"))
    query = {"status": [s.value for s in statuses], "severity": [s.value for s in severity],
             "rule": chosen_rule or "", "assigned": chosen_assignee or "",
             "age": chosen_age or "", "sort": sort.value, "filtered": "true"}
    pages = max(1, -(-total // PAGE_SIZE))

    def at(number: int) -> str:
        return "/ui/alerts?" + urlencode({**query, "page": number}, doseq=True)

    context = {
        "alerts": alerts, "total": total, "page": page, "page_size": PAGE_SIZE,
        "pages": pages, "query": query, "since": since,
        "links": {"refresh": at(page), "previous": at(page - 1) if page > 1 else None,
                  "next": at(page + 1) if page < pages else None,
                  "stream": f"/ui/alerts/stream?after={since}"},
        "status_tags": STATUS_TAGS, "severity_tags": SEVERITY_TAGS,
        "statuses": list(STATUS_TAGS), "severities": list(SEVERITY_TAGS),
        "rules_items": _items({r.value: r.value.replace("_", " ").capitalize()
                               for r in RuleName}, chosen_rule),
        "assigned_items": _items(members, chosen_assignee),
        "age_items": _items({key: words for key, (words, _, _) in AGES.items()}, chosen_age),
        "sort_items": _items({key.value: words for key, words in SORTS.items()}, sort.value),
    }
    template = "safeguarding/_inbox.html" if request.headers.get("hx-request") \
        else "safeguarding/inbox.html"
    return render(request, template, context)


def _assignee(chosen: str | None) -> alerts_api.Assignee | None:
    if chosen == "me":
        return "me"
    if chosen == "nobody":
        return "nobody"
    return None if chosen is None else UUID(chosen)


def _items(choices: Mapping[str, str], chosen: str | None) -> list[dict[str, Any]]:
    """A select's options, the chosen one selected."""
    return [{"value": value, "text": text, "selected": value == chosen}
            for value, text in choices.items()]


def _team(app: AccordApplication, actor: Actor) -> list[alerts_api.PersonOut]:
    """The team an alert may be assigned to, where the caller may assign (else none)."""
    if not permits(Action.ASSIGN_ALERT, actor.role, actor.agency_kind):
        return []
    return alerts_api.team(app, actor)


@router.get("/alerts/stream")
async def alert_stream(
    request: Request,
    app: App,
    inbox: Inbox,
    store: Sessions,
    actor: AlertsPage,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    max_seconds: Annotated[float | None, Query(ge=0, le=86400)] = None,
    last_event_id: Annotated[LogPosition | None, Header()] = None,
) -> Response:
    """Server-sent events: ``inbox`` (its data and id the log position of the latest
    change) each time the agency's inbox changes after ``after`` (or after
    ``Last-Event-ID`` when the browser reconnects; else from now); ``ended`` (its data
    why: idle, revoked, signed out) when the session ends. Only for an event-stream
    client: a page asked for this address gets a 406."""
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise HTTPException(406, "this address is the alert inbox's live updates, for the "
                                 "inbox page's script; open the inbox at /ui/alerts")
    start = last_event_id if last_event_id is not None else after
    if start is None:
        start = await run_in_threadpool(inbox.last_change, actor.agency)
    deadline = None if max_seconds is None else monotonic() + max_seconds
    changes = _inbox_changes(request, app, inbox, store, request.cookies.get(COOKIE, ""),
                             actor, start, deadline)
    return StreamingResponse(changes, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _inbox_changes(request: Request, app: AccordApplication, inbox: AlertInbox,
                         store: SessionStore, cookie: str, actor: Actor, sent: int,
                         deadline: float | None) -> AsyncIterator[str]:
    """The stream's events: one ``inbox`` event whenever the latest change to the
    agency's alerts is past the last one announced (several changes between two polls
    are one event), a keep-alive comment when quiet, and ``ended`` once the session has
    ended (checked every ``STANDING_SECONDS``, without counting as activity)."""
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    checked = quiet = monotonic()
    try:
        while True:
            latest = await run_in_threadpool(inbox.last_change, actor.agency)
            if latest > sent:
                sent = latest
                yield f"id: {latest}\nevent: inbox\ndata: {latest}\n\n"
                quiet = monotonic()
            now = monotonic()
            if deadline is not None and now >= deadline:
                return
            if await request.is_disconnected():
                return
            if now - checked >= STANDING_SECONDS:
                ended = await run_in_threadpool(_ended, app, store, cookie)
                if ended is not None:
                    yield f"event: ended\ndata: {ended.value}\n\n"
                    return
                checked = now
            if now - quiet >= alerts_api.KEEP_ALIVE_SECONDS:
                yield ": keep-alive\n\n"
                quiet = now
            await asyncio.sleep(alerts_api.POLL_SECONDS)
    except Exception:  # headers are sent: end the stream rather than break the response
        log.exception("the inbox stream for %s failed", actor.reference)
        yield "event: error\ndata: the live updates failed; reload the page\n\n"


def _ended(app: AccordApplication, store: SessionStore, cookie: str) -> Ended | None:
    """Why the stream's session has ended (idle, signed out, its principal revoked), or
    None while it stands. Asking does not count as activity."""
    resumed = store.resume(cookie, touch=False)
    if isinstance(resumed, Ended):
        return resumed
    try:
        app.resume(resumed.principal_id)
    except Unauthenticated:
        store.end(cookie)
        return Ended.REVOKED
    return None


# -- one alert, and the work on it --------------------------------------------------------


def _alert_page(request: Request, alert_id: UUID, app: AccordApplication, inbox: AlertInbox,
                access: Any, actor: Actor, *, done: str | None = None,
                errors: Mapping[str, str] | None = None,
                values: Mapping[str, str] | None = None, status_code: int = 200) -> Response:
    """The alert as the API shows it, with the forms its status allows."""
    alert = alerts_api.alert(alert_id, app, inbox, access, actor, None)
    team = _team(app, actor)
    errors, values = dict(errors or {}), dict(values or {})
    assignee = values.get("principal_id") or (
        alert.assigned_to.principal if alert.assigned_to else None)
    return render(request, "safeguarding/alert.html", {
        "alert": alert, "team": team, "done": DONE.get(done or ""),
        "errors": [{"text": message, "href": f"#{field}"} for field, message in errors.items()],
        "field_errors": errors, "values": values,
        "team_items": _items({m.principal: m.name for m in team}, assignee),
        "outcome_items": [
            {"value": outcome.value, "text": text, "hint": {"text": hint} if hint else None,
             "checked": values.get("outcome") == outcome.value}
            for outcome, (text, hint) in OUTCOMES.items()],
        "status_tags": STATUS_TAGS, "severity_tags": SEVERITY_TAGS,
        "outcomes": OUTCOMES, "purpose": _purpose(alert),
        "may": {
            "acknowledge": alert.status in (AlertStatus.RAISED, AlertStatus.ESCALATED)
            and permits(Action.ACKNOWLEDGE_ALERT, actor.role, actor.agency_kind),
            "assign": alert.status is not AlertStatus.CLOSED and bool(team),
            "close": alert.status is not AlertStatus.CLOSED
            and permits(Action.CLOSE_ALERT, actor.role, actor.agency_kind),
        },
    }, status_code=status_code)


@router.get("/alerts/{alert_id}")
async def alert_page(
    request: Request,
    alert_id: UUID,
    app: App,
    inbox: Inbox,
    access: Access,
    actor: AlertsPage,
    _: PageInboxCaughtUp,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """One alert: what it is about and why the agency is told, who has worked it, and
    the forms to acknowledge, assign and close it. After a change (``done``, with the
    change's ``min_position``) it shows the alert as changed, and says so."""
    return await run_in_threadpool(functools.partial(
        _alert_page, request, alert_id, app, inbox, access, actor, done=done))


def _changed(alert_id: UUID, done: str, position: int) -> Response:
    """Post/Redirect/Get: to the alert, once the inbox has the change."""
    return RedirectResponse(f"/ui/alerts/{alert_id}?done={done}&min_position={position}",
                            status_code=303)


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(alert_id: UUID, app: App, actor: AlertAcknowledgeForm) -> Response:
    """Acknowledges the alert (the API's command; a second acknowledgement is a 409)."""
    changed = alerts_api.acknowledge(alert_id, app, actor)
    return _changed(alert_id, "acknowledged", changed.position)


@router.post("/alerts/{alert_id}/assign")
def assign(
    request: Request,
    alert_id: UUID,
    app: App,
    inbox: Inbox,
    access: Access,
    actor: AlertAssignForm,
    principal_id: Annotated[Typed | None, Form(max_length=100)] = None,
) -> Response:
    """Assigns the alert to the member of the team chosen; none chosen (or not a member
    offered) is shown next to the field, and nothing changes."""
    values = {"principal_id": principal_id or ""}
    try:
        body = alerts_api.AlertAssignIn.model_validate({"principal_id": principal_id})
    except ValidationError:
        return _alert_page(request, alert_id, app, inbox, access, actor, values=values,
                           errors={"principal_id": "Select who will work this alert"},
                           status_code=422)
    try:
        changed = alerts_api.assign(alert_id, body, app, access, actor)
    except Conflict as exc:
        return _alert_page(request, alert_id, app, inbox, access, actor, values=values,
                           errors={"principal_id": _sentence(str(exc))}, status_code=409)
    return _changed(alert_id, "assigned", changed.position)


@router.post("/alerts/{alert_id}/close")
def close(
    request: Request,
    alert_id: UUID,
    app: App,
    inbox: Inbox,
    access: Access,
    actor: AlertCloseForm,
    outcome: Annotated[Typed | None, Form(max_length=40)] = None,
    note: Annotated[Typed | None, Form(max_length=MAX_NOTE * 4)] = None,
) -> Response:
    """Closes the alert with an outcome and a note; a missing or bad one is shown next
    to its field and in the error summary, and nothing changes."""
    values = {"outcome": outcome or "", "note": note or ""}
    try:
        body = alerts_api.AlertCloseIn.model_validate(
            {"outcome": outcome, "note": (note or "").strip()})
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "note"
            errors.setdefault(field, _close_error(field, error))
        return _alert_page(request, alert_id, app, inbox, access, actor, values=values,
                           errors=errors, status_code=422)
    changed = alerts_api.close(alert_id, body, app, actor)
    return _changed(alert_id, "closed", changed.position)


def _close_error(field: str, error: Mapping[str, Any]) -> str:
    """The NHS.UK way of saying what is wrong with a field of the closing form."""
    if field == "outcome":
        return "Select the outcome"
    if error.get("type") == "string_too_short":
        return "Enter a note saying what was done"
    if error.get("type") == "string_too_long":
        return f"The note must be {MAX_NOTE} characters or fewer"
    return "The note " + _sentence(str(error.get("msg", "is not valid"))).lower()


def _sentence(text: str) -> str:
    text = text.removeprefix("Value error, ")
    return text[:1].upper() + text[1:]


# -- the alert's client and household, under the alert's basis ------------------------------


def _purpose(alert: alerts_api.AlertOut) -> Purpose | None:
    """The purpose the alert's basis names (the agreements' legal duty is for it)."""
    try:
        return Purpose(alert.basis.get("purpose", ""))
    except ValueError:
        return None


@router.get("/alerts/{alert_id}/client")
async def alert_client(
    request: Request,
    alert_id: UUID,
    app: App,
    inbox: Inbox,
    views: Views,
    access: Access,
    actor: AlertsPage,
    _: PageViewsCaughtUp,
) -> Response:
    """The alert's client as the agency sees them for the alert's purpose (the view the
    API gives, under the same agreements): each fact with its basis. The alert is read
    first (only its recipient's team may), then the view; both reads are recorded."""
    alert = await run_in_threadpool(alerts_api.alert, alert_id, app, inbox, access, actor,
                                    None)
    purpose = _purpose(alert)
    if purpose is None:
        raise ClientNotFound()
    try:
        view = await run_in_threadpool(views_api.view, alert.client_id, app, views, access,
                                       actor, None, purpose)
    except RestrictionReasonRequired:
        return restricted_elsewhere(request, alert.client_id, purpose=purpose.value)
    return render(request, "safeguarding/client.html", {
        "alert": alert, "view": view, "purpose": purpose,
        "facts": sorted(view.facts, key=lambda f: (f.occurred_at, f.position), reverse=True),
    })


@router.get("/alerts/{alert_id}/household")
async def alert_household(
    request: Request,
    alert_id: UUID,
    app: App,
    inbox: Inbox,
    views: Views,
    access: Access,
    actor: AlertsPage,
    _: PageViewsCaughtUp,
) -> Response:
    """The household the alert is about, for the alert's purpose: the members whose
    identity the agency may see for it (the others are neither named nor counted)."""
    alert = await run_in_threadpool(alerts_api.alert, alert_id, app, inbox, access, actor,
                                    None)
    purpose = _purpose(alert)
    if alert.household_id is None or purpose is None:
        raise HouseholdNotFound()
    household = await run_in_threadpool(households_api.household, alert.household_id, app,
                                        views, access, actor, None, purpose)
    return render(request, "safeguarding/household.html", {
        "alert": alert, "household": household, "purpose": purpose})
