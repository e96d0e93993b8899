"""Forms generated from a fact type's JSON Schema, as ``GET /v1/event-types`` serves it.

The catalogue (``domain.catalogue``) is data: each fact type's payload schema says what a
practitioner must enter. ``fields_of`` reads that schema into form fields the way the NHS
design system asks for them (a choice of a few as radios, of many as a select, several
choices as checkboxes, a date as day, month and year, a yes or no as two radios, a number
as a text input with a numeric keyboard, a list of short texts as a textarea, one a
line); ``payload_of`` reads a submitted form back into the payload the API takes, and
``errors_of`` turns the API's refusal (the catalogue's validation, field by field) into a
message next to each field, in words. Nothing here decides what is valid: the form sends
what was typed and the catalogue judges it, so a form can never accept what the API
would refuse, nor refuse what it would accept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """How a field is asked for."""

    TEXT = "text"
    TEXTAREA = "textarea"
    INTEGER = "integer"
    NUMBER = "number"
    RADIOS = "radios"
    SELECT = "select"
    CHECKBOXES = "checkboxes"
    YES_NO = "yes_no"
    DATE = "date"
    LINES = "lines"
    GROUP = "group"


#: Up to this many choices are radios; more are a select (NHS service manual).
MAX_RADIOS = 6
#: A text field that may be this long or longer is a textarea.
TEXTAREA_FROM = 280
#: A pattern that only lists its allowed values, ``^(a|b|c)$``: asked as a choice.
_ALTERNATIVES = re.compile(r"^\^\(([A-Za-z0-9_]+(?:\|[A-Za-z0-9_]+)*)\)\$$")
#: Name endings that are units, said in brackets after the label.
_UNITS = {"mg": "mg"}


@dataclass(frozen=True)
class Choice:
    value: str
    text: str


@dataclass(frozen=True)
class FormField:
    """One field of a generated form. ``name`` is the field's path in the payload, dots
    between levels (``substance_use.alcohol``); ``id`` is its element id (a date's day
    input is ``id`` + ``-day``, so the error summary links to it)."""

    name: str
    label: str
    kind: Kind
    required: bool
    hint: str | None = None
    choices: tuple[Choice, ...] = ()
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    max_items: int | None = None
    children: tuple[FormField, ...] = ()

    @property
    def id(self) -> str:
        return "data-" + self.name.replace(".", "-").replace("_", "-")

    @property
    def focus_id(self) -> str:
        """The element the error summary links to: the first input of the field."""
        if self.kind is Kind.DATE:
            return self.id + "-day"
        if self.kind in (Kind.RADIOS, Kind.CHECKBOXES, Kind.YES_NO):
            return self.id
        return self.id

    @property
    def input_name(self) -> str:
        return "data." + self.name

    def walk(self) -> Iterable[FormField]:
        """This field and, for a group, every field within it."""
        yield self
        for child in self.children:
            yield from child.walk()


def words(name: str) -> str:
    """A field or value name as a label: ``daily_dose_mg`` is "Daily dose (mg)"."""
    parts = name.split("_")
    unit = None
    if len(parts) > 1 and parts[-1] in _UNITS:
        unit = _UNITS[parts.pop()]
    text = " ".join(parts).strip()
    text = text[:1].upper() + text[1:]
    return f"{text} ({unit})" if unit else text


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """A schema node with its ``$ref`` followed (siblings of the reference, such as a
    default, kept) and an optional value's ``anyOf [X, null]`` unwrapped to X."""
    result = dict(node)
    ref = result.pop("$ref", None)
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        result = {**defs[ref.removeprefix("#/$defs/")], **result}
    options = result.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            inner = _resolve(kept[0], defs)
            result = {**inner, **{k: v for k, v in result.items() if k != "anyOf"}}
            if "description" in inner and "description" not in node:
                result["description"] = inner["description"]
    return result


