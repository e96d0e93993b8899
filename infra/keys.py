"""Key management and field encryption for client identity.

Each client has its own AES-256-GCM data key. The data key is wrapped (AES-GCM)
by a key-encryption key (KEK) read from ``ACCORD_KEY_FILE`` and stored outside the
append-only log, so that destroying it erases the identity everywhere while the
log itself stays intact and verifiable. Both the wrapped key and the sealed
identity are bound to the client id as associated data, so neither can be moved
to another client. NHS numbers are matched by an HMAC under a key derived from
the KEK, never in plain text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine, insert, update

from domain.identity import Identity, IdentityErased
from infra.schema import client_keys

SEALED_PREFIX = "v1:"
KEY_BYTES = 32


class KeyFileError(RuntimeError):
    """The key-encryption key is missing or unusable; the message says what to do."""


def generate_key_file(path: Path, *, overwrite: bool = False) -> bool:
    """Writes a new random KEK (mode 0600). Returns False if one exists and overwrite is off."""
    if path.exists() and not overwrite:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n")
    return True


def load_key_file(path: Path) -> bytes:
    try:
        raw = path.read_text().strip()
    except FileNotFoundError:
        raise KeyFileError(
            f"no key-encryption key at {path}; create one with `accord keys generate` "
            "or point ACCORD_KEY_FILE at yours"
        ) from None
    try:
        key = base64.urlsafe_b64decode(raw)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{path} does not hold a base64 32-byte key")
    return key


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(master)


class FieldVault:
    """The IdentityVault: per-client data keys wrapped by the KEK."""

    def __init__(self, engine: Engine, master_key: bytes) -> None:
        self._engine = engine
        self._wrapping = AESGCM(_derive(master_key, b"accord/v1/key-wrapping"))
        self._matching_key = _derive(master_key, b"accord/v1/matching")
        self.kek_id = hashlib.sha256(_derive(master_key, b"accord/v1/kek-id")).hexdigest()[:16]

    def seal(self, client_id: UUID, identity: Identity) -> str:
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(12)
        wrapped = nonce + self._wrapping.encrypt(nonce, data_key, b"dek:" + client_id.bytes)
        with self._engine.begin() as conn:
            conn.execute(
                insert(client_keys).values(
                    client_id=client_id.hex, wrapped_key=wrapped, kek_id=self.kek_id,
                    created_at=datetime.now(UTC),
                )
            )
        nonce = secrets.token_bytes(12)
        sealed = nonce + AESGCM(data_key).encrypt(
            nonce, identity.model_dump_json().encode(), b"identity:" + client_id.bytes
        )
        return SEALED_PREFIX + base64.b64encode(sealed).decode()

    def open(self, client_id: UUID, sealed: str) -> Identity:
        # On the driver: every partner's view with identity in it comes through here.
        with self._engine.connect() as conn:
            mark = "?" if conn.dialect.name == "sqlite" else "%s"
            wrapped = conn.exec_driver_sql(
                f"SELECT wrapped_key FROM {client_keys.name} WHERE client_id = {mark}",  # noqa: S608 - schema name
                (client_id.hex,),
            ).scalar_one_or_none()
        if wrapped is None:
            raise IdentityErased(str(client_id))
        data_key = self._wrapping.decrypt(wrapped[:12], wrapped[12:], b"dek:" + client_id.bytes)
        if not sealed.startswith(SEALED_PREFIX):
            raise ValueError("unknown sealed identity format")
        blob = base64.b64decode(sealed[len(SEALED_PREFIX):])
        try:
            plain = AESGCM(data_key).decrypt(blob[:12], blob[12:], b"identity:" + client_id.bytes)
        except InvalidTag:
            raise ValueError(f"sealed identity of {client_id} fails authentication") from None
        return Identity.model_validate_json(plain)

    def fingerprint(self, value: str) -> str:
        return hmac.new(self._matching_key, value.encode(), hashlib.sha256).hexdigest()

    def shred(self, client_id: UUID) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(client_keys)
                .where(client_keys.c.client_id == client_id.hex)
                .values(wrapped_key=None, shredded_at=datetime.now(UTC))
            )
