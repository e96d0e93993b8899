"""Mounts the web application on the API: its pages, its assets, and its answers to
failures (the sign-in page for a missing session, an error page for any refusal; never a
stack trace)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.deps import SignInRequired
from api.ui.routes import ROUTERS
from api.ui.sessions import COOKIE, COOKIE_PATH, Ended
from api.ui.templating import STATIC, STATIC_PATH, render
from api.ui.web_paths import safe_next

log = logging.getLogger("accord.ui")

#: What each refusal is called on its page.
TITLES = {
    400: "The request could not be read",
    403: "You cannot do this",
    404: "Not found",
    409: "This has changed",
    413: "That is too much to send at once",
    422: "There is a problem",
    429: "Too many requests",
    503: "Please try again",
    500: "Sorry, there is a problem with the service",
}


def error_page(request: Request, status: int, detail: str,
               errors: list[dict[str, str]] | None) -> Response:
    """An error as a page in the NHS.UK style: what happened in words, what to do next;
    401 goes to the sign-in page instead (a session that ended is not an error)."""
    if status == 401:
        return sign_in_redirect(request, "none", request.url.path)
    return render(request, "error.html", {
        "status": status, "title": TITLES.get(status, "There is a problem"),
        "detail": detail, "errors": errors or [],
    }, status_code=status)


def sign_in_redirect(request: Request, why: str, next_path: str) -> Response:
    target = "/ui/sign-in?" + urlencode({"next": safe_next(next_path), "why": why})
    if request.headers.get("hx-request"):
        # htmx follows a redirect inside the fragment; ask it to load the page instead.
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def install(api: FastAPI) -> None:
    """Adds the pages, their assets, ``GET /`` (to ``/ui``) and the error pages."""
    api.state.error_page = error_page
    api.mount(STATIC_PATH, StaticFiles(directory=STATIC), name="ui-static")

    @api.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired) -> Response:
        response = sign_in_redirect(request, exc.ended.value, exc.next_path)
        if exc.ended is not Ended.NONE:
            response.delete_cookie(COOKIE, path=COOKIE_PATH)
        return response

    @api.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui", status_code=307)

    for router in ROUTERS:
        api.include_router(router)
