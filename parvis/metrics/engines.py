"""Where metric expressions run: DuckDB (embedded, default) or Apache Spark.

Both engines see the same *analytic snapshot* of the store: the narrow columns metrics need
(no texts, no raw payloads).  DuckDB reads the store directly with its ``sqlite_scanner`` /
``postgres_scanner`` extensions, loaded from the PyPI packages that ship them (DuckDB cannot
download extensions here, and need not).  Spark receives the snapshot's tables through Arrow; on a
cluster, set ``PARVIS_SPARK_MASTER`` (e.g. ``spark://host:7077``) or pass your own ``SparkSession``
to :func:`spark_backend`.

For a SQLite store the snapshot is a DuckDB file beside it (``<store>.snapshot.duckdb``; set
``PARVIS_SNAPSHOT=memory`` to keep it in memory).  It outlives the process and is refreshed
*incrementally* when the store changes (its marks: the largest rowids, the last import run and
member event): new activities are appended by rowid watermark, the conversations they touch
are re-read, and the small tables (sources, members, identities, enrichments) are reloaded.  It is
rebuilt from scratch when it cannot be brought up to date safely: another store at that path, an
import run since the last refresh that updated rows in place or did not finish, or a new snapshot
format.  A PostgreSQL store's snapshot is built in memory, as is a SQLite store's when the file
cannot be written or another process holds it.

Beside the copied tables the snapshot holds *derived* tables, rebuilt after each refresh, that
:class:`parvis.metrics.base.Base` uses instead of recomputing joins on every query (results are
identical; the Spark engine, which does not get them, is the reference in the conformance tests):

* ``authored``: activities with an identity, with their member and bot flag;
* ``root_facts``: each started conversation's opening activity with its first response by another
  member (over the whole history; a scope's end date turns later responses into none);
* ``member_first``: each member's first member activity per source;
* ``member_periods``: per grain, the periods in which each member was active, with the first activity in each.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import duckdb
import ibis
from ibis.backends.duckdb import Backend as DuckDBBackend
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import make_url

from parvis.metrics.base import ACTIVE_KINDS, RESPONSE_KINDS, STARTER_KINDS
from parvis.store import Store
from parvis.store.schema import activities, identities, import_runs, member_events

P = ParamSpec("P")
R = TypeVar("R")

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


# Format of the snapshot file: a file of another format is rebuilt.
SNAPSHOT_VERSION = "2"


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(_quote(value) for value in values) + ")"


# Derived tables (see the module docstring), in DuckDB SQL over the copied tables; they follow the
# definitions of Base.authored, Base.conversation_roots, Base.first_responses and _first_activity.
DERIVED_SQL = {
    "authored": (
        "SELECT a.id, a.source_id, a.kind, a.channel_id, a.conversation_id, a.parent_id, a.created_at, "
        "i.member_id, i.is_bot FROM activities a JOIN identities i ON a.identity_id = i.id"
    ),
    "member_first": (
        "SELECT source_id, member_id, min(created_at) AS first_at FROM authored "
        "WHERE NOT is_bot AND kind IN {active} GROUP BY source_id, member_id"
    ),
    # Distinct (source, member, period) of member activity per grain, with the first activity in the period.
    "member_periods": " UNION ALL ".join(
        f"SELECT source_id, member_id, '{grain}' AS grain, CAST(DATE_TRUNC('{grain}', created_at) AS DATE) AS period, "
        "min(created_at) AS first_at FROM authored WHERE NOT is_bot AND kind IN {active} GROUP BY ALL"
        for grain in ("day", "week", "month")
    ),
    "root_facts": (
        "WITH roots AS ("
        " SELECT a.id AS item_id, a.source_id, a.channel_id, a.conversation_id, a.member_id, a.created_at, a.kind,"
        " p.platform FROM conversations c JOIN authored a ON a.id = c.root_activity_id"
        " JOIN sources p ON p.id = a.source_id"
        " WHERE c.root_activity_id IS NOT NULL AND NOT a.is_bot AND a.kind IN {starter}),"
        " responded AS ("
        " SELECT r.item_id AS responded_id, min(x.created_at) AS first_response_at FROM roots r"
        " JOIN authored x ON x.conversation_id = r.conversation_id"
        " WHERE NOT x.is_bot AND x.kind IN {response} AND x.member_id != r.member_id"
        " AND x.created_at >= r.created_at AND x.id != r.item_id GROUP BY r.item_id)"
        " SELECT roots.*, responded.first_response_at FROM roots"
        " LEFT JOIN responded ON roots.item_id = responded.responded_id"
    ),
}


def _derived_sql(table: str) -> str:
    return DERIVED_SQL[table].format(active=_in(ACTIVE_KINDS), starter=_in(STARTER_KINDS), response=_in(RESPONSE_KINDS))


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


def _sqlite_path(store: Store) -> Path | None:
    url = store.engine.url
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:"):
        return None
    return Path(database).expanduser()


def _attach(connection: duckdb.DuckDBPyConnection, store: Store) -> None:
    url = store.engine.url
    if url.get_backend_name() == "sqlite":
        path = _extension_path("duckdb_extension_sqlite_scanner", "sqlite_scanner")
        connection.execute(f"LOAD '{path}'")
        database = _sqlite_path(store)
        if database is None:
            raise MetricsError("an in-memory SQLite store cannot be read by the metrics engine")
        connection.execute(f"ATTACH {_quote(str(database))} AS s (TYPE sqlite, READ_ONLY)")
    elif url.get_backend_name() == "postgresql":
        path = _extension_path("duckdb_extension_postgres_scanner", "postgres_scanner")
        connection.execute(f"LOAD '{path}'")
        plain = make_url(url.render_as_string(hide_password=False)).set(drivername="postgresql")
        target = _quote(plain.render_as_string(hide_password=False))
        connection.execute(f"ATTACH {target} AS s (TYPE postgres, READ_ONLY)")
    else:
        raise MetricsError(f"metrics cannot read a {url.get_backend_name()} store")


def _marks(store: Store) -> dict[str, Any]:
    """What identifies the store's state, cheaply (a few index lookups; no count over the activities
    of a SQLite store).  Any import adds an import run; any merge or unmerge a member event."""
    with store.engine.connect() as connection:
        run = connection.execute(
            select(import_runs.c.id, import_runs.c.status).order_by(import_runs.c.id.desc()).limit(1)
        ).first()
        marks: dict[str, Any] = {
            "run": run[0] if run else None,
            "run_status": run[1] if run else None,
            "event": connection.execute(select(func.max(member_events.c.id))).scalar_one(),
        }
        has_enrichments = "enrichments" in inspect(connection).get_table_names()
        if _sqlite_path(store) is not None:
            for table in ("activities", "conversations", "identities", "members", "sources"):
                marks[table] = connection.exec_driver_sql(f"SELECT max(rowid) FROM {table}").scalar_one() or 0
            marks["enrichments"] = has_enrichments and (
                connection.exec_driver_sql("SELECT max(rowid) FROM enrichments").scalar_one() or 0
            )
            marks["activity_id"] = connection.execute(
                text("SELECT id FROM activities WHERE rowid = :rowid"), {"rowid": marks["activities"]}
            ).scalar()
        else:
            marks["activities"] = tuple(
                connection.execute(select(func.count(), func.max(activities.c.created_at))).one()
            )
            marks["identities"] = connection.execute(select(func.count()).select_from(identities)).scalar_one()
            marks["enrichments"] = (
                has_enrichments and connection.exec_driver_sql("SELECT count(*) FROM enrichments").scalar_one()
            )
    return marks


def _enrichments_sql(connection: duckdb.DuckDBPyConnection) -> str:
    names = {
        row[0]
        for row in connection.execute("SELECT table_name FROM duckdb_tables() WHERE database_name='s'").fetchall()
    }
    return ENRICHMENTS_SQL if "enrichments" in names else EMPTY_ENRICHMENTS_SQL


def _build_derived(connection: duckdb.DuckDBPyConnection) -> None:
    for table in DERIVED_SQL:
        connection.execute(f"CREATE OR REPLACE TABLE {table} AS {_derived_sql(table)}")


def snapshot_connection(store: Store) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB database holding the analytic snapshot of ``store``."""
    connection = duckdb.connect()
    _attach(connection, store)
    for table, sql in SNAPSHOT_SQL.items():
        connection.execute(f"CREATE TABLE {table} AS {sql}")
    connection.execute(f"CREATE TABLE enrichments AS {_enrichments_sql(connection)}")
    _build_derived(connection)
    connection.execute("DETACH s")
    return connection


