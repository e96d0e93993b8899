"""The `accord` command line, run in-process through ``api.cli.main`` on a fresh SQLite file
(``accord serve`` as a process)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import func, select

from api.bootstrap import Accord, bootstrap
from api.cli import main
from api.demo import ALERT_HOUSEHOLDS
from domain.agencies import AgencyKind, Role
from domain.errors import Unauthenticated
from infra.schema import client_keys
from infra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TOKEN = re.compile(r"\b(acc_[0-9a-f]{32}_\S+)")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in list(os.environ):
        if name.startswith("ACCORD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ACCORD_DATABASE_URL", f"sqlite:///{tmp_path / 'accord.db'}")
    monkeypatch.setenv("ACCORD_KEY_FILE", str(tmp_path / "keys" / "kek.key"))
    monkeypatch.chdir(tmp_path)
    return Settings.from_env()


class Run:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err


@pytest.fixture
def accord_cli(env: Settings, capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(capsys)


@pytest.fixture
def opened(env: Settings) -> Iterator[Iterator[Accord]]:
    """Opens the CLI's database as the server would, for checking what the CLI did."""
    opened: list[Accord] = []

    def _open() -> Iterator[Accord]:
        while True:
            accord = bootstrap(Settings.from_env(), read_models=False)
            opened.append(accord)
            yield accord

    yield _open()
    for accord in opened:
        accord.close()


def test_keys_generate_creates_a_private_key_once(accord_cli: Run, env: Settings) -> None:
    code, out, _ = accord_cli("keys", "generate")
    assert code == 0 and "created" in out
    key = env.key_file.read_bytes()
    assert stat.S_IMODE(env.key_file.stat().st_mode) == 0o600
    code, out, _ = accord_cli("keys", "generate")
    assert code == 0 and "kept existing" in out
    assert env.key_file.read_bytes() == key
    code, out, _ = accord_cli("keys", "generate", "--force")
    assert code == 0 and env.key_file.read_bytes() != key


def test_agencies_add_and_list(accord_cli: Run, opened: Iterator[Accord]) -> None:
    assert accord_cli("keys", "generate")[0] == 0
    code, out, _ = accord_cli("agencies", "add", "--id", "northshire-police",
                              "--name", "Northshire Police", "--kind", "police")
    assert code == 0 and "northshire-police" in out
    assert accord_cli("agencies", "add", "--id", "riverside", "--name", "Riverside Recovery",
                      "--kind", "treatment_provider")[0] == 0
    code, out, _ = accord_cli("agencies", "list")
    assert code == 0
    lines = out.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["northshire-police", "police"], ["riverside", "treatment_provider"]
    ]
    assert "Riverside Recovery" in lines[1]
    agencies = next(opened).app.agencies()
    assert [(a.slug, a.kind) for a in agencies] == [
        ("northshire-police", AgencyKind.POLICE), ("riverside", AgencyKind.TREATMENT_PROVIDER)
    ]


def test_a_duplicate_agency_is_refused_with_a_message(accord_cli: Run) -> None:
    accord_cli("keys", "generate")
    assert accord_cli("agencies", "add", "--id", "police", "--name", "Police",
                      "--kind", "police")[0] == 0
    code, out, err = accord_cli("agencies", "add", "--id", "police", "--name", "Other",
                                "--kind", "housing")
    assert code == 2
    assert "already registered" in err
    code, out, _ = accord_cli("agencies", "list")
    assert len(out.strip().splitlines()) == 1 and "Other" not in out


def test_principals_add_list_and_revoke(accord_cli: Run, opened: Iterator[Accord]) -> None:
    accord_cli("keys", "generate")
    accord_cli("agencies", "add", "--id", "riverside", "--name", "Riverside",
               "--kind", "treatment_provider")
    code, out, _ = accord_cli("principals", "add", "--agency", "riverside",
                              "--role", "practitioner", "--name", "Sam Okafor")
    assert code == 0
    [token] = TOKEN.findall(out)
    enrolled = re.search(r"principal ([0-9a-f-]{36})", out)
    assert enrolled is not None, out
    principal_id = UUID(enrolled.group(1))

    who = next(opened).app.authenticate(token)
    assert (who.principal_id, who.agency, who.role, who.name) == (
        principal_id, "riverside", Role.PRACTITIONER, "Sam Okafor"
    )

    code, out, _ = accord_cli("principals", "list", "--agency", "riverside")
    assert code == 0
    [line] = out.strip().splitlines()
    assert str(principal_id) in line and "active" in line and "Sam Okafor" in line
    assert token.split("_", 2)[2] not in out

    code, out, _ = accord_cli("principals", "revoke", str(principal_id),
                              "--reason", "left the service")
    assert code == 0 and str(principal_id) in out
    code, out, _ = accord_cli("principals", "list", "--agency", "riverside")
    assert "revoked" in out
    with pytest.raises(Unauthenticated):
        next(opened).app.authenticate(token)


