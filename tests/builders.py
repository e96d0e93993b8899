"""What the tests build their scenes from, in one place: the PostgreSQL they run on, a
person and valid NHS numbers, a realistic payload of every fact type, the agreement terms
the partnership signs, the partnership of agencies and tokens, what the log holds, the
calls a keyworker, an IG lead or a safeguarding lead makes through the API, emergency
access, alerts, the commissioner's outcome reports (``Story``), the request models the
API validates, and a stand-in that fails if touched.

Fixtures are in the ``conftest.py`` files; what more than one test file uses is here, so
a scene is written once and every tier reads the same one. Importing this module opens no
database and starts nothing.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import secrets
import threading
import time
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
import pytest
from pydantic import AwareDatetime, BaseModel, ValidationError

from consent.state import LogState, NewFact, evolve
from domain.agencies import AgencyKind, Principal, Role, role_fits
from domain.agreements import AgreementTerms
from domain.application import OPERATOR, TOKEN_PREFIX, AccordApplication, Actor
from domain.catalogue import CATALOGUE
from domain.identity import Identity
from domain.vocabulary import Article6, Article9, Article10, LegalDuty
from infra.settings import Settings
from projections.reports.measures import compute
from projections.reports.model import Period, ReportFact
from projections.reports.projection import OutcomeReports
from tests.kafka_broker import free_port

if TYPE_CHECKING:  # the API's types, for hints only: the unit tier never starts the API
    import httpx
    from fastapi.testclient import TestClient

    from api.bootstrap import Accord
    from projections.views import AgencyViews

# -- the PostgreSQL the tests run on ---------------------------------------------------------------

#: PostgreSQL on 127.0.0.1:5432, database ``test``, trust auth; each test gets a schema.
PG_URL = os.environ.get("ACCORD_TEST_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def postgres_available() -> str | None:
    """None if PostgreSQL answers, else why not."""
    try:
        with psycopg.connect(PG_URL.replace("+psycopg", ""), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


def require_postgres() -> None:
    """Skips the test when PostgreSQL does not answer; under ``CI=true`` fails it."""
    problem = postgres_available()
    if problem is not None:
        message = f"PostgreSQL at {PG_URL} is unreachable: {problem}"
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing service is a failure)")
        pytest.skip(message)


def drop_schema(schema: str) -> None:
    """Drops a test's own schema and everything in it."""
    with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- a person ----------------------------------------------------------------------------------

VALID_IDENTITY = {
    "given_name": "Ann",
    "family_name": "Example",
    "date_of_birth": "1985-04-12",
    "nhs_number": "943 476 5919",
    "postcode": "NR1 3QU",
}


def identity(**changes: Any) -> Identity:
    """``VALID_IDENTITY`` as the domain holds it, with ``changes``."""
    return Identity.model_validate({**VALID_IDENTITY, **changes})


def nhs_number(seq: int) -> str:
    """A valid NHS number in the 999 test range, different for each ``seq``."""
    for filler in "0123456789":
        body = f"999{seq:05d}{filler}"
        total = sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True))
        check = (11 - total % 11) % 11
        if check != 10:
            return body + str(check)
    raise AssertionError("unreachable: one filler in ten gives check digit 10 at most")


# -- facts ----------------------------------------------------------------------------------------

