"""The README's main command: import the bundled sample, then the cockpit opens on it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.cli_run import PARVIS
from tests.test_web_data import log_in


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_demo_serves_the_imported_sample_to_the_printed_account(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PARVIS_DB": f"sqlite:///{tmp_path / 'demo.db'}",
        "PARVIS_SECRET": "test-secret-of-the-demo",
        "DISPLAY": "",
    }
    log = tmp_path / "demo.log"
    with open(log, "w") as sink:
        process = subprocess.Popen([*PARVIS, "demo", "--serve", "--port", str(port)], stdout=sink, stderr=sink, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        password = None
        while time.monotonic() < deadline and process.poll() is None:
            found = re.search(r"Log in as demo, password (\S+) \(", log.read_text())
            if found:
                password = found.group(1)
                try:
                    httpx.get(f"{base}/login", timeout=2)
                    break
                except httpx.TransportError:
                    pass
            time.sleep(0.3)
        assert password is not None, log.read_text()
        with httpx.Client(base_url=base, timeout=60) as client:
            assert log_in(client, "demo", password, next="/").status_code == 303
            overview = client.get("/")
            assert overview.status_code == 200
            assert "french-language-meta" in overview.text
            assert log_in(client, "demo", password + "x").status_code in (401, 403)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "Traceback" not in log.read_text()
