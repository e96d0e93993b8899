"""The measure catalogue, as data, and its computation over one period.

A measure is an id, a title, a definition in words, the unit it counts (clients, episodes
or alerts), the data categories it reads, its kind, and the computation that picks out the
units it counts. Kinds:

* ``count``: how many units; ``value`` is the count.
* ``rate``: ``numerator`` units out of ``denominator`` units; ``value`` is the percentage
  (one decimal place; None when the denominator is 0).
* ``mean``: the mean of an amount over ``denominator`` units (one decimal place; None when
  there are none); ``numerator`` is None.
* ``share``: each group's count as a percentage of the whole (``penetration_by_ethnicity``,
  always by ethnicity), published beside the configured population share of the group.

Every computation reads only ``ReportFact``s (already masked to what the commissioner may
see) and alerts: a fact whose needed field is not shared is not counted. Days are UTC
calendar days and periods include both ends.

Grouping (``by``): a client's ethnicity, sex and area come from its latest
``demographics_recorded`` on or before the period's last day (``unknown`` if none or if the
field is not shared); its age band and substance group from its latest episode started on
or before the period's last day. An episode groups by its own substance group and age band
(and by its client's demographics); an alert by its client's.

A rate's denominator may be the units a count measure counts (``denominator_of``); the
figures are then the same numbers, and disclosure control treats them as one. It is never
another rate's numerator: a table whose numerators and denominators were both another
measure's figures would leave its complement nothing of its own to hide behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any, Literal

from domain.catalogue import DischargeReason
from domain.categories import DataCategory
from projections.reports.episodes import Episode, SubstanceGroup, episodes
from projections.reports.model import AlertFact, Period, ReportFact

C = DataCategory
Unit = Literal["clients", "episodes", "alerts"]
Kind = Literal["count", "rate", "mean", "share"]

#: The groupings a report may be broken down by.
GROUPINGS = ("ethnicity", "sex", "age_band", "substance_group", "area")
UNKNOWN = "unknown"
#: Discharge reasons that NDTMS counts as a successful completion.
SUCCESSFUL = frozenset({DischargeReason.COMPLETED_DRUG_FREE.value,
                        DischargeReason.COMPLETED_OCCASIONAL_USER.value})
DROPPED_OUT = DischargeReason.DROPPED_OUT.value
#: An exit this soon after the start is early (12 weeks).
EARLY_EXIT = timedelta(days=84)
#: A completion followed by a new episode this soon is a re-presentation (PHOF C19).
REPRESENTATION = timedelta(days=183)
#: Days of paid work in the past 28 that count as being in work at exit (Birmingham: ten
#: working days).
PAID_WORK_DAYS = 10
CHILDRENS_SERVICES = "childrens_services"
ADULT_SOCIAL_CARE = "adult_social_care"

DEMOGRAPHICS = "demographics_recorded"
TOP = "treatment_outcomes_profile"
HOUSEHOLD = "household_updated"
CRIMINAL_JUSTICE = "criminal_justice_status"
EMPLOYMENT = "employment_status_recorded"
BBV_TEST = "blood_borne_virus_test"
BBV_VACCINATION = "blood_borne_virus_vaccination"
DA_TYPES = frozenset({"domestic_abuse_risk_recorded", "domestic_abuse_incident_recorded"})
MENTAL_HEALTH = "mental_health_concern_recorded"


@dataclass(frozen=True)
class Counted:
    """One unit a measure counts: its group, whether it is in the numerator (rates), and
    its amount (means)."""

    group: str
    hit: bool = True
    amount: float = 0.0


@dataclass(frozen=True)
class GroupResult:
    value: int | float | None
    numerator: int | None = None
    denominator: int | None = None


@dataclass(frozen=True)
class MeasureResult:
    """One measure's figures for a period. ``by`` is the grouping its ``groups`` follow
    (``ethnicity`` for penetration whatever was asked); ``reference`` is the configured
    population share (per cent) of each group, for penetration."""

    measure: str
    kind: Kind
    value: int | float | None
    numerator: int | None = None
    denominator: int | None = None
    groups: dict[str, GroupResult] | None = None
    by: str | None = None
    reference: dict[str, float] | None = None
    #: whose figures the denominator's are (a measure id), for disclosure control
    denominator_of: str | None = None


@dataclass(frozen=True)
class TopPair:
    """A client's Treatment Outcomes Profile at the start, and its latest review or exit
    profile in the period after it."""

    start: Mapping[str, Any]
    follow_up: Mapping[str, Any]


@dataclass
class ClientRecord:
    """One client's facts (log order) and episodes, as of a computation."""

    client: str
    facts: Sequence[ReportFact]

    @cached_property
    def episodes(self) -> list[Episode]:
        return episodes(self.facts)

    @cached_property
    def _by_type(self) -> dict[str, list[ReportFact]]:
        index: dict[str, list[ReportFact]] = {}
        for fact in self.facts:
            index.setdefault(fact.fact_type, []).append(fact)
        return index

    def of(self, *types: str, until: date | None = None) -> list[ReportFact]:
        """The client's facts of these types (on or before ``until``), in log order."""
        found = [f for t in types for f in self._by_type.get(t, ())
                 if until is None or f.day <= until]
        if len(types) > 1:
            found.sort(key=lambda f: f.position)
        return found

    def latest(self, fact_type: str, until: date) -> ReportFact | None:
        found = self.of(fact_type, until=until)
        return found[-1] if found else None


