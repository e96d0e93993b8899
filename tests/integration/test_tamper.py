"""Tamper evidence over a real log, on both databases: the RFC 6962 Merkle tree over the
log, its signed heads, its proofs (as the API serves them, checked offline), and ``accord
audit verify`` finding and locating direct changes to the database. The tree's published
test vectors need no database: tests/unit/test_merkle.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.bootstrap import Accord
from api.cli import main
from domain.agencies import Role
from infra.settings import Settings
from infra.signing import generate_signing_key_file, load_signer
from projections.log_tree import LogTree, notification_leaf

# -- the log tree over a real log, and accord audit verify -------------------------------------


@pytest.fixture
def signing_key(settings: Settings) -> Path:
    """A tree-head signing key where the settings look for it (before the app starts)."""
    generate_signing_key_file(settings.signing_key_path)
    return settings.signing_key_path


@pytest.fixture
def env(settings: Settings, signing_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment ``accord`` reads, pointing at the test's database and keys."""
    monkeypatch.setenv("ACCORD_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ACCORD_KEY_FILE", str(settings.key_file))
    monkeypatch.setenv("ACCORD_SIGNING_KEY_FILE", str(signing_key))
    if settings.database_schema:
        monkeypatch.setenv("ACCORD_DATABASE_SCHEMA", settings.database_schema)
    else:
        monkeypatch.delenv("ACCORD_DATABASE_SCHEMA", raising=False)


@pytest.fixture
def tree(accord: Accord, signing_key: Path) -> LogTree:
    """The partnership's log (about 60 events) in a tree with a head every 8 events."""
    tree = LogTree(accord.app, accord.engine, load_signer(signing_key), batch_size=8)
    tree.catch_up(sign_now=True)
    return tree


def audit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["audit", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _table(accord: Accord) -> tuple[str, str]:
    """The event store's table and its position column on this backend."""
    recorder: Any = accord.app.recorder
    column = "rowid" if accord.engine.dialect.name == "sqlite" else "notification_id"
    return recorder.events_table_name, column


def _state(accord: Accord, position: int) -> bytes:
    table, column = _table(accord)
    with accord.engine.connect() as conn:
        return bytes(conn.execute(text(f"SELECT state FROM {table} WHERE {column} = :p"),
                                  {"p": position}).scalar_one())


def _set_state(accord: Accord, position: int, state: bytes) -> None:
    table, column = _table(accord)
    with accord.engine.begin() as conn:
        conn.execute(text(f"UPDATE {table} SET state = :s WHERE {column} = :p"),
                     {"s": state, "p": position})


def test_a_clean_log_verifies(partnership: Any, tree: LogTree, env: None,
                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out = audit(capsys, "verify")
    assert code == 0, out
    size = tree.size()
    assert size >= 30
    assert f"OK: the log matches every signed tree head; checked {size} events" in out
    head = tree.latest_head()
    assert head is not None and head.tree_size == size


def test_one_changed_byte_is_located(partnership: Any, accord: Accord, tree: LogTree,
                                     env: None, capsys: pytest.CaptureFixture[str]) -> None:
    state = bytearray(_state(accord, 17))
    state[len(state) // 2] ^= 0x01
    _set_state(accord, 17, bytes(state))
    code, out = audit(capsys, "verify")
    assert code == 1, out
    assert "TAMPERED: the first altered position is 17" in out
    assert "position 17 was changed" in out


def test_a_deleted_event_is_located(partnership: Any, accord: Accord, tree: LogTree,
                                    env: None, capsys: pytest.CaptureFixture[str]) -> None:
    table, column = _table(accord)
    with accord.engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {table} WHERE {column} = 12"))
    code, out = audit(capsys, "verify")
    assert code == 1, out
    assert "TAMPERED: the first altered position is 12" in out
    assert "position 12 was removed" in out


def test_two_swapped_events_are_located(partnership: Any, accord: Accord, tree: LogTree,
                                        env: None, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = _state(accord, 9), _state(accord, 21)
    assert first != second
    _set_state(accord, 9, second)
    _set_state(accord, 21, first)
    code, out = audit(capsys, "verify")
    assert code == 1, out
    assert "TAMPERED: the first altered position is 9" in out
    assert "position 9 was changed" in out and "position 21 was changed" in out


def test_events_moved_to_each_others_positions_are_named_as_reordered(
        partnership: Any, accord: Accord, tree: LogTree, env: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    table, column = _table(accord)
    columns = "originator_id, originator_version, topic, state"
    with accord.engine.begin() as conn:
        rows = {p: conn.execute(text(f"SELECT {columns} FROM {table} WHERE {column} = :p"),
                                {"p": p}).one() for p in (5, 6)}
        conn.execute(text(f"DELETE FROM {table} WHERE {column} IN (5, 6)"))
        for position, original in ((5, 6), (6, 5)):
            conn.execute(text(f"INSERT INTO {table} ({column}, {columns}) "
                              "VALUES (:p, :o, :v, :t, :s)"),
                         {"p": position, "o": rows[original][0], "v": rows[original][1],
                          "t": rows[original][2], "s": rows[original][3]})
    code, out = audit(capsys, "verify")
    assert code == 1, out
    assert "TAMPERED: the first altered position is 5" in out
    assert "position 5 was moved: it holds the event the signed tree recorded at position 6" in out


def test_changing_the_tree_as_well_is_still_detected(
        partnership: Any, accord: Accord, tree: LogTree, env: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    """An attacker who rewrites an event and its leaf cannot re-sign the heads."""
    state = bytearray(_state(accord, 20))
    state[-2] ^= 0x20
    _set_state(accord, 20, bytes(state))
    notification = accord.app.recorder.select_notifications(start=20, limit=1)[0]
    with accord.engine.begin() as conn:
        conn.execute(text("UPDATE accord_tree_leaves SET leaf_hash = :h WHERE position = 20"),
                     {"h": notification_leaf(notification)})
    code, out = audit(capsys, "verify")
    assert code == 1, out
    assert "the tree tables were altered as well" in out
    # Heads every 8 events bound the change: the last matching head ends at position 16.
    assert "the first difference lies between positions 17 and 24" in out


def test_a_forged_head_or_no_head_fails(partnership: Any, accord: Accord, tree: LogTree,
                                        env: None, capsys: pytest.CaptureFixture[str]) -> None:
    with accord.engine.begin() as conn:
        conn.execute(text("UPDATE accord_tree_heads SET root_hash = :r WHERE tree_size = 8"),
                     {"r": bytes(32)})
    code, out = audit(capsys, "verify")
    assert code == 1 and "the tree head of size 8 has an invalid signature" in out, out
    with accord.engine.begin() as conn:
        conn.execute(text("DELETE FROM accord_tree_heads"))
    code, out = audit(capsys, "verify")
    assert code == 1 and "NOT VERIFIED: no signed tree head covers the log" in out, out


def test_a_tail_not_yet_signed_is_reported_not_failed(
        partnership: Any, accord: Accord, tree: LogTree, env: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    accord.app.register_agency("housing", "Housing", _kind("housing"), _operator())
    code, out = audit(capsys, "verify")
    assert code == 0, out
    assert f"events after position {tree.size()} are not yet covered" in out


def _kind(value: str) -> Any:
    from domain.agencies import AgencyKind

    return AgencyKind(value)


def _operator() -> Any:
    from domain.application import OPERATOR

    return OPERATOR


# -- proofs served by the API, checked offline ------------------------------------------------


@pytest.fixture
def signed_api(signing_key: Path, partnership: Any, api: TestClient) -> Iterator[TestClient]:
    yield api


def _head(api: TestClient, headers: dict[str, str], size: int) -> dict[str, Any]:
    """Waits for the in-process log tree to sign a head of at least ``size`` events."""
    deadline = time.monotonic() + 10
    while True:
        response = api.get("/v1/audit/tree-head", headers=headers)
        if response.status_code == 200 and response.json()["tree_size"] >= size:
            return dict(response.json())
        assert time.monotonic() < deadline, response.text
        time.sleep(0.05)


def test_api_proofs_verify_offline(signed_api: TestClient, partnership: Any, accord: Accord,
                                   env: None, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    api = signed_api
    headers = partnership.headers("police", Role.IG_LEAD)
    first = _head(api, headers, accord.app.head_position())
    accord.app.register_agency("housing", "Housing", _kind("housing"), _operator())
    second = _head(api, headers, first["tree_size"] + 1)
    code, key = audit(capsys, "public-key")
    assert code == 0
    public_key = key.splitlines()[0]
    assert public_key == second["public_key"]

    files = {}
    for name, body in (("first", first), ("second", second)):
        files[name] = tmp_path / f"{name}-head.json"
        files[name].write_text(json.dumps(body))
    inclusion = api.get(f"/v1/audit/proofs/inclusion?position=3&tree_size={second['tree_size']}",
                        headers=headers)
    assert inclusion.status_code == 200, inclusion.text
    proof_file = tmp_path / "inclusion.json"
    proof_file.write_text(inclusion.text)
    code, out = audit(capsys, "check-proof", str(proof_file), "--tree-head",
                      str(files["second"]), "--public-key", public_key)
    assert code == 0 and "OK: leaf" in out and "position 3" in out, out

    # A proof for another leaf fails: swap in the leaf hash of position 4.
    other = api.get(f"/v1/audit/proofs/inclusion?position=4&tree_size={second['tree_size']}",
                    headers=headers).json()
    forged = {**inclusion.json(), "leaf_hash": other["leaf_hash"]}
    proof_file.write_text(json.dumps(forged))
    code, out = audit(capsys, "check-proof", str(proof_file), "--tree-head",
                      str(files["second"]), "--public-key", public_key)
    assert code == 1 and "FAILED: the audit path does not lead" in out, out
    proof_file.write_text(inclusion.text)
    code, out = audit(capsys, "check-proof", str(proof_file), "--tree-head",
                      str(files["second"]), "--public-key", public_key,
                      "--leaf-hash", other["leaf_hash"])
    assert code == 1 and "another leaf" in out, out

    # The later head extends the earlier one.
    consistency = api.get(f"/v1/audit/proofs/consistency?first={first['tree_size']}"
                          f"&second={second['tree_size']}", headers=headers)
    assert consistency.status_code == 200, consistency.text
    proof_file.write_text(consistency.text)
    code, out = audit(capsys, "check-proof", str(proof_file), "--tree-head",
                      str(files["first"]), "--tree-head", str(files["second"]),
                      "--public-key", public_key)
    assert code == 0 and "the log only grew" in out, out

    # A head signed by another key is refused.
    other_key = tmp_path / "other.key"
    generate_signing_key_file(other_key)
    code, out = audit(capsys, "check-proof", str(proof_file), "--tree-head",
                      str(files["first"]), "--tree-head", str(files["second"]),
                      "--public-key", load_signer(other_key).public_key)
    assert code == 1 and "is not signed by that public key" in out, out


def test_bad_proof_requests_are_clear_4xx(signed_api: TestClient, partnership: Any,
                                          accord: Accord) -> None:
    api = signed_api
    headers = partnership.headers("tp", Role.ADMIN)
    size = _head(api, headers, accord.app.head_position())["tree_size"]
    cases = {
        "/v1/audit/proofs/inclusion": 422,
        "/v1/audit/proofs/inclusion?position=abc": 422,
        "/v1/audit/proofs/inclusion?position=0": 422,
        f"/v1/audit/proofs/inclusion?position={size + 50}": 422,
        f"/v1/audit/proofs/inclusion?position=1&tree_size={size + 50}": 422,
        "/v1/audit/proofs/inclusion?position=99999999999999999999999": 422,
        f"/v1/audit/proofs/inclusion?position={size}&tree_size=1": 422,
        "/v1/audit/proofs/consistency": 422,
        f"/v1/audit/proofs/consistency?first={size}&second=1": 422,
        f"/v1/audit/proofs/consistency?first=1&second={size + 1000}": 422,
        "/v1/audit/proofs/consistency?first=-1": 422,
    }
    for url, status in cases.items():
        response = api.get(url, headers=headers)
        assert response.status_code == status, (url, response.text)
        assert response.json()["detail"], url
    beyond = api.get(f"/v1/audit/proofs/inclusion?position={size + 50}", headers=headers)
    assert "beyond the tree" in beyond.json()["errors"][0]["message"]
