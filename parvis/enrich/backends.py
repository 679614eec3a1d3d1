"""Optional backend: local Hugging Face models (PyTorch or ONNX) behind the same interface.

For users with larger models on disk (no download: the path must hold the model)::

    from parvis.enrich.backends import TransformersClassifier
    classifier = TransformersClassifier({"sentiment": "/models/xlm-roberta-sentiment"})
    parvis.enrich.run.enrich(store, classifier=classifier)

Tasks without a model fall back to the shipped linear models.  ``label_map`` translates the
model's labels to Parvis's (``{"LABEL_0": "negative", ...}``); labels already named like Parvis's
need none.  Needs ``transformers`` (and ``torch``, or ``optimum[onnxruntime]`` with ``onnx=True``),
imported only when the class is built.  Not used by the tests.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from parvis.enrich.pipeline import TASKS, LinearClassifier, Result, default_classifier

POSITIVE = {"sentiment": "positive", "toxicity": "toxic", "question": "question"}


class TransformersClassifier:
    def __init__(
        self,
        models: Mapping[str, str],
        *,
        label_map: Mapping[str, str] | None = None,
        onnx: bool = False,
        batch_size: int = 32,
        fallback: LinearClassifier | None = None,
    ) -> None:
        try:
            transformers = importlib.import_module("transformers")
            onnx_models = importlib.import_module("optimum.onnxruntime") if onnx else None
        except ImportError as problem:
            raise RuntimeError(f"this backend needs transformers (and optimum for ONNX): {problem}") from None
        self.fallback = fallback or default_classifier()
        self.label_map = dict(label_map or {})
        self.batch_size = batch_size
        self.pipelines: dict[str, Any] = {}
        self.model_versions: dict[str, str] = {}
        for task, path in models.items():
            if task not in TASKS:
                raise ValueError(f"unknown task {task!r}")
            kwargs: dict[str, Any] = {"device": -1, "top_k": None, "truncation": True}
            if onnx_models is not None:
                kwargs["model"] = onnx_models.ORTModelForSequenceClassification.from_pretrained(path)
                kwargs["tokenizer"] = transformers.AutoTokenizer.from_pretrained(path)
            else:
                kwargs["model"] = path
            self.pipelines[task] = transformers.pipeline("text-classification", **kwargs)
            self.model_versions[task] = "hf." + hashlib.sha1(path.encode()).hexdigest()[:8]

    def versions(self) -> dict[str, str]:
        return {**self.fallback.versions(), **self.model_versions}

    def classify(
        self, texts: Sequence[str], tasks: Sequence[str] = TASKS, lang: str | None = None
    ) -> dict[str, list[Result]]:
        results = self.fallback.classify(texts, [task for task in tasks if task not in self.pipelines], lang)
        for task in tasks:
            if task in self.pipelines:
                outputs = self.pipelines[task]([text or " " for text in texts], batch_size=self.batch_size)
                results[task] = [self._result(task, output) for output in outputs]
        return results

    def _result(self, task: str, output: list[dict[str, Any]]) -> Result:
        probabilities = {
            self.label_map.get(item["label"], item["label"].lower()): float(item["score"]) for item in output
        }
        label = max(probabilities, key=lambda name: probabilities[name])
        if task == "sentiment":
            score = probabilities.get("positive", 0.0) - probabilities.get("negative", 0.0)
            return Result(label, round(score, 4), {"probabilities": probabilities})
        return Result(label, round(probabilities.get(POSITIVE.get(task, label), 0.0), 4))
