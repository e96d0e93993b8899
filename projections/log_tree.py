"""The log's Merkle tree: tamper evidence for the whole notification log.

A tracked projection follows the log and appends one RFC 6962 leaf per stored event,
in log order. Its leaf is the event's **canonical bytes** (format 1, every integer
big-endian):

====================  =========================================================
``0x01``              format version, 1 byte
position              the notification id (log position), 8 bytes
originator_id         the aggregate id, 16 bytes (UUID)
originator_version    8 bytes
topic                 4-byte length, then UTF-8
state                 4-byte length, then the stored state bytes exactly
====================  =========================================================

so changing one byte of a stored event, deleting one, or moving one to another
position changes its leaf. After a batch (at most about once a second when following
live writes, and after every full batch of a bulk catch-up) it signs a tree head
(Ed25519, ``infra.signing``) over :meth:`TreeHead.message`. Leaves, interior nodes at
every fourth level, the head and the tracked position are written in one transaction.

:func:`verify_log` recomputes every leaf from the stored log, checks the recomputed
tree against every signed head and names the positions that were changed, removed,
inserted or moved. Rebuilding the tree from the log would bless a tampered log, so
unlike the agency views this projection is never rebuilt.
"""

from __future__ import annotations

import base64
import binascii
import logging
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.persistence import ApplicationRecorder, Notification
from sqlalchemy import Connection, Engine, func, select

from domain.application import AccordApplication
from domain.errors import InvalidCommand, NotFound
from infra import dialect
from infra.progress import progress
from infra.schema import tree_heads, tree_leaves, tree_nodes
from infra.signing import (
    Signer,
    SigningKeyError,
    key_id,
    load_signer,
    parse_public_key,
    signature_valid,
)
from infra.tracking import SqlTrackingRecorder
from projections.merkle import (
    CompactRange,
    consistency_proof,
    hash_from_hex,
    inclusion_proof,
    leaf_hash,
    node_hash,
    perfect_subtrees,
    subtree_hash,
    whole_number,
)

log = logging.getLogger("accord.projections")

LEAF_FORMAT = 1
#: Interior nodes are stored at levels that are multiples of this.
NODE_STRIDE = 4
_LEAF_HEADER = struct.Struct(">BQ16sQI")
_LENGTH = struct.Struct(">I")


def leaf_bytes(position: int, originator_id: UUID | str, originator_version: int,
               topic: str, state: bytes) -> bytes:
    """The canonical bytes of one stored event (see the module documentation)."""
    oid = originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
    encoded_topic = topic.encode()
    return b"".join((
        _LEAF_HEADER.pack(LEAF_FORMAT, position, oid.bytes, originator_version,
                          len(encoded_topic)),
        encoded_topic, _LENGTH.pack(len(state)), bytes(state),
    ))


#: One stored event as ``verify_log`` reads it: position, raw originator id (16 bytes),
#: originator version, topic, state.
StoredRow = tuple[int, bytes, int, str, bytes]


def row_leaf(row: StoredRow, position: int | None = None) -> bytes:
    """The leaf hash of a stored row (as if at ``position``, when given)."""
    topic = row[3].encode()
    state = bytes(row[4])
    return leaf_hash(b"".join((
        _LEAF_HEADER.pack(LEAF_FORMAT, row[0] if position is None else position, row[1],
                          row[2], len(topic)),
        topic, _LENGTH.pack(len(state)), state,
    )))


def notification_leaf(notification: Notification, position: int | None = None) -> bytes:
    """The leaf hash of a notification (as if at ``position``, when given)."""
    return leaf_hash(leaf_bytes(
        notification.id if position is None else position, notification.originator_id,
        notification.originator_version, notification.topic, notification.state,
    ))


# -- signed tree heads ---------------------------------------------------------------------


