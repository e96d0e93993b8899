"""The key-encryption key (issue 12, item 9), on SQLite and PostgreSQL.

`accord keys generate --force` once replaced a KEK that wrapped every client's data key:
every record and view then failed with a 500, and the server started as if nothing were
wrong. Now a KEK that wraps data keys is never replaced (``accord keys rotate`` re-wraps
them under a new one, in one transaction, crash-safe), and every way of starting accord
(``accord serve``, ``accord worker``, the app itself) first checks that the KEK opens the
stored data keys, and otherwise stops with one line saying what to do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.bootstrap import Accord, bootstrap
from api.cli import main
from domain.agencies import AgencyKind, Role
from domain.application import OPERATOR, Actor
from domain.errors import ClientAlreadyRegistered
from domain.identity import Identity
from infra import keys
from infra.keys import KeyFileError, generate_key_file, load_key_file
from infra.schema import client_keys
from infra.settings import Settings
from tests.builders import VALID_IDENTITY

ROOT = Path(__file__).resolve().parents[2]
IDENTITIES = [VALID_IDENTITY, {**VALID_IDENTITY, "nhs_number": "401 023 2137"},
              {**VALID_IDENTITY, "nhs_number": "943 476 5870"}]


@pytest.fixture
def environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI's environment pointing at the test's database and key file."""
    for name in list(os.environ):
        if name.startswith("ACCORD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ACCORD_DATABASE_URL", settings.database_url)
    if settings.database_schema:
        monkeypatch.setenv("ACCORD_DATABASE_SCHEMA", settings.database_schema)
    monkeypatch.setenv("ACCORD_KEY_FILE", str(settings.key_file))
    return settings


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def one_line(message: str) -> str:
    lines = message.strip().splitlines()
    assert len(lines) == 1, message
    return lines[0]


@pytest.fixture
def clients(environment: Settings) -> Iterator[list[UUID]]:
    """Three registered clients, one of them since erased (its data key destroyed)."""
    accord = bootstrap(environment)
    try:
        app = accord.app
        app.register_agency("tp", "Treatment", AgencyKind.TREATMENT_PROVIDER, OPERATOR)
        practitioner = app.authenticate(
            app.add_principal("tp", Role.PRACTITIONER, "keyworker", OPERATOR).token)
        lead = app.authenticate(app.add_principal("tp", Role.IG_LEAD, "ig", OPERATOR).token)
        registered = [app.register_client(Identity(**identity), practitioner)[0]
                      for identity in IDENTITIES]
        app.erase_client(registered[2], "subject asked for erasure", lead)
    finally:
        accord.close()
    yield registered


def practitioner(accord: Accord) -> Actor:
    app = accord.app
    return app.authenticate(app.add_principal("tp", Role.PRACTITIONER, "another", OPERATOR)
                            .token)


def assert_identities_open(settings: Settings, registered: list[UUID]) -> None:
    accord = bootstrap(settings)
    try:
        for client_id, identity in zip(registered[:2], IDENTITIES, strict=False):
            assert accord.app.identity_of(client_id).family_name == identity["family_name"]
    finally:
        accord.close()


def kek_ids(settings: Settings) -> set[str]:
    accord = bootstrap(settings)
    try:
        with accord.engine.connect() as conn:
            return set(conn.execute(select(client_keys.c.kek_id)
                                    .where(client_keys.c.wrapped_key.is_not(None))).scalars())
    finally:
        accord.close()


# -- generate -------------------------------------------------------------------------------


def test_generate_force_refuses_to_replace_a_kek_that_wraps_data_keys(
    capsys: pytest.CaptureFixture[str], environment: Settings, clients: list[UUID]
) -> None:
    before = environment.key_file.read_bytes()
    code, _, err = run(capsys, "keys", "generate", "--force")
    assert code != 0
    line = one_line(err)
    assert "refusing to replace" in line and "accord keys rotate" in line
    assert environment.key_file.read_bytes() == before
    assert_identities_open(environment, clients)


def test_a_missing_key_file_is_not_replaced_by_a_new_one_while_data_keys_exist(
    capsys: pytest.CaptureFixture[str], environment: Settings, clients: list[UUID]
) -> None:
    kept = environment.key_file.read_bytes()
    environment.key_file.unlink()
    code, _, err = run(capsys, "keys", "generate")
    assert code != 0
    assert "restore that key file" in one_line(err)
    assert not environment.key_file.exists()
    environment.key_file.write_bytes(kept)
    assert_identities_open(environment, clients)


def test_generate_force_replaces_a_key_that_wraps_nothing(
    capsys: pytest.CaptureFixture[str], environment: Settings
) -> None:
    bootstrap(environment).close()  # a database, with no client yet
    before = environment.key_file.read_bytes()
    code, out, _ = run(capsys, "keys", "generate", "--force")
    assert code == 0 and "created key file" in out
    assert environment.key_file.read_bytes() != before


# -- rotate ---------------------------------------------------------------------------------


