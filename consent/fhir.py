"""accord's consent as a FHIR R4 ``Consent``, and a partner system's R4 ``Consent`` as
accord's consent terms.

NHS and social care systems record consent too (the GP, the mental health trust's EPR),
and they speak FHIR. This module is the pure mapping between the two, with the checks
the FHIR library leaves to its user: ``fhir.resources``' R4B models parse and write the
resource (their data types are R4's: R4B changed nothing in Consent), but they check
neither codes nor the resource's invariants ppc-1 to ppc-5, and the package's default
models are R5, whose Consent has another shape (``decision``, ``grantee``,
``controller``...). Nothing here reads the log or the clock: the caller passes the
directory of agencies and the time.

Export (``export``): one permit per data category, nested under a root ``deny``
("nothing but what follows"). Each names the recipient as actor (role PRCP, by accord's
agency identifier, or by agency kind for "every agency of that kind"), the purposes, the
category as ``class`` in accord's category code system and, for the sensitive
categories, as an HL7 v3 sensitivity ``securityLabel``; the data period as
``dataPeriod`` and the expiry as ``period``. One permit per category, because FHIR reads
a provision's elements together (class AND label): one provision listing a labelled
and an unlabelled category would cover neither whole.

Import (``read``): every problem with a resource becomes one ``Issue`` naming the
element (a FHIRPath ``expression``), so a partner sees all of them at once. A resource
is accepted when it states, unambiguously, what accord records: one recipient, the
purposes and categories, the data period and expiry, how consent was obtained, for a
client identified by NHS number. Anything it cannot record faithfully (an exception
that withholds part of it, an opt-out, a code with no accord meaning) is refused with
``not-supported`` rather than read loosely: a consent must not be read as wider than
the client gave.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fhir.resources.R4B.consent import Consent, ConsentProvision, ConsentProvisionActor
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.reference import Reference
from pydantic import ValidationError

from domain.agencies import AgencyKind
from domain.categories import DataCategory
from domain.identity import nhs_number_is_valid, normalise_nhs_number
from domain.vocabulary import ConsentObtained, Purpose

# -- the systems and codes -------------------------------------------------------------------

#: The profile every exported Consent claims.
UK_CORE_CONSENT = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Consent"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
LOINC = "http://loinc.org"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
#: accord's own systems, in the namespace the project already names agencies in.
ACCORD = "https://accord.invalid/fhir"
ACCORD_CATEGORY = f"{ACCORD}/CodeSystem/data-category"
ACCORD_PURPOSE = f"{ACCORD}/CodeSystem/purpose"
ACCORD_AGENCY_KIND = f"{ACCORD}/CodeSystem/agency-kind"
ACCORD_AGENCY = f"{ACCORD}/Id/agency"
ACCORD_CLIENT = f"{ACCORD}/Id/client"
ACCORD_CONSENT = f"{ACCORD}/Id/consent"
#: How the client's consent was obtained (written, verbal, electronic): accord records it
#: with every consent, and R4 Consent has no element for it.
OBTAINED = f"{ACCORD}/StructureDefinition/consent-obtained"

#: R4's ConsentState (required binding).
STATES = ("draft", "proposed", "active", "rejected", "inactive", "entered-in-error")
#: The scopes ppc-2 to ppc-5 are about: each needs a patient.
SCOPES_NEEDING_A_PATIENT = {"ppc-2": "patient-privacy", "ppc-3": "research",
                            "ppc-4": "adr", "ppc-5": "treatment"}
SCOPE_NAMES = {"patient-privacy": "Privacy Consent", "research": "Research",
               "adr": "Advanced Care Directive", "treatment": "Treatment"}

#: Each purpose as the closest HL7 v3 ActReason (PurposeOfUse) code. CAREMGT ("care
#: management") explicitly excludes care coordination; COC is coordination of care.
#: v3 has no safeguarding code: THREAT ("to prevent injury or disease to living subjects
#: who may be the target of violence") is the nearest, for children and adults alike,
#: so those two are told apart by accord's own purpose code, which every purpose also
#: carries. Offender management is a statutory function of government (GOV);
#: commissioning a drug and alcohol service is a public health function (PUBHLTH).
PURPOSE_CODES: Mapping[Purpose, tuple[str, str]] = {
    Purpose.DIRECT_CARE: ("TREAT", "treatment"),
    Purpose.CARE_COORDINATION: ("COC", "coordination of care"),
    Purpose.SAFEGUARDING_CHILDREN: ("THREAT", "threat"),
    Purpose.SAFEGUARDING_ADULTS: ("THREAT", "threat"),
    Purpose.OFFENDER_MANAGEMENT: ("GOV", "government"),
    Purpose.COMMISSIONING: ("PUBHLTH", "public health"),
}

#: The sensitive categories' HL7 v3 ActCode information sensitivity labels; every other
#: category is a ``class`` in accord's category system only.
SENSITIVITY: Mapping[DataCategory, tuple[str, str]] = {
    DataCategory.TREATMENT: ("ETH", "substance abuse information sensitivity"),
    DataCategory.PRESCRIBING: ("ETH", "substance abuse information sensitivity"),
    DataCategory.DOMESTIC_ABUSE: (
        "SDV", "sexual assault, abuse, or domestic violence information sensitivity"),
    DataCategory.MENTAL_HEALTH: ("PSY", "psychiatry disorder information sensitivity"),
}

#: The categories that say a Consent is about sharing information.
PRIVACY_CATEGORIES = {(LOINC, "59284-0"), (LOINC, "64292-6"), (ACT_CODE, "IDSCL"),
                      (ACT_CODE, "INFA"), (ACT_CODE, "INFAO"), (ACT_CODE, "INFASO")}
#: The actor roles that name who receives the data, and the custodian (the controller).
RECIPIENT_ROLES = {"PRCP", "IRCP"}
CUSTODIAN_ROLE = "CST"
#: Actions a consent to share covers.
SHARING_ACTIONS = {"access", "use", "disclose"}

#: Elements of an R5 Consent (and what R4 says instead).
R5_ELEMENTS = {
    "decision": "provision.type", "grantor": "performer", "grantee": "provision.actor",
    "manager": "organization", "controller": "organization", "subject": "patient",
    "date": "dateTime", "period": "provision.period", "regulatoryBasis": "policy",
    "policyBasis": "policy", "policyText": "policy",
}

#: Partial dates and times as FHIR writes them (the library keeps them as text).
_YEAR, _YEAR_MONTH = re.compile(r"[0-9]{4}"), re.compile(r"([0-9]{4})-([0-9]{2})")
#: Where a date without a time ends: the partnership is in England.
LOCAL = ZoneInfo("Europe/London")
#: How far ahead of the server clock a consent's dateTime may be (clock skew).
FUTURE_TOLERANCE = timedelta(minutes=5)


def kind_label(kind: AgencyKind) -> str:
    return f"every {kind.value.replace('_', ' ')} agency of the partnership"


# -- what is exchanged -----------------------------------------------------------------------


@dataclass(frozen=True)
class PatientId:
    """The client as the resource names them: by NHS number (``system`` NHS_NUMBER), or,
    for an agency that did not register the client (and so holds no NHS number), by
    accord's client id (``system`` ACCORD_CLIENT)."""

    system: str
    value: str


