"""Running the real ``parvis`` command in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

PARVIS = [sys.executable, "-m", "parvis.cli"]


def parvis(*args: str, db: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARVIS_DB": db}
    return subprocess.run([*PARVIS, *args], capture_output=True, text=True, env=env, timeout=timeout)


def parvis_popen(*args: str, db: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PARVIS_DB": db}
    return subprocess.Popen([*PARVIS, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def stats(db: str) -> dict[str, Any]:
    result = parvis("stats", "--json", db=db)
    assert result.returncode == 0, result.stderr
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures
