"""The demo partnership: fictional agencies, principals and clients with realistic histories.

Seeding is idempotent: a second run finds the partnership and only prints the demo
tokens again, with the tour (``api.demo_tour``, which also works the alert inbox when
the partnership is first seeded). The tokens are kept in ``.accord/demo-tokens.json``
beside the key file, because the database itself keeps only their hashes. Everything
here is fictional; NHS numbers are drawn from the 999 range reserved for testing.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from api import demo_tour
from api.bootstrap import Accord
from domain.agencies import AgencyKind, Role
from domain.agreements import IDENTITY_FIELDS, AgreementTerms
from domain.application import OPERATOR, AccordApplication, Actor
from domain.errors import ClientAlreadyRegistered
from domain.identity import Identity, nhs_number_is_valid
from domain.vocabulary import Article6, Article9, Article10, LegalDuty
from infra.progress import progress

AGENCIES: list[tuple[str, str, AgencyKind]] = [
    ("riverside-recovery", "Riverside Recovery Service", AgencyKind.TREATMENT_PROVIDER),
    ("northshire-police", "Northshire Police", AgencyKind.POLICE),
    ("northshire-probation", "Probation Service, Northshire", AgencyKind.PROBATION),
    ("northshire-mh-trust", "Northshire Mental Health NHS Trust", AgencyKind.MENTAL_HEALTH),
    ("northshire-childrens", "Northshire Children's Services", AgencyKind.CHILDRENS_SERVICES),
    ("northshire-adult-care", "Northshire Adult Social Care", AgencyKind.ADULT_SOCIAL_CARE),
    ("northshire-housing", "Northshire Housing Options", AgencyKind.HOUSING),
    ("northshire-gp-federation", "Northshire GP Federation", AgencyKind.PRIMARY_CARE),
    ("northshire-commissioning", "Northshire Public Health Commissioning", AgencyKind.COMMISSIONER),
]

#: How partners reach each agency about a client (the directory shows it; a client's
#: chronology names the treatment provider's). Fictional numbers from Ofcom's drama range.
CONTACTS: dict[str, str] = {
    "riverside-recovery": "Riverside Recovery duty worker, 01632 960 101, "
                          "duty@riverside-recovery.example",
    "northshire-police": "Northshire Police IOM team, 01632 960 202",
    "northshire-probation": "Probation Northshire, 01632 960 303",
    "northshire-mh-trust": "Mental Health Trust access team, 01632 960 404",
    "northshire-childrens": "Children's Services front door, 01632 960 505",
    "northshire-adult-care": "Adult Social Care safeguarding, 01632 960 606",
    "northshire-housing": "Housing Options, 01632 960 707",
    "northshire-gp-federation": "GP Federation safeguarding lead, 01632 960 808",
    "northshire-commissioning": "Public Health Commissioning, 01632 960 909",
}
#: The treatment provider's key workers, named on each treatment episode's start.
KEY_WORKERS = ["Sam Okafor", "Lucy Grant", "Ben Adeyemi", "Ruth Mendes", "Owen Price"]

PRINCIPALS: list[tuple[str, Role, str]] = [
    ("riverside-recovery", Role.PRACTITIONER, "Sam Okafor (recovery worker)"),
    ("riverside-recovery", Role.SAFEGUARDING, "Priya Shah (safeguarding lead)"),
    ("riverside-recovery", Role.IG_LEAD, "Helen Ward (IG lead)"),
    ("riverside-recovery", Role.ADMIN, "Riverside service administrator"),
    ("northshire-police", Role.PRACTITIONER, "DC Tom Reid"),
    ("northshire-police", Role.IG_LEAD, "Police IG lead"),
    ("northshire-probation", Role.PRACTITIONER, "Jo Bell (probation officer)"),
    ("northshire-mh-trust", Role.PRACTITIONER, "Dr Ana Costa (psychiatrist)"),
    ("northshire-childrens", Role.SAFEGUARDING, "Mark Evans (children's social worker)"),
    ("northshire-adult-care", Role.SAFEGUARDING, "Adult safeguarding team"),
    ("northshire-gp-federation", Role.SAFEGUARDING, "GP safeguarding lead"),
    ("northshire-housing", Role.PRACTITIONER, "Housing options officer"),
    ("northshire-commissioning", Role.COMMISSIONER, "Commissioning analyst"),
    ("northshire-commissioning", Role.ADMIN, "Commissioning team administrator"),
    ("northshire-commissioning", Role.PARTNERSHIP_ADMIN, "Partnership administrator"),
]

GIVEN = ["Alex", "Jamie", "Sam", "Chris", "Danny", "Kerry", "Lee", "Paula", "Gary", "Donna",
         "Wayne", "Michelle", "Dean", "Lisa", "Craig", "Joanne", "Stuart", "Nicola", "Ryan",
         "Kelly", "Aisha", "Tariq", "Marek", "Agnieszka", "Connor", "Shannon", "Imran", "Zoe"]
FAMILY = ["Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Thomas", "Walker", "Wright",
          "Robinson", "Khan", "Hussain", "Kowalski", "Murphy", "Clarke", "Hughes", "Ahmed",
          "Green", "Hall", "Wood", "Jackson", "Harris", "Martin", "Cooper", "Ward", "Morris"]
POSTCODE_AREAS = ["NR1", "NR2", "NR3", "NR5", "NR6", "NR7", "NR14", "NR18"]


@dataclass(frozen=True)
class DemoToken:
    agency: str
    role: str
    name: str
    token: str


def tokens_file(accord: Accord) -> Path:
    return accord.settings.key_file.parent / "demo-tokens.json"


def seed(accord: Accord, clients: int = 300, seed_value: int = 2026) -> int:
    app = accord.app
    existing = {a.slug for a in app.agencies()}
    path = tokens_file(accord)
    if AGENCIES[0][0] in existing:
        loaded = _load_tokens(path)
        tokens = _enrol(app, loaded or [])
        if tokens != loaded:
            _save_tokens(path, tokens)
        for slug, contact in CONTACTS.items():  # a demo seeded before agencies had one
            if slug in existing:
                app.record_agency_contact(slug, contact, OPERATOR)
        print("demo partnership already seeded")
    else:
        for slug, name, kind in AGENCIES:
            if slug not in existing:
                app.register_agency(slug, name, kind, OPERATOR, contact=CONTACTS.get(slug))
        tokens = _enrol(app)
        _save_tokens(path, tokens)
        _seed_agreements(app)
        _seed_clients(accord, clients, random.Random(seed_value))
        print(f"seeded {len(AGENCIES)} agencies and {clients} clients")
    demo_tour.print_tour(accord, tokens, path)
    return 0


def _enrol(app: AccordApplication, tokens: list[DemoToken] | None = None) -> list[DemoToken]:
    """Enrols each demo (agency, role) not yet among ``tokens``: a demo seeded before a role
    was added (the partnership administrator) keeps its tokens and gains the new ones."""
    tokens = list(tokens or [])
    have = {(t.agency, t.role) for t in tokens}
    for agency, role, name in PRINCIPALS:
        if (agency, role.value) not in have:
            issued = app.add_principal(agency, role, name, OPERATOR)
            tokens.append(DemoToken(agency, role.value, name, issued.token))
    return tokens


def _save_tokens(path: Path, tokens: list[DemoToken]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump([t.__dict__ for t in tokens], handle, indent=1)


def _load_tokens(path: Path) -> list[DemoToken] | None:
    try:
        return [DemoToken(**t) for t in json.loads(path.read_text())]
    except (FileNotFoundError, ValueError, TypeError):
        return None


def demo_nhs_number(rng: random.Random) -> str:
    while True:
        candidate = "999" + "".join(str(rng.randrange(10)) for _ in range(6))
        total = sum(int(d) * w for d, w in zip(candidate, range(10, 1, -1), strict=True))
        check = (11 - total % 11) % 11
        if check != 10 and nhs_number_is_valid(candidate + str(check)):
            return candidate + str(check)


def _ig_lead(app: AccordApplication, agency: str) -> Actor:
    return app.authenticate(
        app.add_principal(agency, Role.IG_LEAD, "Demo IG lead (agreement register)", OPERATOR).token
    )


TP = AGENCIES[0][0]
IDENTITY = {"identity": ["given_name", "family_name", "date_of_birth"]}
ENGAGEMENT = {"treatment": ["appointment", "modality", "discharge_reason", "substances"]}
#: What the commissioner's agreement shares for commissioning: the categories the outcome
#: measures read (projections.reports.measures), each with only the fields they need (and
#: the NDTMS extract's interventions), never identity; tests/unit/test_report_measures.py
#: holds it to the measures.
COMMISSIONING_SHARES = {
    "demographics": ["sex", "ethnicity", "area"],
    "treatment": ["modality", "substances", "discharge_reason", "reason", "kind", "sessions"],
    "outcomes": ["stage", "substance_use", "injecting", "crime",
                 "health_and_social_functioning"],
    "criminal_justice": ["order", "status"],
    "safeguarding_children": ["children_in_household", "parental_responsibility"],
    "safeguarding_adults": ["section_42_enquiry"],
    "domestic_abuse": ["role"],
    "mental_health": ["concern", "in_mental_health_service"],
    "employment": ["status"],
    "blood_borne_viruses": ["virus", "result", "vaccine", "course_completed"],
}
#: Equality monitoring: NHS ethnic category codes weighted roughly as Bedfordshire's
#: treatment population (so the smaller groups fall under 5 in a report), and the three
#: local authorities of the seed model (ONS codes): Bedford Borough, Central Bedfordshire,
#: Luton.
ETHNICITIES = {"A": 58, "B": 2, "C": 8, "D": 2, "E": 1, "F": 1, "G": 1, "H": 4, "J": 8,
               "K": 3, "L": 1, "M": 3, "N": 3, "P": 1, "R": 1, "S": 1, "Z": 2}
AREAS = {"E06000055": 34, "E06000056": 30, "E06000032": 36}


def demo_agreements() -> list[tuple[str, dict[str, Any]]]:
    """(controller, terms) for the demo's register of data-sharing agreements."""
    common = {"valid_from": "2024-04-01", "valid_to": "2028-03-31", "review_on": "2027-03-31",
              "retention_days": 2190}
    health_public_task = {"article_6": Article6.PUBLIC_TASK.value,
                          "article_9": Article9.SUBSTANTIAL_PUBLIC_INTEREST.value}
    return [
        (TP, {**common, "recipient": "northshire-police",
              "title": "Drug intervention: treatment engagement for offender management",
              "purposes": ["offender_management"],
              "categories": {**IDENTITY, **ENGAGEMENT,
                             "criminal_justice": ["order", "status", "ends_on"]},
              "lawful_basis": {**health_public_task,
                               "article_10": Article10.STATUTORY_PURPOSES.value},
              "consent_required": True}),
        (TP, {**common, "recipient": "northshire-probation",
              "title": "DRR/ATR: treatment progress to the responsible officer",
              "purposes": ["offender_management"],
              "categories": {**IDENTITY, **ENGAGEMENT,
                             "criminal_justice": ["order", "status", "ends_on"],
                             "outcomes": ["stage", "substance_use", "crime"]},
              "lawful_basis": {**health_public_task,
                               "article_10": Article10.STATUTORY_PURPOSES.value},
              "consent_required": True}),
        (TP, {**common, "recipient": "northshire-childrens",
              "title": "Safeguarding children: parents in treatment",
              "purposes": ["safeguarding_children"],
              "categories": {"identity": list(IDENTITY_FIELDS), **ENGAGEMENT,
                             "safeguarding_children": ["children_in_household",
                                                       "parental_responsibility", "pregnant",
                                                       "due_date", "concern", "summary",
                                                       "children_affected"],
                             "domestic_abuse": ["role", "risk_level", "children_present"]},
              "lawful_basis": {"article_6": Article6.LEGAL_OBLIGATION.value,
                               "article_9": Article9.SUBSTANTIAL_PUBLIC_INTEREST.value,
                               "legal_duty": LegalDuty.CHILDREN_ACT_S47.value},
              "consent_required": False}),
        (TP, {**common, "recipient": "northshire-mh-trust",
              "title": "Dual diagnosis: joint care coordination",
              "purposes": ["care_coordination", "direct_care"],
              "categories": {**IDENTITY, **ENGAGEMENT,
                             "mental_health": ["concern", "risk_level",
                                               "in_mental_health_service", "recent_attempt"],
                             "prescribing": ["medication", "change", "daily_dose_mg",
                                             "supervised_consumption"]},
              "lawful_basis": {"article_6": Article6.PUBLIC_TASK.value,
                               "article_9": Article9.HEALTH_OR_SOCIAL_CARE.value},
              "consent_required": True}),
        (TP, {**common, "recipient": "northshire-adult-care",
              "title": "Adult safeguarding: Care Act s.42 enquiries",
              "purposes": ["safeguarding_adults"],
              "categories": {"identity": list(IDENTITY_FIELDS), **ENGAGEMENT,
                             "safeguarding_adults": ["concern", "summary",
                                                     "section_42_enquiry"]},
              "lawful_basis": {"article_6": Article6.LEGAL_OBLIGATION.value,
                               "article_9": Article9.SOCIAL_PROTECTION.value,
                               "legal_duty": LegalDuty.CARE_ACT_S42.value},
              "consent_required": False}),
        (TP, {**common, "recipient": "northshire-housing",
              "title": "Housing support for people in recovery",
              "purposes": ["care_coordination"],
              "categories": {**IDENTITY, "housing": ["status"]},
              "lawful_basis": {"article_6": Article6.CONSENT.value},
              "consent_required": True}),
        (TP, {**common, "recipient": "northshire-commissioning",
              "title": "Outcomes monitoring (no identifiers)",
              "purposes": ["commissioning"],
              "categories": COMMISSIONING_SHARES,
              "lawful_basis": {"article_6": Article6.PUBLIC_TASK.value,
                               "article_9": Article9.PUBLIC_HEALTH.value,
                               "article_10": Article10.STATUTORY_PURPOSES.value},
              "consent_required": False}),
        (TP, {**common, "recipient": "northshire-gp-federation",
              "title": "Pregnancy in treatment: the unborn child's safeguarding",
              "purposes": ["safeguarding_children"],
              "categories": {"identity": list(IDENTITY_FIELDS),
                             "treatment": ["modality", "substances"],
                             "safeguarding_children": ["pregnant", "due_date"]},
              "lawful_basis": {"article_6": Article6.LEGAL_OBLIGATION.value,
                               "article_9": Article9.HEALTH_OR_SOCIAL_CARE.value,
                               "legal_duty": LegalDuty.CHILDREN_ACT_S17.value},
              "consent_required": False}),
        ("northshire-police", {**common, "recipient": "northshire-childrens",
                               "title": "Domestic abuse notifications where children live",
                               "purposes": ["safeguarding_children"],
                               "categories": {"domestic_abuse": ["role", "children_present"]},
                               "lawful_basis": {
                                   "article_6": Article6.LEGAL_OBLIGATION.value,
                                   "legal_duty": LegalDuty.CHILDREN_ACT_S47.value},
                               "consent_required": False}),
    ]


