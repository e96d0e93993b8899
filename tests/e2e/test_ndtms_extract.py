"""``accord extract ndtms`` on both databases: pseudonymous CSV files per entity, through
the same policy as the reports (what the commissioner may see for commissioning)."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from api.bootstrap import Accord
from api.cli import main
from domain.agencies import AgencyKind
from infra.settings import Settings
from projections.reports.extract import FILES
from projections.reports.projection import OutcomeReports
from tests.builders import (
    NHS_NUMBERS,
    SHARED,
    STARTED,
    VALID_IDENTITY,
    Partnership,
    Story,
    access_records,
)

TOP_START = {
    "stage": "start", "substance_use": {"alcohol": 20},
    "injecting": {"days_injected": 0, "shared_equipment": False},
    "crime": {"shoplifting_days": 3},
    "health_and_social_functioning": {"psychological_health": 8, "physical_health": 9,
                                      "quality_of_life": 7, "days_paid_work": 0},
}


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's environment naming the test's database and key file."""
    monkeypatch.setenv("ACCORD_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ACCORD_KEY_FILE", str(settings.key_file))
    if settings.database_schema:
        monkeypatch.setenv("ACCORD_DATABASE_SCHEMA", settings.database_schema)
    else:
        monkeypatch.delenv("ACCORD_DATABASE_SCHEMA", raising=False)


def read(out: Path, name: str) -> list[dict[str, str]]:
    with (out / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_extract_writes_each_entity_pseudonymously_through_the_policy(
        accord: Accord, partnership: Partnership, cli_env: None, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    story = Story(accord, partnership)
    story.agree("tp", {**SHARED, "treatment": [*SHARED["treatment"], "kind", "sessions"]})
    story.agree("tp2", {"treatment": SHARED["treatment"]}, consent=True)
    ours = story.client()
    story.fact(ours, "demographics_recorded",
               {"sex": "female", "ethnicity": "H", "religion": "sikh", "area": "E06000055"})
    story.episode(ours, ended="completed_drug_free")
    story.fact(ours, "treatment_outcomes_profile", TOP_START, STARTED + timedelta(days=1))
    story.fact(ours, "intervention_recorded", {"kind": "group_work", "sessions": 3},
               STARTED + timedelta(days=8))
    theirs = story.client("tp2")
    story.episode(theirs, "tp2")
    consent_id, _ = story.app.give_consent(
        theirs, recipient_agency=None, recipient_kind=AgencyKind.COMMISSIONER,
        categories=["treatment"], purposes=["commissioning"], data_from=None, data_to=None,
        expires_at=None, obtained="written", by=story.actor("tp2"))
    outside = story.client()
    story.episode(outside, when=STARTED - timedelta(days=800), ended="dropped_out", days=30)
    before = access_records(accord)

    out = tmp_path / "ndtms"
    argv = ["extract", "ndtms", "--from", "2025-04-01", "--to", "2026-03-31", "--out", str(out)]
    assert main(argv) == 0
    assert "1 intervention" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.csv" for n in FILES)
    reports = accord.find(OutcomeReports)
    pseudonyms = {reports.pseudonym(ours): "ours", reports.pseudonym(theirs): "theirs"}
    clients = {pseudonyms[row["client_id"]]: row for row in read(out, "client")}
    assert set(clients) == {"ours", "theirs"}  # the third client's episode ended before
    assert clients["ours"]["consent_for_ndtms"] == "N"
    assert clients["theirs"]["consent_for_ndtms"] == "Y"
    assert (clients["ours"]["sex"], clients["ours"]["ethnicity"], clients["ours"]["area"],
            clients["ours"]["religion"]) == ("female", "H", "E06000055", "")  # not shared
    episodes = {pseudonyms[row["client_id"]]: row for row in read(out, "episode")}
    assert (episodes["ours"]["start_date"], episodes["ours"]["end_date"],
            episodes["ours"]["discharge_reason"], episodes["ours"]["substance_group"],
            episodes["ours"]["age_band"]) == ("2025-06-02", "2025-09-10", "completed_drug_free",
                                              "alcohol_only", "40-44")
    assert episodes["theirs"]["age_band"] == ""  # tp2 shares no demographics
    [intervention] = read(out, "intervention")
    assert (intervention["episode_id"], intervention["kind"], intervention["sessions"]) == (
        episodes["ours"]["episode_id"], "group_work", "3")
    [top] = read(out, "top")
    # Substance use and injecting are not shared: empty, as in the figures.
    assert (top["stage"], top["shoplifting_days"], top["selling_drugs_days"],
            top["psychological_health"], top["acute_housing_problem"], top["days_alcohol"],
            top["shared_equipment"]) == ("start", "3", "0", "8", "N", "", "")
    everything = "".join((out / f"{name}.csv").read_text() for name in FILES)
    for secret in (*NHS_NUMBERS[:3], *(c.hex for c in story.clients),
                   *(str(c) for c in story.clients), VALID_IDENTITY["family_name"],
                   VALID_IDENTITY["postcode"], VALID_IDENTITY["date_of_birth"]):
        assert secret not in everything

    # On the record, once, with no client.
    assert access_records(accord) == before + 1
    found = accord.app.recorder.select_notifications(
        start=0, limit=10**6, topics=["domain.access:AccessRecord.Recorded"],
        inclusive_of_start=False)
    record: Any = accord.app.mapper.to_domain_event(found[-1])
    assert (record.action, record.client_id, record.client_ids) == ("reports", None, [])
    assert json.loads(record.detail)["extract"] == "ndtms"

    # The same ids again; and a withdrawal takes the client out.
    first = {name: (out / f"{name}.csv").read_text() for name in FILES}
    story.app.withdraw_consent(theirs, consent_id, "no longer", story.actor("tp2"))
    again = tmp_path / "again"
    assert main([*argv[:-1], str(again)]) == 0
    assert [row["client_id"] for row in read(again, "client")] == [reports.pseudonym(ours)]
    assert (again / "top.csv").read_text() == first["top"]
    assert (again / "intervention.csv").read_text() == first["intervention"]


@pytest.mark.parametrize("argv, message", [
    (["--from", "2026-04-01", "--to", "2026-03-31"], "--to: must be on or after from"),
    (["--from", "2026-4-1", "--to", "2026-05-01"], "give a date as YYYY-MM-DD"),
    (["--from", "2026-04-01", "--to", "2026-05-01", "--agency", "nobody"],
     "--agency: name a commissioner agency"),
])
def test_bad_arguments_exit_2_with_a_message(
        accord: Accord, partnership: Partnership, cli_env: None, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    try:
        status = main(["extract", "ndtms", *argv, "--out", str(tmp_path / "x")])
    except SystemExit as exc:  # argparse's own refusal
        status = int(str(exc.code))
    assert status == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