class Cohort:
    """What a measure's computation is given: the period, the grouping and every client's
    record, with the questions several measures ask."""

    def __init__(self, facts_by_client: Mapping[str, Sequence[ReportFact]], period: Period,
                 by: str | None, alerts: Sequence[AlertFact]) -> None:
        self.period = period
        self.by = by
        self.alerts = alerts
        self.clients = {
            client: ClientRecord(client, sorted(facts, key=lambda f: f.position))
            for client, facts in facts_by_client.items()
        }
        self._groups: dict[tuple[str, str | None], str] = {}
        self._treated: list[ClientRecord] | None = None
        self._top_pairs: dict[str, TopPair | None] = {}

    # -- groups ------------------------------------------------------------------------
    def group(self, client: str, by: str | None = None) -> str:
        """The client's group under ``by`` (default: the cohort's grouping)."""
        by = by or self.by
        if by is None:
            return ""
        key = (client, by)
        if key not in self._groups:
            self._groups[key] = self._group_of(client, by)
        return self._groups[key]

    def _group_of(self, client: str, by: str) -> str:
        record = self.clients.get(client)
        if record is None:
            return UNKNOWN
        if by in ("age_band", "substance_group"):
            started = [e for e in record.episodes if e.start <= self.period.end]
            return _episode_attribute(started[-1], by) if started else UNKNOWN
        demographics = record.latest(DEMOGRAPHICS, self.period.end)
        value = demographics.data.get(by) if demographics else None
        return str(value) if value not in (None, "") else UNKNOWN

    def episode_group(self, episode: Episode) -> str:
        if self.by in ("age_band", "substance_group"):
            return _episode_attribute(episode, self.by)
        return self.group(episode.client)

    # -- questions ---------------------------------------------------------------------
    def in_treatment(self, record: ClientRecord) -> bool:
        """An episode open on at least one day of the period."""
        return any(e.open_during(self.period.start, self.period.end) for e in record.episodes)

    def treated(self) -> list[ClientRecord]:
        """The clients in treatment in the period (worked out once: most measures ask)."""
        if self._treated is None:
            self._treated = [r for r in self.clients.values() if self.in_treatment(r)]
        return self._treated

    def ended_in_period(self, record: ClientRecord) -> list[Episode]:
        return [e for e in record.episodes if e.end is not None and e.end in self.period]

    def completions(self, record: ClientRecord) -> list[Episode]:
        return [e for e in self.ended_in_period(record) if e.reason in SUCCESSFUL]

    def top_pair(self, record: ClientRecord) -> TopPair | None:
        """The latest start profile on or before the period's last day and the latest
        review or exit profile after it that was recorded in the period."""
        if record.client not in self._top_pairs:
            self._top_pairs[record.client] = self._top_pair(record)
        return self._top_pairs[record.client]

    def _top_pair(self, record: ClientRecord) -> TopPair | None:
        tops = record.of(TOP, until=self.period.end)
        starts = [t for t in tops if t.data.get("stage") == "start"]
        if not starts:
            return None
        start = starts[-1]
        later = [t for t in tops if t.position > start.position and t.day in self.period
                 and t.data.get("stage") in ("review", "exit")]
        if not later:
            return None
        return TopPair(start.data, later[-1].data)


def _episode_attribute(episode: Episode, by: str) -> str:
    value = episode.age_band if by == "age_band" else episode.substance_group
    return str(value) if value is not None else UNKNOWN


