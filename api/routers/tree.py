"""Tamper evidence for IG leads and administrators: the log's signed Merkle tree head and
RFC 6962 proofs that a partner can check offline (``accord audit check-proof``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from api.deps import ProofReader, Tree, TreeHeadReader
from api.errors import error_responses
from domain.errors import NotFound
from domain.inputs import LogPosition
from projections.log_tree import TreeIncomplete

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
