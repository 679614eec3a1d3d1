"""``parvis connect``, ``parvis listen`` and ``parvis moderate``: live platforms and moderation."""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from parvis.live.matrix import (
    BatchReport,
    MatrixAccount,
    MatrixError,
    MatrixListener,
    MatrixPlatform,
    accounts,
    authenticate,
    default_source,
    save_account,
)
from parvis.live.secrets import SecretsError, matrix_secret, save_matrix_token
from parvis.store import Store, open_store
from parvis.store.db import default_url
from parvis.workflows.moderation import STATES, ModerationError, Moderator, audit_entries, decide, queue
from parvis.workflows.moderation_rules import RulesError, RuleSet, load_rules

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    sys.exit(code)


@contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except RulesError as problem:
        for line in str(problem).splitlines():
            err.print(line, markup=False, soft_wrap=True)
        sys.exit(1)
    except (SecretsError, MatrixError, ModerationError) as problem:
        _fail(str(problem))
    except SQLAlchemyError as problem:
        _fail(f"database error: {problem.__class__.__name__}: {str(problem).splitlines()[0]}")
    except OSError as problem:
        _fail(f"{problem.__class__.__name__}: {problem}")
    except KeyboardInterrupt:
        _fail("interrupted", 130)


def _store(ctx: click.Context) -> Store:
    context = ctx.find_root().obj
    url = getattr(context, "url", None) or default_url()
    store: Store = getattr(context, "store", None) or open_store(url)
    return store


def _enricher() -> Callable[[Store, list[str]], Any] | None:
    """parvis.enrich's ``enrich_activities(store, activity_ids)``, when that package provides it."""
    try:
        module = importlib.import_module("parvis.enrich")
    except ImportError:
        return None
    found = getattr(module, "enrich_activities", None)
    return found if callable(found) else None


def register(main: click.Group) -> None:
    main.add_command(connect)
    main.add_command(listen)
    main.add_command(moderate)


@click.group()
def connect() -> None:
    """Connect a live platform account (credentials come from the environment, never the database)."""


@connect.command("matrix")
@click.option("--homeserver", required=True, metavar="URL", help="Homeserver URL, e.g. https://matrix.example.org")
@click.option("--user", "user_id", required=True, metavar="@NAME:SERVER", help="The community's account.")
@click.option("--source", metavar="NAME", help="Source id in the store (default: matrix-<server>).")
@click.pass_context
def connect_matrix(ctx: click.Context, homeserver: str, user_id: str, source: str | None) -> None:
    """Check the account's credentials and register it for ``parvis listen``.

    Reads PARVIS_MATRIX_TOKEN (an access token) or PARVIS_MATRIX_PASSWORD; a password login's
    token is kept in the 0600 secrets file (~/.config/parvis/secrets.json) for later runs.
    """
    with _user_errors():
        if not user_id.startswith("@") or ":" not in user_id:
            raise MatrixError(f"{user_id!r} is not a Matrix user id (@name:server)")
        secret = matrix_secret(user_id)
        account = MatrixAccount(source or default_source(homeserver, user_id), homeserver.rstrip("/"), user_id)
        token, device_id = asyncio.run(authenticate(account, secret))
        if secret.password:
            where = save_matrix_token(user_id, token, device_id)
            out.print(f"access token kept in {where} (mode 0600)", markup=False)
        save_account(_store(ctx), MatrixAccount(account.source_id, account.homeserver, user_id, device_id))
        out.print(f"{user_id} connected as source {account.source_id}; run: parvis listen", markup=False)


