"""Lists of clients: a treatment provider's caseload, and a partner's cohort for a purpose.

A **caseload** is the clients a treatment provider has in treatment now: those with an
open treatment episode in its own record (episodes as the outcome reports derive them,
``projections.reports.episodes``, from its own ``treatment_episode_started``,
``treatment_episode_ended`` and ``discharged`` facts), each with the episode's start,
modality and key worker, and the client's name and date of birth where the provider
registered the client (its own record holds the identity).

A **cohort** is the clients an agency may see anything of for a stated purpose: those
with a row in its agency view for that purpose that holds now, read from the materialised
views, never worked out again from the policy. A client whose identity the agency's share
names shows the name and date of birth that share names (the fields of
``projections.search.SHOWN_FIELDS``); any other is listed by id alone, and a client the
agency has no basis to see for the purpose is not listed at all.

Both are pages (``limit``, ``offset``) with the total. Nothing here records the listing:
the route does, naming each client listed, so that every client's controller finds the
listing among the client's disclosures.
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import select

from consent.policy import ANY_PURPOSE, BasisKind
from domain.agencies import AgencyKind
from domain.application import AccordApplication, Actor
from domain.categories import DataCategory
from domain.clients import Client
from domain.errors import InvalidCommand
from domain.identity import Identity, IdentityErased
from domain.permissions import Action, require
from domain.vocabulary import Purpose
from infra import dialect
from infra.dialect import as_utc
from infra.keys import FieldVault
from infra.schema import facts, policy_erasures
from projections import queries
from projections.reports.episodes import DISCHARGED, EPISODE_ENDED, EPISODE_STARTED, episodes
from projections.reports.model import ReportFact
from projections.reports.stored_log import StoredLog
from projections.search import SHOWN_FIELDS
from projections.views import AgencyViews, ViewItem

T = TypeVar("T")

#: The most one page lists, and how many it lists unless asked.
MAX_PAGE = 100
DEFAULT_PAGE = 25


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its items, and where it sits in the whole."""

    items: list[T]
    total: int
    limit: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        """Where the next page starts; None on the last."""
        following = self.offset + self.limit
        return following if following < self.total else None


def _page(entries: list[T], limit: int, offset: int) -> Page[T]:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidCommand("limit", f"must be from 1 to {MAX_PAGE}")
    if offset < 0:
        raise InvalidCommand("offset", "must not be negative")
    return Page(entries[offset:offset + limit], len(entries), limit, offset)


# -- a treatment provider's caseload ---------------------------------------------------------


@dataclass(frozen=True)
class CaseloadEntry:
    """A client in treatment with the caller's agency.

    ``episode_started`` is when the most recently started open episode began, with its
    ``modality`` and ``key_worker`` (as that episode's start names them); ``modalities``
    lists every open episode's. ``identity`` is the name and date of birth from the
    agency's own registration of the client (None if another agency registered them, or
    ``identity_erased``). ``starts`` are the log positions of the open episodes' starts
    (what the entry shows, for the access record)."""

    client_id: UUID
    episode_started: datetime
    modality: str | None
    modalities: list[str]
    key_worker: str | None
    identity: dict[str, Any] | None
    identity_erased: bool
    starts: list[int]


#: The agency's own facts of the kinds that open and close episodes, with the fact's view
#: row on the agency's own record (a fact its own view no longer holds is not counted).
_EPISODE_FACTS = (
    "SELECT f.client_id, f.position, f.fact_type, f.occurred_at, f.data "
    "FROM accord_facts f JOIN accord_view_rows v ON v.client_id = f.client_id "
    "AND v.agency = :agency AND v.purpose = :any AND v.position = f.position "
    "AND v.basis_kind = :controller "
    "WHERE f.controller = :agency AND f.fact_type IN (:started, :ended, :discharged) "
    "ORDER BY f.client_id, f.position"
)


