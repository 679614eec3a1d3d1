"""The migrations build exactly the declared schema, on both databases; the store URL is configurable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event, inspect

from parvis.store import Store, default_url, open_store
from parvis.store.db import _alembic_config, create_store_engine
from parvis.store.schema import metadata


def test_migrations_match_declared_schema(store: Store) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []
    assert "alembic_version" in inspect(store.engine).get_table_names()


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None and head >= "0004"
    return head


def test_opening_twice_keeps_data_and_revision(store_url: str) -> None:
    first = open_store(store_url)
    with first.engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO sources (id, platform, name, extras) VALUES ('s', 'test', 'S', '{}')")
    first.close()
    second = open_store(store_url)
    with second.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM sources").scalar_one() == 1
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == head_revision()
    second.close()


def test_default_url_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PARVIS_DB", "postgresql://someone@db.example/parvis")
    assert default_url() == "postgresql://someone@db.example/parvis"
    monkeypatch.delenv("PARVIS_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_url() == f"sqlite:///{tmp_path}/parvis/parvis.db"


class _Interrupted(Exception):
    pass


def test_a_migration_cut_short_leaves_nothing_behind(store_url: str) -> None:
    """A process killed mid-migration must not leave tables without the revision that made them."""

    def interrupt_late(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "ix_activities_source_id_kind" in statement:
            raise _Interrupted

    event.listen(Engine, "before_cursor_execute", interrupt_late)
    try:
        with pytest.raises(_Interrupted):
            open_store(store_url)
    finally:
        event.remove(Engine, "before_cursor_execute", interrupt_late)
    check = create_store_engine(store_url)
    assert "sources" not in inspect(check).get_table_names()
    check.dispose()
    reopened = open_store(store_url)
    assert {"sources", "activities", "import_runs"} <= set(inspect(reopened.engine).get_table_names())
    reopened.close()