def _seed_agreements(app: AccordApplication) -> None:
    leads: dict[str, Actor] = {}
    for controller, raw in demo_agreements():
        terms = AgreementTerms.model_validate(raw)
        for agency in (controller, terms.recipient):
            if agency not in leads:
                leads[agency] = _ig_lead(app, agency)
        agreement = app.propose_agreement(terms, leads[controller])
        app.approve_agreement(agreement.id, leads[controller])
        app.approve_agreement(agreement.id, leads[terms.recipient])


def _seed_clients(accord: Accord, count: int, rng: random.Random) -> None:
    app = accord.app
    worker = app.authenticate(_practitioner_token(app))
    used: set[str] = set()
    consented: list[tuple[Any, bool]] = []
    for _ in progress(range(count), "seeding clients", total=count):
        nhs = demo_nhs_number(rng)
        while nhs in used:
            nhs = demo_nhs_number(rng)
        used.add(nhs)
        identity = Identity(
            given_name=rng.choice(GIVEN), family_name=rng.choice(FAMILY),
            date_of_birth=date(rng.randint(1960, 2004), rng.randint(1, 12), rng.randint(1, 28)),
            nhs_number=nhs,
            postcode=_postcode(rng),
        )
        client_id, _ = app.register_client(identity, worker)
        journey = history(rng)
        # Consent is asked for at assessment, as services do: after the first two facts.
        for index, (type_name, occurred_at, data) in enumerate(journey):
            if index == 2:
                _seed_consents(app, client_id, rng, journey, worker)
            app.record_fact(client_id, type_name, data, occurred_at, worker)
        has_children = any(t == "household_updated" for t, _, _ in journey)
        consented.append((client_id, has_children))
    _seed_partner_facts(accord, consented, rng)
    demo_tour.work_the_inbox(accord, _seed_alert_households(accord, rng))


