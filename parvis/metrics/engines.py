"""Where metric expressions run: DuckDB (embedded, default) or Apache Spark.

Both engines see the same *analytic snapshot* of the store: the narrow columns metrics need
(no texts, no raw payloads), read once into DuckDB and kept in memory while the store does not
change (its fingerprint: row counts and the last import run and member event).  DuckDB reads the
store directly with its ``sqlite_scanner`` / ``postgres_scanner`` extensions, loaded from the
PyPI packages that ship them (DuckDB cannot download extensions here, and need not).  Spark
receives the snapshot's tables through Arrow; on a cluster, set ``PARVIS_SPARK_MASTER``
(e.g. ``spark://host:7077``) or pass your own ``SparkSession`` to :func:`spark_backend`.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import ibis
from ibis.backends.duckdb import Backend as DuckDBBackend
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url

from parvis.store import Store
from parvis.store.schema import activities, identities, import_runs, member_events

ENGINES = ("duckdb", "spark")

# The snapshot: table -> SELECT over the attached store ("s").  Booleans and timestamps are cast
# so that SQLite and PostgreSQL stores give the same types.
SNAPSHOT_SQL = {
    "sources": "SELECT id, platform FROM s.sources",
    "members": "SELECT id, display_name, merged_into FROM s.members",
    "identities": (
        "SELECT id, source_id, member_id, display_name, handle, CAST(created_at AS TIMESTAMP) AS created_at, "
        "CAST(is_bot AS BOOLEAN) AS is_bot FROM s.identities"
    ),
    "conversations": (
        "SELECT id, source_id, channel_id, title, CAST(created_at AS TIMESTAMP) AS created_at, root_activity_id "
        "FROM s.conversations"
    ),
    "activities": (
        "SELECT id, source_id, kind, identity_id, channel_id, conversation_id, parent_id, "
        "CAST(created_at AS TIMESTAMP) AS created_at, title, url FROM s.activities"
    ),
}
# One result per activity and enricher (table added by migration 0002).
ENRICHMENTS_SQL = "SELECT activity_id, enricher, label, CAST(score AS DOUBLE) AS score FROM s.enrichments"
EMPTY_ENRICHMENTS_SQL = (
    "SELECT CAST(NULL AS VARCHAR) AS activity_id, CAST(NULL AS VARCHAR) AS enricher, "
    "CAST(NULL AS VARCHAR) AS label, CAST(NULL AS DOUBLE) AS score WHERE false"
)
TABLES = (*SNAPSHOT_SQL, "enrichments")


class MetricsError(Exception):
    """A problem the user can fix (unknown metric or engine, missing extension, Spark not installed)."""


def _extension_path(package: str, name: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError as missing:
        raise MetricsError(f"the DuckDB extension package {package} is not installed") from missing
    assert module.__file__ is not None
    found = sorted(Path(module.__file__).parent.rglob(f"{name}.duckdb_extension"))
    if not found:
        raise MetricsError(f"{package} holds no {name}.duckdb_extension")
    return found[-1]


def _quote(text: str) -> str:
    """A SQL string literal (ATTACH takes no parameters)."""
    return "'" + text.replace("'", "''") + "'"


def _attach(connection: duckdb.DuckDBPyConnection, store: Store) -> None:
    url = store.engine.url
    if url.get_backend_name() == "sqlite":
        path = _extension_path("duckdb_extension_sqlite_scanner", "sqlite_scanner")
        connection.execute(f"LOAD '{path}'")
        database = url.database or ""
        if database in ("", ":memory:"):
            raise MetricsError("an in-memory SQLite store cannot be read by the metrics engine")
        connection.execute(f"ATTACH {_quote(str(Path(database).expanduser()))} AS s (TYPE sqlite, READ_ONLY)")
    elif url.get_backend_name() == "postgresql":
        path = _extension_path("duckdb_extension_postgres_scanner", "postgres_scanner")
        connection.execute(f"LOAD '{path}'")
        plain = make_url(url.render_as_string(hide_password=False)).set(drivername="postgresql")
        target = _quote(plain.render_as_string(hide_password=False))
        connection.execute(f"ATTACH {target} AS s (TYPE postgres, READ_ONLY)")
    else:
        raise MetricsError(f"metrics cannot read a {url.get_backend_name()} store")


def _fingerprint(store: Store) -> tuple[Any, ...]:
    with store.engine.connect() as connection:
        return (
            tuple(connection.execute(select(func.count(), func.max(activities.c.created_at))).one()),
            connection.execute(select(func.count()).select_from(identities)).scalar_one(),
            connection.execute(select(func.max(import_runs.c.id))).scalar_one(),
            connection.execute(select(func.max(member_events.c.id))).scalar_one(),
            "enrichments" in inspect(connection).get_table_names()
            and connection.exec_driver_sql("SELECT count(*) FROM enrichments").scalar_one(),
        )


def snapshot_connection(store: Store) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB database holding the analytic snapshot of ``store``."""
    connection = duckdb.connect()
    _attach(connection, store)
    names = {
        row[0]
        for row in connection.execute("SELECT table_name FROM duckdb_tables() WHERE database_name='s'").fetchall()
    }
    for table, sql in SNAPSHOT_SQL.items():
        connection.execute(f"CREATE TABLE {table} AS {sql}")
    connection.execute(
        f"CREATE TABLE enrichments AS {ENRICHMENTS_SQL if 'enrichments' in names else EMPTY_ENRICHMENTS_SQL}"
    )
    connection.execute("DETACH s")
    return connection


