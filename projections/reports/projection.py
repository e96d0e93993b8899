"""The outcome reports' read model: what each commissioner may see, under pseudonyms.

A tracked projection (``LogFollower``) that keeps, for every commissioner agency, only
what that agency may see for the purpose ``commissioning`` of the fact types the
measures read, masked to the fields shared, each row with the window in which its basis
holds. Whether a fact may be seen, on which basis, with which fields and until when, is
asked of the policy the agency views use: the log is followed with the same
``consent.state.evolve`` into a ``LogState``, compiled into the same ``consent.policy``
shares (``standing_shares``, ``client_shares``; ``Share.covers``), of which only the
commissioning grants of commissioner agencies are kept. Nothing here restates a rule.

* **No identity, no client id.** A client is a keyed pseudonym (HMAC-SHA256 under a key
  derived from the key file's root for reports only, so it cannot be joined with the
  Kafka feed's pseudonyms, whose messages carry the client id). Identity facts are never
  kept, and the policy state (which names clients) is never stored: after a restart it is
  evolved again from the policy's own events in the log.
* **Age bands** are the one attribute derived from identity. At each
  ``treatment_episode_started`` whose commissioner also has a ``demographics`` share of
  that client from that controller, the sealed date of birth is opened through the
  identity vault (``AccordApplication.identity_of``), the client's age on the episode's
  start day is put in an NDTMS band ("18-24", "25-29", ... "65+") and only the band is
  stored, as a row of its own under the demographics grant (so it goes when that share
  goes). A five-year band at one date is what the demographics share is for, it cannot be
  turned back into a date of birth, and the public figures suppress small cells.
* **Changes of the policy.** A consent given or withdrawn that changes a commissioner's
  shares of that client derives the client's rows again; an agreement coming into force
  or revoked for a commissioner derives that agency's rows again; an erasure removes the
  client everywhere. What was not kept is read again from the log, up to the position
  being projected (``projections.reports.stored_log``), so a rebuild gives exactly the
  incremental rows.
* **Corrections.** A fact its controller amends has its rows derived again as amended
  (an episode's age band from the amended start day); a retracted fact's rows go. When
  rows are derived again from the log, each fact is taken as corrected up to the
  position being projected, so the figures count the corrected record from then on.
* **Alerts** for the safeguarding measures are the alert inbox's own events
  (``projections.alerts.TOPICS``: raised, acknowledged), followed here with the rest so
  that they commit with this model's position; each is kept, for a commissioner with a
  commissioning share of the safeguarding category the alert's rule serves from one of
  the controllers it rests on, as rule, recipient kind, times and pseudonym.

Reports are computed from the rows (``snapshot``, then ``projections.reports.measures``),
and kept by the position at which the rows last changed, so a repeated question costs a
dictionary lookup.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Engine, delete, select, update

from consent.policy import (
    Fact,
    Grant,
    Share,
    Viewer,
    basis_key,
    client_shares,
    mask,
    preference_of_key,
    standing_shares,
)
from consent.state import AgreementChanged, LogState, evolve
from domain.agencies import Agency, AgencyKind
from domain.agreements import Agreement
from domain.alerts import Alert
from domain.application import AccordApplication
from domain.categories import DataCategory
from domain.clients import Client
from domain.identity import IdentityErased
from domain.vocabulary import Purpose
from infra import dialect
from infra.dialect import as_utc, bulk_insert, to_utc, upsert
from infra.keys import FieldVault
from infra.schema import report_alerts, report_consents, report_facts, report_meta
from projections.follower import LogFollower, topics_of
from projections.reports.episodes import DISCHARGED, EPISODE_ENDED, EPISODE_STARTED
from projections.reports.measures import (
    BBV_TEST,
    BBV_VACCINATION,
    CRIMINAL_JUSTICE,
    DA_TYPES,
    DEMOGRAPHICS,
    EMPLOYMENT,
    HOUSEHOLD,
    MENTAL_HEALTH,
    TOP,
)
from projections.reports.model import AlertFact, ReportFact
from projections.reports.stored_log import StoredLog

COMMISSIONING = Purpose.COMMISSIONING.value

#: Interventions: not a measure, but an entity of the NDTMS extract.
INTERVENTION = "intervention_recorded"
#: The fact types the measures (episodes included) and the NDTMS extract read; nothing
#: else is kept.
REPORTED_TYPES = frozenset({
    EPISODE_STARTED, EPISODE_ENDED, DISCHARGED, DEMOGRAPHICS, TOP, HOUSEHOLD,
    CRIMINAL_JUSTICE, EMPLOYMENT, BBV_TEST, BBV_VACCINATION, *DA_TYPES, MENTAL_HEALTH,
    INTERVENTION,
})
#: The row an episode's age band is kept in (merged into the start fact's data on reading).
AGE_BAND = "age_band"

#: The safeguarding category an alert's purpose rests on.
ALERT_CATEGORIES = {
    Purpose.SAFEGUARDING_CHILDREN.value: DataCategory.SAFEGUARDING_CHILDREN,
    Purpose.SAFEGUARDING_ADULTS.value: DataCategory.SAFEGUARDING_ADULTS,
}

FACT_RECORDED = get_topic(Client.FactRecorded)
#: Corrections of facts by their controllers.
CORRECTIONS = (get_topic(Client.FactAmended), get_topic(Client.FactRetracted))
ALERT_RAISED = get_topic(Alert.Raised)
ALERT_ACKNOWLEDGED = get_topic(Alert.Acknowledged)
#: What changes the policy: agencies, agreements, and clients' consents, emergency grants
#: erasures and restrictions (the state is evolved again from these alone after a restart).
_CLIENT_POLICY = (Client.ConsentGiven, Client.ConsentWithdrawn, Client.EmergencyAccessGranted,
                  Client.EmergencyAccessEnded, Client.Erased, Client.ProcessingRestricted,
                  Client.RestrictionLifted)
POLICY_TOPICS = sorted({*topics_of(Agency, Agreement), *(get_topic(t) for t in _CLIENT_POLICY)})
TOPICS = sorted({*POLICY_TOPICS, FACT_RECORDED, *CORRECTIONS, ALERT_RAISED,
                 ALERT_ACKNOWLEDGED})

#: NDTMS adult age bands: (lowest age, label), youngest first.
_BANDS = ((65, "65+"), (60, "60-64"), (55, "55-59"), (50, "50-54"), (45, "45-49"),
          (40, "40-44"), (35, "35-39"), (30, "30-34"), (25, "25-29"), (18, "18-24"))
AGE_BANDS = ("under 18", *(label for _, label in reversed(_BANDS)))
_READ_BATCH = 2000
_CATEGORIES = {category.value: category for category in DataCategory}
_RESULTS_KEPT = 512


def _skipped(notification: Notification) -> bool:
    """Whether a followed event is a fact of a type the reports never read, told from
    the stored JSON without decoding it (the library writes an event's fields in their
    order, ``fact_type`` before the payload, whose strings cannot hold an unescaped
    quote). Anything not in that form is decoded and judged as usual."""
    if notification.topic != FACT_RECORDED:
        return False
    state = notification.state
    start = state.find(b'"fact_type":"')
    if start < 0:
        return False
    start += 13
    return state[start:state.find(b'"', start)].decode() not in REPORTED_TYPES


@dataclass(frozen=True)
class Recorded:
    """A ``Client.FactRecorded``, as the reports read it: the fields they need."""

    originator_id: UUID
    fact_type: str
    category: str
    controller: str
    occurred_at: datetime
    data: dict[str, Any]
    #: The payload's JSON as stored (kept as it is where a share shows every field).
    data_json: str | None = None


_JSON = json.JSONDecoder()
_OCCURRED_AT = '"occurred_at":{"_type_":"datetime_iso","_data_":"'


def _text_after(text: str, key: str, start: int) -> tuple[str, int]:
    """The plain text value (no escapes) that follows ``key`` at or after ``start``."""
    found = text.find(key, start)
    if found < 0:
        raise ValueError(key)
    begins = found + len(key)
    ends = text.index('"', begins)
    value = text[begins:ends]
    if "\\" in value:
        raise ValueError(key)
    return value, ends


def _read_recorded(notification: Notification) -> Recorded | None:
    """The fact, read from the stored JSON without the library's decoding (most of a
    catch-up's events are facts): the fields in the order the library writes them
    (``fact_type``, ``category``, ``data``, ``occurred_at``, ``controller``), only the
    payload parsed; so none can be taken from inside the payload, whose strings cannot
    hold an unescaped quote. None where the JSON is not in that form, for the caller to
    decode it the library's way. ``tests/integration/test_reports_projection.py`` compares
    both on every fact of a log."""
    if not isinstance(notification.originator_id, UUID):
        return None
    try:
        text = notification.state.decode()
        fact_type, at = _text_after(text, '"fact_type":"', 0)
        category, at = _text_after(text, '"category":"', at)
        begins = text.index('"data":', at) + 7
        data, ends = _JSON.raw_decode(text, begins)
        occurred, at = _text_after(text, _OCCURRED_AT, ends)
        controller, _ = _text_after(text, '"controller":"', at)
        if not isinstance(data, dict):
            return None
        return Recorded(notification.originator_id, fact_type, category, controller,
                        datetime.fromisoformat(occurred), data, text[begins:ends])
    except (ValueError, UnicodeDecodeError):
        return None


def decoder(app: AccordApplication) -> Callable[[Notification], Any]:
    """Decodes a followed event: a fact from its stored JSON (``Recorded``) where the
    event store keeps plain JSON, anything else (or a fact in another form) by the
    library's mapper."""
    mapper = app.mapper
    if mapper.compressor is not None or mapper.cipher is not None:
        return mapper.to_domain_event

    def decode(notification: Notification) -> Any:
        if notification.topic == FACT_RECORDED:
            found = _read_recorded(notification)
            if found is not None:
                return found
        return mapper.to_domain_event(notification)

    return decode


