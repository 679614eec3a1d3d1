"""Benchmark: a real Synapse on loopback, ``parvis listen`` in its own process, messages sent through matrix-nio.

    .venv/bin/python benchmarks/live.py [--latency 200] [--edits 50] [--burst 10000] [--senders 5] [--no-write]

Measures, against the homeserver harness of tests/synapse.py (SQLite, loopback, rate limits off):

* ingest latency: one message at a time, from just before ``room_send`` until its row is in the
  store (polled every 2 ms); p50, p95, max over ``--latency`` messages;
* burst throughput: ``--burst`` messages sent as fast as Synapse accepts them by ``--senders``
  users (several requests in flight each), and the time until every one is stored;
* edit latency: ``--edits`` messages edited one at a time (``m.replace``), from just before the edit's
  ``room_send`` until the edited message's stored text is the new one;
* the listener's peak resident memory (VmHWM of its process) and the ``import_runs`` rows written
  (one per listening session);
* stored → enriched, when ``parvis.enrich.enrich_activities`` exists (the listener then calls it).

The figures are written to docs/benchmarks.md between the ``live`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nio import AsyncClient, ErrorResponse
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import machine, markers, write_section  # noqa: E402
from parvis.store import Store, open_store  # noqa: E402
from parvis.store.schema import activities, enrichments, import_runs  # noqa: E402
from tests.cli_run import PARVIS  # noqa: E402
from tests.synapse import Account, Synapse  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
MARK_BEGIN, MARK_END = markers("live")
SOURCE = "bench"
POLL = 0.002


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def client(server: Synapse, account: Account) -> AsyncClient:
    made = AsyncClient(server.url, account.user_id)
    made.access_token = account.access_token
    made.user_id = account.user_id
    return made


def ok(response: Any) -> Any:
    if isinstance(response, ErrorResponse):
        raise SystemExit(f"Synapse refused: {response.status_code} {response.message}")
    return response


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stored(store: Store, activity_id: str) -> bool:
    with store.engine.connect() as connection:
        return connection.execute(select(activities.c.id).where(activities.c.id == activity_id)).first() is not None


def count_with_prefix(store: Store, prefix: str) -> int:
    with store.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).where(activities.c.source_id == SOURCE, activities.c.text_plain.like(f"{prefix}%"))
            ).scalar_one()
        )


def stored_text(store: Store, activity_id: str) -> str | None:
    with store.engine.connect() as connection:
        text: str | None = connection.execute(
            select(activities.c.text_plain).where(activities.c.id == activity_id)
        ).scalar_one_or_none()
        return text


def enriched(store: Store, activity_id: str) -> bool:
    with store.engine.connect() as connection:
        found = connection.execute(select(enrichments.c.enricher).where(enrichments.c.activity_id == activity_id))
        return found.first() is not None


def has_enrichment() -> bool:
    try:
        import parvis.enrich as enrich_package
    except ImportError:
        return False
    return callable(getattr(enrich_package, "enrich_activities", None))


async def latency(
    server: Synapse, store: Store, account: Account, room: str, count: int, enrich: bool
) -> dict[str, Any]:
    sender = client(server, account)
    to_store: list[float] = []
    acked: list[float] = []
    to_enriched: list[float] = []
    try:
        for number in range(count):
            started = time.perf_counter()
            response = ok(
                await sender.room_send(room, "m.room.message", {"msgtype": "m.text", "body": f"ping {number}"})
            )
            acked.append(time.perf_counter() - started)
            activity_id = f"{SOURCE}:{response.event_id}"
            while not stored(store, activity_id):
                await asyncio.sleep(POLL)
            landed = time.perf_counter()
            to_store.append(landed - started)
            if enrich:
                deadline = landed + 30
                while not enriched(store, activity_id) and time.perf_counter() < deadline:
                    await asyncio.sleep(POLL)
                to_enriched.append(time.perf_counter() - landed)
    finally:
        await sender.close()
    figures: dict[str, Any] = {
        "messages": count,
        "send_ack_p50_ms": statistics.median(acked) * 1000,
        "p50_ms": statistics.median(to_store) * 1000,
        "p95_ms": percentile(to_store, 0.95) * 1000,
        "max_ms": max(to_store) * 1000,
    }
    if to_enriched:
        figures |= {
            "enriched_p50_ms": statistics.median(to_enriched) * 1000,
            "enriched_p95_ms": percentile(to_enriched, 0.95) * 1000,
        }
    return figures


async def edit_latency(server: Synapse, store: Store, account: Account, room: str, count: int) -> dict[str, Any]:
    sender = client(server, account)
    to_applied: list[float] = []
    try:
        for number in range(count):
            original = ok(
                await sender.room_send(room, "m.room.message", {"msgtype": "m.text", "body": f"draft {number}"})
            ).event_id
            while stored_text(store, f"{SOURCE}:{original}") is None:
                await asyncio.sleep(POLL)
            new_text = f"edited {number}"
            content = {
                "msgtype": "m.text",
                "body": f"* {new_text}",
                "m.new_content": {"msgtype": "m.text", "body": new_text},
                "m.relates_to": {"rel_type": "m.replace", "event_id": original},
            }
            started = time.perf_counter()
            ok(await sender.room_send(room, "m.room.message", content))
            while stored_text(store, f"{SOURCE}:{original}") != new_text:
                await asyncio.sleep(POLL)
            to_applied.append(time.perf_counter() - started)
    finally:
        await sender.close()
    return {
        "edits": count,
        "p50_ms": statistics.median(to_applied) * 1000,
        "p95_ms": percentile(to_applied, 0.95) * 1000,
        "max_ms": max(to_applied) * 1000,
    }


async def burst(
    server: Synapse, store: Store, senders: list[Account], room: str, total: int, in_flight: int
) -> dict[str, Any]:
    clients = [client(server, account) for account in senders]
    numbers = iter(range(total))

    async def worker(sender: AsyncClient) -> None:
        for number in numbers:  # shared iterator: the workers split the messages between them
            ok(await sender.room_send(room, "m.room.message", {"msgtype": "m.text", "body": f"burst {number}"}))

    started = time.perf_counter()
    await asyncio.gather(*(worker(sender) for sender in clients for _ in range(in_flight)))
    sent = time.perf_counter()
    for sender in clients:
        await sender.close()
    while (found := count_with_prefix(store, "burst ")) < total:
        await asyncio.sleep(0.2)
    done = time.perf_counter()
    return {
        "messages": found,
        "senders": len(senders),
        "in_flight": len(senders) * in_flight,
        "send_s": sent - started,
        "send_rate": total / (sent - started),
        "stored_s": done - started,
        "stored_rate": total / (done - started),
        "lag_after_last_send_s": done - sent,
    }


def catch_up(server: Synapse, bot: Account, root: Path, env: dict[str, str]) -> dict[str, Any]:
    """The listener alone: ``parvis listen --once`` into a new store reads the room's whole history."""
    db = f"sqlite:///{root / 'catchup.db'}"
    # A new device (password login): Synapse caches an identical initial /sync of the same device for 2 minutes.
    env = {key: value for key, value in env.items() if key != "PARVIS_MATRIX_TOKEN"}
    env |= {"PARVIS_DB": db, "XDG_CONFIG_HOME": str(root / "catchup-config")}
    connect = [*PARVIS, "connect", "matrix", "--homeserver", server.url, "--user", bot.user_id, "--source", SOURCE]
    subprocess.run(connect, env={**env, "PARVIS_MATRIX_PASSWORD": bot.password}, check=True, capture_output=True)
    started = time.perf_counter()
    with open(root / "catchup.log", "wb") as log:
        process = subprocess.Popen([*PARVIS, "listen", "--once"], env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"parvis listen --once failed; see {root / 'catchup.log'}")
    store = open_store(db)
    try:
        with store.engine.connect() as connection:
            count = int(connection.execute(select(func.count()).where(activities.c.source_id == SOURCE)).scalar_one())
    finally:
        store.close()
    return {"activities": count, "seconds": seconds, "rate": count / seconds, "peak_rss_mb": usage.ru_maxrss / 1024}


