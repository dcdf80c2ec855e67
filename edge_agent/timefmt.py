"""Timestamps as people and JSON consumers read them."""

from __future__ import annotations

__all__ = ["iso_utc"]

from datetime import UTC, datetime


def iso_utc(ts_ns: int) -> str:
    """'2026-11-23T01:40:00.123Z': UTC, millisecond precision."""
    dt = datetime.fromtimestamp(ts_ns // 1_000_000 / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
