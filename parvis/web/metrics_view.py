"""What the dashboard and member pages show, computed by :mod:`parvis.metrics` and cached.

This module turns the metrics layer's frames into page-sized, typed values: KPI tiles with the
change from the previous window of the same length, Vega-Lite chart specs, member groups and
pages of the member list.  The inbox is :mod:`parvis.workflows.inbox`'s.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from parvis import metrics
from parvis.store import Store
from parvis.web import queries
from parvis.web.cache import views
from parvis.web.i18n import Formatter

# Window presets: key -> days (None: the whole history).
PERIODS: dict[str, int | None] = {"30d": 30, "90d": 90, "365d": 365, "all": None}
GRAINS = ("day", "week", "month")
DEFAULT_PERIOD = "365d"
DEFAULT_GRAIN = "week"
logger = logging.getLogger(__name__)
SEGMENTS: tuple[str, ...] = tuple(metrics.SEGMENTS)
# The four groups of the members page (a group is the union of its segments), then lifecycle segments.
GROUPS: dict[str, tuple[str, ...]] = {
    "newcomer": ("newcomer",),
    "involved": ("involved", "core"),
    "silent": ("silent",),
    "veteran": ("veteran",),
}
LIFECYCLE = tuple(segment for segment in SEGMENTS if segment not in {s for group in GROUPS.values() for s in group})
TREND_DAYS = 90


@dataclass(frozen=True)
class Scope:
    source: str | None
    channel: str | None
    period: str
    grain: str
    since: date | None
    until: date | None
    previous_since: date | None
    previous_until: date | None

    @classmethod
    def build(cls, store: Store, *, source: str | None, channel: str | None, period: str, grain: str) -> Scope:
        """A window ending at the latest activity (see :func:`queries.latest_activity`)."""
        period = period if period in PERIODS else DEFAULT_PERIOD
        grain = grain if grain in GRAINS else DEFAULT_GRAIN
        latest = views.get(store, ("latest", source), lambda: queries.latest_activity(store, source))
        until = latest.date() if latest else None
        days = PERIODS[period]
        if until is None or days is None:
            return cls(source, channel, period, grain, None, until, None, None)
        since = until - timedelta(days=days - 1)
        return cls(
            source, channel, period, grain, since, until, since - timedelta(days=days), since - timedelta(days=1)
        )


@dataclass(frozen=True)
class Kpi:
    key: str
    value: float | None
    previous: float | None
    kind: str  # "count", "rate" or "hours"

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous in (None, 0):
            return None
        assert self.previous is not None
        return (self.value - self.previous) / abs(self.previous)


@dataclass(frozen=True)
class Chart:
    key: str
    spec: dict[str, Any]
    rows: list[tuple[str, str, float | None]]  # (period, series, value): the accessible data table


@dataclass(frozen=True)
class Overview:
    kpis: list[Kpi]
    charts: list[Chart]
    definitions: dict[str, str] = field(default_factory=dict)


def _names(grain: str) -> dict[str, str]:
    return {
        "activities": f"activities:kind:{grain}",
        "active": f"active_members:source:{grain}",
        "new": f"new_members:source:{grain}",
        "conversations": f"conversations_started:channel:{grain}",
        "response": f"response_rate:source:{grain}",
        "first_response": f"first_response_time:source:{grain}",
        "sentiment": f"sentiment:channel:{grain}",
    }


def _window(frame: pd.DataFrame, start: date | None, end: date | None) -> pd.DataFrame:
    if frame.empty or "period" not in frame.columns:
        return frame
    chosen = frame
    if start is not None:
        chosen = chosen[chosen["period"] >= start]
    if end is not None:
        chosen = chosen[chosen["period"] <= end]
    return chosen


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _kpis(frames: dict[str, pd.DataFrame], scope: Scope) -> list[Kpi]:
    def windows(key: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        frame = frames[key]
        current = _window(frame, scope.since, scope.until)
        if scope.previous_since is None:
            return current, None
        return current, _window(frame, scope.previous_since, scope.previous_until)

    def total(key: str, column: str) -> Kpi:
        current, previous = windows(key)
        return Kpi(
            key,
            float(current[column].sum()) if column in current else 0.0,
            float(previous[column].sum()) if previous is not None and column in previous else None,
            "count",
        )

    def average(key: str, column: str) -> Kpi:
        def mean(frame: pd.DataFrame | None) -> float | None:
            if frame is None or frame.empty:
                return None if frame is None else 0.0
            return float(frame.groupby("period")[column].sum().mean())

        current, previous = windows(key)
        return Kpi(key, mean(current), mean(previous), "count")

    def ratio(key: str, numerator: str, denominator: str) -> Kpi:
        def value(frame: pd.DataFrame | None) -> float | None:
            if frame is None or frame.empty or float(frame[denominator].sum()) == 0:
                return None
            return float(frame[numerator].sum()) / float(frame[denominator].sum())

        current, previous = windows(key)
        return Kpi(key, value(current), value(previous), "rate")

    def hours(key: str) -> Kpi:
        # The metrics layer gives a median per period; over a window we show their average weighted by
        # the conversations that got a response (labelled as such on the page).
        def value(frame: pd.DataFrame | None) -> float | None:
            if frame is None or frame.empty or float(frame["responded"].sum()) == 0:
                return None
            return float((frame["median_hours"] * frame["responded"]).sum() / frame["responded"].sum())

        current, previous = windows(key)
        return Kpi(key, value(current), value(previous), "hours")

    return [
        total("activities", "activities"),
        average("active", "active_members"),
        total("new", "new_members"),
        total("conversations", "conversations"),
        ratio("response", "responded", "conversations"),
        hours("first_response"),
    ]


def _label(value: Any) -> str:
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


def _line_spec(
    values: list[dict[str, Any]], y_title: str, *, y_format: str | None = None, mark: str = "line"
) -> dict[str, Any]:
    axis: dict[str, Any] = {"title": y_title}
    if y_format:
        axis["format"] = y_format
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "width": "container",
        "height": 180,
        "data": {"values": values},
        "mark": {"type": mark, "point": mark == "line", "tooltip": True},
        "encoding": {
            "x": {"field": "period", "type": "temporal", "title": None},
            "y": {"field": "value", "type": "quantitative", "axis": axis, "stack": mark == "bar" or None},
            "color": {"field": "series", "type": "nominal", "title": None, "legend": {"orient": "bottom"}},
        },
    }


def _series_chart(key: str, frame: pd.DataFrame, series: str | None, column: str, title: str, **options: Any) -> Chart:
    rows: list[tuple[str, str, float | None]] = []
    if not frame.empty:
        grouped = frame.groupby(["period", series] if series else ["period"], dropna=False)[column].sum()
        for index, value in grouped.items():
            period, name = index if isinstance(index, tuple) else (index, title)
            rows.append((_label(period), str(name), _number(value)))
    values = [{"period": period, "series": name, "value": value} for period, name, value in rows]
    return Chart(key, _line_spec(values, title, **options), rows)


def overview(store: Store, scope: Scope, titles: dict[str, str]) -> Overview:
    """KPIs and charts for the scope (``titles``: translated chart titles by key); cached."""
    return views.get(store, ("overview", scope, tuple(sorted(titles.items()))), lambda: _overview(store, scope, titles))


def _frames(store: Store, scope: Scope) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """The overview's metric frames and definitions: cached, the same in every language."""
    return views.get(store, ("overview-frames", scope), lambda: _compute_frames(store, scope))