def test_demo_seeds_once_and_prints_the_same_tokens_again(
    accord_cli: Run, env: Settings, opened: Iterator[Accord]
) -> None:
    code, first, _ = accord_cli("demo", "--clients", "5")
    assert code == 0
    tokens = TOKEN.findall(first)
    assert len(tokens) >= 5
    accord = next(opened)
    agencies = [a.slug for a in accord.app.agencies()]
    assert len(agencies) >= 5
    with accord.engine.connect() as conn:
        clients = conn.execute(select(func.count()).select_from(client_keys)).scalar_one()
    # The random clients asked for, and the households that raise each kind of alert.
    assert clients == 5 + sum(len(members) for _, members in ALERT_HOUSEHOLDS)
    kinds = {accord.app.authenticate(t).agency_kind for t in tokens}
    assert AgencyKind.TREATMENT_PROVIDER in kinds and AgencyKind.POLICE in kinds
    head = accord.app.head_position()

    code, second, _ = accord_cli("demo", "--clients", "5")
    assert code == 0
    assert TOKEN.findall(second) == tokens
    again = next(opened)
    assert [a.slug for a in again.app.agencies()] == agencies
    with again.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(client_keys)).scalar_one() == clients
    assert again.app.head_position() == head
    for token in tokens:
        again.app.authenticate(token)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["agencies"],
        ["agencies", "add", "--id", "Police Force", "--name", "x", "--kind", "police"],
        ["agencies", "add", "--id", "police", "--name", "x", "--kind", "fire_service"],
        ["agencies", "add", "--id", "police", "--kind", "police"],
        ["principals", "add", "--agency", "police", "--role", "superuser", "--name", "x"],
        ["principals", "revoke", "not-a-uuid", "--reason", "x"],
        ["principals", "revoke", "00000000-0000-0000-0000-000000000000"],
        ["demo", "--clients", "many"],
    ],
)
def test_bad_arguments_exit_2_with_a_message(accord_cli: Run, argv: list[str]) -> None:
    code, _, err = accord_cli(*argv)
    assert code == 2
    assert "usage: accord" in err
    assert "error:" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["principals", "add", "--agency", "nowhere", "--role", "admin", "--name", "x"],
         "agency 'nowhere' not found"),
        (["principals", "list", "--agency", "nowhere"], "agency 'nowhere' not found"),
        (["principals", "revoke", "00000000-0000-0000-0000-000000000000", "--reason", "x"],
         "principal not found"),
    ],
)
def test_refused_commands_exit_2_with_the_reason(
    accord_cli: Run, argv: list[str], message: str
) -> None:
    accord_cli("keys", "generate")
    code, _, err = accord_cli(*argv)
    assert code == 2
    assert err.startswith("accord: ") and message in err


def test_a_missing_key_file_says_how_to_create_one(accord_cli: Run) -> None:
    code, _, err = accord_cli("agencies", "list")
    assert code == 2
    assert "accord keys generate" in err


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [("ACCORD_DATABASE_URL", "mysql://db/accord", "ACCORD_DATABASE_URL"),
     ("ACCORD_DATABASE_URL", "sqlite:///:memory:", "ACCORD_DATABASE_URL"),
     ("ACCORD_PORT", "eighty", "ACCORD_PORT"),
     ("ACCORD_MAX_BODY_BYTES", "-1", "ACCORD_MAX_BODY_BYTES")],
)
def test_bad_settings_exit_2_naming_the_setting(
    accord_cli: Run, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    accord_cli("keys", "generate")
    monkeypatch.setenv(variable, value)
    code, _, err = accord_cli("agencies", "list")
    assert code == 2
    assert message in err


def test_a_database_that_cannot_be_opened_exits_2_with_a_message(
    accord_cli: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    accord_cli("keys", "generate")
    monkeypatch.setenv("ACCORD_DATABASE_URL", f"sqlite:///{tmp_path / 'missing' / 'accord.db'}")
    code, _, err = accord_cli("agencies", "list")
    assert code == 2
    assert err.startswith("accord: ")


# -- accord serve without a key file -------------------------------------------------------


def test_accord_serve_without_a_key_file_says_in_one_line_how_to_create_it(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    env.update(ACCORD_DATABASE_URL=f"sqlite:///{tmp_path / 'accord.db'}",
               ACCORD_KEY_FILE=str(tmp_path / "kek.key"), PYTHONPATH=str(ROOT))
    finished = subprocess.run([sys.executable, "-m", "api.cli", "serve", "--port", "1"],
                              env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
    assert finished.returncode != 0
    assert finished.stdout == ""
    assert "Traceback" not in finished.stderr
    [line] = finished.stderr.splitlines()
    assert line.startswith(f"accord: no key-encryption key at {tmp_path / 'kek.key'}")
    assert "accord keys generate" in line
    assert not (tmp_path / "accord.db").exists()  # nothing made before the key was found
