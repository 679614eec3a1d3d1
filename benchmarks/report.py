"""What every benchmark writes beside its figures: the machine, and its own section of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
from pathlib import Path

REPORT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, {system}, Python {platform.python_version()}"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- benchmark:{name}:begin -->", f"<!-- benchmark:{name}:end -->"


def write_section(name: str, title: str, block: str, report: Path = REPORT) -> None:
    """Put ``block`` (which starts and ends with the ``name`` markers) in place of the section's
    previous figures, or at the end under ``## title`` the first time."""
    begin, end = markers(name)
    text = report.read_text(encoding="utf-8") if report.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n## {title}\n\n{block}\n"
    report.write_text(text, encoding="utf-8")
