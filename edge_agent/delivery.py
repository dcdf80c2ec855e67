"""One delivery loop per sink: read after its cursor, deliver, advance the cursor on success.

A batch the server refuses for its content (an HTTP 4xx such as 400, 413 or 422) is split in
halves until the refused records are alone; those are quarantined, the rest is delivered in order.
So one bad record costs a few extra requests, never a queue that stops for good.

A record of a kind this version does not know (a buffer written by a newer version) is not handed
to the sink: it is passed over, counted (edge_sink_unknown_kind_records) and logged once per kind.
"""

from __future__ import annotations

__all__ = ["SinkRunner"]

import asyncio
import logging
import time

from edge_agent.backoff import Backoff
from edge_agent.errors import ConnectError, RejectedError
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox
from edge_agent.records import StoredRecord, known_kind
from edge_agent.sinks import Sink
from edge_agent.sinks.base import ExplainsWaiting, ReportsConflict

_log = logging.getLogger(__name__)
_QUARANTINE_LOG_EVERY_S = 60.0  # at most one log line a minute about refused records, per sink


class SinkRunner:
    def __init__(
        self,
        sink: Sink,
        outbox: Outbox,
        metrics: Metrics,
        batch_records: int,
        flush_interval_s: float = 0.0,
    ) -> None:
        self.sink = sink
        self.outbox = outbox
        self.metrics = metrics
        self.batch_records = batch_records
        self.flush_interval_s = flush_interval_s
        self.cursor = 0
        self.failing: str | None = None
        self.backoff = Backoff(base_s=0.5, max_s=30.0)
        self.quarantined = 0
        self.last_refusal: str | None = None
        self._quarantine_logged_at = -_QUARANTINE_LOG_EVERY_S
        self._quarantined_since_log = 0
        self._unknown_logged: set[str] = set()
        for family in (
            metrics.delivered,
            metrics.sink_errors,
            metrics.dropped,
            metrics.quarantined,
            metrics.unknown_kinds,
            metrics.sink_conflicts,
        ):
            family.labels(sink.name)  # shown as 0 from the start, not absent until the first one

    @property
    def pending(self) -> int:
        return max(0, self.outbox.last_seq - self.cursor)

    @property
    def error(self) -> str | None:
        """Why this sink does not deliver now, if it does not: a failed request, or no link."""
        if self.failing is not None:
            return self.failing
        # MQTT waits for its broker inside one delivery (paho resends after reconnecting): no
        # failed request to report then, only a link that is down.
        if self.pending and not self.sink.connected:
            if isinstance(self.sink, ExplainsWaiting) and (why := self.sink.waiting):
                return why
            return f"not connected to {self.sink.endpoint}"
        return None

    @property
    def conflict(self) -> str | None:
        """Another client in this sink's place on its server (delivering or not), if any."""
        return self.sink.conflict if isinstance(self.sink, ReportsConflict) else None

    @property
    def oldest_pending_age_s(self) -> float:
        return self.outbox.oldest_pending_age_s(self.cursor)

    async def run(self) -> None:
        await self.sink.start()
        self.cursor = await self.outbox.cursor(self.sink.name)
        while True:
            await self.outbox.wait_beyond(self.cursor)  # no timer: a commit wakes it
            if self.flush_interval_s > 0 and not self.failing:
                # A batch gathers: one request for many polls, far less work per value.
                full = self.cursor + self.batch_records - 1
                await self.outbox.wait_beyond(full, self.flush_interval_s, gathering=True)
            batch = await self.outbox.read(self.cursor, self.batch_records)
            if not batch:
                # Committed after the cursor, yet none left to read: the limits took them all.
                await self._lost(self.outbox.last_seq)
                continue
            if batch[0].seq > self.cursor + 1:
                await self._lost(batch[0].seq - 1)
            batch = _up_to_gap(batch)
            try:
                await self._deliver(batch)
            except ConnectError as exc:
                await self._failed(str(exc))
                continue
            if self.failing is not None:
                _log.info("%s: delivering again to %s", self.sink.name, self.sink.endpoint)
                self.failing = None
            self.backoff.reset()

    async def _deliver(self, batch: list[StoredRecord]) -> None:
        """Deliver `batch` in order, quarantining refused records; ConnectError leaves the rest."""
        parts = [batch]
        while parts:
            part = parts.pop()
            known = [r for r in part if known_kind(r.kind) is not None]
            try:
                if known:
                    await self.sink.deliver(known)
            except RejectedError as exc:
                if len(part) == 1:
                    await self._quarantine(part[0], str(exc))
                    continue
                middle = len(part) // 2
                parts += [part[middle:], part[:middle]]  # the first half is delivered first
                continue
            await self._delivered(part)

    async def _lost(self, last_dropped: int) -> None:
        """The buffer's limits dropped records this sink had not delivered: count them, once."""
        self.metrics.dropped.labels(self.sink.name).inc(last_dropped - self.cursor)
        self.cursor = last_dropped
        # Acknowledged as passed, so a restart does not count them again.
        await self.outbox.ack(self.sink.name, last_dropped)

    async def _delivered(self, part: list[StoredRecord]) -> None:
        self.cursor = part[-1].seq
        await self.outbox.ack(self.sink.name, self.cursor)
        unknown = [r for r in part if known_kind(r.kind) is None]
        self.metrics.delivered.labels(self.sink.name).inc(len(part) - len(unknown))
        if unknown:
            self._passed_over(unknown)

    def _passed_over(self, unknown: list[StoredRecord]) -> None:
        self.metrics.unknown_kinds.labels(self.sink.name).inc(len(unknown))
        for record in unknown:
            if record.kind in self._unknown_logged:
                continue
            self._unknown_logged.add(record.kind)
            _log.warning(
                "%s: records of kind %r (seq %d and maybe more) are of a kind this version does "
                "not know (a buffer written by a newer version?): passed over, not sent; "
                "counted in edge_sink_unknown_kind_records",
                self.sink.name,
                record.kind[:40],
                record.seq,
            )

    async def _quarantine(self, record: StoredRecord, error: str) -> None:
        await self.outbox.quarantine(self.sink.name, record, error)
        self.cursor = record.seq
        self.quarantined += 1
        self.last_refusal = error
        self.metrics.quarantined.labels(self.sink.name).inc()
        self._quarantined_since_log += 1
        now = time.monotonic()
        if now - self._quarantine_logged_at >= _QUARANTINE_LOG_EVERY_S:
            _log.error(
                "%s refused %d record(s), kept aside in the buffer (list them with 'edge-agent "
                "buffer CONFIG'); the last: %s %s (seq %d): %s",
                self.sink.name,
                self._quarantined_since_log,
                record.kind,
                record.key,
                record.seq,
                error,
            )
            self._quarantine_logged_at = now
            self._quarantined_since_log = 0

    async def _failed(self, error: str) -> None:
        self.metrics.sink_errors.labels(self.sink.name).inc()
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


def _up_to_gap(batch: list[StoredRecord]) -> list[StoredRecord]:
    """The batch up to a gap in its sequence numbers, so the next read starts at the gap.

    Records the buffer could not write leave a gap anywhere, not only at its head: counted as
    lost by `_lost` when a read starts there.
    """
    if batch[-1].seq - batch[0].seq + 1 == len(batch):
        return batch
    for i in range(1, len(batch)):
        if batch[i].seq != batch[i - 1].seq + 1:
            return batch[:i]
    return batch
