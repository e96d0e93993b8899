"""The event catalogue: every kind of fact a partner can record about a client.

Each fact type names one data category and a pydantic schema for its payload.
The catalogue is data: the API validates incoming payloads against it and serves
it at ``GET /v1/event-types``; projections mask payload fields per category.
Schemas forbid unknown fields so that nothing unvetted enters the log, and free
text is short and optional so that the minimum necessary is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.categories import DataCategory
from domain.inputs import IsoDate, Name, Text


class Payload(BaseModel):
    """Base of every fact payload: strict about unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ShortText = Annotated[Text, Field(min_length=1, max_length=280)]
Days28 = Annotated[int, Field(ge=0, le=28, description="days in the past 28")]
Score20 = Annotated[int, Field(ge=0, le=20, description="self-rated score 0-20")]


class Substance(StrEnum):
    OPIOIDS = "opioids"
    CRACK = "crack"
    COCAINE = "cocaine"
    ALCOHOL = "alcohol"
    CANNABIS = "cannabis"
    BENZODIAZEPINES = "benzodiazepines"
    AMPHETAMINES = "amphetamines"
    NEW_PSYCHOACTIVE = "new_psychoactive"
    OTHER = "other"


class ReferralSource(StrEnum):
    SELF = "self"
    GP = "gp"
    HOSPITAL = "hospital"
    CRIMINAL_JUSTICE = "criminal_justice"
    PROBATION = "probation"
    SOCIAL_CARE = "social_care"
    MENTAL_HEALTH = "mental_health"
    HOUSING = "housing"
    OTHER = "other"


class ReferralReceived(Payload):
    source: ReferralSource
    substances: list[Substance] = Field(min_length=1, max_length=9)


class AssessmentCompleted(Payload):
    assessment: Annotated[str, Field(pattern="^(triage|comprehensive|review)$")]
    substances: list[Substance] = Field(min_length=1, max_length=9)
    injecting: bool = False


class Modality(StrEnum):
    PHARMACOLOGICAL = "pharmacological"
    PSYCHOSOCIAL = "psychosocial"
    INPATIENT_DETOX = "inpatient_detox"
    RESIDENTIAL_REHAB = "residential_rehab"
    RECOVERY_SUPPORT = "recovery_support"


class DischargeReason(StrEnum):
    COMPLETED_DRUG_FREE = "completed_drug_free"
    COMPLETED_OCCASIONAL_USER = "completed_occasional_user"
    TRANSFERRED = "transferred"
    DROPPED_OUT = "dropped_out"
    DECLINED = "declined"
    CUSTODY = "custody"
    DIED = "died"
    OTHER = "other"


class TreatmentEpisodeStarted(Payload):
    modality: Modality
    substances: list[Substance] = Field(min_length=1, max_length=9)
    #: Who leads the client's care in this episode (a caseload lists it).
    key_worker: Annotated[Name, Field(
        min_length=1, max_length=100,
        description="the key worker leading the client's care in this episode")] | None = None


class TreatmentEpisodeEnded(Payload):
    modality: Modality
    discharge_reason: DischargeReason


class InterventionKind(StrEnum):
    PSYCHOSOCIAL = "psychosocial"
    GROUP_WORK = "group_work"
    PEER_MENTORING = "peer_mentoring"
    RECOVERY_SUPPORT = "recovery_support"
    MUTUAL_AID = "mutual_aid"
    NALOXONE_SUPPLY = "naloxone_supply"


class InterventionRecorded(Payload):
    kind: InterventionKind
    sessions: int = Field(default=1, ge=1, le=100)


class Medication(StrEnum):
    METHADONE = "methadone"
    BUPRENORPHINE = "buprenorphine"
    BUPRENORPHINE_DEPOT = "buprenorphine_depot"
    NALTREXONE = "naltrexone"
    ACAMPROSATE = "acamprosate"
    DISULFIRAM = "disulfiram"


class PrescriptionChange(StrEnum):
    STARTED = "started"
    INCREASED = "increased"
    DECREASED = "decreased"
    STOPPED = "stopped"


class PrescriptionChanged(Payload):
    medication: Medication
    change: PrescriptionChange
    daily_dose_mg: float = Field(ge=0, le=1000)
    supervised_consumption: bool