@dataclass(frozen=True)
class TreeHead:
    """A signed statement: the first ``tree_size`` events of the log, up to and including
    ``last_position``, have Merkle tree hash ``root_hash``."""

    tree_size: int
    last_position: int
    root_hash: bytes
    timestamp: int  # milliseconds since the Unix epoch, UTC
    key_id: str
    public_key: str
    signature: bytes

    @staticmethod
    def message_for(tree_size: int, last_position: int, root_hash: bytes,
                    timestamp: int) -> bytes:
        """The exact bytes that are signed."""
        return (f"accord tree head v1\ntree_size {tree_size}\nlast_position {last_position}\n"
                f"root_hash {root_hash.hex()}\ntimestamp {timestamp}\n").encode()

    def message(self) -> bytes:
        return self.message_for(self.tree_size, self.last_position, self.root_hash,
                                self.timestamp)

    @classmethod
    def sign(cls, signer: Signer, tree_size: int, last_position: int, root_hash: bytes,
             timestamp: int | None = None) -> TreeHead:
        stamp = int(time.time() * 1000) if timestamp is None else timestamp
        message = cls.message_for(tree_size, last_position, root_hash, stamp)
        return cls(tree_size, last_position, root_hash, stamp, signer.key_id,
                   signer.public_key, signer.sign(message))

    def signed_by(self, public_key: Ed25519PublicKey) -> bool:
        return signature_valid(public_key, self.message(), self.signature)

    def to_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size, "last_position": self.last_position,
            "root_hash": self.root_hash.hex(), "timestamp": self.timestamp,
            "key_id": self.key_id, "public_key": self.public_key,
            "signature": base64.b64encode(self.signature).decode(),
            "algorithm": "Ed25519 over RFC 6962 SHA-256 tree heads",
        }

    @classmethod
    def from_json(cls, raw: Any) -> TreeHead:
        """Parses a head as the API serves it; ValueError says what is wrong."""
        if not isinstance(raw, dict):
            raise ValueError("a tree head is a JSON object")
        try:
            head = cls(
                tree_size=whole_number(raw["tree_size"], "tree_size"),
                last_position=whole_number(raw["last_position"], "last_position"),
                root_hash=hash_from_hex(raw["root_hash"], "root_hash"),
                timestamp=whole_number(raw["timestamp"], "timestamp"),
                key_id=str(raw.get("key_id") or key_id(str(raw["public_key"]))),
                public_key=str(raw["public_key"]),
                signature=base64.b64decode(str(raw["signature"]), validate=True),
            )
        except KeyError as exc:
            raise ValueError(f"the tree head has no {exc.args[0]}") from None
        except binascii.Error:
            raise ValueError("the tree head's signature is not base64") from None
        return head

    @classmethod
    def from_row(cls, row: Any) -> TreeHead:
        return cls(row.tree_size, row.last_position, bytes(row.root_hash), row.timestamp,
                   row.key_id, row.public_key, bytes(row.signature))


# -- proofs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InclusionProof:
    position: int
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    audit_path: list[bytes]
    root_hash: bytes

    def to_json(self) -> dict[str, Any]:
        return {"kind": "inclusion", "position": self.position, "leaf_index": self.leaf_index,
                "tree_size": self.tree_size, "leaf_hash": self.leaf_hash.hex(),
                "audit_path": [h.hex() for h in self.audit_path],
                "root_hash": self.root_hash.hex()}


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    first_root: bytes
    second_root: bytes
    consistency_path: list[bytes]

    def to_json(self) -> dict[str, Any]:
        return {"kind": "consistency", "first": self.first, "second": self.second,
                "first_root": self.first_root.hex(), "second_root": self.second_root.hex(),
                "consistency_path": [h.hex() for h in self.consistency_path]}


class TreeIncomplete(RuntimeError):
    """The stored tree lacks nodes it should hold (it was altered, or is being written)."""


# -- the projection -------------------------------------------------------------------------


