"""Every failure becomes a JSON error with a clear message; nothing leaks a stack trace."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.access import AccessNotRecorded
from api.models import ErrorBody, InvalidInputBody
from domain.catalogue import InvalidPayload, UnknownFactType
from domain.errors import (
    AccordError,
    ClientAlreadyRegistered,
    Conflict,
    Forbidden,
    InvalidCommand,
    NotFound,
    Unauthenticated,
)

log = logging.getLogger("accord.api")


#: What each error status means in accord, said once for the whole API. The OpenAPI
#: document describes every error answer from this table, with accord's error body
#: (``{"detail", "errors": [{"field", "message"}]}``), so what ``/docs`` and generated
#: clients expect is what the API sends.
ERROR_STATUSES: dict[int, str] = {
    400: "the request body could not be read (not UTF-8 JSON); `errors` names `body`",
    401: "no valid, unrevoked bearer token",
    403: "the caller's role or agency may not do this; `detail` says why",
    404: "unknown, or not visible to the caller: the two answers are identical, so a "
         "partner cannot tell whether a person is a client",
    409: "conflicts with what is recorded (a duplicate, a second close or withdrawal, or a "
         "concurrent write to the same record that lost twice)",
    413: "the request body is larger than `ACCORD_MAX_BODY_BYTES`",
    422: "invalid input, changing nothing; `errors` names each invalid field",
    503: "the access record of this request could not be written, so nothing was "
         "returned or changed",
}

#: The body each status is documented with, where it is not ``ErrorBody``.
ERROR_BODIES: dict[int, type[BaseModel]] = {422: InvalidInputBody}


def error_responses(*statuses: int,
                    bodies: dict[int, type[BaseModel]] | None = None,
                    ) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=``: the errors it can give because of what it does, each with
    its meaning and body from ``ERROR_STATUSES``; ``bodies`` names a richer body for one
    status (``ClientExistsBody`` for a 409 that carries the existing client).

    A route lists 403 (a role or agency it refuses), 404 (something it looks up), 409 (a
    write that can conflict) and 503 (a recorded read or refused write). The errors that
    follow from an operation's shape are added to every operation by ``install``: 401
    where it needs a token, 422 where it takes any input, 400 and 413 where it takes a
    body. Listing those here as well is harmless."""
    unknown = [s for s in statuses if s not in ERROR_STATUSES]
    if unknown:
        raise ValueError(f"no meaning in ERROR_STATUSES for {unknown}")
    chosen = {**ERROR_BODIES, **(bodies or {})}
    return {status: {"model": chosen.get(status, ErrorBody),
                     "description": ERROR_STATUSES[status]}
            for status in sorted(statuses)}


def _schema_ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _add_model(components: dict[str, Any], model: type[BaseModel]) -> None:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}",
                                     mode="serialization")
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault(model.__name__, schema)


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERROR_STATUSES[status],
        "content": {"application/json": {
            "schema": _schema_ref(ERROR_BODIES.get(status, ErrorBody))}},
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {
            "description": "`Bearer`: send `Authorization: Bearer <token>`",
            "schema": {"type": "string"}}}
    return response


def document_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Completes an OpenAPI document (in place) with the errors each operation can give
    because of its shape, and drops FastAPI's own 422 body, which accord never sends.

    401 where the operation needs a token; 422 (``InvalidInputBody``) where it takes any
    parameter or a body; 400 and 413 where it takes a body (the body-size limit and the
    JSON parser answer before any route runs). What a route declares itself is kept,
    except a 422 documented as FastAPI's ``HTTPValidationError``."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    models: list[type[BaseModel]] = [ErrorBody, *ERROR_BODIES.values()]
    for model in models:
        _add_model(components, model)
    fastapi_422 = "#/components/schemas/HTTPValidationError"
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            shape: list[int] = []
            if operation.get("security"):
                shape.append(401)
            if operation.get("requestBody"):
                shape += [400, 413]
            if operation.get("parameters") or operation.get("requestBody"):
                shape.append(422)
            declared_422 = responses.get("422", {}).get("content", {})
            if fastapi_422 in str(declared_422):
                del responses["422"]
            for status in shape:
                responses.setdefault(str(status), _error_response(status))
            operation["responses"] = dict(sorted(responses.items()))
    if fastapi_422 not in str(document.get("paths")):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
    return document


