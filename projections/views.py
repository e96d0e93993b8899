"""Per-agency views: materialised rows of each agency's permitted, masked facts.

The projector follows the notification log. For each fact it writes, for every agency
with a possible basis, the masked fact with its basis and the window of time in which
that basis holds. A fact its controller amends takes its amended payload and time (and
its rows that rest on a consent's data period are derived again); a retracted fact
leaves every view. Consent given or withdrawn re-projects the client; an agreement
coming into force or being revoked re-projects the (recipient, controller) pair; an
emergency grant, and its ending, re-projects the (grantee, client) pair. The IG review
inbox of those grants (``projections.reviews``) is kept in the same transactions. The
rows, the policy state they were computed from and the tracked log position are
written in one transaction, so a crash neither loses nor repeats work, and a view
dropped and rebuilt from the log equals the incrementally built one.

Queries read only the caller's own rows: a bug in a query cannot reach another
agency's data.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from sqlalchemy import Connection, Engine, select

from consent.policy import (
    ANY_PURPOSE,
    Basis,
    BasisKind,
    ConsentScope,
    EmergencyScope,
    Grant,
    Share,
    basis_key,
    client_shares,
    mask,
    preference_of_key,
    standing_shares,
)
from consent.state import (
    AgreementChanged,
    AgreementDraft,
    AmendedFact,
    ClientPolicyChanged,
    EmergencyEnded,
    EmergencyGranted,
    LogState,
    RestrictionChanged,
    RetractedFact,
    evolve,
)
from domain.agencies import Agency, AgencyKind
from domain.agreements import Agreement
from domain.application import AccordApplication
from domain.catalogue import CATALOGUE
from domain.clients import Client
from domain.reviews import Review
from domain.sealing import free_text_fields, plain_text_withheld
from infra import dialect
from infra.dialect import as_utc
from infra.schema import (
    client_matching,
    facts,
    feed_outbox,
    policy_agencies,
    policy_agreements,
    policy_consents,
    policy_emergencies,
    policy_erasures,
    policy_restrictions,
    view_grounds,
    view_items,
    view_rows,
    view_shares,
)
from projections import reviews
from projections.follower import LogFollower, topics_of
from projections.log_facts import FACT_RECORDED, copy_parameters, copy_statement


@dataclass(frozen=True)
class ViewItem:
    position: int
    fact_type: str
    category: str
    controller: str
    occurred_at: datetime
    recorded_at: datetime
    fields: tuple[str, ...] | None
    data: dict[str, Any]
    purpose: str
    basis: dict[str, Any]
    reason: str
    #: The log position of the fact's latest amendment by its controller (None: as
    #: recorded): what is shown is the fact as amended.
    amended: int | None = None


@dataclass(frozen=True)
class _Ground:
    """Why rows are shown, as read for views: the basis, its rank, reason and fields."""

    basis_key: str
    rank: tuple[int, str]
    basis: dict[str, Any]
    reason: str
    fields: tuple[str, ...] | None


#: One agency's rows of one client that hold at the moment ``:at``.
_HOLDING = ("v.client_id = :client AND v.agency = :agency "
            "AND (v.not_before IS NULL OR v.not_before <= :at) "
            "AND (v.not_after IS NULL OR v.not_after > :at)")
#: Those rows, with what each fact is.
_READ = ("SELECT v.purpose, v.position, v.ground, v.controller, f.data, f.fact_type, "  # noqa: S608 - fixed text
         "f.category, f.occurred_at, f.recorded_at, f.amended FROM accord_view_rows v "
         f"JOIN accord_facts f ON f.position = v.position WHERE {_HOLDING}")
#: Whether there is any.
_SEES = f"SELECT 1 FROM accord_view_rows v WHERE {_HOLDING} LIMIT 1"  # noqa: S608
_GROUNDS_KEPT = 50_000


class ClientVisibility:
    """Whether an agency has any basis, for any purpose, to see anything of a client, at a
    moment (now): whether the agency views hold any row of the client for the agency.

    It reads the views' rows and needs nothing but the database, so the composition root
    builds it before the application, which asks it before letting a partner write about
    a client (``AccordApplication(sees_client=...)``); the views follow the application's
    log, so they could not be built first. Whichever process projects the views (this
    one, or ``accord worker``), the answer is the rows they committed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, agency: str, client_id: UUID, at: datetime | None = None) -> bool:
        with self.engine.connect() as conn:
            return dialect.run(conn, _SEES, **_holding(conn, agency, client_id, at)).first() \
                is not None


