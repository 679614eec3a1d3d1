"""Synthetic communities fitted to the real archives, written straight into a Parvis store.

    .venv/bin/python benchmarks/synthetic.py --activities 10000000 --db .bench/synthetic-10m.db
    .venv/bin/python benchmarks/synthetic.py --activities 100000000 --duckdb .bench/synthetic-100m.duckdb

The parameters are **fitted** to a store holding the real archives of ../shared/data
(se_quantumcomputing_2018, mailinglist_r_package_devel, chat_ubuntu_irc_disentangle), imported with
``parvis import`` into .bench/real.db on first use, and printed:

* per source: its share of all activities, the share of each kind, which kinds belong to a
  conversation and which do not (IRC presence lines, badges), and which are anonymous (votes);
* activities per member: a log-normal fitted to the per-identity counts (heavy-tailed: the top 1% of
  members make a large part of the activity, as in the real archives);
* thread sizes: a log-normal fitted to the activities per conversation;
* reply delays: a log-normal fitted to the seconds from a conversation's opening activity to each
  later activity in it;
* channels: the real channels' shares (Stack Exchange tags, the list, the IRC room), and, for Stack
  Exchange, the registered identities that never acted (Users.xml) relative to those that did.

Generation is vectorised with NumPy and deterministic for a given ``--seed``.  Rows are written with
bulk inserts (DuckDB's SQLite writer, indexes dropped during the load and rebuilt after), not
through the ingest path: the ingest path computes content hashes, threads, upserts and stores raw
payloads, which a synthetic row does not have (``raw_payloads`` stays empty, texts are NULL,
``content_hash`` is a constant).  One ``import_runs`` row records the load so caches keyed on the
store's state see it.  With ``--duckdb`` the same tables go into a DuckDB file with the store's
table layout (narrow columns only), which the metrics benchmark turns into an analytic snapshot
without a SQLite store (for sizes a SQLite file would take too long to write here).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".bench"
DATA = Path(os.environ.get("PARVIS_SHARED_DATA", ROOT.parent / "shared" / "data"))
REAL_STORE = WORK / "real.db"
REAL_SOURCES = {
    "quantumcomputing": ("stackexchange", DATA / "se_quantumcomputing_2018"),
    "r-package-devel": ("mbox", DATA / "mailinglist_r_package_devel" / "archive"),
    "ubuntu-irc": ("irc", DATA / "chat_ubuntu_irc_disentangle" / "train"),
}
END = datetime(2026, 11, 1)
CHUNK = 2_000_000


@dataclass
class SourceFit:
    """What one real source looks like, reduced to the parameters the generator draws from."""

    source: str
    platform: str
    share: float  # of all activities
    threaded_kinds: dict[str, float]  # kind -> share among activities in a conversation (roots excluded)
    root_kinds: dict[str, float]  # kind of a conversation's opening activity
    loose_kinds: dict[str, float]  # kind -> share among activities outside conversations
    threaded_share: float  # activities in a conversation / all
    anonymous: dict[str, float]  # kind -> share without an identity
    per_member: tuple[float, float]  # log-normal (mu, sigma) of activities per identity
    thread_size: tuple[float, float]  # log-normal (mu, sigma) of activities per conversation
    reply_delay: tuple[float, float]  # log-normal (mu, sigma) of seconds after the opening activity
    channels: list[tuple[str, float]] = field(default_factory=list)  # native channel id, share
    channel_kind: str = "room"
    silent_ratio: float = 0.0  # registered identities without activity / identities with activity
    bot_share: float = 0.0
    top1_share: float = 0.0  # share of activity made by the top 1% of identities (for comparison)


def ensure_real_store() -> Path:
    if REAL_STORE.exists():
        return REAL_STORE
    WORK.mkdir(exist_ok=True)
    parvis = ROOT / ".venv" / "bin" / "parvis"
    for source, (platform, path) in REAL_SOURCES.items():
        print(f"importing {path} as {source} into {REAL_STORE} ...", flush=True)
        result = subprocess.run(
            [str(parvis), "--db", f"sqlite:///{REAL_STORE}", "import", platform, str(path), "--source", source],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if result.returncode not in (0, 3):  # 3: some lines quarantined (IRC logs hold a few)
            raise SystemExit(f"import of {path} failed ({result.returncode})")
    return REAL_STORE


def _lognormal(values: np.ndarray) -> tuple[float, float]:
    logs = np.log(np.maximum(values.astype("float64"), 1e-9))
    return float(logs.mean()), float(logs.std())


def _shares(rows: list[tuple[str, int]]) -> dict[str, float]:
    total = sum(count for _, count in rows) or 1
    return {str(key): count / total for key, count in rows}


def fit(store: Path) -> list[SourceFit]:
    """The parameters of each source of the real store (see the module docstring)."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    total = db.execute("SELECT count(*) FROM activities").fetchone()[0]
    fits = []
    for source, platform in db.execute("SELECT id, platform FROM sources ORDER BY id").fetchall():
        count = db.execute("SELECT count(*) FROM activities WHERE source_id = ?", (source,)).fetchone()[0]
        roots = "SELECT root_activity_id FROM conversations WHERE source_id = ? AND root_activity_id IS NOT NULL"
        threaded = db.execute(
            f"SELECT kind, count(*) FROM activities WHERE source_id = ? AND conversation_id IS NOT NULL "
            f"AND id NOT IN ({roots}) GROUP BY kind ORDER BY kind",
            (source, source),
        ).fetchall()
        root_kinds = db.execute(
            f"SELECT kind, count(*) FROM activities WHERE id IN ({roots}) GROUP BY kind ORDER BY kind", (source,)
        ).fetchall()
        loose = db.execute(
            "SELECT kind, count(*) FROM activities WHERE source_id = ? AND conversation_id IS NULL "
            "GROUP BY kind ORDER BY kind",
            (source,),
        ).fetchall()
        in_threads = sum(n for _, n in threaded) + sum(n for _, n in root_kinds)
        anonymous = db.execute(
            "SELECT kind, avg(identity_id IS NULL) FROM activities WHERE source_id = ? GROUP BY kind ORDER BY kind",
            (source,),
        ).fetchall()
        per_member = np.array(
            [
                n
                for (n,) in db.execute(
                    "SELECT count(*) FROM activities WHERE source_id = ? AND identity_id IS NOT NULL "
                    "GROUP BY identity_id",
                    (source,),
                )
            ]
        )
        ordered = np.sort(per_member)[::-1]
        top1 = float(ordered[: max(1, len(ordered) // 100)].sum() / ordered.sum())
        sizes = np.array(
            [
                n
                for (n,) in db.execute(
                    "SELECT count(*) FROM activities WHERE source_id = ? AND conversation_id IS NOT NULL "
                    "GROUP BY conversation_id",
                    (source,),
                )
            ]
        )
        delays = np.array(
            [
                d
                for (d,) in db.execute(
                    "SELECT (julianday(a.created_at) - julianday(r.created_at)) * 86400 FROM activities a "
                    "JOIN conversations c ON c.id = a.conversation_id JOIN activities r ON r.id = c.root_activity_id "
                    "WHERE a.source_id = ? AND a.id != r.id",
                    (source,),
                )
            ]
        )
        delays = np.maximum(delays, 1.0)  # same-second replies and day-dated SE votes count as one second
        channels = db.execute(
            "SELECT c.native_id, c.kind, count(a.id) FROM channels c LEFT JOIN activities a ON a.channel_id = c.id "
            "WHERE c.source_id = ? GROUP BY c.id ORDER BY count(a.id) DESC, c.native_id",
            (source,),
        ).fetchall()
        channel_total = sum(n for _, _, n in channels) or 1
        acting = db.execute(
            "SELECT count(DISTINCT identity_id) FROM activities WHERE source_id = ?", (source,)
        ).fetchone()[0]
        registered_idle = db.execute(
            "SELECT count(*) FROM identities i WHERE source_id = ? AND created_at IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM activities a WHERE a.identity_id = i.id)",
            (source,),
        ).fetchone()[0]
        bots = db.execute("SELECT avg(is_bot) FROM identities WHERE source_id = ?", (source,)).fetchone()[0]
        fits.append(
            SourceFit(
                source=source,
                platform=platform,
                share=count / total,
                threaded_kinds=_shares(threaded),
                root_kinds=_shares(root_kinds),
                loose_kinds=_shares(loose),
                threaded_share=in_threads / count,
                anonymous={kind: float(value) for kind, value in anonymous if value},
                per_member=_lognormal(per_member),
                thread_size=_lognormal(sizes),
                reply_delay=_lognormal(delays),
                channels=[(native, n / channel_total) for native, _, n in channels if n],
                channel_kind=channels[0][1] if channels else "room",
                silent_ratio=registered_idle / acting if acting else 0.0,
                bot_share=float(bots or 0.0),
                top1_share=top1,
            )
        )
    db.close()
    return fits


def print_fit(fits: list[SourceFit]) -> None:
    for one in fits:
        print(f"-- {one.source} ({one.platform}): {one.share:.1%} of activities")
        for key, value in asdict(one).items():
            if key in ("source", "platform", "share"):
                continue
            if key == "channels":
                value = f"{len(value)} channels, top shares " + ", ".join(f"{n}={s:.1%}" for n, s in value[:3])
            elif isinstance(value, dict):
                value = ", ".join(f"{k}={v:.3f}" for k, v in value.items())
            elif isinstance(value, tuple):
                value = f"mu={value[0]:.3f} sigma={value[1]:.3f}"
            elif isinstance(value, float):
                value = f"{value:.4f}"
            print(f"   {key}: {value}")


# -- generation --------------------------------------------------------------------------------------------


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(pa.scalar(prefix), pc.cast(pa.array(numbers), pa.string()), "")


def _choice(rng: np.random.Generator, shares: dict[str, float], size: int) -> tuple[list[str], np.ndarray]:
    names = list(shares)
    weights = np.array([shares[name] for name in names])
    return names, rng.choice(len(names), size=size, p=weights / weights.sum()).astype("int16")


def _dictionary(names: list[str], codes: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype("int32")), pa.array(names)).cast(pa.string())


def _times(seconds: np.ndarray) -> pa.Array:
    """Seconds since the epoch as the text SQLAlchemy stores in SQLite (``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    stamps = pa.array(seconds.astype("int64") * 1_000_000, pa.timestamp("us"))
    return pc.strftime(stamps, format="%Y-%m-%d %H:%M:%S")  # %S carries the microseconds


@dataclass
class Generated:
    """A source's rows, as Arrow tables with the store's column names (only the narrow columns), drawn
    lazily in chunks (100M activities would not fit in memory at once)."""

    identity_count: int
    conversation_count: int
    people_chunks: Iterator[tuple[pa.Table, pa.Table]]  # members and their identities
    conversation_chunks: Iterator[pa.Table]
    activity_chunks: Iterator[pa.Table]


def generate(one: SourceFit, count: int, years: float, seed: int) -> Generated:
    rng = np.random.default_rng(seed)
    src = one.source
    span = years * 365.25 * 86400
    end = END.timestamp()
    start = end - span
    threaded = round(count * one.threaded_share)
    loose = count - threaded

    # Threads: sizes from the fitted log-normal (at least 1), until they hold the threaded activities.
    mu, sigma = one.thread_size
    expected = max(1.0, math.exp(mu + sigma * sigma / 2))
    sizes = np.maximum(1, np.rint(rng.lognormal(mu, sigma, int(threaded / expected * 1.2) + 16))).astype("int64")
    cumulative = np.cumsum(sizes)
    threads = int(np.searchsorted(cumulative, threaded)) + 1
    sizes = sizes[:threads]
    sizes[-1] -= int(cumulative[threads - 1] - threaded)
    sizes = sizes[sizes > 0]
    threads = len(sizes)
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))

    # Members: per-member activity counts from the fitted log-normal, shuffled into an author sequence.
    mu, sigma = one.per_member
    expected = max(1.0, math.exp(mu + sigma * sigma / 2))
    counts = np.maximum(1, np.rint(rng.lognormal(mu, sigma, int(count / expected * 1.3) + 16))).astype("int64")
    cumulative = np.cumsum(counts)
    members = int(np.searchsorted(cumulative, count)) + 1
    counts = counts[:members]
    counts[-1] -= int(cumulative[members - 1] - count)
    counts = counts[counts > 0]
    members = len(counts)
    authors = np.repeat(np.arange(members, dtype="int32"), counts)
    rng.shuffle(authors)

    channel_names = [native for native, _ in one.channels] or ["main"]
    channel_weights = np.array([share for _, share in one.channels] or [1.0])
    channel_weights = channel_weights / channel_weights.sum()
    thread_channel = rng.choice(len(channel_names), size=threads, p=channel_weights).astype("int32")
    thread_start = start + rng.random(threads) * span

    root_names, root_kind = _choice(rng, one.root_kinds or {"message": 1.0}, threads)
    reply_names, reply_kind = _choice(rng, one.threaded_kinds or {"message": 1.0}, max(threaded, 1))
    loose_names, loose_kind = _choice(rng, one.loose_kinds or {"message": 1.0}, max(loose, 1))
    anon = {name: one.anonymous.get(name, 0.0) for name in {*root_names, *reply_names, *loose_names}}

    channel_ids = [f"{src}:{name}" for name in channel_names]
    # Activities are drawn chunk by chunk when written (100M rows would not fit in memory at once),
    # from a generator of their own so that the tables below do not depend on how far it got.
    chunk_rng = np.random.default_rng([seed, 1])
    kinds_all = root_names + reply_names + loose_names
    anonymous_by_kind = np.array([anon[name] for name in kinds_all])
    mu, sigma = one.reply_delay

    def activity_chunks() -> Iterator[pa.Table]:
        for first in range(0, count, CHUNK):
            last = min(count, first + CHUNK)
            index = np.arange(first, last, dtype="int64")
            in_thread = index < threaded
            thread = np.searchsorted(offsets, np.minimum(index, threaded - 1), side="right") - 1
            position = index - offsets[thread]
            is_root = in_thread & (position == 0)
            delay = chunk_rng.lognormal(mu, sigma, len(index))
            moment = np.where(
                in_thread,
                thread_start[thread] + np.where(is_root, 0.0, delay),
                start + chunk_rng.random(len(index)) * span,
            )
            moment = np.minimum(moment, end - 1)
            kind_code = np.where(
                is_root,
                root_kind[thread],
                np.where(
                    in_thread,
                    len(root_names) + reply_kind[np.minimum(index, len(reply_kind) - 1)],
                    len(root_names) + len(reply_names) + loose_kind[np.maximum(index - threaded, 0)],
                ),
            )
            anonymous = chunk_rng.random(len(index)) < anonymous_by_kind[kind_code]
            author = authors[first:last]
            channel = np.where(
                in_thread,
                thread_channel[thread],
                chunk_rng.choice(len(channel_names), size=len(index), p=channel_weights),
            )
            identity = _ids(f"{src}:u", author)
            identity = pc.if_else(pa.array(anonymous), pa.scalar(None, pa.string()), identity)
            conversation = pc.if_else(pa.array(in_thread), _ids(f"{src}:t", thread), pa.scalar(None, pa.string()))
            parent = pc.if_else(
                pa.array(in_thread & ~is_root), _ids(f"{src}:a", offsets[thread]), pa.scalar(None, pa.string())
            )
            yield pa.table(
                {
                    "id": _ids(f"{src}:a", index),
                    "source_id": _dictionary([src], np.zeros(len(index), dtype="int32")),
                    "native_id": _ids("a", index),
                    "kind": _dictionary(kinds_all, kind_code),
                    "identity_id": identity,
                    "channel_id": _dictionary(channel_ids, channel),
                    "conversation_id": conversation,
                    "parent_id": parent,
                    "created_at": _times(moment),
                }
            )

    # Identities: one per member, each its own home member; Stack Exchange also lists registered
    # users who never acted.  Registration dates: the first activity's day, or uniform over the span.
    silent = round(members * one.silent_ratio)
    everyone = members + silent
    registered = one.platform == "stackexchange"
    created_at = start + rng.random(everyone) * span if registered else None
    bots = rng.random(everyone) < one.bot_share

    def people_chunks() -> Iterator[tuple[pa.Table, pa.Table]]:
        for first in range(0, everyone, CHUNK):
            numbers = np.arange(first, min(everyone, first + CHUNK), dtype="int64")
            member_ids = _ids(f"member:{src}:u", numbers)
            names = _ids("user ", numbers)
            size = len(numbers)
            created = pa.nulls(size, pa.string()) if created_at is None else _times(created_at[numbers])
            identities = pa.table(
                {
                    "id": _ids(f"{src}:u", numbers),
                    "source_id": _dictionary([src], np.zeros(size, dtype="int32")),
                    "native_id": _ids("u", numbers),
                    "member_id": member_ids,
                    "home_member_id": member_ids,
                    "handle": names,
                    "display_name": names,
                    "created_at": created,
                    "is_bot": pa.array(bots[numbers]),
                }
            )
            yield pa.table({"id": member_ids, "display_name": names}), identities

    def conversation_chunks() -> Iterator[pa.Table]:
        for first in range(0, threads, CHUNK):
            numbers = np.arange(first, min(threads, first + CHUNK), dtype="int64")
            yield pa.table(
                {
                    "id": _ids(f"{src}:t", numbers),
                    "source_id": _dictionary([src], np.zeros(len(numbers), dtype="int32")),
                    "native_id": _ids("t", numbers),
                    "channel_id": _dictionary(channel_ids, thread_channel[numbers]),
                    "title": _ids("thread ", numbers),
                    "created_at": _times(thread_start[numbers]),
                    "root_activity_id": _ids(f"{src}:a", offsets[numbers]),
                }
            )

    return Generated(everyone, threads, people_chunks(), conversation_chunks(), activity_chunks())


def _channels_table(fits: list[SourceFit]) -> pa.Table:
    rows: dict[str, list[Any]] = {"id": [], "source_id": [], "native_id": [], "name": [], "kind": []}
    for one in fits:
        for native, _ in one.channels or [("main", 1.0)]:
            rows["id"].append(f"{one.source}:{native}")
            rows["source_id"].append(one.source)
            rows["native_id"].append(native)
            rows["name"].append(native)
            rows["kind"].append(one.channel_kind)
    return pa.table(rows)


# -- writing -------------------------------------------------------------------------------------------------

# Constant values of the wide columns synthetic rows do not have.
FILL = {
    "sources": {"url": "NULL", "extras": "'{}'"},
    "channels": {"url": "NULL", "extras": "'{}'", "content_hash": "'synthetic'"},
    "members": {"merged_into": "NULL"},
    "identities": {"email": "NULL", "extras": "'{}'", "content_hash": "'synthetic'"},
    "conversations": {"thread_key": "NULL"},
    "activities": {
        "edited_at": "NULL",
        "title": "NULL",
        "text_raw": "NULL",
        "text_plain": "NULL",
        "text_format": "'text'",
        "url": "NULL",
        "extras": "'{}'",
        "content_hash": "'synthetic'",
    },
}
BULK_TABLES = ("activities", "conversations", "identities", "members")


def _insert(connection: duckdb.DuckDBPyConnection, target: str, table: str, frame: pa.Table) -> None:
    fill = FILL[table]
    columns = [*frame.column_names, *fill]
    values = [*frame.column_names, *fill.values()]
    connection.register("frame", frame)
    connection.execute(f"INSERT INTO {target}.{table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM frame")
    connection.unregister("frame")


def write(fits: list[SourceFit], total: int, years: float, seed: int, sqlite: Path | None, duck: Path | None) -> None:
    sys.path.insert(0, str(ROOT))
    from parvis.metrics.engines import _extension_path
    from parvis.store import open_store

    connection = duckdb.connect()
    connection.execute("SET memory_limit = '4GB'")  # a shared machine; DuckDB spills beyond it
    target = "s"
    indexes: list[tuple[str, str]] = []
    if sqlite is not None:
        for leftover in sqlite.parent.glob(sqlite.name + "*"):
            leftover.unlink()
        open_store(f"sqlite:///{sqlite}").close()  # the schema, through the migrations
        raw = sqlite3.connect(sqlite)
        indexes = raw.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN "
            f"({', '.join(repr(t) for t in BULK_TABLES)})"
        ).fetchall()
        for name, _ in indexes:
            raw.execute(f"DROP INDEX {name}")
        raw.commit()
        raw.close()
        connection.execute(f"LOAD '{_extension_path('duckdb_extension_sqlite_scanner', 'sqlite_scanner')}'")
        connection.execute(f"ATTACH '{sqlite}' AS s (TYPE sqlite)")
    else:
        assert duck is not None
        for leftover in duck.parent.glob(duck.name + "*"):
            leftover.unlink()
        connection.execute(f"ATTACH '{duck}' AS s")
        connection.execute(
            "CREATE TABLE s.sources (id VARCHAR, platform VARCHAR, name VARCHAR, url VARCHAR, extras VARCHAR)"
        )
        connection.execute(
            "CREATE TABLE s.channels (id VARCHAR, source_id VARCHAR, native_id VARCHAR, name VARCHAR, kind VARCHAR, "
            "url VARCHAR, extras VARCHAR, content_hash VARCHAR)"
        )
        connection.execute("CREATE TABLE s.members (id VARCHAR, display_name VARCHAR, merged_into VARCHAR)")
        connection.execute(
            "CREATE TABLE s.identities (id VARCHAR, source_id VARCHAR, native_id VARCHAR, member_id VARCHAR, "
            "home_member_id VARCHAR, handle VARCHAR, display_name VARCHAR, email VARCHAR, created_at TIMESTAMP, "
            "is_bot BOOLEAN, extras VARCHAR, content_hash VARCHAR)"
        )
        connection.execute(
            "CREATE TABLE s.conversations (id VARCHAR, source_id VARCHAR, native_id VARCHAR, channel_id VARCHAR, "
            "title VARCHAR, created_at TIMESTAMP, root_activity_id VARCHAR, thread_key VARCHAR)"
        )
        connection.execute(
            "CREATE TABLE s.activities (id VARCHAR, source_id VARCHAR, native_id VARCHAR, kind VARCHAR, "
            "identity_id VARCHAR, channel_id VARCHAR, conversation_id VARCHAR, parent_id VARCHAR, "
            "created_at TIMESTAMP, edited_at TIMESTAMP, title VARCHAR, text_raw VARCHAR, text_plain VARCHAR, "
            "text_format VARCHAR, url VARCHAR, extras VARCHAR, content_hash VARCHAR)"
        )
    # One transaction for SQLite (bulk speed); a DuckDB file commits each chunk, as one transaction of
    # 100M rows would keep them in memory.
    if sqlite is not None:
        connection.execute("BEGIN")
    sources = pa.table(
        {"id": [f.source for f in fits], "platform": [f.platform for f in fits], "name": [f.source for f in fits]}
    )
    _insert(connection, target, "sources", sources)
    _insert(connection, target, "channels", _channels_table(fits))
    remaining = total
    written = 0
    for number, one in enumerate(fits):
        count = remaining if number == len(fits) - 1 else round(total * one.share)
        remaining -= count
        began = time.perf_counter()
        rows = generate(one, count, years, seed * 1000 + number)
        for members_chunk, identities_chunk in rows.people_chunks:
            _insert(connection, target, "members", members_chunk)
            _insert(connection, target, "identities", identities_chunk)
        for chunk in rows.conversation_chunks:
            _insert(connection, target, "conversations", chunk)
        for chunk in rows.activity_chunks:
            _insert(connection, target, "activities", chunk)
            written += chunk.num_rows
        print(
            f"{one.source}: {count:,} activities, {rows.identity_count:,} members and identities, "
            f"{rows.conversation_count:,} conversations "
            f"in {time.perf_counter() - began:.0f} s",
            flush=True,
        )
    now = datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")
    if sqlite is not None:
        connection.execute(
            "INSERT INTO s.import_runs (source_id, platform, started_at, finished_at, added, updated, present, "
            f"quarantined, status) VALUES ('synthetic', 'synthetic', '{now}', '{now}', {written}, 0, 0, 0, 'done')"
        )
    if sqlite is not None:
        connection.execute("COMMIT")
    connection.close()
    if sqlite is not None:
        began = time.perf_counter()
        raw = sqlite3.connect(sqlite)
        for _, sql in indexes:
            raw.execute(sql)
        raw.commit()
        raw.execute("ANALYZE")
        raw.close()
        print(f"indexes rebuilt in {time.perf_counter() - began:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--years", type=float, default=4.0, help="time span of the synthetic community")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", type=Path, help="SQLite store to create (replaced)")
    parser.add_argument("--duckdb", type=Path, help="DuckDB file with the store's tables to create (replaced)")
    parser.add_argument("--print-fit", action="store_true", help="only fit and print the parameters")
    parser.add_argument("--json", action="store_true", help="print the fitted parameters as JSON")
    options = parser.parse_args()
    fits = fit(ensure_real_store())
    if options.json:
        print(json.dumps([asdict(one) for one in fits], indent=1))
    else:
        print_fit(fits)
    if options.print_fit:
        return
    if (options.db is None) == (options.duckdb is None):
        parser.error("give exactly one of --db and --duckdb")
    began = time.perf_counter()
    write(fits, options.activities, options.years, options.seed, options.db, options.duckdb)
    print(f"wrote {options.activities:,} activities in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