@dataclass
class _Cached:
    fingerprint: tuple[Any, ...]
    backend: DuckDBBackend


_cache: dict[str, _Cached] = {}
_lock = threading.Lock()


def duckdb_backend(store: Store) -> DuckDBBackend:
    """The ibis DuckDB backend over the store's snapshot, rebuilt only when the store changed."""
    key = store.engine.url.render_as_string(hide_password=False)
    fingerprint = _fingerprint(store)
    with _lock:
        cached = _cache.get(key)
        if cached is None or cached.fingerprint != fingerprint:
            backend = ibis.duckdb.from_connection(snapshot_connection(store))
            cached = _Cached(fingerprint, backend)
            _cache[key] = cached
        return cached.backend


def backend_from_duckdb_file(path: Path) -> DuckDBBackend:
    """An ibis backend over a DuckDB file that holds snapshot tables (benchmarks, exported snapshots)."""
    return ibis.duckdb.from_connection(duckdb.connect(str(path), read_only=True))


_spark: Any = None


def spark_session() -> Any:
    """The shared Spark session (local mode unless PARVIS_SPARK_MASTER names a cluster), UTC."""
    global _spark
    if _spark is None:
        try:
            from pyspark.sql import SparkSession
        except ImportError as missing:
            raise MetricsError("the Spark engine needs pyspark: pip install 'parvis[spark]'") from missing
        master = os.environ.get("PARVIS_SPARK_MASTER", "local[2]")
        _spark = (
            SparkSession.builder.master(master)
            .appName("parvis-metrics")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", os.environ.get("PARVIS_SPARK_PARTITIONS", "2"))
            .config("spark.default.parallelism", os.environ.get("PARVIS_SPARK_PARTITIONS", "2"))
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            # Small interactive queries: compiling generated code costs more than it saves.
            .config("spark.sql.codegen.wholeStage", os.environ.get("PARVIS_SPARK_CODEGEN", "false"))
            .config("spark.sql.adaptive.enabled", "false")
            .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
            .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
            .getOrCreate()
        )
        _spark.sparkContext.setLogLevel("ERROR")
    return _spark


_spark_loaded: dict[str, tuple[Any, ...]] = {}


def spark_backend(store: Store, session: Any = None) -> Any:
    """An ibis PySpark backend whose tables are the store's snapshot (shipped through Arrow, cached).

    The temporary views are shared by the session: one store at a time is loaded into it.
    """
    session = session or spark_session()
    key = f"{id(session)}:{store.engine.url.render_as_string(hide_password=False)}"
    fingerprint = _fingerprint(store)
    if _spark_loaded.get("current") != (key, fingerprint):
        source = duckdb_backend(store)
        for table in TABLES:
            frame = source.table(table).to_pyarrow().to_pandas()
            loaded = session.createDataFrame(frame, schema=_spark_schema(source, table)).cache()
            loaded.createOrReplaceTempView(table)
        _spark_loaded["current"] = (key, fingerprint)
    return ibis.pyspark.connect(session)


def _spark_schema(source: DuckDBBackend, table: str) -> str:
    types = {"string": "string", "timestamp": "timestamp", "boolean": "boolean", "float64": "double", "int64": "bigint"}
    parts = []
    for name, dtype in source.table(table).schema().items():
        kind = types.get(str(dtype).rstrip("!").split("(")[0])
        if kind is None:
            raise MetricsError(f"no Spark type for {table}.{name} ({dtype})")
        parts.append(f"`{name}` {kind}")
    return ", ".join(parts)


def backend(store: Store, engine: str) -> Any:
    if engine == "duckdb":
        return duckdb_backend(store)
    if engine == "spark":
        return spark_backend(store)
    raise MetricsError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
