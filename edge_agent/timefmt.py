"""Timestamps as people and JSON consumers read them."""

from __future__ import annotations

__all__ = ["iso_utc"]

from datetime import UTC, datetime

# The last second formatted: values come in time order, so most stamps fall in the same second
# and only their milliseconds are new (a publish response of thousands of values stamped each at
# its own time formats a handful of seconds, not thousands of dates).
_last: tuple[int, str] = (0, "1970-01-01T00:00:00.")


def iso_utc(ts_ns: int) -> str:
    """'2026-11-23T01:40:00.123Z': UTC, millisecond precision."""
    global _last
    second, ms = divmod(ts_ns // 1_000_000, 1000)
    last = _last
    if last[0] == second:
        return f"{last[1]}{ms:03d}Z"
    prefix = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
    _last = (second, prefix)
    return f"{prefix}{ms:03d}Z"
