"""``accord audit``: verify the stored log against its signed Merkle tree heads, check a
proof offline, print the public key partners pin.

Exit status: 0 verified, 1 tampering found or a proof that does not verify, 2 unusable
input (no key, unreadable file, no database).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from api.bootstrap import bootstrap
from infra.settings import Settings
from infra.signing import SigningKeyError, load_signer, parse_public_key
from projections.log_tree import TreeHead, Verification, verify_log
from projections.merkle import (
    hash_from_hex,
    verify_consistency,
    verify_inclusion,
    whole_number,
)

SHOWN_FINDINGS = 10


def add_parser(commands: Any) -> None:
    audit = commands.add_parser("audit", help="tamper evidence: the log's signed Merkle tree")
    actions = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = actions.add_parser(
        "verify", help="recompute the tree from the stored log and check every signed head; "
        "names the first position changed, removed or reordered (exit 1)")
    verify.add_argument("--public-key", action="append", default=[], metavar="KEY",
                        help="also trust this Ed25519 public key (base64, or a file holding "
                        "it); the signing key's own is always trusted")
    verify.add_argument("--tree-head", action="append", default=[], type=Path, metavar="FILE",
                        help="a tree head held elsewhere (JSON as the API serves it), checked "
                        "against the log as well")
    check = actions.add_parser("check-proof",
                               help="verify a proof offline against tree heads you hold")
    check.add_argument("proof", type=Path, help="the proof (JSON, as the API serves it)")
    check.add_argument("--tree-head", action="append", required=True, type=Path,
                       metavar="FILE", help="a signed tree head (JSON); a consistency proof "
                       "needs the heads of both sizes")
    check.add_argument("--public-key", required=True, metavar="KEY",
                       help="the partnership's Ed25519 public key (base64, or a file holding it)")
    check.add_argument("--leaf-hash", metavar="HEX",
                       help="require the inclusion proof to be for this leaf hash")
    actions.add_parser("public-key", help="print the tree-head public key for partners to pin")


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.action == "check-proof":
            return _check_proof(args)
        if args.action == "public-key":
            signer = load_signer(settings.signing_key_path)
            print(signer.public_key)
            print(f"key id {signer.key_id}", file=sys.stderr)
            return 0
        return _verify(settings, args)
    except SigningKeyError as exc:
        print(f"accord: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"accord: {exc}", file=sys.stderr)
        return 2


def _key_text(value: str) -> str:
    path = Path(value)
    try:
        if path.is_file():
            return path.read_text().strip()
    except OSError:
        pass
    return value


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the {what} {path}: {exc}") from None


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    trusted = [_key_text(k) for k in args.public_key]
    for key in trusted:
        parse_public_key(key)
    if settings.signing_key_path.exists() or not trusted:
        trusted.append(load_signer(settings.signing_key_path).public_key)
    extra = [TreeHead.from_json(_read_json(p, "tree head")) for p in args.tree_head]
    accord = bootstrap(settings, read_models=False)
    try:
        result = verify_log(accord.app, accord.engine, trusted, extra, show_progress=True)
    finally:
        accord.close()
    return _report(result)


def _report(result: Verification) -> int:
    rate = result.events / result.elapsed if result.elapsed else 0.0
    checked = (f"{result.events:,} events against {result.heads:,} signed tree heads in "
               f"{result.elapsed:.1f}s ({rate:,.0f} events/s)")
    if result.ok and result.heads == 0 and result.events:
        print(f"NOT VERIFIED: no signed tree head covers the log ({result.events:,} events). "
              "Is the log tree running? (`accord keys generate` creates its signing key; "
              "`accord projections catch-up` brings it up to date)")
        return 1
    if result.ok:
        print(f"OK: the log matches every signed tree head; checked {checked}")
        if result.heads:
            print(f"the latest head covers {result.covered_size:,} events, up to position "
                  f"{result.covered_position}")
        if result.uncovered:
            print(f"{result.uncovered:,} events after position {result.covered_position} are "
                  "not yet covered by a signed head")
        return 0
    first = result.first_position
    if first is not None:
        print(f"TAMPERED: the first altered position is {first}")
    else:
        print("TAMPERED: the log or its tree heads were altered")
    for finding in sorted(result.findings, key=lambda f: f.position)[:SHOWN_FINDINGS]:
        print(f"  {finding}")
    if result.finding_count > SHOWN_FINDINGS:
        print(f"  ... and {result.finding_count - SHOWN_FINDINGS:,} more positions")
    for problem in result.problems:
        print(f"  {problem}")
    print(f"checked {checked}")
    return 1


def _check_proof(args: argparse.Namespace) -> int:
    key = parse_public_key(_key_text(args.public_key))
    proof = _read_json(args.proof, "proof")
    if not isinstance(proof, dict):
        raise ValueError(f"{args.proof} does not hold a proof object")
    heads: dict[int, TreeHead] = {}
    for path in args.tree_head:
        head = TreeHead.from_json(_read_json(path, "tree head"))
        if not head.signed_by(key):
            return _failed(f"the tree head in {path} (size {head.tree_size}) is not signed by "
                           "that public key")
        heads[head.tree_size] = head
    kind = proof.get("kind")
    if kind == "inclusion":
        return _check_inclusion(proof, heads, args.leaf_hash)
    if kind == "consistency":
        return _check_consistency(proof, heads)
    raise ValueError(f"{args.proof}: kind must be inclusion or consistency, not {kind!r}")


def _check_inclusion(proof: dict[str, Any], heads: dict[int, TreeHead],
                     expected_leaf: str | None) -> int:
    size, index = _number(proof, "tree_size"), _number(proof, "leaf_index")
    leaf = hash_from_hex(proof.get("leaf_hash"), "leaf_hash")
    path = [hash_from_hex(h, "each hash in audit_path") for h in _list(proof, "audit_path")]
    head = heads.get(size)
    if head is None:
        return _failed(f"the proof is for a tree of size {size}; give the signed head of that "
                       f"size (given: {', '.join(map(str, sorted(heads)))})")
    if expected_leaf is not None and hash_from_hex(expected_leaf, "--leaf-hash") != leaf:
        return _failed("the proof is for another leaf than --leaf-hash")
    if not verify_inclusion(index, size, leaf, path, head.root_hash):
        return _failed(f"the audit path does not lead from leaf {leaf.hex()} (index {index}) to "
                       f"the signed root of the tree of size {size}")
    print(f"OK: leaf {leaf.hex()} (index {index}, position {proof.get('position')}) is in the "
          f"signed tree of size {size}, signed by key {head.key_id} at "
          f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(head.timestamp / 1000))}")
    return 0


def _check_consistency(proof: dict[str, Any], heads: dict[int, TreeHead]) -> int:
    first, second = _number(proof, "first"), _number(proof, "second")
    path = [hash_from_hex(h, "each hash in consistency_path")
            for h in _list(proof, "consistency_path")]
    missing = [s for s in (first, second) if s not in heads]
    if missing:
        return _failed(f"give the signed heads of sizes {first} and {second} (missing: "
                       f"{', '.join(map(str, missing))})")
    if not verify_consistency(first, second, heads[first].root_hash, heads[second].root_hash,
                              path):
        return _failed(f"the tree of size {first} is not a prefix of the tree of size "
                       f"{second}: the log was rewritten between the two heads")
    print(f"OK: the signed tree of size {first} is a prefix of the signed tree of size "
          f"{second}: the log only grew in between")
    return 0


def _failed(message: str) -> int:
    print(f"FAILED: {message}")
    return 1


def _number(proof: dict[str, Any], name: str) -> int:
    return whole_number(proof.get(name), f"the proof's {name}")


def _list(proof: dict[str, Any], name: str) -> list[Any]:
    value = proof.get(name)
    if not isinstance(value, list):
        raise ValueError(f"the proof's {name} must be a list of hex hashes")
    return value
