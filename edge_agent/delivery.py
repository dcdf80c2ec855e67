"""One delivery loop per sink: read after its cursor, deliver, advance the cursor on success."""

from __future__ import annotations

__all__ = ["SinkRunner"]

import asyncio
import logging

from edge_agent.backoff import Backoff
from edge_agent.errors import ConnectError
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox
from edge_agent.sinks import Sink

_log = logging.getLogger(__name__)


class SinkRunner:
    def __init__(self, sink: Sink, outbox: Outbox, metrics: Metrics, batch_records: int) -> None:
        self.sink = sink
        self.outbox = outbox
        self.metrics = metrics
        self.batch_records = batch_records
        self.cursor = 0
        self.failing: str | None = None
        self.backoff = Backoff(base_s=0.5, max_s=30.0)

    @property
    def pending(self) -> int:
        return max(0, self.outbox.last_seq - self.cursor)

    async def run(self) -> None:
        await self.sink.start()
        self.cursor = await self.outbox.cursor(self.sink.name)
        while True:
            await self.outbox.wait_beyond(self.cursor, 1.0)
            batch = await self.outbox.read(self.cursor, self.batch_records)
            if not batch:
                continue
            try:
                await self.sink.deliver(batch)
            except ConnectError as exc:
                await self._failed(str(exc))
                continue
            self.cursor = batch[-1].seq
            await self.outbox.ack(self.sink.name, self.cursor)
            self.metrics.delivered.labels(self.sink.name).inc(len(batch))
            self.metrics.sink_up.labels(self.sink.name).set(1)
            if self.failing is not None:
                _log.info("%s: delivering again to %s", self.sink.name, self.sink.endpoint)
                self.failing = None
            self.backoff.reset()

    async def _failed(self, error: str) -> None:
        self.metrics.sink_errors.labels(self.sink.name).inc()
        self.metrics.sink_up.labels(self.sink.name).set(0)
        delay = self.backoff.next_delay()
        if error != self.failing:
            _log.error(
                "%s: %s; %d records wait in the buffer; retrying in %.1f s",
                self.sink.name,
                error,
                self.pending,
                delay,
            )
            self.failing = error
        await asyncio.sleep(delay)
