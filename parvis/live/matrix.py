"""Listening to a Matrix account's rooms in real time, and acting on them.

Every sync response goes through the single ingest path (``parvis.ingest.ingest`` over a
:class:`~parvis.connectors.matrix.MatrixBatch`); only once it is committed does the sync token
move on (table ``matrix_sync``).  A listener stopped at any moment, or a homeserver that went
away, resumes from the last committed token: a timeline the server reports as ``limited`` (more
events than one sync returns) is completed by paging ``/messages`` back to that token.  Writes are
upserts keyed by event id, so events seen twice (a crash between commit and token) are stored once.
One listening session is one import run, opened by the first sync that brings events and closed
when the listener stops; each committed batch updates it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    LoginResponse,
    RoomMessagesResponse,
    SyncResponse,
    WhoamiResponse,
)
from sqlalchemy import select, update

from parvis.connectors.matrix import PLATFORM, MatrixBatch, RoomInfo, StoredMessage, replaced_event
from parvis.ingest import ImportRun, ImportSummary, close_run, ingest, open_run, store_id
from parvis.live.secrets import MatrixSecret
from parvis.store import Store
from parvis.store.schema import activities, matrix_sync, raw_payloads
from parvis.workflows.moderation import Decided, Target, record, target_of

log = logging.getLogger(__name__)

SYNC_TIMEOUT_MS = 25_000
TIMELINE_LIMIT = 100
PAGE_LIMIT = 500
SYNC_FILTER: dict[str, Any] = {
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
    "room": {
        "timeline": {"limit": TIMELINE_LIMIT},
        "ephemeral": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
    },
}


class MatrixError(Exception):
    """The homeserver refused something (bad credentials, unknown room, missing power level)."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _check(response: object, what: str) -> None:
    if isinstance(response, ErrorResponse):
        raise MatrixError(f"{what}: {response.status_code or ''} {response.message}".strip())


@dataclass(frozen=True)
class MatrixAccount:
    """A community account Parvis listens with (no secret here)."""

    source_id: str
    homeserver: str
    user_id: str
    device_id: str | None = None


def new_client(account: MatrixAccount, secret: MatrixSecret | None = None) -> AsyncClient:
    config = AsyncClientConfig(
        max_timeout_retry_wait_time=5, store_sync_tokens=False, encryption_enabled=False, request_timeout=60
    )
    client = AsyncClient(account.homeserver, account.user_id, device_id=account.device_id or "", config=config)
    if secret is not None and secret.access_token:
        client.access_token = secret.access_token
        client.user_id = account.user_id
        if secret.device_id:
            client.device_id = secret.device_id
    return client


async def authenticate(account: MatrixAccount, secret: MatrixSecret) -> tuple[str, str | None]:
    """Check the credentials; with a password, log in.  Returns (access token, device id)."""
    client = new_client(account, secret)
    try:
        if secret.access_token:
            whoami = await client.whoami()
            _check(whoami, "the access token was refused")
            assert isinstance(whoami, WhoamiResponse)
            if whoami.user_id != account.user_id:
                raise MatrixError(f"the access token belongs to {whoami.user_id}, not {account.user_id}")
            return secret.access_token, whoami.device_id or secret.device_id
        login = await client.login(password=secret.password, device_name="Parvis")
        _check(login, "login failed")
        assert isinstance(login, LoginResponse)
        return login.access_token, login.device_id
    finally:
        await client.close()


# -- sync state ---------------------------------------------------------------------------------


def save_account(store: Store, account: MatrixAccount) -> None:
    """Register (or update) the account listened to for ``account.source_id``; keeps the sync token."""
    with store.engine.begin() as connection:
        found = connection.execute(
            select(matrix_sync.c.account).where(matrix_sync.c.source_id == account.source_id)
        ).first()
        values = {"homeserver": account.homeserver, "account": account.user_id, "device_id": account.device_id}
        if found is None:
            connection.execute(
                matrix_sync.insert().values(source_id=account.source_id, next_batch=None, updated_at=_now(), **values)
            )
        else:
            reset = {} if found.account == account.user_id else {"next_batch": None}
            connection.execute(
                update(matrix_sync)
                .where(matrix_sync.c.source_id == account.source_id)
                .values(updated_at=_now(), **values, **reset)
            )


