"""Finding people and reading a client: a caseload or cohort, a name search, a chronology.

What a caller may list, find or read is decided by the read side (``projections.caseload``,
``projections.search``, ``projections.chronology``), from the same agency views as a
client's view; a route records the read (each client listed or found is named on the
access record, so it is among that client's disclosures) and renders the result.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.access import returned_item
from api.deps import (
    Access,
    App,
    Births,
    ClientLister,
    Matcher,
    RestrictionReason,
    Viewer,
    Views,
    ViewsCaughtUp,
)
from api.errors import error_responses
from api.models import RecordedByOut, Strict
from domain.access import AccessAction, AccessOutcome
from domain.categories import DataCategory
from domain.errors import ClientNotFound
from domain.inputs import IsoDate, Name
from domain.vocabulary import Purpose
from projections import caseload as lists
from projections import chronology as chronologies
from projections import search as searching
from projections.views import ViewItem

router = APIRouter(prefix="/v1/clients", tags=["finding people"])

#: How far into a list a page may start (a bound, so a page number stays a number).
MAX_OFFSET = 1_000_000


# -- what is sent ------------------------------------------------------------------------


class ListedClientOut(BaseModel):
    """One client of a caseload or a cohort."""

    client_id: UUID
    identity: dict[str, Any] | None = Field(
        default=None, description="given_name, family_name and date_of_birth, as far as the caller "
                          "may see them (its own registration, or the fields its share of "
                          "identity names); null: it may not be told who the client is")
    identity_erased: bool = Field(default=False, description="the identity has been erased")
    episode_started: datetime | None = Field(
        default=None, description="caseload: when the latest open treatment episode started")
    modality: str | None = Field(default=None, description="caseload: that episode's modality")
    modalities: list[str] = Field(default_factory=list,
                                  description="caseload: the modality of every open episode")
    key_worker: str | None = Field(default=None, description="caseload: that episode's key worker")
    latest: datetime | None = Field(
        default=None, description="cohort: when the latest fact the caller may see happened")
    controllers: list[str] = Field(
        default_factory=list, description="cohort: the agencies whose data the caller sees")


class ClientListOut(BaseModel):
    """A page of a caseload (no purpose: a treatment provider's clients in treatment) or
    of a cohort (the clients the caller's agency may see for ``purpose``)."""

    kind: Literal["caseload", "cohort"]
    agency: str
    purpose: Purpose | None
    total: int = Field(description="how many clients the whole list holds")
    limit: int
    offset: int
    next_offset: int | None = Field(description="where the next page starts; null on the last")
    clients: list[ListedClientOut]


class SearchIn(Strict):
    purpose: Purpose | None = Field(default=None, description="why the caller needs to know; "
                                    "required, except for an IG lead finding a client of "
                                    "its own agency (a subject access request)")
    family_name: Name = Field(min_length=1, max_length=100,
                              description="the family name, whole or its start; a typo or "
                                          "two is forgiven in a longer name")
    date_of_birth: IsoDate


class CandidateOut(BaseModel):
    client_id: UUID
    identity: dict[str, Any] = Field(description="given_name, family_name and date_of_birth "
                                                 "as far as the caller's share names them")
    closeness: searching.Closeness = Field(
        description="`exact`; `partial` (the start of the name, or one part of it); "
                    "`similar` (within a typo or two)")
    edits: int = Field(description="how many letters were off (for `similar`)")


class SearchOut(BaseModel):
    candidates: list[CandidateOut] = Field(description="best first")


class ProviderOut(BaseModel):
    agency: str
    name: str
    contact: str | None


class SummaryOut(BaseModel):
    """Computed only from the facts the caller may see, as it may see them."""

    in_treatment: bool | None = Field(description="null: the caller sees no treatment "
                                                   "episode, so cannot tell")
    modalities: list[str]
    episode_started: datetime | None
    key_worker: str | None
    prescriptions: list[dict[str, Any]] = Field(
        description="each medication's latest change unless stopped (the fields shown, "
                    "`since` and `position`)")
    orders: list[dict[str, Any]] = Field(
        description="criminal-justice orders in force: each order's latest status")
    last_attended: dict[str, Any] | None
    open_alerts: int | None = Field(description="the caller agency's open alerts about the "
                                                "client (null unless the caller reads alerts)")
    provider: ProviderOut | None = Field(
        description="the agency holding the client's record, where the caller sees its data")


class ChronologyFactOut(BaseModel):
    position: int
    type: str
    category: str
    controller: str = Field(description="the agency that recorded the fact")
    occurred_at: datetime
    recorded_at: datetime
    recorded_by: RecordedByOut | None = Field(description="who recorded the fact")
    data: dict[str, Any] = Field(description="only the fields the basis shares")
    basis: dict[str, Any] = Field(description="the rule, agreement, consent or duty")
    reason: str


class ChronologyOut(BaseModel):
    client_id: UUID
    agency: str
    purpose: Purpose
    category: DataCategory | None
    position: int = Field(description="the log position this chronology is current to")
    identity: dict[str, Any] | None = Field(
        default=None, description="only the identity fields an agreement shares")
    summary: SummaryOut
    facts: list[ChronologyFactOut] = Field(description="in the order they happened")


def _about(client_id: UUID, item: dict[str, Any]) -> dict[str, Any]:
    """An access record's item about one of the several clients a read concerned."""
    return {**item, "client_id": str(client_id)}


def _listed(client_id: UUID, items: list[ViewItem], identity_shown: bool) -> list[dict[str, Any]]:
    """What listing one client disclosed: its identity (if a name was shown) and that the
    person is a client the listed controllers' data is seen of."""
    return [_about(client_id, returned_item(i.position, "identity", i.controller, i.basis)
                   if i.category == DataCategory.IDENTITY.value
                   else returned_item(None, "listing", i.controller, i.basis))
            for i in items if identity_shown or i.category != DataCategory.IDENTITY.value]


# -- the routes ----------------------------------------------------------------------------


@router.get("", response_model=ClientListOut, responses=error_responses(403, 503))
def list_clients(
    app: App,
    views: Views,
    access: Access,
    actor: ClientLister,
    _: ViewsCaughtUp,
    purpose: Annotated[Purpose | None, Query(
        description="a partner's cohort for this purpose; without one, a treatment "
                    "provider's caseload (its clients in treatment)")] = None,
    limit: Annotated[int, Query(ge=1, le=lists.MAX_PAGE)] = lists.DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ClientListOut:
    """A treatment provider's caseload (no purpose): its clients with an open treatment
    episode, the latest started first, each with the episode's start, modality and key
    worker and the name and date of birth it registered. Or, with a purpose, the caller
    agency's cohort: every client its view for that purpose shows something of, the most
    recently active first, named only where its share of identity names them. A client
    the agency has no basis to see is never listed. The listing is recorded, naming each
    client listed (so it is among that client's disclosures)."""
    with access.reading(actor, AccessAction.LIST_CLIENTS, client_id=None,
                        purpose=purpose.value if purpose else None) as read:
        shown: list[dict[str, Any]] = []
        clients: list[ListedClientOut] = []
        if purpose is None:
            caseload = lists.caseload(app, views, actor, limit=limit, offset=offset)
            page: lists.Page[Any] = caseload
            for entry in caseload.items:
                own = {"kind": "controller"}
                shown += [_about(entry.client_id, returned_item(p, "treatment", actor.agency,
                                                                own)) for p in entry.starts]
                if entry.identity is not None:
                    shown.append(_about(entry.client_id, returned_item(
                        None, "identity", actor.agency, own)))
                clients.append(ListedClientOut(
                    client_id=entry.client_id, identity=entry.identity,
                    identity_erased=entry.identity_erased,
                    episode_started=entry.episode_started, modality=entry.modality,
                    modalities=entry.modalities, key_worker=entry.key_worker))
        else:
            cohort = lists.cohort(app, views, actor, purpose, limit=limit, offset=offset)
            page = cohort
            for member in cohort.items:
                shown += _listed(member.client_id, member.shown, member.identity is not None)
                clients.append(ListedClientOut(
                    client_id=member.client_id, identity=member.identity, latest=member.latest,
                    controllers=member.controllers))
        read.returned(shown, client_ids=[c.client_id for c in clients])
    return ClientListOut(
        kind="caseload" if purpose is None else "cohort", agency=actor.agency,
        purpose=purpose, total=page.total, limit=page.limit, offset=page.offset,
        next_offset=page.next_offset, clients=clients)


@router.post("/search", response_model=SearchOut, responses=error_responses(403, 404, 503))
def search(body: SearchIn, app: App, views: Views, births: Births, access: Access,
           actor: Matcher) -> SearchOut:
    """Finds clients by family name and date of birth, forgiving a typo or a half-typed
    name: the same name, its start (or one part of a double-barrelled name), or one a
    letter or two off (after case, accents, spaces and punctuation are set aside). Several
    matches are all listed, best first, each with the name and date of birth the caller's
    share names, so the caller can choose.

    A client is found exactly where ``POST /v1/clients/match`` would answer: a partner on
    a share of the client's identity for the stated purpose (that names the family name),
    an IG lead for a client its own agency registered. Anything else, and nobody found, is
    the same no-match answer (404) as for an unknown person. Every search is recorded,
    never with the name or date searched for; one that found a client of exactly that
    name and date of birth whom the caller may not be told of names that client for the
    client's controllers' access audit only."""
    with access.reading(actor, AccessAction.MATCH, client_id=None,
                        purpose=body.purpose.value if body.purpose else None) as read:
        try:
            found = searching.search(app, views, births, actor, family_name=body.family_name,
                                     date_of_birth=body.date_of_birth, purpose=body.purpose,
                                     withhold=read.withholding)
        except ClientNotFound:
            read.found_nothing(AccessOutcome.NO_MATCH, "name search")
            raise
        shown = []
        for candidate in found:
            bases = {(i.controller, i.basis.get("kind"), i.basis.get("agreement_id")): i
                     for i in candidate.bases}
            shown += [_about(candidate.client_id, returned_item(
                i.position, "identity", i.controller, i.basis)) for i in bases.values()]
        read.returned(shown, client_ids=[c.client_id for c in found], detail="name search")
    return SearchOut(candidates=[
        CandidateOut(client_id=c.client_id, identity=c.identity, closeness=c.closeness,
                     edits=c.edits) for c in found])


@router.get("/{client_id}/chronology", response_model=ChronologyOut,
            responses=error_responses(403, 404, 503))
def chronology(
    client_id: UUID,
    app: App,
    views: Views,
    access: Access,
    actor: Viewer,
    _: ViewsCaughtUp,
    purpose: Annotated[Purpose, Query(description="why the caller needs to see the client")],
    category: Annotated[DataCategory | None, Query(
        description="list only the facts of this category (the summary reads them all)")
    ] = None,
    restriction_reason: RestrictionReason = None,
) -> ChronologyOut:
    """The caller agency's view of the client for a purpose, in the order things happened
    (optionally one category), each fact naming who recorded it, with a summary at the
    head computed only from what the caller may see: in treatment or not and how, current
    prescriptions, orders in force, the last attended appointment, the caller's open
    alerts about the client (safeguarding staff), and how to reach the agency holding the
    client's record. Refused and not found exactly as the view is (a restricted client's
    controllers state the legal claim, ``restriction_reason``); recorded as a view."""
    with access.reading(actor, AccessAction.VIEW, client_id=client_id,
                        purpose=purpose.value) as read:
        found = chronologies.chronology(app, views, actor, client_id, purpose, category,
                                        restriction_reason)
        read.returned((returned_item(i.position, i.category, i.controller, i.basis)
                       for i in found.shown),
                      detail="; ".join(filter(None, ("chronology", found.legal_claim))))
    summary = found.summary
    return ChronologyOut(
        client_id=found.client_id, agency=found.agency, purpose=found.purpose,
        category=found.category, position=found.position, identity=found.identity,
        summary=SummaryOut(
            in_treatment=summary.in_treatment, modalities=summary.modalities,
            episode_started=summary.episode_started, key_worker=summary.key_worker,
            prescriptions=summary.prescriptions, orders=summary.orders,
            last_attended=summary.last_attended, open_alerts=summary.open_alerts,
            provider=ProviderOut(**vars(summary.provider)) if summary.provider else None),
        facts=[_fact(entry) for entry in found.entries],
    )


def _fact(entry: chronologies.Entry) -> ChronologyFactOut:
    i, who = entry.item, entry.recorded_by
    return ChronologyFactOut(
        position=i.position, type=i.fact_type, category=i.category, controller=i.controller,
        occurred_at=i.occurred_at, recorded_at=i.recorded_at, data=i.data, basis=i.basis,
        reason=i.reason,
        recorded_by=RecordedByOut(id=who.reference, name=who.name, agency=who.agency,
                                  role=who.role) if who else None)

