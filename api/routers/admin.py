"""For partnership administrators: agencies and the principals who act for them."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, status

from api.auth import AnyActor, App, require
from api.models import AgencyIn, AgencyOut, IssuedTokenOut, PrincipalIn, PrincipalOut, RevokeIn
from domain.agencies import Agency, Role
from domain.application import Actor

router = APIRouter(prefix="/v1", tags=["admin"])
Admin = Annotated[Actor, Depends(require(Role.ADMIN))]


def _agency_out(agency: Agency) -> AgencyOut:
    return AgencyOut(id=agency.slug, name=agency.name, kind=agency.kind)


@router.post("/agencies", status_code=status.HTTP_201_CREATED, response_model=AgencyOut)
def register_agency(body: AgencyIn, app: App, admin: Admin) -> AgencyOut:
    """Registers a partner agency. Its id is a permanent slug."""
    return _agency_out(app.register_agency(body.id, body.name, body.kind, admin))


@router.get("/agencies", response_model=list[AgencyOut], tags=["partnership"])
def list_agencies(app: App, _: AnyActor) -> list[AgencyOut]:
    """The partner agencies, for anyone in the partnership."""
    return [_agency_out(a) for a in app.agencies()]


@router.post("/principals", status_code=status.HTTP_201_CREATED, response_model=IssuedTokenOut)
def add_principal(body: PrincipalIn, app: App, admin: Admin) -> IssuedTokenOut:
    """Enrols a person or system; the token is returned once and only its hash is kept."""
    issued = app.add_principal(body.agency, body.role, body.name, admin)
    return IssuedTokenOut(principal_id=issued.principal_id, token=issued.token)


@router.get("/agencies/{agency}/principals", response_model=list[PrincipalOut])
def list_principals(agency: str, app: App, _: Admin) -> list[PrincipalOut]:
    return [
        PrincipalOut(principal_id=p.principal_id, agency=p.agency, role=p.role, name=p.name,
                     revoked=p.revoked, added_at=p.added_at)
        for p in app.principals(agency)
    ]


@router.post("/principals/{principal_id}/revoke", status_code=status.HTTP_204_NO_CONTENT)
def revoke_principal(principal_id: UUID, body: RevokeIn, app: App, admin: Admin) -> None:
    """Revokes a token; it stops working at the next request."""
    app.revoke_principal(principal_id, body.reason, admin)