class AppointmentKind(StrEnum):
    KEYWORK = "keywork"
    PRESCRIBER = "prescriber"
    GROUP = "group"
    ASSESSMENT = "assessment"
    REVIEW = "review"


class AppointmentAttended(Payload):
    appointment: AppointmentKind


class AppointmentMissed(Payload):
    appointment: AppointmentKind
    contacted_afterwards: bool = False


class CriminalJusticeOrder(StrEnum):
    DRR = "drug_rehabilitation_requirement"
    ATR = "alcohol_treatment_requirement"
    COMMUNITY_ORDER = "community_order"
    SUSPENDED_SENTENCE = "suspended_sentence"
    LICENCE = "licence"
    CUSTODY = "custody"
    CONDITIONAL_CAUTION = "conditional_caution"
    ARREST_REFERRAL = "arrest_referral"


class OrderStatus(StrEnum):
    STARTED = "started"
    COMPLIANT = "compliant"
    BREACHED = "breached"
    ENDED = "ended"


class CriminalJusticeStatus(Payload):
    order: CriminalJusticeOrder
    status: OrderStatus
    ends_on: IsoDate | None = None


class DomesticAbuseRole(StrEnum):
    VICTIM = "victim"
    PERPETRATOR = "perpetrator"


class RiskLevel(StrEnum):
    STANDARD = "standard"
    MEDIUM = "medium"
    HIGH = "high"


class DomesticAbuseRisk(Payload):
    role: DomesticAbuseRole
    risk_level: RiskLevel
    marac_referral: bool = False


class DomesticAbuseIncident(Payload):
    role: DomesticAbuseRole
    children_present: bool
    police_reference: Annotated[str, Field(pattern=r"^[A-Z0-9/-]{4,20}$")] | None = None


class MentalHealthConcernKind(StrEnum):
    LOW_MOOD = "low_mood"
    ANXIETY = "anxiety"
    PSYCHOSIS = "psychosis"
    PERSONALITY_DISORDER = "personality_disorder"
    TRAUMA = "trauma"
    OTHER = "other"


class MentalHealthConcern(Payload):
    concern: MentalHealthConcernKind
    risk_level: RiskLevel
    in_mental_health_service: bool = False


class SelfHarmRisk(Payload):
    risk_level: RiskLevel
    recent_attempt: bool = False


class OverdoseRisk(Payload):
    risk_level: RiskLevel
    recent_overdose: bool = False
    naloxone_held: bool = False


class HouseholdUpdated(Payload):
    children_in_household: int = Field(ge=0, le=20)
    parental_responsibility: bool
    pregnant: bool = False
    due_date: IsoDate | None = None


class ChildConcern(StrEnum):
    NEGLECT = "neglect"
    PHYSICAL_ABUSE = "physical_abuse"
    EMOTIONAL_ABUSE = "emotional_abuse"
    SEXUAL_ABUSE = "sexual_abuse"
    EXPLOITATION = "exploitation"
    DOMESTIC_ABUSE = "domestic_abuse"
    PARENTAL_SUBSTANCE_USE = "parental_substance_use"


class ChildSafeguardingConcern(Payload):
    concern: ChildConcern
    summary: ShortText
    children_affected: int = Field(ge=1, le=20)


class ChildProtectionStatus(StrEnum):
    CHILD_IN_NEED = "child_in_need"
    CHILD_PROTECTION_PLAN = "child_protection_plan"
    LOOKED_AFTER = "looked_after"
    CLOSED = "closed"


class ChildProtectionPlan(Payload):
    status: ChildProtectionStatus
    children: int = Field(ge=1, le=20)


class AdultConcern(StrEnum):
    SELF_NEGLECT = "self_neglect"
    FINANCIAL_ABUSE = "financial_abuse"
    PHYSICAL_ABUSE = "physical_abuse"
    EXPLOITATION = "exploitation"
    DOMESTIC_ABUSE = "domestic_abuse"
    NEGLECT = "neglect"


class AdultSafeguardingConcern(Payload):
    concern: AdultConcern
    summary: ShortText
    section_42_enquiry: bool = False


class HousingStatus(StrEnum):
    SETTLED = "settled"
    TEMPORARY = "temporary"
    SUPPORTED = "supported"
    NO_FIXED_ABODE = "no_fixed_abode"
    ROUGH_SLEEPING = "rough_sleeping"
    AT_RISK_OF_EVICTION = "at_risk_of_eviction"


