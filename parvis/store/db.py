"""Opening the store: URL resolution, engine set-up and migrations."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

ENV_VAR = "PARVIS_DB"


def default_url() -> str:
    """``$PARVIS_DB`` if set, else a SQLite file in the user's data folder."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return configured
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite:///{data_home / 'parvis' / 'parvis.db'}"


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("parvis") / "migrations"))
    return config


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Large pages suit community text (mostly longer than a 4 KiB page) and scans; only a new file takes it.
    cursor.execute("PRAGMA page_size=65536")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@dataclass(frozen=True)
class Store:
    engine: Engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()


def create_store_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed)
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed)


def _transactional_sqlite_engine(url: URL) -> Engine:
    """An engine whose transactions cover DDL too.

    Python's sqlite3 module only opens a transaction before DML, so a migration killed halfway
    would leave some tables behind without the revision that created them. Issuing BEGIN
    ourselves makes a migration all or nothing.
    """
    engine = create_engine(url)

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        _on_sqlite_connect(dbapi_connection, record)
        dbapi_connection.isolation_level = None

    def on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest migration (a no-op when it is already there).

    The migration is one transaction: a process killed during it leaves the store as it was.
    """
    config = _alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        if MigrationContext.configure(connection).get_current_revision() == head:
            return
    migrating = _transactional_sqlite_engine(engine.url) if engine.dialect.name == "sqlite" else engine
    try:
        with migrating.begin() as connection:
            if MigrationContext.configure(connection).get_current_revision() == head:
                return
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        if migrating is not engine:
            migrating.dispose()


def open_store(url: str | None = None, *, upgrade: bool = True) -> Store:
    engine = create_store_engine(url or default_url())
    if upgrade:
        migrate(engine)
    return Store(engine)
