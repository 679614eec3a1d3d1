"""Enrichment: language, sentiment, toxicity and question labels for activities (see docs/enrich.md).

``enrich(store)`` (alias ``enrich_activities``) fills the ``enrichments`` table; ``default_classifier()``
classifies texts.  Imported lazily, so the package's command module loads without numpy.
"""

from __future__ import annotations

from typing import Any

__all__ = ["default_classifier", "enrich", "enrich_activities"]


def __getattr__(name: str) -> Any:
    if name in ("enrich", "enrich_activities"):
        from parvis.enrich.run import enrich

        return enrich
    if name == "default_classifier":
        from parvis.enrich.pipeline import default_classifier

        return default_classifier
    raise AttributeError(name)
