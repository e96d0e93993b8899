"""Administration: agencies and the principals who act for them.

Partnership administrators register agencies and appoint each agency's admins; an
agency's admin manages that agency's own principals; its IG lead sees who was added and
removed, by whom. The scope rules live in the application's commands and the read side
(``projections.queries``); each route's actor (``api.deps``) asks the permission table
first, refusing early (403) the roles that can never take its action.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status

from api.deps import (
    AgencyRegistrar,
    App,
    DirectoryReader,
    PrincipalAdder,
    PrincipalOverseer,
    PrincipalRevoker,
)
from api.errors import error_responses
from api.models import (
    AgencyIn,
    AgencyOut,
    IssuedTokenOut,
    PrincipalIn,
    PrincipalOut,
    RecordedByOut,
    RevokeIn,
)
from domain.agencies import Agency
from projections import queries
from projections.queries import RecordedBy

router = APIRouter(prefix="/v1", tags=["admin"])


def _agency_out(agency: Agency) -> AgencyOut:
    return AgencyOut(id=agency.slug, name=agency.name, kind=agency.kind, contact=agency.contact)


@router.post("/agencies", status_code=status.HTTP_201_CREATED, response_model=AgencyOut,
             responses=error_responses(403, 409))
def register_agency(body: AgencyIn, app: App, admin: AgencyRegistrar) -> AgencyOut:
    """Registers a partner agency (partnership administrators). Its id is a permanent slug."""
    return _agency_out(app.register_agency(body.id, body.name, body.kind, admin,
                                           contact=body.contact))


@router.get("/agencies", response_model=list[AgencyOut], tags=["partnership"])
def list_agencies(app: App, _: DirectoryReader) -> list[AgencyOut]:
    """The partner agencies, for anyone in the partnership."""
    return [_agency_out(a) for a in app.agencies()]


@router.post("/principals", status_code=status.HTTP_201_CREATED, response_model=IssuedTokenOut,
             responses=error_responses(403, 404, 409))
def add_principal(body: PrincipalIn, app: App, admin: PrincipalAdder) -> IssuedTokenOut:
    """Enrols a person or system; the token is returned once and only its hash is kept.

    An agency's admin enrols in its own agency (403 for another); a partnership
    administrator enrols admins and partnership administrators in any agency. A role that
    does not fit the agency's kind is a 422 naming `role`.
    """
    issued = app.add_principal(body.agency, body.role, body.name, admin)
    return IssuedTokenOut(principal_id=issued.principal_id, token=issued.token)


def _recorded_by(who: RecordedBy) -> RecordedByOut:
    return RecordedByOut(id=who.reference, name=who.name, agency=who.agency, role=who.role)


@router.get("/agencies/{agency}/principals", response_model=list[PrincipalOut],
            responses=error_responses(403, 404))
def list_principals(agency: str, app: App, by: PrincipalOverseer) -> list[PrincipalOut]:
    """The agency's principals, with who added each and when, and who revoked it, when and
    why: for its own admin and IG lead (403 for another agency's), and partnership
    administrators."""
    return [
        PrincipalOut(principal_id=p.principal_id, agency=p.agency, role=p.role, name=p.name,
                     revoked=p.revoked, added_at=p.added_at,
                     added_by=_recorded_by(p.added_by), revoked_at=p.revoked_at,
                     revoked_by=_recorded_by(p.revoked_by) if p.revoked_by else None,
                     revoked_reason=p.revoked_reason)
        for p in queries.principals(app, agency, by)
    ]


@router.post("/principals/{principal_id}/revoke", status_code=status.HTTP_204_NO_CONTENT,
             responses=error_responses(403, 404, 409))
def revoke_principal(principal_id: UUID, body: RevokeIn, app: App,
                     admin: PrincipalRevoker) -> None:
    """Revokes a token; it stops working at the next request.

    An agency's admin revokes only its own agency's principals (another agency's are 404,
    like an unknown id). 409 for the partnership's last partnership administrator, and for
    an agency's last admin unless a partnership administrator revokes it.
    """
    app.revoke_principal(principal_id, body.reason, admin)
