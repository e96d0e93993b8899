"""The index of dates of birth a name search starts from (``projections.search.BirthIndex``),
on both databases: what it holds (a keyed fingerprint, never the date), that it fills
itself for clients registered before it existed, that erasure frees a client's row, and
that a rebuild equals what following the log wrote."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from sqlalchemy import select

from api.bootstrap import Accord
from domain.agencies import Role
from domain.application import Actor
from infra.schema import client_births
from projections.search import BirthIndex
from tests.builders import Partnership, identity, nhs_number

BORN = date(1985, 4, 12)


def _worker(partnership: Partnership, role: Role = Role.PRACTITIONER) -> Actor:
    return partnership.accord.app.authenticate(partnership.token("tp", role))


def _register(partnership: Partnership, seq: int, family_name: str,
              born: date = BORN) -> UUID:
    client_id, _ = partnership.accord.app.register_client(
        identity(nhs_number=nhs_number(seq), family_name=family_name,
                 date_of_birth=born.isoformat()), _worker(partnership))
    return client_id


def _rows(accord: Accord) -> list[tuple[str, str]]:
    with accord.engine.connect() as conn:
        return sorted((r.fingerprint, r.client_id) for r in conn.execute(select(client_births)))


def test_the_index_finds_the_clients_born_on_a_day_by_a_keyed_fingerprint(
    partnership: Partnership,
) -> None:
    accord = partnership.accord
    twins = [_register(partnership, 1, "Smith"), _register(partnership, 2, "Smyth")]
    other = _register(partnership, 3, "Smith", date(1990, 1, 1))
    births = accord.find(BirthIndex)
    births.catch_up()
    assert births.born_on(BORN) == sorted(twins, key=lambda c: c.hex)
    assert births.born_on(date(1990, 1, 1)) == [other]
    assert births.born_on(date(2000, 2, 2)) == []
    rows = _rows(accord)
    assert len(rows) == 3
    # A keyed hash: neither the date nor an unkeyed digest of it is stored.
    assert all(BORN.isoformat() not in fingerprint and len(fingerprint) == 64
               for fingerprint, _ in rows)


def test_it_fills_itself_for_clients_registered_before_it_existed(
    partnership: Partnership,
) -> None:
    """A database from before the index: its table and position are empty, and the
    registrations are in the log; at start the index follows the log from its beginning."""
    accord = partnership.accord
    client_id = _register(partnership, 1, "Smith")
    births = accord.find(BirthIndex)
    births.empty()  # as a database from before the index holds it: nothing, position 0
    assert births.position() == 0 and _rows(accord) == []
    accord.catch_up()
    assert births.born_on(BORN) == [client_id]
    assert births.position() == accord.app.head_position()


def test_erasure_frees_the_row_and_a_rebuild_never_indexes_the_erased(
    partnership: Partnership,
) -> None:
    accord = partnership.accord
    app = accord.app
    kept, erased = _register(partnership, 1, "Smith"), _register(partnership, 2, "Smyth")
    births = accord.find(BirthIndex)
    births.catch_up()
    assert set(births.born_on(BORN)) == {kept, erased}
    app.erase_client(erased, "the person asked to be forgotten",
                     _worker(partnership, Role.IG_LEAD))
    births.catch_up()
    assert births.born_on(BORN) == [kept]
    incremental = _rows(accord)
    # A rebuild reads the registration and the erasure in one batch (the key is gone).
    births.rebuild()
    assert _rows(accord) == incremental
    # A fresh follower, starting from nothing, writes the same.
    fresh = BirthIndex(app, accord.engine, batch_size=1)
    fresh.rebuild()
    assert _rows(accord) == incremental