class AgencyViews(LogFollower):
    """The projector and the queries of the per-agency views."""

    name = "agency_views"
    doing = "projecting agency views"
    tables = (view_rows, view_shares, facts, feed_outbox, policy_agencies, policy_agreements,
              policy_consents, policy_erasures, policy_restrictions, client_matching,
              policy_emergencies, view_grounds, *reviews.TABLES)

    #: The facts are copied by the database (``projections.log_facts``), not read as
    #: followed events: a batch covers at most this much of the log, however few of the
    #: events in it are followed.
    span = 10_000

    def __init__(self, app: AccordApplication, engine: Engine, batch_size: int = 2000) -> None:
        # Never the access records, which make up most of a busy log.
        super().__init__(app, engine, topics_of(Client, Agency, Agreement, Review), batch_size,
                         copied=[FACT_RECORDED])
        self._copy_facts = copy_statement(app, engine)
        self._state: LogState | None = None
        #: Grounds written, or queued in the open transaction (forgotten if it rolls back):
        #: each is written once, then referred to by key.
        self._grounds: set[str] = set()
        #: Grounds read for views, by key (content-addressed, so never stale).
        self._ground_cache: dict[str, _Ground] = {}

    def _forget(self) -> None:
        self._state = None
        self._grounds = set()

    def _process(self, batch: Sequence[Notification], upto: int) -> int:
        try:
            with self.engine.begin() as conn:
                self._advance(conn, upto)
                state = self._state or self._load_state(conn)
                writer = ViewWriter(conn, self._grounds, self._copy_facts, self._start)
                to_domain_event = self.app.mapper.to_domain_event
                for notification in batch:
                    self._apply(writer, state, to_domain_event(notification), notification.id)
                writer.flush(upto)
            self._state = state
        except BaseException:
            # The in-memory state and grounds may be ahead of the rolled-back rows.
            self._forget()
            raise
        self.tracking.committed()
        if writer.erased:
            # What the erasure deleted or blanked must not linger in SQLite's log.
            dialect.empty_write_ahead_log(self.engine)
        return len(batch) + writer.copied - writer.registrations

    def _apply(self, writer: ViewWriter, state: LogState, event: Any, position: int) -> None:
        """Applies one event that changes the policy (the facts between them are copied,
        and their rows derived in bulk from the shares, when the writer flushes).

        A change of a client's consents, by far the commonest change, needs no flush
        first: it derives again every row it can alter, of every fact in the table, from
        the shares as they now are, and facts not yet copied get the same shares when
        they are. The rows committed are the same either way (what the transaction passed
        through on the way is never seen). The rarer changes flush the facts before them
        first: an agency registered sees only facts recorded after it, so earlier facts
        must not get its shares; an erasure deletes the client's matching rows, queued
        ones included; and agreements and emergency grants keep the same order for
        simplicity."""
        if isinstance(event, Review.Event):
            state.position = position
            reviews.index(writer.conn, event, position)
            return
        if isinstance(event, Client.EmergencyAccessEnded):
            reviews.grant_ended(writer.conn, event)
        effect = evolve(state, event, position)
        self._persist_policy(writer, state, event)
        if isinstance(event, Client.Registered):  # its identity fact is copied too
            for fingerprint in {event.nhs_fingerprint, event.name_fingerprint}:
                writer.matching.append((fingerprint, event.originator_id.hex))
            writer.registrations += 1
        elif isinstance(event, Agency.Registered):
            writer.flush(position - 1)
            _restate_shares(writer, state)
        elif isinstance(effect, ClientPolicyChanged):
            if effect.controller is None:
                writer.flush(position - 1)  # the client's queued matching rows must go too
                _erase(writer, effect.client_id, position)
                writer.erased = True
            else:
                _reshare_consents(writer, state, effect.client_id, effect.controller, position)
        elif isinstance(effect, AgreementChanged):
            writer.flush(position - 1)
            _reshare_agreements(writer, state, effect.controller, effect.recipient, position)
        elif isinstance(effect, EmergencyGranted):
            writer.flush(position - 1)
            _share_in_emergency(writer, state, effect.client_id, effect.agency, position)
        elif isinstance(effect, EmergencyEnded):
            writer.flush(position - 1)
            _share_in_emergency(writer, state, effect.client_id, effect.agency, position,
                                ended_at=effect.ended_at)
        elif isinstance(effect, RestrictionChanged):
            writer.flush(position - 1)
            _restrict(writer, state, effect, position)
        elif isinstance(effect, AmendedFact):
            writer.flush(position - 1)  # the fact is copied before it is corrected
            _amend(writer, effect, position)
        elif isinstance(effect, RetractedFact):
            writer.flush(position - 1)
            _retract(writer, effect, position)

    @staticmethod
    def _persist_policy(writer: ViewWriter, state: LogState, event: Any) -> None:
        if isinstance(event, Agency.Registered):
            writer.upsert(policy_agencies, "slug", {"slug": event.slug,
                                                    "kind": AgencyKind(event.kind).value})
        elif isinstance(event, Agreement.Event) and event.originator_id in state.drafts:
            draft = state.drafts[event.originator_id]
            writer.upsert(policy_agreements, "agreement_id", {
                "agreement_id": event.originator_id.hex, "state": draft.to_json(),
            })
        elif isinstance(event, Client.ConsentGiven | Client.ConsentWithdrawn):
            scope = state.consents[event.originator_id][event.consent_id]
            writer.upsert(policy_consents, "consent_id", {
                "consent_id": event.consent_id.hex, "client_id": event.originator_id.hex,
                "scope": json.dumps(_scope_json(scope)),
            })
        elif isinstance(event, Client.EmergencyAccessGranted | Client.EmergencyAccessEnded):
            emergency = state.emergencies.get(event.originator_id, {}).get(event.grant_id)
            if emergency is None:
                return
            writer.upsert(policy_emergencies, "grant_id", {
                "grant_id": event.grant_id.hex, "client_id": event.originator_id.hex,
                "scope": json.dumps(_emergency_json(emergency)),
            })

    def _load_state(self, conn: Connection) -> LogState:
        state = LogState(position=self._start)
        for slug, kind in conn.execute(select(policy_agencies.c.slug, policy_agencies.c.kind)):
            state.agency_kinds[slug] = AgencyKind(kind)
        for agreement_id, stored in conn.execute(select(policy_agreements)):
            state.restore(UUID(hex=agreement_id), AgreementDraft.from_json(stored))
        state.erased.update(UUID(hex=c) for c in conn.execute(
            select(policy_erasures.c.client_id)).scalars())
        state.restricted.update(UUID(hex=c) for c in conn.execute(
            select(policy_restrictions.c.client_id)).scalars())
        for _consent_id, client_id, raw in conn.execute(select(policy_consents)):
            scope = _scope_from_json(json.loads(raw))
            state.consents.setdefault(UUID(hex=client_id), {})[scope.consent_id] = scope
        for _grant_id, client_id, raw in conn.execute(select(policy_emergencies)):
            emergency = _emergency_from_json(json.loads(raw))
            state.emergencies.setdefault(UUID(hex=client_id), {})[emergency.grant_id] = emergency
        return state

    # -- reading ---------------------------------------------------------------------------

    def read(self, agency: str, client_id: UUID, purpose: str,
             at: datetime | None = None) -> tuple[int, bool, list[ViewItem]]:
        """The log position the view is current to; whether the agency sees anything of
        the client at ``at`` (now), for any purpose; and its view of the client for
        ``purpose``: one item per fact, shown on the preferred basis. Read on the driver,
        on one connection, the position first (so the rows are current to at least that
        position): this is every partner's hot path."""
        with self.engine.connect() as conn:
            position = self.tracking.position(conn, self.name) or 0
            rows = dialect.run(conn, _READ, **_holding(conn, agency, client_id, at)).all()
            grounds = self._grounds_of(conn, {row.ground for row in rows
                                              if row.purpose in (purpose, ANY_PURPOSE)})
        best: dict[int, tuple[Any, _Ground]] = {}
        for row in rows:
            ground = grounds.get(row.ground)
            if ground is None or (row.purpose != purpose and row.purpose != ANY_PURPOSE):
                continue  # a row is shown only with its ground (written with it)
            current = best.get(row.position)
            if current is None or ground.rank < current[1].rank:
                best[row.position] = row, ground
        items = [_item(row, ground) for row, ground in best.values()]
        items.sort(key=lambda item: item.position)
        return position, bool(rows), items

    def items(self, agency: str, client_id: UUID, purpose: str,
              at: datetime | None = None) -> list[ViewItem]:
        """The agency's view of a client for a purpose at ``at`` (now): one item per fact."""
        return self.read(agency, client_id, purpose, at)[2]

    def _grounds_of(self, conn: Connection, keys: set[str]) -> dict[str, _Ground]:
        """Grounds by key, remembered: a ground's key is a digest of its content, so what
        was read once stays true."""
        cache = self._ground_cache
        missing = [key for key in keys if key not in cache]
        if missing:
            if len(cache) > _GROUNDS_KEPT:
                cache.clear()
            query = select(view_grounds).where(view_grounds.c.ground.in_(missing))
            for row in conn.execute(query):
                cache[row.ground] = _Ground(
                    basis_key=row.basis_key, rank=preference_of_key(row.basis_key),
                    basis=json.loads(row.basis), reason=row.reason,
                    fields=None if row.fields is None else tuple(json.loads(row.fields)),
                )
        return {key: cache[key] for key in keys if key in cache}

    def sees_client(self, agency: str, client_id: UUID, at: datetime | None = None) -> bool:
        """Whether the agency has any basis, for any purpose, to see anything of the client."""
        return ClientVisibility(self.engine)(agency, client_id, at)

    def restricted(self, client_id: UUID) -> bool:
        """Whether processing of the client is restricted (UK GDPR Art. 18), as the rows
        the views committed reflect it: partners' rows of the client are gone, and its
        controllers must state a legal claim to read it (``projections.queries``)."""
        query = select(policy_restrictions.c.client_id).where(
            policy_restrictions.c.client_id == client_id.hex)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def matching_clients(self, fingerprint: str) -> list[UUID]:
        query = select(client_matching.c.client_id).where(
            client_matching.c.fingerprint == fingerprint
        )
        with self.engine.connect() as conn:
            return [UUID(hex=c) for c in conn.execute(query).scalars()]

    def all_rows(self) -> list[tuple[Any, ...]]:
        """Every view row with its fact and ground, ordered: for comparing a rebuild with
        the incremental view."""
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(view_items().order_by(
                view_rows.c.agency, view_rows.c.client_id, view_rows.c.purpose,
                view_rows.c.position, view_rows.c.ground))]


