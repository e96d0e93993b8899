"""The demo partnership: fictional agencies, principals and clients with realistic histories.

Seeding is idempotent: a second run finds the partnership and only prints the demo
tokens again. The tokens are kept in ``.accord/demo-tokens.json`` beside the key file,
because the database itself keeps only their hashes. Everything here is fictional;
NHS numbers are drawn from the 999 range reserved for testing.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from domain.agencies import AgencyKind, Role
from domain.application import OPERATOR, AccordApplication, Actor
from domain.identity import Identity, nhs_number_is_valid
from infra.progress import progress
from infra.wiring import Accord

AGENCIES: list[tuple[str, str, AgencyKind]] = [
    ("riverside-recovery", "Riverside Recovery Service", AgencyKind.TREATMENT_PROVIDER),
    ("northshire-police", "Northshire Police", AgencyKind.POLICE),
    ("northshire-probation", "Probation Service, Northshire", AgencyKind.PROBATION),
    ("northshire-mh-trust", "Northshire Mental Health NHS Trust", AgencyKind.MENTAL_HEALTH),
    ("northshire-childrens", "Northshire Children's Services", AgencyKind.CHILDRENS_SERVICES),
    ("northshire-adult-care", "Northshire Adult Social Care", AgencyKind.ADULT_SOCIAL_CARE),
    ("northshire-housing", "Northshire Housing Options", AgencyKind.HOUSING),
    ("northshire-commissioning", "Northshire Public Health Commissioning", AgencyKind.COMMISSIONER),
]

PRINCIPALS: list[tuple[str, Role, str]] = [
    ("riverside-recovery", Role.PRACTITIONER, "Sam Okafor (recovery worker)"),
    ("riverside-recovery", Role.SAFEGUARDING, "Priya Shah (safeguarding lead)"),
    ("riverside-recovery", Role.IG_LEAD, "Helen Ward (IG lead)"),
    ("northshire-police", Role.PRACTITIONER, "DC Tom Reid"),
    ("northshire-police", Role.IG_LEAD, "Police IG lead"),
    ("northshire-probation", Role.PRACTITIONER, "Jo Bell (probation officer)"),
    ("northshire-mh-trust", Role.PRACTITIONER, "Dr Ana Costa (psychiatrist)"),
    ("northshire-childrens", Role.SAFEGUARDING, "Mark Evans (children's social worker)"),
    ("northshire-adult-care", Role.SAFEGUARDING, "Adult safeguarding team"),
    ("northshire-housing", Role.PRACTITIONER, "Housing options officer"),
    ("northshire-commissioning", Role.COMMISSIONER, "Commissioning analyst"),
    ("northshire-commissioning", Role.ADMIN, "Partnership administrator"),
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
        tokens = _load_tokens(path)
        if tokens is None:
            tokens = _enrol(app)
            _save_tokens(path, tokens)
        print("demo partnership already seeded")
    else:
        for slug, name, kind in AGENCIES:
            if slug not in existing:
                app.register_agency(slug, name, kind, OPERATOR)
        tokens = _enrol(app)
        _save_tokens(path, tokens)
        _seed_clients(app, clients, random.Random(seed_value))
        print(f"seeded {len(AGENCIES)} agencies and {clients} clients")
    _print_tokens(tokens, path)
    return 0


def _enrol(app: AccordApplication) -> list[DemoToken]:
    tokens = []
    for agency, role, name in PRINCIPALS:
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


def _print_tokens(tokens: list[DemoToken], path: Path) -> None:
    print(f"\nDemo tokens (fictional partnership; also in {path}):")
    for t in tokens:
        print(f"  {t.agency:26} {t.role:13} {t.token}")
    print("\nUse one as:  curl -H 'Authorization: Bearer <token>' http://127.0.0.1:8000/v1/event-types")


def demo_nhs_number(rng: random.Random) -> str:
    while True:
        candidate = "999" + "".join(str(rng.randrange(10)) for _ in range(6))
        total = sum(int(d) * w for d, w in zip(candidate, range(10, 1, -1), strict=True))
        check = (11 - total % 11) % 11
        if check != 10 and nhs_number_is_valid(candidate + str(check)):
            return candidate + str(check)


def _seed_clients(app: AccordApplication, count: int, rng: random.Random) -> None:
    worker = app.authenticate(_practitioner_token(app))
    used: set[str] = set()
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
        for type_name, occurred_at, data in history(rng):
            app.record_fact(client_id, type_name, data, occurred_at, worker)


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
    modality = "pharmacological" if primary in ("opioids", "alcohol") else "psychosocial"
    add("treatment_episode_started", {"modality": modality, "substances": substances}, 3)
    if primary == "opioids":
        medication = rng.choice(["methadone", "buprenorphine", "buprenorphine_depot"])
        dose = 60.0 if medication == "methadone" else 12.0
        add("prescription_changed", {"medication": medication, "change": "started",
                                     "daily_dose_mg": dose, "supervised_consumption": True}, 2)
    if rng.random() < 0.35:
        add("household_updated", {"children_in_household": rng.randint(1, 4),
                                  "parental_responsibility": True,
                                  "pregnant": rng.random() < 0.08})
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
            "risk_level": rng.choice(["standard", "medium"])})
    if primary == "opioids" and rng.random() < 0.3:
        add("overdose_risk_recorded", {"risk_level": "high", "recent_overdose": rng.random() < 0.3,
                                       "naloxone_held": rng.random() < 0.6})
    add("clinical_note_added", {"text": "Reviewed progress against care plan; discussed harm "
                                        "reduction and next steps."}, 2)
    add("treatment_outcomes_profile", _top(rng, "review", primary), 14)
    if disengaging:
        add("treatment_episode_ended",
            {"modality": modality, "discharge_reason": "dropped_out"}, 21)
        add("discharged", {"reason": "dropped_out"})
    elif rng.random() < 0.3:
        add("treatment_episode_ended", {"modality": modality,
                                        "discharge_reason": "completed_drug_free"}, 30)
        add("discharged", {"reason": "completed_drug_free"})
    return facts


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
        },
    }


__all__ = ["Actor", "history", "seed"]