def _compute_frames(store: Store, scope: Scope) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    names = _names(scope.grain)
    results = metrics.compute(
        store,
        list(names.values()),
        source=scope.source,
        channel=scope.channel,
        grain=scope.grain,
        since=scope.previous_since or scope.since,
        until=scope.until,
    )
    frames = {key: results[name].frame for key, name in names.items()}
    definitions = {key: results[name].definition for key, name in names.items()}
    return frames, definitions


def _overview(store: Store, scope: Scope, titles: dict[str, str]) -> Overview:
    frames, definitions = _frames(store, scope)
    kpis = _kpis(frames, scope)
    shown = {key: _window(frame, scope.since, scope.until) for key, frame in frames.items()}
    charts = [
        _series_chart("activities", shown["activities"], "kind", "activities", titles["activities"], mark="bar"),
        _series_chart("active", shown["active"], "source_id", "active_members", titles["active"]),
        _series_chart("new", shown["new"], "source_id", "new_members", titles["new"]),
    ]
    response = shown["response"]
    if not response.empty:
        per = response.groupby(["period", "source_id"])[["responded", "conversations"]].sum().reset_index()
        per["rate"] = per["responded"] / per["conversations"]
        charts.append(_series_chart("response", per, "source_id", "rate", titles["response"], y_format="%"))
    else:
        charts.append(_series_chart("response", response, None, "rate", titles["response"]))
    charts.append(
        _series_chart("first_response", shown["first_response"], "source_id", "median_hours", titles["first_response"])
    )
    sentiment = shown["sentiment"]
    if not sentiment.empty:
        per = sentiment.groupby(["period", "label"])["activities"].sum().reset_index()
        per["share"] = per["activities"] / per.groupby("period")["activities"].transform("sum")
        charts.append(_series_chart("sentiment", per, "label", "share", titles["sentiment"], y_format="%"))
    return Overview(kpis, charts, definitions)


