"""Every failure becomes a JSON error with a clear message; nothing leaks a stack trace."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.access import AccessNotRecorded
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


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": "body", "message": "the request body is not valid JSON"}
            if e["type"] == "json_invalid"
            else {"field": _field(tuple(e["loc"])), "message": e["msg"]}
            for e in exc.errors()
        ]
        names = ", ".join(e["field"] for e in errors)
        return error(422, f"invalid input: {names}", errors)

    @app.exception_handler(InvalidPayload)
    async def invalid_payload(_: Request, exc: InvalidPayload) -> JSONResponse:
        names = ", ".join(e["field"] for e in exc.errors)
        return error(422, f"invalid {exc.fact_type} payload: {names}", exc.errors)

    @app.exception_handler(UnknownFactType)
    async def unknown_type(_: Request, exc: UnknownFactType) -> JSONResponse:
        message = f"unknown event type {exc.args[0]!r}; see GET /v1/event-types"
        return error(422, message, [{"field": "type", "message": message}])

    @app.exception_handler(InvalidCommand)
    async def invalid_command(_: Request, exc: InvalidCommand) -> JSONResponse:
        return error(422, f"invalid input: {exc.field}",
                     [{"field": exc.field, "message": exc.message}])

    @app.exception_handler(AccordError)
    async def refused(_: Request, exc: AccordError) -> JSONResponse:
        if isinstance(exc, Unauthenticated):
            return error(401, str(exc))
        if isinstance(exc, Forbidden):
            return error(403, str(exc))
        if isinstance(exc, NotFound):
            return error(404, str(exc))
        if isinstance(exc, AccessNotRecorded):
            return error(503, str(exc))
        if isinstance(exc, ClientAlreadyRegistered):
            return error(409, str(exc), client_id=str(exc.client_id))
        if isinstance(exc, Conflict):
            return error(409, str(exc))
        return error(400, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        reference = uuid.uuid4().hex[:12]
        log.exception("unexpected error %s", reference, exc_info=exc)
        return error(500, f"internal error (reference {reference}); nothing was disclosed")


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
