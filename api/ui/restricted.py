"""Reading a client whose processing is restricted (UK GDPR Art. 18), from the pages.

The API refuses its controllers' reads of such a client's record, view and chronology
(409, ``RestrictionReasonRequired``) unless they state the legal claim the read is for
(``restriction_reason``). A page that meets that refusal shows ``restricted_page``
instead of an error: what the restriction means, and a form that POSTs the claim back to
the same page (never a GET: the claim would land in browser history and server logs).
The page then calls the same API route function with the claim, which checks it, seals
it and records it with the read, exactly as the API does; this module only asks for it
and checks it as the API's query parameter does, so a refusal is shown beside the field.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError

from api.deps import RestrictionReason
from api.ui.schema_form import FieldErrors
from api.ui.templating import render

#: The form field (and the API's query parameter) holding the claim.
FIELD = "restriction_reason"
#: The textarea's id, which the error summary links to.
FIELD_ID = "restriction-reason"
#: The API's own check of the claim (``api.deps.RestrictionReason``: length and text).
_CLAIM: TypeAdapter[str | None] = TypeAdapter(RestrictionReason)
SHORTEST, LONGEST = 10, 500
#: The banner on a page read for a stated claim.
BANNER = "Restricted: read for the stated legal claim"


def stated_claim(submitted: Any) -> tuple[str | None, FieldErrors]:
    """The claim as submitted, checked as the API checks ``restriction_reason``; or the
    errors to show beside the field and in the summary (then nothing is read)."""
    errors = FieldErrors()
    text = submitted if isinstance(submitted, str) else ""
    if not text.strip():
        errors.add(FIELD, FIELD_ID, "Enter the legal claim you need to read this record for")
        return None, errors
    try:
        claim = _CLAIM.validate_python(text)
    except ValidationError as exc:
        kind = exc.errors()[0]["type"]
        if kind in ("string_too_short", "string_too_long", "too_short", "too_long"):
            errors.add(FIELD, FIELD_ID, f"The legal claim must be {SHORTEST} to {LONGEST} "
                                        "characters")
        else:
            errors.add(FIELD, FIELD_ID, "The legal claim " + str(
                exc.errors()[0]["msg"]).removeprefix("Value error, "))
        return None, errors
    if claim is None or len(claim.strip()) < SHORTEST:
        errors.add(FIELD, FIELD_ID, f"The legal claim must be {SHORTEST} to {LONGEST} "
                                    "characters, not counting spaces at either end")
        return None, errors
    return claim, errors


def restricted_page(request: Request, *, back: str, back_text: str,
                    action: str | None = None, claim: str = "",
                    errors: FieldErrors | None = None, status_code: int = 200) -> Response:
    """What a restriction of processing means, and the form stating the claim, POSTed
    to ``action`` (the page's own path and query, which never hold the claim); without
    ``action`` the page says where the claim can be stated instead (``back``)."""
    errors = errors or FieldErrors()
    return render(request, "restriction/restricted.html", {
        "action": action, "claim": claim, "back": back, "back_text": back_text,
        "errors": errors.summary(), "messages": errors.messages,
        "shortest": SHORTEST, "longest": LONGEST,
    }, status_code=status_code)


def own_path(request: Request) -> str:
    """The page's path and query, for its form to POST back to (the claim goes in the
    body; the query holds only what the GET page had: the purpose, a category)."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def restricted_elsewhere(request: Request, client_id: Any, *,
                         purpose: str | None = None) -> Response:
    """For a page that reads a restricted client only to name them (a form, an alert's
    client): the same explanation, leading to the page where the claim is stated (the
    client's page for a purpose, or the agency's own record)."""
    if purpose:
        return restricted_page(request, back=f"/ui/clients/{client_id}?purpose={purpose}",
                               back_text="State the legal claim on the client's page")
    return restricted_page(request, back=f"/ui/clients/{client_id}/record",
                           back_text="State the legal claim on your agency's record")