@dataclass(frozen=True)
class ConsentTerms:
    """What an accord consent says, as ``POST /v1/clients/{id}/consents`` takes it."""

    recipient_agency: str | None
    recipient_kind: AgencyKind | None
    categories: tuple[DataCategory, ...]
    purposes: tuple[Purpose, ...]
    data_from: date | None
    data_to: date | None
    expires_at: datetime | None
    obtained: ConsentObtained


@dataclass(frozen=True)
class RecordedConsent:
    """A consent as accord holds it, for the export."""

    consent_id: UUID
    controller: str
    terms: ConsentTerms
    given_at: datetime
    active: bool


@dataclass(frozen=True)
class Issue:
    """One problem with a resource: an OperationOutcome issue (severity error)."""

    code: str
    expression: str
    diagnostics: str


@dataclass(frozen=True)
class ImportedConsent:
    patient: PatientId
    terms: ConsentTerms


# -- export ----------------------------------------------------------------------------------


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def _agency_ref(slug: str, names: Mapping[str, str]) -> dict[str, Any]:
    return {"type": "Organization", "identifier": {"system": ACCORD_AGENCY, "value": slug},
            **({"display": names[slug]} if slug in names else {})}


def _label(value: str) -> str:
    return value.replace("_", " ")


def export(consent: RecordedConsent, patient: PatientId,
           agency_names: Mapping[str, str]) -> dict[str, Any]:
    """The consent as a FHIR R4 Consent (JSON), claiming the UK Core Consent profile.

    ``status`` is active, or inactive once withdrawn; the client is named by identifier
    only (no display, no name). ``agency_names`` gives the organisations' displays."""
    terms = consent.terms
    patient_ref = {"type": "Patient",
                   "identifier": {"system": patient.system, "value": patient.value}}
    if terms.recipient_agency is not None:
        recipient = _agency_ref(terms.recipient_agency, agency_names)
    else:
        assert terms.recipient_kind is not None
        recipient = {"type": "Organization",
                     "identifier": {"system": ACCORD_AGENCY_KIND,
                                    "value": terms.recipient_kind.value},
                     "display": kind_label(terms.recipient_kind)}
    purposes = [coding for purpose in terms.purposes for coding in (
        _coding(ACT_REASON, *PURPOSE_CODES[purpose]),
        _coding(ACCORD_PURPOSE, purpose.value, _label(purpose.value)))]
    data_period = {k: v.isoformat() for k, v in (("start", terms.data_from),
                                                  ("end", terms.data_to)) if v is not None}
    permits = []
    for category in terms.categories:
        permit: dict[str, Any] = {
            "type": "permit",
            "actor": [{"role": {"coding": [_coding(PARTICIPATION, "PRCP",
                                                   "primary information recipient")]},
                       "reference": recipient}],
            "action": [{"coding": [_coding(CONSENT_ACTION, "disclose", "Disclose")]}],
            "purpose": purposes,
            "class": [_coding(ACCORD_CATEGORY, category.value, _label(category.value))],
        }
        if category in SENSITIVITY:
            permit["securityLabel"] = [_coding(ACT_CODE, *SENSITIVITY[category])]
        if data_period:
            permit["dataPeriod"] = data_period
        if terms.expires_at is not None:
            permit["period"] = {"end": terms.expires_at.isoformat()}
        permits.append(permit)
    resource = {
        "resourceType": "Consent",
        "id": str(consent.consent_id),
        "meta": {"profile": [UK_CORE_CONSENT]},
        "extension": [{"url": OBTAINED, "valueCode": terms.obtained.value}],
        "identifier": [{"system": ACCORD_CONSENT, "value": str(consent.consent_id)}],
        "status": "active" if consent.active else "inactive",
        "scope": {"coding": [_coding(CONSENT_SCOPE, "patient-privacy", "Privacy Consent")]},
        "category": [{"coding": [_coding(LOINC, "59284-0", "Patient Consent")]}],
        "patient": patient_ref,
        "dateTime": consent.given_at.isoformat(),
        "performer": [patient_ref],
        "organization": [_agency_ref(consent.controller, agency_names)],
        "policyRule": {"coding": [_coding(ACT_CODE, "OPTIN", "opt-in")]},
        "provision": {"type": "deny", "provision": permits},
    }
    # Through the library's R4B model, so that what leaves is what it accepts.
    written: dict[str, Any] = Consent.model_validate(resource).model_dump(
        mode="json", exclude_none=True)
    return written


def outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """A FHIR OperationOutcome naming each problem."""
    body = {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": i.code, "diagnostics": i.diagnostics,
                       "expression": [i.expression]} for i in issues]}
    written: dict[str, Any] = OperationOutcome.model_validate(body).model_dump(
        mode="json", exclude_none=True)
    return written


# -- import ----------------------------------------------------------------------------------


def read(resource: Any, *, controller: str, agencies: Mapping[str, AgencyKind],
         now: datetime) -> ImportedConsent | list[Issue]:
    """A partner's FHIR R4 Consent as accord's consent terms, or every problem with it.

    ``controller`` is the caller's agency (whose data the consent covers), ``agencies``
    the directory (slug to kind), ``now`` the time the expiry and ``dateTime`` are
    judged against."""
    return _Reader(controller, agencies, now).read(resource)


@dataclass
class _Permit:
    path: str
    provision: ConsentProvision
    inherited: ConsentProvision | None


@dataclass
class _Reader:
    controller: str
    agencies: Mapping[str, AgencyKind]
    now: datetime
    issues: list[Issue] = field(default_factory=list)
    #: Elements the library refused (or that were taken out): not judged again.
    broken: set[str] = field(default_factory=set)

    def damaged(self, expression: str) -> bool:
        """Whether the library refused something in or under this element."""
        return any(_within(b, expression) for b in self.broken)

    def problem(self, code: str, expression: str, diagnostics: str) -> None:
        if any(_within(expression, b) for b in self.broken):
            return
        if all((i.code, i.expression, i.diagnostics) != (code, expression, diagnostics)
               for i in self.issues):
            self.issues.append(Issue(code, expression, diagnostics))

    def read(self, resource: Any) -> ImportedConsent | list[Issue]:
        if not isinstance(resource, dict):
            return [Issue("structure", "Consent", "the body must be one FHIR resource, a "
                                                  "JSON object")]
        if resource.get("resourceType") != "Consent":
            return [Issue("invalid", "Consent.resourceType",
                          f"resourceType must be Consent, not {resource.get('resourceType')!r}")]
        data = copy.deepcopy(resource)
        self._nulls(data, [])
        _sweep(data)
        self._r5(data)
        consent = self._parse(data)
        if consent is None:
            return self.issues
        patient = self._consent(consent)
        terms = self._terms(consent)
        if self.issues or patient is None or terms is None:
            return self.issues
        return ImportedConsent(patient, terms)

    # -- the resource's shape --------------------------------------------------------------

    def _nulls(self, data: Any, loc: list[Any]) -> None:
        """JSON null is no FHIR value (an absent element is left out): each is named and
        taken out, so the library never stands None in for a required element."""
        items = (data.items() if isinstance(data, dict)
                 else enumerate(data) if isinstance(data, list) else ())
        for key, value in list(items):
            if value is None:
                expression = _expression([*loc, key])
                self.problem("structure", expression,
                             "null is not a FHIR value: leave the element out")
                self.broken.add(expression)
                _take_out(data, [key])
            else:
                self._nulls(value, [*loc, key])

    def _r5(self, data: dict[str, Any]) -> None:
        """R5 elements are named as such (and taken out, so the R4 checks still run)."""
        for name, instead in R5_ELEMENTS.items():
            if name in data:
                del data[name]
                self.problem("not-supported", f"Consent.{name}",
                             f"Consent.{name} is FHIR R5; accord takes an R4 Consent "
                             f"(R4 says this with {instead})")
                self.broken.add(f"Consent.{name}")
        if isinstance(data.get("provision"), list):
            del data["provision"]
            self.problem("not-supported", "Consent.provision",
                         "Consent.provision is a list, as in FHIR R5; in R4 it is one "
                         "provision, with nested rules in provision.provision")
            self.broken.add("Consent.provision")
        if data.get("status") == "not-done":
            data.pop("status")
            self.problem("code-invalid", "Consent.status",
                         "status 'not-done' is FHIR R5; R4's are " + ", ".join(STATES))
            self.broken.add("Consent.status")

    def _parse(self, data: dict[str, Any]) -> Consent | None:
        """The R4B model of what can be read: each element the library refuses is an issue
        and is taken out (a required one is stood in for), until the rest parses."""
        stand_ins = {"scope": {}, "category": [{}], "status": "unknown"}
        for _ in range(100):
            try:
                return Consent.model_validate(data)
            except ValidationError as refused:
                errors = refused.errors()
            for error in errors:
                loc = [part for part in error["loc"] if part != "root"]
                if not loc:
                    self.problem("structure", "Consent", error["msg"])
                    return None
                expression = _expression(loc)
                code = {"missing": "required", "extra_forbidden": "structure",
                        "model_field_validation.missing": "required",
                        "model_validation_format": "structure"}.get(error["type"], "value")
                message = str(error["msg"]).removeprefix("Value error, ")
                if error["type"] == "extra_forbidden":
                    message = f"{expression} is not an element of an R4 Consent"
                elif code == "required":
                    message = f"{expression} is required"
                elif "DateTime" in message or "Date value" in message:
                    message = ("is not a FHIR date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD, or "
                               "YYYY-MM-DDThh:mm:ss with a time zone)")
                self.problem(code, expression, message)
                self.broken.add(expression)
                if len(loc) == 1 and loc[0] in stand_ins and code == "required":
                    data[str(loc[0])] = copy.deepcopy(stand_ins[str(loc[0])])
                elif code == "required":
                    _take_out(data, loc[:-1])  # the element that lacks a required part
                    self.broken.add(_expression(loc[:-1]))
                else:
                    _take_out(data, loc)
            _sweep(data)
        self.problem("structure", "Consent", "the resource could not be read")
        return None

    # -- the resource as a whole -----------------------------------------------------------

    def _consent(self, c: Consent) -> PatientId | None:
        """Status, scope, category, the invariants, the patient, the organisation."""
        for element, what in (("implicitRules", "implicit rules"),
                              ("modifierExtension", "modifier extensions")):
            if getattr(c, element):
                self.problem("not-supported", f"Consent.{element}",
                             f"accord cannot honour {what} it does not know")
        if c.status not in STATES:
            self.problem("code-invalid", "Consent.status",
                         f"status {c.status!r} is not an R4 ConsentState: "
                         + ", ".join(STATES))
        elif c.status != "active":
            self.problem("not-supported", "Consent.status",
                         f"accord records a consent in force (active), not a {c.status} one")
        scopes = {(cd.system, cd.code) for cd in (c.scope.coding or [])}
        if (CONSENT_SCOPE, "patient-privacy") not in scopes:
            other = [code for system, code in scopes if system == CONSENT_SCOPE]
            self.problem("not-supported" if other else "code-invalid", "Consent.scope",
                         "accord records privacy consent (scope patient-privacy of "
                         f"{CONSENT_SCOPE})" + (f", not {', '.join(sorted(map(str, other)))}"
                                                if other else ""))
        categories = {(cd.system, cd.code) for cc in c.category for cd in (cc.coding or [])}
        if not categories & PRIVACY_CATEGORIES:
            self.problem("not-supported", "Consent.category",
                         "accord records consent to share information: category LOINC "
                         "59284-0 (Patient Consent) or 64292-6, or v3 ActCode IDSCL or INFA")
        for issue in invariants(c):
            self.problem("invariant", issue.expression, issue.diagnostics)
        if c.policyRule is not None and any(
                cd.system == ACT_CODE and cd.code in ("OPTOUT", "OPTOUTE")
                for cd in (c.policyRule.coding or [])):
            self.problem("not-supported", "Consent.policyRule",
                         "accord records what a client agrees to share (opt-in), not an "
                         "opt-out")
        given = _moment(c.dateTime, after=False)
        if given is not None and given > self.now + FUTURE_TOLERANCE:
            self.problem("value", "Consent.dateTime", "is in the future")
        for i, org in enumerate(c.organization or []):
            self._own_agency(org, f"Consent.organization[{i}]")
        return self._patient(c.patient)

    def _patient(self, patient: Reference | None) -> PatientId | None:
        if patient is None:
            return None  # ppc-2 has said so
        identifier = patient.identifier
        if identifier is None or identifier.system not in (NHS_NUMBER, ACCORD_CLIENT):
            self.problem("not-supported", "Consent.patient",
                         f"name the client by NHS number: patient.identifier with system "
                         f"{NHS_NUMBER} (a literal reference cannot be resolved here)")
            return None
        value = identifier.value or ""
        if identifier.system == NHS_NUMBER:
            if not nhs_number_is_valid(normalise_nhs_number(value)):
                self.problem("value", "Consent.patient.identifier.value",
                             "is not a valid NHS number (ten digits with a valid check "
                             "digit)")
                return None
            return PatientId(NHS_NUMBER, normalise_nhs_number(value))
        try:
            return PatientId(ACCORD_CLIENT, str(UUID(value)))
        except ValueError:
            self.problem("value", "Consent.patient.identifier.value",
                         "is not an accord client id")
            return None

    def _own_agency(self, reference: Reference, path: str) -> None:
        """An organisation the resource says holds the data must be the caller's agency:
        a consent recorded in accord covers its recorder's data."""
        identifier = reference.identifier
        if identifier is None or identifier.system != ACCORD_AGENCY:
            self.problem("not-supported", path,
                         f"name the organisation by accord's agency identifier ({ACCORD_AGENCY})")
        elif identifier.value != self.controller:
            self.problem("business-rule", path,
                         f"the consent covers your agency's data: the organisation must be "
                         f"{self.controller!r}, not {identifier.value!r}")

    # -- the provision ---------------------------------------------------------------------

    def _terms(self, c: Consent) -> ConsentTerms | None:
        obtained = self._obtained(c)
        if c.provision is None:
            self.problem("required", "Consent.provision",
                         "say what the client agreed to share: a provision naming the "
                         "recipient, the purposes and the data")
            return None
        permits = self._permits(c)
        if not permits:
            return None
        recipients = [self._recipient(p) for p in permits]
        purposes = [self._purposes(p) for p in permits]
        categories = [self._categories(p) for p in permits]
        data_periods = [self._data_period(p) for p in permits]
        expiries = [self._expiry(p) for p in permits]
        for p in permits:
            self._actions(p)
        for values, element, what in (
                (recipients, "actor", "recipient"), (purposes, "purpose", "purposes"),
                (data_periods, "dataPeriod", "data period"), (expiries, "period", "expiry")):
            known = [v for v in values if v is not _UNREADABLE]
            if any(v != known[0] for v in known):
                self.problem("not-supported", "Consent.provision.provision",
                             f"the permits differ in their {what} ({element}): accord "
                             f"records one {what} per consent; send one Consent for each")
        if self.issues or obtained is None:
            return None
        recipient, wanted, period, expiry = (
            recipients[0], purposes[0], data_periods[0], expiries[0])
        assert not isinstance(recipient, _Unreadable) and not isinstance(wanted, _Unreadable)
        assert not isinstance(period, _Unreadable) and not isinstance(expiry, _Unreadable)
        return ConsentTerms(
            recipient_agency=recipient[0], recipient_kind=recipient[1],
            categories=tuple(sorted({category for found in categories
                                     if not isinstance(found, _Unreadable)
                                     for category in found})),
            purposes=tuple(sorted(wanted)), data_from=period[0], data_to=period[1],
            expires_at=expiry, obtained=obtained,
        )

    def _obtained(self, c: Consent) -> ConsentObtained | None:
        said = [e for e in (c.extension or []) if e.url == OBTAINED]
        if said:
            code = said[0].valueCode
            if code in {o.value for o in ConsentObtained}:
                return ConsentObtained(code)
            self.problem("code-invalid", f"Consent.extension('{OBTAINED}')",
                         "how consent was obtained is one of "
                         + ", ".join(o.value for o in ConsentObtained))
            return None
        if c.sourceAttachment is not None or c.sourceReference is not None:
            return ConsentObtained.WRITTEN  # the signed form is the consent's source
        self.problem("required", "Consent.extension",
                     f"say how consent was obtained: the extension {OBTAINED} (valueCode "
                     "written, verbal or electronic), or the signed form as sourceAttachment")
        return None

    def _permits(self, c: Consent) -> list[_Permit]:
        """The rules that permit sharing: the nested permits under a root that is not
        itself a permit, or the root alone (a permit, or untyped under opt-in)."""
        root = c.provision
        assert root is not None
        nested = root.provision or []
        if not nested:
            opt_in = c.policyRule is not None and any(
                cd.system == ACT_CODE and cd.code == "OPTIN"
                for cd in (c.policyRule.coding or []))
            if root.type == "permit" or (root.type is None and opt_in):
                return [_Permit("Consent.provision", root, None)]
            self.problem("not-supported", "Consent.provision.type",
                         "accord records what a client agrees to share: the provision must "
                         "be a permit (type permit, or untyped under policyRule OPTIN)")
            return []
        if root.type == "permit":
            self.problem("not-supported", "Consent.provision.type",
                         "nested rules under a permit are exceptions to it; accord records "
                         "the permits themselves: leave the root untyped or deny")
        for element in ("class_fhir", "securityLabel", "data", "code"):
            if getattr(root, element):
                name = "class" if element == "class_fhir" else element
                self.problem("not-supported", f"Consent.provision.{name}",
                             "say what is shared in each nested permit, not on the root")
        permits = []
        for i, rule in enumerate(nested):
            path = f"Consent.provision.provision[{i}]"
            if rule.type != "permit":
                self.problem("not-supported", f"{path}.type",
                             "accord cannot record an exception that withholds part of a "
                             "consent: record the narrower consent instead (type permit)")
                continue
            if rule.provision:
                self.problem("not-supported", f"{path}.provision",
                             "accord reads two levels of provision, not more")
                continue
            permits.append(_Permit(path, rule, root))
        return permits

    def _recipient(self, p: _Permit) -> tuple[str | None, AgencyKind | None] | _Unreadable:
        actors = _own_or_inherited(p, "actor")
        where = p.path if p.provision.actor else "Consent.provision"
        recipients: list[tuple[str | None, AgencyKind | None]] = []
        named = self.damaged(f"{where}.actor")
        for i, actor in enumerate(actors):
            path = f"{where}.actor[{i}]"
            if self.damaged(path):
                continue
            roles = {cd.code for cd in (actor.role.coding or []) if cd.system == PARTICIPATION}
            if roles & RECIPIENT_ROLES:
                named = True
                found = self._recipient_of(actor, path)
                if found is not None:
                    recipients.append(found)
            elif CUSTODIAN_ROLE in roles:
                self._own_agency(actor.reference, f"{path}.reference")
            else:
                self.problem("not-supported", f"{path}.role",
                             "accord records who receives the data: role PRCP or IRCP of "
                             f"{PARTICIPATION} (or CST, the custodian: your agency)")
        if not recipients and named:
            return _UNREADABLE
        if not recipients:
            self.problem("required", f"{where}.actor",
                         "name the recipient: an actor with role PRCP (primary information "
                         "recipient) referring to an accord agency or agency kind")
            return _UNREADABLE
        if len(set(recipients)) > 1:
            self.problem("not-supported", f"{where}.actor",
                         "accord records one recipient per consent; send one Consent for each")
            return _UNREADABLE
        return recipients[0]

    def _recipient_of(self, actor: ConsentProvisionActor,
                      path: str) -> tuple[str | None, AgencyKind | None] | None:
        identifier = actor.reference.identifier
        value = identifier.value if identifier is not None else None
        if identifier is not None and identifier.system == ACCORD_AGENCY:
            if value not in self.agencies:
                self.problem("value", f"{path}.reference.identifier.value",
                             f"no agency {value!r} in the partnership (GET /v1/agencies "
                             "lists them)")
                return None
            return value, None
        if identifier is not None and identifier.system == ACCORD_AGENCY_KIND:
            if value not in {k.value for k in AgencyKind}:
                self.problem("code-invalid", f"{path}.reference.identifier.value",
                             f"{value!r} is not an agency kind: "
                             + ", ".join(k.value for k in AgencyKind))
                return None
            return None, AgencyKind(value)
        self.problem("not-supported", f"{path}.reference",
                     f"name the recipient by accord's agency identifier ({ACCORD_AGENCY}) "
                     f"or agency kind ({ACCORD_AGENCY_KIND})")
        return None

    def _purposes(self, p: _Permit) -> frozenset[Purpose] | _Unreadable:
        codings = _own_or_inherited(p, "purpose")
        where = p.path if p.provision.purpose else "Consent.provision"
        if not codings:
            self.problem("required", f"{where}.purpose",
                         "name the purposes (HL7 v3 ActReason: TREAT, COC, THREAT, GOV, "
                         "PUBHLTH, or accord's purpose codes)")
            return _UNREADABLE
        ours: set[Purpose] = set()
        v3: dict[int, str] = {}
        readable = not self.damaged(f"{where}.purpose")
        for i, coding in enumerate(codings):
            path = f"{where}.purpose[{i}]"
            if self.damaged(path):
                continue
            if coding.system == ACCORD_PURPOSE:
                if coding.code in {x.value for x in Purpose}:
                    ours.add(Purpose(coding.code))
                else:
                    readable = False
                    self.problem("code-invalid", path,
                                 f"{coding.code!r} is not one of accord's purposes: "
                                 + ", ".join(x.value for x in Purpose))
            elif coding.system == ACT_REASON:
                if any(code == coding.code for code, _ in PURPOSE_CODES.values()):
                    v3[i] = str(coding.code)
                else:
                    readable = False
                    self.problem("not-supported", path,
                                 f"accord records no purpose for v3 ActReason "
                                 f"{coding.code!r}: it knows TREAT, COC, THREAT, GOV, PUBHLTH")
            else:
                readable = False
                self.problem("not-supported", path,
                             f"give purposes in {ACT_REASON} or {ACCORD_PURPOSE}")
        for i, code in v3.items():
            meant = {x for x, (c, _) in PURPOSE_CODES.items() if c == code}
            if meant & ours:
                continue  # accord's code says which
            if len(meant) > 1:
                readable = False
                self.problem("value", f"{where}.purpose[{i}]",
                             f"{code} stands for more than one of accord's purposes ("
                             + " and ".join(sorted(m.value for m in meant))
                             + f"): add accord's purpose code ({ACCORD_PURPOSE}) to say which")
            else:
                ours |= meant
        return frozenset(ours) if readable else _UNREADABLE

    def _categories(self, p: _Permit) -> frozenset[DataCategory] | _Unreadable:
        rule = p.provision
        classes: set[DataCategory] = set()
        labels: dict[int, str] = {}
        readable = not any(self.damaged(f"{p.path}.{element}")
                           for element in ("class", "securityLabel"))
        for i, coding in enumerate(rule.class_fhir or []):
            path = f"{p.path}.class[{i}]"
            if self.damaged(path):
                continue
            if coding.system == ACCORD_CATEGORY and coding.code in {c.value for c in DataCategory}:
                classes.add(DataCategory(coding.code))
            elif coding.system == ACCORD_CATEGORY:
                readable = False
                self.problem("code-invalid", path, f"{coding.code!r} is not one of accord's "
                             "data categories: " + ", ".join(c.value for c in DataCategory))
            else:
                readable = False
                self.problem("not-supported", path,
                             f"accord shares by data category: give classes in "
                             f"{ACCORD_CATEGORY}")
        for i, coding in enumerate(rule.securityLabel or []):
            path = f"{p.path}.securityLabel[{i}]"
            if self.damaged(path):
                continue
            if coding.system == ACT_CODE and any(
                    code == coding.code for code, _ in SENSITIVITY.values()):
                labels[i] = str(coding.code)
            else:
                readable = False
                self.problem("not-supported", path,
                             "accord reads the v3 ActCode sensitivity labels ETH (substance "
                             "misuse), SDV (domestic abuse) and PSY (mental health)")
        for element in ("data", "code"):
            if getattr(rule, element):
                readable = False
                self.problem("not-supported", f"{p.path}.{element}",
                             "accord shares by data category, not by named records or codes")
        named = set(classes)
        for i, code in labels.items():
            meant = {c for c, (label, _) in SENSITIVITY.items() if label == code}
            if named and not meant & named:
                readable = False
                self.problem("value", f"{p.path}.securityLabel[{i}]",
                             f"{code} labels none of this permit's classes")
            elif not named:
                classes |= meant  # without classes, the labels say the categories
        if readable and not classes:
            self.problem("required", f"{p.path}.class",
                         f"name the data shared: classes in {ACCORD_CATEGORY}, or the "
                         "sensitivity labels ETH, SDV or PSY")
            return _UNREADABLE
        return frozenset(classes) if readable else _UNREADABLE

    def _data_period(self, p: _Permit) -> tuple[date | None, date | None] | _Unreadable:
        period = p.provision.dataPeriod or (p.inherited.dataPeriod if p.inherited else None)
        where = (p.path if p.provision.dataPeriod else "Consent.provision") + ".dataPeriod"
        if self.damaged(where):
            return _UNREADABLE
        if period is None:
            return None, None
        start = _day(period.start, last=False)
        end = _day(period.end, last=True)
        for bound, value in (("start", start), ("end", end)):
            if value is _UNREADABLE:
                self.problem("value", f"{where}.{bound}",
                             "accord's data period is in whole days: give a date (YYYY-MM-DD)")
        if isinstance(start, _Unreadable) or isinstance(end, _Unreadable):
            return _UNREADABLE
        if start is not None and end is not None and end < start:
            self.problem("value", f"{where}.end", "ends before the data period starts")
            return _UNREADABLE
        return start, end

    def _expiry(self, p: _Permit) -> datetime | _Unreadable | None:
        period = p.provision.period or (p.inherited.period if p.inherited else None)
        where = (p.path if p.provision.period else "Consent.provision") + ".period"
        if self.damaged(where):
            return _UNREADABLE
        if period is None:
            return None
        start = _moment(period.start, after=False)
        end = _moment(period.end, after=True)
        if start is not None and start > self.now + FUTURE_TOLERANCE:
            self.problem("not-supported", f"{where}.start",
                         "accord's consent is in force from when it is recorded: a consent "
                         "that starts later cannot be recorded yet")
            return _UNREADABLE
        if end is None:
            return None
        if start is not None and end <= start:
            self.problem("value", f"{where}.end", "ends before the consent starts")
            return _UNREADABLE
        if end <= self.now:
            self.problem("value", f"{where}.end", "has passed: the consent has expired")
            return _UNREADABLE
        return end.astimezone(UTC)

    def _actions(self, p: _Permit) -> None:
        actions = _own_or_inherited(p, "action")
        codes = {cd.code for cc in actions for cd in (cc.coding or [])
                 if cd.system == CONSENT_ACTION}
        if actions and not codes & SHARING_ACTIONS:
            where = p.path if p.provision.action else "Consent.provision"
            self.problem("not-supported", f"{where}.action",
                         "accord records consent to share: the actions must include access, "
                         f"use or disclose ({CONSENT_ACTION})")


