"""Shared fixtures: the real data folder, and stores on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from parvis.store import Store, open_store
from tests.pg import admin_url

_database_numbers = itertools.count(1)


def shared_data_root() -> Path:
    configured = os.environ.get("PARVIS_SHARED_DATA")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_root()
    if not root.is_dir():
        pytest.fail(f"real test data not found at {root} (set PARVIS_SHARED_DATA)")
    return root


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    try:
        with admin_url() as url:
            yield url
    except (RuntimeError, OSError) as problem:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL server available here: {problem}")


def new_pg_database(admin: str) -> str:
    name = f"parvis_test_{os.getpid()}_{next(_database_numbers)}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'parvis.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'parvis.db'}"
    admin: str = request.getfixturevalue("pg_admin_url")
    return new_pg_database(admin)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def new_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Makes URLs of new empty stores, all on SQLite or all on PostgreSQL."""
    numbers = itertools.count(1)
    if request.param == "sqlite":
        return lambda: f"sqlite:///{tmp_path / f'store{next(numbers)}.db'}"
    admin: str = request.getfixturevalue("pg_admin_url")
    return lambda: new_pg_database(admin)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()