@click.command()
@click.option("--source", metavar="NAME", help="Listen to this source only (default: every connected account).")
@click.option("--once", is_flag=True, help="Catch up once and exit.")
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False), help="Moderation rules to enforce (YAML).")
@click.option("--notify-room", metavar="ROOM_ID", help="Room where notify actions post.")
@click.option("--auto-join", is_flag=True, help="Join the rooms the account is invited to.")
@click.pass_context
def listen(
    ctx: click.Context, source: str | None, once: bool, rules_path: str | None, notify_room: str | None, auto_join: bool
) -> None:
    """Keep the connected rooms flowing into the store in real time; resumes where it stopped."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with _user_errors():
        store = _store(ctx)
        rules = load_rules(rules_path) if rules_path else None
        chosen = [account for account in accounts(store) if source is None or account.source_id == source]
        if not chosen:
            raise MatrixError(
                "no connected account"
                + (f" for source {source}" if source else "")
                + "; run parvis connect matrix first"
            )
        if len(chosen) > 1:
            raise MatrixError("several accounts are connected; choose one with --source")
        asyncio.run(_listen(store, chosen[0], rules, once=once, notify_room=notify_room, auto_join=auto_join))


async def _listen(
    store: Store, account: MatrixAccount, rules: RuleSet | None, *, once: bool, notify_room: str | None, auto_join: bool
) -> None:
    listener = MatrixListener(store, account, matrix_secret(account.user_id), auto_join=auto_join)
    moderator = Moderator(store, rules) if rules is not None else None
    platform = MatrixPlatform(listener.actions, account.user_id, notify_room)
    enrich = _enricher()
    own_identity = f"{account.source_id}:{account.user_id}"

    async def after_batch(report: BatchReport) -> None:
        summary = report.summary
        out.print(
            f"{account.source_id}: {report.events} events, {summary.activities.added} new activities, "
            f"{summary.activities.present} already present, {summary.quarantined} quarantined",
            markup=False,
        )
        sys.stdout.flush()
        if enrich is not None and report.activity_ids:
            try:
                enrich(store, report.activity_ids)
            except Exception as problem:  # enrichment is best effort: ingest has already committed
                err.print(f"enrichment failed: {problem.__class__.__name__}: {problem}", markup=False)
        if moderator is None or report.initial:
            return
        matches = [m for m in moderator.evaluate(report.activity_ids) if m.subject.identity_id != own_identity]
        for outcome in await moderator.enforce(matches, platform, actor=account.user_id):
            done = ", ".join(outcome.done) or "nothing"
            out.print(f"rule {outcome.match.rule.id} on {outcome.match.subject.activity_id}: {done}", markup=False)

    listener.after_batch = after_batch
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = asyncio.ensure_future(listener.run(once=once, stop=stop))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            runner.result()
        else:
            runner.cancel()  # the token only moves after a committed batch: nothing is lost
    finally:
        stopper.cancel()
        await listener.close()


@click.group()
def moderate() -> None:
    """Moderation rules, queue and audit log."""


@moderate.command("test")
@click.argument("rules_path", metavar="RULES", type=click.Path(dir_okay=False))
@click.option("--source", metavar="NAME", help="Only this source's history.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Stop after this many matches.")
@click.option("--show", type=click.IntRange(0), default=20, help="Matches to print (the counts cover all).")
@click.pass_context
def moderate_test(ctx: click.Context, rules_path: str, source: str | None, limit: int | None, show: int) -> None:
    """Dry-run RULES over the stored history: what would have matched, and why.  Changes nothing."""
    with _user_errors():
        rules = load_rules(rules_path)
        store = _store(ctx)
        counts = {rule.id: 0 for rule in rules.rules}
        for match in Moderator(store, rules).dry_run(source, limit):
            counts[match.rule.id] += 1
            if sum(counts.values()) <= show:
                text = " ".join(match.subject.text.split())[:100]
                out.print(
                    f"{match.subject.created_at:%Y-%m-%d %H:%M} {match.rule.id} {match.subject.activity_id} "
                    f"({'; '.join(match.why)}) {text}",
                    markup=False,
                    soft_wrap=True,
                )
        for rule in rules.rules:
            actions = ", ".join(action.kind for action in rule.actions)
            out.print(f"{rule.id}: {counts[rule.id]:,} matches (would: {actions})", markup=False)


@moderate.command("queue")
@click.option("--state", type=click.Choice([*STATES, "all"]), default="pending", show_default=True)
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@click.pass_context
def moderate_queue(ctx: click.Context, state: str, limit: int) -> None:
    """List the moderation queue."""
    with _user_errors():
        items = queue(_store(ctx), None if state == "all" else state, limit)
        for item in items:
            text = " ".join((item.text or "").split())[:80]
            out.print(
                f"{item.id} {item.state} {item.created_at:%Y-%m-%d %H:%M} {item.rule} {item.activity_id} "
                f"{item.author or '?'}: {text} — {item.reason}",
                markup=False,
                soft_wrap=True,
            )
        if not items:
            out.print("the queue is empty" if state == "pending" else "nothing", markup=False)


@moderate.command("decide")
@click.argument("item_id", type=int)
@click.argument("decision", type=click.Choice(["approve", "remove", "dismiss"]))
@click.option("--by", "moderator", required=True, help="Who decides (kept in the audit log).")
@click.option("--reason", default="", help="Why (kept in the audit log).")
@click.pass_context
def moderate_decide(ctx: click.Context, item_id: int, decision: str, moderator: str, reason: str) -> None:
    """Record a person's decision on a queue item."""
    with _user_errors():
        decide(_store(ctx), item_id, decision, moderator, reason)
        out.print(f"item {item_id}: {decision} by {moderator}", markup=False)


@moderate.command("log")
@click.option("--activity", metavar="ID", help="Only this activity's entries.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@click.pass_context
def moderate_log(ctx: click.Context, activity: str | None, limit: int) -> None:
    """Show the audit log (append-only): who did what, when, under which rule, and why."""
    with _user_errors():
        for entry in audit_entries(_store(ctx), activity, limit):
            out.print(
                f"{entry.at:%Y-%m-%d %H:%M:%S} {entry.actor} {entry.action} {entry.activity_id or '-'} "
                f"[{entry.rule or '-'}] {entry.reason}"
                + (f" ({entry.details['error']})" if "error" in entry.details else ""),
                markup=False,
                soft_wrap=True,
            )
