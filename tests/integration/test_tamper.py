"""Tamper evidence: the RFC 6962 Merkle tree over the log, its signed heads, its proofs,
and ``accord audit verify`` finding and locating direct changes to the database."""

from __future__ import annotations

import hashlib
import json
import random
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
from projections.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    split,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)

# -- published test vectors -------------------------------------------------------------------
#
# From transparency-dev/merkle (the Certificate Transparency Merkle tree library, Apache 2.0):
# rfc6962/rfc6962_test.go (hasher) and proof/verify_test.go (the eight leaves, the roots of
# the trees of their first 1..8 leaves, inclusion proofs with 1-based leaf numbers and
# consistency proofs), https://github.com/transparency-dev/merkle.

HASHER_VECTORS = {
    "empty root": (EMPTY_ROOT, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    "empty leaf": (leaf_hash(b""),
                   "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    "leaf": (leaf_hash(b"L123456"),
             "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"),
    "node": (node_hash(b"N123", b"N456"),
             "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"),
}

LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]

ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]

INCLUSION = [  # (leaf number counting from 1, tree size, audit path)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]

CONSISTENCY = [  # (first size, second size, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _mth_over(hashes: list[bytes]) -> Any:
    def perfect(level: int, index: int) -> bytes:
        return root_of(hashes[index << level:(index + 1) << level])

    return lambda start, end: subtree_hash(start, end, perfect)


def _naive_mth(hashes: list[bytes]) -> bytes:
    """MTH exactly as RFC 6962 section 2.1 writes it: an independent, recursive definition."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = split(len(hashes))
    return node_hash(_naive_mth(hashes[:k]), _naive_mth(hashes[k:]))


@pytest.mark.parametrize("name", sorted(HASHER_VECTORS))
def test_hasher_vectors(name: str) -> None:
    got, want = HASHER_VECTORS[name]
    assert got.hex() == want


def test_roots_of_the_published_trees() -> None:
    hashes = [leaf_hash(leaf) for leaf in LEAVES]
    for size in range(1, 9):
        assert root_of(hashes[:size]) == ROOTS[size - 1], size


@pytest.mark.parametrize(("leaf", "size", "path"), INCLUSION)
def test_inclusion_vectors(leaf: int, size: int, path: list[str]) -> None:
    hashes = [leaf_hash(x) for x in LEAVES[:size]]
    proof = inclusion_proof(leaf - 1, size, _mth_over(hashes))
    assert [p.hex() for p in proof] == path
    root = ROOTS[size - 1]
    assert verify_inclusion(leaf - 1, size, hashes[leaf - 1], proof, root)
    # The corruptions the vectors' own test applies must all fail.
    wrong = [(leaf - 2, size, hashes[leaf - 1], proof, root),
             (leaf, size, hashes[leaf - 1], proof, root),
             (leaf - 1, size * 2, hashes[leaf - 1], proof, root),
             (leaf - 1, size, leaf_hash(b"WrongLeaf"), proof, root),
             (leaf - 1, size, hashes[leaf - 1], proof, EMPTY_ROOT),
             (leaf - 1, size, hashes[leaf - 1], proof, SOME_HASH),
             (leaf - 1, size, hashes[leaf - 1], [*proof, root], root),
             (leaf - 1, size, hashes[leaf - 1], [root, *proof], root)]
    if size // 2 > leaf - 1:
        wrong.append((leaf - 1, size // 2, hashes[leaf - 1], proof, root))
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        wrong.append((leaf - 1, size, hashes[leaf - 1], flipped, root))
    if proof:
        wrong.append((leaf - 1, size, hashes[leaf - 1], proof[:-1], root))
    for index, tree_size, leaf_h, bad_proof, bad_root in wrong:
        if index < 0:
            continue
        assert not verify_inclusion(index, tree_size, leaf_h, bad_proof, bad_root)


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY)
def test_consistency_vectors(first: int, second: int, path: list[str]) -> None:
    hashes = [leaf_hash(x) for x in LEAVES[:second]]
    proof = consistency_proof(first, second, _mth_over(hashes))
    assert [p.hex() for p in proof] == path
    root1, root2 = ROOTS[first - 1], ROOTS[second - 1]
    assert verify_consistency(first, second, root1, root2, proof)
    if not proof:
        return
    wrong = [(first - 1, second, root1, root2, proof), (first + 1, second, root1, root2, proof),
             (first ^ 2, second, root1, root2, proof), (first, second * 2, root1, root2, proof),
             (first, second, SOME_HASH, root2, proof), (first, second, root1, SOME_HASH, proof),
             (first, second, root2, root1, proof), (first, second, root1, root2, []),
             (first, second, root1, root2, [*proof, root1]),
             (first, second, root1, root2, [root2, *proof]),
             (first, second, root1, root2, [proof[0], *proof]),
             (first, second, root1, root2, proof[:-1])]
    if second // 2 >= first:
        wrong.append((first, second // 2, root1, root2, proof))
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        wrong.append((first, second, root1, root2, flipped))
    for args in wrong:
        assert not verify_consistency(*args), args


def test_trivial_consistency_cases() -> None:
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 1, EMPTY_ROOT, SOME_HASH, [])
    assert not verify_consistency(1, 1, EMPTY_ROOT, SOME_HASH, [])
    assert not verify_consistency(2, 1, EMPTY_ROOT, SOME_HASH, [])
    assert not verify_consistency(1, 2, EMPTY_ROOT, SOME_HASH, [])
    assert not verify_consistency(1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])


def test_every_proof_of_small_trees_agrees_with_the_rfc_definition() -> None:
    """Against the RFC's recursive MTH, for every size, leaf and pair of sizes up to 70."""
    rng = random.Random(6962)
    hashes = [leaf_hash(rng.randbytes(rng.randrange(40))) for _ in range(70)]
    compact = CompactRange()
    mth = _mth_over(hashes)
    for size in range(1, len(hashes) + 1):
        compact.append(hashes[size - 1])
        root = _naive_mth(hashes[:size])
        assert compact.root() == root == mth(0, size)
        for index in range(size):
            proof = inclusion_proof(index, size, mth)
            assert verify_inclusion(index, size, hashes[index], proof, root)
            assert not verify_inclusion(index, size, hashes[(index + 1) % size] if size > 1
                                        else SOME_HASH, proof, root)
        for first in range(1, size + 1):
            proof = consistency_proof(first, size, mth)
            assert verify_consistency(first, size, _naive_mth(hashes[:first]), root, proof)


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
