"""The migrations build exactly the declared schema, on both databases; the store URL is configurable."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from parvis.store import Store, default_url, open_store
from parvis.store.schema import metadata


def test_migrations_match_declared_schema(store: Store) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []
    assert "alembic_version" in inspect(store.engine).get_table_names()


def test_opening_twice_keeps_data_and_revision(store_url: str) -> None:
    first = open_store(store_url)
    with first.engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO sources (id, platform, name, extras) VALUES ('s', 'test', 'S', '{}')")
    first.close()
    second = open_store(store_url)
    with second.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM sources").scalar_one() == 1
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == "0001"
    second.close()


def test_default_url_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PARVIS_DB", "postgresql://someone@db.example/parvis")
    assert default_url() == "postgresql://someone@db.example/parvis"
    monkeypatch.delenv("PARVIS_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_url() == f"sqlite:///{tmp_path}/parvis/parvis.db"
