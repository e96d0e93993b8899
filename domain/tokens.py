"""Bearer tokens: their format, and how they are kept and checked.

A token is ``acc_<principal id in hex>_<secret>``. Only a SHA-256 hash of the secret is
kept on the principal, so the token is shown once, when it is issued, and never again;
checking one compares hashes in constant time. A token that is not of this shape is
"malformed"; one of this shape that names nobody, or whose secret does not match, is
"unknown" (the two say nothing about which principals exist).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from uuid import UUID

from domain.errors import Unauthenticated

TOKEN_PREFIX = "acc"  # noqa: S105 - a prefix, not a secret


def new_secret() -> str:
    """A fresh secret for a principal's token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_hash(secret: str) -> str:
    """What the principal keeps of its token's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def bearer_token(principal_id: UUID, secret: str) -> str:
    """The token handed to the principal, once."""
    return f"{TOKEN_PREFIX}_{principal_id.hex}_{secret}"


def parse_bearer_token(token: str) -> tuple[UUID, str]:
    """The principal a token names and its secret; ``Unauthenticated`` for anything else."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise Unauthenticated("malformed token")
    try:
        return UUID(hex=parts[1]), parts[2]
    except ValueError:
        raise Unauthenticated("unknown token") from None


def secret_matches(kept_hash: str, secret: str) -> bool:
    """Whether the secret is the one whose hash the principal keeps (constant time)."""
    return hmac.compare_digest(kept_hash, token_hash(secret))
