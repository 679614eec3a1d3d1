"""``parvis serve``, ``parvis users`` and ``parvis inbox``: the web cockpit's commands (registered by parvis.cli)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import click


def _context(ctx: click.Context) -> Any:
    return ctx.find_root().obj


def _read_password(password_file: Path | None) -> str:
    if password_file is not None:
        text = sys.stdin.read() if str(password_file) == "-" else password_file.read_text()
        return text.splitlines()[0] if text else ""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def register(main: click.Group) -> None:
    from parvis.cli import user_errors
    from parvis.web import auth

    @main.command()
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
    @click.option("--secure-cookies", is_flag=True, help="Mark cookies Secure (behind an HTTPS proxy).")
    @click.pass_context
    def serve(ctx: click.Context, host: str, port: int, secure_cookies: bool) -> None:
        """Run the web cockpit on the store (log in with an account made by `parvis users add`)."""
        import uvicorn

        from parvis.web import metrics_view
        from parvis.web.app import create_app

        with user_errors():
            store = _context(ctx).store
            app = create_app(store, secure_cookies=secure_cookies)
        threading.Thread(target=metrics_view.warm_up, args=(store,), name="parvis-warm-up", daemon=True).start()
        click.echo(f"Parvis cockpit on http://{host}:{port}/ (Ctrl+C stops it)", err=True)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False)

    @main.group()
    def users() -> None:
        """Accounts of the web cockpit (roles: admin, moderator, analyst)."""

    @users.command("add")
    @click.argument("name")
    @click.option("--role", type=click.Choice(auth.ROLES), required=True)
    @click.option(
        "--password-file",
        type=click.Path(path_type=Path, allow_dash=True),
        help="Read the password from the first line of this file ('-': standard input). Default: prompt.",
    )
    @click.pass_context
    def users_add(ctx: click.Context, name: str, role: str, password_file: Path | None) -> None:
        """Create account NAME with ROLE; the password is asked for, or read from stdin or a file."""
        password = _read_password(password_file)
        with user_errors():
            try:
                user = auth.add_user(_context(ctx).store, name, password, role)
            except auth.AccountError as problem:
                raise click.ClickException(str(problem)) from problem
        click.echo(f"added {user.name} ({user.role})")

    @users.command("password")
    @click.argument("name")
    @click.option("--password-file", type=click.Path(path_type=Path, allow_dash=True))
    @click.pass_context
    def users_password(ctx: click.Context, name: str, password_file: Path | None) -> None:
        """Set NAME's password (and end their sessions)."""
        password = _read_password(password_file)
        with user_errors():
            try:
                auth.set_password(_context(ctx).store, name, password)
            except auth.AccountError as problem:
                raise click.ClickException(str(problem)) from problem
        click.echo(f"password of {name} changed")

    @users.command("list")
    @click.pass_context
    def users_list(ctx: click.Context) -> None:
        """List accounts and roles."""
        with user_errors():
            accounts = auth.list_users(_context(ctx).store)
        for user, created, disabled in accounts:
            state = "\tdisabled" if disabled else ""
            click.echo(f"{user.name}\t{user.role}\t{created:%Y-%m-%d}{state}")

    _register_inbox(main)