class ViewWriter:
    """Writes the rows of one transaction in bulk.

    No fact passes through Python: on each flush the database copies the facts recorded
    since the last one from the event store's rows (``projections.log_facts``), then
    derives their view rows from the shares (``derive``), several for every fact."""

    def __init__(self, conn: Connection, grounds: set[str], copy_facts: str,
                 after: int) -> None:
        self.conn = conn
        # The driver's own cursor on the transaction's connection: a change of consent
        # runs several small statements, and SQLAlchemy's work around each cost more
        # than running it.
        self.cursor = conn.connection.cursor()
        self.copy_facts = copy_facts
        #: The facts are copied up to this position.
        self.flushed = after
        #: How many facts were copied, and how many of those were registrations.
        self.copied = self.registrations = 0
        #: Whether the transaction erased a client (its log is emptied after the commit).
        self.erased = False
        self.matching: list[tuple[str, str]] = []
        self.feed: list[tuple[int, str, int, str, str]] = []
        self.grounds = grounds  # the projector's, added to as grounds are queued
        self.new_grounds: list[tuple[Any, ...]] = []
        self.dialect = dialect.of(conn)
        #: A time as the database stores it (on SQLite, exactly the text SQLAlchemy's
        #: ``DateTime`` writes and reads), for the statements run on the driver.
        self.stamp = self.dialect.stamp

    def add_shares(self, shares: Iterable[Share]) -> None:
        """Writes shares now (the derivations that follow read them), their grounds at
        the next flush."""
        rows = []
        for share in shares:
            grant = share.grant
            ground, ground_row = _ground_of(grant)
            if ground not in self.grounds:
                self.grounds.add(ground)
                self.new_grounds.append(ground_row)
            rows.append((ground, share.category.value, grant.purpose, share.agency,
                         grant.basis.kind.value, share.controller,
                         share.client_id.hex if share.client_id else None,
                         self.stamp(share.data_from), self.stamp(share.data_until),
                         self.stamp(grant.not_before), self.stamp(grant.not_after)))
        if rows:
            self.insert(view_shares, rows)

    def derive(self, facts_where: str, shares_where: str = "1 = 1", *,
               client_only: bool = False, feed: bool = False, **params: Any) -> None:
        """Writes the view rows of the facts ``f`` matching ``facts_where``, one for each
        share ``s`` matching ``shares_where`` that covers the fact (``consent.policy
        .Share.covers``); with ``feed``, also a feed entry for each partner the fact
        enters. ``client_only`` leaves out the shares that hold for every client."""
        covers = (_COVERED_BY_CLIENT,) if client_only else _COVERED
        params.setdefault("controller_kind", BasisKind.CONTROLLER.value)
        self.sql(f"INSERT INTO accord_view_rows ({_VIEW_COLUMNS}) "
                 + " UNION ALL ".join(f"SELECT {_VIEW_ROW} {_FACT_AND_SHARE} AND {facts_where} "
                                      f"AND {shares_where} AND {cover}" for cover in covers),
                 **params)
        if feed:  # one entry per partner and fact, however many rows it has
            self.sql("INSERT INTO accord_feed_outbox (cause, agency, position, client_id, "
                     "change) " + " UNION ALL ".join(
                         f"SELECT f.position, s.agency, f.position, f.client_id, 'entered' "
                         f"{_FACT_AND_SHARE} AND {facts_where} AND {shares_where} "
                         f"AND s.agency != f.controller AND {cover}" for cover in covers)
                     + " ON CONFLICT DO NOTHING", **params)

    def flush(self, upto: int) -> None:
        """Writes what is queued, and copies the facts recorded after the last flush up
        to ``upto`` with their view rows and their partners' feed entries."""
        if self.new_grounds:  # perhaps written before a restart: written only if new
            self.insert(view_grounds, self.new_grounds, if_new=True)
            self.new_grounds.clear()
        if upto > self.flushed:
            after, self.flushed = self.flushed, upto
            copied = self.sql(self.copy_facts, **copy_parameters(after, upto)).rowcount
            if copied:
                self.copied += copied
                self.derive("f.position > :after AND f.position <= :upto", feed=True,
                            after=after, upto=upto)
        for table, pending in ((client_matching, self.matching), (feed_outbox, self.feed)):
            if pending:
                self.insert(table, pending)
                pending.clear()

    def upsert(self, table: Any, key: str, values: dict[str, Any]) -> None:
        """Inserts the row, or updates it where ``key`` is already there."""
        self.cursor.execute(self.dialect.upsert_sql(table, key, tuple(values)), values)

    def sql(self, statement: str, **params: Any) -> Any:
        """Runs one statement written with ``:name`` parameters on the driver's cursor,
        and returns the cursor (to iterate over what it selected)."""
        self.cursor.execute(self.dialect.driver_sql(statement), params)
        return self.cursor

    def insert(self, table: Any, rows: list[tuple[Any, ...]], if_new: bool = False) -> None:
        """Inserts many rows with the driver's ``executemany``: tuples in the table's
        column order, already in stored form (``if_new``: skipping any already there)."""
        self.cursor.executemany(self.dialect.insert_sql(table, if_new=if_new), rows)


