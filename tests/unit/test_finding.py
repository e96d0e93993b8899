"""Finding people and summing a client up, without a database: how a name search compares
names (normalisation, the Damerau-Levenshtein distance, how far off a name may be), which
episodes are open, how a list pages, and what a chronology's summary says from the facts
a caller may see."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from projections.caseload import Page, open_episodes
from projections.chronology import summarise
from projections.reports.model import ReportFact
from projections.search import Closeness, closeness, distance, normalise, parts, tolerance
from projections.views import ViewItem

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)

# -- comparing names ------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "compared"), [
    ("O'Brien", "obrien"), ("o brien", "obrien"), ("OBRIEN", "obrien"),
    ("Zoë", "zoe"), ("Straße", "strasse"), ("Smith-Jones", "smithjones"),
    ("  Ní  Bhriain ", "nibhriain"), ("Łukasz", "łukasz"), ("-'-", ""),
])
def test_a_name_is_compared_without_case_accents_spaces_or_punctuation(
    written: str, compared: str,
) -> None:
    assert normalise(written) == compared


def test_a_double_barrelled_name_has_parts() -> None:
    assert parts("Smith-Jones") == ["smith", "jones"]
    assert parts("Van der Berg") == ["van", "der", "berg"]
    assert parts("O'Brien") == ["obrien"]


def _reference(a: str, b: str) -> int:
    """The optimal string alignment distance by the textbook's full table."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i, j in itertools.product(range(1, len(a) + 1), range(1, len(b) + 1)):
        cost = 0 if a[i - 1] == b[j - 1] else 1
        d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
        if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
            d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


@pytest.mark.parametrize(("a", "b", "edits"), [
    ("smith", "smith", 0), ("smith", "smyth", 1), ("smith", "smiht", 1),  # a swap is one
    ("smith", "smithe", 1), ("smith", "mith", 1), ("kowalski", "kowalsky", 1),
    ("jones", "jnoes", 1), ("smith", "smoth-jonas", 7), ("", "abc", 3), ("ab", "ba", 1),
])
def test_the_distance_counts_insertions_deletions_substitutions_and_swaps(
    a: str, b: str, edits: int,
) -> None:
    assert distance(a, b) == distance(b, a) == edits


def test_the_distance_agrees_with_the_full_table_and_stops_early_past_a_limit() -> None:
    words = ["", "a", "ab", "ba", "abc", "acb", "smith", "smyth", "smiht", "simth", "mitsh",
             "kowalski", "kowalsky", "kowlaski"]
    for a, b in itertools.product(words, repeat=2):
        exact = _reference(a, b)
        assert distance(a, b) == exact, (a, b)
        for limit in (0, 1, 2):
            assert distance(a, b, limit) == min(exact, limit + 1), (a, b, limit)


@pytest.mark.parametrize(("letters", "allowed"), [(1, 0), (3, 0), (4, 1), (7, 1), (8, 2),
                                                   (20, 2)])
def test_a_longer_name_may_be_further_off(letters: int, allowed: int) -> None:
    assert tolerance("x" * letters) == allowed


@pytest.mark.parametrize(("wanted", "family_name", "expected"), [
    ("smith", "Smith", (Closeness.EXACT, 0)),
    ("obrien", "O'Brien", (Closeness.EXACT, 0)),
    ("sm", "Smith", (Closeness.PARTIAL, 0)),
    ("jones", "Smith-Jones", (Closeness.PARTIAL, 0)),  # one part of the name
    ("jon", "Smith-Jones", (Closeness.PARTIAL, 0)),
    ("smyth", "Smith", (Closeness.SIMILAR, 1)),
    ("jnoes", "Smith-Jones", (Closeness.SIMILAR, 1)),  # a typo in one part
    ("kowalsky", "Kowalski", (Closeness.SIMILAR, 1)),
    ("kowlasky", "Kowalski", (Closeness.SIMILAR, 2)),  # eight letters: two edits
    ("smoht", "Smyth", None),  # two edits in five letters
    ("kim", "Kam", None),  # three letters: no typo forgiven
    ("", "Smith", None),
])
def test_how_close_a_family_name_is(wanted: str, family_name: str,
                                    expected: tuple[Closeness, int] | None) -> None:
    assert closeness(wanted, family_name) == expected


# -- episodes and pages ---------------------------------------------------------------------------


def _fact(position: int, fact_type: str, days: int, **data: Any) -> ReportFact:
    return ReportFact(client="c", position=position, fact_type=fact_type,
                      occurred_at=NOW - timedelta(days=days), controller="tp", data=data)


def test_open_episodes_are_those_not_ended_or_discharged() -> None:
    story = [
        _fact(1, "treatment_episode_started", 90, modality="pharmacological"),
        _fact(2, "treatment_episode_started", 80, modality="psychosocial"),
        _fact(3, "treatment_episode_ended", 70, modality="psychosocial",
              discharge_reason="completed_drug_free"),
    ]
    assert [f.position for f in open_episodes(story)] == [1]
    assert open_episodes([*story, _fact(4, "discharged", 60, reason="dropped_out")]) == []
    again = [*story, _fact(4, "discharged", 60, reason="dropped_out"),
             _fact(6, "treatment_episode_started", 10, modality="psychosocial"),
             # recorded later, happened earlier: still the earliest started first
             _fact(7, "treatment_episode_started", 20, modality="recovery_support")]
    assert [f.position for f in open_episodes(again)] == [7, 6]


