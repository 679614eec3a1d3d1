"""Credentials of live accounts: from the environment or a 0600 secrets file, never the database or logs.

Order: ``PARVIS_MATRIX_TOKEN`` (an access token), then ``PARVIS_MATRIX_PASSWORD``, then the secrets
file ``$XDG_CONFIG_HOME/parvis/secrets.json`` (``~/.config/parvis/secrets.json``), which must not be
readable by anyone but its owner::

    {"matrix": {"@bot:example.org": {"access_token": "...", "device_id": "..."}}}
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN_VAR = "PARVIS_MATRIX_TOKEN"
PASSWORD_VAR = "PARVIS_MATRIX_PASSWORD"


class SecretsError(Exception):
    """Credentials are missing or kept unsafely."""


@dataclass(frozen=True)
class MatrixSecret:
    access_token: str | None = None
    password: str | None = None
    device_id: str | None = None

    def __repr__(self) -> str:  # never print a secret by accident
        return f"MatrixSecret(access_token={'***' if self.access_token else None}, device_id={self.device_id!r})"


def secrets_path() -> Path:
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config_home / "parvis" / "secrets.json"


def _read_file(path: Path) -> dict[str, Any]:
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsError(f"{path} is readable by others; run: chmod 600 {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as problem:
        raise SecretsError(f"{path} cannot be read: {problem.__class__.__name__}") from problem
    if not isinstance(data, dict):
        raise SecretsError(f"{path} does not hold a JSON object")
    return data


def matrix_secret(user_id: str, path: Path | None = None) -> MatrixSecret:
    """The credentials of ``user_id``: environment first, then the secrets file."""
    token = os.environ.get(TOKEN_VAR)
    if token:
        return MatrixSecret(access_token=token)
    password = os.environ.get(PASSWORD_VAR)
    if password:
        return MatrixSecret(password=password)
    path = path or secrets_path()
    entry = _read_file(path).get("matrix", {}).get(user_id)
    if isinstance(entry, dict) and isinstance(entry.get("access_token"), str):
        device = entry.get("device_id")
        return MatrixSecret(access_token=entry["access_token"], device_id=device if isinstance(device, str) else None)
    raise SecretsError(
        f"no credentials for {user_id}: set {TOKEN_VAR} or {PASSWORD_VAR} "
        "(parvis connect matrix keeps a password login's token in the secrets file)"
    )


def save_matrix_token(user_id: str, access_token: str, device_id: str | None, path: Path | None = None) -> Path:
    """Keep an access token in the secrets file (created 0600, replaced atomically)."""
    path = path or secrets_path()
    data = _read_file(path)
    data.setdefault("matrix", {})[user_id] = {"access_token": access_token, "device_id": device_id}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    os.replace(temporary, path)
    return path