class LogTree:
    """Follows the log into the Merkle tree tables and answers proofs from them.

    Without a ``signer`` it only reads (the API in worker mode, ``accord audit``)."""

    name = "log_tree"

    def __init__(self, app: AccordApplication, engine: Engine, signer: Signer | None = None,
                 *, batch_size: int = 5000, head_interval: float = 1.0) -> None:
        self.app = app
        self.engine = engine
        self.signer = signer
        self.batch_size = batch_size
        self.head_interval = head_interval
        self.tracking = SqlTrackingRecorder(engine)
        self._lock = threading.Lock()
        self._range: CompactRange | None = None
        self._last_position = 0
        self._signed_size: int | None = None
        self._signed_at = 0.0

    # -- following the log ------------------------------------------------------------------

    def position(self) -> int:
        return self.tracking.max_tracking_id(self.name) or 0

    def catch_up(self, *, show_progress: bool = False, sign_now: bool = False) -> int:
        """Adds the events appended since; signs a head after a full batch, when
        ``head_interval`` has passed since the last one, or (``sign_now``) at the end."""
        if self.signer is None:
            raise RuntimeError("the log tree needs a signing key to follow the log")
        with self._lock:
            head = self.app.recorder.max_notification_id() or 0
            position = self.position()
            processed = 0
            if position < head:
                batches: Iterable[Sequence[Notification]] = _batches(
                    self.app.recorder, position, head, self.batch_size)
                if show_progress:
                    batches = progress(batches, "hashing the log into its Merkle tree",
                                       total=-(-(head - position) // self.batch_size))
                for batch in batches:
                    due = (len(batch) == self.batch_size
                           or time.monotonic() - self._signed_at >= self.head_interval)
                    self._process(batch, sign=due)
                    processed += len(batch)
            if sign_now or time.monotonic() - self._signed_at >= self.head_interval:
                self._sign_pending()
            return processed

    def rebuild(self, *, show_progress: bool = False) -> int:
        """Only catches up: the tree is evidence and is never dropped and replayed, since
        a tree rebuilt from a tampered log would bless the tampering."""
        return self.catch_up(show_progress=show_progress, sign_now=True)

    def _process(self, batch: Sequence[Notification], *, sign: bool) -> None:
        try:
            with self.engine.begin() as conn:
                compact = self._range or self._load_range(conn)
                leaves: list[tuple[int, int, bytes]] = []
                nodes: list[tuple[int, int, bytes]] = []
                for notification in batch:
                    index = compact.size
                    h = notification_leaf(notification)
                    leaves.append((index, notification.id, h))
                    for level, node_index, node in compact.append(h):
                        if level % NODE_STRIDE == 0:
                            nodes.append((level, node_index, node))
                # The projection's hot path: through the driver's executemany.
                dialect.bulk_insert(conn, tree_leaves, leaves,
                                    ("leaf_index", "position", "leaf_hash"))
                dialect.bulk_insert(conn, tree_nodes, nodes, ("level", "node_index", "hash"))
                last_position = batch[-1].id
                signed = self._write_head(conn, compact, last_position) if sign else None
                self.tracking.record(conn, self.name, last_position)
            self._range, self._last_position = compact, last_position
            if signed is not None:
                self._signed_size, self._signed_at = signed.tree_size, time.monotonic()
        except BaseException:
            self._range = None  # the in-memory edge may be ahead of the rolled-back rows
            raise
        self.tracking.committed()

    def _sign_pending(self) -> None:
        """Signs a head for leaves no head covers yet (the tail of live writes)."""
        if self._range is not None and self._range.size == self._signed_size:
            return  # nothing new: no transaction while idle
        with self.engine.begin() as conn:
            compact = self._range or self._load_range(conn)
            if self._signed_size is None:
                self._signed_size = _latest_size(conn)
            if compact.size == 0 or compact.size == self._signed_size:
                return
            signed = self._write_head(conn, compact, self._last_position)
        self._range = compact
        self._signed_size, self._signed_at = signed.tree_size, time.monotonic()

    def _write_head(self, conn: Connection, compact: CompactRange,
                    last_position: int) -> TreeHead:
        assert self.signer is not None
        head = TreeHead.sign(self.signer, compact.size, last_position, compact.root())
        conn.execute(tree_heads.insert().values(
            tree_size=head.tree_size, last_position=head.last_position,
            root_hash=head.root_hash, timestamp=head.timestamp, key_id=head.key_id,
            public_key=head.public_key, signature=head.signature,
        ))
        return head

    def _load_range(self, conn: Connection) -> CompactRange:
        size = _stored_size(conn)
        roots = [_perfect(conn, level, index) for level, index in perfect_subtrees(size)]
        last = conn.execute(select(tree_leaves.c.position)
                            .where(tree_leaves.c.leaf_index == size - 1)).scalar()
        self._last_position = int(last or 0)
        self._signed_size = _latest_size(conn)
        return CompactRange(size, roots)

    # -- reading ----------------------------------------------------------------------------

    def size(self) -> int:
        """How many leaves the tree holds (some may not be covered by a signed head yet)."""
        with self.engine.connect() as conn:
            return _stored_size(conn)

    def latest_head(self) -> TreeHead | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(tree_heads).order_by(tree_heads.c.tree_size.desc())
                               .limit(1)).first()
        return TreeHead.from_row(row) if row is not None else None

    def head(self, tree_size: int) -> TreeHead | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(tree_heads)
                               .where(tree_heads.c.tree_size == tree_size)).first()
        return TreeHead.from_row(row) if row is not None else None

    def inclusion(self, position: int, tree_size: int | None = None) -> InclusionProof:
        """The audit path of the event at ``position`` in the tree of ``tree_size`` leaves
        (by default the latest signed head's)."""
        with self.engine.connect() as conn:
            size = self._proof_size(conn, tree_size, "tree_size")
            row = conn.execute(select(tree_leaves.c.leaf_index, tree_leaves.c.leaf_hash)
                               .where(tree_leaves.c.position == position)).first()
            if row is None or row.leaf_index >= size:
                last = _position_of(conn, size - 1)
                if position > last:
                    raise InvalidCommand("position", f"position {position} is beyond the tree "
                                         f"of size {size}, which ends at position {last}")
                raise NotFound(f"no event at position {position} in the tree")

            def mth(start: int, end: int) -> bytes:
                return subtree_hash(start, end, lambda lv, ix: _perfect(conn, lv, ix))

            path = inclusion_proof(row.leaf_index, size, mth)
            root = mth(0, size)
        return InclusionProof(position, row.leaf_index, size, bytes(row.leaf_hash), path, root)

    def consistency(self, first: int, second: int | None = None) -> ConsistencyProof:
        """The proof that the tree of ``first`` leaves is a prefix of the tree of ``second``
        (by default the latest signed head's)."""
        with self.engine.connect() as conn:
            size = self._proof_size(conn, second, "second")
            if first < 1 or first > size:
                raise InvalidCommand("first", f"first must be between 1 and second ({size})")

            def mth(start: int, end: int) -> bytes:
                return subtree_hash(start, end, lambda lv, ix: _perfect(conn, lv, ix))

            path = consistency_proof(first, size, mth)
            return ConsistencyProof(first, size, mth(0, first), mth(0, size), path)

    def _proof_size(self, conn: Connection, requested: int | None, name: str) -> int:
        stored = _stored_size(conn)
        if requested is None:
            latest = _latest_size(conn)
            if not latest:
                raise NotFound("no signed tree head yet: the log tree has not caught up")
            return min(latest, stored)
        if requested < 1:
            raise InvalidCommand(name, f"{name} must be at least 1")
        if requested > stored:
            raise InvalidCommand(name, f"{name} {requested} is larger than the tree, "
                                 f"which has {stored} leaves")
        return requested


