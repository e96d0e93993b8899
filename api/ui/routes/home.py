"""The start page: who is signed in, and the sections their role may use."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import SignedIn
from api.ui.templating import navigation, render

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("")
async def home(request: Request, actor: SignedIn) -> Response:
    """Each section the caller's role may use, with what it is for."""
    return render(request, "home.html", {"sections": navigation(actor, "")})
