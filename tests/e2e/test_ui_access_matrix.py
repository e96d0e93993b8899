"""Who may open which page: every page of the web application x every role x whose data.

The web application's routes are enumerated from the app, as the API's are in
``test_access_matrix``, and read the same permission table through their guards
(``api.deps.page``). So:

* every page route declares exactly one action (the few that only need a session, or
  none, are listed here by name), and the table has an entry for it;
* a signed-in caller whose role, in its agency's kind, the table refuses gets the 403
  page (for a form: with a valid CSRF token), and nothing is appended to the log;
* nobody without a session reaches a page: every route sends them to sign in;
* a page about a client (``{client_id}``) shows another agency's client to a permitted
  role of a partner with no basis exactly as it shows a client that does not exist: the
  same 404 page, byte for byte but for the per-response nonce;
* no page answers 5xx to any of these, and none shows a stack trace.

No data-sharing agreement is in force, so no partner has a basis to see a client.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.deps import route_actions
from domain.agencies import AgencyKind, Role
from domain.permissions import PERMISSIONS, permits
from tests.builders import (
    AGENCIES,
    Partnership,
    browser_of,
    changes,
    register,
    ui_sign_in,
)

#: Pages for anyone: signing in, and ``/`` (which leads to ``/ui``).
PUBLIC = {("GET", "/"), ("GET", "/ui/sign-in"), ("POST", "/ui/sign-in")}
#: Pages for any signed-in principal, whatever its role: the start page and signing out.
SESSION_ONLY = {("GET", "/ui"), ("POST", "/ui/sign-out")}
ROLES = tuple(Role)
#: A value for each query parameter a page requires, by name.
QUERY_VALUES = {"purpose": "direct_care"}
NONCE = re.compile(r"nonce[-=]\"?[A-Za-z0-9_\-]+")


def is_page(path: str) -> bool:
    return path == "/" or path == "/ui" or path.startswith("/ui/")


def page_routes(app: FastAPI) -> Iterator[tuple[str, str, APIRoute]]:
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    for context in iterate(app.routes) if iterate else app.routes:
        route = getattr(context, "original_route", context)
        path = getattr(context, "path", None)
        if not isinstance(route, APIRoute) or not path or not is_page(path):
            continue
        for method in sorted((context.methods or set()) - {"HEAD"}):
            yield method, path, route


def required_query(route: APIRoute) -> dict[str, str]:
    """The query parameters the route cannot do without, with a valid value each."""
    found: dict[str, str] = {}
    for param in route.dependant.query_params:
        if param.field_info.is_required():
            name = param.alias or param.name
            assert name in QUERY_VALUES, f"{route.path}: give QUERY_VALUES a {name!r}"
            found[name] = QUERY_VALUES[name]
    return found


def url_for(path: str, route: APIRoute, client_id: str) -> str:
    """The route's path with every parameter filled: the client given, a random id for
    anything else (so most are "not found": the point is the guard, and no 5xx)."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "client_id":
            return client_id
        if name in ("position",):
            return "1"
        return str(uuid.uuid4())

    url = re.sub(r"\{([a-z_]+)(?::[a-z]+)?\}", fill, path)
    query = required_query(route)
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


@pytest.fixture
def signed_in(api: TestClient, partnership: Partnership) -> dict[tuple[str, Role], Any]:
    """A browser signed in as each role of tp, tp2, police and the commissioner."""
    browsers: dict[tuple[str, Role], Any] = {}
    for agency in ("tp", "tp2", "police", "commissioner"):
        for role in ROLES:
            browser = browser_of(api)
            csrf = ui_sign_in(browser, partnership.token(agency, role))
            browsers[(agency, role)] = (browser, csrf)
    return browsers


def test_every_page_declares_one_action(api: TestClient) -> None:
    declared = route_actions(api.app)  # type: ignore[arg-type]
    wrong = []
    for method, path, _ in page_routes(api.app):  # type: ignore[arg-type]
        guards = declared.get((method, path), [])
        if (method, path) in PUBLIC | SESSION_ONLY:
            if guards:
                wrong.append(f"{method} {path}: listed as open to all, but checks roles")
        elif len(guards) != 1:
            wrong.append(f"{method} {path}: declares {len(guards)} actions")
        elif guards[0].action not in PERMISSIONS:
            wrong.append(f"{method} {path}: {guards[0].action} is not in the table")
    assert not wrong, "\n".join(wrong)