def tree_projections(app: AccordApplication, engine: Engine, signing_key: Path,
                     batch_size: int = 5000) -> list[LogTree]:
    """The log tree, if there is a signing key to sign its heads; else none, with a warning."""
    try:
        signer = load_signer(signing_key)
    except SigningKeyError as exc:
        log.warning("tamper evidence is off: %s", exc)
        return []
    return [LogTree(app, engine, signer, batch_size=batch_size)]


def _batches(recorder: ApplicationRecorder, position: int, head: int | None,
             batch_size: int) -> Iterator[Sequence[Notification]]:
    while head is None or position < head:
        batch = recorder.select_notifications(start=position, limit=batch_size, stop=head,
                                              inclusive_of_start=False)
        if not batch:
            return
        yield batch
        position = batch[-1].id


def _stored_size(conn: Connection) -> int:
    last = conn.execute(select(func.max(tree_leaves.c.leaf_index))).scalar()
    return 0 if last is None else int(last) + 1


def _latest_size(conn: Connection) -> int:
    return int(conn.execute(select(func.max(tree_heads.c.tree_size))).scalar() or 0)


def _position_of(conn: Connection, leaf_index: int) -> int:
    value = conn.execute(select(tree_leaves.c.position)
                         .where(tree_leaves.c.leaf_index == leaf_index)).scalar()
    return int(value or 0)


