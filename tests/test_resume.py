"""Kill an import with SIGKILL at random moments, re-run it: the store must equal an uninterrupted import.

Each format is imported once without interruption (the reference), then several times into a
fresh store, killed at random points (drawn from the reference's duration, so kills land in
start-up, in the middle of batches and near the end), and completed by a last run.  Small
batches make many commit points.  The import logs (import_runs) are left out of the comparison.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from parvis.store import open_store
from tests.cli_run import parvis, parvis_popen
from tests.dbdump import snapshot

BATCH = "50"


def mail_subset(shared_data: Path) -> list[str]:
    archive = shared_data / "mailinglist_r_package_devel" / "archive"
    return [str(archive / name) for name in ("2015q2.txt.gz", "2015q3.txt.gz", "2018q2.txt.gz", "2019q1.txt.gz")]


def irc_subset(shared_data: Path) -> list[str]:
    return [str(shared_data / "chat_ubuntu_irc_disentangle" / "dev")]


def se_folder(shared_data: Path) -> list[str]:
    return [str(shared_data / "se_french_language_meta")]


FORMATS: dict[str, tuple[str, Callable[[Path], list[str]]]] = {
    "stackexchange": ("stackexchange", se_folder),
    "mbox": ("mbox", mail_subset),
    "irc": ("irc", irc_subset),
}


def import_args(kind: str, paths: list[str]) -> list[str]:
    return ["import", "--batch-size", BATCH, kind, *paths, "--source", "resume-test"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_kill_and_resume_gives_the_same_store(fmt: str, shared_data: Path, new_store_url: Callable[[], str]) -> None:
    kind, paths_of = FORMATS[fmt]
    args = import_args(kind, paths_of(shared_data))
    reference_url = new_store_url()
    started = time.monotonic()
    done = parvis(*args, db=reference_url)
    duration = time.monotonic() - started
    assert done.returncode in (0, 3), done.stderr
    reference = open_store(reference_url)
    expected = snapshot(reference)
    reference.close()
    assert len(expected["activities"]) > 1000

    chooser = random.Random(f"{fmt}-resume")
    for _attempt in range(3):
        url = new_store_url()
        kills = 0
        for _kill in range(chooser.randint(1, 3)):
            process = parvis_popen(*args, db=url)
            time.sleep(chooser.uniform(0.05, 0.95) * duration)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait()
        finished = parvis(*args, db=url)
        assert finished.returncode in (0, 3), finished.stderr
        resumed = open_store(url)
        assert snapshot(resumed) == expected, f"{fmt}: store differs after {kills} kills"
        resumed.close()
