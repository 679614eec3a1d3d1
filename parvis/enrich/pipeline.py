"""The enrichers: language, sentiment, toxicity and question, over a batch of texts.

Every text gets a defined result, whatever it is (empty, a megabyte long, binary junk, another
script, emoji only):

- ``language``: ``fr`` or ``en`` with the model's probability; ``und`` (score 0) when the text has
  no letters, when most of its letters are not Latin, or when the model is unsure.
- ``sentiment``: ``negative`` / ``neutral`` / ``positive``; score = P(positive) − P(negative), a
  polarity in [-1, 1] that can be averaged over time; the three probabilities in extras.
- ``toxicity``: ``toxic`` / ``ok``; score = P(toxic); extras ``{"categories": {"hateful": p,
  "offensive": p}}``.
- ``question``: ``question`` / ``other``; score = P(question).

A text with nothing left after normalisation is ``und``, ``neutral`` (0), ``ok`` (0), ``other`` (0).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from parvis.enrich.features import MAX_CHARS, Features, featurize
from parvis.enrich.models import ModelBundle, load_bundle

TASKS = ("language", "sentiment", "toxicity", "question")
LANGUAGES = ("fr", "en")
UNDETERMINED = "und"
# Below this probability for its best language, a text's language is undetermined.
LANGUAGE_MIN_PROBABILITY = 0.6
# A text whose letters are less than this share Latin is in another script: undetermined.
LATIN_MIN_SHARE = 0.5
# Texts are classified in chunks of at most CHUNK texts and CHUNK_CHARACTERS characters (of what
# the models read).  Small chunks keep the feature arrays at a few MB, which the memory allocator
# reuses; with 32,000 characters it returned them to the system and faulted them back in, a third
# of the time spent on long mails.
CHUNK = 256
CHUNK_CHARACTERS = 16_000


@dataclass(frozen=True)
class Result:
    label: str
    score: float
    extras: dict[str, Any] = field(default_factory=dict)


class Classifier(Protocol):
    """What ``parvis classify`` and ``parvis enrich`` need: results per task for a batch of texts."""

    def versions(self) -> dict[str, str]: ...

    def classify(
        self, texts: Sequence[str], tasks: Sequence[str] = TASKS, lang: str | None = None
    ) -> dict[str, list[Result]]: ...


def _chunks(texts: Sequence[str]) -> Iterator[tuple[int, int]]:
    start, characters = 0, 0
    for index, text in enumerate(texts):
        size = min(len(text), MAX_CHARS)
        if index > start and (index - start >= CHUNK or characters + size > CHUNK_CHARACTERS):
            yield start, index
            start, characters = index, 0
        characters += size
    if start < len(texts):
        yield start, len(texts)


def _sigmoid(values: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return 0.5 * (1.0 + np.tanh(0.5 * values))


def language_flags(languages: Sequence[str]) -> list[list[str]]:
    """The flag features the sentiment, toxicity and question heads were trained with."""
    return [[f"lang={language}"] if language in LANGUAGES else [] for language in languages]


class LinearClassifier:
    """The default models: hashed n-grams and linear heads, numpy only (see parvis/enrich/models.py)."""

    def __init__(self, bundle: ModelBundle | None = None) -> None:
        self.bundle = bundle or load_bundle()

    def versions(self) -> dict[str, str]:
        heads = self.bundle.heads
        return {task: heads[task].version for task in TASKS}

    def classify(
        self, texts: Sequence[str], tasks: Sequence[str] = TASKS, lang: str | None = None
    ) -> dict[str, list[Result]]:
        results: dict[str, list[Result]] = {task: [] for task in tasks}
        for start, stop in _chunks(texts):
            for task, found in self._classify(texts[start:stop], tasks, lang).items():
                results[task].extend(found)
        return results

    def _classify(self, texts: Sequence[str], tasks: Sequence[str], lang: str | None) -> dict[str, list[Result]]:
        features = featurize(texts, self.bundle.bits)
        logits = self.bundle.logits(features)
        languages, language_results = self._languages(features, logits, lang)
        results: dict[str, list[Result]] = {}
        if "language" in tasks:
            results["language"] = language_results
        if any(task != "language" for task in tasks):
            flagged = features.flag_part(language_flags(languages))
            logits = logits + self.bundle.logits(flagged, with_bias=False)
        if "sentiment" in tasks:
            logits = logits + self.bundle.dense_logits(features, languages, texts)
        empty = features.lengths == 0
        if "sentiment" in tasks:
            results["sentiment"] = self._sentiment(logits, empty)
        if "toxicity" in tasks:
            results["toxicity"] = self._toxicity(logits, empty)
        if "question" in tasks:
            results["question"] = self._binary("question", logits, empty, ("other", "question"))
        return results

    def _languages(
        self, features: Features, logits: np.ndarray[Any, np.dtype[np.float64]], lang: str | None
    ) -> tuple[list[str], list[Result]]:
        if lang is not None:
            return [lang] * features.size, [Result(lang, 1.0) for _ in range(features.size)]
        head = self.bundle.heads["language"]
        french = _sigmoid(logits[:, head.start])
        best = np.where(french >= 0.5, french, 1.0 - french)
        readable = (features.latin_letters > 0) & (features.latin_letters >= LATIN_MIN_SHARE * features.letters)
        decided = readable & (best >= LANGUAGE_MIN_PROBABILITY)
        labels = np.where(decided, np.where(french >= 0.5, "fr", "en"), UNDETERMINED).tolist()
        scores = np.where(decided, best, 0.0).round(4).tolist()
        return labels, [Result(label, score) for label, score in zip(labels, scores, strict=True)]

    def _sentiment(
        self, logits: np.ndarray[Any, np.dtype[np.float64]], empty: np.ndarray[Any, np.dtype[np.bool_]]
    ) -> list[Result]:
        head = self.bundle.heads["sentiment"]
        scores = logits[:, head.start : head.stop]
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        probabilities = scores / scores.sum(axis=1, keepdims=True)
        neutral = head.classes.index("neutral")
        probabilities[empty] = 0.0
        probabilities[empty, neutral] = 1.0
        best = probabilities.argmax(axis=1).tolist()
        polarity = (
            (probabilities[:, head.classes.index("positive")] - probabilities[:, head.classes.index("negative")])
            .round(4)
            .tolist()
        )
        rounded = probabilities.round(4).tolist()
        return [
            Result(head.classes[index], score, {"probabilities": dict(zip(head.classes, row, strict=True))})
            for index, score, row in zip(best, polarity, rounded, strict=True)
        ]

    def _binary(
        self,
        name: str,
        logits: np.ndarray[Any, np.dtype[np.float64]],
        empty: np.ndarray[Any, np.dtype[np.bool_]],
        labels: tuple[str, str],
    ) -> list[Result]:
        head = self.bundle.heads[name]
        probability = np.where(empty, 0.0, _sigmoid(logits[:, head.start]))
        chosen = np.where(probability >= head.threshold, labels[1], labels[0]).tolist()
        return [Result(label, score) for label, score in zip(chosen, probability.round(4).tolist(), strict=True)]

    def _toxicity(
        self, logits: np.ndarray[Any, np.dtype[np.float64]], empty: np.ndarray[Any, np.dtype[np.bool_]]
    ) -> list[Result]:
        results = self._binary("toxicity", logits, empty, ("ok", "toxic"))
        categories = [name for name in self.bundle.heads if name.startswith("toxicity.")]
        if not categories:
            return results
        probabilities = {
            name.split(".", 1)[1]: np.where(empty, 0.0, _sigmoid(logits[:, self.bundle.heads[name].start]))
            .round(4)
            .tolist()
            for name in categories
        }
        return [
            Result(result.label, result.score, {"categories": {name: probabilities[name][i] for name in probabilities}})
            for i, result in enumerate(results)
        ]


_default: LinearClassifier | None = None


def default_classifier() -> LinearClassifier:
    """The shipped models, loaded once per process."""
    global _default
    if _default is None:
        _default = LinearClassifier()
    return _default