def _seed_consents(app: AccordApplication, client_id: Any, rng: random.Random,
                   journey: list[tuple[str, datetime, dict[str, Any]]], worker: Actor) -> None:
    """Most clients consent to offender management sharing if on an order, and to
    dual-diagnosis care coordination if the mental health trust is involved."""
    types = {t for t, _, _ in journey}
    grants: list[tuple[str | None, AgencyKind | None, list[str], list[str]]] = []
    if "criminal_justice_status" in types and rng.random() < 0.85:
        grants.append((None, AgencyKind.POLICE, ["identity", "treatment", "criminal_justice"],
                       ["offender_management"]))
        grants.append(("northshire-probation", None,
                       ["identity", "treatment", "criminal_justice", "outcomes"],
                       ["offender_management"]))
    if "mental_health_concern_recorded" in types and rng.random() < 0.8:
        grants.append(("northshire-mh-trust", None,
                       ["identity", "treatment", "mental_health", "prescribing"],
                       ["care_coordination", "direct_care"]))
    if rng.random() < 0.3:
        grants.append(("northshire-housing", None, ["identity", "housing"],
                       ["care_coordination"]))
    for agency, kind, categories, purposes in grants:
        consent_id, _ = app.give_consent(
            client_id, recipient_agency=agency, recipient_kind=kind, categories=categories,
            purposes=purposes, data_from=None, data_to=None, expires_at=None,
            obtained=rng.choice(["written", "electronic"]), by=worker,
        )
        if rng.random() < 0.05:
            app.withdraw_consent(client_id, consent_id, "client asked to stop sharing", worker)