class HousingStatusRecorded(Payload):
    status: HousingStatus


class EmploymentStatus(StrEnum):
    EMPLOYED = "employed"
    UNEMPLOYED = "unemployed"
    EDUCATION_OR_TRAINING = "education_or_training"
    VOLUNTEERING = "volunteering"
    UNABLE_TO_WORK = "unable_to_work"
    RETIRED = "retired"


class EmploymentStatusRecorded(Payload):
    status: EmploymentStatus


class Virus(StrEnum):
    HEPATITIS_B = "hepatitis_b"
    HEPATITIS_C = "hepatitis_c"
    HIV = "hiv"


class BbvResult(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    PENDING = "pending"
    DECLINED = "declined"


class BloodBorneVirusTest(Payload):
    virus: Virus
    result: BbvResult


class BloodBorneVirusVaccination(Payload):
    vaccine: Annotated[str, Field(pattern="^(hepatitis_a|hepatitis_b)$")]
    dose: int = Field(ge=1, le=4)
    course_completed: bool = False


class TopSubstanceUse(Payload):
    """TOP section 1: days used in the past 28."""

    alcohol: Days28 = 0
    opiates: Days28 = 0
    crack: Days28 = 0
    cocaine: Days28 = 0
    amphetamines: Days28 = 0
    cannabis: Days28 = 0
    other: Days28 = 0


class TopInjecting(Payload):
    """TOP section 2: injecting risk behaviour."""

    days_injected: Days28 = 0
    shared_equipment: bool = False


class TopCrime(Payload):
    """TOP section 3: offending in the past 28 days."""

    shoplifting_days: Days28 = 0
    selling_drugs_days: Days28 = 0
    other_theft: bool = False
    assault_or_violence: bool = False


class TopHealthAndSocialFunctioning(Payload):
    """TOP section 4: self-rated 0-20 scores and days in work, college or unstable housing."""

    psychological_health: Score20
    physical_health: Score20
    quality_of_life: Score20
    days_paid_work: Days28 = 0
    days_education: Days28 = 0
    acute_housing_problem: bool = False
    at_risk_of_eviction: bool = False


class TreatmentOutcomesProfile(Payload):
    stage: Annotated[str, Field(pattern="^(start|review|exit|post_exit)$")]
    substance_use: TopSubstanceUse
    injecting: TopInjecting
    crime: TopCrime
    health_and_social_functioning: TopHealthAndSocialFunctioning


class CarePlanAgreed(Payload):
    goals: list[ShortText] = Field(min_length=1, max_length=10)
    review_on: IsoDate


class ClinicalNoteAdded(Payload):
    text: Text = Field(min_length=1, max_length=4000)


class Discharged(Payload):
    reason: DischargeReason


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    NOT_STATED = "not_stated"


class EthnicCategory(StrEnum):
    """The NHS Data Dictionary's ethnic category codes (A-S; Z not stated), as NDTMS
    reports them."""

    WHITE_BRITISH = "A"
    WHITE_IRISH = "B"
    WHITE_OTHER = "C"
    MIXED_WHITE_AND_BLACK_CARIBBEAN = "D"
    MIXED_WHITE_AND_BLACK_AFRICAN = "E"
    MIXED_WHITE_AND_ASIAN = "F"
    MIXED_OTHER = "G"
    ASIAN_INDIAN = "H"
    ASIAN_PAKISTANI = "J"
    ASIAN_BANGLADESHI = "K"
    ASIAN_OTHER = "L"
    BLACK_CARIBBEAN = "M"
    BLACK_AFRICAN = "N"
    BLACK_OTHER = "P"
    CHINESE = "R"
    OTHER = "S"
    NOT_STATED = "Z"


#: Each ethnic category code as the NHS Data Dictionary names it (a form offers these).
ETHNIC_CATEGORY_NAMES: dict[EthnicCategory, str] = {
    EthnicCategory.WHITE_BRITISH: "White: British",
    EthnicCategory.WHITE_IRISH: "White: Irish",
    EthnicCategory.WHITE_OTHER: "White: any other White background",
    EthnicCategory.MIXED_WHITE_AND_BLACK_CARIBBEAN: "Mixed: White and Black Caribbean",
    EthnicCategory.MIXED_WHITE_AND_BLACK_AFRICAN: "Mixed: White and Black African",
    EthnicCategory.MIXED_WHITE_AND_ASIAN: "Mixed: White and Asian",
    EthnicCategory.MIXED_OTHER: "Mixed: any other mixed background",
    EthnicCategory.ASIAN_INDIAN: "Asian or Asian British: Indian",
    EthnicCategory.ASIAN_PAKISTANI: "Asian or Asian British: Pakistani",
    EthnicCategory.ASIAN_BANGLADESHI: "Asian or Asian British: Bangladeshi",
    EthnicCategory.ASIAN_OTHER: "Asian or Asian British: any other Asian background",
    EthnicCategory.BLACK_CARIBBEAN: "Black or Black British: Caribbean",
    EthnicCategory.BLACK_AFRICAN: "Black or Black British: African",
    EthnicCategory.BLACK_OTHER: "Black or Black British: any other Black background",
    EthnicCategory.CHINESE: "Other ethnic group: Chinese",
    EthnicCategory.OTHER: "Other ethnic group: any other ethnic group",
    EthnicCategory.NOT_STATED: "Not stated",
}


class SexualOrientation(StrEnum):
    HETEROSEXUAL = "heterosexual"
    GAY_OR_LESBIAN = "gay_or_lesbian"
    BISEXUAL = "bisexual"
    OTHER = "other"
    NOT_STATED = "not_stated"


class Religion(StrEnum):
    NO_RELIGION = "no_religion"
    CHRISTIAN = "christian"
    BUDDHIST = "buddhist"
    HINDU = "hindu"
    JEWISH = "jewish"
    MUSLIM = "muslim"
    SIKH = "sikh"
    OTHER = "other"
    NOT_STATED = "not_stated"


class Disability(StrEnum):
    YES = "yes"
    NO = "no"
    NOT_STATED = "not_stated"


#: The client's local authority of residence, as the partnership names its areas (e.g. the
#: ONS code E06000032 for Luton); reports group by it.
AreaCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]


