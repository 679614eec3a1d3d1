"""Linear models over hashed features, stored as one compressed numpy file.

A bundle holds one weight matrix (``2**bits`` rows, one column per output) shared by all heads:
the language head (1 column: logit of French vs English), sentiment (3 columns, softmax),
toxicity (1 column), toxicity categories (1 column each) and question (1 column).  Inference is a
gather of the rows of the features' buckets and a sum per text: no dependency beyond numpy, a few
megabytes of memory.  A bundle may also hold a word table (parvis/enrich/words.py) and the weights
of its dense features (one row per dense feature, one column per output; the sentiment head uses
them), which need the texts' language.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from parvis.enrich.features import Features
from parvis.enrich.words import WordTable

DEFAULT_MODEL = "default.npz"
FORMAT = 3
# Format 1: no word table.  Format 2's dense features (two lexicons, no surface figures) are not read.
READABLE_FORMATS = (1, 3)

FloatMatrix = npt.NDArray[np.float64]


class ModelError(Exception):
    """A model file is missing, unreadable or of another format (message for the user)."""


@dataclass(frozen=True)
class Head:
    """Columns ``start:stop`` of the bundle; ``classes`` name them (a binary head names its two outcomes)."""

    name: str
    start: int
    stop: int
    classes: tuple[str, ...]
    version: str
    threshold: float = 0.5


@dataclass(frozen=True)
class ModelBundle:
    bits: int
    weights: npt.NDArray[np.float32]
    bias: npt.NDArray[np.float64]
    heads: dict[str, Head]
    info: dict[str, Any]
    words: WordTable | None = None
    dense_weights: npt.NDArray[np.float32] | None = None

    def logits(self, features: Features, *, with_bias: bool = True) -> FloatMatrix:
        """Raw scores, one row per text, one column per output."""
        if features.bits != self.bits:
            raise ModelError(f"features have {features.bits} bits, the model {self.bits}")
        # One gather of whole weight rows, then per-text sums over the contiguous runs of ``rows``.
        gathered = np.take(self.weights, features.buckets, axis=0)
        gathered *= features.values.astype(np.float32)[:, None]
        counts = np.bincount(features.rows, minlength=features.size)
        present = counts > 0
        starts = np.cumsum(counts) - counts
        scores: FloatMatrix = np.zeros((features.size, self.weights.shape[1]))
        if present.any():
            scores[present] = np.add.reduceat(gathered, starts[present], axis=0)
        return scores + self.bias if with_bias else scores

    def dense_logits(self, features: Features, languages: list[str], texts: Sequence[str]) -> FloatMatrix:
        """What the dense features add to the scores (zeros without a word table)."""
        if self.words is None or self.dense_weights is None:
            return np.zeros((features.size, self.weights.shape[1]))
        result: FloatMatrix = self.words.dense(features, languages, texts) @ self.dense_weights.astype(np.float64)
        return result

    def save(self, path: Path) -> None:
        meta = {
            "format": FORMAT,
            "bits": self.bits,
            "heads": [vars(head) | {"classes": list(head.classes)} for head in self.heads.values()],
            "info": self.info,
        }
        # Weights as float16: half the size, and the rounding is far below what changes a decision.
        arrays: dict[str, npt.NDArray[Any]] = {
            "weights": self.weights.astype(np.float16),
            "bias": self.bias,
            "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        }
        if self.words is not None and self.dense_weights is not None:
            arrays |= {
                "word_keys": self.words.keys,
                "word_vectors": self.words.vectors,
                "word_scales": self.words.scales,
                "word_valences": self.words.valences.astype(np.float16),
                "dense_weights": self.dense_weights,
            }
        np.savez_compressed(path, allow_pickle=False, **arrays)


def head_version(weights: npt.NDArray[Any], bias: npt.NDArray[Any], *more: npt.NDArray[Any]) -> str:
    """The format, a dot and 8 hex digits of the weights' digest: a retrained model gets a new version.

    ``more``: any other arrays the head's results depend on (dense weights, the word table).
    """
    digest = hashlib.sha1(np.ascontiguousarray(weights.astype(np.float16)).tobytes())
    digest.update(np.ascontiguousarray(bias.astype(np.float64)).tobytes())
    for array in more:
        digest.update(np.ascontiguousarray(array).tobytes())
    return f"{FORMAT}.{digest.hexdigest()[:8]}"


def load_bundle(path: Path | None = None) -> ModelBundle:
    """The model at ``path``, or the default one shipped in the package."""
    if path is None:
        resource = files("parvis.enrich") / "models" / DEFAULT_MODEL
        with as_file(resource) as real_path:
            return _read(real_path)
    return _read(path)


def _read(path: Path) -> ModelBundle:
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(bytes(stored["meta"]).decode())
            weights = stored["weights"].astype(np.float32)
            bias = stored["bias"].astype(np.float64)
            words, dense_weights = None, None
            if "word_keys" in stored:
                words = WordTable(
                    stored["word_keys"].astype(np.uint64),
                    stored["word_vectors"].astype(np.int8),
                    stored["word_scales"].astype(np.float32),
                    stored["word_valences"].astype(np.float32),
                )
                dense_weights = stored["dense_weights"].astype(np.float32)
    except (OSError, KeyError, ValueError) as problem:
        raise ModelError(f"cannot read the model {path}: {problem}") from None
    if meta.get("format") not in READABLE_FORMATS:
        raise ModelError(f"{path}: model format {meta.get('format')}, this Parvis reads formats {READABLE_FORMATS}")
    heads = {
        head["name"]: Head(
            head["name"], head["start"], head["stop"], tuple(head["classes"]), head["version"], head["threshold"]
        )
        for head in meta["heads"]
    }
    return ModelBundle(int(meta["bits"]), weights, bias, heads, meta.get("info", {}), words, dense_weights)
