"""The report endpoints (``/v1/reports/...``) on both databases: who may read them, what
they say (never a client id or identity), disclosure control over the API, the access
record of each read, and numbers that follow a withdrawal."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient

from api.bootstrap import Accord
from domain.agencies import AgencyKind, Role
from domain.application import OPERATOR
from tests.builders import (
    ACCESS_TOPIC,
    COMMISSIONER,
    NHS_NUMBERS,
    SHARED,
    STARTED,
    VALID_IDENTITY,
    Partnership,
    Story,
    access_records,
)

PERIOD = "from=2025-04-01&to=2026-03-31"
def headers(partnership: Partnership, agency: str = COMMISSIONER,
            role: Role = Role.COMMISSIONER) -> dict[str, str]:
    return partnership.headers(agency, role)


def outcomes(api: TestClient, partnership: Partnership, query: str = "", *,
             role: Role = Role.COMMISSIONER, accept: str | None = None) -> httpx.Response:
    """The outcomes, once the reports include everything written so far."""
    head = partnership.accord.app.head_position()
    extra = {"Accept": accept} if accept else {}
    answer: httpx.Response = api.get(
        f"/v1/reports/outcomes?{PERIOD}&min_position={head}{query}",
        headers={**headers(partnership, role=role), **extra})
    return answer


def seeded(accord: Accord, partnership: Partnership) -> Story:
    """Five clients of the treatment provider under an agreement for commissioning (two
    women, three men; one completion, one early exit), and one of the other provider whose
    consent lets the commissioner count it."""
    story = Story(accord, partnership)
    story.agree("tp", SHARED)
    story.agree("tp2", {"treatment": SHARED["treatment"]}, consent=True)
    for n, sex in enumerate(["female", "female", "male", "male", "male"]):
        client = story.client(born=f"19{70 + 5 * n}-01-01")
        story.fact(client, "demographics_recorded",
                   {"sex": sex, "ethnicity": "A", "area": "E06000032"})
        story.episode(client, ended={0: "completed_drug_free", 1: "dropped_out"}.get(n),
                      days=100 if n == 0 else 50)
    theirs = story.client("tp2")
    story.episode(theirs, "tp2")
    story.app.give_consent(
        theirs, recipient_agency=None, recipient_kind=AgencyKind.COMMISSIONER,
        categories=["treatment"], purposes=["commissioning"], data_from=None, data_to=None,
        expires_at=None, obtained="written", by=story.actor("tp2"))
    return story


def test_a_commissioner_never_receives_a_client_id_or_an_identity(
        accord: Accord, partnership: Partnership, api: TestClient) -> None:
    story = seeded(accord, partnership)
    secrets = {NHS_NUMBERS[i] for i in range(len(story.clients))}
    secrets |= {VALID_IDENTITY[k] for k in ("given_name", "family_name", "postcode")}
    secrets |= {c.hex for c in story.clients} | {str(c) for c in story.clients}
    secrets |= {VALID_IDENTITY["nhs_number"], VALID_IDENTITY["nhs_number"].replace(" ", "")}
    answers = [api.get("/v1/reports/measures", headers=headers(partnership))]
    for by in ("", "&by=ethnicity", "&by=sex", "&by=age_band", "&by=substance_group",
               "&by=area"):
        for disclosure in ("&disclosure=internal", "&disclosure=public", ""):
            answers.append(outcomes(api, partnership, by + disclosure))
            answers.append(outcomes(api, partnership, by + disclosure, accept="text/csv"))
            answers.append(api.get(f"/v1/reports/outcomes.csv?{PERIOD}{by}{disclosure}",
                                   headers=headers(partnership)))
    for answer in answers:
        assert answer.status_code == 200, answer.text
        for secret in secrets:
            assert secret not in answer.text, (answer.request.url, secret)
    grouped = outcomes(api, partnership, "&by=age_band&disclosure=internal").json()
    assert set(grouped["measures"]["in_treatment"]["groups"]) == {
        "55-59", "50-54", "45-49", "40-44", "35-39", "unknown"}  # bands, never a date


def test_internal_figures_are_exact_and_public_ones_hide_small_counts(
        accord: Accord, partnership: Partnership, api: TestClient) -> None:
    seeded(accord, partnership)
    internal = outcomes(api, partnership, "&by=sex&disclosure=internal")
    public = outcomes(api, partnership, "&by=sex")  # public is the default
    assert internal.status_code == public.status_code == 200
    exact, shown = internal.json(), public.json()
    assert (exact["disclosure"], shown["disclosure"]) == ("internal", "public")
    assert exact["period"] == shown["period"] == {"from": "2025-04-01", "to": "2026-03-31"}
    assert exact["by"] == "sex"
    assert exact["measures"]["in_treatment"] == {
        "value": 6, "groups": {"female": 2, "male": 3, "unknown": 1}}
    assert exact["measures"]["successful_completions"]["value"] == 1
    assert exact["measures"]["early_unplanned_exits"]["value"] == 1
    assert exact["measures"]["completion_no_representation"] == {
        "value": 16.7, "numerator": 1, "denominator": 6,
        "groups": {"female": 50.0, "male": 0.0, "unknown": 0.0}}
    # Every group is 1 to 4: hidden, and the total with them (it would give away the last).
    assert shown["measures"]["in_treatment"]["groups"] == {
        "female": "*", "male": "*", "unknown": "*"}
    assert shown["measures"]["successful_completions"]["value"] == "*"
    completion = shown["measures"]["completion_no_representation"]
    assert completion["value"] == completion["numerator"] == "*"


def test_the_csv_has_a_row_per_measure_and_group(
        accord: Accord, partnership: Partnership, api: TestClient) -> None:
    seeded(accord, partnership)
    answer = outcomes(api, partnership, "&by=sex&disclosure=internal", accept="text/csv")
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    in_treatment = {row["group"]: row["value"] for row in rows
                    if row["measure"] == "in_treatment"}
    assert in_treatment == {"": "6", "female": "2", "male": "3", "unknown": "1"}
    same = api.get(f"/v1/reports/outcomes.csv?{PERIOD}&by=sex&disclosure=internal",
                   headers=headers(partnership))
    assert same.text == answer.text


def test_each_read_is_an_access_record_naming_the_measures_and_the_period_not_a_client(
        accord: Accord, partnership: Partnership, api: TestClient) -> None:
    seeded(accord, partnership)
    before = access_records(accord)
    answer = outcomes(api, partnership, "&by=area&disclosure=internal")
    assert answer.status_code == 200
    assert access_records(accord) == before + 1
    record = _last_access(accord)
    assert (record["action"], record["purpose"], record["outcome"]) == (
        "reports", "commissioning", "returned")
    assert record["client_id"] is None and record["client_ids"] == []
    detail = json.loads(record["detail"])
    assert (detail["from"], detail["to"], detail["by"], detail["disclosure"]) == (
        "2025-04-01", "2026-03-31", "area", "internal")
    assert "in_treatment" in detail["measures"]
    assert {(i["category"], i["controller"]) for i in record["returned"]} >= {
        ("treatment", "tp"), ("demographics", "tp"), ("treatment", "tp2")}
    assert all(i["position"] is None for i in record["returned"])
    # The measure catalogue is no read of client data: not recorded.
    api.get("/v1/reports/measures", headers=headers(partnership))
    assert access_records(accord) == before + 1


def _last_access(accord: Accord) -> dict[str, Any]:
    recorder, mapper = accord.app.recorder, accord.app.mapper
    found = recorder.select_notifications(start=0, limit=10**6, topics=[ACCESS_TOPIC],
                                          inclusive_of_start=False)
    event = mapper.to_domain_event(found[-1])
    return {k: (str(v) if k == "client_id" and v is not None else v)
            for k, v in event.__dict__.items()}


def test_a_withdrawal_changes_the_numbers(
        accord: Accord, partnership: Partnership, api: TestClient) -> None:
    story = Story(accord, partnership)
    story.agree("tp2", {"treatment": SHARED["treatment"]}, consent=True)
    consents = []
    for _ in range(6):
        client = story.client("tp2")
        story.episode(client, "tp2")
        consent_id, _ = story.app.give_consent(
            client, recipient_agency=COMMISSIONER, recipient_kind=None,
            categories=["treatment"], purposes=["commissioning"], data_from=None,
            data_to=None, expires_at=None, obtained="written", by=story.actor("tp2"))
        consents.append((client, consent_id))
    first = outcomes(api, partnership, "&disclosure=internal").json()
    assert first["measures"]["in_treatment"]["value"] == 6
    client, consent_id = consents[0]
    story.app.withdraw_consent(client, consent_id, "no longer", story.actor("tp2"))
    after = outcomes(api, partnership, "&disclosure=internal").json()
    assert after["measures"]["in_treatment"]["value"] == 5
    assert outcomes(api, partnership).json()["measures"]["in_treatment"]["value"] == 5


def test_who_may_read_the_reports(accord: Accord, partnership: Partnership,
                                  api: TestClient) -> None:
    seeded(accord, partnership)
    assert outcomes(api, partnership, role=Role.IG_LEAD).status_code == 200
    for agency, role in (("tp", Role.IG_LEAD), ("tp", Role.PRACTITIONER),
                         (COMMISSIONER, Role.ADMIN), ("police", Role.IG_LEAD)):
        answer = api.get(f"/v1/reports/outcomes?{PERIOD}", headers=headers(
            partnership, agency, role))
        assert answer.status_code == 403, (agency, role, answer.text)
    assert api.get("/v1/reports/measures",
                   headers=headers(partnership, "tp", Role.IG_LEAD)).status_code == 200
    assert api.get("/v1/reports/measures",
                   headers=headers(partnership, "tp", Role.PRACTITIONER)).status_code == 403
    assert api.get(f"/v1/reports/outcomes?{PERIOD}").status_code == 401


def test_the_measure_catalogue_defines_each_measure(
        accord: Accord, partnership: Partnership, api: TestClient) -> None:
    answer = api.get("/v1/reports/measures", headers=headers(partnership))
    assert answer.status_code == 200
    by_id = {m["id"]: m for m in answer.json()}
    for mid in ("in_treatment", "new_presentations", "successful_completions",
                "completion_no_representation", "early_unplanned_exits"):
        assert by_id[mid]["definition"] and "treatment" in by_id[mid]["categories"]
    assert by_id["completion_no_representation"]["kind"] == "rate"
    assert by_id["completion_no_representation"]["denominator"] == "in_treatment"


def test_a_bad_period_is_a_422_naming_the_field(
        accord: Accord, partnership: Partnership, api: TestClient) -> None:
    before = access_records(accord)
    for query, field in (("from=2026-01-02&to=2026-01-01", "to"),
                         ("from=2026-1-2&to=2026-02-01", "from"),
                         ("from=2026-01-02&to=tomorrow", "to"),
                         ("from=1700000000&to=2026-02-01", "from"),
                         ("from=2010-01-01&to=2026-01-01", "to"),
                         ("to=2026-01-01", "from"),
                         ("from=2025-01-01&to=2026-01-01&by=postcode", "by"),
                         ("from=2025-01-01&to=2026-01-01&disclosure=exact", "disclosure")):
        answer = api.get(f"/v1/reports/outcomes?{query}", headers=headers(partnership))
        assert answer.status_code == 422, (query, answer.text)
        assert [e["field"] for e in answer.json()["errors"]] == [field], query
    assert access_records(accord) == before  # nothing was read


def test_an_agency_registered_later_is_reported_too(
        accord: Accord, partnership: Partnership, api: TestClient) -> None:
    """A second commissioner (a new partnership board) sees only what its own agreement
    shares, from the moment it is in force, and the first commissioner's figures stay."""
    story = seeded(accord, partnership)
    accord.app.register_agency("board", "Board", AgencyKind.COMMISSIONER, OPERATOR)
    token = accord.app.add_principal("board", Role.COMMISSIONER, "Board analyst", OPERATOR)
    accord.app.add_principal("board", Role.IG_LEAD, "Board IG", OPERATOR)
    board = {"Authorization": f"Bearer {token.token}"}
    head = accord.app.head_position()
    answer = api.get(f"/v1/reports/outcomes?{PERIOD}&disclosure=internal&min_position={head}",
                     headers=board)
    assert answer.json()["measures"]["in_treatment"]["value"] == 0
    story.episode(story.clients[0], when=STARTED + timedelta(days=200))
    assert outcomes(api, partnership, "&disclosure=internal").json()[
        "measures"]["new_presentations"]["value"] == 7


def test_penetration_is_published_beside_the_configured_population(
        accord: Accord, partnership: Partnership, api: TestClient) -> None:
    seeded(accord, partnership)
    accord.settings = replace(accord.settings, ethnicity_population=(("A", 80.0), ("H", 6.0)))
    shown = outcomes(api, partnership, "&disclosure=internal").json()["measures"]
    penetration = shown["penetration_by_ethnicity"]
    assert penetration["groups"] == {"A": 83.3, "unknown": 16.7}  # tp2 shares no ethnicity
    assert penetration["population_share"] == {"A": 80.0, "unknown": 0.0}