def _perfect(conn: Connection, level: int, index: int) -> bytes:
    """The hash of perfect subtree (level, index) from the nearest stored level below it."""
    base = level - level % NODE_STRIDE
    width = 1 << (level - base)
    first = index << (level - base)
    if base == 0:
        query = (select(tree_leaves.c.leaf_hash)
                 .where(tree_leaves.c.leaf_index.between(first, first + width - 1))
                 .order_by(tree_leaves.c.leaf_index))
    else:
        query = (select(tree_nodes.c.hash)
                 .where(tree_nodes.c.level == base,
                        tree_nodes.c.node_index.between(first, first + width - 1))
                 .order_by(tree_nodes.c.node_index))
    hashes = [bytes(h) for h in conn.execute(query).scalars()]
    if len(hashes) != width:
        raise TreeIncomplete(f"the stored tree lacks nodes under ({level}, {index})")
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


# -- verifying the log against the signed heads ---------------------------------------------

MAX_FINDINGS = 100


@dataclass(frozen=True)
class Finding:
    position: int
    kind: str  # changed | removed | inserted | moved
    detail: str

    def __str__(self) -> str:
        return f"position {self.position} was {self.kind}: {self.detail}"


@dataclass
class Verification:
    """What ``verify_log`` found. ``ok`` only if every head verifies and matches the log."""

    events: int = 0
    heads: int = 0
    covered_size: int = 0
    covered_position: int = 0
    uncovered: int = 0
    findings: list[Finding] = field(default_factory=list)
    finding_count: int = 0
    problems: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.findings and not self.problems

    @property
    def first_position(self) -> int | None:
        return min((f.position for f in self.findings), default=None)

    def add(self, finding: Finding) -> None:
        self.finding_count += 1
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(finding)


def verify_log(app: AccordApplication, engine: Engine, trusted: Sequence[str],
               extra_heads: Sequence[TreeHead] = (), *, batch_size: int = 5000,
               show_progress: bool = False) -> Verification:
    """Recomputes the tree from the stored log and checks it against every signed head.

    ``trusted`` are the base64 public keys whose signatures count; ``extra_heads`` are
    heads held elsewhere (a partner's copy), checked like the stored ones. Memory is
    bounded by the number of heads, not the length of the log.
    """
    started = time.perf_counter()
    result = Verification()
    keys = {key_id(k): parse_public_key(k) for k in trusted}
    with engine.connect() as conn:
        stored_heads = [TreeHead.from_row(r) for r in
                        conn.execute(select(tree_heads).order_by(tree_heads.c.tree_size))]
    heads = _checked_heads([*stored_heads, *extra_heads], keys, result)
    result.heads = len(heads)
    if heads:
        result.covered_size = heads[-1].tree_size
        result.covered_position = heads[-1].last_position

    head = app.recorder.max_notification_id() or 0
    events: Iterator[StoredRow] = _stored_rows(app, engine, batch_size)
    if show_progress:
        events = progress(events, "verifying the log", total=head)
    log_mismatch = _compare(events, _stored_leaves(engine, batch_size), heads, result)

    if result.findings or log_mismatch is not None:
        _locate(engine, heads, log_mismatch, result, batch_size)
    result.elapsed = time.perf_counter() - started
    return result


