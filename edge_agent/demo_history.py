"""Simulated history for the demo: the last days of its presses, each record labelled simulated.

A fresh `make demo` has an empty history, so the page's OEE trends, downtime Pareto and shift
reports would have nothing to show for days. Before the agent starts, `prefill` runs the demo's
simulated presses through the compute core over the last `days` (samples -> ComputeEngine ->
records, the replay path) and gives the history what it keeps, every body marked
`"simulated": true`. Nothing goes to the delivery buffer, MQTT or InfluxDB.

The history is filled only before what it already holds: from the start of the shift `days` ago
to its earliest record in that span, or to now. A second start adds nothing, and real records
are never overwritten. Each press is read every few seconds of simulated time and whenever its
state changes, so three days of three presses take seconds; the presses stand during breaks, as
their people do, and their bearings do not wear (the live demo shows that).
"""

from __future__ import annotations

__all__ = ["fill_history", "prefill", "simulate"]

import asyncio
import heapq
import logging
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime

from drivers.sim.press import PressModel
from drivers.sim.readings import PressReader, press_reader
from edge_agent.compute.calendar import Calendar, hour_start_ns
from edge_agent.compute.engine import ComputeEngine
from edge_agent.compute.state import StateTracker
from edge_agent.config_models import AgentFile
from edge_agent.history import HistoryStore
from edge_agent.history.rows import kept
from edge_agent.records import Record
from edge_agent.samples import SampleBatch

_log = logging.getLogger(__name__)

NS = 1_000_000_000
DAY_NS = 86400 * NS
MB = 1024 * 1024
_SAMPLE_S = 10.0  # between readings of a press whose state stays the same
_SEED = 101  # the first press's; the live demo's presses start from other seeds


async def fill_history(config: AgentFile, days: float = 3) -> int:
    """`prefill` the agent's history file (opened and closed here, before the agent opens it).
    A configuration the simulator cannot serve, or a file that cannot be written, costs only the
    simulated days: the demo goes on."""
    agent = config.agent
    history = HistoryStore(agent.history_path, agent.history_days, int(agent.history_max_mb * MB))
    try:
        await history.open()
        return await prefill(config, history, days)
    except (ValueError, sqlite3.Error, OSError) as exc:
        _log.warning("no simulated history (%s); the page fills as the demo runs", exc)
        return 0
    finally:
        await history.close()


