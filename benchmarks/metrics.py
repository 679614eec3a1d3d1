"""Benchmark (issue #3): the web overview's metric set over a large synthetic community, DuckDB vs pandas.

    .venv/bin/python benchmarks/metrics.py --db .bench/syn-10m.db            # a SQLite store
    .venv/bin/python benchmarks/metrics.py --duckdb .bench/syn-30m.duckdb    # store tables in DuckDB

The community comes from benchmarks/synthetic.py.  "After import": the analytic snapshot
(``<store>.snapshot.duckdb``, see parvis/metrics/engines.py) is brought up to date first and its build
time is reported apart.  Then the dashboard set of the overview's default view (weekly grain, the
365 days up to the latest activity and the 365 before, the same seven metrics as
``parvis.web.metrics_view._names``) is computed ``--runs`` times with ``parvis.metrics``; the first
run and the median are reported.  The same metrics are then computed by a straightforward pandas
implementation (below) over the same snapshot tables loaded into data frames (loading not timed),
and both results are compared row by row.  With ``--refresh`` (a SQLite store; it is changed, so
use a copy) the snapshot's refresh is timed twice more, as a running cockpit sees it: after an
import that found nothing new (an import run, no new rows), and after ``--append-rows`` new activities
(copies of the latest ones under new ids, a day later, in their conversations).  Results go into
docs/benchmarks.md between the ``metrics`` markers (``--no-report`` to skip).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import machine, markers, write_section  # noqa: E402
from parvis import metrics  # noqa: E402
from parvis.metrics import engines  # noqa: E402
from parvis.metrics.base import Scope  # noqa: E402
from parvis.metrics.vocabulary import ACTIVE_KINDS, RESPONSE_KINDS, STARTER_KINDS  # noqa: E402
from parvis.store import open_store  # noqa: E402
from parvis.web.metrics_view import _names  # noqa: E402

MARK_BEGIN, MARK_END = markers("metrics")
GRAIN = "week"


def dashboard_scope(latest: datetime) -> Scope:
    until = latest.date()
    since = until - timedelta(days=364)
    return Scope(grain=GRAIN, since=since - timedelta(days=365), until=until)


# -- the pandas peer ----------------------------------------------------------------------------------------


def week(column: pd.Series) -> pd.Series:
    return column.dt.to_period("W-SUN").dt.start_time.dt.date


def pandas_metrics(tables: dict[str, pd.DataFrame], scope: Scope) -> dict[str, pd.DataFrame]:
    """The seven overview metrics, written directly in pandas from the definitions in docs/metrics.md."""
    end = pd.Timestamp(scope.end)
    acts = tables["activities"]
    acts = acts[acts["created_at"] < end]
    people = tables["identities"][["id", "member_id", "is_bot"]].rename(columns={"id": "identity_id"})
    authored = acts.merge(people, on="identity_id")
    member_acts = authored[~authored["is_bot"] & authored["kind"].isin(ACTIVE_KINDS)]
    out: dict[str, pd.DataFrame] = {}

    frame = acts.assign(period=week(acts["created_at"]))
    out["activities"] = frame.groupby(["source_id", "kind", "period"]).size().reset_index(name="activities")

    active = member_acts.assign(period=week(member_acts["created_at"]))[["source_id", "member_id", "period"]]
    active = active.drop_duplicates()
    out["active"] = active.groupby(["source_id", "period"]).size().reset_index(name="active_members")

    first = member_acts.groupby(["source_id", "member_id"])["created_at"].min().reset_index()
    first["period"] = week(first["created_at"])
    out["new"] = first.groupby(["source_id", "period"]).size().reset_index(name="new_members")

    conversations = tables["conversations"]
    starters = authored[~authored["is_bot"] & authored["kind"].isin(STARTER_KINDS)]
    roots = conversations.loc[conversations["root_activity_id"].notna(), ["root_activity_id"]].merge(
        starters, left_on="root_activity_id", right_on="id"
    )
    roots["period"] = week(roots["created_at"])
    out["conversations"] = roots.groupby(["source_id", "channel_id", "period"]).size().reset_index(name="conversations")

    responses = authored[~authored["is_bot"] & authored["kind"].isin(RESPONSE_KINDS)]
    responses = responses[["id", "conversation_id", "member_id", "created_at"]].rename(
        columns={"id": "response_id", "member_id": "response_member", "created_at": "response_at"}
    )
    pairs = roots[["id", "conversation_id", "member_id", "created_at"]].merge(responses, on="conversation_id")
    pairs = pairs[
        (pairs["member_id"] != pairs["response_member"])
        & (pairs["response_at"] >= pairs["created_at"])
        & (pairs["id"] != pairs["response_id"])
    ]
    firsts = pairs.groupby("id")["response_at"].min().rename("first_response_at")
    threads = roots.merge(firsts, left_on="id", right_index=True, how="left")
    threads["responded"] = threads["first_response_at"].notna().astype("int64")
    rate = threads.groupby(["source_id", "period"]).agg(conversations=("id", "size"), responded=("responded", "sum"))
    rate["response_rate"] = rate["responded"] / rate["conversations"]
    out["response"] = rate.reset_index()

    done = threads[threads["first_response_at"].notna()].copy()
    done["hours"] = (done["first_response_at"] - done["created_at"]).dt.total_seconds() / 3600
    grouped = done.groupby(["source_id", "period"])["hours"]
    out["first_response"] = pd.DataFrame(
        {"responded": grouped.size(), "median_hours": grouped.quantile(0.5), "p90_hours": grouped.quantile(0.9)}
    ).reset_index()

    enrichments = tables["enrichments"]
    labels = enrichments[enrichments["enricher"] == "sentiment"][["activity_id", "label"]]
    rows = acts.merge(labels, left_on="id", right_on="activity_id")
    rows = rows.assign(period=week(rows["created_at"]))
    sentiment = rows.groupby(["source_id", "channel_id", "period", "label"]).size().reset_index(name="activities")
    totals = sentiment.groupby(["source_id", "channel_id", "period"])["activities"].transform("sum")
    out["sentiment"] = sentiment.assign(share=sentiment["activities"] / totals)

    start = scope.since - timedelta(days=scope.since.weekday()) if scope.since else date.min
    for key, frame in out.items():
        out[key] = frame[(frame["period"] >= start) & (frame["period"] <= scope.as_of)].reset_index(drop=True)
    return out


def load_tables(snapshot: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    return {
        table: snapshot.execute(f"SELECT * FROM {table}").df()
        for table in ("activities", "identities", "conversations", "sources", "enrichments")
    }


def same(ours: dict[str, metrics.MetricResult], theirs: dict[str, pd.DataFrame]) -> list[str]:
    """Metrics whose figures differ between the two implementations (empty: all agree)."""
    names = _names(GRAIN)
    differ = []
    for key, name in names.items():
        left = ours[name].frame
        right = theirs[key]
        if len(left) != len(right):
            differ.append(f"{key} ({len(left)} vs {len(right)} rows)")
            continue
        for column in right.columns:
            if column in ("period", "source_id", "channel_id", "kind", "label") or column not in left.columns:
                continue
            a = pd.to_numeric(left[column], errors="coerce").fillna(-1).sum()
            b = pd.to_numeric(right[column], errors="coerce").fillna(-1).sum()
            if abs(a - b) > 1e-6 * max(1.0, abs(b)):
                differ.append(f"{key}.{column} ({a} vs {b})")
    return differ


# -- refreshes ----------------------------------------------------------------------------------------------


def record_import(database: Path, added: int) -> None:
    """An import run row, as ``parvis import`` writes one (what tells the snapshot the store changed)."""
    now = datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO import_runs (source_id, platform, started_at, finished_at, added, updated, present, "
            "quarantined, status) VALUES ('benchmark', 'synthetic', ?, ?, ?, 0, 0, 0, 'done')",
            (now, now, added),
        )


def append_activities(database: Path, count: int) -> None:
    """New activities: copies of the ``count`` latest ones under new ids, a day later, in the same
    conversations (what a day of new activity in the community's recent threads looks like)."""
    with sqlite3.connect(database) as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(activities)")]
        tag = f"'copy{time.time_ns()}:' || "
        moved = "strftime('%Y-%m-%d %H:%M:%f000', created_at, '+1 day')"
        values = [
            f"{tag}{column}" if column in ("id", "native_id") else moved if column == "created_at" else column
            for column in columns
        ]
        connection.execute(
            f"INSERT INTO activities ({', '.join(columns)}) SELECT {', '.join(values)} FROM activities "
            "ORDER BY created_at DESC LIMIT ?",
            (count,),
        )
    record_import(database, count)


def timed_refresh(store: Any) -> tuple[float, str]:
    started = time.perf_counter()
    engines.duckdb_backend(store)
    return time.perf_counter() - started, engines.refresh_log[-1][1]


def refreshes(store: Any, database: Path, appended: int, runs: int) -> dict[str, Any]:
    """Median refresh time after an import with no new rows, then after ``appended`` new activities."""
    empty = []
    for _ in range(runs):
        record_import(database, 0)
        seconds, how = timed_refresh(store)
        assert how == "appended", how
        empty.append(seconds)
    grown = []
    for _ in range(runs):
        append_activities(database, appended)
        seconds, how = timed_refresh(store)
        assert how == "appended", how
        grown.append(seconds)
    figures = {"refresh_empty": statistics.median(empty), "refresh_appended": statistics.median(grown)}
    figures["appended"] = appended
    print(
        f"refresh, no new rows: {figures['refresh_empty'] * 1000:.0f} ms; "
        f"{appended:,} new activities: {figures['refresh_appended']:.2f} s",
        flush=True,
    )
    return figures


# -- the run ------------------------------------------------------------------------------------------------


def run(options: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    if options.db is not None:
        store = open_store(f"sqlite:///{options.db}")
        on = engines.duckdb_backend(store)
        how = engines.refresh_log[-1][1] if engines.refresh_log else "?"
        snapshot_path = options.db.with_name(options.db.name + ".snapshot.duckdb")
    else:
        snapshot_path = options.duckdb.with_name(options.duckdb.name + ".snapshot.duckdb")
        how = "reused"
        if not snapshot_path.exists() or options.rebuild:
            snapshot_path.unlink(missing_ok=True)
            engines.snapshot_from_tables(options.duckdb, snapshot_path, options.memory_limit)
            how = "built"
        on = engines.backend_from_duckdb_file(snapshot_path)
    prepare = time.perf_counter() - began
    connection = on.con
    count = connection.execute("SELECT count(*) FROM activities").fetchone()[0]
    latest = connection.execute("SELECT max(created_at) FROM activities").fetchone()[0]
    scope = dashboard_scope(latest)
    names = list(_names(GRAIN).values())
    times = []
    results: dict[str, metrics.MetricResult] = {}
    for _ in range(options.runs):
        started = time.perf_counter()
        if options.db is not None:
            results = metrics.compute(store, names, grain=GRAIN, since=scope.since, until=scope.until)
        else:
            results = metrics.compute_on(on, names, scope)
        times.append(time.perf_counter() - started)
        print(f"duckdb: {times[-1]:.2f} s", flush=True)
    load_after = os.getloadavg()[0]
    figures: dict[str, Any] = {
        "activities": count,
        "snapshot": how,
        "prepare": prepare,
        "first": times[0],
        "median": statistics.median(times),
        "runs": options.runs,
        "snapshot_mb": snapshot_path.stat().st_size / 2**20 if snapshot_path.exists() else 0.0,
        "load": (load_before, load_after),
    }
    if not options.skip_pandas:
        tables = load_tables(connection)
        started = time.perf_counter()
        theirs = pandas_metrics(tables, scope)
        figures["pandas"] = time.perf_counter() - started
        figures["differ"] = same(results, theirs)
        print(f"pandas: {figures['pandas']:.2f} s; differences: {figures['differ'] or 'none'}", flush=True)
        del tables, theirs
    if options.db is not None and options.refresh:
        figures.update(refreshes(store, options.db, options.append_rows, 3))
        figures["load"] = (load_before, os.getloadavg()[0])
    return figures


def write_report(rows: list[dict[str, Any]]) -> None:
    lines = [
        MARK_BEGIN,
        f"Measured {datetime.now():%Y-%m-%d} on {machine()}, by `.venv/bin/python benchmarks/metrics.py`; "
        "the machine is shared, the load average (1 min) before and after each run is shown.",
        "",
        "The overview's metric set (7 metrics, weekly grain, two 365-day windows up to the latest activity), "
        "over a synthetic community fitted to the real archives (benchmarks/synthetic.py).  DuckDB: "
        "`parvis.metrics.compute` over the persistent snapshot; pandas: a direct pandas implementation of "
        "the same metrics over the same tables already in memory (loading not timed).  The snapshot keeps the "
        'facts the metrics start from (parvis/metrics/facts.py); "snapshot" is the time to build it from the '
        "store's tables (built), or to bring an existing one up to date (appended, current).",
        "",
        "| activities | store | snapshot (s) | DuckDB first (s) | DuckDB median (s) | pandas (s) | pandas / DuckDB "
        "| results agree | load avg |",
        "|---:|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        pandas = row.get("pandas")
        ratio = f"{pandas / row['median']:.1f}×" if pandas else "–"
        agree = "–" if not pandas else "yes" if not row.get("differ") else "no: " + "; ".join(row["differ"])
        lines.append(
            f"| {row['activities']:,} | {row['store']} | {row['prepare']:.0f} ({row['snapshot']}) | {row['first']:.2f} "
            f"| {row['median']:.2f} | {f'{pandas:.1f}' if pandas else '–'} | {ratio} | {agree} "
            f"| {row['load'][0]:.1f} → {row['load'][1]:.1f} |"
        )
    refreshed = [row for row in rows if "refresh_empty" in row]
    if refreshed:
        lines += [
            "",
            "The snapshot's refresh in a running process (`--refresh`: the cockpit's case), median of 3: after an "
            "import that found nothing new, and after new activities (copies of the latest ones, a day later, in "
            "their conversations):",
            "",
            "| activities | store | refresh, no new rows (ms) | new activities | refresh with them (s) | load avg |",
            "|---:|---|---:|---:|---:|---|",
        ]
        for row in refreshed:
            lines.append(
                f"| {row['activities']:,} | {row['store']} | {row['refresh_empty'] * 1000:.0f} | {row['appended']:,} "
                f"| {row['refresh_appended']:.2f} | {row['load'][0]:.1f} → {row['load'][1]:.1f} |"
            )
    notes = [f"- {row['activities']:,} activities: {row['note']}" for row in rows if row.get("note")]
    if notes:
        lines += ["", *notes]
    lines.append(MARK_END)
    write_section("metrics", "Metrics", "\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="SQLite store written by benchmarks/synthetic.py --db")
    parser.add_argument("--duckdb", type=Path, help="DuckDB file written by benchmarks/synthetic.py --duckdb")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the snapshot of --duckdb")
    parser.add_argument("--refresh", action="store_true", help="time refreshes (changes the --db store)")
    parser.add_argument("--append-rows", type=int, default=10_000, help="new activities for --refresh")
    parser.add_argument("--memory-limit", help="DuckDB's memory limit while building a --duckdb snapshot")
    parser.add_argument("--note", help="a sentence shown under the table for this run")
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--append", action="store_true", help="keep the rows already in the report")
    options = parser.parse_args()
    if (options.db is None) == (options.duckdb is None):
        parser.error("give exactly one of --db and --duckdb")
    figures = run(options)
    if options.note:
        figures["note"] = options.note
    figures["store"] = f"SQLite ({options.db.name})" if options.db else f"DuckDB tables ({options.duckdb.name})"
    if options.no_report:
        return
    rows = [figures]
    saved = ROOT / ".bench" / "metrics-rows.json"
    if options.append and saved.exists():
        import json

        rows = [
            row
            for row in json.loads(saved.read_text())
            if (row["activities"], row["store"]) != (figures["activities"], figures["store"])
        ] + rows
    import json

    saved.write_text(json.dumps(rows))
    write_report(sorted(rows, key=lambda row: row["activities"]))


if __name__ == "__main__":
    main()
