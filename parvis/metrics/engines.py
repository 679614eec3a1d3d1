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
member event): new rows are appended by rowid watermark (activities, identities, members,
enrichments), the conversations the new activities touch are re-read, sources are reloaded when
they change.  It is rebuilt from scratch when it cannot be brought up to date safely: another store
at that path, fewer rows than before, an import run since the last refresh that updated rows in
place or did not finish, or a new snapshot format.  A PostgreSQL store's snapshot is built in
memory, as is a SQLite store's when the file cannot be written or another process holds it.

Beside the copied tables the snapshot holds the *facts* of :mod:`parvis.metrics.facts` (the same
ibis expressions the Spark engine computes on the fly from the copied tables), as tables over the
whole history that a scope filters.  A refresh maintains them from the appended rows only:
``authored`` grows by the new activities, the summary facts merge the summaries of the new rows
(counts add up, first times take the minimum), ``root_facts`` is recomputed for the conversations
the new activities touch, and the labels of new enrichments are counted.  A refresh with no new
rows only records the store's new marks.  A merge or unmerge (a member event) reloads identities
and members and rebuilds the facts.  An enrichment rewritten in place (an activity relabelled by
a new model version, or after its text changed) comes back under a new SQLite rowid
(:mod:`parvis.enrich.run` moves it): it replaces the snapshot's row, and the label counts are
counted again.
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
import ibis.expr.types as ir
import pandas as pd
from ibis.backends.duckdb import Backend as DuckDBBackend
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import make_url

from parvis.metrics import facts
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
SNAPSHOT_VERSION = "4"


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


def _detach(connection: duckdb.DuckDBPyConnection, store: Store) -> None:
    connection.execute("DETACH s")
    if _sqlite_path(store) is not None:
        # The scanner's SQLite released this process's locks on the store (see _load): pooled
        # connections reopen rather than trust their view of the WAL.
        store.engine.dispose()


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


FACTS = ("authored", *facts.SUMMARIES, "root_facts")
# Tables of one refresh's batch of new rows (regular tables: ibis reads their schema), dropped at its end.
BATCH_ACTIVITIES = "parvis_batch_activities"
BATCH_AUTHORED = "parvis_batch_authored"
BATCH_CONVERSATIONS = "parvis_batch_conversations"
BATCH_ENRICHMENTS = "parvis_batch_enrichments"
BATCH_FACT = "parvis_batch_fact"
# Fact keys that can be NULL (an activity without a channel); the others compare with "=", which lets
# DuckDB prune the fact table's row groups by the batch's range of keys (days, periods).
NULLABLE_KEYS = ("channel_id",)
BATCH_PEOPLE = "parvis_batch_people"
BATCH_THREADS = "parvis_batch_threads"  # authored rows of the batch's conversations
MERGED_FACT = "parvis_merged_fact"


def _compiler(connection: duckdb.DuckDBPyConnection) -> DuckDBBackend:
    return ibis.duckdb.from_connection(connection)


def _create(connection: duckdb.DuckDBPyConnection, on: DuckDBBackend, table: str, expression: ir.Table) -> None:
    connection.execute(f"CREATE OR REPLACE TABLE {table} AS {on.compile(expression)}")


def _summaries(
    on: DuckDBBackend, activities: str, authored: str, labelled: str, enrichments: str
) -> dict[str, ir.Table]:
    """The summary facts of the activities in table ``activities`` (their authored rows in ``authored``),
    and of the enrichments in ``enrichments`` of activities in ``labelled``."""
    acts = facts.member_activity(on.table(authored))
    built = {
        "daily_activities": facts.daily_activities(on.table(activities)),
        "member_days": facts.member_days(acts),
        **{table: facts.member_periods(acts, grain) for grain, table in facts.PERIOD_TABLES.items()},
        "member_first": facts.member_first(acts),
        "daily_labels": facts.daily_labels(on.table(labelled), on.table(enrichments)),
    }
    assert set(built) == set(facts.SUMMARIES)
    return built


