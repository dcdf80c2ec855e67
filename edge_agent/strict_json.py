"""JSON as the standard defines it: no NaN or Infinity, in either direction.

Python's json module reads and writes those tokens by default; no other JSON reader accepts
them, and a non-finite number in compute state or a command would poison what reads it later.
"""

from __future__ import annotations

__all__ = ["dumps", "loads"]

import json
from typing import Any


def _refuse(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def loads(text: str | bytes) -> Any:
    """Parse JSON; ValueError for NaN, Infinity or -Infinity, as for any other malformed text."""
    return json.loads(text, parse_constant=_refuse)


def dumps(value: Any) -> str:
    """Compact JSON; ValueError for a non-finite number instead of writing an invalid token."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
