"""What every response says about itself, and the interactive reference served offline.

- Every response under ``/v1`` gets ``Cache-Control: no-store``: nearly all of them carry
  client data or could (an error naming a client, a match), and no browser, proxy or
  shared cache should keep a copy. Marking every one is simpler and safer than choosing.
- Every response gets ``X-Content-Type-Options: nosniff``, so that a browser never takes
  a JSON answer (which may echo what a caller sent) for HTML or script.
- ``accord serve`` runs uvicorn with ``server_header=False``: the server does not say what
  it is (``api/cli.py``).
- ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) load their scripts, styles and favicon
  from ``/docs/assets/``, which serves the copies vendored in ``api/static/`` (versions
  and licences in ``api/static/README.md``), never from a CDN: partner networks are often
  without internet access, and a page of the API should not load code from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The routes that answer with client data (or could): all of the API.
API_PREFIX = "/v1"
#: The web application's pages (client data too) and its static assets (none).
UI_PREFIX = "/ui"
UI_STATIC = "/ui/static/"
STATIC = Path(__file__).parent / "static"
ASSET_PATH = "/docs/assets"
#: The vendored versions; they are also in each asset's URL, so a browser that cached an
#: earlier version asks again after an update.
ASSET_VERSIONS = {"swagger-ui-dist": "5.35.0", "redoc": "2.5.4"}
#: Every asset served: its name in the URL -> (file under ``api/static``, media type).
ASSETS = {
    "swagger-ui-bundle.js": ("swagger-ui/swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": ("swagger-ui/swagger-ui.css", "text/css"),
    "favicon.png": ("swagger-ui/favicon-32x32.png", "image/png"),
    "redoc.standalone.js": ("redoc/redoc.standalone.js", "text/javascript"),
}


class SecurityHeaders:
    """Adds ``X-Content-Type-Options: nosniff`` to every response and ``Cache-Control:
    no-store`` to every response under ``/v1`` (errors from the middleware below it, such
    as the body limit's 413, included: install it last, so it is outermost)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        api = path == API_PREFIX or path.startswith(API_PREFIX + "/")
        page = (path == UI_PREFIX or path.startswith(UI_PREFIX + "/")) and not path.startswith(
            UI_STATIC)

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if api or page:
                    headers["Cache-Control"] = "no-store"
                if page:
                    headers["X-Frame-Options"] = "DENY"
                    headers["Referrer-Policy"] = "same-origin"
            await send(message)

        await self.app(scope, receive, marked)


def _asset(request: Request, name: str) -> str:
    version = ASSET_VERSIONS["redoc" if name.startswith("redoc") else "swagger-ui-dist"]
    return f"{request.scope.get('root_path', '')}{ASSET_PATH}/{name}?v={version}"


def install_docs(api: FastAPI) -> None:
    """Serves ``/docs``, ``/docs/oauth2-redirect``, ``/redoc`` and their assets from the
    package. Create the app with ``docs_url=None, redoc_url=None``."""
    title = api.title

    def openapi_url(request: Request) -> str:
        return f"{request.scope.get('root_path', '')}{api.openapi_url}"

    @api.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url(request), title=f"{title} - Swagger UI",
            swagger_js_url=_asset(request, "swagger-ui-bundle.js"),
            swagger_css_url=_asset(request, "swagger-ui.css"),
            swagger_favicon_url=_asset(request, "favicon.png"),
            oauth2_redirect_url=f"{request.scope.get('root_path', '')}/docs/oauth2-redirect",
            # No online validator badge: it would send the document to swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @api.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @api.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url(request), title=f"{title} - ReDoc",
            redoc_js_url=_asset(request, "redoc.standalone.js"),
            redoc_favicon_url=_asset(request, "favicon.png"),
            with_google_fonts=False,
        )

    @api.get(ASSET_PATH + "/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        """One vendored file, by its name in ``ASSETS`` (nothing else under api/static)."""
        entry = ASSETS.get(name)
        if entry is None:
            raise HTTPException(404, "no such asset")
        path, media_type = entry
        return FileResponse(STATIC / path, media_type=media_type,
                            headers={"Cache-Control": "public, max-age=86400"})