Computation = Callable[[Cohort], list[Counted]]


@dataclass(frozen=True)
class Measure:
    """One entry of the measure catalogue. ``count`` picks out the units the measure
    counts; ``denominator_of`` names the measure whose units are this rate's denominator
    (their figures are the same numbers); ``fixed_by`` a grouping the measure always has."""

    id: str
    title: str
    definition: str
    unit: Unit
    categories: frozenset[DataCategory]
    kind: Kind
    count: Computation = field(repr=False, compare=False)
    denominator_of: str | None = None
    fixed_by: str | None = None

    def describe(self) -> dict[str, Any]:
        """The catalogue entry as the API serves it."""
        return {
            "id": self.id, "title": self.title, "definition": self.definition,
            "unit": self.unit, "kind": self.kind,
            "categories": sorted(c.value for c in self.categories),
            **({"denominator": self.denominator_of} if self.denominator_of else {}),
            **({"by": self.fixed_by} if self.fixed_by else {}),
        }


# -- the computations ------------------------------------------------------------------
def _in_treatment(c: Cohort) -> list[Counted]:
    return [Counted(c.group(r.client)) for r in c.treated()]


def _new_presentations(c: Cohort) -> list[Counted]:
    return [Counted(c.episode_group(e)) for r in c.clients.values() for e in r.episodes
            if e.start in c.period]


def _successful_completions(c: Cohort) -> list[Counted]:
    return [Counted(c.episode_group(e)) for r in c.clients.values() for e in c.completions(r)]


def _represented(record: ClientRecord, completion: Episode) -> bool:
    """A new episode started within 183 days of the completion's end (on or after it)."""
    assert completion.end is not None and completion.end_position is not None
    return any(
        e.start_position > completion.end_position
        and completion.end <= e.start <= completion.end + REPRESENTATION
        for e in record.episodes
    )


def _completion_no_representation(c: Cohort) -> list[Counted]:
    return [Counted(c.group(r.client),
                    hit=any(not _represented(r, e) for e in c.completions(r)))
            for r in c.treated()]


def _early_unplanned_exits(c: Cohort) -> list[Counted]:
    return [Counted(c.episode_group(e)) for r in c.clients.values()
            for e in c.ended_in_period(r)
            if e.reason == DROPPED_OUT and e.end is not None and e.end - e.start <= EARLY_EXIT]