def _build_facts(connection: duckdb.DuckDBPyConnection) -> None:
    """Every fact table, from the copied tables."""
    on = _compiler(connection)
    _create(connection, on, "authored", facts.authored(on.table("activities"), on.table("identities")))
    for table, expression in _summaries(on, "activities", "authored", "activities", "enrichments").items():
        _create(connection, on, table, expression)
    roots = facts.root_facts(on.table("conversations"), on.table("authored"), on.table("sources"))
    _create(connection, on, "root_facts", roots)


def _merge(connection: duckdb.DuckDBPyConnection, on: DuckDBBackend, table: str, batch: ir.Table) -> None:
    """Merge a batch's summary rows into the fact table (see :class:`parvis.metrics.facts.Summary`):
    new keys are inserted; stored rows are updated only where the batch changes them (a count always,
    a first time when the batch's is earlier, which appended history rarely is)."""
    summary = facts.SUMMARIES[table]
    _create(connection, on, BATCH_FACT, batch)
    match = " AND ".join(
        f"t.{key} IS NOT DISTINCT FROM b.{key}" if key in NULLABLE_KEYS else f"t.{key} = b.{key}"
        for key in summary.keys
    )
    stored = ", ".join(f"t.{column} AS stored_{column}" for column in summary.combine)
    connection.execute(
        f"CREATE OR REPLACE TABLE {MERGED_FACT} AS SELECT b.*, t.{summary.keys[0]} IS NOT NULL AS found, {stored} "
        f"FROM {BATCH_FACT} b LEFT JOIN {table} t ON {match}"
    )
    listed = ", ".join([*summary.keys, *summary.combine])
    connection.execute(f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {MERGED_FACT} WHERE NOT found")
    changes = " OR ".join(
        f"{column} < stored_{column}" if how == "min" else "true" for column, how in summary.combine.items()
    )
    changed = connection.execute(f"SELECT count(*) FROM {MERGED_FACT} WHERE found AND ({changes})").fetchone()
    if changed and changed[0]:
        updates = ", ".join(
            f"{column} = least(t.{column}, b.{column})" if how == "min" else f"{column} = t.{column} + b.{column}"
            for column, how in summary.combine.items()
        )
        connection.execute(f"UPDATE {table} t SET {updates} FROM {MERGED_FACT} b WHERE b.found AND {match}")
    connection.execute(f"DROP TABLE {BATCH_FACT}")
    connection.execute(f"DROP TABLE {MERGED_FACT}")


def snapshot_connection(store: Store) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB database holding the analytic snapshot of ``store``."""
    connection = duckdb.connect()
    _attach(connection, store)
    for table, sql in SNAPSHOT_SQL.items():
        connection.execute(f"CREATE TABLE {table} AS {sql}")
    connection.execute(f"CREATE TABLE enrichments AS {_enrichments_sql(connection)}")
    _build_facts(connection)
    _detach(connection, store)
    return connection


def snapshot_from_tables(source: Path, target: Path, memory_limit: str | None = None) -> None:
    """Build a snapshot file at ``target`` from a DuckDB file holding tables laid out as the store's
    (the synthetic communities of benchmarks/synthetic.py that are too large for a SQLite file)."""
    connection = duckdb.connect(str(target))
    if memory_limit is not None:
        connection.execute(f"SET memory_limit = {_quote(memory_limit)}")
        connection.execute("SET preserve_insertion_order = false")
    connection.execute(f"ATTACH {_quote(str(source))} AS s (READ_ONLY)")
    for table, sql in SNAPSHOT_SQL.items():
        connection.execute(f"CREATE OR REPLACE TABLE {table} AS {sql}")
    connection.execute(f"CREATE OR REPLACE TABLE enrichments AS {_enrichments_sql(connection)}")
    _build_facts(connection)
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


# Tables copied by rowid watermark: only appended to between two refreshes that do not rebuild.
APPENDED = ("activities", "conversations", "identities", "members", "enrichments")


def _can_append(store: Store, meta: dict[str, Any] | None, marks: dict[str, Any], path: Path) -> bool:
    """Whether the snapshot file holds this store up to its watermarks, with no row changed in place since."""
    if meta is None or meta.get("version") != SNAPSHOT_VERSION or meta.get("store") != str(path):
        return False
    old = meta["marks"]
    if not meta.get("clean") or any(int(marks[t] or 0) < int(old[t] or 0) for t in APPENDED):
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


def _load(cursor: duckdb.DuckDBPyConnection, store: Store, table: str, target: str, where: str) -> None:
    """Copy the store's rows of ``table`` matching ``where`` (SQLite) into the DuckDB table ``target``.

    They are read through the store's own SQLite connection, not DuckDB's sqlite scanner: the scanner
    holds its own copy of SQLite, and closing its file releases this process's locks on the store
    (POSIX locks are per process), after which another process's writes can leave the store's
    pooled connections reading a stale WAL index ("database disk image is malformed")."""
    sql = ENRICHMENTS_SQL if table == "enrichments" else SNAPSHOT_SQL[table]
    columns = [column.strip() for column in sql.split(" FROM ")[0].removeprefix("SELECT ").split(", ")]
    names = [column.split(" AS ")[-1].removeprefix("CAST(").strip(")").split(" ")[0] for column in columns]
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql(f"SELECT {', '.join(names)} FROM {table} WHERE {where}").all()
    if target == table:
        cursor.execute(f"DELETE FROM {table}")
    else:  # the snapshot table's column types, whatever the batch holds
        cursor.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {table} LIMIT 0")
    if not rows:
        return
    batch = pd.DataFrame.from_records([tuple(row) for row in rows], columns=names)
    for name in names:
        if batch[name].isna().all():
            batch[name] = batch[name].astype("string")  # a column of NULLs only: text, castable to any type
    cursor.register("parvis_fetched", batch)
    cursor.execute(f"INSERT INTO {target} {sql.replace(f'FROM s.{table}', 'FROM parvis_fetched')}")
    cursor.unregister("parvis_fetched")


def _rebuild(cursor: duckdb.DuckDBPyConnection, marks: dict[str, Any]) -> None:
    for table, sql in SNAPSHOT_SQL.items():
        if table in ("activities", "conversations"):
            sql = f"{sql} WHERE rowid <= {int(marks[table])}"
        cursor.execute(f"CREATE OR REPLACE TABLE {table} AS {sql}")
    cursor.execute(f"CREATE OR REPLACE TABLE enrichments AS {_enrichments_sql(cursor)}")
    _build_facts(cursor)


def _range(low: Any, high: Any) -> str:
    return f"rowid > {int(low or 0)} AND rowid <= {int(high or 0)}"


def _append(cursor: duckdb.DuckDBPyConnection, store: Store, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Bring the snapshot from the store's ``old`` marks to its ``new`` ones, reading only new rows."""
    regrouped = old["event"] != new["event"]  # members merged or unmerged: identities point elsewhere
    for table in ("identities", "members"):
        if regrouped or new[table] != old[table]:
            where = "1 = 1" if regrouped else _range(old[table], new[table])
            _load(cursor, store, table, BATCH_PEOPLE, where)
            if regrouped:
                cursor.execute(f"DELETE FROM {table}")
            cursor.execute(f"INSERT INTO {table} SELECT * FROM {BATCH_PEOPLE}")
    if new["sources"] != old["sources"]:
        _load(cursor, store, "sources", "sources", "1 = 1")
    has_activities = new["activities"] != old["activities"]
    has_conversations = has_activities or new["conversations"] != old["conversations"]
    has_enrichments = new["enrichments"] != old["enrichments"]
    if has_activities:
        _load(cursor, store, "activities", BATCH_ACTIVITIES, _range(old["activities"], new["activities"]))
        cursor.execute(f"INSERT INTO activities SELECT * FROM {BATCH_ACTIVITIES}")
    if has_conversations:
        # New conversations, and those the new activities may have changed (root, title).
        touched = f"SELECT conversation_id FROM activities WHERE {_range(old['activities'], new['activities'])}"
        where = f"({_range(old['conversations'], new['conversations'])}) OR id IN ({touched})"
        _load(cursor, store, "conversations", BATCH_CONVERSATIONS, where)
        cursor.execute(f"DELETE FROM conversations WHERE id IN (SELECT id FROM {BATCH_CONVERSATIONS})")
        cursor.execute(f"INSERT INTO conversations SELECT * FROM {BATCH_CONVERSATIONS}")
    relabelled = False
    if has_enrichments:
        _load(cursor, store, "enrichments", BATCH_ENRICHMENTS, _range(old["enrichments"], new["enrichments"]))
        # A row rewritten in place by `parvis enrich` comes back under a new rowid: it replaces the old one.
        replaced = cursor.execute(
            f"DELETE FROM enrichments WHERE (activity_id, enricher) IN "
            f"(SELECT activity_id, enricher FROM {BATCH_ENRICHMENTS})"
        ).fetchone()
        relabelled = bool(replaced and replaced[0])
        cursor.execute(f"INSERT INTO enrichments SELECT * FROM {BATCH_ENRICHMENTS}")
    if regrouped:
        _build_facts(cursor)
    else:
        _append_facts(cursor, has_activities, has_conversations, has_enrichments, relabelled)
    for table in (BATCH_ACTIVITIES, BATCH_CONVERSATIONS, BATCH_ENRICHMENTS, BATCH_PEOPLE):
        cursor.execute(f"DROP TABLE IF EXISTS {table}")


def _append_facts(
    cursor: duckdb.DuckDBPyConnection,
    has_activities: bool,
    has_conversations: bool,
    has_enrichments: bool,
    relabelled: bool,
) -> None:
    on = _compiler(cursor)
    if has_activities:
        _create(cursor, on, BATCH_AUTHORED, facts.authored(on.table(BATCH_ACTIVITIES), on.table("identities")))
        cursor.execute(f"INSERT INTO authored SELECT * FROM {BATCH_AUTHORED}")
        batch = _summaries(on, BATCH_ACTIVITIES, BATCH_AUTHORED, BATCH_ACTIVITIES, "enrichments")
        for table, expression in batch.items():
            if table != "daily_labels":  # labels are counted from the new enrichments, below
                _merge(cursor, on, table, expression)
        cursor.execute(f"DROP TABLE {BATCH_AUTHORED}")
    if relabelled:  # labels were taken back: count them again
        _create(cursor, on, "daily_labels", facts.daily_labels(on.table("activities"), on.table("enrichments")))
    elif has_enrichments:
        labels = facts.daily_labels(on.table("activities"), on.table(BATCH_ENRICHMENTS))
        _merge(cursor, on, "daily_labels", labels)
    if has_conversations:
        # A conversation's facts depend on its own rows only (its opening activity is in it).
        cursor.execute(f"DELETE FROM root_facts WHERE conversation_id IN (SELECT id FROM {BATCH_CONVERSATIONS})")
        cursor.execute(
            f"CREATE OR REPLACE TABLE {BATCH_THREADS} AS SELECT * FROM authored "
            f"WHERE conversation_id IN (SELECT id FROM {BATCH_CONVERSATIONS})"
        )
        roots = facts.root_facts(on.table(BATCH_CONVERSATIONS), on.table(BATCH_THREADS), on.table("sources"))
        cursor.execute(f"INSERT INTO root_facts {on.compile(roots)}")
        cursor.execute(f"DROP TABLE {BATCH_THREADS}")


def _refresh(connection: duckdb.DuckDBPyConnection, store: Store, marks: dict[str, Any], path: Path) -> str:
    """Bring the snapshot file up to ``marks`` in one transaction; says how ("current", "built" or "appended")."""
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
    cursor.execute("BEGIN")
    if append:
        assert meta is not None
        _append(cursor, store, meta["marks"], marks)
    else:
        _attach(cursor, store)
        _rebuild(cursor, marks)
    run_done = marks["run_status"] in (None, "done")
    meta = {"version": SNAPSHOT_VERSION, "store": str(path), "marks": marks, "clean": run_done}
    cursor.execute("CREATE OR REPLACE TABLE parvis_meta (value VARCHAR)")
    cursor.execute("INSERT INTO parvis_meta VALUES (?)", [json.dumps(meta, default=str)])
    cursor.execute("COMMIT")
    if not append:
        _detach(cursor, store)
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