def error(status: int, detail: str, errors: list[dict[str, str]] | None = None,
          **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


#: Renders an error as a page for the web application (``api.ui`` sets it): status,
#: detail, the invalid fields, and any extra values of the JSON body.
ErrorPage = Callable[[Request, int, str, list[dict[str, str]] | None], Response]


def _answer(request: Request, status: int, detail: str,
            errors: list[dict[str, str]] | None = None, **extra: Any) -> Response:
    """The error as JSON for the API, or as a page under ``/ui`` (the same refusal, the
    same words: the web application maps no exception of its own)."""
    page: ErrorPage | None = getattr(request.app.state, "error_page", None)
    if page is not None and (request.url.path == "/ui" or request.url.path.startswith("/ui/")):
        return page(request, status, detail, errors)
    return error(status, detail, errors, **extra)


def install(app: FastAPI) -> None:
    """Every failure becomes accord's JSON error, and ``/openapi.json`` says so."""
    generate = app.openapi
    completed: dict[str, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        document = generate()  # FastAPI's, cached until the routes change
        if completed.get("document") is not document:
            completed["document"] = document_errors(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": "body", "message": "the request body is not valid JSON"}
            if e["type"] == "json_invalid"
            else {"field": _field(tuple(e["loc"])), "message": e["msg"]}
            for e in exc.errors()
        ]
        names = ", ".join(e["field"] for e in errors)
        return _answer(request, 422, f"invalid input: {names}", errors)

    @app.exception_handler(InvalidPayload)
    async def invalid_payload(request: Request, exc: InvalidPayload) -> Response:
        names = ", ".join(e["field"] for e in exc.errors)
        return _answer(request, 422, f"invalid {exc.fact_type} payload: {names}", exc.errors)

    @app.exception_handler(UnknownFactType)
    async def unknown_type(request: Request, exc: UnknownFactType) -> Response:
        message = f"unknown event type {exc.args[0]!r}; see GET /v1/event-types"
        return _answer(request, 422, message, [{"field": "type", "message": message}])

    @app.exception_handler(InvalidCommand)
    async def invalid_command(request: Request, exc: InvalidCommand) -> Response:
        return _answer(request, 422, f"invalid input: {exc.field}",
                     [{"field": exc.field, "message": exc.message}])

    @app.exception_handler(AccordError)
    async def refused(request: Request, exc: AccordError) -> Response:
        if isinstance(exc, Unauthenticated):
            return _answer(request, 401, str(exc))
        if isinstance(exc, Forbidden):
            return _answer(request, 403, str(exc))
        if isinstance(exc, NotFound):
            return _answer(request, 404, str(exc))
        if isinstance(exc, AccessNotRecorded):
            return _answer(request, 503, str(exc))
        if isinstance(exc, ClientAlreadyRegistered):
            return _answer(request, 409, str(exc), client_id=str(exc.client_id))
        if isinstance(exc, Conflict):
            return _answer(request, 409, str(exc))
        return _answer(request, 400, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:
            # FastAPI's only 400: a body it could not decode (not UTF-8, say).
            message = "the request body could not be read as JSON (it must be UTF-8)"
            return _answer(request, 400, message, [{"field": "body", "message": message}])
        return _answer(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        reference = uuid.uuid4().hex[:12]
        log.exception("unexpected error %s", reference, exc_info=exc)
        return _answer(request, 500,
                       f"internal error (reference {reference}); nothing was disclosed")


class BodyLimit:
    """Refuses request bodies over the limit with 413, before the app reads them whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large(scope, receive, send)
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        # No declared length (chunked): buffer up to the limit, then replay. Bodies are small.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error(413, f"request body is larger than {self.max_bytes} bytes")
        await response(scope, receive, send)
