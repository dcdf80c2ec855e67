"""The values that travel from drivers to compute and sinks."""

from __future__ import annotations

__all__ = ["Quality", "SampleBatch", "Value"]

from dataclasses import dataclass
from enum import StrEnum

Value = bool | int | float | str | None


class Quality(StrEnum):
    """Per-value quality, as in OPC UA: a value is only as good as the read that produced it."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


@dataclass(frozen=True, slots=True)
class SampleBatch:
    """Every tag of one device read at one instant: how samples travel on the hot path.

    `values[tag]` is None for a tag without a usable value; `quality` lists only the tags that
    are not good, so a healthy poll carries one small dict and no per-value objects.
    """

    device: str
    ts_ns: int
    values: dict[str, Value]
    quality: dict[str, Quality]