def _choices(node: Mapping[str, Any]) -> tuple[Choice, ...] | None:
    values: list[Any] | None = node.get("enum")
    if values is None and isinstance(node.get("pattern"), str):
        matched = _ALTERNATIVES.match(node["pattern"])
        values = matched.group(1).split("|") if matched else None
    if values is None:
        return None
    names = node.get("enumNames")
    texts = list(names) if isinstance(names, list) and len(names) == len(values) else [
        words(str(v)) for v in values]
    return tuple(Choice(str(v), str(t)) for v, t in zip(values, texts, strict=True))


def _hint(node: Mapping[str, Any], kind: Kind) -> str | None:
    hint = _described(node, kind)
    return hint[:1].upper() + hint[1:] if hint else None


def _described(node: Mapping[str, Any], kind: Kind) -> str | None:
    described = node.get("description")
    hint = described.strip().split("\n")[0] if isinstance(described, str) else None
    if kind in (Kind.RADIOS, Kind.SELECT) and hint and "code" in hint.lower():
        return None  # an enum's docstring, about the codes, not for the person typing
    if kind in (Kind.INTEGER, Kind.NUMBER) and hint is None:
        low, high = node.get("minimum"), node.get("maximum")
        if low is not None and high is not None:
            return f"From {_number(low)} to {_number(high)}"
    if kind is Kind.LINES:
        return "One a line" + (f", at most {node['maxItems']}" if node.get("maxItems") else "")
    if kind is Kind.TEXT and hint is None and node.get("pattern") and not _choices(node):
        return None
    return hint


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _field(name: str, node: Mapping[str, Any], required: bool,
           defs: Mapping[str, Any]) -> FormField:
    node = _resolve(node, defs)
    label = words(name.rsplit(".", 1)[-1])
    kind: Kind
    choices = _choices(node) or ()
    children: tuple[FormField, ...] = ()
    kind_of = node.get("type")
    if kind_of == "object":
        kind = Kind.GROUP
        children = tuple(_fields(node, defs, prefix=name + "."))
    elif kind_of == "array":
        items = _resolve(node.get("items", {}), defs)
        choices = _choices(items) or ()
        kind = Kind.CHECKBOXES if choices else Kind.LINES
    elif kind_of == "boolean":
        kind = Kind.YES_NO
        choices = (Choice("true", "Yes"), Choice("false", "No"))
    elif kind_of == "integer":
        kind = Kind.INTEGER
    elif kind_of == "number":
        kind = Kind.NUMBER
    elif node.get("format") == "date":
        kind = Kind.DATE
    elif choices:
        kind = Kind.RADIOS if len(choices) <= MAX_RADIOS else Kind.SELECT
    else:
        long = node.get("maxLength", 0) >= TEXTAREA_FROM
        kind = Kind.TEXTAREA if long else Kind.TEXT
    return FormField(
        name=name, label=label, kind=kind, required=required, hint=_hint(node, kind),
        choices=choices, default=node.get("default"), minimum=node.get("minimum"),
        maximum=node.get("maximum"),
        max_length=node.get("maxLength") or _resolve(node.get("items", {}), defs).get(
            "maxLength"),
        max_items=node.get("maxItems"), children=children)


def _fields(schema: Mapping[str, Any], defs: Mapping[str, Any], prefix: str = ""
            ) -> list[FormField]:
    required = set(schema.get("required", []))
    return [_field(prefix + name, node, name in required, defs)
            for name, node in schema.get("properties", {}).items()]


def fields_of(schema: Mapping[str, Any]) -> list[FormField]:
    """The form for a payload schema (a fact type's ``schema`` from the catalogue)."""
    return _fields(schema, schema.get("$defs", {}))


def every_field(fields: Iterable[FormField]) -> Iterable[FormField]:
    for f in fields:
        yield from f.walk()


# -- what was typed, as the payload --------------------------------------------------------


class Form:
    """A submitted form's values by name (several for checkboxes), as strings."""

    def __init__(self, values: Mapping[str, Sequence[str]]) -> None:
        self.values = values

    def one(self, name: str) -> str:
        found = self.values.get(name) or []
        return found[0].strip() if found else ""

    def many(self, name: str) -> list[str]:
        return [v for v in self.values.get(name, []) if v.strip()]


