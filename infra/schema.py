"""Read-model and key tables (SQLAlchemy Core), created beside the event store."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, LargeBinary, MetaData, String, Table

metadata = MetaData()

#: One wrapped data key per client. Erasure destroys the key (crypto-shredding).
client_keys = Table(
    "accord_client_keys",
    metadata,
    Column("client_id", String(32), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=True),
    Column("kek_id", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("shredded_at", DateTime(timezone=True), nullable=True),
)