def report_pseudonym_key(root: bytes) -> bytes:
    """The key of the reports' pseudonyms, derived from the key file's root for this use
    only (the Kafka relay's pseudonyms have their own)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"accord/v1/report-pseudonym").derive(root)


def age_band(born: date, on: date) -> str:
    """The NDTMS band of a person born on ``born``, on the day ``on``."""
    age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    for lowest, label in _BANDS:
        if age >= lowest:
            return label
    return "under 18"


@dataclass(frozen=True)
class Snapshot:
    """What one commissioner may see at one moment, ready for the measures."""

    agency: str
    #: The log position at which the rows last changed (the cache's key).
    changed: int
    facts: tuple[ReportFact, ...]
    alerts: tuple[AlertFact, ...]
    #: Pseudonyms of the clients with an active consent to the agency for commissioning.
    consenting: frozenset[str]
    #: What the facts rest on: one item per (category, controller, basis), for the access
    #: record (no client in it).
    sources: tuple[dict[str, Any], ...]
    #: The moment it shows, and when a basis in the rows starts or lapses next after it
    #: (None: never): it holds from the one until the other.
    at: datetime
    valid_until: datetime | None

    def holds_at(self, at: datetime) -> bool:
        return self.at <= at and (self.valid_until is None or at < self.valid_until)


class _Shares:
    """The commissioning shares of each commissioner agency, from the policy state:
    ``standing_shares`` and ``client_shares`` as the views compile them, of which only the
    grants for ``commissioning`` to agencies of the commissioner kind are kept."""

    def __init__(self, state: LogState) -> None:
        self.state = state
        self._standing: dict[str, tuple[Share, ...]] | None = None
        self._clients: dict[UUID, dict[str, tuple[Share, ...]]] = {}
        self._commissioners: list[str] | None = None
        #: The standing shares by agency, then category (a fact's are looked up).
        self._by_category: dict[str, dict[DataCategory, tuple[Share, ...]]] = {}
        #: The grants of the standing shares, by (agency, category, controller).
        self._standing_grants: dict[tuple[str, str, str], list[Grant]] = {}

    def commissioners(self) -> list[str]:
        if self._commissioners is None:
            self._commissioners = sorted(slug for slug, kind in self.state.agency_kinds.items()
                                         if kind is AgencyKind.COMMISSIONER)
        return self._commissioners

    def concerns(self, purposes: Iterable[str], agency: str | None, kind: str | None) -> bool:
        """Whether a consent to ``agency`` or to every agency of ``kind`` for
        ``purposes`` names a commissioner and the purpose commissioning: ``client_shares``
        makes shares only for the recipients and purposes a consent covers, so no other
        consent gives (or, withdrawn, takes away) a commissioner's share."""
        commissioner = AgencyKind.COMMISSIONER
        return COMMISSIONING in {str(p) for p in purposes} and (
            (kind is not None and str(kind) == commissioner.value)
            or (agency is not None and self.state.agency_kinds.get(agency) is commissioner))

    def _keep(self, shares: Iterable[Share]) -> dict[str, tuple[Share, ...]]:
        kinds = self.state.agency_kinds
        kept: dict[str, list[Share]] = {}
        for share in shares:
            if (share.grant.purpose == COMMISSIONING
                    and kinds.get(share.agency) is AgencyKind.COMMISSIONER):
                kept.setdefault(share.agency, []).append(share)
        return {agency: tuple(found) for agency, found in kept.items()}

    def standing(self) -> dict[str, tuple[Share, ...]]:
        if self._standing is None:
            self._standing = self._keep(standing_shares(self.state))
            self._by_category = {
                agency: {category: tuple(s for s in shares if s.category is category)
                         for category in {s.category for s in shares}}
                for agency, shares in self._standing.items()}
        return self._standing

    def of_client(self, client_id: UUID) -> dict[str, tuple[Share, ...]]:
        found = self._clients.get(client_id)
        if found is None:
            relevant = any(not scope.withdrawn and self.concerns(
                scope.purposes, scope.recipient_agency, scope.recipient_kind)
                for scope in self.state.consents_of(client_id))
            found = self._keep(client_shares(self.state, client_id)) if relevant else {}
            self._clients[client_id] = found
        return found

    def forget(self, client_id: UUID | None = None) -> None:
        """After a change of one client's consents (or, with no client, of anything)."""
        if client_id is None:
            self._standing = self._commissioners = None
            self._standing_grants = {}
            self._clients.clear()
        else:
            self._clients.pop(client_id, None)

    def grants(self, agency: str, fact: Fact) -> list[Grant]:
        """The commissioning grants on which ``agency`` may see ``fact`` (none of an erased
        client, nor of one whose processing is restricted)."""
        if self.state.hidden_from_partners(fact.client_id):
            return []
        key = (agency, fact.category.value, fact.controller)
        standing = self._standing_grants.get(key)
        if standing is None:  # a standing share covers by category and controller alone
            self.standing()
            standing = self._standing_grants[key] = [
                share.grant for share in self._by_category.get(agency, {}).get(
                    fact.category, ()) if share.covers(fact)]
        own = self.of_client(fact.client_id).get(agency)
        if not own:
            return standing
        return [*standing, *(share.grant for share in own if share.covers(fact))]


