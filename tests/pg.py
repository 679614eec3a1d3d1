"""A throwaway PostgreSQL cluster for the tests, started from the Debian server binaries.

``PARVIS_TEST_PG_URL`` (an admin URL such as ``postgresql://postgres@127.0.0.1:5432/postgres``)
points the tests at a server you run yourself instead.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def _server_bin() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a cluster on 127.0.0.1 and yield its admin URL; stop and delete it afterwards."""
    binaries = _server_bin()
    if binaries is None:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    workdir = Path(tempfile.mkdtemp(prefix="parvis-pg-"))
    data = workdir / "data"
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    options = f"-h 127.0.0.1 -p {port} -k {workdir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    subprocess.run(
        _as_postgres(
            [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(workdir / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(binaries / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True
            )
            if ready.returncode == 0:
                break
            time.sleep(0.1)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def admin_url() -> Iterator[str]:
    configured = os.environ.get("PARVIS_TEST_PG_URL")
    if configured:
        yield configured
        return
    with throwaway_cluster() as url:
        yield url
