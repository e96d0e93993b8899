"""The safeguarding rules as pure functions: each rule, its windows' boundaries, different
agencies, and "newly holding" (one finding per situation, not one per later fact)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from domain.agencies import AgencyKind
from domain.alerts import Severity
from domain.rules import (
    RuleConfig,
    RuleFact,
    Situation,
    adult_concern,
    child_concern,
    disengagement,
    evaluate_fact,
    multi_agency_concerns,
    newly_holding,
    pregnancy_in_treatment,
    toxic_trio,
)

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
CONFIG = RuleConfig()
_positions = itertools.count(1)
A, B = uuid4(), uuid4()


def f(fact_type: str, days: float = 0, client: UUID = A, controller: str = "tp",
      **data: Any) -> RuleFact:
    return RuleFact(next(_positions), client, fact_type, controller,
                    T0 + timedelta(days=days), data)


def situation(*facts: RuleFact, members: tuple[UUID, ...] = (A,),
              household: UUID | None = None) -> Situation:
    return Situation(household, members, tuple(sorted(facts, key=lambda x: x.position)))


def children(days: float = -60, count: int = 2, client: UUID = A, **extra: Any) -> RuleFact:
    return f("household_updated", days, client, children_in_household=count,
             parental_responsibility=True, **extra)


def episode(days: float = -50, substances: tuple[str, ...] = ("opioids",),
            client: UUID = A) -> RuleFact:
    return f("treatment_episode_started", days, client, modality="pharmacological",
             substances=list(substances))


# -- fact rules ---------------------------------------------------------------------------

def test_a_child_concern_from_any_agency_goes_to_childrens_services() -> None:
    for controller in ("tp", "police", "northshire-mh-trust"):
        concern = f("child_safeguarding_concern_raised", controller=controller,
                    concern="neglect", summary="Left alone.", children_affected=1)
        [finding] = child_concern(concern, situation(concern))
        assert finding.recipients == (AgencyKind.CHILDRENS_SERVICES,)
        assert finding.controllers == {controller}
        assert finding.severity is Severity.MEDIUM
        assert "Left alone" not in finding.reason
    serious = f("child_safeguarding_concern_raised", concern="sexual_abuse",
                summary="x", children_affected=1)
    assert child_concern(serious, situation(serious))[0].severity is Severity.HIGH
    other = f("adult_safeguarding_concern_raised", concern="neglect", summary="x")
    assert child_concern(other, situation(other)) == []


def test_an_adult_concern_goes_to_adult_social_care() -> None:
    concern = f("adult_safeguarding_concern_raised", concern="self_neglect", summary="x",
                section_42_enquiry=True)
    [finding] = adult_concern(concern, situation(concern))
    assert finding.recipients == (AgencyKind.ADULT_SOCIAL_CARE,)
    assert "s.42" in finding.reason
    assert adult_concern(children(), situation(children())) == []


# -- the toxic trio -------------------------------------------------------------------------

def trio(abuse_days: float = -5, mental_days: float = -10) -> list[RuleFact]:
    return [children(), episode(),
            f("domestic_abuse_risk_recorded", abuse_days, B, "police", role="perpetrator",
              risk_level="high"),
            f("mental_health_concern_recorded", mental_days, A, "northshire-mh-trust",
              concern="low_mood", risk_level="medium")]


def test_the_toxic_trio_needs_all_four_in_one_household() -> None:
    facts = trio()
    household = situation(*facts, members=(A, B), household=uuid4())
    [finding] = toxic_trio(household, T0, CONFIG)
    assert finding.severity is Severity.HIGH
    assert finding.recipients == (AgencyKind.CHILDRENS_SERVICES,)
    assert finding.controllers == {"tp", "police", "northshire-mh-trust"}
    for missing in range(4):
        partial = [x for i, x in enumerate(facts) if i != missing]
        assert toxic_trio(situation(*partial, members=(A, B)), T0, CONFIG) == []
    # Apart (B's abuse not in A's situation), nobody sees it.
    assert toxic_trio(situation(*[x for x in facts if x.client_id == A]), T0, CONFIG) == []


def test_the_toxic_trio_window_is_inclusive_and_configurable() -> None:
    window = CONFIG.toxic_trio_window.days
    at_edge = situation(*trio(abuse_days=-window), members=(A, B))
    assert toxic_trio(at_edge, T0, CONFIG)
    outside = situation(*trio(abuse_days=-window - 0.001), members=(A, B))
    assert toxic_trio(outside, T0, CONFIG) == []
    assert toxic_trio(outside, T0, RuleConfig(toxic_trio_window=timedelta(days=window + 1)))


def test_no_toxic_trio_once_treatment_has_ended_or_without_children() -> None:
    facts = trio()
    ended = f("discharged", -1, reason="completed_drug_free")
    assert toxic_trio(situation(*facts, ended, members=(A, B)), T0, CONFIG) == []
    no_children = children(-1, count=0)
    assert toxic_trio(situation(*facts, no_children, members=(A, B)), T0, CONFIG) == []


# -- a parent disengaging --------------------------------------------------------------------

def missed(days: float) -> RuleFact:
    return f("appointment_missed", days, appointment="keywork")


def test_three_missed_appointments_in_28_days_inclusive() -> None:
    base = [children(), episode()]
    [finding] = disengagement(situation(*base, missed(-28), missed(-10), missed(0)), T0,
                              CONFIG)
    assert finding.client_id == A
    assert "3 appointments in 28 days" in finding.reason
    assert disengagement(situation(*base, missed(-28.01), missed(-10), missed(0)), T0,
                         CONFIG) == []
    assert disengagement(situation(*base, missed(-10), missed(0)), T0, CONFIG) == []
    # Without children in the household it is not this rule's business.
    assert disengagement(situation(episode(), missed(-2), missed(-1), missed(0)), T0,
                         CONFIG) == []


def test_dropped_out_counts_whether_discharged_or_episode_ended() -> None:
    for dropped in (f("discharged", 0, reason="dropped_out"),
                    f("treatment_episode_ended", 0, modality="psychosocial",
                      discharge_reason="dropped_out")):
        [finding] = disengagement(situation(children(), episode(), dropped), T0, CONFIG)
        assert "dropped out" in finding.reason
    done = f("discharged", 0, reason="completed_drug_free")
    assert disengagement(situation(children(), episode(), done), T0, CONFIG) == []


def test_the_third_miss_fires_and_the_fourth_does_not() -> None:
    facts = [children(), episode(), missed(-3), missed(-2)]
    third = missed(-1)
    now = situation(*facts, third)
    assert [x.rule for x in evaluate_fact(third, now, CONFIG)] == ["parent_disengaging"]
    fourth = missed(0)
    later = situation(*facts, third, fourth)
    assert evaluate_fact(fourth, later, CONFIG) == []


# -- pregnancy -----------------------------------------------------------------------------

def test_pregnancy_in_treatment_for_opioids_or_alcohol() -> None:
    pregnant = children(-1, count=0, pregnant=True)
    for substances in (("opioids",), ("alcohol", "cannabis")):
        [finding] = pregnancy_in_treatment(situation(episode(substances=substances), pregnant),
                                           T0, CONFIG)
        assert finding.recipients == (AgencyKind.CHILDRENS_SERVICES, AgencyKind.PRIMARY_CARE)
    assert pregnancy_in_treatment(situation(episode(substances=("cannabis",)), pregnant), T0,
                                  CONFIG) == []
    assert pregnancy_in_treatment(situation(pregnant), T0, CONFIG) == []  # not in treatment
    # The latest household record counts: no longer pregnant, no finding.
    after = children(0, count=1, pregnant=False)
    assert pregnancy_in_treatment(situation(episode(), pregnant, after), T0, CONFIG) == []


# -- concerns from several agencies -----------------------------------------------------------

def test_two_agencies_concerns_within_seven_days_inclusive() -> None:
    first = f("domestic_abuse_incident_recorded", -7, B, "police", role="victim",
              children_present=False)
    second = f("mental_health_concern_recorded", 0, A, "northshire-mh-trust",
               concern="anxiety", risk_level="medium")
    [finding] = multi_agency_concerns(situation(first, second, members=(A, B)), T0, CONFIG)
    assert finding.recipients == (AgencyKind.ADULT_SOCIAL_CARE,)  # no children known
    assert finding.severity is Severity.HIGH
    with_children = situation(children(client=B), first, second, members=(A, B))
    assert multi_agency_concerns(with_children, T0, CONFIG)[0].recipients == (
        AgencyKind.CHILDRENS_SERVICES,)
    late = f("domestic_abuse_incident_recorded", -7.01, B, "police", role="victim",
             children_present=False)
    assert multi_agency_concerns(situation(late, second, members=(A, B)), T0, CONFIG) == []
    same_agency = f("mental_health_concern_recorded", -1, A, "northshire-mh-trust",
                    concern="trauma", risk_level="medium")
    assert multi_agency_concerns(situation(same_agency, second), T0, CONFIG) == []


def test_linking_a_household_fires_what_holds_only_together() -> None:
    facts = trio()
    apart = [situation(*[x for x in facts if x.client_id == A]),
             situation(*[x for x in facts if x.client_id == B], members=(B,))]
    together = situation(*facts, members=(A, B), household=uuid4())
    assert [x.rule for x in newly_holding(together, apart, T0, CONFIG)] == ["toxic_trio"]
    # Already holding for one of them before: not new.
    assert newly_holding(together, [together], T0, CONFIG) == []
