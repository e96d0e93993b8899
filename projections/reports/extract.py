"""An NDTMS-style extract: CSV files per entity, from the reports' read model only.

The National Drug Treatment Monitoring System takes a treatment system's clients, their
treatment episodes, the interventions they received and their Treatment Outcomes
Profiles. This writes the same four entities for one commissioner agency and one period,
from what that agency may see for the purpose ``commissioning`` (a ``Snapshot`` of
``projections.reports.projection``): so through the same agreements, consents and masks
as the figures, and with the same pseudonyms. A field an agreement does not share is
empty; nothing is read from the log or the identity vault here.

* ``client.csv``: every client with an episode open in the period: its pseudonymous id,
  ``consent_for_ndtms`` (``Y`` when the client has an active consent to the agency for
  commissioning, else ``N``) and its latest demographics on or before the period's end;
* ``episode.csv``: the episodes open in the period: start and end dates, discharge reason,
  modality, substances, NDTMS substance group, age band at the start;
* ``intervention.csv`` and ``top.csv``: the interventions and outcomes profiles recorded
  in the period, each with the episode open on its day.

Ids are stable and pseudonymous: a client's is its pseudonym in the reports; an
episode's, intervention's or profile's a keyed hash of the client's pseudonym and the
record (``OutcomeReports.record_id``), so the same record has the same id in every
extract, and none is a log position, a client id or an NHS number.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from infra.progress import progress
from projections.reports.episodes import Episode, episodes
from projections.reports.measures import DEMOGRAPHICS, TOP
from projections.reports.model import Period, ReportFact
from projections.reports.projection import INTERVENTION, Snapshot

CLIENT_COLUMNS = ("client_id", "consent_for_ndtms", "sex", "ethnicity", "sexual_orientation",
                  "religion", "disability", "area")
EPISODE_COLUMNS = ("episode_id", "client_id", "start_date", "end_date", "discharge_reason",
                   "modality", "substances", "substance_group", "age_band")
INTERVENTION_COLUMNS = ("intervention_id", "client_id", "episode_id", "date", "kind",
                        "sessions")
#: TOP sections and their fields, flattened as ``<field>`` columns (NDTMS's TOP items).
TOP_SECTIONS: dict[str, tuple[str, ...]] = {
    "substance_use": ("alcohol", "opiates", "crack", "cocaine", "amphetamines", "cannabis",
                      "other"),
    "injecting": ("days_injected", "shared_equipment"),
    "crime": ("shoplifting_days", "selling_drugs_days", "other_theft", "assault_or_violence"),
    "health_and_social_functioning": ("psychological_health", "physical_health",
                                      "quality_of_life", "days_paid_work", "days_education",
                                      "acute_housing_problem", "at_risk_of_eviction"),
}
TOP_COLUMNS = ("top_id", "client_id", "episode_id", "date", "stage",
               *(f"{'days_' if section == 'substance_use' else ''}{name}"
                 for section, names in TOP_SECTIONS.items() for name in names))
FILES = {"client": CLIENT_COLUMNS, "episode": EPISODE_COLUMNS,
         "intervention": INTERVENTION_COLUMNS, "top": TOP_COLUMNS}


@dataclass(frozen=True)
class Extracted:
    """What was written: rows per entity, and the files."""

    rows: dict[str, int]
    files: dict[str, Path]


def write_ndtms(snapshot: Snapshot, period: Period, out: Path,
                record_id: Callable[[str, str, int], str]) -> Extracted:
    """Writes ``client.csv``, ``episode.csv``, ``intervention.csv`` and ``top.csv`` into
    ``out`` (created if need be) for ``period``; ``record_id(kind, client, position)`` gives
    a record's stable pseudonymous id. A progress bar on a terminal, quiet otherwise."""
    out.mkdir(parents=True, exist_ok=True)
    by_client: dict[str, list[ReportFact]] = {}
    for fact in snapshot.facts:
        by_client.setdefault(fact.client, []).append(fact)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in FILES}
    for client in progress(sorted(by_client), "writing the NDTMS extract",
                           total=len(by_client)):
        facts = sorted(by_client[client], key=lambda f: f.position)
        open_ = [e for e in episodes(facts) if e.open_during(period.start, period.end)]
        if not open_:
            continue
        rows["client"].append(_client(client, facts, period, client in snapshot.consenting))
        for episode in open_:
            rows["episode"].append(_episode(episode, record_id))
        for fact in facts:
            if fact.day not in period:
                continue
            if fact.fact_type == INTERVENTION:
                rows["intervention"].append({
                    "intervention_id": record_id("intervention", client, fact.position),
                    "client_id": client, "episode_id": _episode_of(fact, open_, record_id),
                    "date": fact.day.isoformat(), "kind": fact.data.get("kind"),
                    "sessions": fact.data.get("sessions")})
            elif fact.fact_type == TOP:
                rows["top"].append(_top(fact, open_, record_id))
    files = {}
    for name, columns in FILES.items():
        files[name] = out / f"{name}.csv"
        _write(files[name], columns, rows[name])
    return Extracted({name: len(found) for name, found in rows.items()}, files)


def _client(client: str, facts: Sequence[ReportFact], period: Period,
            consenting: bool) -> dict[str, Any]:
    shown = [f for f in facts if f.fact_type == DEMOGRAPHICS and f.day <= period.end]
    latest: Mapping[str, Any] = shown[-1].data if shown else {}
    return {"client_id": client, "consent_for_ndtms": "Y" if consenting else "N",
            **{name: latest.get(name) for name in CLIENT_COLUMNS[2:]}}


def _episode(episode: Episode, record_id: Callable[[str, str, int], str]) -> dict[str, Any]:
    return {
        "episode_id": record_id("episode", episode.client, episode.start_position),
        "client_id": episode.client, "start_date": episode.start.isoformat(),
        "end_date": episode.end.isoformat() if episode.end else None,
        "discharge_reason": episode.reason, "modality": episode.modality,
        "substances": ";".join(sorted(episode.substances)) or None,
        "substance_group": episode.substance_group, "age_band": episode.age_band,
    }


def _episode_of(fact: ReportFact, open_: Iterable[Episode],
                record_id: Callable[[str, str, int], str]) -> str | None:
    """The id of the latest-started episode open on the fact's day, if any."""
    day: date = fact.day
    found = [e for e in open_ if e.start <= day and (e.end is None or day <= e.end)]
    return record_id("episode", fact.client, found[-1].start_position) if found else None


def _top(fact: ReportFact, open_: Iterable[Episode],
         record_id: Callable[[str, str, int], str]) -> dict[str, Any]:
    row: dict[str, Any] = {"top_id": record_id("top", fact.client, fact.position),
                           "client_id": fact.client,
                           "episode_id": _episode_of(fact, open_, record_id),
                           "date": fact.day.isoformat(), "stage": fact.data.get("stage")}
    for section, names in TOP_SECTIONS.items():
        shared = fact.data.get(section)
        values: Mapping[str, Any] = shared if isinstance(shared, Mapping) else {}
        for name in names:  # a section not shared is empty
            row[f"days_{name}" if section == "substance_use" else name] = values.get(name)
    return row


def _write(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    return value