#: One realistic payload per fact type, every field given.
FACT_EXAMPLES: dict[str, dict[str, Any]] = {
    "demographics_recorded": {"sex": "female", "ethnicity": "N", "sexual_orientation":
                              "not_stated", "religion": "christian", "disability": "no",
                              "area": "E06000032"},
    "referral_received": {"source": "gp", "substances": ["opioids", "crack"]},
    "assessment_completed": {"assessment": "comprehensive", "substances": ["alcohol"],
                             "injecting": False},
    "treatment_episode_started": {"modality": "pharmacological", "substances": ["opioids"],
                                  "key_worker": "Sam Okafor"},
    "treatment_episode_ended": {"modality": "psychosocial",
                                "discharge_reason": "completed_drug_free"},
    "intervention_recorded": {"kind": "naloxone_supply", "sessions": 1},
    "prescription_changed": {"medication": "methadone", "change": "started",
                             "daily_dose_mg": 60.0, "supervised_consumption": True},
    "appointment_attended": {"appointment": "keywork"},
    "appointment_missed": {"appointment": "prescriber", "contacted_afterwards": True},
    "criminal_justice_status": {"order": "drug_rehabilitation_requirement", "status": "started",
                                "ends_on": "2027-03-31"},
    "domestic_abuse_risk_recorded": {"role": "victim", "risk_level": "high",
                                     "marac_referral": True},
    "domestic_abuse_incident_recorded": {"role": "victim", "children_present": True,
                                         "police_reference": "NP/2026/01234"},
    "mental_health_concern_recorded": {"concern": "anxiety", "risk_level": "medium",
                                       "in_mental_health_service": False},
    "self_harm_risk_recorded": {"risk_level": "medium", "recent_attempt": False},
    "overdose_risk_recorded": {"risk_level": "high", "recent_overdose": True,
                               "naloxone_held": True},
    "household_updated": {"children_in_household": 2, "parental_responsibility": True,
                          "pregnant": True, "due_date": "2027-01-15"},
    "child_safeguarding_concern_raised": {
        "concern": "parental_substance_use",
        "summary": "Children left unsupervised while parent intoxicated; school raised concern.",
        "children_affected": 2,
    },
    "child_protection_status_recorded": {"status": "child_protection_plan", "children": 2},
    "adult_safeguarding_concern_raised": {
        "concern": "financial_abuse",
        "summary": "Benefits taken by an acquaintance who supplies drugs.",
        "section_42_enquiry": True,
    },
    "housing_status_recorded": {"status": "temporary"},
    "employment_status_recorded": {"status": "volunteering"},
    "blood_borne_virus_test": {"virus": "hepatitis_c", "result": "negative"},
    "blood_borne_virus_vaccination": {"vaccine": "hepatitis_b", "dose": 2,
                                      "course_completed": False},
    "treatment_outcomes_profile": {
        "stage": "review",
        "substance_use": {"alcohol": 4, "opiates": 12, "crack": 3, "cocaine": 0,
                          "amphetamines": 0, "cannabis": 20, "other": 0},
        "injecting": {"days_injected": 5, "shared_equipment": False},
        "crime": {"shoplifting_days": 2, "selling_drugs_days": 0, "other_theft": False,
                  "assault_or_violence": False},
        "health_and_social_functioning": {
            "psychological_health": 9, "physical_health": 11, "quality_of_life": 8,
            "days_paid_work": 0, "days_education": 4, "acute_housing_problem": False,
            "at_risk_of_eviction": True,
        },
    },
    "care_plan_agreed": {"goals": ["reduce use", "stable housing"], "review_on": "2027-02-01"},
    "clinical_note_added": {"text": "Reviewed progress against care plan; discussed harm "
                                    "reduction and next steps."},
    "discharged": {"reason": "transferred"},
}


# -- agreement terms -----------------------------------------------------------------------------

HEALTH_PUBLIC_TASK = {"article_6": Article6.PUBLIC_TASK.value,
                      "article_9": Article9.SUBSTANTIAL_PUBLIC_INTEREST.value}


def police_terms(**changes: Any) -> dict[str, Any]:
    """The police see engagement and criminal-justice status, with consent."""
    return {
        "recipient": "police",
        "title": "Drug intervention: treatment engagement for offender management",
        "purposes": ["offender_management"],
        "categories": {"identity": ["given_name", "family_name"],
                       "treatment": ["appointment", "modality"],
                       "criminal_justice": ["order", "status"]},
        "lawful_basis": {**HEALTH_PUBLIC_TASK, "article_10": Article10.STATUTORY_PURPOSES.value},
        "consent_required": True,
        "valid_from": "2024-04-01", "valid_to": "2030-03-31", "review_on": "2027-03-31",
        "retention_days": 2190,
        **changes,
    }