# -- members ---------------------------------------------------------------------------------------


MEMBER_COLUMNS = ("display_name", "segments", "first_activity", "last_activity", "activities", "love", "reach")
SORTABLE = ("display_name", "first_activity", "last_activity", "activities", "love", "reach")


def _as_of(store: Store, source: str | None) -> date | None:
    latest = views.get(store, ("latest", source), lambda: queries.latest_activity(store, source))
    return latest.date() if latest else None


def _segment_frame(store: Store, source: str | None, as_of: date | None) -> pd.DataFrame:
    def compute() -> pd.DataFrame:
        frame = metrics.segment_members(store, as_of=as_of, source=source)
        return _normalise_members(frame)

    return views.get(store, ("segments", source, as_of), compute)


def _normalise_members(frame: pd.DataFrame) -> pd.DataFrame:
    """The metrics layer's member frame with the columns the pages use, and a lower-cased search key."""
    renames = {
        "first_activity_at": "first_activity",
        "last_activity_at": "last_activity",
        "activity_count": "activities",
    }
    frame = frame.rename(columns={old: new for old, new in renames.items() if old in frame.columns}).copy()
    for column in MEMBER_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    frame["segments"] = [_segment_list(value) for value in frame["segments"]]
    frame["display_name"] = [
        name if isinstance(name, str) and name else member
        for name, member in zip(frame["display_name"], frame["member_id"], strict=True)
    ]
    frame["search"] = (frame["display_name"].astype(str) + " " + frame["member_id"].astype(str)).str.lower()
    return frame.reset_index(drop=True)


def _segment_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part for part in value.replace(";", ",").split(",") if part)
    try:
        return tuple(str(part) for part in value)
    except TypeError:
        return ()


@dataclass(frozen=True)
class MemberRow:
    member_id: str
    display_name: str
    segments: tuple[str, ...]
    first_activity: datetime | None
    last_activity: datetime | None
    activities: int
    love: float | None
    reach: int | None


def _row(record: dict[str, Any]) -> MemberRow:
    def when(value: Any) -> datetime | None:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
            return None
        moment: datetime = pd.Timestamp(value).to_pydatetime()
        return moment

    love = _number(record.get("love"))
    reach = _number(record.get("reach"))
    return MemberRow(
        str(record["member_id"]),
        str(record["display_name"]),
        tuple(record["segments"]),
        when(record.get("first_activity")),
        when(record.get("last_activity")),
        int(_number(record.get("activities")) or 0),
        love,
        int(reach) if reach is not None else None,
    )