def _section(top: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = top.get(name)
    return section if isinstance(section, Mapping) else {}


def _crime_days(top: Mapping[str, Any]) -> int:
    crime = _section(top, "crime")
    return int(crime.get("shoplifting_days", 0)) + int(crime.get("selling_drugs_days", 0))


def _top_pairs(c: Cohort, *needs: str) -> list[tuple[ClientRecord, TopPair]]:
    """Clients in treatment with a start and a follow-up profile whose sections ``needs``
    are both shared."""
    found = []
    for record in c.treated():
        pair = c.top_pair(record)
        if pair and all(n in pair.start and n in pair.follow_up for n in needs):
            found.append((record, pair))
    return found


def _top_followed_up(c: Cohort) -> list[Counted]:
    return [Counted(c.group(r.client)) for r, _ in _top_pairs(c)]


def _crime_days_change(c: Cohort) -> list[Counted]:
    return [Counted(c.group(r.client), amount=_crime_days(p.follow_up) - _crime_days(p.start))
            for r, p in _top_pairs(c, "crime")]


def _crime_days_reduced(c: Cohort) -> list[Counted]:
    return [Counted(c.group(r.client), hit=_crime_days(p.follow_up) < _crime_days(p.start))
            for r, p in _top_pairs(c, "crime") if _crime_days(p.start) > 0]


def _health(top: Mapping[str, Any], score: str) -> Any:
    return _section(top, "health_and_social_functioning").get(score)


def _housing_at(stage: Literal["start", "follow_up"]) -> Computation:
    def compute(c: Cohort) -> list[Counted]:
        counted = []
        for record, pair in _top_pairs(c, "health_and_social_functioning"):
            top = pair.start if stage == "start" else pair.follow_up
            counted.append(Counted(c.group(record.client),
                                   hit=bool(_health(top, "acute_housing_problem"))))
        return counted
    return compute


def _score_change(score: str) -> Computation:
    def compute(c: Cohort) -> list[Counted]:
        counted = []
        for record, pair in _top_pairs(c, "health_and_social_functioning"):
            before, after = _health(pair.start, score), _health(pair.follow_up, score)
            if isinstance(before, int) and isinstance(after, int):
                counted.append(Counted(c.group(record.client), amount=after - before))
        return counted
    return compute


def _criminal_justice_breaches(c: Cohort) -> list[Counted]:
    counted = []
    for record in c.treated():
        statuses = [f for f in record.of(CRIMINAL_JUSTICE) if f.day in c.period]
        if statuses:
            counted.append(Counted(c.group(record.client),
                                   hit=any(f.data.get("status") == "breached" for f in statuses)))
    return counted


def _is_parent(fact: ReportFact | None) -> bool:
    if fact is None:
        return False
    children = fact.data.get("children_in_household")
    return fact.data.get("parental_responsibility") is True or (
        isinstance(children, int) and children > 0)


def _parents_in_treatment(c: Cohort) -> list[Counted]:
    return [Counted(c.group(r.client)) for r in c.treated()
            if _is_parent(r.latest(HOUSEHOLD, c.period.end))]


def _household_asked(c: Cohort) -> list[Counted]:
    return [Counted(c.group(r.client), hit=bool(r.of(HOUSEHOLD, until=c.period.end)))
            for r in c.treated()]


def _paid_work_at_exit(c: Cohort) -> list[Counted]:
    counted = []
    for record in c.clients.values():
        exits = [t for t in record.of(TOP) if t.day in c.period and t.data.get("stage") == "exit"
                 and "health_and_social_functioning" in t.data]
        if exits:
            days = _health(exits[-1].data, "days_paid_work")
            counted.append(Counted(c.group(record.client),
                                   hit=isinstance(days, int) and days >= PAID_WORK_DAYS))
    return counted


def _employed_after_discharge(c: Cohort) -> list[Counted]:
    counted = []
    for record in c.clients.values():
        completions = c.completions(record)
        if not completions:
            continue
        first = completions[0]
        assert first.end is not None and first.end_position is not None
        employed = any(f.data.get("status") == "employed" and f.day >= first.end
                       and f.position > first.end_position for f in record.of(EMPLOYMENT))
        counted.append(Counted(c.group(record.client), hit=employed))
    return counted


def _alerts_to(kind: str) -> Callable[[Cohort], list[AlertFact]]:
    def raised(c: Cohort) -> list[AlertFact]:
        return [a for a in c.alerts if a.recipient_kind == kind and a.raised_at.date() in c.period]
    return raised


def _alerts_raised(kind: str) -> Computation:
    raised = _alerts_to(kind)
    return lambda c: [Counted(c.group(a.client)) for a in raised(c)]


def _alerts_in_time(kind: str) -> Computation:
    raised = _alerts_to(kind)
    return lambda c: [Counted(c.group(a.client), hit=a.acknowledged_in_time) for a in raised(c)]


def _recorded_by_end(test: Callable[[ReportFact], bool], *types: str) -> Computation:
    def compute(c: Cohort) -> list[Counted]:
        return [Counted(c.group(r.client),
                        hit=any(test(f) for f in r.of(*types, until=c.period.end)))
                for r in c.treated()]
    return compute


def _hepatitis_c_tested(fact: ReportFact) -> bool:
    return fact.data.get("virus") == "hepatitis_c" and fact.data.get("result") not in (
        None, "declined")


def _hepatitis_b_vaccinated(fact: ReportFact) -> bool:
    return fact.data.get("vaccine") == "hepatitis_b" and fact.data.get("course_completed") is True


def _dual_diagnosis_in_service(c: Cohort) -> list[Counted]:
    counted = []
    for record in c.treated():
        concern = record.latest(MENTAL_HEALTH, c.period.end)
        in_service = concern is not None and concern.data.get("in_mental_health_service")
        counted.append(Counted(c.group(record.client), hit=in_service is True))
    return counted


def _alcohol_completions(c: Cohort) -> list[Counted]:
    counted = []
    for record in c.clients.values():
        alcohol = [e for e in record.episodes if e.substance_group is SubstanceGroup.ALCOHOL_ONLY
                   and e.open_during(c.period.start, c.period.end)]
        if alcohol:
            counted.append(Counted(c.group(record.client), hit=any(
                e.end is not None and e.end in c.period and e.reason in SUCCESSFUL
                for e in alcohol)))
    return counted


def _penetration(c: Cohort) -> list[Counted]:
    return [Counted(c.group(r.client, "ethnicity")) for r in c.treated()]


# -- the catalogue ---------------------------------------------------------------------
T = frozenset({C.TREATMENT})
TOP_READS = frozenset({C.TREATMENT, C.OUTCOMES})
_ENTRIES = [
    Measure("in_treatment", "Clients in treatment",
            "Clients with a treatment episode open on at least one day of the period.",
            "clients", T, "count", _in_treatment),
    Measure("new_presentations", "New presentations",
            "Treatment episodes that started in the period.",
            "episodes", T, "count", _new_presentations),
    Measure("successful_completions", "Successful completions",
            "Treatment episodes that ended in the period with the discharge reason "
            "completed_drug_free or completed_occasional_user.",
            "episodes", T, "count", _successful_completions),
    Measure("completion_no_representation",
            "Successful completions not re-presenting within six months (PHOF C19)",
            "Clients in treatment in the period with a successful completion in the period "
            "after which they started no new episode within 183 days of its end (as far as "
            "the log holds), as a percentage of the clients in treatment in the period.",
            "clients", T, "rate", _completion_no_representation, denominator_of="in_treatment"),
    Measure("early_unplanned_exits", "Early unplanned exits",
            "Treatment episodes that ended in the period as dropped_out at most 84 days "
            "(12 weeks) after they started.",
            "episodes", T, "count", _early_unplanned_exits),
    Measure("top_followed_up", "Outcomes profiles followed up",
            "Clients in treatment in the period with a Treatment Outcomes Profile at the "
            "start (on or before the period's last day) and a later review or exit profile "
            "recorded in the period: the clients the outcome changes below are measured on.",
            "clients", TOP_READS, "count", _top_followed_up),
    Measure("crime_days_change", "Change in crime days (re-offending)",
            "The mean change, from the start profile to the latest review or exit profile, "
            "in the days of shoplifting and of selling drugs in the past 28 days (TOP "
            "section 3), over the clients followed up; negative is fewer days.",
            "clients", TOP_READS, "mean", _crime_days_change, denominator_of="top_followed_up"),
    Measure("crime_days_reduced", "Offenders offending on fewer days (re-offending)",
            "Of the clients followed up who reported shoplifting or selling drugs on any day "
            "at the start, the percentage reporting fewer such days at review or exit.",
            "clients", TOP_READS, "rate", _crime_days_reduced),
    Measure("criminal_justice_breaches", "Criminal-justice orders breached (re-offending)",
            "Of the clients in treatment with a criminal-justice status recorded in the "
            "period, the percentage with a breach recorded in the period.",
            "clients", frozenset({C.TREATMENT, C.CRIMINAL_JUSTICE}), "rate",
            _criminal_justice_breaches),
    Measure("acute_housing_at_start", "Acute housing problem at start (housing)",
            "Of the clients followed up, the percentage whose start profile reported an acute "
            "housing problem.",
            "clients", TOP_READS, "rate", _housing_at("start"),
            denominator_of="top_followed_up"),
    Measure("acute_housing_at_review_or_exit", "Acute housing problem at review or exit "
            "(housing)",
            "Of the clients followed up, the percentage whose latest review or exit profile "
            "reported an acute housing problem; beside acute_housing_at_start it shows the "
            "change.",
            "clients", TOP_READS, "rate", _housing_at("follow_up"),
            denominator_of="top_followed_up"),
    Measure("parents_in_treatment", "Parents and clients living with children (parenting)",
            "Clients in treatment in the period whose latest household record on or before "
            "the period's last day shows parental responsibility or children in the "
            "household.",
            "clients", frozenset({C.TREATMENT, C.SAFEGUARDING_CHILDREN}), "count",
            _parents_in_treatment),
    Measure("household_asked", "Clients asked about children (parenting, under-recording)",
            "The percentage of clients in treatment in the period with any household record "
            "(children in the household, parental responsibility) on or before the period's "
            "last day: those never asked are where children go unrecorded.",
            "clients", frozenset({C.TREATMENT, C.SAFEGUARDING_CHILDREN}), "rate",
            _household_asked, denominator_of="in_treatment"),
    Measure("paid_work_at_exit", "In paid work at exit (employment)",
            f"Of the clients with an exit profile recorded in the period, the percentage "
            f"reporting at least {PAID_WORK_DAYS} days of paid work in the past 28 (their "
            f"latest exit profile in the period).",
            "clients", TOP_READS, "rate", _paid_work_at_exit),
    Measure("employed_after_discharge", "Employed after discharge (employment)",
            "Of the clients with a successful completion in the period, the percentage with "
            "an employment status of employed recorded on or after the day of their first "
            "such completion.",
            "clients", frozenset({C.TREATMENT, C.EMPLOYMENT}), "rate",
            _employed_after_discharge),
    Measure("child_safeguarding_alerts", "Child safeguarding alerts raised",
            "Safeguarding alerts raised in the period to children's services.",
            "alerts", frozenset({C.SAFEGUARDING_CHILDREN}), "count",
            _alerts_raised(CHILDRENS_SERVICES)),
    Measure("child_alerts_acknowledged_in_time", "Child safeguarding alerts acknowledged in "
            "time",
            "Of the alerts raised in the period to children's services, the percentage "
            "acknowledged by their deadline.",
            "alerts", frozenset({C.SAFEGUARDING_CHILDREN}), "rate",
            _alerts_in_time(CHILDRENS_SERVICES), denominator_of="child_safeguarding_alerts"),
    Measure("adult_safeguarding_alerts", "Adult safeguarding alerts raised",
            "Safeguarding alerts raised in the period to adult social care.",
            "alerts", frozenset({C.SAFEGUARDING_ADULTS}), "count",
            _alerts_raised(ADULT_SOCIAL_CARE)),
    Measure("adult_alerts_acknowledged_in_time", "Adult safeguarding alerts acknowledged in "
            "time",
            "Of the alerts raised in the period to adult social care, the percentage "
            "acknowledged by their deadline.",
            "alerts", frozenset({C.SAFEGUARDING_ADULTS}), "rate",
            _alerts_in_time(ADULT_SOCIAL_CARE), denominator_of="adult_safeguarding_alerts"),
    Measure("psychological_health_change", "Change in psychological health score",
            "The mean change in the self-rated psychological health score (0-20, TOP "
            "section 4) from the start profile to the latest review or exit profile, over the "
            "clients followed up; positive is better.",
            "clients", TOP_READS, "mean", _score_change("psychological_health"),
            denominator_of="top_followed_up"),
    Measure("physical_health_change", "Change in physical health score",
            "The mean change in the self-rated physical health score (0-20, TOP section 4) "
            "from the start profile to the latest review or exit profile, over the clients "
            "followed up; positive is better.",
            "clients", TOP_READS, "mean", _score_change("physical_health"),
            denominator_of="top_followed_up"),
    Measure("hepatitis_c_tested", "Tested for hepatitis C",
            "The percentage of clients in treatment in the period with a hepatitis C test "
            "(any result but declined) recorded on or before the period's last day.",
            "clients", frozenset({C.TREATMENT, C.BLOOD_BORNE_VIRUSES}), "rate",
            _recorded_by_end(_hepatitis_c_tested, BBV_TEST), denominator_of="in_treatment"),
    Measure("hepatitis_b_vaccinated", "Vaccinated against hepatitis B",
            "The percentage of clients in treatment in the period with a completed hepatitis "
            "B vaccination course recorded on or before the period's last day.",
            "clients", frozenset({C.TREATMENT, C.BLOOD_BORNE_VIRUSES}), "rate",
            _recorded_by_end(_hepatitis_b_vaccinated, BBV_VACCINATION),
            denominator_of="in_treatment"),
    Measure("domestic_abuse_recorded", "Domestic abuse recorded",
            "The percentage of clients in treatment in the period with a domestic abuse risk "
            "or incident (as victim or perpetrator) recorded on or before the period's last "
            "day.",
            "clients", frozenset({C.TREATMENT, C.DOMESTIC_ABUSE}), "rate",
            _recorded_by_end(lambda f: True, *DA_TYPES), denominator_of="in_treatment"),
    Measure("dual_diagnosis", "Dual diagnosis",
            "The percentage of clients in treatment in the period with a mental health "
            "concern recorded on or before the period's last day.",
            "clients", frozenset({C.TREATMENT, C.MENTAL_HEALTH}), "rate",
            _recorded_by_end(lambda f: True, MENTAL_HEALTH), denominator_of="in_treatment"),
    Measure("dual_diagnosis_in_mental_health_service", "Dual diagnosis cared for jointly",
            "The percentage of clients in treatment in the period whose latest mental health "
            "concern on or before the period's last day says they are in a mental health "
            "service; beside dual_diagnosis, the difference is those who fall between teams.",
            "clients", frozenset({C.TREATMENT, C.MENTAL_HEALTH}), "rate",
            _dual_diagnosis_in_service, denominator_of="in_treatment"),
    Measure("alcohol_completions", "Alcohol clients completing treatment",
            "Of the clients with an alcohol-only episode open in the period, the percentage "
            "with an alcohol-only episode ended in the period as a successful completion.",
            "clients", T, "rate", _alcohol_completions),
    Measure("penetration_by_ethnicity", "Clients in treatment by ethnicity",
            "Each ethnic group's share (per cent) of the clients in treatment in the period "
            "(ethnicity from the latest demographics record), beside the group's share of "
            "the population the partnership configures; always grouped by ethnicity.",
            "clients", frozenset({C.TREATMENT, C.DEMOGRAPHICS}), "share", _penetration,
            fixed_by="ethnicity"),
]

MEASURES: dict[str, Measure] = {m.id: m for m in _ENTRIES}


def compute(facts_by_client: Mapping[str, Sequence[ReportFact]], period: Period,
            by: str | None, *, alerts: Sequence[AlertFact] = (),
            population: Mapping[str, float] | None = None,
            measures: Iterable[str] | None = None) -> dict[str, MeasureResult]:
    """Every measure (or those named) for the period, grouped ``by`` if given.

    ``facts_by_client`` maps a pseudonym to the facts the commissioner may see about that
    client; ``population`` is the configured share (per cent) of each ethnic group in the
    population, published beside penetration. Raises ValueError for an unknown grouping
    or measure. Every group any client or episode falls in appears in every grouped
    measure, with 0 where it counts nothing, so the tables line up."""
    if by is not None and by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    chosen = [MEASURES[m] for m in measures] if measures is not None else list(MEASURES.values())
    cohort = Cohort(facts_by_client, period, by, alerts)
    results: dict[str, MeasureResult] = {}
    all_groups: dict[str, list[str]] = {}
    for measure in chosen:
        grouping = measure.fixed_by or by
        cohort.by = grouping
        counted = measure.count(cohort)
        groups: list[str] = []
        if grouping:
            if grouping not in all_groups:
                all_groups[grouping] = _all_groups(cohort, grouping)
            groups = all_groups[grouping]
        results[measure.id] = _result(measure, counted, grouping, groups, population)
    cohort.by = by
    return results


def _all_groups(cohort: Cohort, by: str) -> list[str]:
    found = {cohort.group(client, by) for client in cohort.clients}
    found |= {cohort.group(a.client, by) for a in cohort.alerts}
    if by in ("age_band", "substance_group"):
        found |= {_episode_attribute(e, by) for r in cohort.clients.values() for e in r.episodes}
    return sorted(found, key=lambda g: (g == UNKNOWN, g))


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _figures(kind: Kind, counted: Sequence[Counted], whole: int | None = None) -> GroupResult:
    if kind == "count":
        return GroupResult(len(counted))
    if kind == "share":
        assert whole is not None
        return GroupResult(_percent(len(counted), whole), len(counted), whole)
    if kind == "mean":
        mean = round(sum(c.amount for c in counted) / len(counted), 1) if counted else None
        return GroupResult(mean, None, len(counted))
    hits = sum(1 for c in counted if c.hit)
    return GroupResult(_percent(hits, len(counted)), hits, len(counted))


def _result(measure: Measure, counted: Sequence[Counted], by: str | None, groups: list[str],
            population: Mapping[str, float] | None) -> MeasureResult:
    whole = len(counted)
    total = _figures(measure.kind, counted, whole)
    if measure.kind == "share":  # the whole is 100% of itself
        total = GroupResult(_percent(whole, whole), whole, whole)
    by_group: dict[str, GroupResult] | None = None
    if by is not None:
        by_group = {g: _figures(measure.kind, [c for c in counted if c.group == g], whole)
                    for g in groups}
    reference = None
    if measure.kind == "share" and population is not None:
        reference = {g: float(population.get(g, 0.0)) for g in groups}
    return MeasureResult(
        measure=measure.id, kind=measure.kind, value=total.value, numerator=total.numerator,
        denominator=total.denominator, groups=by_group, by=by, reference=reference,
        denominator_of=measure.denominator_of,
    )