class DemographicsRecorded(Payload):
    """Equality monitoring and the area of residence: no identity (reports' age bands come
    from the date of birth held with identity, never copied here)."""

    sex: Sex
    ethnicity: EthnicCategory = Field(json_schema_extra={
        "enumNames": [ETHNIC_CATEGORY_NAMES[c] for c in EthnicCategory]})
    sexual_orientation: SexualOrientation = SexualOrientation.NOT_STATED
    religion: Religion = Religion.NOT_STATED
    disability: Disability = Disability.NOT_STATED
    area: AreaCode | None = None


@dataclass(frozen=True)
class FactType:
    """One entry of the catalogue: a named kind of fact, its category and schema."""

    name: str
    category: DataCategory
    schema: type[Payload]
    description: str
    #: The payload's fields whose text can identify a person (a note, a concern's
    #: summary, a care plan's goals, a police reference): sealed under the client's own
    #: data key before they enter the log (``domain.sealing``), so that erasing the
    #: client erases them too.
    free_text: tuple[str, ...] = ()

    @property
    def fields(self) -> list[str]:
        return list(self.schema.model_fields)

    def validate(self, data: Any) -> dict[str, Any]:
        """Returns the payload in canonical JSON form, or raises InvalidPayload."""
        try:
            model = self.schema.model_validate(data)
        except ValidationError as exc:
            raise InvalidPayload(self.name, exc) from None
        return model.model_dump(mode="json")


class InvalidPayload(ValueError):
    """A fact's payload does not match its type's schema."""

    def __init__(self, fact_type: str, error: ValidationError) -> None:
        self.fact_type = fact_type
        self.errors = [
            {
                "field": ".".join(str(part) for part in ("data", *err["loc"])),
                "message": err["msg"],
            }
            for err in error.errors()
        ]
        super().__init__(f"invalid payload for {fact_type}: {self.errors}")


class UnknownFactType(KeyError):
    """No fact type of that name is in the catalogue."""


