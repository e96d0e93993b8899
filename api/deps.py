"""Every FastAPI dependency of the API, and its ``Annotated`` alias, in one module.

A route says what it needs by the types of its parameters, all from here:

* ``App``: the application (the commands, and the log the read side reads);
* one actor alias per action a route offers, named for the action (``Viewer``,
  ``ClientRegistrar``, ``AgreementApprover`` ...): it authenticates the bearer token
  and asks the permission table (``domain.permissions``) whether the caller's role, in
  its agency's kind, may take that action; 401 or 403 before anything is looked up.
  The table is the only statement of who may do what: the application's commands,
  the read side (``projections.queries``) and these dependencies all read it;
* the read models a route queries (``Views``, ``Index``, ``Inbox``, ``Tree``,
  ``ReadEngine``), ``Access`` (the access log every read of client data is recorded
  in), and ``ViewsCaughtUp``/``InboxCaughtUp`` (read-your-writes).

Every route but the API's own documentation declares exactly one action, through its
actor alias; ``route_actions`` lists them, and the access-matrix test
(tests/e2e/test_access_matrix.py) fails for a route that declares none.

Dependencies that only look something up are ``async``: FastAPI runs a plain ``def``
dependency in its thread pool, and that hop cost more than the lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api import catching_up
from api.access import AccessLog
from api.catching_up import MARGIN, CatchUp, Tracked
from api.ui.sessions import COOKIE, Ended, Session, SessionStore
from domain.agencies import Role
from domain.application import AccordApplication, Actor
from domain.errors import Forbidden, Unauthenticated
from domain.inputs import LogPosition, Text
from domain.permissions import Action, require
from infra.signing import SigningKeyError, load_signer
from projections.alerts import AlertInbox
from projections.audit import AccessIndex
from projections.log_tree import LogTree
from projections.reports.projection import OutcomeReports
from projections.search import BirthIndex
from projections.views import AgencyViews

# -- the application and the caller ------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="a token from `accord principals add`")


async def application(request: Request) -> AccordApplication:
    app: AccordApplication = request.app.state.accord.app
    return app


App = Annotated[AccordApplication, Depends(application)]


def current_actor(
    app: App,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    """The principal the bearer token names (401 for no token, or one that is malformed,
    unknown or revoked)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("a bearer token is required")
    return app.authenticate(credentials.credentials)


#: Any authenticated caller, whatever its role (no route offers an action with it alone).
AnyActor = Annotated[Actor, Depends(current_actor)]


# -- who may take the action a route offers ----------------------------------------------


@dataclass(frozen=True)
class Guard:
    """The action a route offers, as its actor dependency declares it.

    ``refused_on_record``: roles the route lets through although the table may refuse
    them (for their role, or their agency's kind), because such a refusal is about a
    client the request names and must be on that client's access record: the read or
    command the route calls checks the table again inside its recorded block."""

    action: Action
    refused_on_record: frozenset[Role] = frozenset()


_GUARDS: dict[Callable[..., Any], Guard] = {}


def allowed(action: Action, *, refused_on_record: Collection[Role] = ()
            ) -> Callable[[Actor], Awaitable[Actor]]:
    """A dependency that admits a caller the permission table permits to take ``action``
    (``domain.permissions.require``: 403 with the table's words for anyone else)."""
    guard = Guard(action, frozenset(refused_on_record))

    async def check(actor: AnyActor) -> Actor:
        if actor.role not in guard.refused_on_record:
            require(guard.action, actor)
        return actor

    _GUARDS[check] = guard
    return check


def route_actions(api: FastAPI) -> dict[tuple[str, str], list[Guard]]:
    """Each (method, path) the API serves, with the actions its dependencies declare
    (an empty list for a route that declares none: only the documentation should)."""
    found: dict[tuple[str, str], list[Guard]] = {}
    # FastAPI keeps an included router's routes inside it (with its prefix and
    # dependencies applied when they are iterated), not in the app's own list.
    for route in iter_route_contexts(api.routes):
        dependant, path = getattr(route, "dependant", None), route.path
        if not isinstance(route.original_route, APIRoute) or dependant is None or not path:
            continue
        guards: list[Guard] = []
        pending = list(dependant.dependencies)
        while pending:
            dependency = pending.pop()
            if dependency.call in _GUARDS:
                guards.append(_GUARDS[dependency.call])
            pending.extend(dependency.dependencies)
        for method in (route.methods or set()) - {"HEAD"}:
            found[(method, path)] = guards
    return found