_VIEW_COLUMNS = ("client_id, agency, purpose, position, ground, basis_kind, controller, "
                 "not_before, not_after")
#: A fact ``f`` and a share ``s`` as a view row; callers add the conditions. The facts
#: come first: SQLite takes CROSS JOIN as the order to loop in, and the few facts of a
#: batch (or of one client) each find their shares by index, where the other way round
#: would search every fact of a controller for each share. A retracted fact has no rows.
_FACT_AND_SHARE = ("FROM accord_facts f CROSS JOIN accord_view_shares s "
                   "WHERE s.category = f.category AND f.retracted IS NULL")
#: The view row of a fact and a share.
_VIEW_ROW = ("f.client_id, s.agency, s.purpose, f.position, s.ground, s.basis_kind, "
             "f.controller, s.not_before, s.not_after")
#: ``Share.covers`` in SQL, for the shares that hold for every client (never a partner's
#: view of an erased client, nor of one whose processing is restricted) ...
_COVERED_BY_STANDING = (
    "s.client_id IS NULL AND s.controller = f.controller AND (s.basis_kind = :controller_kind "
    "OR (NOT EXISTS (SELECT 1 FROM accord_policy_erasures e WHERE e.client_id = f.client_id) "
    "AND NOT EXISTS (SELECT 1 FROM accord_policy_restrictions r "
    "WHERE r.client_id = f.client_id)))"
)
#: ... and for one client's shares (an erased client has none).
_COVERED_BY_CLIENT = (
    "s.client_id = f.client_id "
    "AND (s.controller = f.controller OR (s.controller IS NULL AND f.controller != s.agency)) "
    "AND (s.data_from IS NULL OR f.occurred_at >= s.data_from) "
    "AND (s.data_until IS NULL OR f.occurred_at < s.data_until)"
)
_COVERED = (_COVERED_BY_STANDING, _COVERED_BY_CLIENT)