def test_a_page_knows_where_the_next_starts() -> None:
    assert Page([1, 2], total=5, limit=2, offset=0).next_offset == 2
    assert Page([5], total=5, limit=2, offset=4).next_offset is None
    assert Page([], total=0, limit=25, offset=0).next_offset is None


# -- a chronology's summary -----------------------------------------------------------------------


def _item(position: int, fact_type: str, days: float, category: str = "treatment",
          controller: str = "tp", **data: Any) -> ViewItem:
    when = NOW - timedelta(days=days)
    return ViewItem(position=position, fact_type=fact_type, category=category,
                    controller=controller, occurred_at=when, recorded_at=when, fields=None,
                    data=data, purpose="direct_care", basis={"kind": "controller"}, reason="")


def _prescription(position: int, days: float, medication: str, change: str,
                  dose: float) -> ViewItem:
    return _item(position, "prescription_changed", days, "prescribing", medication=medication,
                 change=change, daily_dose_mg=dose, supervised_consumption=True)


def _order(position: int, days: float, order: str, status: str,
           ends_on: str | None = None) -> ViewItem:
    data: dict[str, Any] = {"order": order, "status": status}
    if ends_on is not None:
        data["ends_on"] = ends_on
    return _item(position, "criminal_justice_status", days, "criminal_justice", **data)


def test_the_summary_of_a_client_in_treatment() -> None:
    items = [
        _item(1, "treatment_episode_started", 100, modality="pharmacological",
              key_worker="Sam Okafor", substances=["opioids"]),
        _prescription(2, 99, "methadone", "started", 30),
        _prescription(3, 50, "methadone", "increased", 60),
        _prescription(4, 40, "naltrexone", "started", 50),
        _prescription(5, 30, "naltrexone", "stopped", 0),
        _order(6, 90, "drug_rehabilitation_requirement", "started", "2026-12-31"),
        _order(7, 20, "drug_rehabilitation_requirement", "breached", "2026-12-31"),
        _order(8, 80, "licence", "started"),
        _order(9, 10, "licence", "ended"),
        _order(10, 70, "community_order", "started", "2026-05-31"),  # its end has passed
        _item(11, "appointment_attended", 15, appointment="keywork"),
        _item(12, "appointment_attended", 5, appointment="prescriber"),
        _item(13, "appointment_missed", 2, appointment="keywork"),
        _item(14, "appointment_attended", -3, appointment="group"),  # not happened yet
        _item(15, "housing_status_recorded", 1, "housing", status="settled"),
    ]
    summary = summarise(items, NOW)
    assert (summary.in_treatment, summary.modalities, summary.key_worker) == (
        True, ["pharmacological"], "Sam Okafor")
    assert summary.episode_started == NOW - timedelta(days=100)
    assert [(p["medication"], p["change"], p["daily_dose_mg"], p["position"])
            for p in summary.prescriptions] == [("methadone", "increased", 60, 3)]
    assert [(o["order"], o["status"]) for o in summary.orders] == [
        ("drug_rehabilitation_requirement", "breached")]
    assert summary.last_attended is not None
    assert (summary.last_attended["appointment"], summary.last_attended["since"]) == (
        "prescriber", NOW - timedelta(days=5))
    # What it read: every fact it summarises, none it does not (housing, a missed
    # appointment) nor one said to happen later.
    assert summary.rests_on == frozenset(range(1, 13))
    assert (summary.open_alerts, summary.provider) == (None, None)  # filled by the query


def test_the_summary_says_only_what_the_caller_may_see() -> None:
    # Nothing about treatment: the caller cannot tell whether the client is in treatment.
    unknown = summarise([_item(1, "housing_status_recorded", 1, "housing", status="settled")],
                        NOW)
    assert (unknown.in_treatment, unknown.modalities, unknown.episode_started) == (
        None, [], None)
    assert (unknown.prescriptions, unknown.orders, unknown.last_attended) == ([], [], None)
    # Masked fields stay out: a start without its modality or key worker, an order without
    # its end date (in force as far as the caller can tell).
    masked = summarise([_item(1, "treatment_episode_started", 10),
                        _order(2, 5, "licence", "started")], NOW)
    assert (masked.in_treatment, masked.modalities, masked.key_worker) == (True, [], None)
    assert [o["order"] for o in masked.orders] == ["licence"]
    # A client whose episodes all ended is not in treatment.
    ended = summarise([
        _item(1, "treatment_episode_started", 30, modality="psychosocial"),
        _item(2, "discharged", 10, reason="completed_drug_free")], NOW)
    assert (ended.in_treatment, ended.modalities, ended.episode_started) == (False, [], None)