def _seed_partner_facts(accord: Accord, clients: list[tuple[Any, bool]],
                        rng: random.Random) -> None:
    """Partners contribute what they hold, where they have a basis to see the client."""
    app, views = accord.app, accord.views  # the application asks the views' rows
    views.catch_up(show_progress=True)
    police = app.authenticate(app.add_principal("northshire-police", Role.PRACTITIONER,
                                                "Demo police data feed", OPERATOR).token)
    childrens = app.authenticate(app.add_principal("northshire-childrens", Role.SAFEGUARDING,
                                                   "Demo children's services feed",
                                                   OPERATOR).token)
    now = datetime.now(UTC).replace(microsecond=0)
    for client_id, has_children in progress(clients, "partner records", total=len(clients)):
        if views.sees_client("northshire-police", client_id) and rng.random() < 0.25:
            app.record_fact(client_id, "domestic_abuse_incident_recorded",
                            {"role": rng.choice(["victim", "perpetrator"]),
                             "children_present": has_children and rng.random() < 0.5},
                            now - timedelta(days=rng.randint(1, 90)), police)
        if has_children and rng.random() < 0.3:
            app.record_fact(client_id, "child_protection_status_recorded",
                            {"status": rng.choice(["child_in_need", "child_protection_plan"]),
                             "children": rng.randint(1, 3)},
                            now - timedelta(days=rng.randint(1, 60)), childrens)


