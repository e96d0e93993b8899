"""Authentication (bearer tokens) and role checks, as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from domain.agencies import Role
from domain.application import AccordApplication, Actor
from domain.errors import Forbidden, Unauthenticated

_bearer = HTTPBearer(auto_error=False, description="a token from `accord principals add`")


# Dependencies that only look something up are ``async``: FastAPI runs a plain ``def``
# dependency in its thread pool, and that hop cost more than the lookup.
async def application(request: Request) -> AccordApplication:
    app: AccordApplication = request.app.state.accord.app
    return app


App = Annotated[AccordApplication, Depends(application)]


def current_actor(
    app: App,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("a bearer token is required")
    return app.authenticate(credentials.credentials)


def require(*roles: Role) -> Callable[[Actor], Awaitable[Actor]]:
    """A dependency that admits only the given roles (403 for the others)."""
    allowed = frozenset(roles)

    async def check(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
        if actor.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"this needs one of the roles: {names}")
        return actor

    return check


AnyActor = Annotated[Actor, Depends(current_actor)]