# The partnership and its principals.
AgencyRegistrar = Annotated[Actor, Depends(allowed(Action.REGISTER_AGENCY))]
DirectoryReader = Annotated[Actor, Depends(allowed(Action.LIST_AGENCIES))]
PrincipalAdder = Annotated[Actor, Depends(allowed(Action.ADD_PRINCIPAL))]
PrincipalOverseer = Annotated[Actor, Depends(allowed(Action.LIST_PRINCIPALS))]
PrincipalRevoker = Annotated[Actor, Depends(allowed(Action.REVOKE_PRINCIPAL))]
CatalogueReader = Annotated[Actor, Depends(allowed(Action.READ_CATALOGUE))]
# Clients and their facts.
ClientRegistrar = Annotated[Actor, Depends(allowed(Action.REGISTER_CLIENT))]
FactRecorder = Annotated[Actor, Depends(allowed(Action.RECORD_FACT))]
FactAmender = Annotated[Actor, Depends(allowed(Action.AMEND_FACT))]
FactRetractor = Annotated[Actor, Depends(allowed(Action.RETRACT_FACT))]
RecordReader = Annotated[Actor, Depends(allowed(Action.READ_RECORD))]
# The client's rights over the record: erasure, its legal hold, restriction (Art. 18).
ClientEraser = Annotated[Actor, Depends(allowed(Action.ERASE_CLIENT))]
LegalHoldPlacer = Annotated[Actor, Depends(allowed(Action.PLACE_LEGAL_HOLD))]
LegalHoldLifter = Annotated[Actor, Depends(allowed(Action.LIFT_LEGAL_HOLD))]
ProcessingRestrictor = Annotated[Actor, Depends(allowed(Action.RESTRICT_PROCESSING))]
RestrictionLifter = Annotated[Actor, Depends(allowed(Action.LIFT_RESTRICTION))]
ClientFlagger = Annotated[Actor, Depends(allowed(Action.FLAG_CLIENT))]
FlagReader = Annotated[Actor, Depends(allowed(Action.READ_FLAGS))]
# Consent.
ConsentGiver = Annotated[Actor, Depends(allowed(Action.GIVE_CONSENT))]
ConsentWithdrawer = Annotated[Actor, Depends(allowed(Action.WITHDRAW_CONSENT))]
ConsentReader = Annotated[Actor, Depends(allowed(Action.READ_CONSENTS))]
# Partners' reads. A commissioner asking for one client's view is refused by the read
# itself, so that the refusal is on the client's access record.
Viewer = Annotated[Actor, Depends(allowed(Action.READ_VIEW,
                                          refused_on_record={Role.COMMISSIONER}))]
Matcher = Annotated[Actor, Depends(allowed(Action.MATCH))]
ClientLister = Annotated[Actor, Depends(allowed(Action.LIST_CLIENTS))]
# Data-sharing agreements.
AgreementProposer = Annotated[Actor, Depends(allowed(Action.PROPOSE_AGREEMENT))]
AgreementApprover = Annotated[Actor, Depends(allowed(Action.APPROVE_AGREEMENT))]
AgreementAmender = Annotated[Actor, Depends(allowed(Action.AMEND_AGREEMENT))]
AgreementRevoker = Annotated[Actor, Depends(allowed(Action.REVOKE_AGREEMENT))]
AgreementLister = Annotated[Actor, Depends(allowed(Action.LIST_AGREEMENTS))]
AgreementReader = Annotated[Actor, Depends(allowed(Action.READ_AGREEMENT))]
# Emergency access and its review. Breaking glass is refused to an agency of a kind that
# may not (a commissioner) by the command, which records the attempt on the client.
GlassBreaker = Annotated[Actor, Depends(allowed(
    Action.GRANT_EMERGENCY_ACCESS, refused_on_record={Role.PRACTITIONER, Role.SAFEGUARDING}))]