def snapshot_from_tables(source: Path, target: Path) -> None:
    """Build a snapshot file at ``target`` from a DuckDB file holding tables laid out as the store's
    (the synthetic communities of benchmarks/synthetic.py that are too large for a SQLite file)."""
    connection = duckdb.connect(str(target))
    connection.execute(f"ATTACH {_quote(str(source))} AS s (READ_ONLY)")
    for table, sql in SNAPSHOT_SQL.items():
        connection.execute(f"CREATE OR REPLACE TABLE {table} AS {sql}")
    connection.execute(f"CREATE OR REPLACE TABLE enrichments AS {_enrichments_sql(connection)}")
    _build_derived(connection)
    connection.execute("DETACH s")
    connection.execute("CHECKPOINT")
    connection.close()


def _read_meta(connection: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    found = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND table_name = 'parvis_meta'"
    ).fetchone()
    if not found or not found[0]:
        return None
    row = connection.execute("SELECT value FROM parvis_meta").fetchone()
    return json.loads(row[0]) if row else None


def _can_append(store: Store, meta: dict[str, Any] | None, marks: dict[str, Any], path: Path) -> bool:
    """Whether the snapshot file holds this store up to its watermarks, with no row changed in place since."""
    if meta is None or meta.get("version") != SNAPSHOT_VERSION or meta.get("store") != str(path):
        return False
    old = meta["marks"]
    if not meta.get("clean") or any(marks[t] < old[t] for t in ("activities", "conversations")):
        return False
    with store.engine.connect() as connection:
        if old["activities"]:
            found = connection.execute(
                text("SELECT id FROM activities WHERE rowid = :rowid"), {"rowid": old["activities"]}
            ).scalar()
            if found != old["activity_id"]:
                return False  # another store at this path
        runs = connection.execute(
            select(import_runs.c.updated, import_runs.c.status).where(import_runs.c.id > (old["run"] or 0))
        ).all()
    # An import that updated rows in place, or is still running, or stopped: rebuild.
    return all(updated == 0 and status == "done" for updated, status in runs)


