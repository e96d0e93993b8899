"""Signing in to the web application: sessions, their end, CSRF, and where sign-in leads.

Each test signs in through the sign-in form as a browser would (``ui_sign_in``) and
checks what a user relies on: the cookie a script cannot read and no other site sends;
a revoked token or 15 idle minutes ending the session with a message, never an error
page; a form without its CSRF token changing nothing; sign-in never sending anyone to
another site.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from api.ui.sessions import COOKIE, IDLE_MINUTES, SessionStore
from domain.agencies import Role
from domain.application import OPERATOR
from domain.tokens import parse_bearer_token
from tests.builders import Partnership, browser_of, changes, csrf_in, ui_sign_in


def _store(api: TestClient) -> SessionStore:
    store: SessionStore = api.app.state.ui_sessions  # type: ignore[attr-defined]
    return store


def _sign_in_form(client: TestClient, token: str, next_path: str = "/ui",
                  check: str | None = None) -> object:
    form = client.get("/ui/sign-in")
    return client.post("/ui/sign-in", follow_redirects=False, data={
        "token": token, "next_path": next_path,
        "csrf_token": check if check is not None else csrf_in(form.text)})


def test_a_page_asked_for_without_a_session_leads_to_sign_in_and_back(
        api: TestClient, partnership: Partnership) -> None:
    asked = api.get("/ui?x=1", follow_redirects=False)
    assert asked.status_code == 303
    target = urlsplit(asked.headers["location"])
    assert target.path == "/ui/sign-in"
    assert parse_qs(target.query)["next"] == ["/ui?x=1"]
    page = api.get(asked.headers["location"])
    assert "Sign in to continue." in page.text
    signed = api.post("/ui/sign-in", follow_redirects=False, data={
        "token": partnership.token("tp", Role.PRACTITIONER), "next_path": "/ui?x=1",
        "csrf_token": csrf_in(page.text)})
    assert signed.status_code == 303
    assert signed.headers["location"] == "/ui?x=1"
    assert "tp practitioner" in api.get("/ui").text


def test_the_session_cookie_is_httponly_strict_and_scoped(
        api: TestClient, partnership: Partnership) -> None:
    answer = _sign_in_form(api, partnership.token("tp", Role.PRACTITIONER))
    cookie = answer.headers["set-cookie"]  # type: ignore[attr-defined]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over HTTPS it is Secure
    secure = TestClient(api.app, base_url="https://accord.example")
    answer = _sign_in_form(secure, partnership.token("tp", Role.PRACTITIONER))
    assert "Secure" in answer.headers["set-cookie"]  # type: ignore[attr-defined]


def test_the_token_is_never_kept_only_a_hash_of_the_session(
        api: TestClient, partnership: Partnership, accord: object) -> None:
    token = partnership.token("tp", Role.PRACTITIONER)
    answer = _sign_in_form(api, token)
    session_id = answer.cookies[COOKIE]  # type: ignore[attr-defined]
    from sqlalchemy import select

    from infra.schema import ui_sessions
    with _store(api).engine.connect() as conn:
        rows = [tuple(str(v) for v in row) for row in conn.execute(select(ui_sessions))]
    stored = repr(rows)
    assert session_id not in stored
    assert token not in stored and token.split("_", 2)[2] not in stored  # the secret


@pytest.mark.parametrize("token", ["", "accord_nonsense", "x" * 150])
def test_a_wrong_token_gets_the_form_again_saying_so(
        api: TestClient, partnership: Partnership, token: str) -> None:
    before = changes(partnership.accord)
    answer = _sign_in_form(api, token)
    assert answer.status_code in (401, 422)  # type: ignore[attr-defined]
    text = answer.text  # type: ignore[attr-defined]
    assert "There is a problem" in text
    assert COOKIE not in answer.headers.get("set-cookie", "")  # type: ignore[attr-defined]
    assert changes(partnership.accord) == before


def test_a_revoked_token_cannot_sign_in_and_ends_its_sessions(
        api: TestClient, partnership: Partnership) -> None:
    token = partnership.token("tp", Role.PRACTITIONER)
    ui_sign_in(api, token)
    other = browser_of(api)
    ui_sign_in(other, token)
    assert api.get("/ui", follow_redirects=False).status_code == 200
    principal_id, _ = parse_bearer_token(token)
    partnership.accord.app.revoke_principal(principal_id, "left the service", OPERATOR)
    for browser in (api, other):
        answer = browser.get("/ui", follow_redirects=False)
        assert answer.status_code == 303
        assert "why=revoked" in answer.headers["location"]
        assert "has been revoked" in browser.get(answer.headers["location"]).text
    assert "not recognised, or it has been revoked" in _sign_in_form(
        browser_of(api), token).text  # type: ignore[attr-defined]


def test_a_session_idle_for_15_minutes_ends_with_a_message(
        api: TestClient, partnership: Partnership) -> None:
    ui_sign_in(api, partnership.token("tp", Role.PRACTITIONER))
    store = _store(api)
    start = datetime.now(UTC)
    store.clock = lambda: start + timedelta(minutes=IDLE_MINUTES - 1)
    assert api.get("/ui", follow_redirects=False).status_code == 200
    # Each request restarts the idle time: another 14 minutes later it still holds.
    store.clock = lambda: start + timedelta(minutes=2 * IDLE_MINUTES - 2)
    assert api.get("/ui", follow_redirects=False).status_code == 200
    store.clock = lambda: start + timedelta(minutes=3 * IDLE_MINUTES)
    answer = api.get("/ui", follow_redirects=False)
    assert answer.status_code == 303
    assert "why=idle" in answer.headers["location"]
    page = api.get(answer.headers["location"])
    assert f"signed out after {IDLE_MINUTES} minutes without activity" in page.text
    store.clock = lambda: datetime.now(UTC) + timedelta(minutes=3 * IDLE_MINUTES)
    assert api.get("/ui", follow_redirects=False).status_code == 303  # ended, not revived


def test_a_made_up_or_ended_session_cookie_goes_to_sign_in(api: TestClient) -> None:
    api.cookies.set(COOKIE, "made-up", path="/ui")
    answer = api.get("/ui", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/ui/sign-in")


def test_sign_out_needs_the_csrf_token_and_ends_the_session(
        api: TestClient, partnership: Partnership) -> None:
    csrf = ui_sign_in(api, partnership.token("tp", Role.PRACTITIONER))
    refused = api.post("/ui/sign-out", data={"csrf_token": "forged"}, follow_redirects=False)
    assert refused.status_code == 403
    assert "not from accord" in refused.text
    assert api.get("/ui", follow_redirects=False).status_code == 200  # still signed in
    answer = api.post("/ui/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    assert "why=signed_out" in answer.headers["location"]
    assert api.get("/ui", follow_redirects=False).status_code == 303


def test_each_session_has_its_own_csrf_token(api: TestClient,
                                             partnership: Partnership) -> None:
    mine = ui_sign_in(api, partnership.token("tp", Role.PRACTITIONER))
    other = browser_of(api)
    theirs = ui_sign_in(other, partnership.token("tp", Role.PRACTITIONER))
    assert mine != theirs
    refused = api.post("/ui/sign-out", data={"csrf_token": theirs}, follow_redirects=False)
    assert refused.status_code == 403
    # The header htmx sends is accepted in place of the form field.
    answer = api.post("/ui/sign-out", headers={"X-CSRF-Token": mine}, follow_redirects=False)
    assert answer.status_code == 303


def test_the_sign_in_form_needs_its_own_check(api: TestClient,
                                              partnership: Partnership) -> None:
    """Another site cannot sign a browser in as someone else (login CSRF)."""
    answer = _sign_in_form(api, partnership.token("tp", Role.PRACTITIONER), check="forged")
    assert answer.status_code == 403  # type: ignore[attr-defined]
    assert api.get("/ui", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("next_path", [
    "https://evil.example/", "//evil.example/ui", "/\\evil.example", "/v1/agencies",
    "javascript:alert(1)", "/ui/sign-out",
])
def test_sign_in_never_sends_anyone_away(api: TestClient, partnership: Partnership,
                                         next_path: str) -> None:
    answer = _sign_in_form(api, partnership.token("tp", Role.PRACTITIONER), next_path)
    assert answer.headers["location"] == "/ui"  # type: ignore[attr-defined]


def test_pages_are_not_cached_framed_or_given_inline_script(
        api: TestClient, partnership: Partnership) -> None:
    ui_sign_in(api, partnership.token("tp", Role.PRACTITIONER))
    page = api.get("/ui")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert f'nonce="{nonce}"' in page.text
    assert api.get("/", follow_redirects=False).headers["location"] == "/ui"


def test_an_unknown_page_is_a_page_not_a_stack_trace(
        api: TestClient, partnership: Partnership) -> None:
    ui_sign_in(api, partnership.token("tp", Role.PRACTITIONER))
    answer = api.get("/ui/no-such-page")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in answer.text
