"""Text features for the linear models: hashed character n-grams, words and word pairs.

The whole batch is featurised at once with numpy: the texts are joined into one array of code
points, n-gram hashes are computed with vectorised polynomial hashing (64-bit arithmetic that
wraps), and each hash is mixed and folded into ``2**bits`` buckets with a sign (the "hashing
trick", so no vocabulary is stored).  Training (``parvis train``) and inference use this same
code, so a model only stores its weight matrix.

Texts are normalised first: cut to ``MAX_CHARS`` characters (a megabyte-long message costs as
much as a short one), URLs become ``http``, user mentions ``@user`` (as in the training tweets),
digits ``0``, control characters and runs of white space one space, and everything is lower-cased.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import numpy.typing as npt

MAX_CHARS = 400
DEFAULT_BITS = 18
CHAR_NGRAMS = (1, 2, 3, 4, 5)

_MULT = np.uint64(0x100000001B3)
_MULT_INV = np.uint64(pow(0x100000001B3, -1, 2**64))
_WORD_SALT = np.uint64(0x9E3779B97F4A7C15)
_PAIR_SALT = np.uint64(0xC2B2AE3D27D4EB4F)
_FLAG_SALT = np.uint64(0x165667B19E3779F9)

_URL = re.compile(r"(?:https?://|www\.)\S+")
_MENTION = re.compile(r"@\w+")
_DIGITS = re.compile(r"\d")
_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
U64Array = npt.NDArray[np.uint64]


def normalise(text: str) -> str:
    text = text[:MAX_CHARS]
    text = _URL.sub("http", text)
    text = _MENTION.sub("@user", text)
    text = _DIGITS.sub("0", text)
    text = _SPACE.sub(" ", text)
    return text.strip().lower()


@lru_cache(maxsize=1)
def alphanumeric_table() -> npt.NDArray[np.bool_]:
    """Which code points of the Basic Multilingual Plane are letters or digits."""
    return np.array([chr(point).isalnum() for point in range(0x10000)], dtype=np.bool_)


@lru_cache(maxsize=1)
def _letter_table() -> npt.NDArray[np.bool_]:
    return np.array([chr(point).isalpha() for point in range(0x10000)], dtype=np.bool_)


def _mix(keys: U64Array) -> U64Array:
    """A 64-bit finaliser (splitmix64): spreads similar keys over all bits."""
    keys = keys ^ (keys >> np.uint64(30))
    keys = keys * np.uint64(0xBF58476D1CE4E5B9)
    keys = keys ^ (keys >> np.uint64(27))
    keys = keys * np.uint64(0x94D049BB133111EB)
    return keys ^ (keys >> np.uint64(31))


@dataclass(frozen=True)
class Features:
    """Sparse features of a batch: feature k is bucket ``buckets[k]`` of text ``rows[k]`` with value ``values[k]``.

    ``rows`` never decreases (a text's features are contiguous), which the models' sums rely on.
    """

    size: int
    bits: int
    rows: IntArray
    buckets: IntArray
    values: FloatArray
    # Per text: letters, letters of the Latin script, characters after normalisation.
    letters: IntArray
    latin_letters: IntArray
    lengths: IntArray
    # The words of the texts in order: text ``word_rows[k]`` has the word of key ``word_keys[k]`` (see ``word_key``).
    word_rows: IntArray
    word_keys: U64Array

    def flag_part(self, flags: Sequence[Sequence[str]]) -> Features:
        """Only the named flags of each text (``flags[i]`` for text i), each worth one n-gram of it."""
        rows = np.array([i for i, names in enumerate(flags) for _ in names], dtype=np.int64)
        keys = np.array([_flag_key(name) for names in flags for name in names], dtype=np.uint64)
        mixed = _mix(keys)
        buckets = (mixed >> np.uint64(64 - self.bits)).astype(np.int64)
        signs = np.where(mixed & np.uint64(1 << 20), 1.0, -1.0)
        norms = _row_norms(self.rows, self.size)
        no_words = np.zeros(0, dtype=np.int64)
        return replace(
            self,
            rows=rows,
            buckets=buckets,
            values=signs / norms[rows],
            word_rows=no_words,
            word_keys=no_words.astype(np.uint64),
        )

    def with_flags(self, flags: Sequence[Sequence[str]]) -> Features:
        """These features and the named flags (what the models are trained on)."""
        part = self.flag_part(flags)
        rows = np.concatenate([self.rows, part.rows])
        order = np.argsort(rows, kind="stable")
        buckets = np.concatenate([self.buckets, part.buckets])[order]
        return replace(
            self, rows=rows[order], buckets=buckets, values=np.concatenate([self.values, part.values])[order]
        )


def word_key(word: str) -> int:
    """The key ``featurize`` gives a word (a run of letters and digits of a normalised text)."""
    key = 0
    for character in word:
        key = (key * 0x100000001B3 + ord(character)) % 2**64
    return key


@lru_cache(maxsize=256)
def _flag_key(name: str) -> int:
    key = 0
    for byte in name.encode():
        key = (key * 0x100000001B3 + byte) % 2**64
    return key ^ int(_FLAG_SALT)


def _row_norms(rows: IntArray, size: int) -> FloatArray:
    counts = np.bincount(rows, minlength=size).astype(np.float64)
    return np.sqrt(np.maximum(counts, 1.0))


_powers_cache: dict[str, U64Array] = {}


def _powers(base: np.uint64, length: int, key: str) -> U64Array:
    cached = _powers_cache.get(key)
    if cached is None or len(cached) < length:
        size = max(length, 2 * len(cached) if cached is not None else 1 << 16)
        cached = np.cumprod(np.full(size, base, dtype=np.uint64), dtype=np.uint64)
        cached = np.concatenate([np.ones(1, dtype=np.uint64), cached[:-1]])
        _powers_cache[key] = cached
    return cached[:length]


def featurize(texts: Sequence[str], bits: int = DEFAULT_BITS) -> Features:
    """Hashed features of ``texts`` (any strings; see the module's docstring for the normalisation)."""
    size = len(texts)
    normalised = [normalise(text) for text in texts]
    # Each text padded with a space on both sides, texts separated by NUL (which normalise removed).
    joined = "\x00".join(f" {text} " for text in normalised)
    points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.uint64)
    total = len(points)
    separators = points == 0
    doc = np.cumsum(separators, dtype=np.int64)

    row_parts: list[IntArray] = [np.zeros(0, dtype=np.int64)]
    key_parts: list[U64Array] = [np.zeros(0, dtype=np.uint64)]
    words = np.zeros(0, dtype=np.uint64)
    word_docs = np.zeros(0, dtype=np.int64)

    # Character n-grams, by Horner's rule over shifted views of the array.
    hashes = points.copy()
    for n in range(1, min(max(CHAR_NGRAMS), total) + 1):
        if n > 1:
            hashes = hashes[:-1] * _MULT + points[n - 1 :]
        if n in CHAR_NGRAMS:
            valid = (doc[n - 1 :] == doc[: total - n + 1]) & ~separators[: total - n + 1]
            row_parts.append(doc[: total - n + 1][valid])
            key_parts.append(hashes[valid] ^ np.uint64(n * 0x51ED27))

    # Words (runs of letters and digits) and pairs of neighbouring words, via prefix hashes.
    bmp = np.minimum(points, 0xFFFF).astype(np.int64)
    is_word = alphanumeric_table()[bmp] & (points <= 0xFFFF)
    padded = np.concatenate([[False], is_word, [False]])
    starts = np.flatnonzero(padded[1:-1] & ~padded[:-2])
    ends = np.flatnonzero(padded[1:-1] & ~padded[2:])
    if len(starts):
        prefix = np.cumsum(points * _powers(_MULT_INV, total, "inv"), dtype=np.uint64)
        before = np.where(starts > 0, prefix[np.maximum(starts - 1, 0)], np.uint64(0))
        words = (prefix[ends] - before) * _powers(_MULT, total, "mult")[ends]
        word_docs = doc[starts]
        row_parts.append(word_docs)
        key_parts.append(words ^ _WORD_SALT)
        same = word_docs[1:] == word_docs[:-1]
        row_parts.append(word_docs[1:][same])
        key_parts.append((_mix(words[:-1][same]) * _MULT + words[1:][same]) ^ _PAIR_SALT)

    rows = np.concatenate(row_parts)
    # Each part is in text order; a stable sort of the (few) sorted runs merges them.
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    mixed = _mix(np.concatenate(key_parts)[order])
    buckets = (mixed >> np.uint64(64 - bits)).astype(np.int64)
    norms = _row_norms(rows, size)
    values = np.where(mixed & np.uint64(1 << 20), 1.0, -1.0) / norms[rows]

    letters_mask = _letter_table()[bmp] & (points <= 0xFFFF)
    letters = np.bincount(doc[letters_mask], minlength=size)[:size]
    latin = np.bincount(doc[letters_mask & (points < 0x250)], minlength=size)[:size]
    lengths = np.array([len(text) for text in normalised], dtype=np.int64)
    return Features(size, bits, rows, buckets, values, letters, latin, lengths, word_docs, words)
