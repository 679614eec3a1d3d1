"""``parvis connect``, ``parvis listen`` and ``parvis moderate``: live platforms and moderation."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn

import click
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from parvis.live.matrix import (
    BatchReport,
    MatrixAccount,
    MatrixError,
    MatrixListener,
    MatrixPlatform,
    account_for,
    accounts,
    authenticate,
    default_source,
    remove_on_platform,
    save_account,
)
from parvis.live.secrets import SecretsError, matrix_secret, save_matrix_token
from parvis.store import Store, open_store
from parvis.store.db import default_url
from parvis.workflows.moderation import (
    STATES,
    ModerationError,
    Moderator,
    audit_entries,
    decide,
    hidden_on_platform,
    queue,
    record,
    target_of,
)
from parvis.workflows.moderation_rules import RulesError, RuleSet, load_rules
from parvis.workflows.welcome import (
    WelcomeConfig,
    WelcomeError,
    claim_welcome,
    load_welcome,
    mark_thanked,
    thanks_suggestions,
    welcomes_due,
)

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def _fail(message: str, code: int = 1) -> NoReturn:
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
    except (SecretsError, MatrixError, ModerationError, WelcomeError) as problem:
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
    if not callable(found):
        return None
    try:
        positional = [
            parameter
            for parameter in inspect.signature(found).parameters.values()
            if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return found  # type: ignore[no-any-return]
    if len(positional) >= 2:
        return found  # type: ignore[no-any-return]
    # enrich_activities(store): enriches whatever is pending in the store, the new activities included.
    return lambda store, _ids: found(store)


def register(main: click.Group) -> None:
    main.add_command(connect)
    main.add_command(listen)
    main.add_command(moderate)
    main.add_command(thanks)


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
@click.option(
    "--welcome",
    "welcome_path",
    type=click.Path(dir_okay=False),
    help="Welcome templates (YAML): reply to each member's first message, once.",
)
@click.pass_context
def listen(
    ctx: click.Context,
    source: str | None,
    once: bool,
    rules_path: str | None,
    notify_room: str | None,
    auto_join: bool,
    welcome_path: str | None,
) -> None:
    """Keep the connected rooms flowing into the store in real time; resumes where it stopped."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with _user_errors():
        store = _store(ctx)
        rules = load_rules(rules_path) if rules_path else None
        welcome = load_welcome(welcome_path) if welcome_path else None
        chosen = [account for account in accounts(store) if source is None or account.source_id == source]
        if not chosen:
            raise MatrixError(
                "no connected account"
                + (f" for source {source}" if source else "")
                + "; run parvis connect matrix first"
            )
        if len(chosen) > 1:
            raise MatrixError("several accounts are connected; choose one with --source")
        asyncio.run(
            _listen(store, chosen[0], rules, once=once, notify_room=notify_room, auto_join=auto_join, welcome=welcome)
        )


async def _welcome(
    store: Store, config: WelcomeConfig, platform: MatrixPlatform, activity_ids: list[str], own_identity: str
) -> None:
    """Welcome the members whose first message just arrived (claimed in the audit log first: at most once)."""
    for welcome in welcomes_due(store, config, activity_ids, [own_identity]):
        if not claim_welcome(store, welcome, platform.actor):
            continue
        found = target_of(store, welcome.activity_id)
        try:
            if found is None:
                raise MatrixError(f"{welcome.activity_id} is no longer in the store")
            await platform.reply(found[2], welcome.text)
        except Exception as problem:  # logged, never retried: a welcome must not be posted twice
            error = f"{problem.__class__.__name__}: {problem}"
            err.print(f"welcome of {welcome.member_id} failed: {error}", markup=False)
            record(
                store,
                platform.actor,
                "welcome-failed",
                f"first message of {welcome.member_id}",
                activity_id=welcome.activity_id,
                details={"member": welcome.member_id, "error": error},
            )
        else:
            out.print(f"welcomed {welcome.member_id} ({welcome.language}) on {welcome.activity_id}", markup=False)


