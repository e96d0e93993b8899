"""Outcome measures for commissioners (issue 14), worked out by hand.

A small partnership of fifteen clients over the financial year 2026-27 (1 April 2026 to
31 March 2027, both days included). Every figure asserted below is counted in the comments
from the facts listed here, not from the code under test. Ethnicity codes are the NHS Data
Dictionary's (A White British, C any other White, H Indian, J Pakistani, N African, Z not
stated); areas are Luton (E06000032), Bedford (E06000055) and Central Bedfordshire
(E06000056).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from api.demo import COMMISSIONING_SHARES, demo_agreements
from domain.agreements import AgreementTerms
from domain.categories import DataCategory
from projections.reports.disclosure import publish, publish_rows
from projections.reports.episodes import SubstanceGroup, episodes, substance_group
from projections.reports.measures import GROUPINGS, MEASURES, compute
from projections.reports.model import AlertFact, Period, ReportFact
from projections.reports.projection import (
    age_band,
)

YEAR = Period(date(2026, 4, 1), date(2027, 3, 31))
LUTON, BEDFORD, CENTRAL = "E06000032", "E06000055", "E06000056"


def _demo(ethnicity: str, sex: str, area: str) -> dict[str, Any]:
    return {"sex": sex, "ethnicity": ethnicity, "area": area}


def _start(*substances: str, modality: str = "psychosocial") -> dict[str, Any]:
    return {"modality": modality, "substances": list(substances)}


def _end(reason: str, modality: str = "psychosocial") -> dict[str, Any]:
    return {"modality": modality, "discharge_reason": reason}


def _top(stage: str, *, shop: int = 0, sell: int = 0, psych: int = 10, phys: int = 10,
         housing: bool = False, work: int = 0) -> dict[str, Any]:
    return {
        "stage": stage,
        "substance_use": {"alcohol": 0, "opiates": 0, "crack": 0, "cocaine": 0,
                          "amphetamines": 0, "cannabis": 0, "other": 0},
        "injecting": {"days_injected": 0, "shared_equipment": False},
        "crime": {"shoplifting_days": shop, "selling_drugs_days": sell, "other_theft": False,
                  "assault_or_violence": False},
        "health_and_social_functioning": {
            "psychological_health": psych, "physical_health": phys, "quality_of_life": 10,
            "days_paid_work": work, "days_education": 0, "acute_housing_problem": housing,
            "at_risk_of_eviction": False},
    }


# (client, day, fact type, data), in the order they happened
LOG: list[tuple[str, str, str, dict[str, Any]]] = [
    # c1: White British woman, Luton. Opiate episode from before the year, completed drug
    # free on 30 June; never back. TOP start (8 crime days, psych 8, phys 10, acute housing
    # problem) and exit (none, 14, 13, housed, 12 days' paid work). A parent; hepatitis C
    # tested, hepatitis B course completed; employed after discharge.
    ("c1", "2026-01-05", "demographics_recorded", _demo("A", "female", LUTON)),
    ("c1", "2026-01-10", "treatment_episode_started", _start("opioids")),
    ("c1", "2026-01-15", "treatment_outcomes_profile",
     _top("start", shop=6, sell=2, psych=8, phys=10, housing=True)),
    ("c1", "2026-04-10", "household_updated",
     {"children_in_household": 2, "parental_responsibility": True}),
    ("c1", "2026-05-01", "blood_borne_virus_test", {"virus": "hepatitis_c", "result": "negative"}),
    ("c1", "2026-05-20", "blood_borne_virus_vaccination",
     {"vaccine": "hepatitis_b", "dose": 3, "course_completed": True}),
    ("c1", "2026-06-30", "treatment_outcomes_profile",
     _top("exit", psych=14, phys=13, work=12)),
    ("c1", "2026-06-30", "treatment_episode_ended", _end("completed_drug_free")),
    ("c1", "2026-08-01", "employment_status_recorded", {"status": "employed"}),
    # c2: White British man, Luton. Alcohol episode 1 May to 15 September (completed as an
    # occasional user), back on 1 December (77 days later: a re-presentation), still open.
    # TOP start (psych 10, phys 12) and review (11, 11, acute housing problem). Mental
    # health concern, in a mental health service. Unemployed after discharge.
    ("c2", "2026-04-20", "demographics_recorded", _demo("A", "male", LUTON)),
    ("c2", "2026-05-01", "treatment_episode_started", _start("alcohol")),
    ("c2", "2026-05-02", "treatment_outcomes_profile", _top("start", psych=10, phys=12)),
    ("c2", "2026-06-01", "mental_health_concern_recorded",
     {"concern": "anxiety", "risk_level": "medium", "in_mental_health_service": True}),
    ("c2", "2026-08-01", "treatment_outcomes_profile",
     _top("review", psych=11, phys=11, housing=True)),
    ("c2", "2026-09-15", "treatment_episode_ended", _end("completed_occasional_user")),
    ("c2", "2026-10-01", "employment_status_recorded", {"status": "unemployed"}),
    ("c2", "2026-12-01", "treatment_episode_started", _start("alcohol")),
    # c3: African woman, Bedford. Crack and cocaine (non-opiate) from 1 June, dropped out on
    # 20 July (49 days: early). Asked about children (none). Domestic abuse risk.
    # A criminal-justice status before the year only.
    ("c3", "2026-03-01", "criminal_justice_status",
     {"order": "community_order", "status": "started", "ends_on": None}),
    ("c3", "2026-05-30", "demographics_recorded", _demo("N", "female", BEDFORD)),
    ("c3", "2026-06-01", "treatment_episode_started", _start("crack", "cocaine")),
    ("c3", "2026-06-05", "household_updated",
     {"children_in_household": 0, "parental_responsibility": False}),
    ("c3", "2026-06-10", "domestic_abuse_risk_recorded",
     {"role": "victim", "risk_level": "high", "marac_referral": True}),
    ("c3", "2026-07-20", "treatment_episode_ended", _end("dropped_out")),
    # c4: African man, Bedford. Opiate episode from November 2025, dropped out on 15 May
    # (195 days: not early). TOP start (3 crime days, psych 6, phys 9, acute housing
    # problem) and review (5 crime days, 5, 9, still a housing problem). Order compliant,
    # then breached. Mental health concern, not in a service. Hepatitis C test declined.
    ("c4", "2025-10-30", "demographics_recorded", _demo("N", "male", BEDFORD)),
    ("c4", "2025-11-01", "treatment_episode_started", _start("opioids")),
    ("c4", "2025-11-02", "treatment_outcomes_profile",
     _top("start", shop=3, psych=6, phys=9, housing=True)),
    ("c4", "2026-04-20", "treatment_outcomes_profile",
     _top("review", shop=5, psych=5, phys=9, housing=True)),
    ("c4", "2026-05-01", "criminal_justice_status",
     {"order": "drug_rehabilitation_requirement", "status": "compliant", "ends_on": None}),
    ("c4", "2026-05-01", "mental_health_concern_recorded",
     {"concern": "low_mood", "risk_level": "standard", "in_mental_health_service": False}),
    ("c4", "2026-05-10", "blood_borne_virus_test", {"virus": "hepatitis_c", "result": "declined"}),
    ("c4", "2026-05-15", "treatment_episode_ended", _end("dropped_out")),
    ("c4", "2026-09-01", "criminal_justice_status",
     {"order": "drug_rehabilitation_requirement", "status": "breached", "ends_on": None}),
    # c5: ethnicity not stated, man, Central Bedfordshire. Cannabis and alcohol from the
    # year's last day.
    ("c5", "2027-03-30", "demographics_recorded", _demo("Z", "male", CENTRAL)),
    ("c5", "2027-03-31", "treatment_episode_started", _start("cannabis", "alcohol")),
    # c6: Indian woman. Completed on 31 March 2026, the day before the year: not in it.
    ("c6", "2025-01-01", "demographics_recorded", _demo("H", "female", LUTON)),
    ("c6", "2025-01-01", "treatment_episode_started", _start("opioids")),
    ("c6", "2025-06-01", "mental_health_concern_recorded",
     {"concern": "trauma", "risk_level": "high", "in_mental_health_service": False}),
    ("c6", "2026-03-31", "treatment_episode_ended", _end("completed_drug_free")),
    # c7: no demographics shared. Alcohol from 1 August, discharged completed drug free on
    # the year's last day; never back.
    ("c7", "2026-08-01", "treatment_episode_started", _start("alcohol")),
    ("c7", "2027-03-31", "discharged", {"reason": "completed_drug_free"}),
    # c8: recorded as any other White (C) in September, re-recorded as A after the year:
    # C in this year's reports. Opiates from 1 October, dropped out on 24 December (84 days,
    # exactly twelve weeks: early), back on 10 January. A TOP start but no follow-up. One
    # child in the household (no parental responsibility). Domestic abuse incident.
    ("c8", "2026-09-01", "demographics_recorded", _demo("C", "female", LUTON)),
    ("c8", "2026-10-01", "treatment_episode_started", _start("opioids")),
    ("c8", "2026-10-02", "treatment_outcomes_profile", _top("start", shop=2)),
    ("c8", "2026-10-05", "household_updated",
     {"children_in_household": 1, "parental_responsibility": False}),
    ("c8", "2026-11-01", "domestic_abuse_incident_recorded",
     {"role": "victim", "children_present": False, "police_reference": None}),
    ("c8", "2026-12-24", "treatment_episode_ended", _end("dropped_out")),
    ("c8", "2027-01-10", "treatment_episode_started", _start("opioids")),
    ("c8", "2027-05-01", "demographics_recorded", _demo("A", "female", LUTON)),
    # c9: starts the day after the year (and its demographics come after it too).
    ("c9", "2027-04-01", "demographics_recorded", _demo("B", "male", LUTON)),
    ("c9", "2027-04-01", "treatment_episode_started", _start("opioids")),
    # c10: White British man, Luton. Opiates from 15 April, completed 30 November, back on
    # 1 June 2027: exactly 183 days later, a re-presentation. TOP start and exit (5 days'
    # work: under 10). Employed before discharge only.
    ("c10", "2026-04-14", "demographics_recorded", _demo("A", "male", LUTON)),
    ("c10", "2026-04-15", "treatment_episode_started", _start("opioids")),
    ("c10", "2026-04-16", "treatment_outcomes_profile", _top("start", psych=12, phys=14)),
    ("c10", "2026-11-01", "employment_status_recorded", {"status": "employed"}),
    ("c10", "2026-11-30", "treatment_outcomes_profile",
     _top("exit", psych=15, phys=16, work=5)),
    ("c10", "2026-11-30", "treatment_episode_ended", _end("completed_drug_free")),
    ("c10", "2027-06-01", "treatment_episode_started", _start("opioids")),
    # c11: Pakistani woman, Central Bedfordshire. Opiates from March 2026, completed 1 July,
    # back on 1 January 2027: 184 days later, not a re-presentation (but a new
    # presentation). Employed after discharge. Asked about children only after the year.
    ("c11", "2026-02-20", "demographics_recorded", _demo("J", "female", CENTRAL)),
    ("c11", "2026-03-01", "treatment_episode_started", _start("opioids")),
    ("c11", "2026-07-01", "treatment_episode_ended", _end("completed_drug_free")),
    ("c11", "2027-01-01", "treatment_episode_started", _start("opioids")),
    ("c11", "2027-02-01", "employment_status_recorded", {"status": "employed"}),
    ("c11", "2027-05-01", "household_updated",
     {"children_in_household": 3, "parental_responsibility": True}),
    # c12: White British man, Luton, opiates since February 2026, open. TOP start (4 days
    # selling, psych 9, phys 10) and review (1 day shoplifting, 12, 10). Order compliant.
    # Hepatitis C test pending; first hepatitis B dose.
    ("c12", "2026-01-20", "demographics_recorded", _demo("A", "male", LUTON)),
    ("c12", "2026-02-01", "treatment_episode_started", _start("opioids")),
    ("c12", "2026-02-01", "treatment_outcomes_profile", _top("start", sell=4, psych=9, phys=10)),
    ("c12", "2026-05-01", "treatment_outcomes_profile",
     _top("review", shop=1, psych=12, phys=10)),
    ("c12", "2026-06-01", "criminal_justice_status",
     {"order": "licence", "status": "compliant", "ends_on": None}),
    ("c12", "2026-08-01", "blood_borne_virus_vaccination",
     {"vaccine": "hepatitis_b", "dose": 1, "course_completed": False}),
    ("c12", "2027-03-01", "blood_borne_virus_test", {"virus": "hepatitis_c", "result": "pending"}),
    # c13: White British man, Luton, opiates since February 2026, open. A mental health
    # concern (not in a service) that a later record, after the year, says is in one.
    # Hepatitis C tested only after the year.
    ("c13", "2026-01-20", "demographics_recorded", _demo("A", "male", LUTON)),
    ("c13", "2026-02-01", "treatment_episode_started", _start("opioids")),
    ("c13", "2026-07-01", "mental_health_concern_recorded",
     {"concern": "psychosis", "risk_level": "high", "in_mental_health_service": False}),
    ("c13", "2027-04-02", "blood_borne_virus_test", {"virus": "hepatitis_c", "result": "positive"}),
    ("c13", "2027-05-01", "mental_health_concern_recorded",
     {"concern": "psychosis", "risk_level": "high", "in_mental_health_service": True}),
    # c14, c15: White British men, Luton, opiates since February 2026, open.
    ("c14", "2026-01-20", "demographics_recorded", _demo("A", "male", LUTON)),
    ("c14", "2026-02-01", "treatment_episode_started", _start("opioids")),
    ("c15", "2026-01-20", "demographics_recorded", _demo("A", "male", LUTON)),
    ("c15", "2026-02-01", "treatment_episode_started", _start("opioids")),
]


def _at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def partnership() -> dict[str, list[ReportFact]]:
    ordered = sorted(enumerate(LOG), key=lambda item: (item[1][1], item[0]))
    facts: dict[str, list[ReportFact]] = {}
    for position, (_, (client, day, fact_type, data)) in enumerate(ordered, start=1):
        facts.setdefault(client, []).append(
            ReportFact(client, position, fact_type, _at(day), "northshire-tp", data))
    return facts


# Alerts: two to children's services in the year (c1's acknowledged the same day, c8's two
# days after its one-day deadline) and one before it (c8, March 2026); two to adult social
# care (c4's never acknowledged, c12's the next day, a day early).
ALERTS = [
    AlertFact("c1", "child_safeguarding_concern", "childrens_services", _at("2026-05-01"),
              _at("2026-05-02"), _at("2026-05-01", 15)),
    AlertFact("c8", "toxic_trio", "childrens_services", _at("2026-10-06"), _at("2026-10-07"),
              _at("2026-10-09")),
    AlertFact("c8", "child_safeguarding_concern", "childrens_services", _at("2026-03-20"),
              _at("2026-03-21"), _at("2026-03-20", 13)),
    AlertFact("c4", "adult_safeguarding_concern", "adult_social_care", _at("2026-06-01"),
              _at("2026-06-03"), None),
    AlertFact("c12", "adult_safeguarding_concern", "adult_social_care", _at("2026-07-01"),
              _at("2026-07-03"), _at("2026-07-02")),
]
POPULATION = {"A": 70.0, "C": 5.0, "H": 4.0, "J": 6.0, "N": 3.0, "Z": 1.0}


def year(by: str | None = None) -> dict[str, Any]:
    return {m: r for m, r in compute(partnership(), YEAR, by, alerts=ALERTS,
                                     population=POPULATION).items()}


# In treatment in the year (an episode open on some day of it): c1, c2, c3, c4, c5 (from
# its last day), c7, c8, c10, c11, c12, c13, c14, c15 = 13. Not c6 (ended the day before)
# nor c9 (started the day after).
# New presentations (episodes started in the year): c2 twice (May, December), c3, c5, c7,
# c8 twice (October, January), c10, c11 (January) = 9.
# Successful completions (episodes ended in the year as completed_*): c1, c2, c7 (by
# discharge), c10, c11 = 5.
# Completion without re-presentation: of those, c1 and c7 never came back; c2 came back
# after 77 days and c10 after exactly 183 (both re-presentations); c11 after 184 days
# (not one) = c1, c7, c11 = 3 of the 13 in treatment = 23.1%.
# Early unplanned exits (dropped out within 84 days): c3 (49 days) and c8 (84 days) = 2;
# not c4 (195 days).
EXACT = {
    "in_treatment": {"value": 13},
    "new_presentations": {"value": 9},
    "successful_completions": {"value": 5},
    "completion_no_representation": {"value": 23.1, "numerator": 3, "denominator": 13},
    "early_unplanned_exits": {"value": 2},
}


def _without_groups(measures: dict[str, Any]) -> dict[str, Any]:
    return {m: {k: v for k, v in shaped.items() if k not in ("groups", "population_share")}
            for m, shaped in measures.items()}


def test_the_measures_with_exact_ids_internal() -> None:
    internal = _without_groups(publish(year(), "internal"))
    for measure, expected in EXACT.items():
        assert internal[measure] == expected, measure


def test_the_measures_with_exact_ids_public() -> None:
    # 13, 9 and 5 are shown; 2 early exits and the 3 completions without re-presentation
    # are 1 to 4, so "*", and so is the rate built on 3. The 13 beside it stays: 13 less an
    # unknown number from 1 to 13 gives nothing away.
    public = _without_groups(publish(year(), "public"))
    assert public["in_treatment"] == {"value": 13}
    assert public["new_presentations"] == {"value": 9}
    assert public["successful_completions"] == {"value": 5}
    assert public["completion_no_representation"] == {
        "value": "*", "numerator": "*", "denominator": 13}
    assert public["early_unplanned_exits"] == {"value": "*"}


# By ethnicity (as at 31 March 2027; c7 and c9 have none shared: "unknown"; c8 is C):
# in treatment A: c1, c2, c10, c12, c13, c14, c15 = 7; C: c8 = 1; H: 0 (c6 not in
# treatment); J: c11 = 1; N: c3, c4 = 2; Z: c5 = 1; unknown: c7 = 1.
# New presentations A: c2 x2, c10 = 3; C: c8 x2 = 2; J: c11 = 1; N: c3 = 1; Z: c5 = 1;
# unknown: c7 = 1; H 0.
# Successful completions A: c1, c2, c10 = 3; J: c11 = 1; unknown: c7 = 1.
# Completion without re-presentation: A: c1 of 7 = 14.3%; C: 0 of 1; H: nothing to
# divide by; J: c11 of 1 = 100%; N: 0 of 2; Z: 0 of 1; unknown: c7 of 1 = 100%.
# Early unplanned exits C: c8 = 1; N: c3 = 1.
GROUPS = ["A", "C", "H", "J", "N", "Z", "unknown"]


def test_the_measures_with_exact_ids_by_ethnicity_internal() -> None:
    internal = publish(year("ethnicity"), "internal")
    assert internal["in_treatment"]["groups"] == {
        "A": 7, "C": 1, "H": 0, "J": 1, "N": 2, "Z": 1, "unknown": 1}
    assert internal["new_presentations"]["groups"] == {
        "A": 3, "C": 2, "H": 0, "J": 1, "N": 1, "Z": 1, "unknown": 1}
    assert internal["successful_completions"]["groups"] == {
        "A": 3, "C": 0, "H": 0, "J": 1, "N": 0, "Z": 0, "unknown": 1}
    assert internal["completion_no_representation"]["groups"] == {
        "A": 14.3, "C": 0.0, "H": None, "J": 100.0, "N": 0.0, "Z": 0.0, "unknown": 100.0}
    assert internal["early_unplanned_exits"]["groups"] == {
        "A": 0, "C": 1, "H": 0, "J": 0, "N": 1, "Z": 0, "unknown": 0}


def test_the_measures_with_exact_ids_by_ethnicity_public() -> None:
    # Every count from 1 to 4 is "*" and zeros are shown. In treatment: C, J, N, Z and
    # unknown (1, 1, 2, 1, 1) are hidden beside A's 7 and the total 13: they add up to 6,
    # each is at least 1, so one of the five is 2 and the others 1, and which one cannot be
    # told; nothing more need be hidden. New presentations: every non-zero group is 1 to 4
    # and the 9 is shown. A rate is hidden where its numerator or denominator is: every
    # group of completion_no_representation (A's numerator 1; the others' denominators),
    # but H's, which has nothing to divide by. Early exits: 1 and 1 of a total of 2, all
    # hidden.
    public = publish(year("ethnicity"), "public")
    assert public["in_treatment"] == {"value": 13, "groups": {
        "A": 7, "C": "*", "H": 0, "J": "*", "N": "*", "Z": "*", "unknown": "*"}}
    assert public["new_presentations"] == {"value": 9, "groups": {
        "A": "*", "C": "*", "H": 0, "J": "*", "N": "*", "Z": "*", "unknown": "*"}}
    assert public["successful_completions"] == {"value": 5, "groups": {
        "A": "*", "C": 0, "H": 0, "J": "*", "N": 0, "Z": 0, "unknown": "*"}}
    assert public["completion_no_representation"] == {
        "value": "*", "numerator": "*", "denominator": 13, "groups": {
            "A": "*", "C": "*", "H": None, "J": "*", "N": "*", "Z": "*", "unknown": "*"}}
    assert public["early_unplanned_exits"] == {"value": "*", "groups": {
        "A": 0, "C": "*", "H": 0, "J": 0, "N": "*", "Z": 0, "unknown": 0}}


# The Birmingham outcomes, over the same partnership.
# TOP followed up (a start profile, and a review or exit profile in the year after it):
# c1 (exit), c2 (review), c4 (review), c10 (exit), c12 (review) = 5; c8 has no follow-up.
# Crime days (shoplifting + selling) start -> follow-up: c1 8 -> 0 (-8), c2 0 -> 0, c4
# 3 -> 5 (+2), c10 0 -> 0, c12 4 -> 1 (-3): mean -9/5 = -1.8. Offending at start: c1, c4,
# c12; fewer days later: c1, c12 = 2 of 3 = 66.7%.
# Criminal-justice status recorded in the year (clients in treatment): c4 (compliant, then
# breached), c12 (compliant); c3's is from before it: 1 breach of 2 = 50%.
# Acute housing problem at start: c1, c4 = 2 of 5 = 40%; at review or exit: c2, c4 = 40%.
# Parents or children in the household (latest household record by the year's end): c1
# (two children, parental responsibility), c8 (one child) = 2; c3 was asked (none); c11
# only after the year. Asked: c1, c3, c8 = 3 of 13 = 23.1%.
# Exit profiles in the year: c1 (12 days' paid work), c10 (5): 1 of 2 = 50%.
# Employed after discharge (of the 5 with a successful completion): c1 (August), c11
# (February); not c2 (unemployed), c10 (employed before discharge only), c7 = 2 of 5 = 40%.
# Child alerts raised in the year: c1's and c8's October one = 2, c1's in time = 50%.
# Adult alerts: c4's (never acknowledged) and c12's (in time) = 2, 50%.
# Psychological health: c1 8 -> 14 (+6), c2 10 -> 11 (+1), c4 6 -> 5 (-1), c10 12 -> 15
# (+3), c12 9 -> 12 (+3): 12/5 = 2.4. Physical: +3, -1, 0, +2, 0: 4/5 = 0.8.
# Hepatitis C tested by the year's end (not declined): c1, c12 (pending) = 2 of 13 = 15.4%
# (c4 declined; c13 only after the year). Hepatitis B course completed: c1 = 1 of 13 = 7.7%.
# Domestic abuse recorded: c3 (risk), c8 (incident) = 2 of 13 = 15.4%.
# Dual diagnosis (mental health concern by the year's end, in treatment): c2, c4, c13 =
# 3 of 13 = 23.1% (not c6, not in treatment); in a mental health service by then: c2 = 1
# of 13 = 7.7% (c13's later record is after the year).
# Alcohol-only episodes open in the year: c2 (completed in it), c7 (completed in it); c5's
# is cannabis and alcohol: 2 of 2 = 100%.
# Penetration by ethnicity: of 13, A 7 = 53.8%, C 1 = 7.7%, H 0, J 1 = 7.7%, N 2 = 15.4%,
# Z 1 = 7.7%, unknown 1 = 7.7%; beside the configured population shares.
OUTCOMES = {
    "top_followed_up": {"value": 5},
    "crime_days_change": {"value": -1.8, "denominator": 5},
    "crime_days_reduced": {"value": 66.7, "numerator": 2, "denominator": 3},
    "criminal_justice_breaches": {"value": 50.0, "numerator": 1, "denominator": 2},
    "acute_housing_at_start": {"value": 40.0, "numerator": 2, "denominator": 5},
    "acute_housing_at_review_or_exit": {"value": 40.0, "numerator": 2, "denominator": 5},
    "parents_in_treatment": {"value": 2},
    "household_asked": {"value": 23.1, "numerator": 3, "denominator": 13},
    "paid_work_at_exit": {"value": 50.0, "numerator": 1, "denominator": 2},
    "employed_after_discharge": {"value": 40.0, "numerator": 2, "denominator": 5},
    "child_safeguarding_alerts": {"value": 2},
    "child_alerts_acknowledged_in_time": {"value": 50.0, "numerator": 1, "denominator": 2},
    "adult_safeguarding_alerts": {"value": 2},
    "adult_alerts_acknowledged_in_time": {"value": 50.0, "numerator": 1, "denominator": 2},
    "psychological_health_change": {"value": 2.4, "denominator": 5},
    "physical_health_change": {"value": 0.8, "denominator": 5},
    "hepatitis_c_tested": {"value": 15.4, "numerator": 2, "denominator": 13},
    "hepatitis_b_vaccinated": {"value": 7.7, "numerator": 1, "denominator": 13},
    "domestic_abuse_recorded": {"value": 15.4, "numerator": 2, "denominator": 13},
    "dual_diagnosis": {"value": 23.1, "numerator": 3, "denominator": 13},
    "dual_diagnosis_in_mental_health_service": {"value": 7.7, "numerator": 1,
                                                "denominator": 13},
    "alcohol_completions": {"value": 100.0, "numerator": 2, "denominator": 2},
    "penetration_by_ethnicity": {"value": 100.0, "numerator": 13, "denominator": 13},
}


def test_every_measure_in_the_catalogue_is_worked_out_here() -> None:
    assert set(EXACT) | set(OUTCOMES) == set(MEASURES)


def test_a_denominator_shared_with_another_measure_is_a_count() -> None:
    # disclosure control relies on it (projections/reports/measures.py)
    for measure in MEASURES.values():
        if measure.denominator_of is not None:
            assert MEASURES[measure.denominator_of].kind == "count", measure.id
            assert MEASURES[measure.denominator_of].unit == measure.unit, measure.id
        described = measure.describe()
        assert described["id"] == measure.id and described["definition"]


def test_the_outcome_measures_internal() -> None:
    internal = _without_groups(publish(year(), "internal"))
    for measure, expected in OUTCOMES.items():
        assert internal[measure] == expected, measure


def test_penetration_by_ethnicity_is_always_by_ethnicity_beside_the_population() -> None:
    for by in (None, "sex"):
        internal = publish(year(by), "internal")["penetration_by_ethnicity"]
        assert internal["groups"] == {"A": 53.8, "C": 7.7, "H": 0.0, "J": 7.7, "N": 15.4,
                                      "Z": 7.7, "unknown": 7.7}
        assert internal["population_share"] == {"A": 70.0, "C": 5.0, "H": 4.0, "J": 6.0,
                                                "N": 3.0, "Z": 1.0, "unknown": 0.0}
    # public: the groups of 1 or 2 clients are hidden; A (7 of 13) and H (0) are not.
    public = publish(year(), "public")["penetration_by_ethnicity"]
    assert public["groups"] == {"A": 53.8, "C": "*", "H": 0.0, "J": "*", "N": "*", "Z": "*",
                                "unknown": "*"}


def test_rows_for_csv_carry_the_same_figures() -> None:
    # one row per measure and group (the total's group empty), hidden figures as "*"
    rows = publish_rows(year("ethnicity"), "public")
    in_treatment = [r for r in rows if r["measure"] == "in_treatment"]
    assert [(r["group"], r["value"]) for r in in_treatment] == [
        ("", 13), ("A", 7), ("C", "*"), ("H", 0), ("J", "*"), ("N", "*"), ("Z", "*"),
        ("unknown", "*")]
    assert all(r["by"] == "ethnicity" for r in in_treatment)
    completion = {r["group"]: r for r in rows if r["measure"] == "completion_no_representation"}
    assert (completion["A"]["value"], completion["A"]["numerator"],
            completion["A"]["denominator"]) == ("*", "*", 7)
    exact = {r["group"]: r for r in publish_rows(year("ethnicity"), "internal")
             if r["measure"] == "completion_no_representation"}
    assert (exact["A"]["value"], exact["A"]["numerator"], exact["A"]["denominator"]) == (
        14.3, 1, 7)
    share = {r["group"]: r for r in rows if r["measure"] == "penetration_by_ethnicity"}
    assert (share["A"]["value"], share["A"]["population_share"]) == (53.8, 70.0)


def test_the_outcome_measures_public() -> None:
    # Counts from 1 to 4 are hidden, and every rate or mean resting on one; the 5 clients
    # followed up, the 13 in treatment and the 5 completers are shown, and with them the
    # means over 5 clients.
    public = _without_groups(publish(year(), "public"))
    hidden_rate = {"value": "*", "numerator": "*", "denominator": "*"}
    assert public["top_followed_up"] == {"value": 5}
    assert public["crime_days_change"] == {"value": -1.8, "denominator": 5}
    assert public["psychological_health_change"] == {"value": 2.4, "denominator": 5}
    assert public["physical_health_change"] == {"value": 0.8, "denominator": 5}
    for measure in ("crime_days_reduced", "criminal_justice_breaches", "paid_work_at_exit",
                    "child_alerts_acknowledged_in_time", "adult_alerts_acknowledged_in_time",
                    "alcohol_completions"):
        assert public[measure] == hidden_rate, measure
    for measure in ("acute_housing_at_start", "acute_housing_at_review_or_exit",
                    "employed_after_discharge"):
        assert public[measure] == {"value": "*", "numerator": "*", "denominator": 5}, measure
    for measure in ("household_asked", "hepatitis_c_tested", "hepatitis_b_vaccinated",
                    "domestic_abuse_recorded", "dual_diagnosis",
                    "dual_diagnosis_in_mental_health_service"):
        assert public[measure] == {"value": "*", "numerator": "*", "denominator": 13}, measure
    for measure in ("parents_in_treatment", "child_safeguarding_alerts",
                    "adult_safeguarding_alerts"):
        assert public[measure] == {"value": "*"}, measure
    assert public["penetration_by_ethnicity"] == {"value": 100.0, "numerator": 13,
                                                  "denominator": 13}


def test_groups_by_sex_area_substance_group_and_age_band() -> None:
    # Sex (as at the year's end): women c1, c3, c8, c11 = 4; men c2, c4, c5, c10, c12-c15
    # = 8; unknown c7 = 1. Areas: Luton c1, c2, c8, c10, c12-c15 = 8; Bedford c3, c4 = 2;
    # Central Bedfordshire c5, c11 = 2; unknown c7 = 1. Substance group (latest episode
    # started by the year's end): alcohol only c2, c7 = 2; alcohol and non-opiate c5 = 1;
    # non-opiate c3 = 1; opiate c1, c4, c8, c10, c11, c12-c15 = 9; unknown: 0 (c9, whose
    # first episode starts after the year, is a client of no substance group yet). No age
    # bands shared.
    assert publish(year("sex"), "internal")["in_treatment"]["groups"] == {
        "female": 4, "male": 8, "unknown": 1}
    assert publish(year("area"), "internal")["in_treatment"]["groups"] == {
        LUTON: 8, BEDFORD: 2, CENTRAL: 2, "unknown": 1}
    by_substance = publish(year("substance_group"), "internal")
    assert by_substance["in_treatment"]["groups"] == {
        "alcohol_and_non_opiate": 1, "alcohol_only": 2, "non_opiate": 1, "opiate": 9,
        "unknown": 0}
    # episodes group by their own substances: c2's two and c7's alcohol only, c5's
    # alcohol and non-opiate, c3's non-opiate, c8's two, c10's and c11's opiate
    assert by_substance["new_presentations"]["groups"] == {
        "alcohol_and_non_opiate": 1, "alcohol_only": 3, "non_opiate": 1, "opiate": 4,
        "unknown": 0}
    assert publish(year("age_band"), "internal")["in_treatment"]["groups"] == {"unknown": 13}


def test_the_age_band_comes_from_the_episode_start() -> None:
    facts = partnership()
    facts["c1"] = [f if f.fact_type != "treatment_episode_started"
                   else ReportFact(f.client, f.position, f.fact_type, f.occurred_at,
                                   f.controller, {**f.data, "age_band": "35-44"})
                   for f in facts["c1"]]
    grouped = compute(facts, YEAR, "age_band", measures=["in_treatment",
                                                        "successful_completions"])
    assert grouped["in_treatment"].groups is not None
    assert {g: r.value for g, r in grouped["in_treatment"].groups.items()} == {
        "35-44": 1, "unknown": 12}


def test_an_unknown_grouping_is_refused() -> None:
    assert "ethnicity" in GROUPINGS
    with pytest.raises(ValueError, match="by must be one of"):
        compute(partnership(), YEAR, "postcode")


# -- episodes ------------------------------------------------------------------------------
@pytest.mark.parametrize(("substances", "group"), [
    (["opioids"], SubstanceGroup.OPIATE),
    (["opioids", "crack", "alcohol"], SubstanceGroup.OPIATE),
    (["crack"], SubstanceGroup.NON_OPIATE),
    (["cannabis", "benzodiazepines"], SubstanceGroup.NON_OPIATE),
    (["alcohol"], SubstanceGroup.ALCOHOL_ONLY),
    (["alcohol", "cocaine"], SubstanceGroup.ALCOHOL_AND_NON_OPIATE),
])
def test_ndtms_substance_groups(substances: list[str], group: SubstanceGroup) -> None:
    assert substance_group(substances) is group


def test_no_substances_has_no_group() -> None:
    with pytest.raises(ValueError):
        substance_group([])


def _facts(*entries: tuple[str, str, dict[str, Any]]) -> list[ReportFact]:
    return [ReportFact("x", i, t, _at(day), "tp", data)
            for i, (day, t, data) in enumerate(entries, start=1)]


def test_an_end_closes_the_open_episode_of_its_modality_and_discharge_closes_all() -> None:
    found = episodes(_facts(
        ("2026-01-01", "treatment_episode_ended", _end("other")),  # nothing open: ignored
        ("2026-01-02", "treatment_episode_started",
         _start("opioids", modality="pharmacological")),
        ("2026-01-03", "treatment_episode_started", _start("opioids")),
        ("2026-02-01", "treatment_episode_ended", _end("transferred", "pharmacological")),
        ("2026-03-01", "treatment_episode_started", _start("alcohol", modality="inpatient_detox")),
        ("2026-04-01", "discharged", {"reason": "completed_drug_free"}),
    ))
    assert [(e.modality, e.start, e.end, e.reason) for e in found] == [
        ("pharmacological", date(2026, 1, 2), date(2026, 2, 1), "transferred"),
        ("psychosocial", date(2026, 1, 3), date(2026, 4, 1), "completed_drug_free"),
        ("inpatient_detox", date(2026, 3, 1), date(2026, 4, 1), "completed_drug_free"),
    ]
    assert found[2].substance_group is SubstanceGroup.ALCOHOL_ONLY


def test_an_end_without_its_modality_shared_closes_the_latest_episode() -> None:
    found = episodes(_facts(
        ("2026-01-02", "treatment_episode_started", _start("opioids")),
        ("2026-01-03", "treatment_episode_started", {"substances": ["alcohol"]}),
        ("2026-02-01", "treatment_episode_ended", {"discharge_reason": "dropped_out"}),
    ))
    assert [(e.end, e.substance_group) for e in found] == [
        (None, SubstanceGroup.OPIATE), (date(2026, 2, 1), SubstanceGroup.ALCOHOL_ONLY)]


def test_a_period_ends_on_or_after_it_starts() -> None:
    with pytest.raises(ValueError):
        Period(date(2026, 2, 1), date(2026, 1, 31))
    assert date(2026, 1, 31) in Period(date(2026, 1, 1), date(2026, 1, 31))


# -- age bands -----------------------------------------------------------------------------


def test_age_bands_are_ndtms_bands() -> None:
    born = date(1985, 4, 12)
    assert age_band(born, date(2025, 4, 11)) == "35-39"
    assert age_band(born, date(2025, 4, 12)) == "40-44"
    assert age_band(date(2007, 6, 1), date(2025, 5, 31)) == "under 18"
    assert age_band(date(2007, 6, 1), date(2025, 6, 1)) == "18-24"
    assert age_band(date(1950, 1, 1), date(2025, 1, 1)) == "65+"


# -- the demo's commissioning agreement ----------------------------------------------------

DEMO_COMMISSIONER = "northshire-commissioning"


def test_the_commissioners_agreement_shares_what_the_measures_read_and_no_identity() -> None:
    [terms] = [AgreementTerms.model_validate(raw) for _, raw in demo_agreements()
               if raw["recipient"] == DEMO_COMMISSIONER]
    read = {category for measure in MEASURES.values() for category in measure.categories}
    assert read <= set(terms.categories)
    assert DataCategory.IDENTITY not in terms.categories
    assert terms.categories == {DataCategory(k): v for k, v in COMMISSIONING_SHARES.items()}
    assert [p.value for p in terms.purposes] == ["commissioning"]