def member_page(
    store: Store,
    *,
    search: str = "",
    segment: str | None = None,
    source: str | None = None,
    sort: str = "last_activity",
    descending: bool = True,
    page: int = 1,
    per_page: int = 50,
) -> queries.Page[MemberRow]:
    as_of = _as_of(store, source)
    column = sort if sort in SORTABLE else "last_activity"

    def sorted_members() -> pd.DataFrame:
        frame = _segment_frame(store, source, as_of)
        key = frame["search"] if column == "display_name" else frame[column]
        return frame.loc[key.sort_values(ascending=not descending, na_position="last", kind="stable").index]

    # Sorting and segment masks cost seconds with millions of members: cached until the store changes.
    frame = views.get(store, ("members-sorted", source, as_of, column, descending), sorted_members)
    if segment:
        wanted = GROUPS.get(segment, (segment,))
        mask = views.get(
            store,
            ("members-in", source, as_of, column, descending, wanted),
            lambda: [any(name in segments for name in wanted) for segments in frame["segments"]],
        )
        frame = frame[mask]
    needle = search.strip().lower()
    if needle:
        frame = frame[frame["search"].str.contains(needle, regex=False)]
    start = (page - 1) * per_page
    chosen = frame.iloc[start : start + per_page]
    return queries.Page([_row(record) for record in chosen.to_dict("records")], len(frame), page, per_page)


@dataclass(frozen=True)
class Group:
    segment: str
    count: int
    before: int | None

    @property
    def change(self) -> int | None:
        return None if self.before is None else self.count - self.before


def member_groups(store: Store, *, source: str | None = None) -> list[Group]:
    """How many members each segment holds now, and ``TREND_DAYS`` days earlier."""
    as_of = _as_of(store, source)

    def compute() -> list[Group]:
        now = _segment_frame(store, source, as_of)
        before = _segment_frame(store, source, as_of - timedelta(days=TREND_DAYS)) if as_of else None

        def count(frame: pd.DataFrame, wanted: tuple[str, ...]) -> int:
            return sum(1 for segments in frame["segments"] if any(name in segments for name in wanted))

        chosen = [(name, members) for name, members in GROUPS.items()] + [(name, (name,)) for name in LIFECYCLE]
        return [
            Group(name, count(now, wanted), count(before, wanted) if before is not None else None)
            for name, wanted in chosen
        ]

    return views.get(store, ("member-groups", source, as_of), compute)


def member_summary(store: Store, member_id: str) -> MemberRow | None:
    frame = _segment_frame(store, None, _as_of(store, None))
    found = frame[frame["member_id"] == member_id]
    if found.empty:
        return None
    return _row(found.iloc[0].to_dict())


def member_timeline_spec(view: queries.MemberView, _formatter: Formatter, title: str) -> Chart:
    rows: list[tuple[str, str, float | None]] = [
        (month.isoformat(), title, float(count)) for month, count in view.by_month
    ]
    values = [{"period": period, "series": series, "value": value} for period, series, value in rows]
    return Chart("timeline", _line_spec(values, title, mark="bar"), rows)


def _text(value: Any) -> str | None:
    """A string from a frame cell; None, NaN and empty strings become None."""
    return value if isinstance(value, str) and value else None


def warm_up(store: Store) -> None:
    """Compute what the first visit to the overview (seconds) and then to the member list (minutes at
    millions of members) need, so a server started on a large store answers its first visitors from
    the cache."""
    try:
        _frames(store, Scope.build(store, source=None, channel=None, period=DEFAULT_PERIOD, grain=DEFAULT_GRAIN))
        member_groups(store)
        member_page(store)
    # A warm-up never stops the server: the page itself will show the error to whoever opens it.
    except Exception as problem:
        logger.warning("warming up the overview and member list failed: %s", problem)
