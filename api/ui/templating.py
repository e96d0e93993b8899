"""Rendering pages: Jinja2 with the NHS.UK design system's templates, autoescaped.

Every page extends ``base.html`` (the NHS.UK page template): it shows who is signed in,
for which agency and role, and only the navigation that role may use, as the permission
table says (``domain.permissions.permits``), so the menu never offers a page that would
refuse its reader. Each response gets a fresh nonce for the one inline script the NHS.UK
template needs, and a Content-Security-Policy that allows nothing else inline.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChainableUndefined, ChoiceLoader, Environment, FileSystemLoader, PackageLoader
from markupsafe import Markup

from domain.agencies import Role
from domain.permissions import Action, permits
from domain.results import Actor

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
#: Where the vendored assets are served; the versions are in their URLs so that a browser
#: holding an older copy asks again after an update (api/ui/static/README.md).
STATIC_PATH = "/ui/static"
ASSET_VERSIONS = {"nhsuk-frontend": "10.6.1", "htmx": "2.0.11"}

#: The roles as the partnership says them.
ROLE_NAMES: Mapping[Role, str] = {
    Role.PRACTITIONER: "Practitioner",
    Role.SAFEGUARDING: "Safeguarding team",
    Role.IG_LEAD: "Information governance lead",
    Role.COMMISSIONER: "Commissioner",
    Role.ADMIN: "Agency administrator",
    Role.PARTNERSHIP_ADMIN: "Partnership administrator",
}


@dataclass(frozen=True)
class NavItem:
    """One entry of the header's navigation: shown to whoever may take its action."""

    text: str
    href: str
    action: Action


#: The web application's sections, in the order the header lists them. Page modules
#: register theirs with ``add_section`` when they are imported.
SECTIONS: list[NavItem] = []


def add_section(text: str, href: str, action: Action) -> None:
    if all(item.href != href for item in SECTIONS):
        SECTIONS.append(NavItem(text, href, action))


def navigation(actor: Actor | None, current_path: str) -> list[dict[str, Any]]:
    """The sections ``actor`` may use, marked current where the page is within one."""
    if actor is None:
        return []
    return [
        {"text": item.text, "href": item.href,
         "current": current_path == item.href or current_path.startswith(item.href + "/")}
        for item in SECTIONS if permits(item.action, actor.role, actor.agency_kind)
    ]


def _environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(TEMPLATES), PackageLoader("nhsuk_frontend_jinja")]),
        # The NHS.UK macros read optional parameters through chains (params.a.b).
        undefined=ChainableUndefined,
        # Every template escapes what it prints, whatever its file name: free text from
        # the record (a note, a reason, a name) is always shown as text.
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates are package files: no need to stat each (and every macro file it
        # imports) on every render to see whether it changed.
        auto_reload=False,
        cache_size=-1,
    )
    env.globals["static"] = static_url
    env.globals["component"] = component
    env.globals["role_name"] = lambda role: ROLE_NAMES.get(Role(role), str(role))
    env.filters["when"] = _when
    env.filters["day"] = _day
    env.filters["words"] = lambda value: str(value).replace("_", " ")
    env.globals["query"] = lambda **params: urlencode(
        {k: v for k, v in params.items() if v not in (None, "")})
    return env


#: The NHS.UK components a page may render through ``component`` (their macros' names).
COMPONENTS = {"select": "select", "button": "button", "checkboxes": "checkboxes",
              "radios": "radios", "input": "input", "tag": "tag"}


def component(name: str, params: Mapping[str, Any]) -> Markup:
    """An NHS.UK component, rendered by its own macro and remembered by its parameters:
    a page's filters and pickers are rendered with the same few values again and again,
    and each macro costs more than the rest of a page's content. Only plain values go in
    (text, never pre-rendered HTML): what the macro escapes, it still escapes."""
    return _component(name, json.dumps(params, sort_keys=True, default=str))


@functools.lru_cache(maxsize=4096)
def _component(name: str, params: str) -> Markup:
    macro = getattr(ENVIRONMENT.get_template(
        f"nhsuk/components/{name}/macro.jinja").module, COMPONENTS[name])
    return Markup(macro(json.loads(params)))  # noqa: S704  (the macro's own escaped output)


def static_url(path: str) -> str:
    package = "htmx" if path.startswith("htmx") else "nhsuk-frontend"
    return f"{STATIC_PATH}/{path}?v={ASSET_VERSIONS[package]}"


def _when(value: Any) -> str:
    """A moment as people read it: 3 Mar 2026, 14:05 (UTC)."""
    if value is None or value == "":
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        return moment.strftime("%-d %b %Y, %H:%M")
    return moment.strftime("%-d %b %Y, %H:%M UTC")


def _day(value: Any) -> str:
    """A date as people read it: 3 March 2026."""
    if value is None or value == "":
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        return text
    return datetime(day.year, day.month, day.day).strftime("%-d %B %Y")


ENVIRONMENT = _environment()

#: What a page may load: its own scripts and styles, images from itself (and inline SVG
#: data), the NHS fonts; no frames, no form posts elsewhere, no plugins.
CSP = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
       "img-src 'self' data:; font-src 'self' https://assets.nhs.uk; connect-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")


@functools.lru_cache(maxsize=1024)
def _header(name: str, role: str, agency: str,
            sections: tuple[tuple[str, str, bool], ...], csrf_token: str) -> Markup:
    actor = {"name": name, "role": role, "agency": agency} if name else None
    return Markup(ENVIRONMENT.get_template("chrome_header.html").render(  # noqa: S704
        actor=actor, csrf_token=csrf_token,
        navigation=[{"text": t, "href": h, "current": c} for t, h, c in sections]))


@functools.cache
def _footer() -> Markup:
    return Markup(ENVIRONMENT.get_template("chrome_footer.html").render())  # noqa: S704


def chrome(actor: Actor | None, sections: list[dict[str, Any]], csrf_token: str
           ) -> tuple[Markup, Markup]:
    """The page's header and footer, rendered by our own autoescaping templates and
    remembered: a header depends only on who is signed in, the section the page is in
    and the session's CSRF token (its sign-out form), so it is rendered once for each."""
    key = tuple((s["text"], s["href"], bool(s["current"])) for s in sections)
    if actor is None:
        return _header("", "", "", key, csrf_token), _footer()
    return _header(actor.name, str(actor.role), actor.agency, key, csrf_token), _footer()


def render(request: Request, template: str, context: Mapping[str, Any] | None = None, *,
           status_code: int = 200, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """A whole page, or a fragment for htmx (``template`` decides which it is)."""
    nonce = secrets.token_urlsafe(16)
    actor: Actor | None = getattr(request.state, "actor", None)
    session = getattr(request.state, "session", None)
    csrf_token = session.csrf_token if session is not None else ""
    sections = navigation(actor, request.url.path)
    header, footer = chrome(actor, sections, csrf_token)
    values: dict[str, Any] = {
        "request": request,
        "actor": actor,
        "csrf_token": csrf_token,
        "navigation": sections,
        "chrome_header": header,
        "chrome_footer": footer,
        "cspNonce": nonce,
        "path": request.url.path,
        **(context or {}),
    }
    html = ENVIRONMENT.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
    response.headers["Content-Security-Policy"] = CSP.format(nonce=nonce)
    return response
