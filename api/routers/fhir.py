"""For partner systems: the client's consent as a FHIR R4 Consent, out and in.

The GP's system and the mental health trust's EPR record consent too, in FHIR. The
export is a read of the client's consent like ``GET /v1/clients/{id}/consents`` (the
same guard, the same 404 for anyone but the agency that recorded it, the same access
record); the import records the consent through the same command as
``POST /v1/clients/{id}/consents`` (the same rules and guard), for the client the
resource names by NHS number among the caller's agency's own clients. The mapping and
its checks are ``consent.fhir``'s.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.access import AccessLog, returned_item
from api.deps import Access, App, ConsentGiver, ConsentReader, Views, ViewsCaughtUp
from api.errors import ERROR_STATUSES
from consent import fhir
from consent.fhir import Issue, PatientId
from domain.access import AccessAction
from domain.agencies import AgencyKind
from domain.application import AccordApplication, Actor
from domain.categories import DataCategory
from domain.errors import ClientNotFound, Conflict, NotFound
from domain.vocabulary import ConsentObtained, Purpose
from projections import queries
from projections.queries import ConsentRecord
from projections.views import AgencyViews

router = APIRouter(tags=["partner systems"])

FHIR_JSON = "application/fhir+json"


class FhirResponse(JSONResponse):
    """A FHIR resource, in FHIR's own JSON media type."""

    media_type = FHIR_JSON


# -- what the document says ------------------------------------------------------------------

_CODING = {"type": "object", "properties": {"system": {"type": "string"},
                                            "code": {"type": "string"},
                                            "display": {"type": "string"}}}
CONSENT_SCHEMA: dict[str, Any] = {
    "title": "FHIR R4 Consent",
    "description": "An HL7 FHIR R4 Consent resource (UK Core Consent profile); see the "
                   "README's FHIR Consent section for accord's codes",
    "type": "object",
    "required": ["resourceType", "status", "scope", "category"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Consent"]},
        "id": {"type": "string"},
        "status": {"type": "string", "enum": list(fhir.STATES)},
        "scope": {"type": "object", "properties": {"coding": {"type": "array",
                                                              "items": _CODING}}},
        "category": {"type": "array", "items": {"type": "object"}},
        "patient": {"type": "object"},
        "dateTime": {"type": "string"},
        "provision": {"type": "object"},
    },
}
OPERATION_OUTCOME_SCHEMA: dict[str, Any] = {
    "title": "FHIR OperationOutcome",
    "description": "Each problem, with the element it is about (a FHIRPath expression)",
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
        "issue": {"type": "array", "items": {
            "type": "object", "required": ["severity", "code"],
            "properties": {"severity": {"type": "string"}, "code": {"type": "string"},
                           "diagnostics": {"type": "string"},
                           "expression": {"type": "array", "items": {"type": "string"}}}}},
    },
}