@functools.lru_cache(maxsize=65536)
def _ground_of(grant: Grant) -> tuple[str, tuple[str, str, str, str, str | None]]:
    """A grant's ground and its key: a digest of its content, so the same ground gets the
    same key in every projector and every rebuild."""
    basis, fields = _basis_json(grant.basis), _fields_json(grant.fields)
    key = basis_key(grant.basis)
    digest = hashlib.blake2b(digest_size=12)
    for part in (key, basis, grant.reason, fields or ""):
        digest.update(part.encode())
        digest.update(b"\x1f")
    ground = digest.hexdigest()
    return ground, (ground, key, basis, grant.reason, fields)


def _holding(conn: Connection, agency: str, client_id: UUID,
             at: datetime | None) -> dict[str, Any]:
    """The parameters of ``_HOLDING``: ``at`` (now) as the database stores times."""
    at = at or datetime.now(UTC)
    return {"agency": agency, "client": client_id.hex, "at": dialect.of(conn).stamp(at)}


# -- changes of the shares ---------------------------------------------------------------
# Each runs inside ``_feed_changes`` (what enters or leaves a partner's view goes to the
# feed): it deletes the rows the change can alter, replaces the shares it alters, and
# derives those rows again from the shares. All but a change of consent run after a flush
# (``AgencyViews._apply`` says why that one need not).

_CONSENT = BasisKind.AGREEMENT_AND_CONSENT.value


def _restate_shares(writer: ViewWriter, state: LogState) -> None:
    """A new agency: every share again, since agreements and consents already in force
    may name it (by itself or by its kind). Facts already projected are not revisited, as
    ``shared_with`` did not give them to an agency not yet registered."""
    writer.sql("DELETE FROM accord_view_shares")
    writer.add_shares(standing_shares(state))
    for client_id in sorted(state.consents.keys() | state.emergencies.keys()):
        writer.add_shares(client_shares(state, client_id))


