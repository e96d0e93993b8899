"""Finding a person by family name and date of birth, forgiving a typo or a half-typed name.

A match (``projections.queries.match``) looks up one keyed fingerprint of the exact family
name and date of birth: "Smyth" finds nobody registered as "Smith", and "O'Brien" nobody
registered as "OBrien". Names are sealed per client, so no index of them can be searched.
What can be is the date of birth alone: ``BirthIndex`` keeps a keyed fingerprint of each
client's date of birth (a tracked read model, written from the registrations in the log,
so it fills itself for clients registered before it existed, and dropping the row of a
client who is erased). A search finds the few clients born that day, keeps those whose
identity the caller may see for its purpose (the same basis a match needs), and only then
opens their names and compares them with the name asked for, after ``normalise``: the
same name, the start of it (or of one part of a double-barrelled name), or one within a
small Damerau-Levenshtein distance (``tolerance``).

Nothing here records the search: the route does, around the call, never with the name or
date searched for.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from sqlalchemy import Engine, delete, select

from domain.agencies import Role
from domain.application import AccordApplication, Actor
from domain.clients import Client
from domain.errors import ClientNotFound, Forbidden, InvalidCommand
from domain.identity import Identity, IdentityErased, birth_match_key
from domain.permissions import Action, require
from domain.vocabulary import Purpose
from infra import dialect
from infra.keys import FieldVault
from infra.schema import client_births
from projections import queries
from projections.follower import LogFollower
from projections.views import AgencyViews, ViewItem

#: At most how many clients born on one day a search opens (a partnership's clients share
#: a birthday a few at a time; this only bounds the work of a pathological day).
MAX_BORN_ON_A_DAY = 200
#: The identity fields a search result may show, where the caller's share names them.
SHOWN_FIELDS = ("given_name", "family_name", "date_of_birth")


# -- comparing names ---------------------------------------------------------------------


def normalise(name: str) -> str:
    """A name as a search compares it: case and accents dropped, and everything but
    letters (spaces, hyphens, apostrophes) removed, so that "O'Brien", "o brien" and
    "OBRIEN" are the same, as are "Zoë" and "Zoe", and "Straße" and "Strasse"."""
    folded = unicodedata.normalize("NFKD", name.casefold())
    return "".join(ch for ch in folded if unicodedata.category(ch).startswith("L"))


def parts(name: str) -> list[str]:
    """The parts of a double-barrelled or several-word family name, each normalised
    ("Smith-Jones" → ["smith", "jones"])."""
    spaced = "".join(" " if ch == "-" or ch.isspace() else ch for ch in name)
    return [p for p in (normalise(word) for word in spaced.split()) if p]


def distance(a: str, b: str, limit: int | None = None) -> int:
    """The Damerau-Levenshtein distance (optimal string alignment): how many insertions,
    deletions, substitutions or swaps of two neighbouring letters turn ``a`` into ``b``.
    With ``limit``, any answer above it is ``limit + 1`` (and found sooner)."""
    if limit is not None and abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] | None = None
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if (before is not None and i > 1 and j > 1 and ca == b[j - 2]
                    and a[i - 2] == cb):
                current[j] = min(current[j], before[j - 2] + 1)
        if limit is not None and min(current) > limit:
            return limit + 1
        before, previous = previous, current
    found = previous[len(b)]
    return found if limit is None else min(found, limit + 1)


def tolerance(wanted: str) -> int:
    """How many edits a name of this many letters (normalised) may be off by: none for
    three letters or fewer (one edit would match half the names of that length), one up
    to seven, two from eight."""
    if len(wanted) <= 3:
        return 0
    return 1 if len(wanted) <= 7 else 2


class Closeness(StrEnum):
    """How a client's family name matched the one searched for, best first."""

    EXACT = "exact"  # the same name, once normalised
    PARTIAL = "partial"  # the start of the name, or one part of it (or the start of one)
    SIMILAR = "similar"  # within ``tolerance`` edits of the name or one of its parts


def closeness(wanted: str, family_name: str) -> tuple[Closeness, int] | None:
    """How ``family_name`` matches ``wanted`` (already normalised), with the edits it
    took (0 unless similar); None if it does not."""
    if not wanted:
        return None
    full = normalise(family_name)
    if full == wanted:
        return Closeness.EXACT, 0
    pieces = [full, *parts(family_name)]
    if any(piece.startswith(wanted) for piece in pieces):
        return Closeness.PARTIAL, 0
    allowed = tolerance(wanted)
    if allowed == 0:
        return None
    edits = min(distance(wanted, piece, allowed) for piece in pieces)
    return (Closeness.SIMILAR, edits) if edits <= allowed else None


# -- the index of dates of birth ---------------------------------------------------------------

REGISTERED = get_topic(Client.Registered)
ERASED = get_topic(Client.Erased)


