"""Conformance: every metric gives the same rows on DuckDB and on Spark, over the same store.

One Spark session serves the whole test session.  A metric that cannot run on an engine carries an
explicit, reasoned marker (``Metric.gaps``); this test fails on any other difference.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pandas as pd

from parvis.metrics import METRICS, compute, segment_members, unanswered_questions
from parvis.store import open_store
from tests import test_metrics_community as community

os.environ.setdefault("PARVIS_SPARK_PARTITIONS", "1")


def same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(left, right, check_dtype=False, rtol=1e-9, atol=1e-12)


def test_every_metric_agrees_on_duckdb_and_spark(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'tiny.db'}")
    community.build(store)
    until = date(2024, 3, 31)
    # Every family once (its monthly form where it has one: a family's grains differ only in the unit
    # given to the same truncation), and the day and week truncations once.
    families: dict[str, str] = {}
    for name in METRICS:
        family = name.rsplit(":", 1)[0]
        if family not in families or name.endswith(":month"):
            families[family] = name
    names = sorted({*families.values(), "active_members:source:day", "active_members:source:week"})
    duck = compute(store, names, until=until)
    spark = compute(store, names, until=until, engine="spark")
    if True:
        for name in names:
            gap = METRICS[name].gaps.get("spark")
            if gap:
                assert spark[name].gap == gap and spark[name].frame.empty
                continue
            assert len(duck[name].frame) > 0 or name.startswith(("sentiment", "toxicity")), name
            same(duck[name].frame, spark[name].frame)
    same(
        unanswered_questions(store, as_of=until).drop(columns="age"),
        unanswered_questions(store, as_of=until, engine="spark").drop(columns="age"),
    )
    for as_of in (date(2024, 1, 10), date(2024, 3, 10)):
        same(segment_members(store, as_of=as_of), segment_members(store, as_of=as_of, engine="spark"))
    store.close()