async def _listen(
    store: Store,
    account: MatrixAccount,
    rules: RuleSet | None,
    *,
    once: bool,
    notify_room: str | None,
    auto_join: bool,
    welcome: WelcomeConfig | None = None,
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
        if report.initial:
            return  # the history: no rule acts on it, nobody is welcomed for it
        hidden: set[str] = set()
        if moderator is not None:
            matches = [m for m in moderator.evaluate(report.activity_ids) if m.subject.identity_id != own_identity]
            for outcome in await moderator.enforce(matches, platform, actor=account.user_id):
                done = ", ".join(outcome.done) or "nothing"
                out.print(f"rule {outcome.match.rule.id} on {outcome.match.subject.activity_id}: {done}", markup=False)
                if "hide" in outcome.done:
                    hidden.add(outcome.match.subject.activity_id)
        if welcome is not None:
            edited = set(report.edited_earlier)  # not first messages: they were welcomed when they came
            arrived = [i for i in report.activity_ids if i not in hidden and i not in edited]
            await _welcome(store, welcome, platform, arrived, own_identity)

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
            with contextlib.suppress(asyncio.CancelledError):
                await runner  # it closes the session's import run
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
    """Record a person's decision on a queue item.

    ``remove`` on a message of a connected Matrix account also redacts it on the homeserver (with the
    account's credentials, as for ``parvis listen``), unless a rule already did; the redaction is
    logged in the audit log.
    """
    with _user_errors():
        store = _store(ctx)
        decided = decide(store, item_id, decision, moderator, reason)
        out.print(f"item {item_id}: {decision} by {moderator}", markup=False)
        if decision != "remove":
            return
        found = target_of(store, decided.activity_id)
        account = account_for(store, found[0]) if found is not None else None
        if account is None:
            out.print("not a connected live source: remove the message on its platform yourself", markup=False)
            return
        if hidden_on_platform(store, decided.activity_id):
            out.print(f"already removed on {account.homeserver}", markup=False)
            return
        try:
            secret = matrix_secret(account.user_id)
        except SecretsError as problem:
            _fail(f"the decision is recorded, but the message is still on {account.homeserver}: {problem}")
        redaction = asyncio.run(remove_on_platform(store, account, secret, decided, moderator, reason))
        out.print(f"redacted on {account.homeserver} ({redaction})", markup=False)


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


@click.group()
def thanks() -> None:
    """Suggestions of members to thank: accepted answers, replies to newcomers."""


_CONTROL = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)], " ")


def _clean(text: str) -> str:
    """Community text for the terminal: no control characters (escape sequences), one line."""
    return " ".join(text.translate(_CONTROL).split())


def _window_end(until: datetime | None) -> datetime:
    return until if until is not None else datetime.now(UTC).replace(tzinfo=None)


@thanks.command("list")
@click.option("--days", type=click.IntRange(1), default=30, show_default=True, help="How far back to look.")
@click.option("--until", type=click.DateTime(), help="End of the period, UTC (default: now).")
@click.option("--source", metavar="NAME", help="Only this source.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@click.pass_context
def thanks_list(ctx: click.Context, days: int, until: datetime | None, source: str | None, limit: int) -> None:
    """Members whose answers were accepted, or who replied to a newcomer's first post, not thanked yet."""
    with _user_errors():
        found = thanks_suggestions(_store(ctx), until=_window_end(until), days=days, source_id=source)
        for item in found[:limit]:
            reasons = []
            if item.accepted:
                reasons.append(f"{len(item.accepted)} accepted answer{'s' * (len(item.accepted) > 1)}")
            if item.newcomer_replies:
                count = len(item.newcomer_replies)
                reasons.append(f"{count} repl{'ies' if count > 1 else 'y'} to newcomers")
            out.print(
                f"{_clean(item.member_id)} {_clean(item.name)}: {', '.join(reasons)}", markup=False, soft_wrap=True
            )
        if not found:
            out.print(f"nobody to thank in the {days} days up to {_window_end(until):%Y-%m-%d %H:%M}", markup=False)
        elif len(found) > limit:
            out.print(f"... and {len(found) - limit} more", markup=False)


@thanks.command("done")
@click.argument("member_id", metavar="MEMBER")
@click.option("--by", "by", required=True, help="Who thanked them (kept in the audit log).")
@click.option("--days", type=click.IntRange(1), default=30, show_default=True)
@click.option("--until", type=click.DateTime(), help="End of the period, UTC (default: now).")
@click.option("--source", metavar="NAME", help="Only this source.")
@click.pass_context
def thanks_done(
    ctx: click.Context, member_id: str, by: str, days: int, until: datetime | None, source: str | None
) -> None:
    """Record that MEMBER was thanked for their suggested activities; they leave the list."""
    with _user_errors():
        store = _store(ctx)
        found = thanks_suggestions(store, until=_window_end(until), days=days, source_id=source)
        chosen = next((item for item in found if item.member_id == member_id), None)
        if chosen is None:
            raise ModerationError(f"{member_id} is not among the suggestions (see parvis thanks list)")
        count = mark_thanked(store, chosen, by)
        out.print(f"{member_id}: thanked by {by} for {count} activit{'ies' if count > 1 else 'y'}", markup=False)