GrantEnder = Annotated[Actor, Depends(allowed(Action.END_EMERGENCY_ACCESS))]
ReviewReader = Annotated[Actor, Depends(allowed(Action.READ_REVIEWS))]
ReviewCloser = Annotated[Actor, Depends(allowed(Action.CLOSE_REVIEW))]
# Households.
HouseholdLinker = Annotated[Actor, Depends(allowed(Action.LINK_HOUSEHOLD))]
HouseholdMemberAdder = Annotated[Actor, Depends(allowed(Action.ADD_HOUSEHOLD_MEMBER))]
HouseholdReader = Annotated[Actor, Depends(allowed(Action.READ_HOUSEHOLD))]
# Safeguarding alerts.
AlertReader = Annotated[Actor, Depends(allowed(Action.READ_ALERTS))]
AlertAcknowledger = Annotated[Actor, Depends(allowed(Action.ACKNOWLEDGE_ALERT))]
AlertCloser = Annotated[Actor, Depends(allowed(Action.CLOSE_ALERT))]
AlertAssigner = Annotated[Actor, Depends(allowed(Action.ASSIGN_ALERT))]
# Accountability and tamper evidence.
AccessAuditor = Annotated[Actor, Depends(allowed(Action.READ_AUDIT))]
DisclosureReader = Annotated[Actor, Depends(allowed(Action.READ_DISCLOSURES))]
SubjectAccessAnswerer = Annotated[Actor, Depends(allowed(Action.ANSWER_SUBJECT_ACCESS))]
Replayer = Annotated[Actor, Depends(allowed(Action.REPLAY))]
TreeHeadReader = Annotated[Actor, Depends(allowed(Action.READ_TREE_HEAD))]
ProofReader = Annotated[Actor, Depends(allowed(Action.READ_PROOFS))]
# Reports for commissioners.
MeasureReader = Annotated[Actor, Depends(allowed(Action.READ_MEASURES))]
ReportReader = Annotated[Actor, Depends(allowed(Action.READ_REPORTS))]


#: The legal claim a read of a restricted client states (UK GDPR Art. 18: its record is
#: then read only for the establishment, exercise or defence of legal claims); recorded,
#: sealed, with the read. Ignored for a client that is not restricted.
RestrictionReason = Annotated[Text | None, Query(
    min_length=10, max_length=500,
    description="for a client whose processing is restricted: the legal claim this read "
                "is for (required then; recorded with the read)")]


# -- the web application's signed-in principal --------------------------------------------


class SignInRequired(Exception):
    """No session to act in (none, ended idle, or its principal revoked): the web
    application answers by sending the browser to the sign-in page, saying why, and back
    to ``next`` afterwards (``api.ui``), never with an error page."""

    def __init__(self, ended: Ended, next_path: str) -> None:
        super().__init__(ended.message)
        self.ended = ended
        self.next_path = next_path


class CsrfRefused(Forbidden):
    """A state-changing request without its session's CSRF token (403, changing nothing)."""


async def session_store(request: Request) -> SessionStore:
    store: SessionStore | None = getattr(request.app.state, "ui_sessions", None)
    if store is None:
        store = request.app.state.ui_sessions = SessionStore(request.app.state.accord.engine)
    return store


Sessions = Annotated[SessionStore, Depends(session_store)]

#: Methods that change nothing, so need no CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def signed_in(request: Request, app: App, store: Sessions) -> Actor:
    """The principal a web page acts for: the session its cookie names, resumed (idle
    sessions end), and the principal checked again (a revoked token ends its sessions).
    A request that changes anything must carry the session's CSRF token, as the form
    field ``csrf_token`` or the ``X-CSRF-Token`` header (htmx sends it)."""
    cookie = request.cookies.get(COOKIE)
    next_path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    touch = by_the_user(request)

    def resume() -> tuple[Session, Actor] | Ended:
        # The session and its principal in one trip to the thread pool (each trip costs
        # more than either lookup).
        resumed = store.resume(cookie, touch=touch)
        if isinstance(resumed, Ended):
            return resumed
        try:
            return resumed, app.resume(resumed.principal_id)
        except Unauthenticated:
            # Each of the principal's other sessions ends the same way at its next
            # request, so each browser is told why.
            store.end(cookie or "")
            return Ended.REVOKED

    found = await run_in_threadpool(resume)
    if isinstance(found, Ended):
        raise SignInRequired(found, next_path)
    resumed, actor = found
    request.state.session, request.state.actor = resumed, actor
    if request.method not in SAFE_METHODS:
        offered = request.headers.get("x-csrf-token")
        if offered is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")):
            field = (await request.form()).get("csrf_token")
            offered = field if isinstance(field, str) else None
        if not resumed.csrf_matches(offered):
            raise CsrfRefused("the form was out of date or not from accord; "
                              "go back, reload the page and try again")
    return actor


