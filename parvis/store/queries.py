"""Read-only queries over the store used by the command line."""

from __future__ import annotations

from sqlalchemy import select

from parvis.store.db import Store
from parvis.store.schema import quarantine


def quarantined_records(store: Store, source_id: str | None = None) -> list[dict[str, str]]:
    statement = select(
        quarantine.c.source_id, quarantine.c.stream, quarantine.c.position, quarantine.c.reason
    ).order_by(quarantine.c.source_id, quarantine.c.stream, quarantine.c.position)
    if source_id is not None:
        statement = statement.where(quarantine.c.source_id == source_id)
    with store.engine.connect() as connection:
        return [
            {"source": row.source_id, "stream": row.stream, "position": row.position, "reason": row.reason}
            for row in connection.execute(statement)
        ]