C = DataCategory
_ENTRIES = [
    FactType("demographics_recorded", C.DEMOGRAPHICS, DemographicsRecorded,
             "Sex, ethnic category, sexual orientation, religion, disability and the local "
             "authority of residence, for equality monitoring and reports."),
    FactType("referral_received", C.REFERRAL, ReferralReceived,
             "A referral into treatment: where it came from and for which substances."),
    FactType("assessment_completed", C.TREATMENT, AssessmentCompleted,
             "A triage, comprehensive or review assessment was completed."),
    FactType("treatment_episode_started", C.TREATMENT, TreatmentEpisodeStarted,
             "A treatment episode began, with its modality (and its key worker)."),
    FactType("treatment_episode_ended", C.TREATMENT, TreatmentEpisodeEnded,
             "A treatment episode ended, with its discharge reason."),
    FactType("intervention_recorded", C.TREATMENT, InterventionRecorded,
             "A psychosocial, group, peer mentoring or recovery support intervention."),
    FactType("prescription_changed", C.PRESCRIBING, PrescriptionChanged,
             "An opioid substitution or relapse-prevention prescription changed."),
    FactType("appointment_attended", C.TREATMENT, AppointmentAttended,
             "The client attended an appointment."),
    FactType("appointment_missed", C.TREATMENT, AppointmentMissed,
             "The client did not attend an appointment."),
    FactType("criminal_justice_status", C.CRIMINAL_JUSTICE, CriminalJusticeStatus,
             "A criminal-justice order (e.g. DRR, ATR) started, changed or ended."),
    FactType("domestic_abuse_risk_recorded", C.DOMESTIC_ABUSE, DomesticAbuseRisk,
             "Risk indicator: the client is a victim or perpetrator of domestic abuse."),
    FactType("domestic_abuse_incident_recorded", C.DOMESTIC_ABUSE, DomesticAbuseIncident,
             "A domestic abuse incident involving the client.",
             free_text=("police_reference",)),
    FactType("mental_health_concern_recorded", C.MENTAL_HEALTH, MentalHealthConcern,
             "Risk indicator: a mental health concern."),
    FactType("self_harm_risk_recorded", C.MENTAL_HEALTH, SelfHarmRisk,
             "Risk indicator: risk of self-harm."),
    FactType("overdose_risk_recorded", C.TREATMENT, OverdoseRisk,
             "Risk indicator: risk of overdose."),
    FactType("household_updated", C.SAFEGUARDING_CHILDREN, HouseholdUpdated,
             "Children in the household, parental responsibility, pregnancy."),
    FactType("child_safeguarding_concern_raised", C.SAFEGUARDING_CHILDREN,
             ChildSafeguardingConcern, "A safeguarding concern about a child.",
             free_text=("summary",)),
    FactType("child_protection_status_recorded", C.SAFEGUARDING_CHILDREN, ChildProtectionPlan,
             "Children's social care status: child in need, protection plan, looked after."),
    FactType("adult_safeguarding_concern_raised", C.SAFEGUARDING_ADULTS,
             AdultSafeguardingConcern, "A safeguarding concern about an adult (Care Act s.42).",
             free_text=("summary",)),
    FactType("housing_status_recorded", C.HOUSING, HousingStatusRecorded,
             "The client's housing situation."),
    FactType("employment_status_recorded", C.EMPLOYMENT, EmploymentStatusRecorded,
             "The client's employment, education or training situation."),
    FactType("blood_borne_virus_test", C.BLOOD_BORNE_VIRUSES, BloodBorneVirusTest,
             "A hepatitis B, hepatitis C or HIV test and its result."),
    FactType("blood_borne_virus_vaccination", C.BLOOD_BORNE_VIRUSES, BloodBorneVirusVaccination,
             "A hepatitis vaccination dose."),
    FactType("treatment_outcomes_profile", C.OUTCOMES, TreatmentOutcomesProfile,
             "A Treatment Outcomes Profile: substance use, injecting, crime, health and "
             "social functioning."),
    FactType("care_plan_agreed", C.TREATMENT, CarePlanAgreed,
             "A care plan was agreed with the client.", free_text=("goals",)),
    FactType("clinical_note_added", C.CLINICAL_NOTES, ClinicalNoteAdded,
             "A clinical note. Never shared by agreement.", free_text=("text",)),
    FactType("discharged", C.TREATMENT, Discharged,
             "The client was discharged from the service."),
]

CATALOGUE: dict[str, FactType] = {entry.name: entry for entry in _ENTRIES}


def fact_type(name: str) -> FactType:
    """Looks up a fact type by name; raises UnknownFactType."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownFactType(name) from None