def childrens_terms(**changes: Any) -> dict[str, Any]:
    """Children's services see safeguarding facts under a legal duty, without consent."""
    return {
        "recipient": "childrens",
        "title": "Safeguarding children: parents in treatment",
        "purposes": ["safeguarding_children"],
        "categories": {"safeguarding_children": ["children_in_household", "concern"],
                       "treatment": ["appointment"]},
        "lawful_basis": {"article_6": Article6.LEGAL_OBLIGATION.value,
                         "article_9": Article9.SUBSTANTIAL_PUBLIC_INTEREST.value,
                         "legal_duty": LegalDuty.CHILDREN_ACT_S47.value},
        "consent_required": False,
        "valid_from": "2024-04-01", "review_on": "2027-03-31", "retention_days": 2190,
        **changes,
    }


def housing_terms(recipient: str = "childrens",
                  title: str = "Housing status for care coordination") -> dict[str, Any]:
    """The smallest agreement: housing status for care coordination, no consent needed."""
    return {
        "recipient": recipient, "title": title, "purposes": ["care_coordination"],
        "categories": {"housing": ["status"]},
        "lawful_basis": {"article_6": "6(1)(e) public task"}, "consent_required": False,
        "valid_from": "2026-01-01", "review_on": "2027-01-01", "retention_days": 365,
    }


def commissioning_terms(categories: dict[str, list[str]], *,
                        consent: bool = False) -> dict[str, Any]:
    """The commissioner's agreement: these categories for commissioning, under public task
    and public health."""
    return {
        "recipient": "commissioner", "title": "Outcomes monitoring",
        "purposes": ["commissioning"], "categories": categories,
        "lawful_basis": {"article_6": Article6.PUBLIC_TASK.value,
                         "article_9": Article9.PUBLIC_HEALTH.value},
        "consent_required": consent, "valid_from": "2024-04-01", "review_on": "2027-01-01",
        "retention_days": 365,
    }


# -- the partnership under test ----------------------------------------------------------------

#: Two treatment providers (after a re-procurement there can be several) and the partners.
AGENCIES = {
    "tp": AgencyKind.TREATMENT_PROVIDER,
    "tp2": AgencyKind.TREATMENT_PROVIDER,
    "police": AgencyKind.POLICE,
    "childrens": AgencyKind.CHILDRENS_SERVICES,
    "commissioner": AgencyKind.COMMISSIONER,
}


@dataclass
class Partnership:
    """Agencies and one token per (agency, role) for tests."""

    accord: Accord
    tokens: dict[tuple[str, Role], str] = field(default_factory=dict)

    def token(self, agency: str, role: Role) -> str:
        return self.tokens[(agency, role)]

    def headers(self, agency: str, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(agency, role)}"}


def enrol_partnership(accord: Accord) -> Partnership:
    """Every agency of ``AGENCIES``, with one principal of every role in each (the
    unfitting ones as an old database may hold them, so tests show every route still
    refuses them)."""
    app = accord.app
    result = Partnership(accord)
    for slug, kind in AGENCIES.items():
        app.register_agency(slug, slug.title(), kind, OPERATOR)
        for role in Role:
            name = f"{slug} {role}"
            result.tokens[(slug, role)] = (
                app.add_principal(slug, role, name, OPERATOR).token if role_fits(kind, role)
                else enrol_unfitting(app, slug, role, name))
    return result


@contextmanager
def serving(accord: Accord) -> Iterator[str]:
    """A real uvicorn serving the app on a free loopback port, as `accord serve` runs;
    yields its base URL."""
    import uvicorn  # the unit tier, which imports this module, never serves

    from api.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(accord), host="127.0.0.1", port=port,
                            log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn stopped before it started")
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 30 s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "uvicorn did not shut down"


def enrol_unfitting(app: AccordApplication, agency: str, role: Role, name: str) -> str:
    """Enrols a principal whose role does not fit its agency's kind (a practitioner of the
    commissioner, a commissioner of a treatment provider), as a database from before
    ``role_fits`` may hold; no command can add one now. Returns its token."""
    secret = secrets.token_urlsafe(32)
    principal = Principal(agency=agency, role=role, name=name,
                          token_hash=hashlib.sha256(secret.encode()).hexdigest(),
                          added_by=OPERATOR.reference)
    enrolling = app.agency(agency)
    enrolling.enrol(principal.id)
    app.save(enrolling, principal)
    return f"{TOKEN_PREFIX}_{principal.id.hex}_{secret}"