def test_rotate_rewraps_every_data_key_under_a_new_kek_and_keeps_matching(
    capsys: pytest.CaptureFixture[str], environment: Settings, clients: list[UUID]
) -> None:
    path = environment.key_file
    old_file, old_root = path.read_text(), load_key_file(path)
    (old_id,) = kek_ids(environment)
    code, out, _ = run(capsys, "keys", "rotate")
    assert code == 0, out
    assert "2 client data keys re-wrapped" in out
    (new_id,) = kek_ids(environment)
    assert new_id != old_id and path.read_text() != old_file
    assert not path.with_name(path.name + ".next").exists()
    kept = path.with_name(f"{path.name}.{old_id}.old")
    assert kept.read_text() == old_file  # backups taken before the rotation need it
    # The matching and pseudonym keys derive from the root, which the rotation keeps.
    assert load_key_file(path) == old_root
    assert_identities_open(environment, clients)
    accord = bootstrap(environment)
    try:
        with pytest.raises(ClientAlreadyRegistered):
            accord.app.register_client(Identity(**IDENTITIES[0]), practitioner(accord))
    finally:
        accord.close()
    # The old key alone opens nothing any more; rotating again starts from the new one.
    new_file = path.read_text()
    path.write_text(old_file)
    with pytest.raises(KeyFileError):
        bootstrap(environment)
    path.write_text(new_file)
    assert run(capsys, "keys", "rotate")[0] == 0
    assert load_key_file(path) == old_root
    assert_identities_open(environment, clients)


def test_an_interrupted_rotation_is_finished_by_running_it_again(
    capsys: pytest.CaptureFixture[str], environment: Settings, clients: list[UUID],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crash comes after the database committed, before the key files were swapped."""
    path = environment.key_file
    old_file = path.read_text()

    def power_cut(*_: Any) -> None:
        raise OSError("power cut")

    with monkeypatch.context() as patched:
        patched.setattr(keys.os, "replace", power_cut)
        code, _, err = run(capsys, "keys", "rotate")
    assert code != 0 and "run `accord keys rotate` again" in one_line(err)
    assert path.read_text() == old_file
    with pytest.raises(KeyFileError) as refused:
        bootstrap(environment)
    assert "interrupted" in str(refused.value) and "\n" not in str(refused.value)
    code, out, _ = run(capsys, "keys", "rotate")
    assert code == 0 and "finished the interrupted rotation" in out
    assert_identities_open(environment, clients)


def test_a_rotation_that_fails_before_its_commit_changes_nothing(
    capsys: pytest.CaptureFixture[str], environment: Settings, clients: list[UUID],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    class Crash(Exception):
        pass

    def crash(*_: Any) -> bytes:
        raise Crash

    path = environment.key_file
    old_file, old_ids = path.read_text(), kek_ids(environment)
    with monkeypatch.context() as patched, pytest.raises(Crash):
        patched.setattr(keys.FieldVault, "wrap", crash)
        main(["keys", "rotate"])
    assert path.read_text() == old_file and kek_ids(environment) == old_ids
    assert_identities_open(environment, clients)  # the server starts with the old key
    code, _, _ = run(capsys, "keys", "rotate")
    assert code == 0 and kek_ids(environment) != old_ids
    assert_identities_open(environment, clients)


# -- the check at start ---------------------------------------------------------------------


@pytest.fixture
def replaced(environment: Settings, clients: list[UUID]) -> Settings:
    """The KEK replaced behind accord's back, as `keys generate --force` used to."""
    generate_key_file(environment.key_file, overwrite=True)
    return environment


def test_build_and_the_app_refuse_a_kek_that_does_not_open_the_data_keys(
    replaced: Settings
) -> None:
    with pytest.raises(KeyFileError) as refused:
        bootstrap(replaced)
    message = str(refused.value)
    assert one_line(message) and str(replaced.key_file) in message
    assert "does not open the 2 client data keys" in message
    with pytest.raises(KeyFileError), TestClient(create_app(settings=replaced)):
        pass


@pytest.mark.parametrize("argv", [["worker", "--once"], ["agencies", "list"],
                                  ["projections", "catch-up"]])
def test_the_cli_stops_in_one_line_on_a_kek_that_does_not_open_the_data_keys(
    capsys: pytest.CaptureFixture[str], replaced: Settings, argv: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code != 0 and out == ""
    assert one_line(err).startswith("accord: the key-encryption key in")


def test_accord_serve_stops_in_one_line_on_a_kek_that_does_not_open_the_data_keys(
    replaced: Settings
) -> None:
    env = {**os.environ, "ACCORD_DATABASE_URL": replaced.database_url,
           "ACCORD_KEY_FILE": str(replaced.key_file)}
    if replaced.database_schema:
        env["ACCORD_DATABASE_SCHEMA"] = replaced.database_schema
    finished = subprocess.run([sys.executable, "-m", "api.cli", "serve", "--port", "1"],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode != 0
    assert finished.stdout == ""
    assert one_line(finished.stderr).startswith("accord: the key-encryption key in")