async def prefill(
    config: AgentFile, history: HistoryStore, days: float = 3, now_ns: int | None = None
) -> int:
    """Fill the open `history` with `days` of simulated production up to now; how many records
    it was given (0 when it already holds that span)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    start_ns = _span_start(config, now_ns - round(days * DAY_NS))
    end_ns = min(now_ns, await _earliest_ns(config, history, start_ns, now_ns))
    if end_ns <= start_ns:
        _log.info("history %s: already holds the last %g days; none simulated", history.path, days)
        return 0
    began = time.monotonic()
    records = await asyncio.to_thread(simulate, config, start_ns, end_ns)
    history.extend(records)
    await history.flush()
    _log.info(
        "history %s: %.1f days of the demo's presses simulated in %.1f s (%d records), "
        "labelled simulated on the page",
        history.path,
        (end_ns - start_ns) / DAY_NS,
        time.monotonic() - began,
        len(records),
    )
    return len(records)


def simulate(config: AgentFile, start_ns: int, end_ns: int) -> list[Record]:
    """The records the history keeps of the configuration's presses over [start, end), each
    body marked simulated. Pure and deterministic: no clock, no I/O."""
    engine = ComputeEngine(_without_running_figures(config))
    presses = _presses(config, start_ns, end_ns)
    queue = [(press.model.t, name) for name, press in presses.items()]
    heapq.heapify(queue)  # the engine takes the presses' samples in time order
    records: list[Record] = []
    while queue:
        t_s, name = heapq.heappop(queue)
        press = presses[name]
        batch = SampleBatch(name, round(t_s * NS), press.read(press.model), {})
        records += [_simulated(r) for r in engine.ingest(batch) if kept(r)]
        if (next_s := press.next_sample_s(end_ns / NS)) is not None:
            heapq.heappush(queue, (next_s, name))
    return records + [_simulated(r) for r in engine.advance(end_ns) if kept(r)]


def _without_running_figures(config: AgentFile) -> AgentFile:
    """The history keeps closed windows only: the open ones' figures, due every `oee_interval_s`,
    would cost most of the time for nothing. Hourly is the least often a machine allows."""
    machines = {
        name: machine.model_copy(update={"oee_interval_s": 3600.0})
        for name, machine in config.machines.items()
    }
    return config.model_copy(update={"machines": machines})


@dataclass
class _Press:
    """A simulated press behind a device, its reader, and the breaks it stands in."""

    model: PressModel
    read: PressReader
    breaks: list[tuple[float, float]]  # (start, end) in seconds, oldest first

    def next_sample_s(self, end_s: float) -> float | None:
        """Advance to the next reading: a change of state, a break's start or end, or the
        regular interval; None at end_s."""
        model = self.model
        if model.t >= end_s:
            return None
        limit = min(model.t + _SAMPLE_S, end_s)
        if self.breaks and model.t < self.breaks[0][0]:
            limit = min(limit, self.breaks[0][0])
        model.advance_to_change(limit)
        self.stand_in_break()
        return model.t

    def stand_in_break(self) -> None:
        """A break going on now stops the press before it is read."""
        model = self.model
        while self.breaks and self.breaks[0][1] <= model.t:
            self.breaks.pop(0)
        if self.breaks and self.breaks[0][0] <= model.t:
            model.stand_until(self.breaks[0][1])


def _presses(config: AgentFile, start_ns: int, end_ns: int) -> dict[str, _Press]:
    """One press per device, standing during the breaks of the machines that read it."""
    breaks = _breaks_by_device(config, start_ns, end_ns)
    presses = {}
    for i, (name, device) in enumerate(config.devices.items()):
        model = PressModel(seed=_SEED + i, start_s=start_ns / NS)
        presses[name] = _Press(model, press_reader(name, device), breaks.get(name, []))
        presses[name].stand_in_break()
    return presses


def _breaks_by_device(
    config: AgentFile, start_ns: int, end_ns: int
) -> dict[str, list[tuple[float, float]]]:
    """Breaks and planned downtime in [start, end), in seconds, by the devices machines read."""
    found: dict[str, set[tuple[float, float]]] = {}
    for name, machine in config.machines.items():
        if machine.calendar is None:
            continue
        calendar = Calendar(config.calendars[machine.calendar])
        shifts = calendar.shifts_overlapping(start_ns, end_ns)
        spans = {(a / NS, b / NS) for shift in shifts for a, b, _ in shift.downtime}
        for device in StateTracker(name, machine).devices:
            found.setdefault(device, set()).update(spans)
    return {device: sorted(spans) for device, spans in found.items()}


def _span_start(config: AgentFile, t_ns: int) -> int:
    """The start of the earliest shift going on at t_ns, so the first window is a whole one; the
    hour's start where no shift is."""
    starts = [hour_start_ns(t_ns, None)]
    for name in {m.calendar for m in config.machines.values() if m.calendar is not None}:
        shifts = Calendar(config.calendars[name]).shifts_overlapping(t_ns, t_ns + 1)
        starts += [shift.start_ns for shift in shifts]
    return min(starts)


async def _earliest_ns(config: AgentFile, history: HistoryStore, from_ns: int, to_ns: int) -> int:
    """The start of the earliest record the history holds in [from, to); to_ns if none."""
    starts = [to_ns]
    for machine in config.machines:
        for window in ("shift", "hour"):
            starts += [_ns(w["start"]) for w in await history.oee(machine, window, from_ns, to_ns)]
        starts += [_ns(p["start"]) for p in await history.timeline(machine, from_ns, to_ns)]
    starts += [_ns(s["start"]) for s in await history.stops(None, from_ns, to_ns)]
    starts += [_ns(a["ts"]) for a in await history.alarms(from_ns, to_ns)]
    return min(starts)


def _ns(iso: str) -> int:
    moment = datetime.fromisoformat(iso)
    return int(moment.replace(microsecond=0).timestamp()) * NS + moment.microsecond * 1000


def _simulated(record: Record) -> Record:
    return Record(record.kind, record.key, record.ts_ns, {**record.body, "simulated": True})
