"""What accord accepts from outside as text, dates, times and log positions.

Python and pydantic's lax mode accept more than accord can store or than a partner can
mean, and each of these once reached the log or the database:

- a lone surrogate (``"x\\ud800"``, legal in JSON) cannot be encoded as UTF-8, so saving
  it failed with a 500;
- NUL cannot be stored in PostgreSQL text or JSON: a fact carrying one stopped the
  agency views' projector (every partner's view) at that position, for good;
- a name made only of NUL, zero-width or other invisible characters names nobody;
- ``"²"`` and ``"١٢"`` pass ``str.isdigit()`` but are not log positions (``int("²")``
  raises), and 20 digits overflow the databases' 64-bit integers;
- ``"0"``, ``0`` and ``0.5`` parse as seconds since 1970 where a date or a time is meant.

The annotated types here refuse them at the edge, with a message the API returns as a
422 naming the field. They are used by the API's request models and query parameters and
by the domain models that take input (identity, agreement terms, fact payloads).

Validation of what is already stored (an identity being opened, an agreement's earlier
terms) passes ``STORED`` as the validation context: text accepted before these checks
existed must still open, so the text checks are skipped there (stored dates are ISO 8601
strings already, which the strict parsers accept).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, Field, ValidationInfo
from pydantic.functional_validators import AfterValidator

#: The validation context for re-reading stored state: see the module docstring.
STORED = {"accord.stored": True}
#: The log's positions are 64-bit signed integers in both databases.
MAX_POSITION = 2**63 - 1
#: Free text may span lines; every other control character is refused.
_TEXT_CONTROLS_ALLOWED = frozenset("\t\n\r")
#: Categories of characters one can see: letters, numbers, punctuation and symbols.
_VISIBLE = ("L", "N", "P", "S")
_POSITION = re.compile(r"[0-9]{1,19}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,9})?)?"
    r"([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?"
)


def _stored(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("accord.stored"))


def _encodable(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode text (it holds a lone surrogate, "
                         "e.g. \\ud800)") from None


def _visible(value: str, what: str) -> None:
    if not any(unicodedata.category(ch).startswith(_VISIBLE) for ch in value):
        raise ValueError(f"{what} must contain letters, digits or punctuation, not only "
                         "spaces, zero-width or control characters")


def checked_text(value: str, info: ValidationInfo) -> str:
    """Free text (a reason, a note, a title): valid Unicode, no control characters other
    than tab and line breaks (NUL above all), and something visible."""
    if _stored(info):
        return value
    _encodable(value)
    if any(unicodedata.category(ch) == "Cc" and ch not in _TEXT_CONTROLS_ALLOWED
           for ch in value):
        raise ValueError("must not contain control characters such as NUL")
    _visible(value, "text")
    return value


def checked_name(value: str, info: ValidationInfo) -> str:
    """A name (a person's, a principal's, an agency's): one line of valid Unicode with no
    control characters at all, and something visible. Zero-width joiners inside a name
    are kept (some scripts need them); a name made only of them is refused."""
    if _stored(info):
        return value
    _encodable(value)
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain control characters such as NUL or line breaks")
    _visible(value, "a name")
    return value


def whole_number(value: Any) -> Any:
    """A log position written in ASCII digits (``"²"``, ``"١٢"``, ``"1_0"``, ``" 5"`` and
    20 digits are refused); integers from JSON pass through to the range check."""
    if isinstance(value, bool) or (isinstance(value, str) and not _POSITION.fullmatch(value)):
        raise ValueError("give a log position as a whole number in ASCII digits "
                         f"(1 to {MAX_POSITION})")
    return value


def parse_position(raw: str) -> int:
    """A log position from text (``at`` on the replay, ``Last-Event-ID``); ValueError
    for anything but 1 to 19 ASCII digits in the 64-bit range."""
    whole_number(raw)
    position = int(raw)
    if not 1 <= position <= MAX_POSITION:
        raise ValueError(f"a log position is from 1 to {MAX_POSITION}")
    return position


def iso_date(value: Any) -> Any:
    """A calendar date as ISO 8601 ``YYYY-MM-DD``; never a number of seconds since 1970."""
    if isinstance(value, datetime):
        raise ValueError("give a date as YYYY-MM-DD (ISO 8601), without a time")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        if _ISO_DATE.fullmatch(value):
            return value
        raise ValueError("give a date as YYYY-MM-DD (ISO 8601)")
    raise ValueError("give a date as YYYY-MM-DD (ISO 8601), not a number")


def iso_datetime(value: Any) -> Any:
    """A moment as ISO 8601 ``YYYY-MM-DDTHH:MM[:SS[.fff]]`` with an optional zone; never a
    number of seconds since 1970."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        if _ISO_DATETIME.fullmatch(value):
            return value
        raise ValueError("give a time as ISO 8601, e.g. 2026-01-05T09:30:00Z")
    raise ValueError("give a time as ISO 8601, e.g. 2026-01-05T09:30:00Z, not a number")


def parse_moment(raw: str) -> datetime:
    """An ISO 8601 moment from text (``at`` on the replay); ValueError otherwise."""
    iso_datetime(raw)
    return datetime.fromisoformat(raw.replace(",", "."))


#: Free text: see ``checked_text``.
Text = Annotated[str, AfterValidator(checked_text)]
#: A name: see ``checked_name``.
Name = Annotated[str, AfterValidator(checked_name)]
#: A calendar date, strictly ISO 8601.
IsoDate = Annotated[date, BeforeValidator(iso_date)]
#: A moment, strictly ISO 8601, with a time zone.
AwareIsoDatetime = Annotated[AwareDatetime, BeforeValidator(iso_datetime)]
#: A position in the partnership's log (query parameters: ``min_position``, ``position``,
#: ``tree_size``...). The range comes first so that the OpenAPI document shows it.
LogPosition = Annotated[int, Field(ge=1, le=MAX_POSITION), BeforeValidator(whole_number)]


_ISO_DURATION = re.compile(
    r"P(?:(?P<weeks>[0-9]{1,4})W)?(?:(?P<days>[0-9]{1,5})D)?"
    r"(?:T(?:(?P<hours>[0-9]{1,6})H)?(?:(?P<minutes>[0-9]{1,7})M)?(?:(?P<seconds>[0-9]{1,9})S)?)?"
)
#: The longest span a duration may name (ten years): longer is a mistake, not an age.
MAX_DURATION = timedelta(days=3653)


def iso_duration(value: Any) -> Any:
    """A span of time as an ISO 8601 duration in weeks, days, hours, minutes and seconds
    (``PT4H``, ``P2D``, ``P1DT12H``): never a bare number (seconds? hours?), and no years
    or months (their length varies). Longer than ten years, or nothing, is refused."""
    if isinstance(value, timedelta):
        return value
    found = _ISO_DURATION.fullmatch(value) if isinstance(value, str) else None
    if found is None or value in ("P", "PT") or value.endswith("T"):
        raise ValueError("give a duration as ISO 8601, e.g. PT4H or P2D (weeks, days, "
                         "hours, minutes and seconds)")
    span = timedelta(**{unit: int(amount) for unit, amount in found.groupdict().items()
                        if amount is not None})
    if not timedelta(0) < span <= MAX_DURATION:
        raise ValueError("give a duration of more than nothing and at most ten years")
    return span


#: A span of time, strictly ISO 8601 (``PT4H``): see ``iso_duration``.
IsoDuration = Annotated[timedelta, BeforeValidator(iso_duration)]
