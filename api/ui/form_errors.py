"""A submitted form, and its problems as the NHS design system shows them: an error
summary at the top linking to each field, and the message beside the field.

The pages of the IG leads and the administrators read their forms with ``submitted`` and
collect what the API's models or commands refused in ``Problems``: a pydantic
``ValidationError`` (``add_validation``, each error's location mapped to the field's
element id) or a domain ``InvalidCommand`` (by its field). Nothing here decides what is
valid: the API's own models and commands do, and the page only says where.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fastapi import Request
from pydantic import ValidationError


@dataclass(frozen=True)
class Submitted:
    """A submitted form's text values by name (several for checkboxes)."""

    values: Mapping[str, Sequence[str]]

    def one(self, name: str) -> str:
        found = self.values.get(name) or []
        return found[0].strip() if found else ""

    def many(self, name: str) -> list[str]:
        return [v.strip() for v in self.values.get(name, []) if v.strip()]

    def day(self, prefix: str) -> tuple[str | None, bool]:
        """A date typed as day, month and year (``prefix[day]`` ...): (ISO date or None
        if all three are empty, whether it is a real date)."""
        parts = [self.one(f"{prefix}[{part}]") for part in ("day", "month", "year")]
        if not any(parts):
            return None, True
        day_text, month, year = parts
        try:
            return date(int(year), int(month), int(day_text)).isoformat(), len(year) == 4
        except ValueError:
            return None, False

    def day_parts(self, prefix: str) -> dict[str, str]:
        """The three parts as typed, to show them again."""
        return {part: self.one(f"{prefix}[{part}]") for part in ("day", "month", "year")}


async def submitted(request: Request) -> Submitted:
    """The form the request carries (the page's guard has read it already for the CSRF
    token; Starlette keeps the parsed form)."""
    data = await request.form()
    return Submitted({key: [v for v in data.getlist(key) if isinstance(v, str)]
                      for key in data})


def day_parts(value: date | str | None) -> dict[str, str]:
    """A stored date as the three parts a date input shows."""
    if value is None or value == "":
        return {"day": "", "month": "", "year": ""}
    day = value if isinstance(value, date) else date.fromisoformat(str(value))
    return {"day": str(day.day), "month": str(day.month), "year": str(day.year)}


@dataclass
class Problems:
    """A form's errors: a message by field id (the first for each field), in the order
    found, for the summary and beside each field."""

    messages: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, message: str, link: str | None = None) -> None:
        if key not in self.messages:
            self.messages[key] = message
            self.links[key] = link or key

    def __bool__(self) -> bool:
        return bool(self.messages)

    def order_by(self, keys: Sequence[str]) -> None:
        """Puts the messages in the order the form asks for its fields."""
        rank = {key: i for i, key in enumerate(keys)}
        self.messages = dict(sorted(self.messages.items(),
                                    key=lambda item: rank.get(item[0], len(rank))))

    def summary(self) -> list[dict[str, str]]:
        return [{"text": message, "href": f"#{self.links[key]}"}
                for key, message in self.messages.items()]

    def add_validation(self, error: ValidationError,
                       where: Callable[[tuple[Any, ...], str], str],
                       words: Mapping[str, str] | None = None) -> None:
        """Each error of a model's validation, at the field ``where`` names for its
        location and message. A value error's own words are kept (the model explains
        itself); otherwise ``words`` says what to do for that field, where it has words."""
        for problem in error.errors():
            key = where(tuple(problem["loc"]), problem["msg"])
            if problem["type"] == "value_error":
                message = str(problem["msg"]).removeprefix("Value error, ")
            else:
                message = (words or {}).get(key) or str(problem["msg"])
            self.add(key, message[:1].upper() + message[1:])