# -- what the log holds --------------------------------------------------------------------------

ACCESS_TOPIC = "domain.access:AccessRecord.Recorded"


def _topics(accord: Accord) -> list[str]:
    recorder = accord.app.recorder
    topics: list[str] = []
    position = 0
    while True:
        batch = recorder.select_notifications(start=position, limit=1000,
                                              inclusive_of_start=False)
        if not batch:
            return topics
        topics.extend(n.topic for n in batch)
        position = batch[-1].id


def changes(accord: Accord) -> int:
    """How many events other than access records the log holds. Reads are recorded by
    design, so "a refused request changes nothing" means this count stays the same."""
    return sum(1 for topic in _topics(accord) if topic != ACCESS_TOPIC)


def access_records(accord: Accord) -> int:
    return sum(1 for topic in _topics(accord) if topic == ACCESS_TOPIC)


def events(accord: Accord, topic: str) -> list[Any]:
    """The events of one topic on the log, as the library decodes them."""
    found = []
    position = 0
    while batch := accord.app.recorder.select_notifications(
            start=position, limit=1000, topics=[topic], inclusive_of_start=False):
        found.extend(accord.app.mapper.to_domain_event(n) for n in batch)
        position = batch[-1].id
    return found


def policy_state(partnership: Partnership) -> tuple[LogState, list[NewFact]]:
    """The policy state after the whole log, and its facts, through ``evolve``."""
    app = partnership.accord.app
    state, facts = LogState(), []
    for notification in app.recorder.select_notifications(start=1, limit=1_000_000):
        effect = evolve(state, app.mapper.to_domain_event(notification), notification.id)
        if isinstance(effect, NewFact):
            facts.append(effect)
    return state, facts


# -- through the API -----------------------------------------------------------------------------


def hdr(partnership: Partnership, agency: str, role: Role = Role.PRACTITIONER) -> dict[str, str]:
    return partnership.headers(agency, role)


def assert_error_shape(response: httpx.Response) -> dict[str, Any]:
    """accord's error body: ``{"detail", "errors": [{"field", "message"}]}``."""
    body: dict[str, Any] = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    for item in body.get("errors", []):
        assert set(item) == {"field", "message"} and item["message"]
    return body


def fact(type_name: str = "appointment_attended", data: dict[str, Any] | None = None,
         occurred_at: str = "2026-01-05T09:30:00Z") -> dict[str, Any]:
    return {"type": type_name, "occurred_at": occurred_at,
            "data": {"appointment": "keywork"} if data is None else data}


def register(api: TestClient, partnership: Partnership, agency: str = "tp",
             identity: dict[str, str] | None = None) -> str:
    response = api.post("/v1/clients", json={"identity": identity or VALID_IDENTITY},
                        headers=partnership.headers(agency, Role.PRACTITIONER))
    assert response.status_code == 201, response.text
    return str(response.json()["client_id"])


def registered(api: TestClient, partnership: Partnership, nhs: str = "9434765919") -> str:
    """The treatment provider's client with this NHS number (``VALID_IDENTITY`` else)."""
    return register(api, partnership, identity={**VALID_IDENTITY, "nhs_number": nhs})


def post_fact(api: TestClient, partnership: Partnership, client_id: str,
              body: dict[str, Any], agency: str = "tp") -> int:
    response = api.post(f"/v1/clients/{client_id}/events", json=body,
                        headers=hdr(partnership, agency))
    assert response.status_code == 201, response.text
    return int(response.json()["position"])


def agree(api: TestClient, partnership: Partnership, terms: dict[str, Any],
          controller: str = "tp") -> str:
    """Proposes and has both parties' IG leads approve; returns the agreement id."""
    proposed = api.post("/v1/agreements", json=terms, headers=hdr(partnership, controller,
                                                                  Role.IG_LEAD))
    assert proposed.status_code == 201, proposed.text
    assert proposed.json()["status"] == "proposed"
    agreement_id = str(proposed.json()["agreement_id"])
    for party in (controller, terms["recipient"]):
        approved = api.post(f"/v1/agreements/{agreement_id}/approve",
                            headers=hdr(partnership, party, Role.IG_LEAD))
        assert approved.status_code == 200, approved.text
    assert approved.json()["status"] in ("active", "out_of_date")
    return agreement_id