#: Sent by a page's own script when it fetches by itself (a live inbox's refresh).
BACKGROUND_HEADER = "X-Accord-Background"


def by_the_user(request: Request) -> bool:
    """Whether the user asked for this, rather than a page on its own (a live update, an
    event stream, which browsers reconnect by themselves): only what the user asks for
    keeps a session from ending idle, so a page left open still signs out."""
    return (BACKGROUND_HEADER.lower() not in request.headers
            and "text/event-stream" not in request.headers.get("accept", ""))


def current_session(request: Request) -> Session:
    """The session ``signed_in`` resumed for this request (list it after the actor)."""
    session: Session = request.state.session
    return session


#: Any signed-in principal, whatever its role: the pages every role has (home, sign-out).
SignedIn = Annotated[Actor, Depends(signed_in)]


def page(action: Action, *, refused_on_record: Collection[Role] = ()
         ) -> Callable[[Actor], Awaitable[Actor]]:
    """A page's guard: ``allowed`` for a signed-in session instead of a bearer token. The
    permission table decides, with the same words, and the access matrix reads the
    action from here as it does for the API's routes."""
    guard = Guard(action, frozenset(refused_on_record))

    async def check(actor: SignedIn) -> Actor:
        if actor.role not in guard.refused_on_record:
            require(guard.action, actor)
        return actor

    _GUARDS[check] = guard
    return check


# The practitioners' pages (api/ui/routes/practitioner*.py), each guarded as the API route
# it calls.
FindPage = Annotated[Actor, Depends(page(Action.MATCH))]
ClientListPage = Annotated[Actor, Depends(page(Action.LIST_CLIENTS))]
ClientPage = Annotated[Actor, Depends(page(Action.READ_VIEW,
                                           refused_on_record={Role.COMMISSIONER}))]
RecordPage = Annotated[Actor, Depends(page(Action.READ_RECORD))]
RegisterForm = Annotated[Actor, Depends(page(Action.REGISTER_CLIENT))]
FactForm = Annotated[Actor, Depends(page(Action.RECORD_FACT))]
AmendForm = Annotated[Actor, Depends(page(Action.AMEND_FACT))]
RetractForm = Annotated[Actor, Depends(page(Action.RETRACT_FACT))]
ConsentsPage = Annotated[Actor, Depends(page(Action.READ_CONSENTS))]
ConsentForm = Annotated[Actor, Depends(page(Action.GIVE_CONSENT))]
WithdrawConsentForm = Annotated[Actor, Depends(page(Action.WITHDRAW_CONSENT))]
HouseholdForm = Annotated[Actor, Depends(page(Action.LINK_HOUSEHOLD))]
HouseholdPage = Annotated[Actor, Depends(page(Action.READ_HOUSEHOLD))]
MemberForm = Annotated[Actor, Depends(page(Action.ADD_HOUSEHOLD_MEMBER))]
EmergencyForm = Annotated[Actor, Depends(page(
    Action.GRANT_EMERGENCY_ACCESS, refused_on_record={Role.PRACTITIONER, Role.SAFEGUARDING}))]