def _refresh(connection: duckdb.DuckDBPyConnection, store: Store, marks: dict[str, Any], path: Path) -> str:
    """Bring the snapshot file up to ``marks`` in one transaction; says how ("built" or "appended")."""
    cursor = connection.cursor()
    meta = _read_meta(cursor)
    if (
        meta is not None
        and meta.get("version") == SNAPSHOT_VERSION
        and meta.get("store") == str(path)
        and meta.get("clean")
        and meta.get("marks") == json.loads(json.dumps(marks, default=str))
    ):
        cursor.close()
        return "current"  # written by an earlier process, and the store has not changed since
    append = _can_append(store, meta, marks, path)
    _attach(cursor, store)
    cursor.execute("BEGIN")
    top = {"activities": marks["activities"], "conversations": marks["conversations"]}
    if append:
        assert meta is not None
        low = meta["marks"]
        cursor.execute(
            f"CREATE TEMP TABLE fresh_activities AS {SNAPSHOT_SQL['activities']} "
            f"WHERE rowid > {int(low['activities'])} AND rowid <= {int(top['activities'])}"
        )
        cursor.execute("INSERT INTO activities SELECT * FROM fresh_activities")
        # New conversations, and those the new activities may have changed (root, title).
        cursor.execute(
            f"CREATE TEMP TABLE fresh_conversations AS {SNAPSHOT_SQL['conversations']} "
            f"WHERE (rowid > {int(low['conversations'])} AND rowid <= {int(top['conversations'])}) "
            "OR id IN (SELECT conversation_id FROM fresh_activities WHERE conversation_id IS NOT NULL)"
        )
        cursor.execute("DELETE FROM conversations WHERE id IN (SELECT id FROM fresh_conversations)")
        cursor.execute("INSERT INTO conversations SELECT * FROM fresh_conversations")
        cursor.execute("DROP TABLE fresh_activities")
        cursor.execute("DROP TABLE fresh_conversations")
    for table, sql in SNAPSHOT_SQL.items():
        if table in top:
            if append:
                continue
            sql = f"{sql} WHERE rowid <= {int(top[table])}"
        cursor.execute(f"CREATE OR REPLACE TABLE {table} AS {sql}")
    cursor.execute(f"CREATE OR REPLACE TABLE enrichments AS {_enrichments_sql(cursor)}")
    _build_derived(cursor)
    run_done = marks["run_status"] in (None, "done")
    meta = {"version": SNAPSHOT_VERSION, "store": str(path), "marks": marks, "clean": run_done}
    cursor.execute("CREATE OR REPLACE TABLE parvis_meta (value VARCHAR)")
    cursor.execute("INSERT INTO parvis_meta VALUES (?)", [json.dumps(meta, default=str)])
    cursor.execute("COMMIT")
    cursor.execute("DETACH s")
    cursor.close()
    return "appended" if append else "built"


