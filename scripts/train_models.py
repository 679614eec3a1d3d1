"""Retrain the shipped enrichment models: ``python scripts/train_models.py [--data DIR] [--output FILE]``.

The same as ``parvis train``; needs the ``[train]`` extra (scikit-learn).  Then run
``parvis evaluate`` to refresh docs/quality.md.
"""

from __future__ import annotations

from parvis.enrich.cli import train

if __name__ == "__main__":
    train()
