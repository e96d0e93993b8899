"""The FastAPI application: routers per audience, JSON errors, a body-size limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors, hardening
from api.bootstrap import Accord, bootstrap
from api.routers import (
    admin,
    agreements,
    alerts,
    audit,
    caseload,
    catalogue,
    clients,
    consents,
    emergency,
    erasure,
    fhir,
    flags,
    households,
    replay_changes,
    reports,
    reviews,
    subject_access,
    tree,
    views,
)
from api.ui import web
from infra.settings import Settings

DESCRIPTION = """
accord keeps every interaction with a client as an event in one append-only log.
Authenticate with `Authorization: Bearer <token>` (tokens come from `accord principals add`).
Errors are JSON: `{"detail": "...", "errors": [{"field": ..., "message": ...}]}`.
"""


def create_app(accord: Accord | None = None, settings: Settings | None = None) -> FastAPI:
    """Builds the API. Pass an ``Accord`` from ``api.bootstrap`` (``accord serve``, tests),
    or let the app bootstrap one from settings when it starts and close it when it stops.
    While the app runs, so does the system's background work (the read models, unless
    ``ACCORD_PROJECTIONS=worker``)."""
    settings = accord.settings if accord else (settings or Settings.from_env())

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        owned = accord is None
        system = accord or bootstrap(settings)
        # The routes read the system under these two names (its application and engine,
        # and its read models).
        api.state.accord = api.state.projections = system
        system.start()
        try:
            yield
        finally:
            system.stop()
            if owned:
                system.close()

    # The reference pages are served with vendored assets, not from a CDN (api/hardening).
    api = FastAPI(title="accord", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    hardening.install_docs(api)
    errors.install(api)
    api.include_router(views.router)  # before clients: /v1/clients/match is not a client id
    api.include_router(caseload.router)  # likewise /v1/clients/search
    api.include_router(clients.router)
    api.include_router(consents.router)
    api.include_router(fhir.router)
    api.include_router(flags.router)
    api.include_router(agreements.router)
    api.include_router(catalogue.router)
    api.include_router(admin.router)
    api.include_router(audit.router)
    api.include_router(subject_access.router)
    api.include_router(replay_changes.router)
    api.include_router(emergency.router)
    api.include_router(erasure.router)
    api.include_router(reviews.router)
    api.include_router(tree.router)
    api.include_router(households.router)
    api.include_router(alerts.router)
    api.include_router(reports.router)
    web.install(api)  # the web application under /ui, and GET / to it
    api.add_middleware(errors.BodyLimit, max_bytes=settings.max_body_bytes)
    api.add_middleware(hardening.SecurityHeaders)  # last added: outermost, sees every answer
    return api
