"""``parvis serve`` and ``parvis users``: the web cockpit's commands (registered by parvis.cli)."""

from __future__ import annotations

import sys
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

        from parvis.web.app import create_app

        with user_errors():
            store = _context(ctx).store
            app = create_app(store, secure_cookies=secure_cookies)
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
