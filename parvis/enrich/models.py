"""Linear models over hashed features, stored as one compressed numpy file.

A bundle holds one weight matrix (``2**bits`` rows, one column per output) shared by all heads:
the language head (1 column: logit of French vs English), sentiment (3 columns, softmax),
toxicity (1 column), toxicity categories (1 column each) and question (1 column).  Inference is a
gather of the rows of the features' buckets and one weighted ``bincount`` per column: no
dependency beyond numpy, a few megabytes of memory.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from parvis.enrich.features import Features

DEFAULT_MODEL = "default.npz"
FORMAT = 1

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

    def save(self, path: Path) -> None:
        meta = {
            "format": FORMAT,
            "bits": self.bits,
            "heads": [vars(head) | {"classes": list(head.classes)} for head in self.heads.values()],
            "info": self.info,
        }
        # Weights as float16: half the size, and the rounding is far below what changes a decision.
        np.savez_compressed(
            path,
            weights=self.weights.astype(np.float16),
            bias=self.bias,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        )


def head_version(weights: npt.NDArray[Any], bias: npt.NDArray[Any]) -> str:
    """``1.`` and 8 hex digits of the weights' digest: a retrained model gets a new version."""
    digest = hashlib.sha1(np.ascontiguousarray(weights.astype(np.float16)).tobytes())
    digest.update(np.ascontiguousarray(bias.astype(np.float64)).tobytes())
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
    except (OSError, KeyError, ValueError) as problem:
        raise ModelError(f"cannot read the model {path}: {problem}") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path}: model format {meta.get('format')}, this Parvis reads format {FORMAT}")
    heads = {
        head["name"]: Head(
            head["name"], head["start"], head["stop"], tuple(head["classes"]), head["version"], head["threshold"]
        )
        for head in meta["heads"]
    }
    return ModelBundle(int(meta["bits"]), weights, bias, heads, meta.get("info", {}))