def _erase(writer: ViewWriter, client_id: UUID, cause: int) -> None:
    """An erased client: partners see nothing of the client any more, only controllers
    keep their own records; the client can no longer be matched. Free text its facts
    hold in plain text (recorded before free text was sealed) is blanked in the copy;
    sealed text stays as the log holds it, which nobody can open any more."""
    client = client_id.hex
    writer.upsert(policy_erasures, "client_id", {"client_id": client})
    writer.sql("DELETE FROM accord_client_matching WHERE client_id = :client", client=client)
    with _feed_changes(writer, ("client_id = :client", {"client": client}), cause):
        writer.sql("DELETE FROM accord_view_rows WHERE client_id = :client AND purpose != :any",
                   client=client, any=ANY_PURPOSE)
        writer.sql("DELETE FROM accord_view_shares WHERE client_id = :client", client=client)
    with_text = CATALOGUE_TYPES_WITH_FREE_TEXT
    found = writer.sql(
        "SELECT position, fact_type, data FROM accord_facts WHERE client_id = :client "  # noqa: S608 - fixed text
        f"AND fact_type IN ({', '.join(f':t{i}' for i in range(len(with_text)))})",
        client=client, **{f"t{i}": t for i, t in enumerate(with_text)}).fetchall()
    for position, fact_type, stored in found:
        data = json.loads(stored)
        blanked = plain_text_withheld(fact_type, data)
        if blanked != data:
            writer.sql("UPDATE accord_facts SET data = :data WHERE position = :position",
                       data=json.dumps(blanked, separators=(",", ":")), position=position)


def _restrict(writer: ViewWriter, state: LogState, change: RestrictionChanged,
              cause: int) -> None:
    """Processing of a client restricted (UK GDPR Art. 18): every partner's rows of the
    client go, as on erasure, and each partner's feed says the facts left (controllers
    keep their own records). Lifted: the client's shares and every partner's rows are
    derived again from the agreements and consents as they now stand, and the feed says
    the facts entered."""
    client = change.client_id.hex
    params: dict[str, Any] = {"client": client, "any": ANY_PURPOSE,
                              "controller_kind": BasisKind.CONTROLLER.value}
    with _feed_changes(writer, ("client_id = :client", {"client": client}), cause):
        writer.sql("DELETE FROM accord_view_rows WHERE client_id = :client AND purpose != :any",
                   **params)
        writer.sql("DELETE FROM accord_view_shares WHERE client_id = :client", client=client)
        if change.restricted:
            writer.upsert(policy_restrictions, "client_id", {"client_id": client})
            return
        writer.sql("DELETE FROM accord_policy_restrictions WHERE client_id = :client",
                   client=client)
        writer.add_shares(client_shares(state, change.client_id))
        writer.derive("f.client_id = :client", "s.basis_kind != :controller_kind", **params)


def _reshare_consents(writer: ViewWriter, state: LogState, client_id: UUID, controller: str,
                      cause: int) -> None:
    """A consent given or withdrawn for one controller's data: only that client's
    consent-based rows of that controller's facts can change."""
    where = "client_id = :client AND controller = :controller AND basis_kind = :kind"
    params: dict[str, Any] = {"client": client_id.hex, "controller": controller,
                              "kind": _CONSENT}
    with _feed_changes(writer, (where, params), cause):
        writer.sql(f"DELETE FROM accord_view_rows WHERE {where}", **params)  # noqa: S608
        writer.sql(f"DELETE FROM accord_view_shares WHERE {where}", **params)  # noqa: S608
        writer.add_shares(s for s in client_shares(state, client_id)
                          if s.controller == controller and s.grant.basis.kind == _CONSENT)
        writer.derive("f.client_id = :client AND f.controller = :controller",
                      "s.basis_kind = :kind", client_only=True, **params)


def _reshare_agreements(writer: ViewWriter, state: LogState, controller: str, recipient: str,
                        cause: int) -> None:
    """An agreement came into force or was revoked: the recipient's view of the
    controller's facts is derived again, from the agreements now in force between them
    (and any emergency grant the recipient holds)."""
    pair: dict[str, Any] = {"agency": recipient, "controller": controller, "kind": _CONSENT}
    with _feed_changes(writer, (_PAIR, pair), cause):
        writer.sql(f"DELETE FROM accord_view_rows WHERE {_PAIR}", **pair)  # noqa: S608
        writer.sql("DELETE FROM accord_view_shares WHERE client_id IS NULL")
        writer.add_shares(standing_shares(state))
        writer.sql("DELETE FROM accord_view_shares WHERE client_id IS NOT NULL "
                   "AND agency = :agency AND controller = :controller AND basis_kind = :kind",
                   **pair)
        for client_id in state.consents:
            writer.add_shares(s for s in client_shares(state, client_id)
                              if s.agency == recipient and s.controller == controller
                              and s.grant.basis.kind == _CONSENT)
        if recipient != controller:
            writer.derive("f.controller = :controller", "s.agency = :agency", **pair)


