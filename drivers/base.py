"""What every driver offers the agent: connect, read, close. Nothing about OEE, MQTT or disks."""

from __future__ import annotations

__all__ = ["Changes", "Driver", "Reading"]

from dataclasses import dataclass, field
from typing import Protocol

from edge_agent.samples import Quality, Value


@dataclass(slots=True)
class Reading:
    """One poll of one device.

    `values` holds the tags that were read; `failed` the tags that were not, each with the
    short reason a person can act on (e.g. "holding 100-109: exception 2 illegal data address").
    """

    values: dict[str, Value] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    quality: dict[str, Quality] = field(default_factory=dict)  # values that are read but not good


@dataclass(slots=True)
class Changes:
    """Values a device reported by itself (an OPC UA publish response), each at its own time.

    `times[tag]` is the device's time stamp of `values[tag]` (ns); `quality` as in `Reading`.
    A tag appears at most once: a second change of it starts the next `Changes`.
    """

    values: dict[str, Value] = field(default_factory=dict)
    quality: dict[str, Quality] = field(default_factory=dict)
    times: dict[str, int] = field(default_factory=dict)


class Driver(Protocol):
    """A connection to one device. The agent's runner owns timing, backoff and quality.

    `read` raises `ConnectError` when the link itself failed (refused, timed out, garbled): the
    runner then marks every tag bad and backs off. A device that answers with an error for part of
    the data reports those tags in `Reading.failed` instead.

    A driver that also reports values by itself (OPC UA subscriptions) has a `listener` attribute,
    which the runner sets to take `Changes` through the same rules as polls, and `reread_all()`,
    which makes its next `read` return every tag (after changes were not taken, the buffer full).
    """

    @property
    def endpoint(self) -> str:
        """Where the device is, for messages: 'host:port' or a serial port."""
        ...

    @property
    def tag_names(self) -> list[str]: ...

    async def connect(self) -> None: ...

    async def read(self) -> Reading: ...

    async def close(self) -> None: ...
