"""The store: one schema on SQLite (embedded default) or PostgreSQL, with migrations."""

from parvis.store.db import Store, default_url, open_store

__all__ = ["Store", "default_url", "open_store"]