#: Households whose histories raise each kind of safeguarding alert (DESIGN.md,
#: "Safeguarding alerts"): (name, members), each member a list of (fact type, days ago,
#: data, recorded by). "tp" is the treatment provider; "childrens" children's services.
_OPIOIDS = {"modality": "pharmacological", "substances": ["opioids"]}
_ALCOHOL = {"modality": "pharmacological", "substances": ["alcohol"]}
_CHILDREN = {"children_in_household": 2, "parental_responsibility": True}
_MISSED = {"appointment": "keywork"}
_Member = list[tuple[str, float, dict[str, Any], str]]
ALERT_HOUSEHOLDS: list[tuple[str, list[_Member]]] = [
    ("toxic trio", [
        [("treatment_episode_started", 40, _OPIOIDS, "tp"),
         ("household_updated", 35, _CHILDREN, "tp"),
         ("mental_health_concern_recorded", 12,
          {"concern": "low_mood", "risk_level": "medium"}, "tp")],
        [("treatment_episode_started", 30, _ALCOHOL, "tp"),
         ("domestic_abuse_risk_recorded", 6,
          {"role": "perpetrator", "risk_level": "high"}, "tp")],
    ]),
    ("child safeguarding concern", [
        [("treatment_episode_started", 20, _OPIOIDS, "tp"),
         ("child_safeguarding_concern_raised", 2,
          {"concern": "neglect", "summary": "Children seen unsupervised late at night.",
           "children_affected": 2}, "tp")],
    ]),
    ("parent disengaging", [
        [("treatment_episode_started", 60, _OPIOIDS, "tp"),
         ("household_updated", 55, _CHILDREN, "tp"),
         ("appointment_missed", 20, _MISSED, "tp"),
         ("appointment_missed", 13, _MISSED, "tp"),
         ("appointment_missed", 6, _MISSED, "tp")],
    ]),
    ("pregnancy in treatment", [
        [("treatment_episode_started", 25, _ALCOHOL, "tp"),
         ("household_updated", 4, {"children_in_household": 0,
                                   "parental_responsibility": False, "pregnant": True},
          "tp")],
    ]),
    ("concerns from two agencies", [
        [("treatment_episode_started", 50, _OPIOIDS, "tp"),
         ("child_safeguarding_concern_raised", 5,
          {"concern": "emotional_abuse", "summary": "School reports a frightened child.",
           "children_affected": 1}, "childrens"),
         ("domestic_abuse_incident_recorded", 3,
          {"role": "victim", "children_present": True}, "tp")],
    ]),
    ("adult safeguarding concern", [
        [("treatment_episode_started", 15, _ALCOHOL, "tp"),
         ("adult_safeguarding_concern_raised", 1,
          {"concern": "financial_abuse", "summary": "Benefits taken by a lodger.",
           "section_42_enquiry": True}, "tp")],
    ]),
]


