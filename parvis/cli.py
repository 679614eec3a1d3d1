"""The ``parvis`` command: a thin layer over the ingest, store and member modules.

Exit codes: 0 success; 1 error (message on standard error, nothing half-written);
2 usage error; 3 import finished but some records were quarantined;
130 interrupted (re-run the same command to resume).
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import sys
import threading
import webbrowser
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from parvis.connectors._files import InputError
from parvis.ingest import DEFAULT_BATCH_SIZE, ImportSummary, IngestError, ingest
from parvis.members import MemberError, member_identities, merge, unmerge
from parvis.records import Connector, Quarantined
from parvis.stats import store_stats
from parvis.store import Store, default_url, open_store

EXIT_ERROR = 1
EXIT_QUARANTINED = 3
EXIT_INTERRUPTED = 130
MAX_QUARANTINE_LINES = 10

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


class Context:
    def __init__(self, db: str | None) -> None:
        self.url = db or default_url()
        self.batch_size = DEFAULT_BATCH_SIZE
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.url)
        return self._store


def fail(message: str, code: int = EXIT_ERROR) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    sys.exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can cause into one clear line, never a traceback."""
    try:
        yield
    except (InputError, IngestError, MemberError) as problem:
        fail(str(problem))
    except SQLAlchemyError as problem:
        fail(f"database error: {problem.__class__.__name__}: {str(problem).splitlines()[0]}")
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to resume where it stopped", EXIT_INTERRUPTED)


# -- feature commands ----------------------------------------------------------------------------
# Each feature package (metrics, enrichment, web, live platforms) adds its commands itself, as a
# Datasette plugin would: its ``cli`` module has ``register(main: click.Group) -> None``.
# They pull in heavy libraries (DuckDB, pandas, matrix-nio), so a module is imported only when one
# of the commands it provides is asked for (all of them when the command list is shown).
FEATURE_COMMANDS: dict[str, tuple[str, ...]] = {
    "parvis.metrics.cli": ("metrics", "export", "members"),
    "parvis.enrich.cli": ("enrich", "classify", "evaluate", "train"),
    "parvis.web.cli": ("serve", "users", "inbox"),
    "parvis.live.cli": ("connect", "listen", "moderate", "thanks"),
}


class _ParvisGroup(click.Group):
    _loaded: set[str]

    def _load(self, module_names: Iterable[str]) -> None:
        loaded = self.__dict__.setdefault("_loaded", set())
        for module_name in module_names:
            if module_name not in loaded:
                loaded.add(module_name)
                importlib.import_module(module_name).register(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load(module for module, names in FEATURE_COMMANDS.items() if cmd_name in names)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load(FEATURE_COMMANDS)
        return super().list_commands(ctx)


@click.group(cls=_ParvisGroup)
@click.option(
    "--db",
    envvar="PARVIS_DB",
    metavar="URL",
    help="SQLAlchemy URL of the store (default: $PARVIS_DB or a SQLite file).",
)
@click.version_option(package_name="parvis")
@click.pass_context
def main(ctx: click.Context, db: str | None) -> None:
    """Parvis: a cockpit for community managers."""
    ctx.obj = Context(db)


# -- import ------------------------------------------------------------------------------------------


@main.group("import")
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULT_BATCH_SIZE, hidden=True)
@click.pass_obj
def import_group(context: Context, batch_size: int) -> None:
    """Import an archive into the store (idempotent, incremental and resumable)."""
    context.batch_size = batch_size


