"""Treatment episodes, from one client's facts in log order, and NDTMS substance groups.

An episode starts at ``treatment_episode_started`` and ends at ``treatment_episode_ended``
(with its discharge reason) or ``discharged`` (which ends every open episode of the
client with its reason). An end names its modality: it ends the open episode of that
modality, or, when none is open (or the modality is not shared), the most recently started
open episode; an end with nothing open ends nothing. A client may hold episodes of several
modalities at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from domain.catalogue import Substance
from projections.reports.model import ReportFact

EPISODE_STARTED = "treatment_episode_started"
EPISODE_ENDED = "treatment_episode_ended"
DISCHARGED = "discharged"


class SubstanceGroup(StrEnum):
    """NDTMS's four substance groups: any opiate use puts a client in ``opiate`` (crack
    included); otherwise alcohol alone is ``alcohol_only``, alcohol with another drug
    ``alcohol_and_non_opiate``, and drugs other than opiates without alcohol
    ``non_opiate``."""

    OPIATE = "opiate"
    NON_OPIATE = "non_opiate"
    ALCOHOL_ONLY = "alcohol_only"
    ALCOHOL_AND_NON_OPIATE = "alcohol_and_non_opiate"


#: The catalogue's substances NDTMS counts as opiates.
OPIATES = frozenset({Substance.OPIOIDS.value})
ALCOHOL = Substance.ALCOHOL.value


def substance_group(substances: Iterable[str]) -> SubstanceGroup:
    """The NDTMS substance group of an episode's substances (catalogue vocabulary).

    Raises ValueError for no substances: a group is never guessed."""
    named = {str(s) for s in substances}
    if not named:
        raise ValueError("an episode's substance group needs at least one substance")
    if named & OPIATES:
        return SubstanceGroup.OPIATE
    others = named - {ALCOHOL}
    if ALCOHOL in named:
        return SubstanceGroup.ALCOHOL_AND_NON_OPIATE if others else SubstanceGroup.ALCOHOL_ONLY
    return SubstanceGroup.NON_OPIATE


@dataclass(frozen=True)
class Episode:
    """One treatment episode of one client (a pseudonym).

    ``end`` and ``reason`` are None while it is open; ``substance_group`` is None when the
    episode's substances are not shared; ``age_band`` is the band the projection put in the
    start fact's ``data['age_band']`` (the client's age when the episode started), if any.
    """

    client: str
    start: date
    end: date | None
    reason: str | None
    substances: frozenset[str]
    substance_group: SubstanceGroup | None
    modality: str | None
    age_band: str | None
    start_position: int
    end_position: int | None = None

    def open_during(self, first: date, last: date) -> bool:
        """Open on at least one day from ``first`` to ``last`` (both inclusive)."""
        return self.start <= last and (self.end is None or self.end >= first)


def episodes(facts: Sequence[ReportFact]) -> list[Episode]:
    """One client's facts (in log order) → its episodes, in the order they started."""
    closed: list[Episode] = []
    open_: list[Episode] = []
    for fact in sorted(facts, key=lambda f: f.position):
        if fact.fact_type == EPISODE_STARTED:
            substances = frozenset(str(s) for s in fact.data.get("substances") or ())
            modality = fact.data.get("modality")
            age_band = fact.data.get("age_band")
            open_.append(Episode(
                client=fact.client, start=fact.day, end=None, reason=None,
                substances=substances,
                substance_group=substance_group(substances) if substances else None,
                modality=str(modality) if modality is not None else None,
                age_band=str(age_band) if age_band is not None else None,
                start_position=fact.position,
            ))
        elif fact.fact_type == EPISODE_ENDED and open_:
            modality = fact.data.get("modality")
            same = [e for e in open_ if modality is not None and e.modality == modality]
            ending = same[0] if same else open_[-1]
            open_.remove(ending)
            closed.append(_ended(ending, fact, fact.data.get("discharge_reason")))
        elif fact.fact_type == DISCHARGED and open_:
            closed.extend(_ended(e, fact, fact.data.get("reason")) for e in open_)
            open_ = []
    return sorted([*closed, *open_], key=lambda e: e.start_position)


def _ended(episode: Episode, fact: ReportFact, reason: object) -> Episode:
    return replace(episode, end=fact.day, reason=str(reason) if reason is not None else None,
                   end_position=fact.position)