class BirthIndex(LogFollower):
    """Keyed fingerprints of clients' dates of birth: a tracked read model of the
    registrations (each identity opened once, its date of birth kept only as a keyed
    hash) and erasures (whose rows it deletes, as the views free the matching index)."""

    name = "client_births"
    doing = "indexing dates of birth"
    tables = (client_births,)

    def __init__(self, app: AccordApplication, engine: Engine, batch_size: int = 2000) -> None:
        super().__init__(app, engine, [REGISTERED, ERASED], batch_size)

    def _process(self, batch: Sequence[Notification], upto: int) -> int:
        sealed: dict[UUID, str] = {}
        erased: set[UUID] = set()
        for notification in batch:
            event = self.app.mapper.to_domain_event(notification)
            if isinstance(event, Client.Registered):
                sealed[event.originator_id] = event.sealed_identity
            elif isinstance(event, Client.Erased):
                erased.add(event.originator_id)
                sealed.pop(event.originator_id, None)
        # Opened before the transaction (an erased client's key is gone: left out).
        rows = [(self.fingerprint(identity.date_of_birth), client_id.hex)
                for client_id, identity in self._open(sealed).items()]
        with self.engine.begin() as conn:
            self._advance(conn, upto)
            dialect.bulk_insert(conn, client_births, rows)
            if erased:
                conn.execute(delete(client_births).where(
                    client_births.c.client_id.in_(sorted(c.hex for c in erased))))
        self.tracking.committed()
        return len(batch)

    def _open(self, sealed: dict[UUID, str]) -> dict[UUID, Identity]:
        vault = self.app.vault
        if isinstance(vault, FieldVault):
            return vault.open_many(sealed)  # the data keys in one query
        opened = {}
        for client_id, text in sealed.items():
            with contextlib.suppress(IdentityErased):
                opened[client_id] = vault.open(client_id, text)
        return opened

    def fingerprint(self, date_of_birth: date) -> str:
        return self.app.vault.fingerprint(birth_match_key(date_of_birth))

    def born_on(self, date_of_birth: date) -> list[UUID]:
        """The clients born on that day (at most ``MAX_BORN_ON_A_DAY``), not erased."""
        query = select(client_births.c.client_id).where(
            client_births.c.fingerprint == self.fingerprint(date_of_birth)
        ).order_by(client_births.c.client_id).limit(MAX_BORN_ON_A_DAY)
        with self.engine.connect() as conn:
            return [UUID(hex=c) for c in conn.execute(query).scalars()]


# -- searching ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A client whose family name matched, as the caller may see them: the identity fields
    its share names (of ``SHOWN_FIELDS``), how close the name was, and the items the
    caller was told of them on (for the access record)."""

    client_id: UUID
    identity: dict[str, Any]
    closeness: Closeness
    edits: int
    bases: list[ViewItem]


def search(app: AccordApplication, views: AgencyViews, births: BirthIndex, by: Actor, *,
           family_name: str, date_of_birth: date, purpose: Purpose | None,
           withhold: Callable[[list[UUID]], None] | None = None) -> list[Candidate]:
    """The clients born on ``date_of_birth`` whose family name is, or starts like, or is
    a typo away from ``family_name``, best first, among those the caller may be told of.

    The caller is told of a client exactly where a match would tell it (the same
    permission, purpose rules and basis: a share of the client's identity for the purpose,
    or for an IG lead its own agency's registration), and only where that share names the
    family name too, since the answer rests on it. Anything else, and no match, is the same
    ``ClientNotFound`` as for an unknown person.

    ``withhold`` is told the clients of exactly this family name and date of birth (as a
    match by name finds them: their keyed fingerprint, no name opened) whom the caller
    was not told of, so that the access record routes the attempt to their controllers."""
    require(Action.MATCH, by)
    if purpose is None and by.role is not Role.IG_LEAD:
        raise InvalidCommand("purpose", "state the purpose of the search")
    wanted = normalise(family_name)
    if not wanted:
        raise InvalidCommand("family_name", "give at least one letter of the family name")
    if purpose is not None and by.role is Role.COMMISSIONER \
            and purpose is not Purpose.COMMISSIONING:
        raise Forbidden("the commissioner role reads only for the purpose commissioning")
    looked_up = purpose or Purpose.DIRECT_CARE  # an IG lead's basis holds for every purpose
    found: list[Candidate] = []
    for client_id in births.born_on(date_of_birth):
        items = queries.identity_basis(views, by, client_id, looked_up)
        fields = items[0].fields if items else ()
        if not items or (fields is not None and "family_name" not in fields):
            continue  # nothing about this person may be compared or told
        try:
            identity = app.identity_of(client_id)
        except (IdentityErased, ClientNotFound):
            continue
        matched = closeness(wanted, identity.family_name)
        if matched is None:
            continue
        full = identity.model_dump(mode="json")
        shown = {k: full[k] for k in SHOWN_FIELDS if fields is None or k in fields}
        found.append(Candidate(client_id, shown, matched[0], matched[1], items))
    if withhold is not None:
        told = {candidate.client_id for candidate in found}
        exact = app.match_keys(None, family_name, date_of_birth)
        withhold([c for c in views.matching_clients(exact) if c not in told])
    if not found:
        raise ClientNotFound()
    order = list(Closeness)
    found.sort(key=lambda c: (order.index(c.closeness), c.edits,
                              normalise(str(c.identity.get("family_name", ""))),
                              normalise(str(c.identity.get("given_name", ""))),
                              c.client_id.hex))
    return found


__all__ = ["MAX_BORN_ON_A_DAY", "BirthIndex", "Candidate", "Closeness", "closeness",
           "distance", "normalise", "parts", "search", "tolerance"]