def accounts(store: Store) -> list[MatrixAccount]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(matrix_sync).order_by(matrix_sync.c.source_id)).all()
    return [MatrixAccount(row.source_id, row.homeserver, row.account, row.device_id) for row in rows]


def sync_token(store: Store, source_id: str) -> str | None:
    with store.engine.connect() as connection:
        token = connection.execute(
            select(matrix_sync.c.next_batch).where(matrix_sync.c.source_id == source_id)
        ).scalar_one_or_none()
    return token


def _save_token(store: Store, source_id: str, token: str) -> None:
    with store.engine.begin() as connection:
        connection.execute(
            update(matrix_sync).where(matrix_sync.c.source_id == source_id).values(next_batch=token, updated_at=_now())
        )


# -- acting -------------------------------------------------------------------------------------


class MatrixActions:
    """What Parvis can do in rooms, as the community's account.  Each call returns the new event's id."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def _send(self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message") -> str:
        response = await self.client.room_send(room_id, event_type, content, tx_id=str(uuid.uuid4()))
        _check(response, f"cannot post in {room_id}")
        event_id: str = getattr(response, "event_id")  # noqa: B009 - RoomSendResponse
        return event_id

    async def post(self, room_id: str, text: str, *, notice: bool = False) -> str:
        return await self._send(room_id, {"msgtype": "m.notice" if notice else "m.text", "body": text})

    async def reply(self, room_id: str, event_id: str, text: str, *, thread_root: str | None = None) -> str:
        """A threaded reply to ``event_id`` (in its thread when it is in one: ``thread_root``)."""
        content = {
            "msgtype": "m.text",
            "body": text,
            "m.relates_to": {
                "rel_type": "m.thread",
                "event_id": thread_root or event_id,
                "is_falling_back": False,
                "m.in_reply_to": {"event_id": event_id},
            },
        }
        return await self._send(room_id, content)

    async def redact(self, room_id: str, event_id: str, reason: str | None = None) -> str:
        response = await self.client.room_redact(room_id, event_id, reason=reason, tx_id=str(uuid.uuid4()))
        _check(response, f"cannot redact {event_id}")
        redaction: str = getattr(response, "event_id")  # noqa: B009 - RoomRedactResponse
        return redaction

    async def kick(self, room_id: str, user_id: str, reason: str | None = None) -> None:
        _check(await self.client.room_kick(room_id, user_id, reason=reason), f"cannot kick {user_id}")

    async def ban(self, room_id: str, user_id: str, reason: str | None = None) -> None:
        _check(await self.client.room_ban(room_id, user_id, reason=reason), f"cannot ban {user_id}")


# -- listening ----------------------------------------------------------------------------------


@dataclass
class BatchReport:
    """What one sync brought: counts, and the store ids of its activities (in event order).

    ``activity_ids`` also holds the messages of earlier syncs whose text an edit of this one changed
    (they are listed in ``edited_earlier`` too).
    """

    summary: ImportSummary
    activity_ids: list[str]
    initial: bool
    events: int
    latest_event_ts: datetime | None = None
    edited_earlier: list[str] = field(default_factory=list)


AfterBatch = Callable[[BatchReport], Any]


@dataclass
class MatrixListener:
    """Syncs one account's joined rooms into the store, calling ``after_batch`` once each batch is committed.

    ``after_batch`` may be a coroutine function (moderation acts on the platform from there).
    """

    store: Store
    account: MatrixAccount
    secret: MatrixSecret
    after_batch: AfterBatch | None = None
    auto_join: bool = False
    client: AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = new_client(self.account, self.secret)
        self.actions = MatrixActions(self.client)
        self.import_run: ImportRun | None = None

    async def close(self) -> None:
        await self.client.close()

    async def run(self, *, once: bool = False, stop: asyncio.Event | None = None) -> None:
        """Sync until ``stop`` is set (``once``: one catch-up sync, then return).

        The session's import run ends ``done`` when it returns or is cancelled, ``failed`` on an error.
        """
        since = sync_token(self.store, self.account.source_id)
        status = "failed"
        try:
            while stop is None or not stop.is_set():
                since = await self.sync_once(since, timeout_ms=0 if once or since is None else SYNC_TIMEOUT_MS)
                if once:
                    break
            status = "done"
        except asyncio.CancelledError:
            status = "done"  # stopped from outside: every committed batch is in the run
            raise
        finally:
            self.end_session(status)

    def end_session(self, status: str = "done") -> None:
        """Close the session's import run (the next batch opens a new one)."""
        if self.import_run is not None:
            close_run(self.store, self.import_run, status)
            self.import_run = None

    async def sync_once(self, since: str | None, *, timeout_ms: int = 0) -> str:
        response = await self.client.sync(timeout=timeout_ms, sync_filter=SYNC_FILTER, since=since, full_state=False)
        if isinstance(response, ErrorResponse):
            if response.status_code in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN", "M_FORBIDDEN"):
                raise MatrixError(f"the homeserver refused the account: {response.message}")
            log.warning("sync failed: %s %s; retrying", response.status_code, response.message)
            await asyncio.sleep(2)
            return since or ""
        assert isinstance(response, SyncResponse)
        events: list[tuple[str, Mapping[str, Any]]] = []
        for room_id, joined in response.rooms.join.items():
            timeline = [event.source for event in joined.timeline.events]
            if joined.timeline.limited or since is None:
                timeline = await self._earlier(room_id, joined.timeline.prev_batch, since) + timeline
            events.extend((room_id, event) for event in timeline)
        for room_id, left in response.rooms.leave.items():
            events.extend((room_id, event.source) for event in left.timeline.events)
        if self.auto_join:
            for room_id in response.rooms.invite:
                _check(await self.client.join(room_id), f"cannot join {room_id}")
        if events:
            self._ingest(events, initial=since is None)
            report = self._last_report
            if self.after_batch is not None:
                outcome = self.after_batch(report)
                if asyncio.iscoroutine(outcome):
                    await outcome
        token: str = response.next_batch
        _save_token(self.store, self.account.source_id, token)
        return token

    async def _earlier(self, room_id: str, start: str | None, until: str | None) -> list[Mapping[str, Any]]:
        """Events before ``start`` back to the sync token ``until`` (or the room's creation), oldest first."""
        pages: list[list[Mapping[str, Any]]] = []
        token = start
        while token:
            response = await self.client.room_messages(room_id, start=token, end=until, limit=PAGE_LIMIT)
            _check(response, f"cannot read the history of {room_id}")
            assert isinstance(response, RoomMessagesResponse)
            chunk = [event.source for event in response.chunk]
            if not chunk:
                break
            pages.append(chunk)
            if response.end == token:
                break
            token = response.end
        return [event for page in reversed(pages) for event in reversed(page)]

    def rooms(self) -> list[RoomInfo]:
        found = []
        for room_id, room in self.client.rooms.items():
            names = {user_id: user.display_name for user_id, user in room.users.items() if user.display_name}
            name = room.name or room.canonical_alias or (room.display_name if room.is_named else None)
            found.append(RoomInfo(room_id, name, room.canonical_alias, room.topic, names))
        return found

    def _ingest(self, events: Sequence[tuple[str, Mapping[str, Any]]], *, initial: bool) -> None:
        source = self.account.source_id
        if self.import_run is None:
            self.import_run = open_run(self.store, source, PLATFORM)
        in_batch = {event.get("event_id") for _, event in events}
        targets = {target for _, event in events if (target := replaced_event(event)) and target not in in_batch}
        batch = MatrixBatch(source, self.rooms(), events, _stored_messages(self.store, source, targets))
        summary = ingest(self.store, batch, source, run=self.import_run)
        edited = set(batch.edited)
        ids = []
        for _, event in events:
            if isinstance(event.get("event_id"), str):
                ids.append(store_id(source, event["event_id"]))
                target = replaced_event(event)
                if target in edited:
                    ids.append(store_id(source, target))
        stored = _stored(self.store, ids)
        ordered = list(dict.fromkeys(activity_id for activity_id in ids if activity_id in stored))
        stamps = [event.get("origin_server_ts") for _, event in events]
        latest = max((stamp for stamp in stamps if isinstance(stamp, int)), default=None)
        self._last_report = BatchReport(
            summary,
            ordered,
            initial,
            len(events),
            datetime.fromtimestamp(latest / 1000, UTC) if latest is not None else None,
            [store_id(source, target) for target in dict.fromkeys(batch.edited) if target in targets],
        )


