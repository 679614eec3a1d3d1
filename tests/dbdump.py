"""Whole-store snapshots for equality checks (re-import, kill-and-resume)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from parvis.store import Store
from parvis.store.schema import LOG_TABLES, metadata


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every community-data table as a sorted list of rows (log tables left out, see LOG_TABLES)."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as connection:
        for table in metadata.sorted_tables:
            if table.name in LOG_TABLES:
                continue
            rows = connection.execute(select(table)).all()
            tables[table.name] = sorted(tuple(repr(value) for value in row) for row in rows)
    return tables
