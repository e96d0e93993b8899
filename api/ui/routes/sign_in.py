"""Signing in with a token, and out.

The token is typed once, into a password field, and checked as the API checks a bearer
token (``AccordApplication.authenticate``); the browser then holds only a session cookie
(``api.ui.sessions``). The sign-in form has its own CSRF token, bound to a short-lived
cookie, so no other site can sign a browser in as someone else."""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.deps import App, Sessions, SignedIn
from api.ui.sessions import COOKIE, COOKIE_PATH, IDLE_MINUTES, Ended
from api.ui.templating import render
from api.ui.web_paths import safe_next
from domain.errors import Unauthenticated
from domain.inputs import Text

router = APIRouter(prefix="/ui", include_in_schema=False)
log = logging.getLogger("accord.ui")

#: The sign-in form's own CSRF cookie (no session exists yet to hold its token).
SIGN_IN_COOKIE = "accord_sign_in"
#: A token is 60-odd characters; anything far longer is not one.
MAX_TOKEN_LENGTH = 200


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _form(request: Request, next_path: str, *, why: str | None = None,
          error: str | None = None, status_code: int = 200) -> Response:
    check = secrets.token_urlsafe(32)
    message = None
    if why is not None:
        try:
            message = Ended(why).message
        except ValueError:
            message = None
    response = render(request, "sign_in.html", {
        "next": safe_next(next_path), "sign_in_check": check, "message": message,
        "error": error, "idle_minutes": IDLE_MINUTES,
    }, status_code=status_code)
    response.set_cookie(SIGN_IN_COOKIE, check, httponly=True, samesite="strict",
                        secure=_secure(request), path="/ui/sign-in", max_age=3600)
    return response


@router.get("/sign-in")
async def sign_in_page(
    request: Request,
    next_path: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
    why: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The sign-in page; ``why`` says why the last session ended."""
    return _form(request, next_path or "/ui", why=why)


@router.post("/sign-in")
async def sign_in(
    request: Request,
    app: App,
    store: Sessions,
    token: Annotated[Text | None, Form(max_length=MAX_TOKEN_LENGTH)] = None,
    next_path: Annotated[Text | None, Form(max_length=2000)] = None,
    csrf_token: Annotated[Text | None, Form(max_length=100)] = None,
) -> Response:
    """Checks the token and starts a session; a wrong token gets the form again, saying
    so in the same words whatever was wrong with it (unknown, malformed or revoked)."""
    next_path = next_path or "/ui"
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    if not expected or not csrf_token or not hmac.compare_digest(expected, csrf_token):
        return _form(request, next_path, status_code=403,
                     error="The sign-in form had expired. Enter your token again.")
    if token is None or not token.strip():
        return _form(request, next_path, status_code=422, error="Enter your token")
    try:
        actor = await run_in_threadpool(app.authenticate, token.strip())
    except Unauthenticated:
        return _form(request, next_path, status_code=401,
                     error="That token is not recognised, or it has been revoked")
    assert actor.principal_id is not None  # a token always names a principal
    session_id, _ = await run_in_threadpool(store.create, actor.principal_id)
    log.info("signed in: principal %s (%s, %s)", actor.principal_id, actor.agency, actor.role)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="strict",
                        secure=_secure(request), path=COOKIE_PATH)
    response.delete_cookie(SIGN_IN_COOKIE, path="/ui/sign-in")
    return response


@router.post("/sign-out")
async def sign_out(request: Request, _: SignedIn, store: Sessions) -> Response:
    """Ends this browser's session (the CSRF token is checked by ``SignedIn``)."""
    cookie = request.cookies.get(COOKIE)
    if cookie:
        await run_in_threadpool(store.end, cookie)
    response = RedirectResponse(f"/ui/sign-in?why={Ended.SIGNED_OUT.value}", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response