class OutcomeReports(LogFollower):
    """The tracked projection, and the reads the report endpoints and the extract make."""

    name = "outcome_reports"
    doing = "projecting outcome reports"
    tables = (report_facts, report_alerts, report_consents, report_meta)

    def __init__(self, app: AccordApplication, engine: Engine, key: bytes,
                 batch_size: int = 2000) -> None:
        super().__init__(app, engine, TOPICS, batch_size)
        self.key = key
        self._state: LogState | None = None
        self._shares: _Shares | None = None
        self._pseudonyms: dict[UUID, str] = {}
        self._cache_lock = threading.Lock()
        self._snapshots: dict[str, Snapshot] = {}
        self._results: dict[tuple[Any, ...], tuple[Snapshot, Any]] = {}
        self.decode = decoder(app)

    # -- pseudonyms ------------------------------------------------------------------------

    def pseudonym(self, client_id: UUID) -> str:
        """The client's pseudonym in the reports: stable, keyed, no client id in it."""
        found = self._pseudonyms.get(client_id)
        if found is None:
            found = _keyed(self.key, b"client:", client_id)
            if len(self._pseudonyms) > 200_000:
                self._pseudonyms.clear()
            self._pseudonyms[client_id] = found
        return found

    def record_id(self, kind: str, client: str, position: int) -> str:
        """A stable pseudonymous id for one of a client's records in an extract (an
        episode by its start, an intervention, a profile): keyed, so it is neither a log
        position nor linkable without the key."""
        message = f"record:{kind}:{client}:{position}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()[:32]

    # -- following the log -----------------------------------------------------------------

    def _forget(self) -> None:
        self._state = None
        self._shares = None

    def _load_state(self) -> LogState:
        """The policy at the position this batch starts after, evolved again from the
        policy's own events in the log (the state names clients, so it is not stored)."""
        state = LogState()
        position, mapper = 0, self.app.mapper
        while position < self._start:
            batch = self.app.recorder.select_notifications(
                start=position, limit=_READ_BATCH, stop=self._start, topics=POLICY_TOPICS,
                inclusive_of_start=False)
            for notification in batch:
                evolve(state, mapper.to_domain_event(notification), notification.id)
            if len(batch) < _READ_BATCH:
                break
            position = batch[-1].id
        state.position = self._start
        return state

    def _process(self, batch: Sequence[Notification], upto: int) -> int:
        try:
            state = self._state or self._load_state()
            shares = self._shares if self._shares is not None and self._state is state \
                else _Shares(state)
            with self.engine.begin() as conn:
                self._advance(conn, upto)
                writer = _Writer(self, conn, state, shares)
                decode = self.decode
                for notification in batch:
                    if not _skipped(notification):
                        writer.apply(decode(notification), notification.id)
                writer.commit(upto)
            self._state, self._shares = state, shares
        except BaseException:
            self._forget()  # the state may be ahead of the rolled-back rows
            raise
        self.tracking.committed()
        return len(batch)

    # -- reading ---------------------------------------------------------------------------

    def changed(self) -> int:
        """The log position at which the rows last changed (0: never)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(report_meta.c.value).where(
                report_meta.c.key == "changed")).scalar() or 0)

    def snapshot(self, agency: str, at: datetime | None = None) -> Snapshot:
        """What ``agency`` may see at ``at`` (now): for each fact, the row of its
        preferred basis that holds then (as a view shows one item per fact), an episode
        start with its age band if one holds; the alerts and consents likewise."""
        at = to_utc(at or datetime.now(UTC))
        changed = self.changed()
        with self._cache_lock:
            kept = self._snapshots.get(agency)
        if kept is not None and kept.changed == changed and kept.holds_at(at):
            return kept
        with self.engine.connect() as conn:
            made = _read_snapshot(conn, agency, changed, at)
        with self._cache_lock:
            self._snapshots[agency] = made
        return made

    def remembered(self, key: tuple[Any, ...], snapshot: Snapshot,
                   compute: Callable[[], Any]) -> Any:
        """A result computed from ``snapshot`` for ``key`` (period, grouping, disclosure),
        computed once for each snapshot."""
        full = (snapshot.agency, snapshot.changed, snapshot.valid_until, *key)
        with self._cache_lock:
            found = self._results.get(full)
        if found is not None and found[0] is snapshot:
            return found[1]
        result = compute()
        with self._cache_lock:
            if len(self._results) >= _RESULTS_KEPT:
                self._results.clear()
            self._results[full] = (snapshot, result)
        return result

    def all_rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, ordered: for comparing a rebuild with the incremental
        rows."""
        ordered = {report_facts: ("agency", "position", "fact_type", "basis"),
                   report_alerts: ("agency", "alert"), report_consents: ("agency", "client",
                                                                          "consent")}
        with self.engine.connect() as conn:
            return {table.name: [tuple(row) for row in conn.execute(
                select(table).order_by(*(table.c[name] for name in keys)))]
                for table, keys in ordered.items()}


