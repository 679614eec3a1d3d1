"""Local accounts, roles, server-side sessions and CSRF tokens for the web cockpit.

Passwords are hashed with argon2id (argon2-cffi).  A session is a random token in an HttpOnly
cookie; the store keeps only its SHA-256, so a copy of the database cannot be replayed as a
login.  CSRF tokens are HMACs of the session token (or, before login, of a nonce cookie) with the
server secret, which comes from ``$PARVIS_SECRET`` or a file in the user's config folder, never
from the database.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from parvis.store import Store
from parvis.store.schema import users, web_sessions

Role = Literal["admin", "moderator", "analyst"]
ROLES: tuple[Role, ...] = ("admin", "moderator", "analyst")
SECRET_ENV = "PARVIS_SECRET"
SESSION_LIFETIME = timedelta(days=14)
MIN_PASSWORD_LENGTH = 8
SESSION_RECHECK = 2.0
RECENT_SESSIONS = 4096

# What each role may do.  ``view``: read every page (the moderation queue and audit log included)
# and download reports; ``triage``: change the inbox and answer from it; ``moderate``: decide on
# the moderation queue; ``admin``: manage accounts, the team and the inbox settings.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "view": frozenset(ROLES),
    "triage": frozenset({"admin", "moderator"}),
    "moderate": frozenset({"admin", "moderator"}),
    "admin": frozenset({"admin"}),
}

_hasher = PasswordHasher()
# Verified against when the user name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(Exception):
    """A user that already exists, an unknown role, a password too short."""


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role

    def can(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(store: Store, name: str, password: str, role: str) -> User:
    name = name.strip()
    if not name or len(name) > 100:
        raise AccountError("a user name has 1 to 100 characters")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    try:
        with store.engine.begin() as connection:
            result = connection.execute(
                users.insert().values(
                    name=name, password_hash=_hasher.hash(password), role=role, created_at=_now(), disabled=False
                )
            )
            assert result.inserted_primary_key is not None
            user_id = int(result.inserted_primary_key[0])
    except IntegrityError as problem:
        raise AccountError(f"user {name!r} already exists") from problem
    return User(user_id, name, next(known for known in ROLES if known == role))


def set_password(store: Store, name: str, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    with store.engine.begin() as connection:
        changed = connection.execute(
            update(users).where(users.c.name == name).values(password_hash=_hasher.hash(password))
        )
        if changed.rowcount == 0:
            raise AccountError(f"no user {name!r}")
        user_id = connection.execute(select(users.c.id).where(users.c.name == name)).scalar_one()
        connection.execute(delete(web_sessions).where(web_sessions.c.user_id == user_id))
    _recent.forget(store, user_id=user_id)


def list_users(store: Store) -> list[tuple[User, datetime, bool]]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(users).order_by(users.c.name))
        return [(User(row.id, row.name, row.role), row.created_at, bool(row.disabled)) for row in rows]


def authenticate(store: Store, name: str, password: str) -> User | None:
    with store.engine.connect() as connection:
        row = connection.execute(
            select(users.c.id, users.c.name, users.c.role, users.c.password_hash, users.c.disabled).where(
                users.c.name == name.strip()
            )
        ).first()
    try:
        _hasher.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled:
        return None
    return User(row.id, row.name, row.role)


def create_session(store: Store, user: User) -> str:
    token = secrets.token_urlsafe(32)
    now = _now()
    with store.engine.begin() as connection:
        connection.execute(delete(web_sessions).where(web_sessions.c.expires_at < now))
        connection.execute(
            web_sessions.insert().values(
                id=_token_digest(token), user_id=user.id, created_at=now, expires_at=now + SESSION_LIFETIME
            )
        )
    return token


class _RecentSessions:
    """Sessions found valid in the last ``SESSION_RECHECK`` seconds, by store and token digest."""

    def __init__(self) -> None:
        self._found: OrderedDict[tuple[str, str], tuple[float, datetime, User]] = OrderedDict()
        self._guard = threading.Lock()

    def get(self, store: Store, digest: str) -> User | None:
        with self._guard:
            found = self._found.get((_store_key(store), digest))
        if found is None or time.monotonic() - found[0] >= SESSION_RECHECK or found[1] < _now():
            return None
        return found[2]

    def keep(self, store: Store, digest: str, expires_at: datetime, user: User) -> None:
        with self._guard:
            self._found[(_store_key(store), digest)] = (time.monotonic(), expires_at, user)
            self._found.move_to_end((_store_key(store), digest))
            while len(self._found) > RECENT_SESSIONS:
                self._found.popitem(last=False)

    def forget(self, store: Store, digest: str | None = None, user_id: int | None = None) -> None:
        with self._guard:
            for key, (_, _, user) in list(self._found.items()):
                if key[0] == _store_key(store) and (key[1] == digest or user.id == user_id):
                    del self._found[key]


_recent = _RecentSessions()


def _store_key(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=True)


def session_user(store: Store, token: str) -> User | None:
    """The user of a session token, read from the store."""
    digest = _token_digest(token)
    with store.engine.connect() as connection:
        row = connection.execute(
            select(users.c.id, users.c.name, users.c.role, users.c.disabled, web_sessions.c.expires_at)
            .select_from(web_sessions.join(users, users.c.id == web_sessions.c.user_id))
            .where(web_sessions.c.id == digest)
        ).first()
    if row is None or row.disabled or row.expires_at < _now():
        return None
    user = User(row.id, row.name, row.role)
    _recent.keep(store, digest, row.expires_at, user)
    return user


def recent_session_user(store: Store, token: str) -> User | None:
    """The user of a session that :func:`session_user` found valid less than ``SESSION_RECHECK``
    seconds ago, else None (then ask :func:`session_user`).  Reads no database."""
    return _recent.get(store, _token_digest(token))


def end_session(store: Store, token: str) -> None:
    digest = _token_digest(token)
    _recent.forget(store, digest=digest)
    with store.engine.begin() as connection:
        connection.execute(delete(web_sessions).where(web_sessions.c.id == digest))


def config_dir() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "parvis"


def load_secret() -> bytes:
    """``$PARVIS_SECRET``, else the content of ``~/.config/parvis/secret`` (created, mode 0600, if missing)."""
    configured = os.environ.get(SECRET_ENV)
    if configured:
        return configured.encode()
    path = config_dir() / "secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


def csrf_token(secret: bytes, bound_to: str) -> str:
    """The CSRF token for a session token (or a pre-login nonce)."""
    return hmac.new(secret, b"csrf:" + bound_to.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: bytes, bound_to: str | None, token: str | None) -> bool:
    if not bound_to or not token:
        return False
    return hmac.compare_digest(csrf_token(secret, bound_to), token)
