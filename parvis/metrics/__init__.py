"""Community health metrics and member segments, defined once (ibis) and run on DuckDB or Spark.

``METRICS`` maps each metric's stable name (``measure:dimension:grain``) to its :class:`Metric`;
:func:`compute` runs them; :func:`segment_members` and :func:`unanswered_questions` give the
per-member and per-question views.  Definitions: docs/metrics.md (generated from the docstrings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any

import pandas as pd

from parvis.metrics.base import Base, Scope
from parvis.metrics.definitions import Metric, registry
from parvis.metrics.engines import ENGINES, MetricsError, backend, serialized
from parvis.metrics.segments import SEGMENTS, SegmentRules, segment_members, unanswered_questions
from parvis.metrics.vocabulary import GRAINS, period_start
from parvis.store import Store

METRICS: Mapping[str, Metric] = MappingProxyType(registry())

__all__ = [
    "ENGINES",
    "GRAINS",
    "METRICS",
    "SEGMENTS",
    "Metric",
    "MetricResult",
    "MetricsError",
    "SegmentRules",
    "compute",
    "segment_members",
    "unanswered_questions",
]


@dataclass(frozen=True)
class MetricResult:
    name: str
    definition: str
    frame: pd.DataFrame
    # Why this metric could not run on the engine asked for (then the frame is empty).
    gap: str | None = None


def default_names(grain: str) -> list[str]:
    """The dashboard set for a grain: the metrics of that grain, and those shown with every grain."""
    return [name for name, metric in METRICS.items() if metric.grain == grain or metric.always]


@serialized
def compute(
    store: Store,
    names: Sequence[str] | None = None,
    *,
    source: str | None = None,
    channel: str | None = None,
    grain: str = "week",
    since: date | None = None,
    until: date | None = None,
    engine: str = "duckdb",
) -> dict[str, MetricResult]:
    """Run metrics (all of the grain's dashboard set by default) over the store; frames are sorted."""
    if grain not in GRAINS:
        raise MetricsError(f"unknown grain {grain!r} (choose from {', '.join(GRAINS)})")
    if engine not in ENGINES:
        raise MetricsError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    chosen = list(names) if names is not None else default_names(grain)
    unknown = [name for name in chosen if name not in METRICS]
    if unknown:
        raise MetricsError(f"unknown metric {unknown[0]!r} (parvis metrics --list shows them)")
    if since is not None and until is not None and since > until:
        raise MetricsError(f"--since {since} is after --until {until}")
    scope = Scope(source=source, channel=channel, grain=grain, since=since, until=until)
    return compute_on(backend(store, engine), chosen, scope, engine)


def compute_on(on: Any, chosen: Sequence[str], scope: Scope, engine: str = "duckdb") -> dict[str, MetricResult]:
    """:func:`compute` over an ibis backend holding snapshot tables (a snapshot file without its store)."""
    base = Base(on, scope)
    results: dict[str, MetricResult] = {}
    for name in chosen:
        metric = METRICS[name]
        if engine in metric.gaps:
            results[name] = MetricResult(name, metric.definition, pd.DataFrame(), metric.gaps[engine])
            continue
        frame = metric.build(base, metric.grain).to_pandas()
        results[name] = MetricResult(name, metric.definition, tidy(frame, scope, metric.grain))
    return results


def _month_start(index: Any) -> date:
    year, month = divmod(int(index), 12)
    return date(year, month + 1, 1)


def tidy(frame: pd.DataFrame, scope: Scope, grain: str) -> pd.DataFrame:
    """Engine-independent shape: dates as ``datetime.date``, rows within [since, until], sorted."""
    frame = frame.copy()
    for column in ("period", "day"):
        if column in frame.columns:
            frame[column] = [value if value is None else pd.Timestamp(value).date() for value in frame[column]]
    if "cohort_month" in frame.columns:
        frame["cohort_month"] = [_month_start(value) for value in frame["cohort_month"]]
    for column in ("period", "cohort_month"):
        if column not in frame.columns:
            continue
        if scope.since is not None:
            start = period_start(scope.since, grain if column == "period" else "month")
            frame = frame[frame[column] >= start]
        if scope.until is not None:
            frame = frame[frame[column] <= scope.until]
    keys = [column for column in frame.columns if frame[column].dtype == object or column in ("months_since", "rank")]
    keys = [
        c
        for c in (
            "source_id",
            "channel_id",
            "kind",
            "period",
            "cohort_month",
            "months_since",
            "tier",
            "rank",
            "label",
            "member_id",
        )
        if c in frame.columns
    ] or keys
    if keys and len(frame):
        frame = frame.sort_values(keys, kind="stable")
    for column in frame.columns:
        if str(frame[column].dtype) in ("Int64", "int32", "int64") or column in ("rank",):
            frame[column] = frame[column].astype("int64")
    return frame.reset_index(drop=True)