def _checked_heads(heads: Sequence[TreeHead], keys: dict[str, Ed25519PublicKey],
                   result: Verification) -> list[TreeHead]:
    """The heads whose signatures verify under a trusted key, one per size, by size."""
    by_size: dict[int, TreeHead] = {}
    for h in heads:
        key = keys.get(h.key_id)
        if key is None:
            result.problems.append(f"the tree head of size {h.tree_size} is signed by key "
                                   f"{h.key_id}, which is not trusted")
            continue
        if not h.signed_by(key):
            result.problems.append(f"the tree head of size {h.tree_size} has an invalid "
                                   "signature: the heads were altered")
            continue
        seen = by_size.get(h.tree_size)
        if seen is not None and seen.root_hash != h.root_hash:
            result.problems.append(f"two signed tree heads of size {h.tree_size} disagree: "
                                   "the log was forked")
        by_size[h.tree_size] = h
    return [by_size[s] for s in sorted(by_size)]


def _fetch(engine: Engine, query: str, params: dict[str, int]) -> list[Any]:
    """Rows as plain tuples from the driver's own cursor (verify's hot path); ``query``
    has ``:name`` parameters."""
    with engine.connect() as conn:
        cursor = conn.connection.cursor()
        try:
            cursor.execute(dialect.of(engine).driver_sql(query), params)
            return list(cursor.fetchall())
        finally:
            cursor.close()


def _stored_leaves(engine: Engine, batch_size: int) -> Iterator[tuple[int, int, bytes]]:
    query = ("SELECT leaf_index, position, leaf_hash FROM accord_tree_leaves "
             "WHERE leaf_index > :after ORDER BY leaf_index LIMIT :limit")
    after = -1
    while True:
        rows = _fetch(engine, query, {"after": after, "limit": batch_size})
        if not rows:
            return
        for index, position, h in rows:
            yield index, position, bytes(h)
        after = rows[-1][0]


_END = (-1, 1 << 63, b"")


def _stored_rows(app: AccordApplication, engine: Engine,
                 batch_size: int) -> Iterator[StoredRow]:
    """Every stored event in log order, read straight from the event store's table.

    The recorder's ``select_notifications`` builds a ``UUID`` and a ``Notification`` for
    every row, which made verifying four times slower (45k against 200k events/s on
    SQLite); the bytes hashed are the same, and the tests build the tree through the
    recorder and verify it through this."""
    table = getattr(app.recorder, "events_table_name", "stored_events")
    if not table.replace("_", "").isalnum():
        raise ValueError(f"unexpected event table name {table!r}")
    query = dialect.of(engine).choose(  # the library's own table differs per database
        sqlite=(f"SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608
                f"FROM {table} WHERE rowid > :after ORDER BY rowid LIMIT :limit"),
        postgresql=(f"SELECT notification_id, uuid_send(originator_id), "  # noqa: S608
                    f"originator_version, topic, state FROM {table} "
                    f"WHERE notification_id > :after ORDER BY notification_id LIMIT :limit"))
    position = 0
    while True:
        rows = _fetch(engine, query, {"after": position, "limit": batch_size})
        if not rows:
            return
        for position, oid, version, topic, state in rows:
            raw = bytes(oid) if not isinstance(oid, str) else (
                bytes.fromhex(oid) if len(oid) == 32 else UUID(oid).bytes)
            yield position, raw, version, topic, bytes(state)