def run_import(context: Context, make_connector: Callable[[], Connector], source: str | None) -> None:
    with user_errors():
        connector = make_connector()
        store = context.store
        shown = 0
        hidden = 0

        def report(item: Quarantined) -> None:
            nonlocal shown, hidden
            if shown < MAX_QUARANTINE_LINES:
                err.print(f"quarantined: {item.stream}: {item.position}: {item.reason}", markup=False, soft_wrap=True)
                shown += 1
            else:
                hidden += 1

        with _progress(connector.total_bytes()) as advance:
            summary = ingest(
                store, connector, source, progress=advance, on_quarantine=report, batch_size=context.batch_size
            )
        if hidden:
            err.print(f"… and {hidden:,} more quarantined records (parvis quarantine list)", markup=False)
        out.print(summary.one_line(), markup=False, soft_wrap=True)
    if summary.quarantined or summary.quarantined_before:
        sys.exit(EXIT_QUARANTINED)


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None] | None]:
    if not err.is_terminal or total <= 0:
        yield None
        return
    columns = (TextColumn("importing"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("import", total=total)

        def advance(advanced: int) -> None:
            progress.advance(task, advanced)

        yield advance


source_option = click.option("--source", metavar="NAME", help="Source id to import into (default: from the archive).")


@import_group.command("stackexchange")
@click.argument("folder", type=click.Path(path_type=Path))
@source_option
@click.pass_obj
def import_stackexchange(context: Context, folder: Path, source: str | None) -> None:
    """Import a Stack Exchange data dump FOLDER (Posts.xml, Comments.xml, Users.xml...)."""
    from parvis.connectors.stackexchange import StackExchangeConnector

    run_import(context, lambda: StackExchangeConnector(folder), source)


@import_group.command("mbox")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@source_option
@click.option("--list-name", metavar="NAME", help="Name of the mailing list (default: from the subjects' [tag]).")
@click.pass_obj
def import_mbox(context: Context, paths: tuple[Path, ...], source: str | None, list_name: str | None) -> None:
    """Import mailing-list archives: mbox or pipermail files (plain or .gz) or folders of them."""
    from parvis.connectors.mbox import MailArchiveConnector

    run_import(context, lambda: MailArchiveConnector(list(paths), list_name=list_name), source)


@import_group.command("irc")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@source_option
@click.option("--channel", metavar="NAME", help="Channel name (default: from the logs or the folder).")
@click.option("--tz", default="UTC", show_default=True, help="Time zone of the log timestamps.")
@click.pass_obj
def import_irc(context: Context, paths: tuple[Path, ...], source: str | None, channel: str | None, tz: str) -> None:
    """Import IRC/chat logs (files or folders; reply annotations beside them are used)."""
    from parvis.connectors.irc import IrcLogConnector

    run_import(context, lambda: IrcLogConnector(list(paths), channel=channel, tz=tz), source)


# -- stats -------------------------------------------------------------------------------------------


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def stats(context: Context, as_json: bool) -> None:
    """Counts per source and in total: members, identities, conversations, activities, quarantined."""
    with user_errors():
        figures = store_stats(context.store)
    if as_json:
        click.echo(json.dumps(figures, indent=2, sort_keys=True))
        return
    _print_stats(figures)


def _print_stats(figures: dict[str, Any]) -> None:
    columns: list[tuple[str, dict[str, Any]]] = [*figures["sources"].items(), ("total", figures["total"])]
    kinds = sorted({kind for _, counts in columns for kind in counts["activities_by_kind"]})
    table = Table(title=f"Parvis store: {len(figures['sources'])} sources")
    table.add_column("")
    for name, _ in columns:
        table.add_column(name, justify="right", overflow="fold")
    for measure in ("members", "identities", "conversations", "activities"):
        table.add_row(measure, *(f"{counts[measure]:,}" for _, counts in columns))
        if measure == "activities":
            for kind in kinds:
                table.add_row(f"  {kind}", *(f"{counts['activities_by_kind'].get(kind, 0):,}" for _, counts in columns))
    table.add_row("quarantined", *(f"{counts['quarantined']:,}" for _, counts in columns))
    out.print(table)


# -- quarantine --------------------------------------------------------------------------------------


@main.group()
def quarantine() -> None:
    """Records that could not be read, kept with the reason."""


@quarantine.command("list")
@click.option("--source", metavar="NAME")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def quarantine_list(context: Context, source: str | None, as_json: bool) -> None:
    """List quarantined records (file, position, reason)."""
    from parvis.store.queries import quarantined_records

    with user_errors():
        items = quarantined_records(context.store, source)
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        out.print(f"{item['source']}: {item['stream']}: {item['position']}: {item['reason']}", markup=False)


# -- members -----------------------------------------------------------------------------------------


@main.group("members")
def members_group() -> None:
    """Members and their identities across platforms."""


@members_group.command("merge")
@click.argument("keep")
@click.argument("absorb")
@click.pass_obj
def members_merge(context: Context, keep: str, absorb: str) -> None:
    """Make ABSORB's identities part of member KEEP (member or identity ids). Undo with unmerge."""
    with user_errors():
        report = merge(context.store, keep, absorb)
    out.print(f"merged {len(report.moved_identities)} identities into member {report.member_id}", markup=False)


@members_group.command("unmerge")
@click.argument("reference")
@click.pass_obj
def members_unmerge(context: Context, reference: str) -> None:
    """Send an identity (or every merged identity of a member) back to the member it came with."""
    with user_errors():
        reports = unmerge(context.store, reference)
    for report in reports:
        out.print(f"{report.moved_identities[0]} is back in member {report.member_id}", markup=False)
    if not reports:
        out.print("nothing to unmerge: already at home", markup=False)


@members_group.command("show")
@click.argument("reference")
@click.pass_obj
def members_show(context: Context, reference: str) -> None:
    """The member behind a member or identity id, and all its identities."""
    with user_errors():
        member_id, ids = member_identities(context.store, reference)
    out.print(f"member {member_id}", markup=False)
    for identity_id in ids:
        out.print(f"  {identity_id}", markup=False)


# -- db ----------------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The store's schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(context: Context) -> None:
    """Apply pending migrations (opening the store does it too)."""
    with user_errors():
        store = context.store
    out.print(f"store at {store.engine.url.render_as_string(hide_password=True)} is up to date", markup=False)


# -- demo --------------------------------------------------------------------------------------------


@main.command()
@click.option(
    "--serve",
    "then_serve",
    is_flag=True,
    help="Then run the web cockpit on it (an admin account 'demo' is made when the store has none).",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.pass_context
def demo(ctx: click.Context, then_serve: bool, port: int) -> None:
    """Import the bundled sample community (a Stack Exchange site) and show what was imported."""
    from parvis.demo import sample_folder

    context: Context = ctx.obj
    with sample_folder() as folder:
        from parvis.connectors.stackexchange import StackExchangeConnector

        with user_errors():
            summary: ImportSummary = ingest(context.store, StackExchangeConnector(folder), "french-language-meta")
        out.print(summary.one_line(), markup=False)
    with user_errors():
        _print_stats(store_stats(context.store))
    if then_serve:
        _serve_demo(ctx, port)


def _serve_demo(ctx: click.Context, port: int) -> None:
    from parvis.web import auth

    store = ctx.obj.store
    with user_errors():
        if auth.list_users(store):
            out.print("Log in with one of the store's accounts (`parvis users list`).", markup=False)
        else:
            password = secrets.token_urlsafe(12)
            auth.add_user(store, "demo", password, "admin")
            out.print(f"Log in as demo, password {password} (shown once; `parvis users password demo` changes it).")
    url = f"http://127.0.0.1:{port}/"
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        # Only where a graphical browser can open: a console browser would take over this terminal.
        threading.Timer(1.5, webbrowser.open, [url]).start()
    serve = main.get_command(ctx, "serve")
    assert serve is not None
    ctx.invoke(serve, host="127.0.0.1", port=port, secure_cookies=False)


if __name__ == "__main__":
    main()
