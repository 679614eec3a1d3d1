"""Benchmark (issue #5): the overview and the member list under concurrent clients.

    .venv/bin/python benchmarks/web.py --db .bench/syn-10m.db [--clients 20] [--seconds 30]

Starts ``parvis serve`` on the store as a subprocess on a free loopback port, creates an analyst
account with ``parvis users add``, logs in (the login form and its CSRF token, as a browser does),
measures the first request to each page (cold: the metrics and segments are computed), then runs
``--clients`` concurrent asyncio/httpx clients for ``--seconds`` seconds, each with its own session
(logged in like the first) and a browser's Accept-Encoding, requesting the overview and the member
list in turn.  Reports p50/p95/p99 latency, requests/s and bytes on the wire per page, and the CPU
time the server and the load generator spent per request (figures that depend less on what else runs
on a shared machine).  Then, as the floor to compare with, the same clients request ``/healthz``
(two bytes, no session, no template) for as long: what the server framework and the load generator
cost on this machine whatever the page.  Writes the figures into docs/benchmarks.md between the
``web`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import machine, markers, write_section  # noqa: E402

PARVIS = ROOT / ".venv" / "bin" / "parvis"
MARK_BEGIN, MARK_END = markers("web")
PAGES = {"overview": "/", "members": "/members"}
FLOOR = {"floor": "/healthz"}
# What Chromium sends; the server answers gzip (and never a 304: these clients keep no copies).
BROWSER_HEADERS = {"Accept-Encoding": "gzip, deflate, br, zstd", "Accept-Language": "en-GB,en;q=0.9"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def login(client: httpx.AsyncClient, name: str, password: str) -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if token is None:
        raise SystemExit("no CSRF token on the login page")
    answer = await client.post(
        "/login", data={"username": name, "password": password, "csrf_token": token.group(1), "next": "/"}
    )
    if answer.status_code not in (200, 303):
        raise SystemExit(f"login failed ({answer.status_code})")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(
    base: str, sessions: list[httpx.Cookies], seconds: float, pages: dict[str, str]
) -> tuple[dict[str, list[float]], dict[str, list[int]]]:
    timings: dict[str, list[float]] = {page: [] for page in pages}
    sizes: dict[str, list[int]] = {page: [] for page in pages}
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(number: int, cookies: httpx.Cookies) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base, cookies=cookies, headers=BROWSER_HEADERS, timeout=120) as client:
            turn = number
            while time.perf_counter() < deadline:
                page = list(pages)[turn % len(pages)]
                turn += 1
                started = time.perf_counter()
                answer = await client.get(pages[page])
                if answer.status_code != 200:
                    errors += 1
                timings[page].append(time.perf_counter() - started)
                sizes[page].append(answer.num_bytes_downloaded)

    await asyncio.gather(*(worker(number, cookies) for number, cookies in enumerate(sessions)))
    if errors:
        print(f"{errors} requests failed", file=sys.stderr)
    return timings, sizes


async def session(base: str, name: str, password: str) -> httpx.Cookies:
    async with httpx.AsyncClient(base_url=base, headers=BROWSER_HEADERS, timeout=600) as client:
        await login(client, name, password)
        return client.cookies


async def measure(base: str, server: int, name: str, password: str, clients: int, seconds: float) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=base, headers=BROWSER_HEADERS, timeout=600) as client:
        await login(client, name, password)
        cold = {}
        for page, path in PAGES.items():
            started = time.perf_counter()
            answer = await client.get(path)
            cold[page] = time.perf_counter() - started
            if answer.status_code != 200:
                raise SystemExit(f"{path} answered {answer.status_code}")
    sessions = [await session(base, name, password) for _ in range(clients)]
    load_before = os.getloadavg()[0]
    server_before, client_before = cpu_seconds(server), time.process_time()
    timings, sizes = await load(base, sessions, seconds, PAGES)
    served = sum(len(values) for values in timings.values())
    cpu = {
        "server": (cpu_seconds(server) - server_before) / served,
        "client": (time.process_time() - client_before) / served,
    }
    load_after = os.getloadavg()[0]
    floor, _ = await load(base, sessions, seconds, FLOOR)
    return {
        "cold": cold,
        "timings": timings,
        "sizes": sizes,
        "cpu": cpu,
        "floor": floor["floor"],
        "load": (load_before, load_after, os.getloadavg()[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--no-report", action="store_true")
    options = parser.parse_args()
    url = f"sqlite:///{options.db}"
    name, password = f"bench{secrets.token_hex(3)}", secrets.token_urlsafe(16)
    subprocess.run(
        [str(PARVIS), "--db", url, "users", "add", name, "--role", "analyst", "--password-file", "-"],
        input=password + "\n",
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(ROOT / ".bench" / "web-server.log", "wb") as log:
        server = subprocess.Popen([str(PARVIS), "--db", url, "serve", "--port", str(port)], stdout=log, stderr=log)
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            figures = asyncio.run(measure(base, server.pid, name, password, options.clients, options.seconds))
        finally:
            server.terminate()
            server.wait(timeout=30)
    timings, sizes, cold, cpu, floor, load = (
        figures[name] for name in ("timings", "sizes", "cold", "cpu", "floor", "load")
    )
    assert isinstance(timings, dict) and isinstance(sizes, dict) and isinstance(cold, dict)
    assert isinstance(cpu, dict) and isinstance(floor, list) and isinstance(load, tuple)
    lines = [
        MARK_BEGIN,
        f"Measured {datetime.now():%Y-%m-%d} on {machine()}, by `.venv/bin/python benchmarks/web.py "
        f"--db {options.db.name} --clients {options.clients} --seconds {options.seconds:.0f}`; load average "
        f"{load[0]:.1f} → {load[1]:.1f} during the pages, {load[2]:.1f} after the floor (shared machine). "
        "Target: p95 ≤ 200 ms for both pages.",
        "",
        "| page | cold first request (s) | requests | requests/s | p50 (ms) | p95 (ms) | p99 (ms) | KB on the wire |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for page, values in timings.items():
        lines.append(
            f"| {PAGES[page]} | {cold[page]:.1f} | {len(values):,} | {len(values) / options.seconds:.1f} "
            f"| {statistics.median(values) * 1000:.0f} | {percentile(values, 0.95) * 1000:.0f} "
            f"| {percentile(values, 0.99) * 1000:.0f} | {statistics.median(sizes[page]) / 1000:.1f} |"
        )
    lines.append(
        f"| {FLOOR['floor']} (floor) | | {len(floor):,} | {len(floor) / options.seconds:.1f} "
        f"| {statistics.median(floor) * 1000:.0f} | {percentile(floor, 0.95) * 1000:.0f} "
        f"| {percentile(floor, 0.99) * 1000:.0f} | 0.0 |"
    )
    lines += [
        "",
        f"CPU per request, both pages together: server {cpu['server'] * 1000:.2f} ms, load generator "
        f"{cpu['client'] * 1000:.2f} ms (one process each, on the same {os.cpu_count()} cores).",
        MARK_END,
    ]
    print("\n".join(lines))
    if options.no_report:
        return
    write_section("web", "Web", "\n".join(lines))


if __name__ == "__main__":
    main()