def _seed_alert_households(accord: Accord, rng: random.Random) -> dict[str, list[Any]]:
    """Registers the households of ``ALERT_HOUSEHOLDS``, links those of more than one
    member (the link itself completes the toxic trio), then records their histories; the
    rules raise the alerts of what was seeded before, then of each household in turn, due
    as ``demo_tour.PLANS`` says. Returns each household's clients, by name."""
    app, views = accord.app, accord.views
    demo_tour.raise_alerts(accord)  # the histories' alerts, before the households'
    households: dict[str, list[Any]] = {}
    worker = app.authenticate(_practitioner_token(app))
    recorders = {"tp": worker, "childrens": app.authenticate(app.add_principal(
        "northshire-childrens", Role.SAFEGUARDING, "Demo children's services feed (alerts)",
        OPERATOR).token)}
    now = datetime.now(UTC).replace(microsecond=0)
    for name, members in ALERT_HOUSEHOLDS:
        client_ids = households[name] = []
        for _ in members:
            while True:
                identity = Identity(
                    given_name=rng.choice(GIVEN), family_name=rng.choice(FAMILY),
                    date_of_birth=date(rng.randint(1975, 2000), rng.randint(1, 12),
                                       rng.randint(1, 28)),
                    nhs_number=demo_nhs_number(rng), postcode=_postcode(rng))
                try:
                    client_ids.append(app.register_client(identity, worker)[0])
                    break
                except ClientAlreadyRegistered:
                    continue
        views.catch_up()
        histories = [(client_id, step) for client_id, member in zip(client_ids, members,
                                                                     strict=True)
                     for step in member]
        histories.sort(key=lambda item: -item[1][1])  # oldest first
        for client_id, (type_name, days, data, by) in histories:
            app.record_fact(client_id, type_name, data, now - timedelta(days=days),
                            recorders[by])
        if len(client_ids) > 1:
            app.link_household(client_ids, worker)
        plan = demo_tour.PLANS.get(name)
        demo_tour.raise_alerts(accord, plan.due_in if plan else None)
    return households


def _postcode(rng: random.Random) -> str:
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    inward = f"{rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"
    return f"{rng.choice(POSTCODE_AREAS)} {inward}"