@dataclass
class _Cached:
    marks: dict[str, Any]
    backend: DuckDBBackend
    connection: duckdb.DuckDBPyConnection
    persistent: bool


_cache: dict[str, _Cached] = {}
# A DuckDB connection serves one query at a time, and a refresh rewrites the snapshot under it: the
# public entry points (compute, segments, unanswered questions) run one at a time per process.
# DuckDB parallelises each query itself, so little is lost, and a web server's threads stay safe.
_lock = threading.RLock()


def serialized(function: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(function)
    def one_at_a_time(*args: P.args, **kwargs: P.kwargs) -> R:
        with _lock:
            return function(*args, **kwargs)

    return one_at_a_time


# How each refresh went (table: "built", "appended", "memory"), for benchmarks and tests.
refresh_log: list[tuple[str, str, float]] = []


def _ibis(connection: duckdb.DuckDBPyConnection) -> DuckDBBackend:
    backend = ibis.duckdb.from_connection(connection)
    backend.parvis_derived = True
    return backend


def _open_file(path: Path) -> duckdb.DuckDBPyConnection | None:
    try:
        return duckdb.connect(str(path))
    except (duckdb.IOException, duckdb.Error, OSError):
        return None  # held by another process, or not writable: fall back to memory


def duckdb_backend(store: Store) -> DuckDBBackend:
    """The ibis DuckDB backend over the store's snapshot, brought up to date when the store changed."""
    key = store.engine.url.render_as_string(hide_password=False)
    marks = _marks(store)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached.marks == marks:
            return cached.backend
        started = time.perf_counter()
        sqlite = _sqlite_path(store)
        file = None
        if sqlite is not None and os.environ.get("PARVIS_SNAPSHOT", "file") != "memory":
            file = sqlite.with_name(sqlite.name + ".snapshot.duckdb")
        connection = cached.connection if cached is not None and cached.persistent else None
        if connection is None and file is not None:
            connection = _open_file(file)
        if connection is not None and file is not None and sqlite is not None:
            how = _refresh(connection, store, marks, sqlite)
            cached = _Cached(marks, _ibis(connection), connection, True)
        else:
            how = "memory"
            connection = snapshot_connection(store)
            cached = _Cached(marks, _ibis(connection), connection, False)
        _cache[key] = cached
        refresh_log.append((key, how, time.perf_counter() - started))
        return cached.backend


def backend_from_duckdb_file(path: Path) -> DuckDBBackend:
    """An ibis backend over a snapshot file (benchmarks, exported snapshots)."""
    return _ibis(duckdb.connect(str(path), read_only=True))


def _fingerprint(store: Store) -> tuple[Any, ...]:
    return tuple(sorted((key, str(value)) for key, value in _marks(store).items()))


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