def consent(api: TestClient, partnership: Partnership, client_id: str,
            **changes: Any) -> dict[str, Any]:
    body = {"recipient_agency": "police", "categories": ["identity", "treatment",
                                                         "criminal_justice"],
            "purposes": ["offender_management"], "obtained": "written", **changes}
    response = api.post(f"/v1/clients/{client_id}/consents", json=body,
                        headers=hdr(partnership, "tp"))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def fhir_consent(nhs: str, *, recipient: str = "police",
                 categories: tuple[str, ...] = ("housing",),
                 purposes: tuple[str, ...] = ("COC",), **changes: Any) -> dict[str, Any]:
    """A FHIR R4 Consent a partner system could send for the client with NHS number
    ``nhs``: the recipient agency, accord's categories as classes and v3 ActReason
    purposes in one permit, written consent, no expiry; ``changes`` replace top-level
    elements (``POST /v1/fhir/Consent``, README "FHIR Consent")."""
    from consent import fhir  # only the tests that send FHIR need the library

    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "extension": [{"url": fhir.OBTAINED, "valueCode": "written"}],
        "status": "active",
        "scope": {"coding": [{"system": fhir.CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": fhir.LOINC, "code": "59284-0"}]}],
        "patient": {"identifier": {"system": fhir.NHS_NUMBER, "value": nhs}},
        "dateTime": "2026-01-05T09:30:00Z",
        "policyRule": {"coding": [{"system": fhir.ACT_CODE, "code": "OPTIN"}]},
        "provision": {"type": "permit", "actor": [{
            "role": {"coding": [{"system": fhir.PARTICIPATION, "code": "PRCP"}]},
            "reference": {"identifier": {"system": fhir.ACCORD_AGENCY, "value": recipient}}}],
            "purpose": [{"system": fhir.ACT_REASON, "code": code} for code in purposes],
            "class": [{"system": fhir.ACCORD_CATEGORY, "code": code} for code in categories]},
    }
    resource.update(changes)
    return resource


def view(api: TestClient, partnership: Partnership, client_id: str, agency: str,
         purpose: str, position: int | None = None, role: Role = Role.PRACTITIONER) -> Any:
    params: dict[str, Any] = {"purpose": purpose}
    if position is not None:
        params["min_position"] = position
    return api.get(f"/v1/clients/{client_id}/view", params=params,
                   headers=hdr(partnership, agency, role))


def agency_views(api: TestClient) -> AgencyViews:
    """The agency views the app behind ``api`` runs."""
    views: AgencyViews = api.app.state.projections.views  # type: ignore[attr-defined]
    return views


# -- emergency access ----------------------------------------------------------------------------

JUSTIFICATION = "Found unconscious in custody; suspected opioid overdose, need treatment history."


def break_glass(api: TestClient, partnership: Partnership, client_id: str,
                agency: str = "police", role: Role = Role.PRACTITIONER,
                **changes: Any) -> Any:
    body = {"purpose": "safeguarding_adults", "justification": JUSTIFICATION, "minutes": 60,
            **changes}
    return api.post(f"/v1/clients/{client_id}/emergency-access", json=body,
                    headers=hdr(partnership, agency, role))


def granted(api: TestClient, partnership: Partnership, client_id: str,
            agency: str = "police", **changes: Any) -> dict[str, Any]:
    response = break_glass(api, partnership, client_id, agency, **changes)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


# -- safeguarding alerts -------------------------------------------------------------------------

RAISED = "domain.alerts:Alert.Raised"
WITHHELD = "domain.alerts:AlertWithheld.Recorded"
SAFEGUARDING = Role.SAFEGUARDING
NOW = datetime.now(UTC).replace(microsecond=0)


def at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def settle(api: TestClient) -> None:
    """Runs the projections now (rules, then the inbox), rather than waiting for a poll."""
    api.app.state.projections.catch_up()  # type: ignore[attr-defined]


def inbox(api: TestClient, partnership: Partnership, agency: str = "childrens",
          **params: str) -> list[dict[str, Any]]:
    settle(api)
    response = api.get("/v1/alerts", params=params, headers=hdr(partnership, agency,
                                                                SAFEGUARDING))
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def concern(occurred_at: str | None = None) -> dict[str, Any]:
    return fact("child_safeguarding_concern_raised",
                {"concern": "neglect", "summary": "Children left alone overnight.",
                 "children_affected": 2}, occurred_at or at(1))


def concern_raised(api: TestClient, partnership: Partnership) -> str:
    """A legal-duty agreement with children's services, and a client of the treatment
    provider with a child safeguarding concern recorded; returns the client's id."""
    agree(api, partnership, childrens_terms())
    client_id = registered(api, partnership)
    post_fact(api, partnership, client_id, concern())
    return client_id


# -- the commissioner's outcome reports -----------------------------------------------------------

COMMISSIONER = "commissioner"
#: What the commissioner's agreement shares for commissioning (each category's fields).
SHARED = {
    "treatment": ["modality", "substances", "discharge_reason", "reason"],
    "outcomes": ["stage", "crime", "health_and_social_functioning"],
    "demographics": ["sex", "ethnicity", "area"],
    "safeguarding_children": ["children_in_household", "parental_responsibility"],
}
PERIOD = Period(date(2025, 4, 1), date(2026, 3, 31))
#: Born 1985-04-12 (VALID_IDENTITY), so 40 on these days.
STARTED = datetime(2025, 6, 2, 9, tzinfo=UTC)
#: The NHS numbers of a Story's clients, in the order they are registered.
NHS_NUMBERS = tuple(nhs_number(seq) for seq in range(8))


class Story:
    """A small partnership: the treatment providers' clients and their commissioning."""

    def __init__(self, accord: Accord, partnership: Partnership) -> None:
        self.accord = accord
        self.app = accord.app
        self.partnership = partnership
        self.reports = accord.find(OutcomeReports)
        self.clients: list[UUID] = []

    def actor(self, agency: str, role: Role = Role.PRACTITIONER) -> Actor:
        return self.app.authenticate(self.partnership.token(agency, role))

    def agree(self, controller: str, categories: dict[str, list[str]], *,
              consent: bool = False) -> UUID:
        proposed = self.app.propose_agreement(
            AgreementTerms.model_validate(commissioning_terms(categories, consent=consent)),
            self.actor(controller, Role.IG_LEAD))
        agreement_id = UUID(str(proposed.id))
        for party in (controller, COMMISSIONER):
            self.app.approve_agreement(agreement_id, self.actor(party, Role.IG_LEAD))
        return agreement_id

    def client(self, provider: str = "tp", *, born: str = "1985-04-12") -> UUID:
        identity = Identity.model_validate({
            **VALID_IDENTITY, "date_of_birth": born,
            "nhs_number": NHS_NUMBERS[len(self.clients)]})
        client_id, _ = self.app.register_client(identity, self.actor(provider))
        self.clients.append(client_id)
        return client_id

    def fact(self, client_id: UUID, type_name: str, data: dict[str, Any],
             when: datetime = STARTED, provider: str = "tp") -> int:
        return self.app.record_fact(client_id, type_name, data, when, self.actor(provider))

    def episode(self, client_id: UUID, provider: str = "tp", *, ended: str | None = None,
                when: datetime = STARTED, days: int = 100) -> None:
        self.fact(client_id, "treatment_episode_started",
                  {"modality": "psychosocial", "substances": ["alcohol"]}, when, provider)
        if ended:
            self.fact(client_id, "treatment_episode_ended",
                      {"modality": "psychosocial", "discharge_reason": ended},
                      when + timedelta(days=days), provider)

    def catch_up(self) -> OutcomeReports:
        self.accord.catch_up()
        return self.reports

    def in_treatment(self) -> int:
        snapshot = self.catch_up().snapshot(COMMISSIONER)
        by_client: dict[str, list[ReportFact]] = {}
        for fact in snapshot.facts:
            by_client.setdefault(fact.client, []).append(fact)
        value = compute(by_client, PERIOD, None, measures=["in_treatment"])["in_treatment"].value
        assert isinstance(value, int)
        return value


# -- request models -------------------------------------------------------------------------------


def _leaves(annotation: Any) -> Iterator[Any]:
    """The types a field's annotation accepts, through Annotated, unions and containers."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _leaves(typing.get_args(annotation)[0])
    elif origin in (typing.Union, types.UnionType, list):
        for arg in typing.get_args(annotation):
            yield from _leaves(arg)
    elif origin is dict:  # the values; keys are enums or validated by the payload models
        yield from _leaves(typing.get_args(annotation)[1])
    else:
        yield annotation


def _placed(annotation: Any, value: Any) -> Any:
    """``value`` where the annotation expects its leaf: inside a list, as a dict's value
    (under a valid key), or as is."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _placed(typing.get_args(annotation)[0], value)
    if origin in (typing.Union, types.UnionType):
        arg = next(a for a in typing.get_args(annotation) if a is not type(None))
        return _placed(arg, value)
    if origin is list:
        return [_placed(typing.get_args(annotation)[0], value)]
    if origin is dict:
        key_type, value_type = typing.get_args(annotation)
        key = next(iter(key_type)).value if isinstance(key_type, enum.EnumMeta) else "key"
        return {key: _placed(value_type, value)}
    return value


def request_models() -> set[type[BaseModel]]:
    """Every model a request body is validated with: each route's body, the models nested
    in them, and every fact type's payload (the body's ``data``)."""
    import fastapi.routing  # here, not at the top: only this builder needs the API

    from api.app import create_app

    app = create_app(settings=Settings(database_url="sqlite:////nonexistent/unused.db",
                                       key_file=Path("/nonexistent/unused.key")))
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    found: set[type[BaseModel]] = {t.schema for t in CATALOGUE.values()}
    for route in iterate(app.routes) if iterate else app.routes:
        body = getattr(getattr(route, "route", route), "body_field", None)
        if body is not None:
            found.add(body.field_info.annotation)
    pending = list(found)
    while pending:
        for declared in pending.pop().model_fields.values():
            for leaf in _leaves(declared.annotation):
                if isinstance(leaf, type) and issubclass(leaf, BaseModel) and leaf not in found:
                    found.add(leaf)
                    pending.append(leaf)
    return found


def fields_of(kind: type) -> list[tuple[type[BaseModel], str, Any]]:
    """(model, field, annotation) for each request field that accepts ``kind`` (``date``:
    dates and times)."""
    moments = (date, datetime, AwareDatetime)
    return sorted(
        ((model, name, field.annotation) for model in request_models()
         for name, field in model.model_fields.items()
         if any(leaf is kind or (kind is date and leaf in moments)
                for leaf in _leaves(field.annotation))),
        key=lambda entry: (entry[0].__name__, entry[1]))


def refuses(model: type[BaseModel], name: str, annotation: Any, value: Any) -> bool:
    """Whether validating ``value`` in field ``name`` fails on that field (the other
    fields, missing here, fail too; they do not count)."""
    try:
        model.model_validate({name: _placed(annotation, value)})
    except ValidationError as exc:
        return any(error["loc"][:1] == (name,) for error in exc.errors())
    return False


# -- stand-ins -----------------------------------------------------------------------------------


class Untouchable:
    """Fails if used (a vault, an application, the views): a refusal by role must come
    before anything is looked up or done."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} was used before the role was checked")



# -- the web application, without a browser -------------------------------------------------

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_in(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = _CSRF_FIELD.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def ui_sign_in(client: TestClient, token: str) -> str:
    """Signs ``client`` (its own cookie jar) in through the sign-in form; returns the
    session's CSRF token, which every form it posts must carry."""
    form = client.get("/ui/sign-in")
    answer = client.post("/ui/sign-in", data={"token": token, "csrf_token": csrf_in(form.text),
                                              "next_path": "/ui"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return csrf_in(client.get("/ui").text)


def browser_of(client: TestClient) -> TestClient:
    """Another browser on the same running app: its own cookies, the same system."""
    from fastapi.testclient import TestClient

    other = TestClient(client.app)
    other.event_hooks["response"] = list(client.event_hooks["response"])
    return other
