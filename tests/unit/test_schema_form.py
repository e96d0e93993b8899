"""Forms generated from the catalogue's JSON Schema (api/ui/schema_form.py): each fact
type's form asks for its fields as the NHS design system does, reads back exactly the
payload the catalogue accepts, and says the catalogue's refusals in words beside the
fields they concern."""

from __future__ import annotations

from typing import Any

import pytest

from api.ui.schema_form import (
    Form,
    FormField,
    Kind,
    choice_labels,
    errors_of,
    every_field,
    fields_of,
    payload_of,
    values_of,
    words,
)
from domain.catalogue import CATALOGUE, InvalidPayload, fact_type
from tests.builders import FACT_EXAMPLES


def schema(name: str) -> dict[str, Any]:
    return CATALOGUE[name].schema.model_json_schema()


def typed(fields: list[FormField], shown: dict[str, Any]) -> Form:
    """The form a browser would send for fields showing ``shown`` (``values_of``)."""
    sent: dict[str, list[str]] = {}
    for f in every_field(fields):
        if f.kind is Kind.GROUP:
            continue
        value = shown[f.name]
        if f.kind is Kind.CHECKBOXES:
            sent[f.input_name] = list(value)
        elif f.kind is Kind.DATE:
            for part in ("day", "month", "year"):
                sent[f"{f.id}-{part}"] = [value[part]]
        else:
            sent[f.input_name] = [value]
    return Form(sent)