def caseload(app: AccordApplication, views: AgencyViews, by: Actor, *,
             limit: int = DEFAULT_PAGE, offset: int = 0) -> Page[CaseloadEntry]:
    """The caller's treatment provider's clients with an open treatment episode, the most
    recently started first. Only a treatment provider has a caseload; any other agency
    states a purpose and gets its cohort (``cohort``)."""
    require(Action.LIST_CLIENTS, by)
    if by.agency_kind is not AgencyKind.TREATMENT_PROVIDER:
        raise InvalidCommand("purpose", "state the purpose: only a treatment provider has a "
                                        "caseload without one")
    _page([], limit, offset)  # the paging is checked before anything is read
    with views.engine.connect() as conn:
        rows = dialect.run(conn, _EPISODE_FACTS, agency=by.agency, any=ANY_PURPOSE,
                           controller=BasisKind.CONTROLLER.value, started=EPISODE_STARTED,
                           ended=EPISODE_ENDED, discharged=DISCHARGED).all()
    by_client: dict[str, list[ReportFact]] = defaultdict(list)
    for row in rows:
        by_client[row.client_id].append(ReportFact(
            client=row.client_id, position=row.position, fact_type=row.fact_type,
            occurred_at=as_utc(row.occurred_at), controller=by.agency,
            data=json.loads(row.data)))
    in_treatment = []
    for client, story in by_client.items():
        current = open_episodes(story)
        if current:
            in_treatment.append((client, current))
    in_treatment.sort(key=lambda entry: (entry[1][-1].occurred_at, entry[0]), reverse=True)
    page = _page(in_treatment, limit, offset)
    listed = [UUID(hex=client) for client, _ in page.items]
    erased = _erased(views, listed)
    registered = identities(app, views, listed, registrar=by.agency)
    entries = []
    for client, starts in page.items:
        client_id = UUID(hex=client)
        latest = starts[-1]
        named = next((s.data.get("key_worker") for s in reversed(starts)
                      if s.data.get("key_worker")), None)
        identity = _fields(registered.get(client_id), SHOWN_FIELDS)
        entries.append(CaseloadEntry(
            client_id=client_id, episode_started=latest.occurred_at,
            modality=_text(latest.data.get("modality")),
            modalities=sorted({m for s in starts if (m := _text(s.data.get("modality")))}),
            key_worker=_text(named), identity=identity, identity_erased=client_id in erased,
            starts=[s.position for s in starts]))
    return Page(entries, page.total, page.limit, page.offset)


def open_episodes(story: list[ReportFact]) -> list[ReportFact]:
    """The start facts of a client's open episodes (from its episode facts in log order),
    the earliest started first; none if the client is not in treatment."""
    starts = {fact.position: fact for fact in story if fact.fact_type == EPISODE_STARTED}
    current = [starts[e.start_position] for e in episodes(story) if e.end is None]
    return sorted(current, key=lambda fact: (fact.occurred_at, fact.position))


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _erased(views: AgencyViews, client_ids: list[UUID]) -> set[UUID]:
    if not client_ids:
        return set()
    query = select(policy_erasures.c.client_id).where(
        policy_erasures.c.client_id.in_([c.hex for c in client_ids]))
    with views.engine.connect() as conn:
        return {UUID(hex=c) for c in conn.execute(query).scalars()}


def identities(app: AccordApplication, views: AgencyViews, client_ids: Iterable[UUID], *,
               registrar: str | None = None) -> dict[UUID, Identity]:
    """The identities of these clients (only of those ``registrar`` registered, if
    given), opened together: the registrations read from the log in one query and the
    data keys in another, for a page of a list. An erased client's is left out. Only for
    clients whose identity the caller may see."""
    wanted = sorted(set(client_ids))
    if not wanted:
        return {}
    with views.engine.connect() as conn:
        registrations = StoredLog(app, conn).registrations(wanted)
    sealed = {client_id: str(event.sealed_identity)
              for client_id, event in registrations.items()
              if isinstance(event, Client.Registered)
              and (registrar is None or event.controller == registrar)}
    vault = app.vault
    if isinstance(vault, FieldVault):
        return vault.open_many(sealed)
    opened = {}
    for client_id, text in sealed.items():
        with contextlib.suppress(IdentityErased):
            opened[client_id] = vault.open(client_id, text)
    return opened


def _fields(identity: Identity | None, fields: Iterable[str]) -> dict[str, Any] | None:
    """Those fields of the identity (None for no identity, or no field)."""
    if identity is None:
        return None
    full = identity.model_dump(mode="json")
    shown = {k: full[k] for k in fields}
    return shown or None


def registered_by(views: AgencyViews, client_id: UUID) -> str | None:
    """The agency that registered the client (its identity fact's controller), as the
    views copied it; None for an unknown client."""
    query = select(facts.c.controller).where(
        facts.c.client_id == client_id.hex,
        facts.c.category == DataCategory.IDENTITY.value).limit(1)
    with views.engine.connect() as conn:
        found: str | None = conn.execute(query).scalar_one_or_none()
    return found


# -- a partner's cohort for a purpose -----------------------------------------------------------