def _share_in_emergency(writer: ViewWriter, state: LogState, client_id: UUID, agency: str,
                        cause: int, ended_at: datetime | None = None) -> None:
    """An emergency grant, or its end (``ended_at``): the agency's view of the client is
    derived again. An ended grant keeps its rows for the window it ran (a view or replay
    of that time shows it), closed at ``ended_at``; so the feed compares what the view
    held at ``ended_at`` before and after, not whether rows exist."""
    where = "client_id = :client AND agency = :agency"
    params: dict[str, Any] = {"client": client_id.hex, "agency": agency,
                              "kind": BasisKind.EMERGENCY.value, "any": ANY_PURPOSE}
    with _feed_changes(writer, (where, params), cause, at=ended_at):
        writer.sql(f"DELETE FROM accord_view_rows WHERE {where} AND purpose != :any",  # noqa: S608
                   **params)
        writer.sql(f"DELETE FROM accord_view_shares WHERE {where} AND basis_kind = :kind",  # noqa: S608
                   **params)
        writer.add_shares(s for s in client_shares(state, client_id)
                          if s.agency == agency and s.grant.basis.kind == BasisKind.EMERGENCY)
        writer.derive("f.client_id = :client AND f.controller != :agency",
                      "s.agency = :agency", **params)


def _amend(writer: ViewWriter, amended: AmendedFact, cause: int) -> None:
    """A fact its controller amended: its copy takes the amended payload and time, so
    every view shows it as amended from now on. The rows that rest on the client's
    consent are derived again, since a consent's data period depends on when the fact
    occurred (no other share does); a partner that sees the fact before and after is
    sent it again as amended, one that no longer (or now) sees it as left (entered)."""
    fact = amended.fact
    scope: dict[str, Any] = {"client": fact.client_id.hex, "position": fact.position}
    consent: dict[str, Any] = {**scope, "kind": _CONSENT}
    with _feed_changes(writer, ("client_id = :client AND position = :position", scope), cause,
                       amended=True):
        writer.sql("UPDATE accord_facts SET data = :data, occurred_at = :occurred_at, "
                   "amended = :cause WHERE position = :position",
                   data=json.dumps(amended.data, separators=(",", ":")),
                   occurred_at=writer.stamp(fact.occurred_at), cause=cause,
                   position=fact.position)
        writer.sql("DELETE FROM accord_view_rows WHERE client_id = :client "
                   "AND position = :position AND basis_kind = :kind", **consent)
        writer.derive("f.position = :position", "s.basis_kind = :kind", client_only=True,
                      position=fact.position, kind=_CONSENT)


def _retract(writer: ViewWriter, retracted: RetractedFact, cause: int) -> None:
    """A fact its controller retracted leaves every view, its controller's included (its
    copy stays, marked, so that no later derivation gives it rows again); each partner
    that saw it is sent it as left."""
    scope: dict[str, Any] = {"client": retracted.client_id.hex,
                             "position": retracted.position}
    with _feed_changes(writer, ("client_id = :client AND position = :position", scope), cause):
        writer.sql("UPDATE accord_facts SET retracted = :cause WHERE position = :position",
                   cause=cause, position=retracted.position)
        writer.sql("DELETE FROM accord_view_rows WHERE client_id = :client "
                   "AND position = :position", **scope)


#: The rows of one controller's facts in one recipient's view. Found through the clients
#: with facts of that controller, because every lookup of view rows starts from the
#: client (the primary key's first column); agreements change rarely, facts all the time,
#: and an index by controller would cost every row written.
_PAIR = ("agency = :agency AND controller = :controller AND client_id IN "
         "(SELECT DISTINCT client_id FROM accord_facts WHERE controller = :controller)")

#: Which view rows a re-projection may change: a condition on ``accord_view_rows`` with
#: ``:name`` parameters, and the parameters.
Scope = tuple[str, dict[str, Any]]


def _in_partner_views(writer: ViewWriter, scope: Scope,
                      at: datetime | None = None) -> set[tuple[str, str, int]]:
    """(agency, client, position) of every fact in a partner's view within ``scope``
    (with ``at``: only those with a basis that has not lapsed by then; one that begins
    later is a window the feed's consumers apply themselves)."""
    where, params = scope
    if at is not None:
        where += " AND (not_after IS NULL OR not_after > :feed_at)"
        params = {**params, "feed_at": writer.stamp(at)}
    rows = writer.sql("SELECT DISTINCT agency, client_id, position FROM accord_view_rows "  # noqa: S608 - fixed conditions
                      f"WHERE {where} AND agency != controller", **params)
    return {(row[0], row[1], row[2]) for row in rows}


