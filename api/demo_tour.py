"""The demo's first impression: an inbox a safeguarding team would recognise, and a tour.

A partnership that starts using accord brings its history with it, so the rules raise
alerts about facts long past the moment the log holds them. A team would have worked
those already: here each is acknowledged and closed with an outcome by a named member of
the recipient's team. The alerts about the last fortnight are being worked (acknowledged
and assigned), and the households ``api.demo`` seeds to raise each kind of alert give a
handful of open ones at staggered deadlines: one already escalated, one due within the
hour, the rest later, some assigned.

Every event keeps its true time: the log is the record, so nothing is backdated. The
rules' clock is set back for each of those households as they are seeded (the
projection's own clock, ``SafeguardingRules.clock``), so that each alert's acknowledge-by
is as if it had been raised earlier; ``raised_at`` is still when the rules raised it.

Then ``print_tour`` prints what to paste into a shell: an ``export`` line per demo token,
named as the README's commands use them, and per agency a client it may actually see
for its purpose (id and NHS number), found through the agency views, so every command of
the README's "Try it" answers with data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.utils import get_topic

from api.bootstrap import Accord
from domain.agencies import Role
from domain.alerts import AlertOutcome, AlertStatus
from domain.application import OPERATOR, AccordApplication, Actor
from domain.categories import DataCategory
from domain.clients import Client
from domain.errors import HouseholdNotFound
from domain.households import Household
from domain.identity import IdentityErased
from domain.vocabulary import Purpose
from projections import queries
from projections.alerts import UNASSIGNED, AlertInbox, AlertItem, AlertQuery, AlertSort
from projections.safeguarding import SafeguardingRules
from projections.views import AgencyViews

#: Alerts about facts older than this were worked before the partnership used accord.
HISTORIC = timedelta(days=14)


@dataclass(frozen=True)
class Plan:
    """What a seeded household's alerts look like when the demo opens: how long until
    each must be acknowledged (negative: past it, so escalated), whether the team has
    acknowledged them, and to whom they are assigned (a team member's name, or None)."""

    due_in: timedelta
    acknowledged: bool = False
    assigned_to: str | None = None


#: By ``api.demo.ALERT_HOUSEHOLDS`` name.
PLANS: dict[str, Plan] = {
    "toxic trio": Plan(timedelta(hours=3, minutes=20), acknowledged=True,
                       assigned_to="Aisha Rahman (safeguarding team manager)"),
    "child safeguarding concern": Plan(-timedelta(minutes=50)),
    "parent disengaging": Plan(timedelta(hours=2, minutes=30),
                               assigned_to="Mark Evans (children's social worker)"),
    "pregnancy in treatment": Plan(timedelta(hours=1, minutes=40)),
    "concerns from two agencies": Plan(timedelta(minutes=40)),
    "adult safeguarding concern": Plan(timedelta(hours=3, minutes=50), acknowledged=True,
                                       assigned_to="Gareth Lloyd (adult safeguarding "
                                                   "practitioner)"),
}

CHILDRENS = "northshire-childrens"
#: Each recipient's safeguarding team: the demo token's holder first, then colleagues.
TEAMS: dict[str, list[str]] = {
    CHILDRENS: ["Mark Evans (children's social worker)",
                             "Aisha Rahman (safeguarding team manager)",
                             "Tom Price (duty social worker)"],
    "northshire-adult-care": ["Adult safeguarding team",
                              "Gareth Lloyd (adult safeguarding practitioner)"],
    "northshire-gp-federation": ["GP safeguarding lead",
                                 "Dr Nadia Patel (named GP for safeguarding)"],
}

#: How a historic alert was closed, in turn, and what the team noted.
OUTCOMES: list[tuple[AlertOutcome, str]] = [
    (AlertOutcome.ALREADY_KNOWN, "Already known to the team; the plan in place covers it."),
    (AlertOutcome.NO_FURTHER_ACTION, "Checked with the family's GP and school at the time; "
                                     "no further action."),
    (AlertOutcome.ALREADY_KNOWN, "Known to the team when it happened; no new information."),
    (AlertOutcome.REFERRAL_MADE, "Strategy discussion held at the time; an enquiry followed."),
]


def raise_alerts(accord: Accord, due_in: timedelta | None = None) -> None:
    """Runs the rules over what is seeded so far. With ``due_in``, their clock is set
    back so that each alert raised now must be acknowledged within ``due_in`` (at most
    the configured time to acknowledge), as if it had been raised that much earlier."""
    rules = accord.find(SafeguardingRules)
    if due_in is None:
        rules.catch_up()
        return
    lag = rules.acknowledge_within - min(due_in, rules.acknowledge_within)
    real: Callable[[], datetime] = rules.clock
    rules.clock = lambda: real() - lag
    try:
        rules.catch_up()
    finally:
        rules.clock = real


def work_the_inbox(accord: Accord, households: dict[str, list[UUID]]) -> None:
    """What each recipient's team has done by the time the demo opens: historic alerts
    acknowledged and closed with an outcome, recent ones acknowledged and assigned, and
    the seeded households' alerts as ``PLANS`` says (the inbox escalates the overdue)."""
    app = accord.app
    inbox = accord.find(AlertInbox)
    inbox.catch_up()  # indexes every alert, and escalates the one already overdue
    plan_of = {client: PLANS[name] for name, clients in households.items()
               for client in clients if name in PLANS}
    now = datetime.now(UTC)
    for recipient in sorted(TEAMS):
        team = _team(app, recipient)
        by_name = {member.name: member for member in team}
        for turn, alert in enumerate(inbox.alerts_of(recipient, limit=100_000)):
            plan = plan_of.get(alert.client_id)
            if plan is not None:
                _follow(app, alert, plan, team[0], by_name)
            elif _historic(alert, now):
                member = team[turn % len(team)]
                outcome, note = OUTCOMES[turn % len(OUTCOMES)]
                app.acknowledge_alert(alert.alert_id, member)
                app.close_alert(alert.alert_id, outcome, note, member)
            else:  # about the last fortnight: being worked
                member = team[turn % len(team)]
                app.acknowledge_alert(alert.alert_id, member)
                app.assign_alert(alert.alert_id, _id(member), member)
    inbox.catch_up()


def _follow(app: AccordApplication, alert: AlertItem, plan: Plan, lead: Actor,
            team: dict[str, Actor]) -> None:
    """A seeded household's alert, as its plan says: acknowledged (by the assignee, or
    the team's lead) and assigned by the lead, if the assignee is of this recipient's
    team; an escalated one waits for the duty desk."""
    if alert.status == AlertStatus.ESCALATED.value:
        return
    assignee = team.get(plan.assigned_to or "")
    if plan.acknowledged:
        app.acknowledge_alert(alert.alert_id, assignee or lead)
    if assignee is not None:
        app.assign_alert(alert.alert_id, _id(assignee), lead)


def _historic(alert: AlertItem, now: datetime) -> bool:
    return alert.triggered_at is not None and alert.triggered_at < now - HISTORIC


def _team(app: AccordApplication, agency: str) -> list[Actor]:
    """The agency's safeguarding team as ``TEAMS`` names it: the demo token's holder is
    already enrolled; the colleagues are enrolled here (they have no demo token)."""
    kind = app.agency(agency).kind
    enrolled = {p.name: p.principal_id for p in queries.principals(app, agency, OPERATOR)
                if p.role is Role.SAFEGUARDING and not p.revoked}
    team = []
    for name in TEAMS[agency]:
        principal_id = enrolled.get(name)
        if principal_id is None:
            principal_id = app.add_principal(agency, Role.SAFEGUARDING, name,
                                             OPERATOR).principal_id
        team.append(Actor(principal_id, name, agency, kind, Role.SAFEGUARDING))
    return team


def _id(actor: Actor) -> UUID:
    assert actor.principal_id is not None
    return actor.principal_id


# -- the tour ---------------------------------------------------------------------------


class Token(Protocol):
    """A demo token as ``api.demo`` keeps it."""

    @property
    def agency(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def token(self) -> str: ...


#: The shell variable each demo token is exported as (the README's commands use them).
EXPORTS: dict[tuple[str, str], str] = {
    ("riverside-recovery", "practitioner"): "RECOVERY",
    ("riverside-recovery", "safeguarding"): "RECOVERY_SAFEGUARDING",
    ("riverside-recovery", "ig_lead"): "RECOVERY_IG",
    ("riverside-recovery", "admin"): "RECOVERY_ADMIN",
    ("northshire-police", "practitioner"): "POLICE",
    ("northshire-police", "ig_lead"): "POLICE_IG",
    ("northshire-probation", "practitioner"): "PROBATION",
    ("northshire-mh-trust", "practitioner"): "MENTAL_HEALTH",
    ("northshire-childrens", "safeguarding"): "CHILDRENS",
    ("northshire-adult-care", "safeguarding"): "ADULT_CARE",
    ("northshire-gp-federation", "safeguarding"): "GP",
    ("northshire-housing", "practitioner"): "HOUSING",
    ("northshire-commissioning", "commissioner"): "COMMISSIONER",
    ("northshire-commissioning", "admin"): "COMMISSIONING_ADMIN",
    ("northshire-commissioning", "partnership_admin"): "PARTNERSHIP_ADMIN",
}

#: (variable prefix, agency, purpose): a client each agency may see for its purpose.
SAMPLES: list[tuple[str, str, Purpose]] = [
    ("RECOVERY", "riverside-recovery", Purpose.DIRECT_CARE),
    ("POLICE", "northshire-police", Purpose.OFFENDER_MANAGEMENT),
    ("PROBATION", "northshire-probation", Purpose.OFFENDER_MANAGEMENT),
    ("MENTAL_HEALTH", "northshire-mh-trust", Purpose.CARE_COORDINATION),
    ("CHILDRENS", "northshire-childrens", Purpose.SAFEGUARDING_CHILDREN),
    ("ADULT_CARE", "northshire-adult-care", Purpose.SAFEGUARDING_ADULTS),
    ("GP", "northshire-gp-federation", Purpose.SAFEGUARDING_CHILDREN),
    ("HOUSING", "northshire-housing", Purpose.CARE_COORDINATION),
]
#: The agencies whose sample is a client in a household they may see (for its members).
HOUSEHOLD_SAMPLES = frozenset({"CHILDRENS"})


def export_name(token: Token) -> str:
    return EXPORTS.get((token.agency, token.role)) or \
        f"{token.agency}_{token.role}".upper().replace("-", "_")


@dataclass(frozen=True)
class Sample:
    """A client an agency may see for a purpose: its id, its NHS number, and the
    household it lives in if the agency may see another member of it for the purpose."""

    prefix: str
    agency: str
    purpose: Purpose
    client_id: UUID
    nhs_number: str
    household_id: UUID | None


def samples(accord: Accord) -> list[Sample]:
    """For each of ``SAMPLES``, the first client (in the order registered) whose view for
    the purpose shows its identity and something more; for ``HOUSEHOLD_SAMPLES``, the
    first such client in a household of which the agency may see another member too.
    The same on every run over the same log."""
    app, views = accord.app, accord.views
    views.catch_up()
    clients = _registered(app)
    linked = _linked(app)
    found = []
    for prefix, agency, purpose in SAMPLES:
        in_household = prefix in HOUSEHOLD_SAMPLES
        for client_id in [c for c in clients if c in linked] if in_household else clients:
            items = views.items(agency, client_id, purpose.value)
            categories = {i.category for i in items}
            if DataCategory.IDENTITY.value not in categories or len(categories) < 2:
                continue
            household_id = linked[client_id] if in_household else None
            if household_id is not None and not _shows_others(
                    app, views, agency, household_id, purpose):
                continue
            try:
                nhs = app.identity_of(client_id).nhs_number
            except IdentityErased:
                continue
            found.append(Sample(prefix, agency, purpose, client_id, nhs, household_id))
            break
    return found


def _registered(app: AccordApplication) -> list[UUID]:
    """Every client, in the order registered."""
    return [UUID(str(e.originator_id)) for e in _events(app, Client.Registered)]


def _linked(app: AccordApplication) -> dict[UUID, UUID]:
    """The household each linked client lives in."""
    linked: dict[UUID, UUID] = {}
    for event in _events(app, Household.Linked, Household.MemberAdded):
        members = event.client_ids if isinstance(event, Household.Linked) \
            else [event.client_id]
        linked.update((UUID(str(c)), UUID(str(event.originator_id))) for c in members)
    return linked


def _events(app: AccordApplication, *kinds: type[Any]) -> list[Any]:
    topics = [get_topic(kind) for kind in kinds]
    found: list[Any] = []
    position = 0
    while batch := app.recorder.select_notifications(start=position, limit=1000,
                                                     topics=topics,
                                                     inclusive_of_start=False):
        found.extend(app.mapper.to_domain_event(n) for n in batch)
        position = batch[-1].id
    return found


def _shows_others(app: AccordApplication, views: AgencyViews, agency: str,
                  household_id: UUID, purpose: Purpose) -> bool:
    """Whether the agency may see more than one member of the household for the purpose."""
    reader = Actor(None, "demo", agency, app.agency(agency).kind, Role.SAFEGUARDING)
    try:
        return len(queries.household(app, views, reader, household_id, purpose).members) > 1
    except HouseholdNotFound:
        return False


def print_tour(accord: Accord, tokens: Sequence[Token], tokens_path: object) -> None:
    """Prints the export lines, the sample clients and where to sign in."""
    settings = accord.settings
    base = f"http://{settings.host}:{settings.port}"
    print(f"\nDemo tokens (fictional partnership; also in {tokens_path}). Paste into a shell:")
    for t in tokens:
        print(f"export {export_name(t)}={t.token}  # {t.agency} {t.role}: {t.name}")
    print("\nA client each agency may see for its purpose (the README's commands use them):")
    for s in samples(accord):
        household = f" {s.prefix}_HOUSEHOLD={s.household_id}" if s.household_id else ""
        print(f"export {s.prefix}_CLIENT={s.client_id} {s.prefix}_NHS={s.nhs_number}"
              f"{household}  # {s.agency}, for {s.purpose.value}")
    triage = _triage(accord)
    if triage is not None:
        alert_id, colleague = triage
        print(f"export CHILDRENS_ALERT={alert_id} CHILDRENS_COLLEAGUE={colleague}  # the "
              f"unassigned open alert due first, and {TEAMS[CHILDRENS][1]}")
    print(f"\nTry:  curl -s -H \"Authorization: Bearer $CHILDRENS\" "
          f"\"{base}/v1/alerts?sort=due\"")
    print(f"Sign in at {base}/ui with a demo token")


def _triage(accord: Accord) -> tuple[UUID, UUID] | None:
    """Children's services' unassigned open alert due first (an escalated one before any
    other), and the colleague the README assigns it to; None once none is left."""
    inbox = accord.find(AlertInbox)
    inbox.catch_up()
    waiting = inbox.page(CHILDRENS, AlertQuery(
        statuses=(AlertStatus.RAISED, AlertStatus.ESCALATED), assigned_to=UNASSIGNED,
        sort=AlertSort.DUE, limit=1)).items
    colleague = next((p.principal_id for p in queries.principals(accord.app, CHILDRENS, OPERATOR)
                      if p.name == TEAMS[CHILDRENS][1] and not p.revoked), None)
    if not waiting or colleague is None:
        return None
    return waiting[0].alert_id, colleague
