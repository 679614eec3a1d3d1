"""A real Synapse homeserver on loopback, for the Matrix tests and benchmarks.

It runs from the installed ``matrix-synapse`` package with SQLite, listens on 127.0.0.1 only
(client API), trusts no key server, has presence off and generous rate limits, and registers users
through the admin API with the shared secret (HMAC), as ``register_new_matrix_user`` does.

Test modules share one homeserver per session by loading this module as a plugin
(``pytest_plugins = ["tests.synapse"]``), which provides the ``synapse`` fixture.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from sqlalchemy import text

from parvis.store import open_store
from tests.cli_run import PARVIS

T = TypeVar("T")

SHARED_SECRET = "parvis-test-shared-secret"
SERVER_NAME = "parvis.test"
_UNLIMITED = {"per_second": 10000, "burst_count": 10000}
_RATE_LIMITS = (
    "rc_message",
    "rc_registration",
    "rc_joins_per_room",
    "rc_room_creation",
    "rc_admin_redaction",
    "rc_3pid_validation",
    "rc_invites",
    "rc_reports",
)
_LOG_CONFIG = """\
version: 1
formatters:
  plain:
    format: '%(asctime)s %(name)s %(levelname)s %(message)s'
handlers:
  file:
    class: logging.FileHandler
    filename: {path}
    formatter: plain
root:
  level: WARNING
  handlers: [file]
disable_existing_loggers: false
"""


@dataclass(frozen=True)
class Account:
    user_id: str
    password: str
    access_token: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Synapse:
    """One homeserver in ``root``; ``start``/``stop`` may be called repeatedly (data is kept)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._configure()

    def _configure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        config_path = self.root / "homeserver.yaml"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "synapse.app.homeserver",
                "--server-name",
                SERVER_NAME,
                "--config-path",
                str(config_path),
                "--generate-config",
                "--report-stats=no",
                "--data-directory",
                str(self.root),
            ],
            check=True,
            capture_output=True,
            cwd=self.root,
        )
        config: dict[str, Any] = yaml.safe_load(config_path.read_text())
        log_config = self.root / "log.yaml"
        log_config.write_text(_LOG_CONFIG.format(path=self.root / "homeserver.log"))
        config.update(
            listeners=[
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            log_config=str(log_config),
            trusted_key_servers=[],
            suppress_key_server_warning=True,
            registration_shared_secret=SHARED_SECRET,
            presence={"enabled": False},
            enable_registration=False,
            rc_login={"address": _UNLIMITED, "account": _UNLIMITED, "failed_attempts": _UNLIMITED},
            rc_joins={"local": _UNLIMITED, "remote": _UNLIMITED},
            url_preview_enabled=False,
            **{name: _UNLIMITED for name in _RATE_LIMITS},
        )
        config["rc_invites"] = {"per_room": _UNLIMITED, "per_user": _UNLIMITED, "per_issuer": _UNLIMITED}
        config_path.write_text(yaml.safe_dump(config))
        self.config_path = config_path

    def start(self, timeout: float = 60) -> None:
        assert self.process is None, "already running"
        log = open(self.root / "stdout.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.process = subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "--config-path", str(self.config_path)],
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.root / "stdout.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"Synapse exited with {self.process.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/_matrix/client/versions", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Synapse did not answer within {timeout} s")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def register(self, localpart: str, *, admin: bool = False) -> Account:
        """A new user, through the shared-secret admin API."""
        password = hashlib.sha256(os.urandom(16)).hexdigest()
        nonce = self._request("GET", "/_synapse/admin/v1/register")["nonce"]
        mac = hmac.new(SHARED_SECRET.encode(), digestmod=hashlib.sha1)
        mac.update(
            b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), b"admin" if admin else b"notadmin"])
        )
        answer = self._request(
            "POST",
            "/_synapse/admin/v1/register",
            {"nonce": nonce, "username": localpart, "password": password, "admin": admin, "mac": mac.hexdigest()},
        )
        return Account(answer["user_id"], password, answer["access_token"])


class Member:
    """A person in the test community, talking to Synapse through matrix-nio (one event loop each)."""

    def __init__(self, server: Synapse, account: Account) -> None:
        from nio import AsyncClient

        self.account = account
        self.loop = asyncio.new_event_loop()
        self.client = AsyncClient(server.url, account.user_id)
        self.client.access_token = account.access_token
        self.client.user_id = account.user_id

    def _run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def _ok(self, response: Any) -> Any:
        from nio import ErrorResponse

        assert not isinstance(response, ErrorResponse), response
        return response

    def create_room(self, name: str, invite: list[str] = ()) -> str:  # type: ignore[assignment]
        response = self._ok(self._run(self.client.room_create(name=name, invite=list(invite))))
        return str(response.room_id)

    def join(self, room_id: str) -> None:
        self._ok(self._run(self.client.join(room_id)))

    def leave(self, room_id: str) -> None:
        self._ok(self._run(self.client.room_leave(room_id)))

    def send(self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message") -> str:
        response = self._ok(self._run(self.client.room_send(room_id, event_type, content)))
        return str(response.event_id)

    def say(self, room_id: str, text: str) -> str:
        return self.send(room_id, {"msgtype": "m.text", "body": text})

    def reply(self, room_id: str, event_id: str, text: str) -> str:
        return self.send(
            room_id, {"msgtype": "m.text", "body": text, "m.relates_to": {"m.in_reply_to": {"event_id": event_id}}}
        )

    def in_thread(self, room_id: str, root: str, text: str) -> str:
        relation = {
            "rel_type": "m.thread",
            "event_id": root,
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": root},
        }
        return self.send(room_id, {"msgtype": "m.text", "body": text, "m.relates_to": relation})

    def react(self, room_id: str, event_id: str, key: str) -> str:
        relation = {"rel_type": "m.annotation", "event_id": event_id, "key": key}
        return self.send(room_id, {"m.relates_to": relation}, "m.reaction")

    def event(self, room_id: str, event_id: str) -> dict[str, Any]:
        response = self._ok(self._run(self.client.room_get_event(room_id, event_id)))
        source: dict[str, Any] = response.event.source
        return source

    def close(self) -> None:
        self._run(self.client.close())
        self.loop.close()


def wait_for(probe: Callable[[], T | None], timeout: float = 30, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Parvis:
    """The real command in subprocesses, with the bot's token in the environment only."""

    def __init__(self, tmp_path: Path, token: str) -> None:
        self.db = f"sqlite:///{tmp_path / 'parvis.db'}"
        self.env = {
            **os.environ,
            "PARVIS_DB": self.db,
            "PARVIS_MATRIX_TOKEN": token,
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
        }
        self.logs = tmp_path
        self.process: subprocess.Popen[bytes] | None = None
        self.store = open_store(self.db)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*PARVIS, *args], capture_output=True, text=True, env=self.env, timeout=120)

    def listen(self, *args: str) -> None:
        assert self.process is None
        log = open(self.logs / "listen.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen([*PARVIS, "listen", *args], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def stop(self, signum: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        code = self.process.wait(timeout=30)
        self.process = None
        return code

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.store.engine.connect() as connection:
            return list(connection.execute(text(sql), params))

    def activity(self, source: str, event_id: str) -> Any:
        found = self.rows("SELECT * FROM activities WHERE id = :id", id=f"{source}:{event_id}")
        return found[0] if found else None

    def close(self) -> None:
        if self.process is not None:
            self.stop(signal.SIGKILL)
        self.store.close()


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    """One real Synapse for the whole test session (each test registers its own users and rooms)."""
    server = Synapse(tmp_path_factory.mktemp("synapse"))
    server.start()
    yield server
    server.stop()
