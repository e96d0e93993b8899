"""Settings from the environment, without a database: a setting accord cannot use is
refused, naming it."""

from __future__ import annotations

import pytest

from infra.settings import Settings, SettingsError


@pytest.mark.parametrize("raw", ["A=80,A=10", "Q=10", "A=eighty", "A=60,C=50", "A=-1"])
def test_a_population_setting_accord_cannot_use_names_the_setting(raw: str) -> None:
    with pytest.raises(SettingsError, match="ACCORD_ETHNICITY_POPULATION"):
        Settings.from_env({"ACCORD_ETHNICITY_POPULATION": raw})
    assert Settings.from_env({"ACCORD_ETHNICITY_POPULATION": "C=6.4, A=71.2"}
                             ).ethnicity_population == (("A", 71.2), ("C", 6.4))
