"""Where values meet compute, live: a poll's batch or a device's own report becomes a `values`
record and a step of the compute engine on the compute clock; what compute makes goes to the
buffer and the history. Also the way in for records made elsewhere (an operator's correction, an
alarm command, a system alarm) and the watch on the local clock, whose jumps compute must know of.
"""

from __future__ import annotations

__all__ = ["Ingest"]

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from drivers.base import Changes
from edge_agent.clock import ClockJump, ComputeClock
from edge_agent.commands import carry_out
from edge_agent.compute.engine import ComputeEngine
from edge_agent.config_models import AgentFile
from edge_agent.device_time import DeviceTime
from edge_agent.history import HistoryStore
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox
from edge_agent.records import Kind, Record
from edge_agent.samples import SampleBatch
from edge_agent.timefmt import iso_utc

_log = logging.getLogger(__name__)

_CLOCK_CHECK_S = 5.0  # how often the wall clock is compared with the monotonic one


class Ingest:
    def __init__(
        self,
        config: AgentFile,
        outbox: Outbox,
        history: HistoryStore,
        metrics: Metrics,
        *,
        on_changed: Callable[[], None],
        on_clock_back: Callable[[], None],
    ) -> None:
        """`on_changed`: the compute state changed (what falls due next may be sooner, and the
        state wants saving); `on_clock_back`: the local clock stepped back, so timers set by it
        should run now."""
        self.engine = ComputeEngine(config)  # replaced by a resumed one at the start
        self.clock = ComputeClock()
        self.device_time = DeviceTime(config.agent.max_clock_skew_s, metrics)
        self.latest_oee: dict[tuple[str, str], dict[str, Any]] = {}  # (machine, window) -> body
        self._outbox = outbox
        self._history = history
        self._on_changed = on_changed
        self._on_clock_back = on_clock_back

    def batch(self, batch: SampleBatch) -> None:
        """A poll's values, read at one instant."""
        body: dict[str, Any] = {"device": batch.device, "values": batch.values}
        if batch.quality:
            body["quality"] = {tag: q.value for tag, q in batch.quality.items()}
        self._outbox.append(Record(Kind.VALUES, batch.device, batch.ts_ns, body))
        self._compute(batch)
        self._on_changed()

    def listener(self, device: str) -> Callable[[Changes], None]:
        """Where a device's own reports (subscriptions) go."""
        return lambda changes: self.changes(device, changes)

    def changes(self, device: str, changes: Changes) -> None:
        """Values a device reported at times of its own (a publish response): one record, its
        time the newest of theirs; a value stamped otherwise carries its own under `times`."""
        stamp = self.device_time.stamp
        times = {tag: stamp(device, ts_ns) for tag, ts_ns in changes.times.items()}
        newest = max(times.values())
        body: dict[str, Any] = {"device": device, "values": changes.values}
        if changes.quality:
            body["quality"] = {tag: q.value for tag, q in changes.quality.items()}
        others = {tag: iso_utc(ts_ns) for tag, ts_ns in times.items() if ts_ns != newest}
        if others:
            body["times"] = others
        self._outbox.append(Record(Kind.VALUES, device, newest, body))
        if not self.engine.evaluates(device):
            # Nothing computed reads this device: its values are only kept for the local page.
            self.engine.tags.ingest(SampleBatch(device, newest, changes.values, changes.quality))
            self._on_changed()  # the tag table is part of the saved state
            return
        by_time: dict[int, list[str]] = {}
        for tag, ts_ns in times.items():
            by_time.setdefault(ts_ns, []).append(tag)
        for ts_ns in sorted(by_time):  # in the order the device says they happened
            tags = by_time[ts_ns]
            values = {tag: changes.values[tag] for tag in tags}
            quality = {tag: changes.quality[tag] for tag in tags if tag in changes.quality}
            self._compute(SampleBatch(device, ts_ns, values, quality))
        self._on_changed()

    def _compute(self, batch: SampleBatch) -> None:
        now = self.now()
        # Compute never runs ahead of its clock (a device stamping a little ahead, or the local
        # clock catching up after a step back).
        ts_ns = min(batch.ts_ns + self.clock.ahead_ns, now)
        if ts_ns != batch.ts_ns:
            batch = SampleBatch(batch.device, ts_ns, batch.values, batch.quality)
        self.emit(self.engine.ingest(batch))

    def advance(self) -> None:
        """Time moves on without samples: shifts, breaks and hours end, running figures fall due."""
        self.emit(self.engine.advance(self.now()))

    def due_in(self) -> float | None:
        """Seconds until compute next has something to do without a sample; None: nothing."""
        due = self.engine.next_event_ns()
        if due is None:
            return None
        return (due - time.time_ns() - self.clock.ahead_ns) / 1e9

    def now(self) -> int:
        """The time compute runs on now; a jump of the local clock is dealt with first."""
        now, jump = self.clock.now()
        if jump is not None and self.engine.clock_ns is not None:
            self._clock_jumped(jump)
        return now

    def _clock_jumped(self, jump: ClockJump) -> None:
        if jump.forward:
            _log.warning(
                "the local clock jumped forward by %.0f s: that time counts as unknown, and the "
                "OEE windows it spans are closed once, not one by one",
                jump.seconds,
            )
            self.emit(self.engine.skip(jump.to_ns))
        elif jump.restart:
            _log.error(
                "the local clock was set back by %.0f s: OEE windows start again from the new "
                "time (the time before in them counts as unknown)",
                jump.seconds,
            )
            self.emit(self.engine.restart_windows(jump.to_ns))
        else:
            _log.warning(
                "the local clock was set back by %.0f s: compute keeps its own time and lets "
                "the local clock catch up over about %.0f s",
                jump.seconds,
                jump.seconds / self.clock.catch_up_rate,
            )
        if not jump.forward:
            self._on_clock_back()

    async def watch_clock(self) -> None:
        """Look for jumps of the wall clock on the monotonic one, apart from polls and ticks.

        Those are timed by apscheduler on the wall clock: after a step back they would wait the
        step out (a minute back, a minute without a poll) and could not notice it themselves.
        """
        while True:
            await asyncio.sleep(_CLOCK_CHECK_S)
            self.now()

    def emit(self, records: list[Record]) -> None:
        """Records compute made: to the buffer, and what the history keeps to the history."""
        for record in records:
            if record.kind == Kind.OEE and not record.body["final"]:
                self.latest_oee[(record.key, record.body["window"])] = record.body
        self._outbox.extend(records)
        self._history.extend(records)  # keeps closed windows, stops and alarm transitions

    def publish(self, records: list[Record]) -> None:
        """Records made outside the poll and tick paths (an operator's corrections)."""
        self.emit(records)
        self._on_changed()

    def command(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Carry out an alarm command now (see edge_agent.commands); the reply says how it went."""
        records, reply = carry_out(self.engine, payload, self.now())
        self.emit(records)
        self._on_changed()  # a shelf or an out of service ends at a time of its own
        return reply

    def current_state(self, machine: str) -> dict[str, Any] | None:
        """A machine's state now: {state, reason, since}, or None before the first reading."""
        current = self.engine.machines[machine].current
        if current is None:
            return None
        return {
            "state": current.state,
            "reason": current.reason,
            "since": iso_utc(current.since_ns),
        }