def refusal(name: str, data: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(InvalidPayload) as refused:
        fact_type(name).validate(data)
    return refused.value.errors


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_fact_type_round_trips_through_its_form(name: str) -> None:
    """Shown in the form and sent back unchanged, every example payload (every field
    given) is read as the very payload the catalogue holds."""
    fields = fields_of(schema(name))
    example = fact_type(name).validate(FACT_EXAMPLES[name])
    sent = typed(fields, values_of(fields, example, None))
    assert fact_type(name).validate(payload_of(fields, sent)) == example


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_a_fresh_form_shows_the_defaults_and_an_empty_one_names_every_required_field(
        name: str) -> None:
    fields = fields_of(schema(name))
    fresh = values_of(fields, None, None)
    for f in every_field(fields):
        if f.kind in (Kind.YES_NO,) and f.default is False:
            assert fresh[f.name] == "false"
    refused = errors_of(fields, _errors(name, payload_of(fields, Form({}))))
    required = {f.name for f in every_field(fields) if f.required and f.kind is not Kind.GROUP
                and f.default is None}
    assert required <= set(refused)


def _errors(name: str, data: dict[str, Any]) -> list[dict[str, str]]:
    try:
        fact_type(name).validate(data)
    except InvalidPayload as exc:
        return exc.errors
    return []


def test_kinds_follow_the_schema() -> None:
    kinds = {f.name: f.kind for f in every_field(fields_of(schema("treatment_outcomes_profile")))}
    assert kinds["stage"] is Kind.RADIOS  # a pattern of alternatives is a choice
    assert kinds["substance_use"] is Kind.GROUP
    assert kinds["substance_use.opiates"] is Kind.INTEGER
    assert kinds["injecting.shared_equipment"] is Kind.YES_NO
    prescription = {f.name: f for f in fields_of(schema("prescription_changed"))}
    assert prescription["daily_dose_mg"].kind is Kind.NUMBER
    assert prescription["daily_dose_mg"].label == "Daily dose (mg)"
    assert prescription["medication"].kind is Kind.RADIOS
    referral = {f.name: f for f in fields_of(schema("referral_received"))}
    assert referral["source"].kind is Kind.SELECT  # nine choices: too many for radios
    assert referral["substances"].kind is Kind.CHECKBOXES
    order = {f.name: f for f in fields_of(schema("criminal_justice_status"))}
    assert order["ends_on"].kind is Kind.DATE and not order["ends_on"].required
    care = {f.name: f for f in fields_of(schema("care_plan_agreed"))}
    assert care["goals"].kind is Kind.LINES
    assert {f.name: f for f in fields_of(schema("clinical_note_added"))}["text"].kind \
        is Kind.TEXTAREA
    episode = {f.name: f for f in fields_of(schema("treatment_episode_started"))}
    assert episode["key_worker"].hint == "The key worker leading the client's care in this episode"


def test_what_is_typed_is_sent_as_typed_for_the_catalogue_to_judge() -> None:
    fields = fields_of(schema("household_updated"))
    sent = Form({"data.children_in_household": ["two"], "data.parental_responsibility":
                 ["true"], "data-due-date-day": ["31"], "data-due-date-month": ["2"],
                 "data-due-date-year": ["2027"]})
    data = payload_of(fields, sent)
    assert data == {"children_in_household": "two", "parental_responsibility": True,
                    "due_date": "2027-02-31"}
    messages = errors_of(fields, refusal("household_updated", data))
    assert messages == {"children_in_household": "Children in household must be a whole "
                                                 "number from 0 to 20",
                        "due_date": "Due date must be a real date"}


def test_refusals_are_said_in_words_beside_their_fields() -> None:
    fields = fields_of(schema("treatment_outcomes_profile"))
    data = {"stage": "sideways", "substance_use": {"opiates": 40}, "injecting": {},
            "crime": {}, "health_and_social_functioning": {"physical_health": 3,
                                                           "quality_of_life": 3}}
    messages = errors_of(fields, refusal("treatment_outcomes_profile", data))
    assert messages == {
        "stage": "Choose one of the options for stage",
        "substance_use.opiates": "Opiates must be a whole number from 0 to 28",
        "health_and_social_functioning.psychological_health": "Enter psychological health",
    }
    care = fields_of(schema("care_plan_agreed"))
    messages = errors_of(care, refusal("care_plan_agreed", {"goals": ["x" * 300]}))
    assert messages == {"goals": "Each line of goals must be 280 characters or fewer",
                        "review_on": "Enter review on"}
    referral = fields_of(schema("referral_received"))
    assert errors_of(referral, refusal("referral_received", {"source": "gp", "substances": []})
                     ) == {"substances": "Select at least one for substances"}


def test_lines_and_checkboxes_read_as_lists() -> None:
    fields = fields_of(schema("care_plan_agreed"))
    data = payload_of(fields, Form({"data.goals": ["reduce use\r\n\r\n  stable housing  \n"],
                                    "data-review-on-day": ["1"], "data-review-on-month": ["2"],
                                    "data-review-on-year": ["2027"]}))
    assert data == {"goals": ["reduce use", "stable housing"], "review_on": "2027-02-01"}
    fields = fields_of(schema("referral_received"))
    assert payload_of(fields, Form({"data.source": ["gp"], "data.substances": ["crack",
                                                                              "alcohol"]})
                      ) == {"source": "gp", "substances": ["crack", "alcohol"]}


def test_a_code_is_offered_and_shown_by_its_name() -> None:
    """The catalogue names each ethnic category code (``enumNames``): the form offers the
    names, and a recorded code is shown by its name."""
    demographics = {f.name: f for f in fields_of(schema("demographics_recorded"))}
    ethnicity = demographics["ethnicity"]
    assert ethnicity.kind is Kind.SELECT
    assert ethnicity.choices[0].value == "A" and ethnicity.choices[0].text == "White: British"
    assert ethnicity.hint is None  # the enum's docstring is about codes, not for the form
    labels = choice_labels(schema("demographics_recorded"))
    assert labels["ethnicity"]["Z"] == "Not stated"
    assert labels["sex"]["not_stated"] == "Not stated"
    assert "children_present" not in choice_labels(schema("domestic_abuse_incident_recorded"))


def test_words() -> None:
    assert words("daily_dose_mg") == "Daily dose (mg)"
    assert words("section_42_enquiry") == "Section 42 enquiry"
    assert words("stage") == "Stage"