def _stored_messages(store: Store, source_id: str, event_ids: set[str]) -> dict[str, StoredMessage]:
    """The stored messages among ``event_ids``: their original events (from the raw payloads) and rooms."""
    found: dict[str, StoredMessage] = {}
    wanted = sorted(store_id(source_id, event_id) for event_id in event_ids)
    prefix = len(source_id) + 1
    with store.engine.connect() as connection:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = connection.execute(
                select(activities.c.native_id, activities.c.channel_id, activities.c.edited_at, raw_payloads.c.payload)
                .join(raw_payloads, raw_payloads.c.item_id == "activity:" + activities.c.id)
                .where(activities.c.id.in_(chunk), activities.c.channel_id.is_not(None))
            )
            for row in rows:
                try:
                    event = json.loads(zlib.decompress(row.payload))
                except (zlib.error, ValueError):
                    log.warning("the stored event %s cannot be read back; its edits keep their own text", row.native_id)
                    continue
                if isinstance(event, dict):
                    edited_at = row.edited_at.replace(tzinfo=UTC) if row.edited_at is not None else None
                    found[row.native_id] = StoredMessage(event, row.channel_id[prefix:], edited_at)
    return found


def _stored(store: Store, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    with store.engine.connect() as connection:
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            found.update(connection.execute(select(activities.c.id).where(activities.c.id.in_(chunk))).scalars())
    return found


def default_source(homeserver: str, user_id: str) -> str:
    server = user_id.split(":", 1)[1] if ":" in user_id else homeserver
    return f"{PLATFORM}-{server}".lower().replace(":", "-")


class MatrixPlatform:
    """Moderation actions on Matrix (see parvis.workflows.moderation.Platform): hide = redact."""

    name = PLATFORM

    def __init__(self, actions: MatrixActions, actor: str, notify_room: str | None = None) -> None:
        self.actions = actions
        self.actor = actor
        self.notify_room = notify_room

    async def hide(self, target: Target, reason: str) -> None:
        if target.channel_native_id is None:
            raise MatrixError(f"{target.activity_id} has no room")
        await self.actions.redact(target.channel_native_id, target.native_id, reason[:500])

    async def reply(self, target: Target, text: str) -> None:
        if target.channel_native_id is None:
            raise MatrixError(f"{target.activity_id} has no room")
        await self.actions.reply(target.channel_native_id, target.native_id, text, thread_root=target.thread_root)

    async def notify(self, text: str) -> bool:
        if self.notify_room is None:
            return False
        await self.actions.post(self.notify_room, text, notice=True)
        return True


def account_for(store: Store, source_id: str) -> MatrixAccount | None:
    """The connected Matrix account of ``source_id``, if that source is a connected Matrix account."""
    return next((account for account in accounts(store) if account.source_id == source_id), None)


async def remove_on_platform(
    store: Store, account: MatrixAccount, secret: MatrixSecret, decided: Decided, moderator: str, reason: str
) -> str:
    """Redact the message of a queue item a person decided to remove; logged in the audit log.

    Returns the redaction's event id.  A refusal is logged too (with the error), then raised.
    """
    found = target_of(store, decided.activity_id)
    if found is None:
        raise MatrixError(f"{decided.activity_id} is not in the store")
    target = found[2]
    details: dict[str, Any] = {"queue_item": decided.item_id, "actor": account.user_id}
    client = new_client(account, secret)
    try:
        if target.channel_native_id is None:
            raise MatrixError(f"{target.activity_id} has no room")
        redaction = await MatrixActions(client).redact(
            target.channel_native_id, target.native_id, (reason or f"removed by {moderator}")[:500]
        )
        details["redaction"] = redaction
        return redaction
    except MatrixError as problem:
        details["error"] = str(problem)
        raise
    except Exception as problem:  # the homeserver unreachable, a timeout: one line for the user
        details["error"] = f"{problem.__class__.__name__}: {problem}"
        raise MatrixError(f"cannot reach {account.homeserver}: {details['error']}") from problem
    finally:
        await client.close()
        record(
            store,
            f"{moderator} as {account.user_id}",
            "hide",
            reason,
            activity_id=decided.activity_id,
            rule=decided.rule,
            details=details,
        )