def _practitioner_token(app: AccordApplication) -> str:
    """A system principal for seeding, so seeded facts are attributed like real ones."""
    return app.add_principal(AGENCIES[0][0], Role.PRACTITIONER, "Demo data loader", OPERATOR).token


def history(rng: random.Random) -> list[tuple[str, datetime, dict[str, Any]]]:
    """A plausible treatment journey: referral, assessment, episode, engagement, outcomes."""
    facts: list[tuple[str, datetime, dict[str, Any]]] = []
    now = datetime.now(UTC).replace(microsecond=0)
    when = now - timedelta(days=rng.randint(60, 700))

    def add(type_name: str, data: dict[str, Any], days: int = 0) -> None:
        nonlocal when
        when = min(when + timedelta(days=days, hours=rng.randint(1, 8)), now)
        facts.append((type_name, when, data))

    primary = rng.choices(["opioids", "alcohol", "crack", "cocaine", "cannabis"],
                          weights=[40, 30, 12, 10, 8])[0]
    substances = sorted({primary, *rng.sample(["crack", "alcohol", "cannabis",
                                               "benzodiazepines"], rng.randint(0, 2))})
    source = rng.choice(["self", "gp", "criminal_justice", "probation", "hospital", "social_care"])
    add("referral_received", {"source": source, "substances": substances})
    add("assessment_completed", {"assessment": "comprehensive", "substances": substances,
                                 "injecting": primary == "opioids" and rng.random() < 0.4}, 7)
    if rng.random() < 0.9:  # equality monitoring at assessment; a few are never asked
        add("demographics_recorded", _demographics(rng))
    modality = "pharmacological" if primary in ("opioids", "alcohol") else "psychosocial"
    # Chosen from the referral's day, not drawn from ``rng``: the rest of the history is
    # the same as before episodes named their key worker.
    key_worker = KEY_WORKERS[when.toordinal() % len(KEY_WORKERS)]
    add("treatment_episode_started", {"modality": modality, "substances": substances,
                                      "key_worker": key_worker}, 3)
    if primary == "opioids":
        medication = rng.choice(["methadone", "buprenorphine", "buprenorphine_depot"])
        dose = 60.0 if medication == "methadone" else 12.0
        add("prescription_changed", {"medication": medication, "change": "started",
                                     "daily_dose_mg": dose, "supervised_consumption": True}, 2)
    if rng.random() < 0.35:
        add("household_updated", {"children_in_household": rng.randint(1, 4),
                                  "parental_responsibility": True,
                                  "pregnant": rng.random() < 0.08})
    order: str | None = None
    if source in ("criminal_justice", "probation"):
        order = "drug_rehabilitation_requirement" if primary != "alcohol" \
            else "alcohol_treatment_requirement"
        add("criminal_justice_status", {"order": order, "status": "started"}, 1)
    add("housing_status_recorded", {"status": rng.choices(
        ["settled", "temporary", "no_fixed_abode", "supported", "at_risk_of_eviction"],
        weights=[55, 15, 8, 12, 10])[0]}, 1)
    add("employment_status_recorded", {"status": rng.choice(
        ["unemployed", "employed", "unable_to_work", "volunteering"])})
    add("blood_borne_virus_test", {"virus": "hepatitis_c",
                                   "result": rng.choice(["negative", "negative", "positive",
                                                         "declined"])}, 5)
    add("treatment_outcomes_profile", _top(rng, "start", primary), 1)
    add("care_plan_agreed", {"goals": rng.sample(
        ["reduce use", "stable housing", "reconnect with family", "return to work",
         "stop injecting", "manage mental health"], 2),
        "review_on": (when + timedelta(days=84)).date().isoformat()}, 2)
    disengaging = rng.random() < 0.25
    for week in range(rng.randint(4, 12)):
        if rng.random() < (0.5 if disengaging and week > 2 else 0.15):
            add("appointment_missed", {"appointment": rng.choice(["keywork", "prescriber"])}, 7)
        else:
            add("appointment_attended", {"appointment": rng.choice(["keywork", "prescriber",
                                                                    "group"])}, 7)
            if rng.random() < 0.3:
                add("intervention_recorded", {"kind": rng.choice(
                    ["psychosocial", "group_work", "peer_mentoring", "recovery_support",
                     "naloxone_supply"])})
    if rng.random() < 0.2:
        add("domestic_abuse_risk_recorded", {"role": rng.choice(["victim", "perpetrator"]),
                                             "risk_level": rng.choice(["medium", "high"])})
    if rng.random() < 0.3:
        add("mental_health_concern_recorded", {"concern": rng.choice(
            ["low_mood", "anxiety", "trauma", "psychosis"]),
            "risk_level": rng.choice(["standard", "medium"]),
            "in_mental_health_service": rng.random() < 0.4})
    if primary == "opioids" and rng.random() < 0.3:
        add("overdose_risk_recorded", {"risk_level": "high", "recent_overdose": rng.random() < 0.3,
                                       "naloxone_held": rng.random() < 0.6})
    add("clinical_note_added", {"text": "Reviewed progress against care plan; discussed harm "
                                        "reduction and next steps."}, 2)
    add("treatment_outcomes_profile", _top(rng, "review", primary), 14)
    if order is not None:  # how the order went: a few are breached
        add("criminal_justice_status", {"order": order, "status": "breached"
                                        if rng.random() < 0.2 else "compliant"}, 2)
    if rng.random() < 0.35:
        add("blood_borne_virus_vaccination", {"vaccine": "hepatitis_b", "dose": 3,
                                              "course_completed": rng.random() < 0.7}, 3)
    if disengaging:
        add("treatment_episode_ended",
            {"modality": modality, "discharge_reason": "dropped_out"}, 21)
        add("discharged", {"reason": "dropped_out"})
    elif rng.random() < 0.3:
        exit_top = _top(rng, "exit", primary)
        exit_top["health_and_social_functioning"]["days_paid_work"] = rng.choice([0, 0, 4, 12, 20])
        add("treatment_outcomes_profile", exit_top, 28)
        add("treatment_episode_ended", {"modality": modality,
                                        "discharge_reason": "completed_drug_free"}, 2)
        add("discharged", {"reason": "completed_drug_free"})
        if rng.random() < 0.4:
            add("employment_status_recorded", {"status": "employed"}, rng.randint(7, 60))
        if rng.random() < 0.3:  # re-presents within six months (PHOF C19 counts it)
            add("treatment_episode_started", {"modality": modality, "substances": substances,
                                              "key_worker": key_worker}, rng.randint(20, 150))
    return facts