def _register_inbox(main: click.Group) -> None:
    from parvis.cli import user_errors
    from parvis.workflows import inbox

    @main.group("inbox")
    def inbox_group() -> None:
        """The response inbox: questions from every source, SLA against business hours, the team."""

    @inbox_group.command("list")
    @click.option("--state", type=click.Choice([*inbox.STATES, "all"]), default="open", show_default=True)
    @click.option("--source", help="Only this source.")
    @click.option("--channel", help="Only this channel.")
    @click.option("--as-of", type=click.DateTime(), help="Look at the inbox as it was then (UTC).")
    @click.option("--limit", type=click.IntRange(1), help="At most this many items (oldest first).")
    @click.option("--json", "as_json", is_flag=True, help="One JSON document: {items: [...], total}.")
    @click.pass_context
    def inbox_list(
        ctx: click.Context,
        state: str,
        source: str | None,
        channel: str | None,
        as_of: Any,
        limit: int | None,
        as_json: bool,
    ) -> None:
        """List inbox items, oldest first, with their state, SLA status and age."""
        import json

        with user_errors():
            try:
                found = inbox.items(
                    _context(ctx).store,
                    source=source,
                    channel=channel,
                    state=None if state == "all" else state,
                    as_of=as_of,
                )
            except inbox.InboxError as problem:
                raise click.ClickException(str(problem)) from problem
        shown = found[:limit] if limit else found
        if as_json:
            click.echo(json.dumps({"items": [inbox.item_json(item) for item in shown], "total": len(found)}, indent=2))
            return
        for item in shown:
            label = (item.title or item.snippet or "").replace("\n", " ")[:70]
            who = item.answered_by or item.responder or item.assignee or "-"
            click.echo(
                f"{item.activity_id}\t{item.created_at:%Y-%m-%d %H:%M}\t{item.state}\t{item.sla}\t"
                f"{item.age.total_seconds() / 3600:.1f}h\t{who}\t{label}"
            )
        click.echo(f"{len(found)} item(s)", err=True)

    @inbox_group.command("config")
    @click.option("--timezone", help="IANA time zone of the business hours (Europe/Paris).")
    @click.option("--days", help="Business days: mon-fri, mon,tue,thu, sun-thu.")
    @click.option("--hours", help="Business hours, the same every business day: 09:00-17:00.")
    @click.option("--target-hours", type=click.FloatRange(min=0, min_open=True), help="First response target.")
    @click.option("--holiday", "holidays", multiple=True, help="A day off (2026-12-25); repeat. Replaces the list.")
    @click.option("--no-holidays", is_flag=True, help="Clear the holiday list.")
    @click.option("--by", default="cli", show_default=True, help="Who changes the settings (kept with them).")
    @click.pass_context
    def inbox_config(
        ctx: click.Context,
        timezone: str | None,
        days: str | None,
        hours: str | None,
        target_hours: float | None,
        holidays: tuple[str, ...],
        no_holidays: bool,
        by: str,
    ) -> None:
        """Show, or change, the business hours and the first-response target (stored in the store)."""
        import json

        with user_errors():
            store = _context(ctx).store
            try:
                if any(value is not None for value in (timezone, days, hours, target_hours)) or holidays or no_holidays:
                    config = inbox.configure(
                        store,
                        by=by,
                        timezone=timezone,
                        days=days,
                        hours=hours,
                        target_hours=target_hours,
                        holidays=list(holidays) if holidays or no_holidays else None,
                    )
                else:
                    config = inbox.load_config(store)
            except inbox.InboxError as problem:
                raise click.ClickException(str(problem)) from problem
        click.echo(json.dumps(config.to_json(), indent=2))

    @inbox_group.group("team")
    def team_group() -> None:
        """Which platform identities are a Parvis user's (for first-response times per team member)."""

    @team_group.command("link")
    @click.argument("user")
    @click.argument("identity")
    @click.option("--by", default="cli", show_default=True)
    @click.pass_context
    def team_link(ctx: click.Context, user: str, identity: str, by: str) -> None:
        """Link platform identity IDENTITY (qc:u15) to Parvis user USER."""
        with user_errors():
            try:
                found = inbox.link(_context(ctx).store, user, identity, by=by)
            except inbox.InboxError as problem:
                raise click.ClickException(str(problem)) from problem
        click.echo(f"{found.identity_id} → {found.user}")

    @team_group.command("unlink")
    @click.argument("identity")
    @click.pass_context
    def team_unlink(ctx: click.Context, identity: str) -> None:
        """Unlink platform identity IDENTITY from its user."""
        with user_errors():
            if not inbox.unlink(_context(ctx).store, identity):
                raise click.ClickException(f"{identity} is not linked")
        click.echo(f"{identity} unlinked")

    @team_group.command("list")
    @click.pass_context
    def team_list(ctx: click.Context) -> None:
        """List the team's identities."""
        with user_errors():
            for found in inbox.team(_context(ctx).store):
                click.echo(f"{found.user}\t{found.identity_id}\t{found.display_name or found.handle}")
