"""The demo partnership gives every outcome measure something to count, and some of its
groups fall under five. (That its commissioner's agreement shares what the measures read,
never identity, needs no database: tests/unit/test_report_measures.py.)"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.bootstrap import Accord, bootstrap
from api.demo import AREAS, seed, tokens_file
from infra.keys import generate_key_file
from infra.settings import Settings
from projections.reports.measures import MEASURES

COMMISSIONER = "northshire-commissioning"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Accord, str]]:
    """A demo partnership of 150 clients on SQLite, and the commissioner's token."""
    where: Path = tmp_path_factory.mktemp("demo")
    generate_key_file(where / "kek.key")
    accord = bootstrap(Settings(database_url=f"sqlite:///{where / 'accord.db'}",
                                key_file=where / "kek.key"))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            seed(accord, 150)
        tokens = json.loads(tokens_file(accord).read_text())
        yield accord, next(t["token"] for t in tokens if t["role"] == "commissioner")
    finally:
        accord.close()


def _report(accord: Accord, token: str, query: str) -> dict[str, object]:
    with TestClient(create_app(accord)) as api:
        head = accord.app.head_position()
        answer = api.get(f"/v1/reports/outcomes?from=2024-01-01&to=2026-12-31&{query}"
                         f"&min_position={head}", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        measures: dict[str, object] = answer.json()["measures"]
        return measures


def test_every_measure_has_a_value_in_the_demo(demo: tuple[Accord, str]) -> None:
    accord, token = demo
    measures = _report(accord, token, "disclosure=internal")
    assert set(measures) == set(MEASURES)
    empty = [mid for mid, figures in measures.items()
             if not isinstance(figures, dict) or figures["value"] in (None, 0)
             or figures.get("numerator") == 0]
    assert empty == []


def test_some_groups_of_the_demo_fall_under_five(demo: tuple[Accord, str]) -> None:
    accord, token = demo
    by_ethnicity = _report(accord, token, "by=ethnicity")
    groups = by_ethnicity["in_treatment"]
    assert isinstance(groups, dict)
    assert "*" in groups["groups"].values()
    by_area = _report(accord, token, "by=area&disclosure=internal")["in_treatment"]
    assert isinstance(by_area, dict)
    assert set(AREAS) <= set(by_area["groups"])
