"""Key management and field encryption for client identity.

Each client has its own AES-256-GCM data key. The data key is wrapped (AES-GCM)
by a key-encryption key (KEK) read from ``ACCORD_KEY_FILE`` and stored outside the
append-only log, so that destroying it erases the identity everywhere while the
log itself stays intact and verifiable. Both the wrapped key and the sealed
identity are bound to the client id as associated data, so neither can be moved
to another client. NHS numbers are matched by an HMAC under a key derived from
the KEK, never in plain text.

The key file holds the KEK (base64, one line). Until the first rotation the KEK is
also the **root** from which the matching key (NHS-number fingerprints, stored in the
log) and the Kafka pseudonym key derive. Those cannot change without rewriting the log
and every partner's message keys, so ``accord keys rotate`` changes only the key that
wraps the data keys: the rotated file keeps the original root on a second line
(``root: <base64>``). Rotation and the start-up check are below (``rotate``,
``open_vault``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine, bindparam, func, insert, inspect, select, update

from domain.identity import SEALED_TEXT_PREFIX, Identity, IdentityErased
from domain.inputs import STORED
from infra import dialect
from infra.schema import client_keys

SEALED_PREFIX = "v1:"
KEY_BYTES = 32
#: The key file's second line after a rotation: the root the matching keys derive from.
ROOT_PREFIX = "root:"


class KeyFileError(RuntimeError):
    """The key-encryption key is missing or unusable; the message says what to do."""


@dataclass(frozen=True)
class KeyMaterial:
    """What a key file holds: the KEK that wraps the data keys, and the root from which
    the matching and pseudonym keys derive (the KEK itself until the first rotation)."""

    kek: bytes
    root: bytes

    @classmethod
    def new(cls, root: bytes | None = None) -> KeyMaterial:
        kek = secrets.token_bytes(KEY_BYTES)
        return cls(kek, kek if root is None else root)

    def text(self) -> str:
        lines = [_encode(self.kek)]
        if self.root != self.kek:
            lines.append(f"{ROOT_PREFIX} {_encode(self.root)}")
        return "\n".join(lines) + "\n"


def _encode(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def generate_key_file(path: Path, *, overwrite: bool = False) -> bool:
    """Writes a new random KEK (mode 0600). Returns False if one exists and overwrite is off.
    The CLI checks first that no data key in the database depends on the key replaced."""
    if path.exists() and not overwrite:
        return False
    _write(path, KeyMaterial.new())
    return True


def _write(path: Path, keys: KeyMaterial) -> None:
    """Writes a key file (mode 0600) and makes it durable before returning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(keys.text())
        handle.flush()
        os.fsync(handle.fileno())
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    """Makes a file's creation or renaming in ``directory`` survive a power loss."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_keys(path: Path) -> KeyMaterial:
    """The key file's KEK and root; KeyFileError with what to do if it is unusable."""
    try:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise KeyFileError(
            f"no key-encryption key at {path}; create one with `accord keys generate` "
            "or point ACCORD_KEY_FILE at yours"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc}") from None
    kek = _decode(lines[0]) if lines else b""
    root = kek
    for line in lines[1:]:
        root = _decode(line[len(ROOT_PREFIX):]) if line.startswith(ROOT_PREFIX) else b""
    if len(kek) != KEY_BYTES or len(root) != KEY_BYTES or len(lines) > 2:
        raise KeyFileError(f"{path} does not hold a base64 32-byte key")
    return KeyMaterial(kek, root)


