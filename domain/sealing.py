"""Free text that can identify a person, sealed under the client's own data key.

A clinical note, a safeguarding concern's summary, a care plan's goals and a police
reference can name the client (or lead to them) as surely as their identity does. The
catalogue names those fields of each fact type (``FactType.free_text``); before a fact
enters the log, each of their texts is sealed with the client's data key, as the identity
is (``IdentityVault.seal_texts``: ``sealed:v1:<base64>``, bound to the client). Erasure
destroys that key, so it erases the text everywhere the fact went: the log, the views'
copy of the facts, the safeguarding rules' copy and the reports keep only the sealed form.

Readers open the text where they show it (``opened``): the controller's record, a view,
a chronology, a replay. Once the client is erased the text is gone (``None``). A fact
recorded before free text was sealed holds it in plain text in the log, which is
append-only: it cannot be removed from there, but no reader shows it once the client is
erased (``opened`` withholds every free-text field of an erased client, sealed or not).
Reasons given for an action (a correction, a withdrawal, a hold, a restriction) are the
client's business too: those on the client's own stream that accord adds for erasure and
restriction are sealed the same way (``seal_reason``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from domain.catalogue import CATALOGUE
from domain.identity import SEALED_TEXT_PREFIX, IdentityErased, IdentityVault


def free_text_fields(fact_type: str) -> tuple[str, ...]:
    """The fields of a fact type whose text is sealed (none for an unknown type)."""
    entry = CATALOGUE.get(fact_type)
    return entry.free_text if entry is not None else ()


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_TEXT_PREFIX)


def _texts(value: Any) -> list[str]:
    """The strings a free-text field holds (one, or a list of them, as a care plan's goals)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def seal_payload(vault: IdentityVault, client_id: UUID, fact_type: str,
                 data: Mapping[str, Any]) -> dict[str, Any]:
    """The payload (validated already) with each text of its free-text fields sealed;
    IdentityErased if the client's data key is destroyed. One read of the key for all."""
    fields = [name for name in free_text_fields(fact_type) if data.get(name) is not None]
    if not fields:
        return dict(data)
    plain = [text for name in fields for text in _texts(data[name])]
    sealed = iter(vault.seal_texts(client_id, plain))
    result = dict(data)
    for name in fields:
        value = data[name]
        result[name] = [next(sealed) for _ in value] if isinstance(value, list) else next(sealed)
    return result


def seal_reason(vault: IdentityVault, client_id: UUID, reason: str) -> str:
    """A reason stated about one client (a legal hold, a restriction, a restricted read),
    sealed with the client's data key: it may name them, and goes with them on erasure."""
    return vault.seal_texts(client_id, [reason])[0]


def open_reason(vault: IdentityVault, client_id: UUID, sealed: str | None) -> str | None:
    """``seal_reason``'s text; None once the client is erased. Text that is not sealed is
    returned as it is."""
    if sealed is None or not is_sealed(sealed):
        return sealed
    try:
        return vault.open_texts(client_id, [sealed])[0]
    except IdentityErased:
        return None


def opened(vault: IdentityVault, client_id: UUID,
           payloads: Sequence[tuple[str, Mapping[str, Any] | None]]) -> list[dict[str, Any] | None]:
    """Each (fact type, payload) of one client with its sealed texts opened, the data key
    read once for them all (not at all if they hold no free text). Once the client is erased,
    every free-text field is None, whether sealed or (recorded before sealing) plain; a
    payload that is None (a withheld fact) stays None."""
    texts = [text for fact_type, data in payloads if data is not None
             for name in free_text_fields(fact_type) for text in _texts(data.get(name))]
    sealed = [text for text in texts if is_sealed(text)]
    erased = False
    plain: dict[str, str] = {}
    if texts:  # text recorded before sealing is shown only while the key is there
        try:
            plain = dict(zip(sealed, vault.open_texts(client_id, sealed), strict=True))
        except IdentityErased:
            erased = True
    return [None if data is None else _open_one(fact_type, data, plain, erased)
            for fact_type, data in payloads]


def _open_one(fact_type: str, data: Mapping[str, Any], plain: Mapping[str, str],
              erased: bool) -> dict[str, Any]:
    result = dict(data)
    for name in free_text_fields(fact_type):
        value = data.get(name)
        if value is None or name not in data:
            continue
        if erased:
            result[name] = None
        elif isinstance(value, list):
            result[name] = [plain.get(item, item) if isinstance(item, str) else item
                            for item in value]
        elif isinstance(value, str):
            result[name] = plain.get(value, value)
    return result


def erased_payload(fact_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The payload with every free-text field withheld (None), sealed or not: what a
    reader shows of an erased client's fact."""
    return _open_one(fact_type, data, {}, erased=True)


def plain_text_withheld(fact_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The payload with every free-text field that is not sealed (recorded before free
    text was sealed) withheld: what a read model keeps of an erased client's fact. Sealed
    text stays as the log holds it: nobody can open it any more."""
    result = dict(data)
    for name in free_text_fields(fact_type):
        value = data.get(name)
        texts = value if isinstance(value, list) else [value]
        if value is not None and not all(is_sealed(text) for text in texts):
            result[name] = None
    return result


def held_back(fact_type: str, data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A payload as it may leave accord on a feed: without its free-text fields (the
    message names them; the text is read through the API, where it is opened, and goes
    with the client's data key on erasure, which a message already sent could not)."""
    fields = [name for name in free_text_fields(fact_type) if name in data]
    return {k: v for k, v in data.items() if k not in fields}, fields

