"""Downloadable reports: metrics, the member list and the open inbox, as CSV or Parquet."""

from __future__ import annotations

import io

import pandas as pd

from parvis import metrics
from parvis.store import Store
from parvis.web import metrics_view
from parvis.workflows import inbox

FORMATS = ("csv", "parquet")
REPORTS = ("metrics", "members", "inbox")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def table(store: Store, report: str, scope: metrics_view.Scope) -> pd.DataFrame:
    """The report as one tidy frame."""
    if report == "metrics":
        frames, _ = metrics_view._frames(store, scope)
        parts = []
        for key, frame in frames.items():
            shown = metrics_view._window(frame, scope.since, scope.until)
            long = shown.melt(
                id_vars=[
                    column for column in ("source_id", "channel_id", "kind", "label", "period") if column in shown
                ],
                var_name="measure",
                value_name="value",
            )
            long.insert(0, "metric", metrics_view._names(scope.grain)[key])
            parts.append(long)
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if report == "members":
        frame = metrics.segment_members(store, as_of=scope.until, source=scope.source)
        frame = frame.copy()
        frame["segments"] = [";".join(value) for value in frame["segments"]]
        return frame
    found = inbox.items(store, source=scope.source, channel=scope.channel, state="open")
    columns = list(inbox.item_json(found[0])) if found else ["activity_id"]
    return pd.DataFrame([inbox.item_json(item) for item in found], columns=columns)


def encode(frame: pd.DataFrame, extension: str) -> tuple[bytes, str]:
    if extension == "csv":
        return _csv_safe(frame).to_csv(index=False).encode("utf-8"), MEDIA_TYPES["csv"]
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue(), MEDIA_TYPES["parquet"]


def _csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Community text opened in a spreadsheet must not run as a formula: prefix ``= + - @`` cells with '."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = [
                "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
                for value in out[column]
            ]
    return out