def render(results: dict[str, Any]) -> str:
    lat, bur, cat, edit = results["latency"], results["burst"], results["catchup"], results["edits"]
    lines = [
        MARK_BEGIN,
        f"Measured {results['date']} on {results['machine']}, by `.venv/bin/python benchmarks/live.py`; Synapse "
        f"{results['synapse']} (SQLite, loopback) and the listener (`parvis listen`, SQLite store) on the same "
        "machine.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| ingest latency, send → row stored, p50 ({lat['messages']} messages one by one) | {lat['p50_ms']:.0f} ms |",
        f"| ingest latency p95 | {lat['p95_ms']:.0f} ms |",
        f"| ingest latency max | {lat['max_ms']:.0f} ms |",
        f"| of which Synapse accepting the send (p50) | {lat['send_ack_p50_ms']:.0f} ms |",
    ]
    if "enriched_p50_ms" in lat:
        lines.append(
            f"| stored → enriched p50 / p95 | {lat['enriched_p50_ms']:.0f} / {lat['enriched_p95_ms']:.0f} ms |"
        )
    else:
        lines.append("| stored → enriched | not measured: `parvis.enrich.enrich_activities` did not exist |")
    lines += [
        f"| edit latency, edit sent → edited message's stored text changed, p50 / p95 / max "
        f"({edit['edits']} edits one by one) | {edit['p50_ms']:.0f} / {edit['p95_ms']:.0f} / {edit['max_ms']:.0f} ms |",
        f"| burst: {bur['messages']:,} messages from {bur['senders']} users ({bur['in_flight']} requests in flight), "
        f"all sent | {bur['send_s']:.1f} s ({bur['send_rate']:,.0f} messages/s) |",
        f"| burst: all stored | {bur['stored_s']:.1f} s (**{bur['stored_rate']:,.0f} messages/s**), "
        f"{bur['lag_after_last_send_s']:.1f} s after the last send |",
        f"| listener peak RSS (VmHWM) | {results['peak_rss_mb']:.0f} MB |",
        f"| history catch-up, listener alone: `parvis listen --once` into a new store reads the room "
        f"({cat['activities']:,} activities, `/messages` pages of 500) | {cat['seconds']:.1f} s "
        f"(**{cat['rate']:,.0f} activities/s**), peak RSS {cat['peak_rss_mb']:.0f} MB |",
        f"| `import_runs` rows written by the listener over the whole run (one per listening session) | "
        f"{len(results['import_runs']):,} ({', '.join(results['import_runs'])}) |",
        "",
        "Synapse (the sender side) is the limit: the listener keeps up with what the homeserver accepts, "
        "and its catch-up after a burst is the lag above."
        if bur["lag_after_last_send_s"] < bur["send_s"] / 4
        else "The listener is the limit: it stores more slowly than Synapse accepts messages.",
        MARK_END,
    ]
    return "\n".join(lines)