def _set(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


def _get(source: Mapping[str, Any], path: str) -> Any:
    value: Any = source
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _leaves(data: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Each value of a nested payload with its dotted path (a non-empty mapping is
    walked into; any other value, lists included, is a leaf)."""
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def date_of(form: Form, prefix: str) -> str | None:
    """A date typed as day, month and year (``prefix-day`` ...): ISO ``YYYY-MM-DD`` where
    the three parts are numbers, the parts as typed otherwise (so the API refuses it and
    says so), None if all three are empty."""
    day, month, year = (form.one(f"{prefix}-{part}") for part in ("day", "month", "year"))
    if not (day or month or year):
        return None
    if day.isdigit() and month.isdigit() and year.isdigit() and len(year) == 4:
        return f"{year}-{int(month):02d}-{int(day):02d}"
    return f"{year}-{month}-{day}"


def _number_of(text: str, whole: bool) -> Any:
    """The number typed, or the text as typed (the catalogue refuses it, by name)."""
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return text
    if whole and value.is_integer() and "." not in text:
        return int(value)
    return value if not whole else text


def payload_of(fields: Iterable[FormField], form: Form) -> dict[str, Any]:
    """The payload a form says. An empty field is left out, so the schema's default
    applies, or, if the field is required, the catalogue says it is missing."""
    data: dict[str, Any] = {}
    for f in fields:
        name = f.input_name
        value: Any = None
        if f.kind is Kind.GROUP:
            # Members' names are whole paths (``group.member``): they place themselves.
            for path, value in _leaves(payload_of(f.children, form)):
                _set(data, path, value)
            if f.required:
                _set(data, f.name, _get(data, f.name) or {})
            continue
        if f.kind is Kind.CHECKBOXES:
            chosen = form.many(name)
            if chosen or f.required:
                _set(data, f.name, chosen)
            continue
        if f.kind is Kind.LINES:
            lines = [line.strip() for line in form.one(name).splitlines() if line.strip()]
            if lines or f.required:
                _set(data, f.name, lines)
            continue
        if f.kind is Kind.DATE:
            value = date_of(form, f.id)
        else:
            text = form.one(name)
            if text == "":
                value = None
            elif f.kind is Kind.YES_NO:
                value = {"true": True, "false": False}.get(text, text)
            elif f.kind in (Kind.INTEGER, Kind.NUMBER):
                value = _number_of(text, f.kind is Kind.INTEGER)
            else:
                value = text
        if value is not None:
            _set(data, f.name, value)
    return data


def values_of(fields: Iterable[FormField], data: Mapping[str, Any] | None,
              form: Form | None) -> dict[str, Any]:
    """What each field shows: as typed (a form sent back with errors), else the
    payload's value (amending a fact), else the schema's default."""
    shown: dict[str, Any] = {}
    for f in every_field(fields):
        if f.kind is Kind.GROUP:
            continue
        if form is not None:
            if f.kind is Kind.CHECKBOXES:
                shown[f.name] = form.many(f.input_name)
            elif f.kind is Kind.DATE:
                shown[f.name] = {p: form.one(f"{f.id}-{p}") for p in ("day", "month", "year")}
            else:
                shown[f.name] = form.values.get(f.input_name, [""])[0]
            continue
        value = _get(data, f.name) if data is not None else None
        if value is None and data is None:
            value = f.default
        shown[f.name] = _shown(f, value)
    return shown


def _shown(f: FormField, value: Any) -> Any:
    if f.kind is Kind.CHECKBOXES:
        return [str(v) for v in value or []]
    if f.kind is Kind.LINES:
        return "\n".join(str(v) for v in value or [])
    if f.kind is Kind.DATE:
        if not value:
            return {"day": "", "month": "", "year": ""}
        day = date.fromisoformat(str(value))
        return {"day": str(day.day), "month": str(day.month), "year": str(day.year)}
    if f.kind is Kind.YES_NO:
        return "" if value is None else ("true" if value else "false")
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- the catalogue's refusal, in words -----------------------------------------------------


def _message(f: FormField, problem: str, *, one_line: bool = False) -> str:
    """What to say next to a field the catalogue refused (NHS service manual style: say
    what to do, name the field, no codes); ``one_line``: the refusal was of one item of a
    list (a line of a list of texts)."""
    label = f.label.lower() if f.label[:1].isupper() and not f.label[:2].isupper() else f.label
    missing = problem.lower().startswith("field required") or "at least 1 item" in problem
    if f.kind in (Kind.RADIOS, Kind.SELECT, Kind.YES_NO):
        return f"Select {label}" if missing else f"Choose one of the options for {label}"
    if f.kind is Kind.CHECKBOXES:
        if f.max_items is not None and "at most" in problem:
            return f"Select no more than {f.max_items} for {label}"
        return f"Select at least one for {label}"
    if f.kind is Kind.DATE:
        return f"Enter {label}" if missing else f"{f.label} must be a real date"
    if f.kind in (Kind.INTEGER, Kind.NUMBER):
        what = "a whole number" if f.kind is Kind.INTEGER else "a number"
        if missing:
            return f"Enter {label}"
        if f.minimum is not None and f.maximum is not None:
            return f"{f.label} must be {what} from {_number(f.minimum)} to {_number(f.maximum)}"
        return f"{f.label} must be {what}"
    if f.kind is Kind.LINES:
        if missing:
            return f"Enter at least one line for {label}"
        if one_line and f.max_length is not None and "at most" in problem:
            return f"Each line of {label} must be {f.max_length} characters or fewer"
        if "at most" in problem and f.max_items is not None:
            return f"Enter no more than {f.max_items} lines for {label}"
        return f"{f.label}: {problem}"
    if missing:
        return f"Enter {label}"
    if f.max_length is not None and "at most" in problem:
        return f"{f.label} must be {f.max_length} characters or fewer"
    if "pattern" in problem:
        return f"Enter {label} in the right format"
    return f"{f.label}: {problem[:1].lower()}{problem[1:]}"


def errors_of(fields: Iterable[FormField], refused: Iterable[Mapping[str, str]],
              prefix: str = "data.") -> dict[str, str]:
    """The API's field errors (``{"field": "data.x.y", "message"}``, as the catalogue
    raises them) as a message for each form field, by the field's name; an error on a
    part of a field (a line of a list, a group's member) goes to the field it is in."""
    by_name = {f.name: f for f in every_field(fields)}
    found: dict[str, str] = {}
    for error in refused:
        path = error.get("field", "")
        if not path.startswith(prefix):
            continue
        parts = path.removeprefix(prefix).split(".")
        depth = len(parts)
        while parts and ".".join(parts) not in by_name:
            parts.pop()
        if not parts:
            continue
        f = by_name[".".join(parts)]
        if f.kind is Kind.GROUP:
            # A missing group member's name follows the group's: say it at the member.
            continue
        found.setdefault(f.name, _message(f, error.get("message", ""),
                                          one_line=depth > len(parts)))
    return found


@dataclass
class FieldErrors:
    """A form's errors: a message by field id, in the order the form asks for them, for
    the error summary (each linking to its field) and beside each field."""

    messages: dict[str, str] = field(default_factory=dict)
    order: list[tuple[str, str]] = field(default_factory=list)

    def add(self, key: str, link: str, message: str) -> None:
        if key not in self.messages:
            self.messages[key] = message
            self.order.append((link, message))

    def __bool__(self) -> bool:
        return bool(self.messages)

    def summary(self) -> list[dict[str, str]]:
        return [{"text": message, "href": f"#{link}"} for link, message in self.order]


def choice_labels(schema: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Each choice field's values with the words a form offers for them, by the field's
    path (to show a recorded code, an ethnic category say, as the form named it)."""
    return {f.name: {c.value: c.text for c in f.choices}
            for f in every_field(fields_of(schema))
            if f.choices and f.kind is not Kind.YES_NO}
