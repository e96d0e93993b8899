"""The event catalogue, without a database: one realistic payload of every fact type, what
each schema refuses and names, and the categories of the sensitive types."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain.catalogue import CATALOGUE, InvalidPayload, UnknownFactType, fact_type
from domain.categories import DataCategory
from tests.builders import FACT_EXAMPLES

# -- the catalogue -------------------------------------------------------------------------

def test_every_fact_type_has_an_example_here() -> None:
    assert set(FACT_EXAMPLES) == set(CATALOGUE)


@pytest.mark.parametrize("name", sorted(FACT_EXAMPLES))
def test_each_fact_type_accepts_a_realistic_payload_unchanged(name: str) -> None:
    entry = fact_type(name)
    canonical = entry.validate(FACT_EXAMPLES[name])
    assert canonical == FACT_EXAMPLES[name]
    assert set(canonical) == set(entry.fields)
    assert json.loads(json.dumps(canonical)) == canonical
    assert entry.validate(canonical) == canonical
    assert isinstance(entry.category, DataCategory)


@pytest.mark.parametrize("name", sorted(FACT_EXAMPLES))
def test_each_fact_type_refuses_unknown_fields(name: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        fact_type(name).validate({**FACT_EXAMPLES[name], "client_name": "Ann Example"})
    assert caught.value.fact_type == name
    assert [e["field"] for e in caught.value.errors] == ["data.client_name"]


def test_unknown_fields_are_refused_inside_nested_sections() -> None:
    payload = json.loads(json.dumps(FACT_EXAMPLES["treatment_outcomes_profile"]))
    payload["substance_use"]["heroin"] = 3
    with pytest.raises(InvalidPayload) as caught:
        fact_type("treatment_outcomes_profile").validate(payload)
    assert [e["field"] for e in caught.value.errors] == ["data.substance_use.heroin"]


@pytest.mark.parametrize(
    ("name", "change", "field"),
    [
        ("referral_received", {"substances": []}, "data.substances"),
        ("referral_received", {"source": "neighbour"}, "data.source"),
        ("prescription_changed", {"daily_dose_mg": -1}, "data.daily_dose_mg"),
        ("intervention_recorded", {"sessions": 0}, "data.sessions"),
        ("household_updated", {"children_in_household": "two"}, "data.children_in_household"),
        ("child_safeguarding_concern_raised", {"summary": "x" * 281}, "data.summary"),
        ("domestic_abuse_incident_recorded", {"police_reference": "a b"},
         "data.police_reference"),
        ("blood_borne_virus_vaccination", {"vaccine": "measles"}, "data.vaccine"),
        ("care_plan_agreed", {"review_on": "soon"}, "data.review_on"),
        ("clinical_note_added", {"text": ""}, "data.text"),
    ],
)
def test_payload_values_outside_the_schema_are_refused_and_named(
    name: str, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidPayload) as caught:
        fact_type(name).validate({**FACT_EXAMPLES[name], **change})
    assert [e["field"] for e in caught.value.errors] == [field]


def test_top_day_counts_are_limited_to_the_past_28_days() -> None:
    payload = json.loads(json.dumps(FACT_EXAMPLES["treatment_outcomes_profile"]))
    payload["substance_use"]["opiates"] = 29
    with pytest.raises(InvalidPayload) as caught:
        fact_type("treatment_outcomes_profile").validate(payload)
    assert [e["field"] for e in caught.value.errors] == ["data.substance_use.opiates"]


def test_missing_required_fields_are_named() -> None:
    with pytest.raises(InvalidPayload) as caught:
        fact_type("prescription_changed").validate({"medication": "methadone"})
    assert {e["field"] for e in caught.value.errors} == {
        "data.change", "data.daily_dose_mg", "data.supervised_consumption"
    }


def test_categories_of_sensitive_fact_types() -> None:
    assert fact_type("clinical_note_added").category is DataCategory.CLINICAL_NOTES
    assert fact_type("criminal_justice_status").category is DataCategory.CRIMINAL_JUSTICE
    assert fact_type("household_updated").category is DataCategory.SAFEGUARDING_CHILDREN
    assert fact_type("prescription_changed").category is DataCategory.PRESCRIBING


def test_an_unknown_fact_type_is_refused() -> None:
    with pytest.raises(UnknownFactType):
        fact_type("gossip_recorded")