def _compare(events: Iterator[StoredRow], stored: Iterator[tuple[int, int, bytes]],
             heads: list[TreeHead], result: Verification) -> TreeHead | None:
    """One pass over the log and the stored leaves, merged on position. Returns the first
    signed head the recomputed tree disagrees with."""
    compact = CompactRange()
    next_head = 0
    first_mismatch: TreeHead | None = None
    suspects: dict[int, StoredRow] = {}  # events that differ, to recognise moved ones
    lost: dict[int, bytes] = {}  # stored leaf hashes of changed or removed positions
    leaf = next(stored, _END)
    for event in events:
        h = row_leaf(event)
        position = event[0]
        while leaf[1] < position:  # the tree recorded an event the log no longer has
            result.add(Finding(leaf[1], "removed", "the event the signed tree recorded "
                               "here is no longer in the log"))
            _remember(lost, leaf[1], leaf[2])
            leaf = next(stored, _END)
        if leaf[1] == position:
            if leaf[2] != h:
                result.add(Finding(position, "changed", "its stored event no longer hashes "
                                   "to the leaf the signed tree recorded"))
                _remember(suspects, position, event)
                _remember(lost, position, leaf[2])
            leaf = next(stored, _END)
        elif position <= result.covered_position:
            result.add(Finding(position, "inserted", "the signed tree has no event here"))
            _remember(suspects, position, event)
        else:
            result.uncovered += 1
        compact.append(h)
        result.events += 1
        while next_head < len(heads) and heads[next_head].tree_size == compact.size:
            if first_mismatch is None and compact.root() != heads[next_head].root_hash:
                first_mismatch = heads[next_head]
            next_head += 1
    while leaf is not _END:
        result.add(Finding(leaf[1], "removed", "the event the signed tree recorded here is "
                           "no longer in the log"))
        _remember(lost, leaf[1], leaf[2])
        leaf = next(stored, _END)
    if next_head < len(heads):
        missing = heads[next_head]
        result.problems.append(f"the log holds {compact.size} events, fewer than the "
                               f"{missing.tree_size} of the signed tree head up to position "
                               f"{missing.last_position}: events were removed")
        first_mismatch = first_mismatch or missing
    _recognise_moves(suspects, lost, result)
    return first_mismatch


def _remember(store: dict[int, Any], position: int, value: Any) -> None:
    if len(store) < MAX_FINDINGS:
        store[position] = value


def _recognise_moves(suspects: dict[int, StoredRow], lost: dict[int, bytes],
                     result: Verification) -> None:
    """Names an event found at a position other than the one the tree recorded it at."""
    moved: dict[int, int] = {}
    for position, event in suspects.items():
        for original, recorded in lost.items():
            if original != position and row_leaf(event, original) == recorded:
                moved[position] = original
                break
    if moved:
        result.findings = [
            Finding(f.position, "moved", f"it holds the event the signed tree recorded at "
                    f"position {moved[f.position]} (events were reordered)")
            if f.position in moved and f.kind in ("changed", "inserted") else f
            for f in result.findings
        ]


def _locate(engine: Engine, heads: list[TreeHead], log_mismatch: TreeHead | None,
            result: Verification, batch_size: int) -> None:
    """Checks the stored leaves against the signed heads: if they match, the findings
    are exact; if the tree tables were altered too, bounds the change by signed heads."""
    compact = CompactRange()
    next_head = 0
    altered: TreeHead | None = None
    for _index, _position, h in _stored_leaves(engine, batch_size):
        compact.append(h)
        while next_head < len(heads) and heads[next_head].tree_size == compact.size:
            if altered is None and compact.root() != heads[next_head].root_hash:
                altered = heads[next_head]
            next_head += 1
    if altered is None and next_head < len(heads):
        altered = heads[next_head]
    if log_mismatch is not None:
        low = _last_good(heads, log_mismatch) + 1
        result.problems.append(
            f"the log no longer matches the signed tree head of size {log_mismatch.tree_size}: "
            f"the first difference lies between positions {low} and "
            f"{log_mismatch.last_position}")
    if altered is not None:
        result.problems.append(
            f"the stored tree no longer matches the signed tree head of size "
            f"{altered.tree_size}: the tree tables were altered as well, so positions after "
            f"{_last_good(heads, altered)} are located only by the signed heads")
        if log_mismatch is not None and not any(
                f.position <= log_mismatch.last_position for f in result.findings):
            low = _last_good(heads, log_mismatch) + 1
            result.findings.insert(0, Finding(
                low, "changed", f"the first difference lies between positions {low} and "
                f"{log_mismatch.last_position}; the tree tables were altered too, so only "
                "the signed heads locate it"))


def _last_good(heads: list[TreeHead], altered: TreeHead) -> int:
    before = [h for h in heads if h.tree_size < altered.tree_size]
    return before[-1].last_position if before else 0