def _accord_error(status_code: int, body: str = "ErrorBody") -> dict[str, Any]:
    """An error in accord's own JSON body (its schema is added by ``api.errors``)."""
    return {"description": ERROR_STATUSES[status_code], "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}}


def _either(status_code: int, body: str, fhir_meaning: str) -> dict[str, Any]:
    """An error that is an OperationOutcome when it is about the resource, and accord's
    JSON error otherwise (a bad ``min_position``, say)."""
    documented = _accord_error(status_code, body)
    documented["description"] = f"{fhir_meaning}; otherwise {ERROR_STATUSES[status_code]}"
    documented["content"][FHIR_JSON] = {"schema": OPERATION_OUTCOME_SCHEMA}
    return documented


# -- out -------------------------------------------------------------------------------------


@router.get(
    "/v1/clients/{client_id}/consents/{consent_id}/fhir", response_class=FhirResponse,
    responses={200: {"description": "the consent as a FHIR R4 Consent",
                     "content": {FHIR_JSON: {"schema": CONSENT_SCHEMA}}},
               **{s: _accord_error(s) for s in (403, 404, 503)}})
def export_consent(client_id: UUID, consent_id: UUID, app: App, access: Access,
                   actor: ConsentReader) -> Response:
    """One consent the caller's agency recorded for the client, as a FHIR R4 Consent
    (UK Core Consent profile): active, or inactive once withdrawn. The client is named by
    NHS number where the caller's agency registered them (by accord's client id
    otherwise). A read of the client's consents, recorded as one; another agency's
    consent, or an unknown one, is 404."""
    with access.reading(actor, AccessAction.CONSENTS, client_id=client_id,
                        purpose=None) as read:
        record = queries.consent(app, client_id, consent_id, actor)
        identity = queries.registered_identity(app, client_id, actor)
        shown = [returned_item(None, "consent", record.given.controller,
                               {"kind": "controller"})]
        if identity is not None:
            shown.insert(0, returned_item(None, "identity", actor.agency,
                                          {"kind": "controller"}))
        read.returned(shown)
    patient = (PatientId(fhir.NHS_NUMBER, identity.nhs_number) if identity is not None
               else PatientId(fhir.ACCORD_CLIENT, str(client_id)))
    return FhirResponse(_exported(app, record, patient))


def _exported(app: AccordApplication, record: ConsentRecord,
              patient: PatientId) -> dict[str, Any]:
    g = record.given
    terms = fhir.ConsentTerms(
        recipient_agency=g.recipient_agency,
        recipient_kind=AgencyKind(g.recipient_kind) if g.recipient_kind else None,
        categories=tuple(DataCategory(c) for c in g.categories),
        purposes=tuple(Purpose(p) for p in g.purposes),
        data_from=g.data_from, data_to=g.data_to, expires_at=g.expires_at,
        obtained=ConsentObtained(g.obtained))
    names = {agency.slug: agency.name for agency in app.agencies()}
    return fhir.export(fhir.RecordedConsent(g.consent_id, g.controller, terms, g.timestamp,
                                            record.withdrawn is None), patient, names)


# -- in --------------------------------------------------------------------------------------

_IMPORT_BODY = {"required": True, "content": {
    FHIR_JSON: {"schema": CONSENT_SCHEMA}, "application/json": {"schema": CONSENT_SCHEMA}}}


@router.post(
    "/v1/fhir/Consent", status_code=status.HTTP_201_CREATED, response_class=FhirResponse,
    openapi_extra={"requestBody": _IMPORT_BODY},
    responses={201: {"description": "recorded: the consent as ``GET .../fhir`` gives it, "
                                    "with its id; ``Location`` names that URL",
                     "content": {FHIR_JSON: {"schema": CONSENT_SCHEMA}},
                     "headers": {"Location": {"schema": {"type": "string"}}}},
               404: _either(404, "ErrorBody",
                            "no client of your agency has the patient's identifier (an "
                            "OperationOutcome, not-found)"),
               422: _either(422, "InvalidInputBody",
                            "the resource is not a Consent accord can record: an "
                            "OperationOutcome naming each problem"),
               **{s: _accord_error(s) for s in (403, 409, 503)}})
async def import_consent(request: Request, app: App, access: Access, views: Views,
                         actor: ConsentGiver, _: ViewsCaughtUp) -> Response:
    """Records a partner system's FHIR R4 Consent as the caller agency's consent, through
    the same command as ``POST /v1/clients/{id}/consents``.

    The client is the one the resource's ``patient.identifier`` names (NHS number, system
    ``https://fhir.nhs.uk/Id/nhs-number``) among the caller's agency's own clients: a
    client it holds no record of is 404 as an unknown one (an OperationOutcome, and an
    attempt on the access record). A resource accord cannot record faithfully (invalid,
    an R5 shape, a code with no accord meaning, a past expiry...) is 422 with an
    OperationOutcome naming each problem, and nothing is recorded."""
    body = await request.body()
    return await run_in_threadpool(_import, body, app, access, views, actor)


def _import(body: bytes, app: AccordApplication, access: AccessLog, views: AgencyViews,
            actor: Actor) -> Response:
    try:
        resource = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return _refused(422, [Issue("structure", "Consent", "the body is not JSON: send a "
                                    "FHIR R4 Consent as application/fhir+json")])
    directory = {agency.slug: agency.kind for agency in app.agencies()}
    read = fhir.read(resource, controller=actor.agency, agencies=directory, now=app.clock())
    if isinstance(read, list):
        return _refused(422, read)
    try:
        with access.attempting(actor, AccessAction.GIVE_CONSENT, client_ids=[],
                               detail="a FHIR Consent naming the client by identifier"):
            client_id = _own_client(app, views, read.patient, actor)
    except NotFound:
        return _refused(404, [Issue("not-found", "Consent.patient.identifier",
                                    "no client of your agency has this identifier")])
    terms = read.terms
    with access.attempting(actor, AccessAction.GIVE_CONSENT, client_ids=[client_id]):
        consent_id, _ = app.give_consent(
            client_id, recipient_agency=terms.recipient_agency,
            recipient_kind=terms.recipient_kind,
            categories=[c.value for c in terms.categories],
            purposes=[p.value for p in terms.purposes], data_from=terms.data_from,
            data_to=terms.data_to, expires_at=terms.expires_at,
            obtained=terms.obtained.value, by=actor,
        )
    # The answer is the consent just recorded, as the export gives it: nothing the caller
    # did not send but its id and the time it was recorded, so no read to record.
    record = queries.consent(app, client_id, consent_id, actor)
    return FhirResponse(
        _exported(app, record, read.patient), status_code=status.HTTP_201_CREATED,
        headers={"Location": f"/v1/clients/{client_id}/consents/{consent_id}/fhir"})


def _own_client(app: AccordApplication, views: AgencyViews, patient: PatientId,
                by: Actor) -> UUID:
    """The caller agency's own client the identifier names: the one it registered under
    the NHS number, else the one client with that number whose data it controls (it
    recorded facts about them). Any other client is ClientNotFound, as an unknown one."""
    if patient.system == fhir.ACCORD_CLIENT:
        client_id = UUID(patient.value)
        if not app.controls(client_id, by.agency):
            raise ClientNotFound()
        return client_id
    registered = app.client_registered_by(patient.value, by)
    if registered is not None:
        return registered
    fingerprint = app.match_keys(patient.value, None, None)
    controlled = [c for c in views.matching_clients(fingerprint)
                  if app.controls(c, by.agency)]
    if not controlled:
        raise ClientNotFound()
    if len(controlled) > 1:
        raise Conflict("more than one of your agency's clients has this NHS number; "
                       "record the consent with POST /v1/clients/{client_id}/consents")
    return controlled[0]


def _refused(status_code: int, issues: list[Issue]) -> Response:
    return FhirResponse(fhir.outcome(issues), status_code=status_code)