@contextlib.contextmanager
def _feed_changes(writer: ViewWriter, scope: Scope, cause: int,
                  at: datetime | None = None, *, amended: bool = False) -> Iterator[None]:
    """Records in the feed outbox the facts a re-projection within ``scope`` made enter
    or leave a partner's view (re-derived rows that were there before are no change).
    With ``at`` (an emergency grant ended then), a fact is in the view if a basis of it
    has not lapsed by ``at``; a fact the grant showed that stays on another basis is sent again as
    entered, so a consumer's copy of it no longer names the grant as holding. With
    ``amended`` (its controller amended the facts in scope), a fact that stays in a view
    is sent again as amended."""
    before = _in_partner_views(writer, scope, at)
    redescribed: set[tuple[str, str, int]] = set()
    if at is not None:
        where, params = scope
        redescribed = _in_partner_views(
            writer, (f"{where} AND basis_kind = :emergency",
                     {**params, "emergency": BasisKind.EMERGENCY.value}), at)
    yield
    after = _in_partner_views(writer, scope, at)
    entered = (after - before) | (after & redescribed)
    kept = after & before if amended else set()
    for change, keys in (("left", before - after), ("entered", entered), ("amended", kept)):
        writer.feed.extend((cause, agency, position, client, change)
                           for agency, client, position in sorted(keys))


#: The fact types with free text (``domain.sealing``): blanked on erasure.
CATALOGUE_TYPES_WITH_FREE_TEXT = tuple(sorted(name for name in CATALOGUE
                                              if free_text_fields(name)))


@functools.lru_cache(maxsize=1024)
def _fields_json(fields: tuple[str, ...] | None) -> str | None:
    return None if fields is None else json.dumps(list(fields))


@functools.lru_cache(maxsize=4096)
def _basis_json(basis: Basis) -> str:
    return json.dumps(basis.as_json(), separators=(",", ":"))


def _item(row: Any, ground: _Ground) -> ViewItem:
    return ViewItem(
        position=row.position, fact_type=row.fact_type, category=row.category,
        controller=row.controller, occurred_at=as_utc(row.occurred_at),
        recorded_at=as_utc(row.recorded_at), fields=ground.fields,
        data=mask(json.loads(row.data), ground.fields), purpose=row.purpose,
        basis=dict(ground.basis),
        reason=ground.reason, amended=row.amended,
    )


def _scope_json(scope: ConsentScope) -> dict[str, Any]:
    return {
        "consent_id": scope.consent_id.hex, "client_id": scope.client_id.hex,
        "controller": scope.controller, "recipient_agency": scope.recipient_agency,
        "recipient_kind": scope.recipient_kind, "categories": sorted(scope.categories),
        "purposes": sorted(scope.purposes),
        "data_from": scope.data_from.isoformat() if scope.data_from else None,
        "data_to": scope.data_to.isoformat() if scope.data_to else None,
        "expires_at": scope.expires_at.isoformat() if scope.expires_at else None,
        "withdrawn": scope.withdrawn,
    }


def _emergency_json(scope: EmergencyScope) -> dict[str, Any]:
    return {
        "grant_id": scope.grant_id.hex, "client_id": scope.client_id.hex,
        "agency": scope.agency, "principal": scope.principal, "purpose": scope.purpose,
        "clinical_notes": scope.clinical_notes, "granted_at": scope.granted_at.isoformat(),
        "expires_at": scope.expires_at.isoformat(),
        "ended_at": scope.ended_at.isoformat() if scope.ended_at else None,
        "end_cause": scope.end_cause,
    }


def _emergency_from_json(raw: dict[str, Any]) -> EmergencyScope:
    return EmergencyScope(
        grant_id=UUID(hex=raw["grant_id"]), client_id=UUID(hex=raw["client_id"]),
        agency=raw["agency"], principal=raw["principal"], purpose=raw["purpose"],
        clinical_notes=raw["clinical_notes"],
        granted_at=datetime.fromisoformat(raw["granted_at"]),
        expires_at=datetime.fromisoformat(raw["expires_at"]),
        # Absent from the rows of grants kept before grants could be ended.
        ended_at=datetime.fromisoformat(raw["ended_at"]) if raw.get("ended_at") else None,
        end_cause=raw.get("end_cause"),
    )


def _scope_from_json(raw: dict[str, Any]) -> ConsentScope:
    return ConsentScope(
        consent_id=UUID(hex=raw["consent_id"]), client_id=UUID(hex=raw["client_id"]),
        controller=raw["controller"], recipient_agency=raw["recipient_agency"],
        recipient_kind=raw["recipient_kind"], categories=frozenset(raw["categories"]),
        purposes=frozenset(raw["purposes"]),
        data_from=date.fromisoformat(raw["data_from"]) if raw["data_from"] else None,
        data_to=date.fromisoformat(raw["data_to"]) if raw["data_to"] else None,
        expires_at=datetime.fromisoformat(raw["expires_at"]) if raw["expires_at"] else None,
        withdrawn=raw["withdrawn"],
    )
