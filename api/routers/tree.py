"""Tamper evidence for IG leads and administrators: the log's signed Merkle tree head and
RFC 6962 proofs that a partner can check offline (``accord audit check-proof``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from api.deps import ProofReader, Tree, TreeHeadReader, TreeKeys
from api.errors import error_responses
from domain.errors import Conflict, NotFound
from domain.inputs import LogPosition
from infra.signing import key_id
from projections.log_tree import TreeIncomplete, Verification, verify_log

router = APIRouter(prefix="/v1/audit", tags=["audit"])


class TreeHeadOut(BaseModel):
    tree_size: int = Field(description="how many events of the log the tree holds")
    last_position: int = Field(description="the log position of the tree's last event")
    root_hash: str = Field(description="RFC 6962 Merkle tree hash (SHA-256), hex")
    timestamp: int = Field(description="when it was signed, ms since the Unix epoch (UTC)")
    key_id: str = Field(description="first 8 bytes of SHA-256 of the public key, hex")
    public_key: str = Field(description="Ed25519 public key, base64; pin it, then compare")
    signature: str = Field(description="Ed25519 signature of the head's message, base64")
    algorithm: str


class TreeFindingOut(BaseModel):
    position: int = Field(description="a log position that no longer matches its signed tree")
    kind: str = Field(description="changed, removed, inserted or moved")
    detail: str


class TreeVerificationOut(BaseModel):
    """What ``accord audit verify`` reports, for those who may read the tree head."""

    verified: bool = Field(description="the stored log matches every signed tree head, and "
                           "at least one head covers it")
    events: int = Field(description="how many events of the log were recomputed")
    heads: int = Field(description="how many signed tree heads were checked")
    covered_size: int = Field(description="how many events the latest signed head covers")
    covered_position: int = Field(description="the log position the latest head covers to")
    uncovered: int = Field(description="events after it, not yet covered by a signed head")
    first_altered_position: int | None = Field(
        description="the first log position changed, removed, inserted or moved, if any")
    findings: list[TreeFindingOut] = Field(description="the first positions found altered")
    finding_count: int = Field(description="how many positions were found altered in all")
    problems: list[str] = Field(description="anything else wrong: an untrusted key, a bad "
                                "signature, two heads of one size that disagree")
    trusted_keys: list[str] = Field(description="the ids of the public keys whose "
                                    "signatures were trusted (this server's own)")
    seconds: float = Field(description="how long the verification took")


class InclusionProofOut(BaseModel):
    kind: Literal["inclusion"]
    position: int
    leaf_index: int
    tree_size: int
    leaf_hash: str
    audit_path: list[str]
    root_hash: str


class ConsistencyProofOut(BaseModel):
    kind: Literal["consistency"]
    first: int
    second: int
    first_root: str
    second_root: str
    consistency_path: list[str]


def _answer(work: Callable[[], Any]) -> dict[str, Any]:
    try:
        result: dict[str, Any] = work().to_json()
    except TreeIncomplete as exc:
        raise HTTPException(503, f"the Merkle tree is incomplete: {exc}") from None
    return result


@router.get("/tree-head", response_model=TreeHeadOut, responses=error_responses(403, 404))
def tree_head(tree: Tree, _: TreeHeadReader) -> dict[str, Any]:
    """The latest signed tree head over the notification log."""
    head = tree.latest_head()
    if head is None:
        raise NotFound("no signed tree head yet: the log tree has not caught up")
    return head.to_json()


@router.get("/proofs/inclusion", response_model=InclusionProofOut,
            responses=error_responses(403, 404, 503))
def inclusion(
    tree: Tree, _: ProofReader,
    position: Annotated[LogPosition, Query(description="log position")],
    tree_size: Annotated[LogPosition | None, Query(
        description="default: the latest signed head's")] = None,
) -> dict[str, Any]:
    """The RFC 6962 audit path of the event at ``position`` in the tree of ``tree_size``."""
    return _answer(lambda: tree.inclusion(position, tree_size))


@router.get("/proofs/consistency", response_model=ConsistencyProofOut,
            responses=error_responses(403, 404, 503))
def consistency(
    tree: Tree, _: ProofReader,
    first: Annotated[LogPosition, Query(description="the earlier tree size")],
    second: Annotated[LogPosition | None, Query(
        description="the later tree size; default the latest head's",
    )] = None,
) -> dict[str, Any]:
    """The RFC 6962 proof that the tree of ``first`` events is a prefix of the tree of
    ``second``: the log only grew in between."""
    return _answer(lambda: tree.consistency(first, second))


#: One verification at a time: each reads the whole log.
_verifying = threading.Lock()
#: How many findings the answer lists (``finding_count`` counts them all).
SHOWN_FINDINGS = 10


@router.get("/tree-verification", response_model=TreeVerificationOut,
            responses=error_responses(403, 409))
def tree_verification(tree: Tree, keys: TreeKeys, _: TreeHeadReader) -> TreeVerificationOut:
    """Verifies the log as ``accord audit verify`` does: recomputes the Merkle tree from
    every stored event and checks it against every signed tree head, trusting this
    server's own signing key; names the first position changed, removed, inserted or
    moved. It reads the whole log, so one runs at a time (409 while another runs)."""
    if not _verifying.acquire(blocking=False):
        raise Conflict("a verification of the log is already running; try again when it "
                       "has finished")
    try:
        if not keys:
            result = Verification(problems=[
                "this server holds no tree-head signing key, so no signature can be "
                "checked here: run `accord audit verify --public-key KEY` with the "
                "partnership's public key"])
        else:
            result = verify_log(tree.app, tree.engine, keys)
    finally:
        _verifying.release()
    findings = sorted(result.findings, key=lambda f: f.position)[:SHOWN_FINDINGS]
    return TreeVerificationOut(
        verified=result.ok and result.heads > 0, events=result.events, heads=result.heads,
        covered_size=result.covered_size, covered_position=result.covered_position,
        uncovered=result.uncovered, first_altered_position=result.first_position,
        findings=[TreeFindingOut(position=f.position, kind=f.kind, detail=f.detail)
                  for f in findings],
        finding_count=result.finding_count, problems=list(result.problems),
        trusted_keys=[key_id(k) for k in keys], seconds=round(result.elapsed, 3),
    )