class _Unreadable:
    """A value the reader could not make out (its problem is already an issue)."""


_UNREADABLE = _Unreadable()


def _own_or_inherited(p: _Permit, element: str) -> list[Any]:
    """A permit's element, or the root's where the permit says nothing of it."""
    own: list[Any] = getattr(p.provision, element) or []
    if own or p.inherited is None:
        return own
    inherited: list[Any] = getattr(p.inherited, element) or []
    return inherited


# -- the invariants -------------------------------------------------------------------------


def invariants(c: Consent) -> list[Issue]:
    """R4 Consent's invariants, which the library does not check.

    ppc-1: policy.exists() or policyRule.exists() ("Either a Policy or PolicyRule").
    ppc-2 to ppc-5: patient.exists() or the scope is not patient-privacy, research, adr
    or treatment ("IF Scope=privacy, there must be a patient", and so on). R4's published
    FHIRPath compares the scope's system with the placeholder 'something'; what is meant,
    and checked here, is the consentscope code system."""
    found = []
    if not c.policy and c.policyRule is None:
        found.append(Issue("invariant", "Consent.policyRule",
                           "ppc-1: Either a Policy or PolicyRule"))
    scopes = {cd.code for cd in ((c.scope.coding or []) if c.scope else [])
              if cd.system == CONSENT_SCOPE}
    if c.patient is None:
        for key, scope in SCOPES_NEEDING_A_PATIENT.items():
            if scope in scopes:
                name = "privacy" if scope == "patient-privacy" else scope
                found.append(Issue("invariant", "Consent.patient",
                                   f"{key}: IF Scope={name}, there must be a patient"))
    return found