@functools.lru_cache(maxsize=1024)
def _field_set(fields: tuple[str, ...]) -> frozenset[str]:
    return frozenset(fields)


@functools.lru_cache(maxsize=4096)
def _grant_columns(grant: Grant, stamp: Callable[[datetime | None], Any]) -> tuple[Any, ...]:
    """A grant's columns of a row (basis key, kind, window as stored), made once each."""
    return (basis_key(grant.basis), grant.basis.kind.value, stamp(grant.not_before),
            stamp(grant.not_after))


def _keyed(key: bytes, kind: bytes, value: UUID) -> str:
    return hmac.new(key, kind + value.bytes, hashlib.sha256).hexdigest()[:32]


class _Writer:
    """One batch's changes to the rows, in one transaction."""

    def __init__(self, reports: OutcomeReports, conn: Connection, state: LogState,
                 shares: _Shares) -> None:
        self.reports = reports
        self.app = reports.app
        self.conn = conn
        self.state = state
        self.shares = shares
        self.stamp = dialect.of(conn).stamp
        self.facts: list[tuple[Any, ...]] = []
        #: Each grant's columns, by the grant's identity (grants are shared objects).
        self._columns: dict[int, tuple[Grant, tuple[Any, ...]]] = {}
        #: Age bands to derive at the next flush: (agency, pseudonym, the demographics
        #: fact the episode start stands for, the demographics grant).
        self.bands: list[tuple[str, str, Fact, Grant]] = []
        self.alerts: dict[tuple[str, str], dict[str, Any]] = {}
        self.changed = False
        self._log: StoredLog | None = None

    @property
    def log(self) -> StoredLog:
        if self._log is None:
            self._log = StoredLog(self.app, self.conn, self.reports.decode)
        return self._log

    # -- events ----------------------------------------------------------------------------

    def apply(self, event: Any, position: int) -> None:
        if isinstance(event, Recorded | Client.FactRecorded):
            self.state.position = position
            if event.fact_type in REPORTED_TYPES:
                self.fact(event, position, self.shares.commissioners())
            return
        if isinstance(event, Client.FactAmended | Client.FactRetracted):
            self.state.position = position
            if event.fact_type in REPORTED_TYPES:
                self.correct(event)
            return
        if isinstance(event, Alert.Raised):
            self.alert(event, position, self.shares.commissioners())
            return
        if isinstance(event, Alert.Acknowledged):
            self.acknowledged(event)
            return
        if isinstance(event, Client.ConsentGiven | Client.ConsentWithdrawn):
            client_id = event.originator_id
            if not self._concerns_commissioners(event):
                evolve(self.state, event, position)
                self.shares.forget(client_id)
                return
            before = self.shares.of_client(client_id)
            evolve(self.state, event, position)
            self.shares.forget(client_id)
            after = self.shares.of_client(client_id)
            for agency in sorted(set(before) | set(after)):
                if set(before.get(agency, ())) != set(after.get(agency, ())):
                    self.derive_client(agency, client_id, position)
            self.consents(client_id, self.shares.commissioners())
            return
        if isinstance(event, Client.Erased):
            evolve(self.state, event, position)
            self.shares.forget(event.originator_id)
            self.erase(event.originator_id)
            return
        if isinstance(event, Client.ProcessingRestricted | Client.RestrictionLifted):
            # Restricted (UK GDPR Art. 18): no report counts the client; lifted, each
            # commissioner's rows of the client are derived again.
            evolve(self.state, event, position)
            self.shares.forget(event.originator_id)
            for agency in self.shares.commissioners():
                self.derive_client(agency, event.originator_id, position)
            return
        if isinstance(event, Client.Event):  # an emergency grant: never for commissioning
            evolve(self.state, event, position)
            self.shares.forget(event.originator_id)
            return
        effect = evolve(self.state, event, position)
        if isinstance(event, Agency.Registered):
            self.shares.forget()
            if AgencyKind(event.kind) is AgencyKind.COMMISSIONER:
                self.derive_agency(event.slug, position)
        elif isinstance(effect, AgreementChanged):
            self.shares.forget()
            if self.state.agency_kinds.get(effect.recipient) is AgencyKind.COMMISSIONER:
                self.derive_agency(effect.recipient, position)

    def _concerns_commissioners(self, event: Any) -> bool:
        """Whether a consent given or withdrawn names the purpose commissioning and a
        commissioner (``_Shares.concerns``): no other changes a commissioner's shares or
        consents."""
        if isinstance(event, Client.ConsentGiven):
            return self.shares.concerns(event.purposes, event.recipient_agency,
                                        event.recipient_kind)
        scope = self.state.consents.get(event.originator_id, {}).get(event.consent_id)
        return scope is not None and self.shares.concerns(
            scope.purposes, scope.recipient_agency, scope.recipient_kind)

    def fact(self, event: Any, position: int, agencies: Sequence[str]) -> None:
        """The rows of one fact for each of ``agencies`` that may see it."""
        if event.fact_type not in REPORTED_TYPES:
            return
        client_id = event.originator_id
        occurred_at = event.occurred_at
        if occurred_at.tzinfo is not UTC:
            occurred_at = to_utc(occurred_at)
        fact = Fact(client_id, position, _CATEGORIES[event.category], event.controller,
                    occurred_at)
        client = self.reports.pseudonym(client_id)
        data, stored = event.data, getattr(event, "data_json", None)
        for agency in agencies:
            for grant in self.shares.grants(agency, fact):
                fields = grant.fields
                if stored is not None and (fields is None or _field_set(fields) >= data.keys()):
                    shown = stored  # every field shared: as stored
                else:
                    shown = json.dumps(mask(data, fields), separators=(",", ":"))
                self._row(agency, position, event.fact_type, client, fact, grant, shown)
            if event.fact_type != EPISODE_STARTED:
                continue
            demographics = Fact(client_id, position, DataCategory.DEMOGRAPHICS,
                                event.controller, occurred_at)
            self.bands.extend((agency, client, demographics, grant)
                              for grant in self.shares.grants(agency, demographics))

    def correct(self, event: Any) -> None:
        """A fact amended or retracted by its controller: its rows (and an episode's age
        band) go, and an amended fact's are derived again, as amended."""
        self.flush()
        commissioners = self.shares.commissioners()
        self.conn.execute(delete(report_facts).where(
            report_facts.c.agency.in_(commissioners),
            report_facts.c.position == event.position,
            report_facts.c.client == self.reports.pseudonym(event.originator_id)))
        self.changed = True
        corrected = _corrected(event)
        if corrected is not None:
            self.fact(corrected, event.position, commissioners)

    def _age_bands(self) -> None:
        """The rows of the age bands the batch derived so far: each client's sealed date
        of birth opened through the vault (all of them at once), only the band kept."""
        clients = {fact.client_id for _, _, fact, _ in self.bands}
        registered = self.log.registrations(clients)
        vault = self.app.vault
        sealed = {c: str(getattr(e, "sealed_identity", "")) for c, e in registered.items()}
        if isinstance(vault, FieldVault):
            born = {c: i.date_of_birth for c, i in vault.open_many(sealed).items()}
        else:  # another vault: one at a time
            born = {}
            for client_id, text in sealed.items():
                with contextlib.suppress(IdentityErased):
                    born[client_id] = vault.open(client_id, text).date_of_birth
        for agency, client, fact, grant in self.bands:
            if fact.client_id in born:  # not erased
                band = age_band(born[fact.client_id], fact.occurred_at.date())
                self._row(agency, fact.position, AGE_BAND, client, fact, grant,
                          json.dumps({"age_band": band}))
        self.bands = []

    def _row(self, agency: str, position: int, fact_type: str, client: str, fact: Fact,
             grant: Grant, data: str) -> None:
        """A row of ``fact`` on ``grant``; ``data`` its shown payload as JSON."""
        found = self._columns.get(id(grant))
        if found is None or found[0] is not grant:  # hashing a grant costs more than this
            found = self._columns[id(grant)] = (grant, _grant_columns(grant, self.stamp))
        key, kind, not_before, not_after = found[1]
        self.facts.append((
            agency, position, fact_type, key, client, fact.category.value, fact.controller,
            kind, self.stamp(fact.occurred_at), data, not_before, not_after))
        self.changed = True

    def alert(self, event: Any, position: int, agencies: Sequence[str]) -> None:
        """The alert's row for each of ``agencies`` that may see the safeguarding
        category its rule serves, from a controller it rests on."""
        basis = event.basis if isinstance(event.basis, dict) else {}
        category = ALERT_CATEGORIES.get(str(basis.get("purpose")))
        kind = self.state.agency_kinds.get(event.recipient)
        if category is None or kind is None:
            return
        controllers = sorted({str(a["controller"]) for a in basis.get("agreements") or ()
                              if isinstance(a, dict) and a.get("controller")})
        raised_at = to_utc(event.timestamp)
        for agency in agencies:
            grants = [grant for controller in controllers
                      for grant in self.shares.grants(agency, Fact(
                          event.client_id, position, category, controller, raised_at))]
            if not grants:
                continue
            grant = min(grants, key=lambda g: preference_of_key(basis_key(g.basis)))
            key = (agency, _keyed(self.reports.key, b"alert:", event.originator_id))
            self.alerts[key] = {
                "agency": agency, "alert": key[1],
                "client": self.reports.pseudonym(event.client_id), "rule": event.rule,
                "recipient_kind": kind.value, "raised_at": raised_at,
                "acknowledge_by": to_utc(event.acknowledge_by), "acknowledged_at": None,
                "not_before": grant.not_before, "not_after": grant.not_after,
            }
            self.changed = True

    def acknowledged(self, event: Any) -> None:
        alert = _keyed(self.reports.key, b"alert:", event.originator_id)
        at = to_utc(event.timestamp)
        pending = [row for (_, key), row in self.alerts.items() if key == alert]
        for row in pending:
            row["acknowledged_at"] = at
        result = self.conn.execute(update(report_alerts).where(
            report_alerts.c.alert == alert).values(acknowledged_at=at))
        if pending or result.rowcount:
            self.changed = True

    def _consent_rows(self, client_id: UUID, agencies: Sequence[str]) -> list[dict[str, Any]]:
        """The client's active consents to each of ``agencies`` for commissioning."""
        client = self.reports.pseudonym(client_id)
        rows: list[dict[str, Any]] = []
        for agency in agencies:
            viewer = Viewer(agency, AgencyKind.COMMISSIONER)
            rows.extend({"agency": agency, "client": client,
                         "consent": _keyed(self.reports.key, b"consent:", scope.consent_id),
                         "expires_at": scope.expires_at}
                        for scope in self.state.consents_of(client_id)
                        if not scope.withdrawn and COMMISSIONING in scope.purposes
                        and scope.covers_recipient(viewer))
        return rows

    def consents(self, client_id: UUID, agencies: Sequence[str]) -> None:
        """The client's consent rows again, for each of ``agencies``."""
        rows = self._consent_rows(client_id, agencies)
        if agencies:
            self.conn.execute(delete(report_consents).where(
                report_consents.c.client == self.reports.pseudonym(client_id),
                report_consents.c.agency.in_(list(agencies))))
            self.changed = True
        if rows:
            self.conn.execute(report_consents.insert(), rows)

    # -- deriving again --------------------------------------------------------------------

    def flush(self) -> None:
        if self.bands:
            self._age_bands()
        if self.facts:
            bulk_insert(self.conn, report_facts, self.facts)
            self.facts = []
        if self.alerts:
            self.conn.execute(report_alerts.insert(), list(self.alerts.values()))
            self.alerts = {}

    def erase(self, client_id: UUID) -> None:
        """An erased client: nothing of it stays in any report."""
        self.flush()
        client = self.reports.pseudonym(client_id)
        for table in (report_facts, report_alerts, report_consents):
            self.conn.execute(delete(table).where(table.c.client == client))
        self.changed = True

    def derive_client(self, agency: str, client_id: UUID, position: int) -> None:
        """The agency's rows of one client again, from the client's stream in the log up
        to ``position`` (its facts) and the alerts about the client so far."""
        self.flush()
        client = self.reports.pseudonym(client_id)
        for table in (report_facts, report_alerts):
            self.conn.execute(delete(table).where(table.c.agency == agency,
                                                  table.c.client == client))
        self.changed = True
        recorded: dict[int, Any] = {}
        for at, event in self.log.events_of(client_id, position, (FACT_RECORDED, *CORRECTIONS)):
            if event.fact_type not in REPORTED_TYPES:
                continue
            if isinstance(event, Client.FactAmended | Client.FactRetracted):
                if event.position in recorded:
                    recorded[event.position] = _corrected(event)
            else:
                recorded[at] = event
        for at, event in sorted(recorded.items()):
            if event is not None:
                self.fact(event, at, (agency,))
        self._alerts_again(agency, position, client_id)
        self.flush()

    def derive_agency(self, agency: str, position: int) -> None:
        """All the agency's rows again (an agreement with it came into force or was
        revoked, or it was registered), from the log up to ``position``."""
        self.flush()
        for table in (report_facts, report_alerts):
            self.conn.execute(delete(table).where(table.c.agency == agency))
        self.changed = True
        corrections = self._corrections(position)
        for at, event in self._followed(position, FACT_RECORDED):
            if at in corrections:
                event = corrections[at]
                if event is None:
                    continue
            self.fact(event, at, (agency,))
            if len(self.facts) >= _READ_BATCH:
                self.flush()
        self._alerts_again(agency, position)
        self.conn.execute(delete(report_consents).where(report_consents.c.agency == agency))
        rows = [row for client_id in sorted(self.state.consents)
                for row in self._consent_rows(client_id, (agency,))]
        if rows:
            self.conn.execute(report_consents.insert(), rows)
        self.flush()

    def _alerts_again(self, agency: str, position: int, client_id: UUID | None = None) -> None:
        for at, raised in self._followed(position, ALERT_RAISED):
            if client_id is not None and raised.client_id != client_id:
                continue
            self.alert(raised, at, (agency,))
            for _, later in self.log.events_of(raised.originator_id, position,
                                               (ALERT_ACKNOWLEDGED,)):
                self.acknowledged(later)

    def _corrections(self, position: int) -> dict[int, Recorded | None]:
        """Each corrected fact of a reported type, by the fact's position, as its
        corrections up to ``position`` leave it (None: retracted)."""
        found: dict[int, Recorded | None] = {}
        for _, event in self._followed(position, *CORRECTIONS):
            if event.fact_type in REPORTED_TYPES:
                found[event.position] = _corrected(event)
        return found

    def _followed(self, position: int, *topics: str) -> Iterable[tuple[int, Any]]:
        """(position, event) of every event of ``topics`` in the log up to ``position``."""
        start, decode = 0, self.reports.decode
        while start < position:
            batch = self.app.recorder.select_notifications(
                start=start, limit=_READ_BATCH, stop=position, topics=list(topics),
                inclusive_of_start=False)
            for notification in batch:
                if not _skipped(notification):
                    yield notification.id, decode(notification)
            if len(batch) < _READ_BATCH:
                return
            start = batch[-1].id

    def commit(self, upto: int) -> None:
        self.flush()
        if self.changed:
            upsert(self.conn, report_meta, [{"key": "changed", "value": upto}], "key")


