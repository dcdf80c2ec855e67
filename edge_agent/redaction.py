"""Text that leaves the process (log lines, the page, /health, MQTT link messages) made safe to show.

Three things happen to it: the configuration's secrets become `***` (a server that echoes the
Authorization header must not put the token on /health), credentials in URLs are dropped
(`http://user:pass@host` shows as `http://host`), and in log lines control characters are escaped,
so a device string or a user name cannot start a second, forged log line or colour a terminal.

The secrets are the values the configuration loader took from `${...}` into secret keys, every
`${file:...}`, every `SecretStr` field and every password in a URL of the loaded configuration:
`load_config` hands them to `remember_secrets`. They are kept for the process's life, as the log
handlers that use them are.
"""

from __future__ import annotations

__all__ = [
    "SafeLogFormatter",
    "one_line",
    "remember_secrets",
    "scrub",
    "scrub_tree",
    "secrets_in",
    "without_credentials",
]

import base64
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, SecretStr

# Shorter values are not scrubbed: replacing every "on" or "1" on the page would hide the page,
# not a secret (and a password that short is no secret).
_MIN_SECRET = 4
# scheme://userinfo@ ; the userinfo ends at the last @ before the path, query or fragment.
_URL_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#]*@")

_T = TypeVar("_T")
_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
_pattern: re.Pattern[str] | None = None  # one alternation of every secret, longest first

# C0 controls, DEL, C1 controls and the Unicode line and paragraph separators: a log line stays one
# line whatever a device, a server or a user put into it.
_ESCAPES = {code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)]}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})
_ESCAPES.update({0x2028: "\\u2028", 0x2029: "\\u2029"})


def remember_secrets(values: Iterable[str]) -> None:
    """Add values that must never be shown again (kept for the process's life)."""
    global _secrets, _pattern
    with _lock:
        merged = _secrets | {v for v in values if len(v) >= _MIN_SECRET}
        if merged == _secrets:
            return
        ordered = sorted(merged, key=len, reverse=True)  # a longer secret wins over its prefix
        _pattern = re.compile("|".join(re.escape(v) for v in ordered))
        _secrets = frozenset(merged)


def secrets_in(config: BaseModel) -> set[str]:
    """The secret values of a loaded configuration: `SecretStr` fields and passwords in URLs,
    the latter also as HTTP Basic credentials (what a server echoing the header would show)."""
    found: set[str] = set()
    for value in _strings(config):
        if isinstance(value, SecretStr):
            found.add(value.get_secret_value())
        elif "://" in value and "@" in value:
            try:
                parts = urlsplit(value)
                user, password = parts.username, parts.password
            except ValueError:
                continue
            if password:
                found.add(password)
                found.add(unquote(password))
                basic = f"{unquote(user or '')}:{unquote(password)}".encode()
                found.add(base64.b64encode(basic).decode("ascii"))
    return found


def scrub(text: str) -> str:
    """`text` with the known secrets as *** and without credentials in URLs."""
    pattern = _pattern  # read once: another thread may replace it
    if pattern is not None:
        text = pattern.sub("***", text)
    if "@" in text:
        text = _URL_USERINFO.sub(r"\1", text)
    return text


def scrub_tree(value: _T) -> _T:
    """A JSON-like value (dicts, lists, strings, numbers) with every string scrubbed."""
    if isinstance(value, str):
        return cast(_T, scrub(value))
    if isinstance(value, dict):
        return cast(_T, {k: scrub_tree(v) for k, v in value.items()})
    if isinstance(value, list):
        return cast(_T, [scrub_tree(v) for v in value])
    if isinstance(value, tuple):
        return cast(_T, tuple(scrub_tree(v) for v in value))
    return value


def without_credentials(url: str) -> str:
    """A URL or `user:pass@host` as it may be shown: without the part before the @."""
    if "://" in url:
        return _URL_USERINFO.sub(r"\1", url)
    return url.rpartition("@")[2]


def one_line(text: str) -> str:
    """`text` with control characters escaped (\\n, \\x1b, ...): it stays one line."""
    return text.translate(_ESCAPES)


class SafeLogFormatter(logging.Formatter):
    """A formatter whose every line (traceback included) is scrubbed and stays one line."""

    def format(self, record: logging.LogRecord) -> str:
        return one_line(scrub(super().format(record)))


def _strings(value: Any) -> Iterator[Any]:
    """Every str and SecretStr inside a pydantic model, its dicts and lists."""
    if isinstance(value, str | SecretStr):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _strings(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
