"""Users and API tokens in one file beside the agent's data, readable by the agent only (0600).

Passwords are kept as Argon2id hashes (argon2-cffi; salted, slow on purpose). API tokens are long
random strings shown once when made; only their SHA-256 is kept, which is enough for a secret
with 256 bits of chance in it and costs nothing per request.
"""

from __future__ import annotations

__all__ = ["AccessError", "AccessStore"]

import hashlib
import hmac
import json
import re
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from edge_agent.access.roles import Identity, Role
from edge_agent.errors import EdgeAgentError
from edge_agent.private_files import private_dir, write_private

_NAME = re.compile(r"^[\w.@-]{1,64}$")  # letters of any script, digits, . _ @ -
_MIN_PASSWORD = 8
_MAX_PASSWORD = 256
_TOKEN_PREFIX = "eat_"  # recognisable in a leaked log or a secret scanner
_MAX_FILE_BYTES = 1 << 20


class AccessError(EdgeAgentError):
    """A user or token request that cannot be carried out; the message says why."""


class AccessStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._hasher = PasswordHasher()
        self._dummy = self._hasher.hash("not a password anyone has")
        self._lock = threading.Lock()  # the HTTP server verifies from its own threads
        self._data: dict[str, dict[str, dict[str, Any]]] = {"users": {}, "tokens": {}}
        self._mtime: float | None = None

    # ------------------------------------------------------------------ reading

    def reload(self) -> None:
        """Read the file again if it changed (users are managed while the agent runs)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            with self._lock:
                self._data, self._mtime = {"users": {}, "tokens": {}}, None
            return
        if stat.st_mtime == self._mtime:
            return
        if stat.st_size > _MAX_FILE_BYTES:
            raise AccessError(f"{self.path}: larger than {_MAX_FILE_BYTES >> 20} MiB")
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            users, tokens = dict(data["users"]), dict(data["tokens"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise AccessError(f"{self.path}: not a users file of this agent ({exc})") from None
        with self._lock:
            self._data, self._mtime = {"users": users, "tokens": tokens}, stat.st_mtime

    @property
    def empty(self) -> bool:
        return not self._data["users"] and not self._data["tokens"]

    def users(self) -> list[dict[str, str]]:
        return [{"name": n, "role": u["role"]} for n, u in sorted(self._data["users"].items())]

    def tokens(self) -> list[dict[str, str]]:
        return [
            {"name": n, "role": t["role"], "created": t["created"]}
            for n, t in sorted(self._data["tokens"].items())
        ]

    # ------------------------------------------------------------------ verifying

    def verify_password(self, name: str, password: str) -> Identity | None:
        """The user, if the password is theirs. As slow for an unknown name as for a known one."""
        with self._lock:
            user = self._data["users"].get(name)
        stored = user["hash"] if user else self._dummy
        try:
            self._hasher.verify(stored, password[:_MAX_PASSWORD])
        except (VerificationError, InvalidHashError):
            return None
        return Identity(name, Role(user["role"])) if user else None

    def token_identity(self, token: str) -> Identity | None:
        """`verify_token` on the file as it is now (another process may have changed it)."""
        try:
            self.reload()
        except AccessError:
            return None
        return self.verify_token(token)

    def verify_token(self, token: str) -> Identity | None:
        digest = _digest(token)
        with self._lock:
            found = [
                (name, t["role"])
                for name, t in self._data["tokens"].items()
                if hmac.compare_digest(t["sha256"], digest)
            ]
        return Identity(found[0][0], Role(found[0][1]), "token") if found else None

    # ------------------------------------------------------------------ changing

    def add_user(self, name: str, role: Role, password: str) -> None:
        self.reload()
        _check_name(name)
        if name in self._data["users"]:
            raise AccessError(f"user {name!r} exists; change the password with 'user passwd'")
        self._data["users"][name] = {"role": role.value, "hash": self._hash(password)}
        self._save()

    def set_password(self, name: str, password: str) -> None:
        self.reload()
        user = self._user(name)
        user["hash"] = self._hash(password)
        self._save()

    def set_role(self, name: str, role: Role) -> None:
        self.reload()
        self._user(name)["role"] = role.value
        self._save()

    def remove_user(self, name: str) -> None:
        self.reload()
        self._user(name)
        del self._data["users"][name]
        self._save()

    def create_token(self, name: str, role: Role) -> str:
        """A new token for a machine (a SCADA, a script); returned once, kept only as a hash."""
        self.reload()
        _check_name(name)
        if name in self._data["tokens"]:
            raise AccessError(f"token {name!r} exists; revoke it first")
        token = _TOKEN_PREFIX + secrets.token_urlsafe(32)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        self._data["tokens"][name] = {
            "role": role.value,
            "sha256": _digest(token),
            "created": created,
        }
        self._save()
        return token

    def revoke_token(self, name: str) -> None:
        self.reload()
        if name not in self._data["tokens"]:
            raise AccessError(f"no token named {name!r}")
        del self._data["tokens"][name]
        self._save()

    def _user(self, name: str) -> dict[str, Any]:
        user = self._data["users"].get(name)
        if user is None:
            raise AccessError(f"no user named {name!r}")
        return user

    def _hash(self, password: str) -> str:
        if not _MIN_PASSWORD <= len(password) <= _MAX_PASSWORD:
            raise AccessError(f"a password has {_MIN_PASSWORD} to {_MAX_PASSWORD} characters")
        return self._hasher.hash(password)

    def _save(self) -> None:
        """Write atomically, 0600 from its creation, in a folder made 0700 when made here."""
        private_dir(self.path.parent)
        text = json.dumps(self._data, ensure_ascii=False, indent=1, sort_keys=True)
        write_private(self.path, text.encode("utf-8"))
        self._mtime = self.path.stat().st_mtime


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise AccessError(
            f"{name!r} is not a usable name: 1 to 64 letters, digits, '.', '_', '@' or '-'"
        )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