def test_without_a_session_every_page_leads_to_sign_in(
        api: TestClient, partnership: Partnership) -> None:
    client_id = register(api, partnership)
    before = changes(partnership.accord)
    wrong = []
    for method, path, route in page_routes(api.app):  # type: ignore[arg-type]
        if (method, path) in PUBLIC:
            continue
        answer = api.request(method, url_for(path, route, client_id),
                             follow_redirects=False)
        if answer.status_code != 303 or "/ui/sign-in" not in answer.headers.get("location", ""):
            wrong.append(f"{method} {path}: {answer.status_code}")
    assert not wrong, "\n".join(wrong)
    assert changes(partnership.accord) == before


def test_a_role_the_table_refuses_gets_403_and_changes_nothing(
        api: TestClient, partnership: Partnership,
        signed_in: dict[tuple[str, Role], Any]) -> None:
    client_id = register(api, partnership)
    declared = route_actions(api.app)  # type: ignore[arg-type]
    wrong = []
    checked = 0
    for method, path, route in page_routes(api.app):  # type: ignore[arg-type]
        if (method, path) in PUBLIC | SESSION_ONLY:
            continue
        [guard] = declared[(method, path)]
        for agency in ("tp", "police", "commissioner"):
            kind: AgencyKind = AGENCIES[agency]
            for role in ROLES:
                if permits(guard.action, role, kind) or role in guard.refused_on_record:
                    continue
                browser, csrf = signed_in[(agency, role)]
                before = changes(partnership.accord)
                answer = browser.request(
                    method, url_for(path, route, client_id), follow_redirects=False,
                    data={"csrf_token": csrf} if method != "GET" else None)
                checked += 1
                if answer.status_code != 403:
                    wrong.append(f"{method} {path} {role.value}@{agency}: "
                                 f"{answer.status_code}")
                elif "You cannot do this" not in answer.text:
                    wrong.append(f"{method} {path} {role.value}@{agency}: not the 403 page")
                if changes(partnership.accord) != before:
                    wrong.append(f"{method} {path} {role.value}@{agency}: appended to the log")
    assert checked, "no refusals were checked"
    assert not wrong, "\n".join(wrong)


def _same_page(a: str, b: str) -> bool:
    return NONCE.sub("", a) == NONCE.sub("", b)


def test_another_agencys_client_is_the_same_404_as_an_unknown_one(
        api: TestClient, partnership: Partnership,
        signed_in: dict[tuple[str, Role], Any]) -> None:
    """Every page about a client, to every role of a partner (and of the other treatment
    provider) that the table permits: tp's client and a made-up id look the same."""
    client_id = register(api, partnership)
    unknown = str(uuid.uuid4())
    declared = route_actions(api.app)  # type: ignore[arg-type]
    wrong = []
    checked = 0
    for method, path, route in page_routes(api.app):  # type: ignore[arg-type]
        if method != "GET" or "{client_id}" not in path:
            continue
        [guard] = declared[(method, path)]
        for agency in ("tp2", "police", "commissioner"):
            for role in ROLES:
                if not permits(guard.action, role, AGENCIES[agency]):
                    continue
                browser, _ = signed_in[(agency, role)]
                theirs = browser.get(url_for(path, route, client_id))
                made_up = browser.get(url_for(path, route, unknown))
                checked += 1
                if theirs.status_code != made_up.status_code or theirs.status_code == 200:
                    wrong.append(f"{path} {role.value}@{agency}: {theirs.status_code} for "
                                 f"tp's client, {made_up.status_code} for an unknown one")
                elif not _same_page(theirs.text, made_up.text):
                    wrong.append(f"{path} {role.value}@{agency}: the pages differ")
    assert checked, "no client page was checked"
    assert not wrong, "\n".join(wrong)


def test_no_page_shows_a_server_error_to_any_role(
        api: TestClient, partnership: Partnership,
        signed_in: dict[tuple[str, Role], Any]) -> None:
    """Every GET page, as every role of tp on tp's own client (the ``api`` fixture fails
    on any 5xx or stack trace)."""
    client_id = register(api, partnership)
    for method, path, route in page_routes(api.app):  # type: ignore[arg-type]
        if method != "GET" or (method, path) in PUBLIC:
            continue
        for role in ROLES:
            browser, _ = signed_in[("tp", role)]
            answer = browser.get(url_for(path, route, client_id))
            assert answer.status_code < 500, f"{path} {role.value}: {answer.text[:300]}"
            assert "Traceback" not in answer.text