# -- dates ----------------------------------------------------------------------------------


def _first_day(value: date | str) -> date:
    if isinstance(value, date):
        return value
    if _YEAR.fullmatch(value):
        return date(int(value), 1, 1)
    found = _YEAR_MONTH.fullmatch(value)
    if found:
        return date(int(found[1]), int(found[2]), 1)
    return date.max


def _day(value: Any, *, last: bool) -> date | _Unreadable | None:
    """A data period's bound as a day (a year or month: its first or last day); a time of
    day is unreadable (accord's data periods are whole days)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _UNREADABLE
    if isinstance(value, date):
        return value
    first = _first_day(str(value))
    if first == date.max:
        return _UNREADABLE
    if not last:
        return first
    following = (date(first.year + 1, 1, 1) if _YEAR.fullmatch(str(value))
                 else (first.replace(day=28) + timedelta(days=4)).replace(day=1))
    return following - timedelta(days=1)


def _moment(value: Any, *, after: bool) -> datetime | None:
    """A period's bound as a moment. A date (or year, or month) without a time covers all
    of it, in England: its end is the start of the day (month, year) after."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    first = _first_day(value) if isinstance(value, str) else value
    if after:
        if isinstance(value, str) and _YEAR.fullmatch(value):
            first = date(first.year + 1, 1, 1)
        elif isinstance(value, str):
            first = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            first = first + timedelta(days=1)
    return datetime.combine(first, time(0), LOCAL)


# -- taking out what the library refused ----------------------------------------------------

_GONE: Any = object()


def _expression(loc: Iterable[Any]) -> str:
    """A pydantic error location as a FHIRPath expression: Consent.provision.actor[0]."""
    text = "Consent"
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _within(expression: str, broken: str) -> bool:
    return expression == broken or expression.startswith((broken + ".", broken + "["))


def _take_out(data: Any, loc: list[Any]) -> None:
    """Marks the element at ``loc`` gone (list items are swept after, so that the other
    errors' indices still hold)."""
    for part in loc[:-1]:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(data, dict):
        data.pop(loc[-1], None)
    elif isinstance(data, list) and isinstance(loc[-1], int) and loc[-1] < len(data):
        data[loc[-1]] = _GONE


def _sweep(data: Any) -> None:
    if isinstance(data, dict):
        for value in data.values():
            _sweep(value)
    elif isinstance(data, list):
        data[:] = [item for item in data if item is not _GONE]
        for item in data:
            _sweep(item)