def _corrected(event: Any) -> Recorded | None:
    """The fact as a correction leaves it: as amended, or None once retracted."""
    if isinstance(event, Client.FactRetracted):
        return None
    return Recorded(event.originator_id, event.fact_type, event.category, event.controller,
                    event.occurred_at, event.data)


# -- reading -----------------------------------------------------------------------------

def _holds(row: Any, at: datetime) -> bool:
    starts, ends = as_utc(row.not_before), as_utc(row.not_after)
    return (starts is None or starts <= at) and (ends is None or at < ends)


def _next_boundary(rows: Iterable[Any], at: datetime, soonest: datetime | None) -> datetime | None:
    for row in rows:
        for edge in (as_utc(row.not_before), as_utc(row.not_after)):
            if edge is not None and edge > at and (soonest is None or edge < soonest):
                soonest = edge
    return soonest


def _read_snapshot(conn: Connection, agency: str, changed: int, at: datetime) -> Snapshot:
    fact_rows = conn.execute(select(report_facts).where(report_facts.c.agency == agency)).all()
    alert_rows = conn.execute(select(report_alerts).where(report_alerts.c.agency == agency)).all()
    consent_rows = conn.execute(select(report_consents).where(
        report_consents.c.agency == agency)).all()
    best: dict[tuple[int, str], Any] = {}
    for row in fact_rows:
        if not _holds(row, at):
            continue
        key = (row.position, row.fact_type)
        current = best.get(key)
        if current is None or preference_of_key(row.basis) < preference_of_key(current.basis):
            best[key] = row
    bands = {position: json.loads(row.data).get("age_band")
             for (position, fact_type), row in best.items() if fact_type == AGE_BAND}
    facts = []
    sources: dict[tuple[str, str, str], dict[str, Any]] = {}
    for (position, fact_type), row in sorted(best.items()):
        basis = row.basis.split(":")
        sources.setdefault((row.category, row.controller, row.basis), {
            "position": None, "category": row.category, "controller": row.controller,
            "basis": {"kind": row.basis_kind, "agreement_id": basis[1] or None,
                      "consent_id": basis[2] or None} if len(basis) == 3
            else {"kind": row.basis_kind}})
        if fact_type == AGE_BAND:
            continue
        data = json.loads(row.data)
        if fact_type == EPISODE_STARTED and bands.get(position) is not None:
            data["age_band"] = bands[position]
        facts.append(ReportFact(client=row.client, position=position, fact_type=fact_type,
                                occurred_at=as_utc(row.occurred_at),
                                controller=row.controller, data=data))
    alerts = tuple(
        AlertFact(client=row.client, rule=row.rule, recipient_kind=row.recipient_kind,
                  raised_at=as_utc(row.raised_at), acknowledge_by=as_utc(row.acknowledge_by),
                  acknowledged_at=as_utc(row.acknowledged_at))
        for row in sorted(alert_rows, key=lambda r: (as_utc(r.raised_at), r.alert))
        if _holds(row, at))
    consenting = frozenset(row.client for row in consent_rows
                           if row.expires_at is None or as_utc(row.expires_at) > at)
    soonest = _next_boundary(fact_rows, at, _next_boundary(alert_rows, at, None))
    for row in consent_rows:
        expires = as_utc(row.expires_at)
        if expires is not None and expires > at and (soonest is None or expires < soonest):
            soonest = expires
    return Snapshot(agency=agency, changed=changed, facts=tuple(facts), alerts=alerts,
                    consenting=consenting,
                    sources=tuple(sources[key] for key in sorted(sources)),
                    at=at, valid_until=soonest)