@dataclass(frozen=True)
class CohortEntry:
    """A client the caller's agency may see something of for the purpose.

    ``identity`` holds the name and date of birth fields its share of the client's
    identity names (None: it may not be told who they are); ``latest`` is when the most
    recent fact it may see (its registration aside) happened; ``controllers`` are the
    agencies whose data it sees; ``shown`` the items the entry rests on (for the access
    record)."""

    client_id: UUID
    identity: dict[str, Any] | None
    latest: datetime | None
    controllers: list[str]
    shown: list[ViewItem]


#: The clients with a row in the agency's view for the purpose that holds at ``:at`` and
#: has its ground (as a view shows it), with the latest such row's position, most recent
#: first. The candidates are the clients the agency's shares can reach (a client's own
#: shares, or a standing share's controller's facts of the category), so only their rows
#: are looked up, each by the rows' primary key.
_COHORT = (
    "SELECT v.client_id, MAX(v.position) AS latest FROM accord_view_rows v "
    "JOIN accord_view_grounds g ON g.ground = v.ground "
    "WHERE v.client_id IN ("
    " SELECT s.client_id FROM accord_view_shares s WHERE s.agency = :agency"
    " AND s.purpose IN (:purpose, :any) AND s.client_id IS NOT NULL"
    " UNION SELECT f.client_id FROM accord_view_shares s JOIN accord_facts f"
    " ON f.controller = s.controller AND f.category = s.category"
    " WHERE s.agency = :agency AND s.purpose IN (:purpose, :any) AND s.client_id IS NULL) "
    "AND v.agency = :agency AND v.purpose IN (:purpose, :any) "
    "AND (v.not_before IS NULL OR v.not_before <= :at) "
    "AND (v.not_after IS NULL OR v.not_after > :at) "
    "GROUP BY v.client_id ORDER BY latest DESC, v.client_id"
)


def cohort(app: AccordApplication, views: AgencyViews, by: Actor, purpose: Purpose, *,
           limit: int = DEFAULT_PAGE, offset: int = 0) -> Page[CohortEntry]:
    """The clients the caller's agency may see anything of for ``purpose``, the one with
    the most recent fact it may see first: exactly those whose view for the purpose would
    show something now. Names only where its share of identity names them."""
    require(Action.LIST_CLIENTS, by)
    _page([], limit, offset)
    with views.engine.connect() as conn:
        rows = dialect.run(conn, _COHORT, agency=by.agency, purpose=purpose.value,
                           any=ANY_PURPOSE,
                           at=dialect.of(conn).stamp(datetime.now(UTC))).all()
    page = _page([UUID(hex=row.client_id) for row in rows], limit, offset)
    seen = {client_id: items for client_id in page.items
            if (items := queries.visible_items(views, by, client_id, purpose)[2])}
    # The name and date of birth fields each share of identity names (as the view would
    # show them), the identities opened together, and only those.
    named = {client_id: _shared_fields(items) for client_id, items in seen.items()}
    opened = identities(app, views, [c for c, fields in named.items() if fields])
    entries = []
    for client_id, items in seen.items():  # one no longer shown (changed since) is left out
        facts_seen = [i.occurred_at for i in items if i.category != DataCategory.IDENTITY.value]
        entries.append(CohortEntry(
            client_id=client_id, identity=_fields(opened.get(client_id), named[client_id]),
            latest=max(facts_seen) if facts_seen else None,
            controllers=sorted({i.controller for i in items}), shown=_bases(items)))
    return Page(entries, page.total, page.limit, page.offset)


def _shared_fields(items: list[ViewItem]) -> list[str]:
    """The name and date of birth fields the caller's share of the client's identity
    names (none without such a share)."""
    identity = [i for i in items if i.category == DataCategory.IDENTITY.value]
    if not identity:
        return []
    fields = identity[0].fields
    return [k for k in SHOWN_FIELDS if fields is None or k in fields]


def _bases(items: list[ViewItem]) -> list[ViewItem]:
    """What listing a client discloses, for the access record: its identity item if
    there is one, and one item per controller and basis on which the agency sees the
    client (that the person is a client known to those agencies)."""
    chosen: dict[tuple[Any, ...], ViewItem] = {}
    for item in items:
        key = (item.category == DataCategory.IDENTITY.value, item.controller,
               item.basis.get("kind"), item.basis.get("agreement_id"),
               item.basis.get("consent_id"), item.basis.get("grant_id"))
        chosen.setdefault(key, item)
    return list(chosen.values())
