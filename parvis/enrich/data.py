"""The labelled sets the default models are trained and evaluated on, read in place.

They live in the project's shared data folder (``$PARVIS_SHARED_DATA``, else the first
``shared/data`` found above the current folder or this file); each sub-folder has a README with
its source, schema and licence.  Splits are fixed and reproducible:

- UMSAB sentiment tweets: the dataset's own train / val / test files.
- MLMA and Davidson toxicity tweets: no official split; a text goes to ``test`` (10 %), ``val``
  (10 %) or ``train`` (80 %) by the SHA-1 of its normalised text, so duplicates (retweets) never
  straddle two splits.
- Mastodon dialogue acts (GPL-3.0): evaluation only, never used for training (see docs/enrich.md).
- Ubuntu IRC lines (public domain): unlabelled, used for the weakly labelled question detector
  and for benchmarks.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import html
import io
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from parvis.enrich.features import normalise

SENTIMENT_LABELS = ("negative", "neutral", "positive")
SPLITS = ("train", "val", "test")


class DataError(Exception):
    """A labelled set is missing or unreadable (message for the user)."""


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    lang: str
    categories: dict[str, bool] = field(default_factory=dict)


def data_root(configured: str | os.PathLike[str] | None = None) -> Path:
    if configured:
        root = Path(configured)
    elif os.environ.get("PARVIS_SHARED_DATA"):
        root = Path(os.environ["PARVIS_SHARED_DATA"])
    else:
        root = _find_shared_data()
    if not (root / "sentiment_tweets_umsab_fr_en").is_dir():
        raise DataError(f"labelled data not found in {root} (pass --data DIR or set PARVIS_SHARED_DATA)")
    return root


def _find_shared_data() -> Path:
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            candidate = folder / "shared" / "data"
            if candidate.is_dir():
                return candidate
    return Path.cwd() / "shared" / "data"


def hash_split(text: str) -> str:
    bucket = hashlib.sha1(normalise(text).encode("utf-8", "surrogatepass")).digest()[0] % 10
    return "test" if bucket == 0 else "val" if bucket == 1 else "train"


def sentiment(root: Path, split: str, lang: str) -> list[Example]:
    folder = root / "sentiment_tweets_umsab_fr_en" / {"fr": "french", "en": "english"}[lang]
    texts = (folder / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
    labels = (folder / f"{split}_labels.txt").read_text(encoding="utf-8").split()
    texts = texts[: len(labels)]
    if len(texts) != len(labels):
        raise DataError(f"{folder}: {split} texts and labels differ in length")
    return [Example(text, SENTIMENT_LABELS[int(label)], lang) for text, label in zip(texts, labels, strict=True)]


MLMA_CATEGORIES = {"hateful": "hateful", "offensive": "offensive", "abusive": "offensive", "disrespectful": "offensive"}


def mlma(root: Path, lang: str) -> Iterator[Example]:
    path = root / "toxicity_mlma_fr_en" / "hate_speech_mlma.zip"
    with zipfile.ZipFile(path) as archive, archive.open(f"hate_speech_mlma/{lang}_dataset.csv") as raw:
        for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")):
            kinds = set(row["sentiment"].split("_"))
            categories = {"hateful": False, "offensive": False}
            for kind in kinds:
                if kind in MLMA_CATEGORIES:
                    categories[MLMA_CATEGORIES[kind]] = True
            yield Example(row["tweet"], "ok" if kinds == {"normal"} else "toxic", lang, categories)


def davidson(root: Path) -> Iterator[Example]:
    path = root / "toxicity_davidson_tweets_en" / "labeled_data.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            kind = int(row["class"])
            categories = {"hateful": kind == 0, "offensive": kind == 1}
            yield Example(html.unescape(row["tweet"]), "ok" if kind == 2 else "toxic", "en", categories)


def toxicity(root: Path, split: str, lang: str | None = None) -> list[Example]:
    examples: list[Example] = []
    for language in ("fr", "en"):
        if lang in (None, language):
            examples.extend(mlma(root, language))
    if lang in (None, "en"):
        examples.extend(davidson(root))
    return [example for example in examples if hash_split(example.text) == split]


def mastodon_questions(root: Path, part: str = "test") -> list[Example]:
    """Mastodon toots labelled ``question`` (dialogue act Q) or ``other``.  GPL-3.0: evaluation only."""
    path = root / "dialogacts_sentiment_mastodon_en" / f"data{part}Joint.txt"
    examples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split(" ", 2)
        if len(parts) < 2 or "_" not in parts[1]:
            continue
        act = parts[1].split("_", 1)[1]
        text = parts[2] if len(parts) > 2 else ""
        examples.append(Example(text, "question" if act == "Q" else "other", "en"))
    return examples


def irc_lines(root: Path, part: str = "train", limit: int | None = None) -> list[str]:
    """Chat messages of the Ubuntu IRC logs (system lines and actions left out)."""
    folder = root / "chat_ubuntu_irc_disentangle" / part
    lines: list[str] = []
    for path in sorted(folder.glob("*.raw.txt*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("[") and "] <" in line[:10]:
                    message = line.split("> ", 1)[1].strip() if "> " in line else ""
                    if message:
                        lines.append(message)
                        if limit is not None and len(lines) >= limit:
                            return lines
    return lines


def language(root: Path, split: str) -> list[Example]:
    """French and English texts labelled with their language (UMSAB + MLMA + Davidson)."""
    examples = [
        Example(example.text, example.lang, example.lang)
        for lang in ("fr", "en")
        for example in sentiment(root, split, lang)
    ]
    examples += [Example(example.text, example.lang, example.lang) for example in toxicity(root, split)]
    return examples
