"""Sinks deliver buffered records to a server; the runner around them owns cursors and retries."""

from __future__ import annotations

__all__ = ["Sink"]

from typing import Protocol

from edge_agent.outbox import StoredRecord


class Sink(Protocol):
    """One destination. `deliver` returns once the server confirmed every record, or raises."""

    name: str

    @property
    def connected(self) -> bool: ...

    @property
    def endpoint(self) -> str: ...

    async def start(self) -> None: ...

    async def deliver(self, records: list[StoredRecord]) -> None: ...

    async def close(self) -> None: ...