def _decode(raw: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(raw.strip())
    except ValueError:
        return b""


def load_key_file(path: Path) -> bytes:
    """The root key: what the matching and Kafka pseudonym keys derive from (the KEK
    itself until the first rotation)."""
    return read_keys(path).root


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(master)


def kek_id_of(kek: bytes) -> str:
    """The id stored beside each wrapped data key: which KEK wrapped it."""
    return hashlib.sha256(_derive(kek, b"accord/v1/kek-id")).hexdigest()[:16]


class FieldVault:
    """The IdentityVault: per-client data keys wrapped by the KEK."""

    def __init__(self, engine: Engine, master_key: bytes, *, kek: bytes | None = None) -> None:
        """``master_key`` is the root the matching key derives from; ``kek`` wraps the
        data keys (the root itself if not given, as before any rotation)."""
        self._engine = engine
        kek = master_key if kek is None else kek
        self._wrapping = AESGCM(_derive(kek, b"accord/v1/key-wrapping"))
        self._matching_key = _derive(master_key, b"accord/v1/matching")
        self.kek_id = kek_id_of(kek)

    @classmethod
    def of(cls, engine: Engine, keys: KeyMaterial) -> FieldVault:
        return cls(engine, keys.root, kek=keys.kek)

    def unwrap(self, client_id: UUID, wrapped: bytes) -> bytes:
        """The client's data key; InvalidTag if this KEK did not wrap it."""
        return self._wrapping.decrypt(wrapped[:12], wrapped[12:], b"dek:" + client_id.bytes)

    def wrap(self, client_id: UUID, data_key: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._wrapping.encrypt(nonce, data_key, b"dek:" + client_id.bytes)

    def seal(self, client_id: UUID, identity: Identity) -> str:
        data_key = AESGCM.generate_key(bit_length=256)
        wrapped = self.wrap(client_id, data_key)
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
            wrapped = dialect.run(
                conn, f"SELECT wrapped_key FROM {client_keys.name} WHERE client_id = :client",  # noqa: S608 - schema name
                client=client_id.hex,
            ).scalar_one_or_none()
        if wrapped is None:
            raise IdentityErased(str(client_id))
        return self._open_with(client_id, wrapped, sealed)

    def open_many(self, sealed: Mapping[UUID, str]) -> dict[UUID, Identity]:
        """Several clients' identities, their data keys read in one query (a projection
        deriving something from many at once); an erased client's is left out."""
        if not sealed:
            return {}
        with self._engine.connect() as conn:
            rows = conn.execute(select(client_keys.c.client_id, client_keys.c.wrapped_key).where(
                client_keys.c.client_id.in_(sorted(c.hex for c in sealed)))).all()
        wrapped = {UUID(hex=row.client_id): row.wrapped_key for row in rows
                   if row.wrapped_key is not None}
        return {client_id: self._open_with(client_id, wrapped[client_id], text)
                for client_id, text in sealed.items() if client_id in wrapped}

    def _open_with(self, client_id: UUID, wrapped: bytes, sealed: str) -> Identity:
        data_key = self.unwrap(client_id, wrapped)
        if not sealed.startswith(SEALED_PREFIX):
            raise ValueError("unknown sealed identity format")
        blob = base64.b64decode(sealed[len(SEALED_PREFIX):])
        try:
            plain = AESGCM(data_key).decrypt(blob[:12], blob[12:], b"identity:" + client_id.bytes)
        except InvalidTag:
            raise ValueError(f"sealed identity of {client_id} fails authentication") from None
        # Checked when registered, by the checks of that time (STORED).
        return Identity.model_validate_json(plain, context=STORED)

    def fingerprint(self, value: str) -> str:
        return hmac.new(self._matching_key, value.encode(), hashlib.sha256).hexdigest()

    def shred(self, client_id: UUID) -> None:
        """Destroys the client's data key: its identity and sealed free text can never be
        opened again. On SQLite the write-ahead log, which still holds the wrapped key
        as it was, is emptied into the database file (where ``secure_delete`` zeroes
        what the update freed)."""
        with self._engine.begin() as conn:
            conn.execute(
                update(client_keys)
                .where(client_keys.c.client_id == client_id.hex)
                .values(wrapped_key=None, shredded_at=datetime.now(UTC))
            )
        dialect.empty_write_ahead_log(self._engine)

    def _data_key(self, client_id: UUID) -> bytes:
        """The client's data key, unwrapped; IdentityErased once it is destroyed."""
        with self._engine.connect() as conn:
            wrapped = dialect.run(
                conn, f"SELECT wrapped_key FROM {client_keys.name} WHERE client_id = :client",  # noqa: S608 - schema name
                client=client_id.hex,
            ).scalar_one_or_none()
        if wrapped is None:
            raise IdentityErased(str(client_id))
        return self.unwrap(client_id, wrapped)

    def seal_texts(self, client_id: UUID, texts: Sequence[str]) -> list[str]:
        """Each text sealed (AES-256-GCM) with the client's data key, bound to the client
        id, as ``sealed:v1:<base64>``: free text that can identify the client
        (``domain.sealing``). IdentityErased once the key is destroyed."""
        if not texts:
            return []
        cipher = AESGCM(self._data_key(client_id))
        sealed = []
        for text in texts:
            nonce = secrets.token_bytes(12)
            blob = nonce + cipher.encrypt(nonce, text.encode(), b"text:" + client_id.bytes)
            sealed.append(SEALED_TEXT_PREFIX + base64.b64encode(blob).decode())
        return sealed

    def open_texts(self, client_id: UUID, sealed: Sequence[str]) -> list[str]:
        """The texts ``seal_texts`` sealed for this client, the data key read once.
        IdentityErased once it is destroyed (asked with no texts, whether it is);
        ValueError for a text not sealed for it."""
        cipher = AESGCM(self._data_key(client_id))
        opened = []
        for text in sealed:
            if not text.startswith(SEALED_TEXT_PREFIX):
                raise ValueError("not a sealed text")
            blob = base64.b64decode(text[len(SEALED_TEXT_PREFIX):])
            try:
                opened.append(cipher.decrypt(blob[:12], blob[12:],
                                             b"text:" + client_id.bytes).decode())
            except InvalidTag:
                raise ValueError(f"a sealed text of {client_id} fails authentication") from None
        return opened


# -- checking the KEK against the database, and rotating it ---------------------------------


def stored_data_keys(engine: Engine) -> dict[str, int]:
    """How many live (not shredded) data keys each KEK id wraps in the database."""
    if not inspect(engine).has_table(client_keys.name):
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(client_keys.c.kek_id, func.count())
            .where(client_keys.c.wrapped_key.is_not(None)).group_by(client_keys.c.kek_id)
        ).all()
    return {str(kek_id): int(count) for kek_id, count in rows}


def _pending(path: Path) -> Path:
    """Where a rotation writes the new key before the database is re-wrapped."""
    return path.with_name(path.name + ".next")


def _opens(engine: Engine, vault: FieldVault) -> bool:
    """Whether ``vault``'s KEK wrapped every live data key, checked by opening one."""
    counts = stored_data_keys(engine)
    if set(counts) - {vault.kek_id}:
        return False
    with engine.connect() as conn:
        row = conn.execute(
            select(client_keys.c.client_id, client_keys.c.wrapped_key)
            .where(client_keys.c.wrapped_key.is_not(None)).limit(1)
        ).first()
    if row is None:
        return True
    try:
        vault.unwrap(UUID(hex=row.client_id), row.wrapped_key)
    except InvalidTag:
        return False
    return True


def open_vault(engine: Engine, path: Path) -> FieldVault:
    """The vault for the key file at ``path``, once it is known to open the data keys in
    the database: accord refuses to start with a key that cannot (every identity would
    fail to open, as a 500 on every record and view), and says in one line what to do."""
    vault = FieldVault.of(engine, read_keys(path))
    if _opens(engine, vault):
        return vault
    counts = stored_data_keys(engine)
    total = sum(counts.values())
    pending = _pending(path)
    if pending.exists() and _opens(engine, FieldVault.of(engine, read_keys(pending))):
        raise KeyFileError(f"a key rotation was interrupted after the data keys were "
                           f"re-wrapped under {pending}: run `accord keys rotate` to finish it")
    others = ", ".join(sorted(set(counts) - {vault.kek_id})) or vault.kek_id
    raise KeyFileError(
        f"the key-encryption key in {path} (id {vault.kek_id}) does not open the {total} "
        f"client data keys in the database (wrapped by key id {others}); restore the key "
        "file that wrapped them (a new key cannot read them)")


def check_replaceable(engine: Engine | None, path: Path) -> None:
    """KeyFileError if writing a new key at ``path`` would leave data keys in the database
    that no key file opens: replacing a KEK that wraps them makes every identity unreadable
    for good (``accord keys rotate`` re-wraps them instead), and a missing key file must
    be restored, not replaced. ``engine`` None: there is no database yet."""
    counts = stored_data_keys(engine) if engine is not None else {}
    if not counts:
        return
    total = sum(counts.values())
    if path.exists():
        raise KeyFileError(f"refusing to replace {path}: it wraps the data keys of {total} "
                           "clients in the database, which a new key could not open; use "
                           "`accord keys rotate` to change it")
    raise KeyFileError(f"the database holds {total} client data keys wrapped by key id "
                       f"{', '.join(sorted(counts))}; restore that key file at {path} "
                       "instead of creating a new one (a new key cannot read them)")


@dataclass(frozen=True)
class Rotated:
    old_kek_id: str
    new_kek_id: str
    rewrapped: int
    #: Where the previous key file was kept (backups taken before the rotation need it).
    kept: Path
    #: True if this run finished a rotation interrupted after the database committed.
    resumed: bool


def rotate(engine: Engine, path: Path) -> Rotated:
    """Re-wraps every data key under a new KEK, keeping the root (the matching and
    pseudonym keys derive from it, and those are in the log and partners' message keys).

    Crash-safe in this order, each step durable before the next:

    1. the new key file is written beside the old one, as ``<key file>.next``;
    2. one database transaction re-wraps every live data key under the new KEK (and
       fails, changing nothing, if any data key is not wrapped by the old one, e.g. a
       server registered a client meanwhile: run it with servers and workers stopped);
    3. the old key file is copied to ``<key file>.<old kek id>.old``, and ``.next``
       replaces the key file (an atomic rename).

    A crash before step 2 commits leaves the database under the old key, which the key
    file still holds: the next run discards ``.next`` and starts again. A crash after it
    leaves the database under the new key: the server refuses to start and says so, and
    the next run of ``accord keys rotate`` sees that ``.next`` opens the database and
    finishes step 3."""
    current = read_keys(path)
    pending = _pending(path)
    if pending.exists():
        following = read_keys(pending)
        if stored_data_keys(engine) and _opens(engine, FieldVault.of(engine, following)):
            return _swap(path, current, following, rewrapped=0, resumed=True)
        pending.unlink()  # the database never moved to it: start again
    old = FieldVault.of(engine, current)
    if not _opens(engine, old):
        open_vault(engine, path)  # raises, saying what is wrong
    following = KeyMaterial.new(root=current.root)
    _write(pending, following)
    rewrapped = _rewrap(engine, old, FieldVault.of(engine, following))
    return _swap(path, current, following, rewrapped=rewrapped, resumed=False)


def _rewrap(engine: Engine, old: FieldVault, new: FieldVault) -> int:
    if not inspect(engine).has_table(client_keys.name):
        return 0  # no database yet: nothing is wrapped
    # The old key file is replaced only after this commit is on disk.
    with dialect.durable_transaction(engine) as conn:
        dialect.lock_exclusively(conn, client_keys)  # no data key is added or changed meanwhile
        rows = conn.execute(
            select(client_keys.c.client_id, client_keys.c.wrapped_key)
            .where(client_keys.c.wrapped_key.is_not(None))
        ).all()
        if rows:
            conn.execute(
                update(client_keys).where(client_keys.c.client_id == bindparam("cid"))
                .values(wrapped_key=bindparam("wrapped"), kek_id=new.kek_id),
                [{"cid": row.client_id,
                  "wrapped": new.wrap(UUID(hex=row.client_id),
                                      old.unwrap(UUID(hex=row.client_id), row.wrapped_key))}
                 for row in rows],
            )
        left = conn.execute(
            select(func.count()).select_from(client_keys)
            .where(client_keys.c.wrapped_key.is_not(None), client_keys.c.kek_id != new.kek_id)
        ).scalar_one()
        if left:
            raise KeyFileError(f"{left} data keys were added during the rotation and it was "
                               "undone; stop the servers and workers, then run it again")
    return len(rows)


def _swap(path: Path, current: KeyMaterial, following: KeyMaterial, *, rewrapped: int,
          resumed: bool) -> Rotated:
    old_id = kek_id_of(current.kek)
    kept = path.with_name(f"{path.name}.{old_id}.old")
    try:
        _write(kept, current)
        os.replace(_pending(path), path)
        _sync_directory(path.parent)
    except OSError as exc:
        raise KeyFileError(f"the data keys are re-wrapped under {_pending(path)} but it "
                           f"could not replace {path} ({exc}); run `accord keys rotate` "
                           "again to finish") from None
    return Rotated(old_id, kek_id_of(following.kek), rewrapped, kept, resumed)
