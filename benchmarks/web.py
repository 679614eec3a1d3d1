"""Benchmark (issue #5): the overview and the member list under concurrent clients.

    .venv/bin/python benchmarks/web.py --db .bench/syn-10m.db [--clients 20] [--seconds 30]

Starts ``parvis serve`` on the store as a subprocess on a free loopback port, creates an analyst
account with ``parvis users add``, logs in (the login form and its CSRF token, as a browser does),
measures the first request to each page (cold: the metrics and segments are computed), then runs
``--clients`` concurrent asyncio/httpx clients for ``--seconds`` seconds, each requesting the overview
and the member list in turn.  Reports p50/p95/p99 latency and requests/s per page, and writes them
into docs/benchmarks.md between the ``web`` markers.
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

from benchmarks.ingest import machine  # noqa: E402

PARVIS = ROOT / ".venv" / "bin" / "parvis"
MARK_BEGIN = "<!-- benchmark:web:begin -->"
MARK_END = "<!-- benchmark:web:end -->"
PAGES = {"overview": "/", "members": "/members"}


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


async def load(base: str, cookies: httpx.Cookies, clients: int, seconds: float) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {page: [] for page in PAGES}
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(number: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=120) as client:
            turn = number
            while time.perf_counter() < deadline:
                page = list(PAGES)[turn % len(PAGES)]
                turn += 1
                started = time.perf_counter()
                answer = await client.get(PAGES[page])
                if answer.status_code != 200:
                    errors += 1
                timings[page].append(time.perf_counter() - started)

    await asyncio.gather(*(worker(number) for number in range(clients)))
    if errors:
        print(f"{errors} requests failed", file=sys.stderr)
    return timings


async def measure(base: str, name: str, password: str, clients: int, seconds: float) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        await login(client, name, password)
        cold = {}
        for page, path in PAGES.items():
            started = time.perf_counter()
            answer = await client.get(path)
            cold[page] = time.perf_counter() - started
            if answer.status_code != 200:
                raise SystemExit(f"{path} answered {answer.status_code}")
        cookies = client.cookies
    load_before = os.getloadavg()[0]
    timings = await load(base, cookies, clients, seconds)
    return {"cold": cold, "timings": timings, "load": (load_before, os.getloadavg()[0])}


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
            figures = asyncio.run(measure(base, name, password, options.clients, options.seconds))
        finally:
            server.terminate()
            server.wait(timeout=30)
    timings = figures["timings"]
    cold = figures["cold"]
    load = figures["load"]
    assert isinstance(timings, dict) and isinstance(cold, dict) and isinstance(load, tuple)
    lines = [
        MARK_BEGIN,
        f"Measured {datetime.now():%Y-%m-%d} on {machine()}, by `.venv/bin/python benchmarks/web.py "
        f"--db {options.db.name} --clients {options.clients} --seconds {options.seconds:.0f}`; load average "
        f"{load[0]:.1f} → {load[1]:.1f} (shared machine).",
        "",
        "| page | cold first request (s) | requests | requests/s | p50 (ms) | p95 (ms) | p99 (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for page, values in timings.items():
        lines.append(
            f"| {PAGES[page]} | {cold[page]:.1f} | {len(values):,} | {len(values) / options.seconds:.1f} "
            f"| {statistics.median(values) * 1000:.0f} | {percentile(values, 0.95) * 1000:.0f} "
            f"| {percentile(values, 0.99) * 1000:.0f} |"
        )
    lines.append(MARK_END)
    print("\n".join(lines))
    if options.no_report:
        return
    report = ROOT / "docs" / "benchmarks.md"
    text = report.read_text()
    if MARK_BEGIN in text:
        before, rest = text.split(MARK_BEGIN, 1)
        text = before + "\n".join(lines) + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## Web\n\n" + "\n".join(lines) + "\n"
    report.write_text(text)


if __name__ == "__main__":
    main()