# The IG leads' pages (api/ui/routes/ig.py), each guarded as the API route it calls.
AgreementsPage = Annotated[Actor, Depends(page(Action.LIST_AGREEMENTS))]
AgreementPage = Annotated[Actor, Depends(page(Action.READ_AGREEMENT))]
AgreementProposeForm = Annotated[Actor, Depends(page(Action.PROPOSE_AGREEMENT))]
AgreementApproveForm = Annotated[Actor, Depends(page(Action.APPROVE_AGREEMENT))]
AgreementAmendForm = Annotated[Actor, Depends(page(Action.AMEND_AGREEMENT))]
AgreementRevokeForm = Annotated[Actor, Depends(page(Action.REVOKE_AGREEMENT))]
AccessAuditPage = Annotated[Actor, Depends(page(Action.READ_AUDIT))]
DisclosuresPage = Annotated[Actor, Depends(page(Action.READ_DISCLOSURES))]
ReplayPage = Annotated[Actor, Depends(page(Action.REPLAY))]
ReviewsPage = Annotated[Actor, Depends(page(Action.READ_REVIEWS))]
ReviewCloseForm = Annotated[Actor, Depends(page(Action.CLOSE_REVIEW))]
GrantEndForm = Annotated[Actor, Depends(page(Action.END_EMERGENCY_ACCESS))]
TreePage = Annotated[Actor, Depends(page(Action.READ_TREE_HEAD))]
# The administrators' pages (api/ui/routes/admin.py), likewise.
AgenciesPage = Annotated[Actor, Depends(page(Action.LIST_AGENCIES))]
AgencyForm = Annotated[Actor, Depends(page(Action.REGISTER_AGENCY))]
PrincipalsPage = Annotated[Actor, Depends(page(Action.LIST_PRINCIPALS))]
PrincipalForm = Annotated[Actor, Depends(page(Action.ADD_PRINCIPAL))]
PrincipalRevokeForm = Annotated[Actor, Depends(page(Action.REVOKE_PRINCIPAL))]
# The safeguarding team's pages (api/ui/routes/safeguarding.py): the inbox, its live
# stream, one alert, and the alert's client and household (each read through the alert,
# which only its recipient's safeguarding staff may read), and the alert's forms.
AlertsPage = Annotated[Actor, Depends(page(Action.READ_ALERTS))]
AlertAcknowledgeForm = Annotated[Actor, Depends(page(Action.ACKNOWLEDGE_ALERT))]
AlertAssignForm = Annotated[Actor, Depends(page(Action.ASSIGN_ALERT))]
AlertCloseForm = Annotated[Actor, Depends(page(Action.CLOSE_ALERT))]
# The commissioners' pages (api/ui/routes/reports.py): the outcome reports and their CSV.
ReportsPage = Annotated[Actor, Depends(page(Action.READ_REPORTS))]
# A subject access request's printable answer (api/ui/routes/subject_access.py).
SubjectAccessPage = Annotated[Actor, Depends(page(Action.ANSWER_SUBJECT_ACCESS))]
# The record's life (api/ui/routes/governance.py): where the record stands (as the
# subject access page, the registering controller's IG lead), and each change its own.
RecordLifePage = Annotated[Actor, Depends(page(Action.ANSWER_SUBJECT_ACCESS))]
RestrictForm = Annotated[Actor, Depends(page(Action.RESTRICT_PROCESSING))]
LiftRestrictionForm = Annotated[Actor, Depends(page(Action.LIFT_RESTRICTION))]
LegalHoldForm = Annotated[Actor, Depends(page(Action.PLACE_LEGAL_HOLD))]
LiftLegalHoldForm = Annotated[Actor, Depends(page(Action.LIFT_LEGAL_HOLD))]
EraseForm = Annotated[Actor, Depends(page(Action.ERASE_CLIENT))]


# -- the read models and the access log --------------------------------------------------


async def agency_views(request: Request) -> AgencyViews:
    views: AgencyViews = request.app.state.projections.views
    return views


async def access_index(request: Request) -> AccessIndex:
    index: AccessIndex = request.app.state.projections.find(AccessIndex)
    return index


async def alert_inbox(request: Request) -> AlertInbox:
    inbox: AlertInbox = request.app.state.projections.find(AlertInbox)
    return inbox


async def birth_index(request: Request) -> BirthIndex:
    births: BirthIndex = request.app.state.projections.find(BirthIndex)
    return births


async def outcome_reports(request: Request) -> OutcomeReports:
    reports: OutcomeReports = request.app.state.projections.find(OutcomeReports)
    return reports


async def log_tree(request: Request) -> LogTree:
    """The log's Merkle tree as stored (read only: the tree projection signs heads)."""
    accord = request.app.state.accord
    return LogTree(accord.app, accord.engine)


