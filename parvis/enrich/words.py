"""Word vectors and a sentiment lexicon: dense features for the sentiment head, next to the n-grams.

- Word vectors: a static table of word embeddings, averaged over each text's known words.  They
  carry what a large encoder knows about words the labelled tweets never showed (``parvis train``
  distils them from Google's multilingual Universal Sentence Encoder, see parvis/enrich/train.py).
  Stored as int8 with one scale per dimension.
- Lexicons (``LEXICONS``): each word's valence in English VADER, in its French adaptation (both
  MIT) and in English AFINN-165 (ODbL); see parvis/enrich/models/NOTICE.md.  Per text and per
  lexicon of the text's language: the valences of its words, turned the other way (× -0.74,
  VADER's factor) when one of the 3 words before is a negation, summed into 5 figures
  (``LEXICON_FEATURES``).
- Surface figures of the raw text (``SURFACE_FEATURES``, in the text's language's columns too):
  elongated words ("soooo"), the share of words in capitals, exclamation and question marks, and
  runs of them ("?!", "!!!").

Inference is a binary search of each word's key (``features.word_key``) in the sorted keys, a
gather and per-text sums: numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from parvis.enrich.features import MAX_CHARS, Features, alphanumeric_table, word_key

FloatMatrix = npt.NDArray[np.float64]

LEXICON_LANGUAGES = ("en", "fr")
# The valence columns of a word table: (lexicon, the language of the texts it scores).
LEXICONS = (("vader", "en"), ("vader-fr", "fr"), ("afinn", "en"))
LEXICON_FEATURES = 5
SURFACE_FEATURES = 5
NEGATION_WINDOW = 3
NEGATION_FACTOR = -0.74
NEGATIONS = {
    "en": ("not", "no", "never", "nothing", "nobody", "none", "neither", "nor", "cannot", "t", "dont", "cant", "wont"),
    "fr": ("ne", "n", "pas", "jamais", "rien", "personne", "aucun", "aucune", "ni", "sans"),
}


@dataclass(frozen=True)
class WordTable:
    """Row i of ``vectors`` (times ``scales``) is the vector of the word of key ``keys[i]``; keys are sorted."""

    keys: npt.NDArray[np.uint64]
    vectors: npt.NDArray[np.int8]
    scales: npt.NDArray[np.float32]
    # One column per lexicon of LEXICONS; 0 for a word out of that lexicon.
    valences: npt.NDArray[np.float32]

    @property
    def dimensions(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def dense_size(self) -> int:
        """How many dense features ``dense`` gives per text."""
        return self.dimensions + LEXICON_FEATURES * len(LEXICONS) + SURFACE_FEATURES * len(LEXICON_LANGUAGES)

    @classmethod
    def quantised(
        cls, keys: npt.NDArray[np.uint64], vectors: npt.NDArray[np.floating], valences: npt.NDArray[np.floating]
    ) -> WordTable:
        """The table of these words (any order), float vectors rounded to int8 per dimension."""
        order = np.argsort(keys, kind="stable")
        peaks = np.abs(vectors).max(axis=0)
        scales = np.where(peaks > 0, peaks / 127.0, 1.0).astype(np.float32)
        quantised = np.clip(np.rint(vectors / scales), -127, 127).astype(np.int8)
        return cls(keys[order], quantised[order], scales, valences[order].astype(np.float32))

    def dense(self, features: Features, languages: Sequence[str], texts: Sequence[str]) -> FloatMatrix:
        """The dense features of each text: its mean word vector, its lexicon figures, its surface figures."""
        return np.hstack([self.means(features), self.lexicon(features, languages), surface(texts, languages, features)])

    def _lookup(self, keys: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        positions = np.minimum(np.searchsorted(self.keys, keys), max(len(self.keys) - 1, 0))
        known = self.keys[positions] == keys if len(self.keys) else np.zeros(len(keys), dtype=np.bool_)
        return positions, known

    def lexicon(self, features: Features, languages: Sequence[str]) -> FloatMatrix:
        """Per text, 5 figures per lexicon of its language (zeros in the other lexicons' columns)."""
        size = features.size
        figures: FloatMatrix = np.zeros((size, LEXICON_FEATURES * len(LEXICONS)))
        keys, rows = features.word_keys, features.word_rows
        if not len(keys):
            return figures
        language_of_text = np.array([_language_index(language) for language in languages], dtype=np.int64)
        language = language_of_text[rows]
        positions, known = self._lookup(keys)
        negation = np.zeros(len(keys), dtype=np.bool_)
        for index, name in enumerate(LEXICON_LANGUAGES):
            negation |= (language == index) & np.isin(keys, _negation_keys(name))
        negated = np.zeros(len(keys), dtype=np.bool_)
        for back in range(1, NEGATION_WINDOW + 1):
            negated[back:] |= negation[:-back] & (rows[back:] == rows[:-back])
        scale = np.sqrt(np.bincount(rows, minlength=size) + 1.0)
        for column, (_, lexicon_language) in enumerate(LEXICONS):
            index = _language_index(lexicon_language)
            mine = known & (language == index)
            valence = np.zeros(len(keys), dtype=np.float64)
            valence[mine] = self.valences[positions[mine], column]
            valence = np.where(negated, NEGATION_FACTOR * valence, valence)
            positive = np.bincount(rows, weights=np.maximum(valence, 0.0), minlength=size)
            negative = np.bincount(rows, weights=np.maximum(-valence, 0.0), minlength=size)
            positives = np.bincount(rows, weights=valence > 0, minlength=size)
            negatives = np.bincount(rows, weights=valence < 0, minlength=size)
            total = positive - negative
            values = np.stack(
                [
                    total / np.sqrt(total * total + 15.0),
                    positive / scale,
                    negative / scale,
                    np.log1p(positives),
                    np.log1p(negatives),
                ],
                axis=1,
            )
            scored = language_of_text == index
            figures[scored, column * LEXICON_FEATURES : (column + 1) * LEXICON_FEATURES] = values[scored]
        return figures

    def means(self, features: Features) -> FloatMatrix:
        """Per text, the mean vector of its words found in the table (zeros when none is)."""
        means: FloatMatrix = np.zeros((features.size, self.dimensions))
        positions, known = self._lookup(features.word_keys)
        rows = features.word_rows[known]
        if not len(rows):
            return means
        gathered = self.vectors[positions[known]].astype(np.float32)
        counts = np.bincount(rows, minlength=features.size)
        present = counts > 0
        starts = np.cumsum(counts) - counts
        # word_rows never decreases, so each text's words are one contiguous run.
        means[present] = np.add.reduceat(gathered, starts[present], axis=0) / counts[present, None]
        return means * self.scales


# Character classes of Python's regular expressions, as tables over the Basic Multilingual Plane:
# \w (str.isalnum() or "_"), a letter ([^\W\d_]), an upper-case Latin letter ([A-ZÀ-ÖØ-Þ]).
_BMP = 0x10000
_EXCLAMATION, _QUESTION = ord("!"), ord("?")


@lru_cache(maxsize=1)
def _character_classes() -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    alphanumeric = alphanumeric_table()
    word = alphanumeric.copy()
    word[ord("_")] = True
    decimal = np.array([chr(point).isdecimal() for point in range(_BMP)], dtype=np.bool_)
    upper = np.zeros(_BMP, dtype=np.bool_)
    for first, last in ((0x41, 0x5A), (0xC0, 0xD6), (0xD8, 0xDE)):
        upper[first : last + 1] = True
    return word, alphanumeric & ~decimal, upper


def _is_letter(point: int) -> bool:
    character = chr(point)
    return character.isalnum() and not character.isdecimal()


def _classes_of(points: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Whether each code point is a \\w character, and whether it is a letter (outside the BMP too)."""
    word_table, letter_table = _character_classes()[:2]
    inside = points < _BMP
    clamped = np.where(inside, points, 0)
    word, letter = word_table[clamped] & inside, letter_table[clamped] & inside
    for point in np.unique(points[~inside]).tolist():
        here = points == point
        word[here] = chr(point).isalnum()
        letter[here] = _is_letter(point)
    return word, letter


def surface(texts: Sequence[str], languages: Sequence[str], features: Features) -> FloatMatrix:
    """Per text (its first ``MAX_CHARS`` characters; ``features``: theirs), in its language's columns:
    log(1 + elongations: non-overlapping runs of 3 of one \\w character), words in capitals (runs of
    2+ upper-case Latin letters between non-letters) / (1 + words), log(1 + "!"), log(1 + "?"), and
    whether it has a run of marks ("?!", "!!").  Numpy over all texts at once, no loop per text."""
    size = len(texts)
    figures: FloatMatrix = np.zeros((size, SURFACE_FEATURES * len(LEXICON_LANGUAGES)))
    if not size:
        return figures
    cut = [text[:MAX_CHARS] for text in texts]
    lengths = np.array([len(text) for text in cut], dtype=np.int64)
    # Texts joined by one NUL each; a text's rows come from the lengths, so NULs inside texts do no harm.
    joined = "\x00".join(cut)
    points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.int64)
    document = np.repeat(np.arange(size, dtype=np.int64), lengths + 1)[: len(points)]
    word, letter = _classes_of(points)
    upper = _character_classes()[2][np.where(points < _BMP, points, 0)] & (points < _BMP)

    # Runs of one repeated character: each full 3 of a \w character is one elongation.
    starts = np.flatnonzero(np.concatenate([[True], points[1:] != points[:-1]]))
    run_lengths = np.diff(np.append(starts, len(points)))
    elongations = np.bincount(document[starts], weights=np.where(word[starts], run_lengths // 3, 0), minlength=size)

    # Runs of upper-case Latin letters, 2 or more, with no letter just before or just after.
    padded = np.concatenate([[False], upper, [False]])
    run_starts = np.flatnonzero(padded[1:-1] & ~padded[:-2])
    run_ends = np.flatnonzero(padded[1:-1] & ~padded[2:]) + 1
    letter_before = np.where(run_starts > 0, letter[np.maximum(run_starts - 1, 0)], False)
    letter_after = np.where(run_ends < len(points), letter[np.minimum(run_ends, len(points) - 1)], False)
    capital_words = (run_ends - run_starts >= 2) & ~letter_before & ~letter_after
    capitals = np.bincount(document[run_starts[capital_words]], minlength=size)

    exclamations = np.bincount(document[points == _EXCLAMATION], minlength=size)
    questions = np.bincount(document[points == _QUESTION], minlength=size)
    mark = (points == _EXCLAMATION) | (points == _QUESTION)
    mark_runs = np.bincount(document[:-1][mark[:-1] & mark[1:]], minlength=size) > 0

    words = np.bincount(features.word_rows, minlength=size)
    values = np.stack(
        [
            np.log1p(elongations),
            capitals / (words + 1.0),
            np.log1p(exclamations),
            np.log1p(questions),
            mark_runs.astype(np.float64),
        ],
        axis=1,
    )
    language_of_text = np.array([_language_index(language) for language in languages], dtype=np.int64)
    for index in range(len(LEXICON_LANGUAGES)):
        mine = language_of_text == index
        figures[mine, index * SURFACE_FEATURES : (index + 1) * SURFACE_FEATURES] = values[mine]
    return figures


def _language_index(language: str) -> int:
    return LEXICON_LANGUAGES.index(language) if language in LEXICON_LANGUAGES else -1


@lru_cache(maxsize=len(LEXICON_LANGUAGES))
def _negation_keys(language: str) -> npt.NDArray[np.uint64]:
    return np.array([word_key(word) for word in NEGATIONS[language]], dtype=np.uint64)
