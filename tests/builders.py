"""What the tests build their scenes from, in one place: a person, valid NHS numbers, the
agreement terms the partnership signs, the partnership of agencies and tokens, the calls
a keyworker, an IG lead or a safeguarding lead makes through the API, and the stand-ins
that fail if touched.

Fixtures are in the ``conftest.py`` files; everything a test imports is here, so one
scene is written once and every tier reads the same one. Importing this module opens no
database and starts nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from consent.state import LogState, NewFact, evolve
from domain.agencies import AgencyKind, Principal, Role
from domain.application import OPERATOR, TOKEN_PREFIX, AccordApplication
from domain.identity import Identity
from domain.vocabulary import Article6, Article9, Article10, LegalDuty

if TYPE_CHECKING:  # the API's types, for hints only: the unit tier never starts the API
    import httpx
    from fastapi.testclient import TestClient

    from api.bootstrap import Accord
    from projections.views import AgencyViews

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


# -- stand-ins -----------------------------------------------------------------------------------


class Untouchable:
    """Fails if used (a vault, an application, the views): a refusal by role must come
    before anything is looked up or done."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} was used before the role was checked")

