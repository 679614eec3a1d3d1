"""Enrichment speed: messages per second per core for the whole default pipeline, and peak memory.

``python benchmarks/enrich.py [--data DIR] [--limit N]``: classifies real messages (Ubuntu IRC
lines and R-package-devel mails from the shared data folder) with all four enrichers, in batches
of 2,000 as ``parvis enrich`` does, on one thread (numpy is asked to use one), and prints the
figures for docs/benchmarks.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import datetime
import gzip
import mailbox
import platform
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

from parvis.enrich.data import data_root, irc_lines
from parvis.enrich.pipeline import default_classifier
from parvis.enrich.run import activity_text

BATCH = 2000


def mail_texts(root: Path, limit: int) -> list[str]:
    texts: list[str] = []
    for path in sorted((root / "mailinglist_r_package_devel" / "archive").glob("*.gz")):
        with gzip.open(path, "rb") as handle, tempfile.NamedTemporaryFile(suffix=".mbox") as copy:
            copy.write(handle.read())
            copy.flush()
            for message in mailbox.mbox(copy.name):
                payload = message.get_payload(decode=True)
                if isinstance(payload, bytes):
                    texts.append(activity_text(message["subject"], payload.decode("utf-8", "replace")))
                if len(texts) >= limit:
                    return texts
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data")
    parser.add_argument("--limit", type=int, default=100_000)
    args = parser.parse_args()
    root = data_root(args.data)
    corpora = {"IRC lines": irc_lines(root, "train", args.limit), "mails": mail_texts(root, args.limit // 20)}
    classifier = default_classifier()
    classifier.classify(["warm-up"])
    print(
        f"machine: {platform.machine()}, {platform.processor() or platform.platform()}, "
        f"{os.cpu_count()} CPUs; Python {platform.python_version()}; {datetime.date.today().isoformat()}"
    )
    for name, texts in corpora.items():
        start = time.perf_counter()
        cpu_start = time.process_time()
        for offset in range(0, len(texts), BATCH):
            classifier.classify(texts[offset : offset + BATCH])
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        mean = sum(len(text) for text in texts) / max(len(texts), 1)
        print(
            f"{name}: {len(texts):,} messages (mean {mean:,.0f} chars): {len(texts) / wall:,.0f} msg/s wall, "
            f"{len(texts) / cpu:,.0f} msg/s per CPU-second"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the whole process (Python, numpy, model, the test texts): {peak:,.0f} MiB")
    tracemalloc.start()
    classifier.classify(corpora["mails"][:BATCH])
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"peak memory allocated while classifying one batch of {BATCH:,} mails: {traced / 2**20:,.0f} MiB")
    bundle = classifier.bundle
    weights = bundle.weights.nbytes / 2**20
    words = bundle.words
    table = (words.keys.nbytes + words.vectors.nbytes + words.valences.nbytes) / 2**20 if words else 0.0
    print(f"model in memory: {weights:,.0f} MiB of float32 n-gram weights, {table:,.1f} MiB of word table")


if __name__ == "__main__":
    main()
