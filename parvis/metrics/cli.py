"""``parvis metrics``, ``parvis export metrics|members`` and ``parvis members list``."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import click
import pandas as pd
from rich.console import Console
from rich.table import Table

from parvis.metrics import GRAINS, METRICS, SEGMENTS, MetricsError, compute, segment_members

out = Console(highlight=False)


def _date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _plain(value: Any) -> Any:
    """A JSON-ready value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if isinstance(value, pd.Timedelta | timedelta):
        return value.total_seconds()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{key: _plain(value) for key, value in row.items()} for row in frame.to_dict("records")]


def _text(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _print_frame(title: str, caption: str | None, frame: pd.DataFrame, limit: int = 40) -> None:
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(str(column), justify="right" if numeric else "left", overflow="fold")
    shown = frame.tail(limit) if "period" in frame.columns else frame.head(limit)
    for row in shown.itertuples(index=False):
        table.add_row(*(_text(value) for value in row))
    if len(frame) > limit:
        table.caption = f"{caption or ''} ({limit} of {len(frame):,} rows; --json for all)".strip()
    out.print(table)


def register(main: click.Group) -> None:
    from parvis.cli import Context, fail, user_errors

    @main.command("metrics")
    @click.argument("names", nargs=-1)
    @click.option("--source", metavar="S", help="Only this source.")
    @click.option("--channel", metavar="C", help="Only this channel (e.g. qc:tag:qiskit).")
    @click.option("--grain", type=click.Choice(GRAINS), default="week", show_default=True)
    @click.option("--since", metavar="YYYY-MM-DD", callback=_date, help="First day of the periods shown.")
    @click.option("--until", metavar="YYYY-MM-DD", callback=_date, help="Last day counted (default: today).")
    @click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per metric: name, definition, rows.")
    @click.option("--list", "as_list", is_flag=True, help="List the metrics and their definitions.")
    @click.pass_obj
    def metrics_command(
        context: Context,
        names: tuple[str, ...],
        source: str | None,
        channel: str | None,
        grain: str,
        since: date | None,
        until: date | None,
        engine: str,
        as_json: bool,
        as_list: bool,
    ) -> None:
        """Community health metrics (all of the grain's dashboard set, or the NAMES given)."""
        if as_list:
            for metric in METRICS.values():
                out.print(f"[bold]{metric.name}[/]: {metric.definition}", soft_wrap=True)
            return
        with user_errors(), _metrics_errors(fail):
            results = compute(
                context.store,
                list(names) or None,
                source=source,
                channel=channel,
                grain=grain,
                since=since,
                until=until,
                engine=engine,
            )
        if as_json:
            payload = [
                {"name": r.name, "definition": r.definition, "gap": r.gap, "rows": _rows(r.frame)}
                for r in results.values()
            ]
            click.echo(json.dumps(payload, indent=2))
            return
        for result in results.values():
            if result.gap:
                out.print(f"[bold]{result.name}[/]: not available on {engine}: {result.gap}")
                continue
            _print_frame(result.name, result.definition, result.frame)

    export = main.commands.get("export")
    if not isinstance(export, click.Group):

        @main.group("export")
        def export_group() -> None:
            """Export metrics or members to CSV or Parquet."""

        export = export_group

    @export.command("metrics")
    @click.argument("path", type=click.Path(path_type=Path))
    @click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
    @click.option("--source", metavar="S")
    @click.option("--grain", type=click.Choice(GRAINS), default="week", show_default=True)
    @click.pass_obj
    def export_metrics(context: Context, path: Path, fmt: str, source: str | None, grain: str) -> None:
        """Every metric of the grain's dashboard set, in long form (metric, row, column, value) at PATH."""
        with user_errors(), _metrics_errors(fail):
            results = compute(context.store, source=source, grain=grain)
            parts = []
            for result in results.values():
                frame = result.frame.reset_index(drop=True).astype(object)
                long = frame.reset_index(names="row").melt(id_vars="row", var_name="column", value_name="value")
                long.insert(0, "metric", result.name)
                parts.append(long)
            table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
            table["value"] = [_text(value) if not isinstance(value, str) else value for value in table["value"]]
            _write(table, path, fmt)
        out.print(f"wrote {len(table):,} values of {len(results)} metrics to {path}", markup=False)

    @export.command("members")
    @click.argument("path", type=click.Path(path_type=Path))
    @click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
    @click.option("--source", metavar="S")
    @click.option("--segment", type=click.Choice(list(SEGMENTS)))
    @click.pass_obj
    def export_members(context: Context, path: Path, fmt: str, source: str | None, segment: str | None) -> None:
        """Members with their segments, first and last activity, activity count, love and reach."""
        with user_errors(), _metrics_errors(fail):
            frame = segment_members(context.store, segment, source=source)
            frame = frame.assign(segments=[";".join(found) for found in frame["segments"]])
            _write(frame, path, fmt)
        out.print(f"wrote {len(frame):,} members to {path}", markup=False)

    members = main.commands["members"]
    assert isinstance(members, click.Group)

    @click.command("list")
    @click.option("--segment", type=click.Choice(list(SEGMENTS)), help="Only this segment's members.")
    @click.option("--source", metavar="S")
    @click.option("--as-of", "as_of", metavar="YYYY-MM-DD", callback=_date, help="Segments as of this day.")
    @click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="Rows shown (not --json).")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def members_list(
        context: Context, segment: str | None, source: str | None, as_of: date | None, limit: int, as_json: bool
    ) -> None:
        """Members with their segments, by engagement (love). Segments: see docs/metrics.md."""
        with user_errors(), _metrics_errors(fail):
            frame = segment_members(context.store, segment, source=source, as_of=as_of)
        if as_json:
            click.echo(json.dumps(_rows(frame), indent=2))
            return
        _print_frame(f"members{f' ({segment})' if segment else ''}", None, frame, limit)

    members.add_command(members_list)


class _metrics_errors:
    def __init__(self, fail: Any) -> None:
        self.fail = fail

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, problem: BaseException | None, _tb: Any) -> Literal[False]:
        if isinstance(problem, MetricsError):
            self.fail(str(problem))
        return False


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
    except OSError as problem:
        raise MetricsError(f"cannot write {path}: {problem.strerror or problem}") from problem
