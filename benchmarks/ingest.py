"""Benchmark: import a mailing-list archive end to end, side by side with Perceval.

    .venv/bin/python benchmarks/ingest.py [--copies 6] [--skip-perceval]

Builds the benchmark archives from the real R-package-devel archive in ../shared/data
(the 46 quarterly files as they are, and a ~200 MB archive made of N copies of them with
the Message-IDs made unique per copy), then runs, one after the other:

* ``parvis import mbox`` into a fresh SQLite file (parse, dedupe, thread, identities, store),
* ``perceval mbox URI DIR`` (GrimoireLab's parser, which only parses and prints JSON),
  installed into its own virtual environment under .bench/ on first use.

Wall time and peak resident memory of each process are measured with wait4(), and the
results are written to docs/benchmarks.md between the ``ingest`` markers.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import machine, markers, write_section  # noqa: E402

WORK = ROOT / ".bench"
DATA = Path(os.environ.get("PARVIS_SHARED_DATA", ROOT.parent / "shared" / "data"))
ARCHIVE = DATA / "mailinglist_r_package_devel" / "archive"
PERCEVAL_VERSION = "1.6.1"
MARK_BEGIN, MARK_END = markers("ingest")
SEPARATOR = re.compile(rb"^From \S.* \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\s*$")
MESSAGE_ID_HEADER = re.compile(rb"^(Message-ID|In-Reply-To|References):", re.IGNORECASE)


@dataclass
class Run:
    label: str
    seconds: float
    peak_mb: float
    messages: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def timed(label: str, command: list[str], messages: int, env: dict[str, str] | None = None) -> Run:
    started = time.perf_counter()
    with open(WORK / f"{label.replace(' ', '_')}.out", "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 3):
        raise SystemExit(f"{label} failed ({status}); see {sink.name}")
    return Run(label, seconds, usage.ru_maxrss / 1024, messages)


def count_messages(folder: Path) -> int:
    total = 0
    for path in sorted(folder.iterdir()):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            total += sum(1 for line in handle if SEPARATOR.match(line))
    return total


def build_plain_copy(target: Path) -> None:
    """The real archive, decompressed (Perceval and Parvis both read it as plain mbox)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(ARCHIVE.glob("*.txt.gz")):
        out = target / path.name.removesuffix(".gz")
        if not out.exists():
            with gzip.open(path, "rb") as source, open(out, "wb") as sink:
                shutil.copyfileobj(source, sink)


def build_large_copy(source: Path, target: Path, copies: int) -> None:
    """``copies`` copies of the archive, each with its own Message-IDs, so nothing dedupes away."""
    target.mkdir(parents=True, exist_ok=True)
    for copy in range(copies):
        for path in sorted(source.iterdir()):
            out = target / f"copy{copy}-{path.name}"
            if out.exists():
                continue
            suffix = f".copy{copy}@".encode()
            with open(path, "rb") as reader, open(out, "wb") as writer:
                in_headers = False
                for line in reader:
                    if SEPARATOR.match(line):
                        in_headers = True
                    elif in_headers and line in (b"\n", b"\r\n"):
                        in_headers = False
                    elif in_headers and (MESSAGE_ID_HEADER.match(line) or line.startswith((b" <", b"\t<"))):
                        line = line.replace(b"@", suffix)
                    writer.write(line)


def ensure_perceval() -> Path:
    venv = WORK / "perceval-venv"
    binary = venv / "bin" / "perceval"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"perceval=={PERCEVAL_VERSION}"], check=True)
    return binary


def parvis_run(label: str, folder: Path, messages: int) -> Run:
    database = WORK / f"{label.replace(' ', '_')}.db"
    for leftover in WORK.glob(database.name + "*"):
        leftover.unlink()
    parvis = ROOT / ".venv" / "bin" / "parvis"
    return timed(label, [str(parvis), "--db", f"sqlite:///{database}", "import", "mbox", str(folder)], messages)


def perceval_run(label: str, folder: Path, messages: int) -> Run:
    binary = ensure_perceval()
    return timed(label, [str(binary), "mbox", "file://benchmark", str(folder)], messages)


def folder_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.iterdir()) / 2**20


def write_report(runs: list[Run], sizes: dict[str, float]) -> None:
    lines = [
        MARK_BEGIN,
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {machine()}, by `.venv/bin/python benchmarks/ingest.py`.",
        "",
        "| run | archive | messages | wall time (s) | messages/s | peak RSS (MB) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for run in runs:
        archive = "r-package-devel, 46 files" if "real" in run.label else "r-package-devel copies"
        size = sizes["large" if "large" in run.label else "real"]
        lines.append(
            f"| {run.label} | {archive}, {size:.0f} MB | {run.messages:,} | {run.seconds:.2f} | "
            f"{run.rate:,.0f} | {run.peak_mb:.0f} |"
        )
    by_label = {run.label: run for run in runs}
    for size in ("real", "large"):
        ours, theirs = by_label.get(f"parvis {size}"), by_label.get(f"perceval {size}")
        if ours and theirs:
            lines.append("")
            lines.append(
                f"On the {size} archive Parvis's whole import is **{theirs.seconds / ours.seconds:.1f}×** "
                f"as fast as Perceval's parse alone (target ≥ 10×)."
            )
    lines.append(MARK_END)
    write_section("ingest", "Ingest: mailing-list archive", "\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=6, help="copies of the archive in the large run")
    parser.add_argument("--skip-perceval", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    options = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    real = WORK / "mbox-real"
    build_plain_copy(real)
    runs: list[Run] = []
    sizes = {"real": folder_mb(real)}
    real_messages = count_messages(real)
    runs.append(parvis_run("parvis real", real, real_messages))
    if not options.skip_perceval:
        runs.append(perceval_run("perceval real", real, real_messages))
    if not options.skip_large:
        large = WORK / f"mbox-large-{options.copies}"
        build_large_copy(real, large, options.copies)
        sizes["large"] = folder_mb(large)
        large_messages = real_messages * options.copies
        runs.append(parvis_run("parvis large", large, large_messages))
        if not options.skip_perceval:
            runs.append(perceval_run("perceval large", large, large_messages))
    write_report(runs, sizes)


if __name__ == "__main__":
    main()
