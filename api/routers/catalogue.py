"""The event catalogue, for anyone in the partnership."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import App, CatalogueReader
from api.models import EventTypeOut

router = APIRouter(prefix="/v1", tags=["partnership"])


@router.get("/event-types", response_model=list[EventTypeOut], response_model_by_alias=True)
def event_types(app: App, _: CatalogueReader) -> list[EventTypeOut]:
    """Every fact type: its data category, description, fields and payload JSON Schema."""
    return [
        EventTypeOut(type=t.name, category=t.category.value, description=t.description,
                     fields=t.fields, schema=t.schema.model_json_schema())
        for t in app.event_types()
    ]
