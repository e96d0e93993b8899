"""The Ed25519 key that signs the log's Merkle tree heads.

The key lives in ``ACCORD_SIGNING_KEY_FILE`` (by default ``signing.key`` beside the
key-encryption key, ``.accord/signing.key``) as the base64 of its 32-byte private seed,
written with mode 0600, like the KEK. Partners verify tree heads with the public key
(base64 of its 32 raw bytes), which they should pin once: a head that only verifies
against a public key served alongside it proves nothing.

Losing this key does not lose data: heads already signed stay verifiable with the old
public key, and new heads are signed with the new one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SEED_BYTES = 32
ALGORITHM = "Ed25519"


class SigningKeyError(RuntimeError):
    """The signing key (or a public key given to check against) is missing or unusable."""


def generate_signing_key_file(path: Path, *, overwrite: bool = False) -> bool:
    """Writes a new Ed25519 key (mode 0600). Returns False if one exists and overwrite is off."""
    if path.exists() and not overwrite:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = os.urandom(SEED_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.urlsafe_b64encode(seed).decode() + "\n")
    return True


@dataclass(frozen=True)
class Signer:
    """Signs tree heads; ``public_key`` is what partners pin."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> str:
        return public_key_text(self.private_key.public_key())

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def load_signer(path: Path) -> Signer:
    try:
        raw = path.read_text().strip()
    except FileNotFoundError:
        raise SigningKeyError(
            f"no tree-head signing key at {path}; create one with `accord keys generate` "
            "or point ACCORD_SIGNING_KEY_FILE at yours"
        ) from None
    try:
        seed = base64.urlsafe_b64decode(raw)
    except (ValueError, binascii.Error):
        seed = b""
    if len(seed) != SEED_BYTES:
        raise SigningKeyError(f"{path} does not hold a base64 32-byte Ed25519 key")
    return Signer(Ed25519PrivateKey.from_private_bytes(seed))


def public_key_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A public key from its base64 text (as ``accord audit public-key`` prints it)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error):
        raise SigningKeyError("not an Ed25519 public key (expected base64 of 32 bytes)") from None


def key_id(public_key: str) -> str:
    """A short name for a public key: the first 8 bytes of SHA-256 of its raw bytes, in hex."""
    try:
        raw = base64.b64decode(public_key, validate=True)
    except (ValueError, binascii.Error):
        raw = public_key.encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def signature_valid(public_key: Ed25519PublicKey, message: bytes, signature: bytes) -> bool:
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