def _demographics(rng: random.Random) -> dict[str, Any]:
    return {
        "sex": rng.choices(["male", "female", "other", "not_stated"], weights=[66, 32, 1, 1])[0],
        "ethnicity": rng.choices(list(ETHNICITIES), weights=list(ETHNICITIES.values()))[0],
        "sexual_orientation": rng.choices(
            ["heterosexual", "gay_or_lesbian", "bisexual", "not_stated"],
            weights=[85, 5, 4, 6])[0],
        "religion": rng.choice(["no_religion", "christian", "muslim", "sikh", "hindu",
                                "not_stated"]),
        "disability": rng.choices(["no", "yes", "not_stated"], weights=[70, 22, 8])[0],
        "area": rng.choices(list(AREAS), weights=list(AREAS.values()))[0],
    }


def _top(rng: random.Random, stage: str, primary: str) -> dict[str, Any]:
    days = rng.randint(0, 28)
    use = {"opioids": "opiates"}.get(primary, primary)
    substance_use = {use: days} if use in ("alcohol", "opiates", "crack", "cocaine",
                                           "cannabis") else {}
    return {
        "stage": stage,
        "substance_use": substance_use,
        "injecting": {"days_injected": rng.randint(0, days) if primary == "opioids" else 0,
                      "shared_equipment": False},
        "crime": {"shoplifting_days": rng.randint(0, 4), "selling_drugs_days": 0,
                  "other_theft": False, "assault_or_violence": False},
        "health_and_social_functioning": {
            "psychological_health": rng.randint(4, 16), "physical_health": rng.randint(5, 17),
            "quality_of_life": rng.randint(3, 16), "days_paid_work": rng.randint(0, 10),
            "acute_housing_problem": rng.random() < (0.2 if stage == "start" else 0.1),
        },
    }


__all__ = ["Actor", "history", "seed"]