def write_docs(block: str) -> None:
    write_section("live", "Live (Matrix)", block, DOCS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=int, default=200)
    parser.add_argument("--edits", type=int, default=50)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=4, help="Concurrent sends per sender.")
    parser.add_argument("--no-write", action="store_true", help="Print the figures only.")
    arguments = parser.parse_args()
    import synapse as synapse_package

    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{machine()}, load average {os.getloadavg()[0]:.1f} at start",
        "synapse": synapse_package.__version__.split()[0],
    }
    enrich = has_enrichment()
    with tempfile.TemporaryDirectory(prefix="parvis-live-bench-") as folder:
        root = Path(folder)
        server = Synapse(root / "synapse")
        server.start()
        listener: subprocess.Popen[bytes] | None = None
        store: Store | None = None
        try:
            bot = server.register("cm-bench")
            senders = [server.register(f"sender{number}") for number in range(arguments.senders)]

            async def setup() -> str:
                owner = client(server, bot)
                room = ok(await owner.room_create(name="Bench", invite=[a.user_id for a in senders])).room_id
                await owner.close()
                for account in senders:
                    member = client(server, account)
                    ok(await member.join(room))
                    await member.close()
                return str(room)

            room = asyncio.run(setup())
            db = f"sqlite:///{root / 'parvis.db'}"
            env = {**os.environ, "PARVIS_DB": db, "PARVIS_MATRIX_TOKEN": bot.access_token, "XDG_CONFIG_HOME": folder}
            connect = [*PARVIS, "connect", "matrix", "--homeserver", server.url, "--user", bot.user_id]
            subprocess.run([*connect, "--source", SOURCE], env=env, check=True, capture_output=True)
            store = open_store(db)
            with open(root / "listen.log", "wb") as log:
                listener = subprocess.Popen([*PARVIS, "listen"], env=env, stdout=log, stderr=subprocess.STDOUT)
            with store.engine.connect() as connection:
                while connection.execute(select(func.count()).select_from(activities)).scalar_one() == 0:
                    time.sleep(0.1)
            time.sleep(1)
            results["latency"] = asyncio.run(latency(server, store, senders[0], room, arguments.latency, enrich))
            print(json.dumps(results["latency"]), flush=True)
            results["edits"] = asyncio.run(edit_latency(server, store, senders[0], room, arguments.edits))
            print(json.dumps(results["edits"]), flush=True)
            results["burst"] = asyncio.run(burst(server, store, senders, room, arguments.burst, arguments.in_flight))
            print(json.dumps(results["burst"]), flush=True)
            results["peak_rss_mb"] = peak_rss_mb(listener.pid)
            listener.send_signal(signal.SIGTERM)
            listener.wait(timeout=60)
            listener = None
            with store.engine.connect() as connection:
                results["import_runs"] = list(
                    connection.execute(select(import_runs.c.status).where(import_runs.c.source_id == SOURCE)).scalars()
                )
            results["catchup"] = catch_up(server, bot, root, env)
            print(json.dumps(results["catchup"]), flush=True)
        finally:
            if listener is not None:
                listener.send_signal(signal.SIGTERM)
                listener.wait(timeout=60)
            if store is not None:
                store.close()
            server.stop()
    print(json.dumps(results, indent=2))
    if not arguments.no_write:
        write_docs(render(results))
        print(f"written to {DOCS}")


if __name__ == "__main__":
    main()
