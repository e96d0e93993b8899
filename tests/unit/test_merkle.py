"""The RFC 6962 Merkle tree over the log, without a database: the published test vectors
(hashes, roots, inclusion and consistency proofs) and every proof of the small trees
against the RFC's definition. The tree over a real log, its signed heads and
``accord audit verify`` are tests/integration/test_tamper.py."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pytest

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