def tree_keys(request: Request) -> list[str]:
    """The public keys a verification of the log trusts: this server's own signing key's
    (none if this server holds no key; ``accord audit verify`` then takes one)."""
    try:
        return [load_signer(request.app.state.accord.settings.signing_key_path).public_key]
    except SigningKeyError:
        return []


async def read_engine(request: Request) -> Engine:
    """The read models' database, for the queries that read their tables directly."""
    engine: Engine = request.app.state.accord.engine
    return engine


async def access_log(request: Request) -> AccessLog:
    return AccessLog(request.app.state.accord.app)


Views = Annotated[AgencyViews, Depends(agency_views)]
Index = Annotated[AccessIndex, Depends(access_index)]
Inbox = Annotated[AlertInbox, Depends(alert_inbox)]
Tree = Annotated[LogTree, Depends(log_tree)]
Reports = Annotated[OutcomeReports, Depends(outcome_reports)]
Births = Annotated[BirthIndex, Depends(birth_index)]
ReadEngine = Annotated[Engine, Depends(read_engine)]
Access = Annotated[AccessLog, Depends(access_log)]
TreeKeys = Annotated[list[str], Depends(tree_keys)]


# -- read-your-writes ----------------------------------------------------------------------


def waiting_for(read_model: Callable[[Request], Tracked]) -> Callable[..., Awaitable[None]]:
    """A dependency that waits, on the event loop (``api.catching_up``), until
    ``read_model`` has caught up with the request's ``min_position``. It authenticates
    first (so an anonymous caller waits for nothing); list it after the route's actor."""

    async def caught_up(
        request: Request,
        _: AnyActor,
        min_position: Annotated[LogPosition | None, Query(
            description="wait (up to 2 s) until the answer includes this log position, "
                        "e.g. the position your write returned; at most "
                        f"{MARGIN} beyond the head of the log")] = None,
    ) -> None:
        await _until(request, read_model, min_position)

    return caught_up


async def _until(request: Request, read_model: Callable[[Request], Tracked],
                 min_position: int | None) -> None:
    if min_position is None:
        return
    followed = read_model(request)
    registry: dict[str, CatchUp] | None = getattr(request.app.state, "catch_up", None)
    if registry is None:
        registry = request.app.state.catch_up = {}
    catch_up = registry.get(followed.name)
    if catch_up is None:
        head = request.app.state.accord.app.head_position
        catch_up = registry[followed.name] = CatchUp(followed.position, head)
    # Read at call time: the module's setting is the one to change (tests do).
    await catch_up.until(min_position, catching_up.MAX_WAIT_SECONDS)


def page_waiting_for(read_model: Callable[[Request], Tracked]
                     ) -> Callable[..., Awaitable[None]]:
    """``waiting_for`` for a page: the browser's session instead of a bearer token (a page
    that follows a write, e.g. the client's page after a fact is recorded, names the
    write's position as ``min_position``)."""

    async def caught_up(
        request: Request,
        _: SignedIn,
        min_position: Annotated[LogPosition | None, Query()] = None,
    ) -> None:
        await _until(request, read_model, min_position)

    return caught_up


def _views(request: Request) -> Tracked:
    views: Tracked = request.app.state.projections.views
    return views


def _alert_inbox(request: Request) -> Tracked:
    inbox: Tracked = request.app.state.projections.find(AlertInbox)
    return inbox


def _outcome_reports(request: Request) -> Tracked:
    reports: Tracked = request.app.state.projections.find(OutcomeReports)
    return reports


#: For routes that read the agency views (a client's view, the IG review inbox).
ViewsCaughtUp = Annotated[None, Depends(waiting_for(_views))]
#: For the safeguarding alert inbox.
InboxCaughtUp = Annotated[None, Depends(waiting_for(_alert_inbox))]
#: For the commissioners' outcome reports.
ReportsCaughtUp = Annotated[None, Depends(waiting_for(_outcome_reports))]
#: For the web application's pages that read the agency views (a client's page).
PageViewsCaughtUp = Annotated[None, Depends(page_waiting_for(_views))]
#: For the safeguarding team's pages that follow a change to an alert.
PageInboxCaughtUp = Annotated[None, Depends(page_waiting_for(_alert_inbox))]
