"""OEE on the ISO 22400-2 time model, per shift and per clock hour, for one machine.

Time is split into periods of one machine state. A period is classified when it ends: a stop
(idle or down) shorter than `micro_stop_s` counts as run time (a small-stop loss), anything else as
its state. Each period's time is added to every window it overlaps, but only inside the window's
planned busy time (the shift minus breaks and planned downtime; the whole hour without a
calendar). A window is final once its end has passed and the period straddling the end is
classified, which is at most `micro_stop_s` later.

    availability = run / planned busy      run includes micro-stops
    performance  = ideal cycle x total / run   (reported above 1 and flagged, never clamped)
    quality      = good / total
    OEE          = ideal cycle x good / planned busy  (= A x P x Q)
"""

from __future__ import annotations

__all__ = ["UNCLASSIFIED", "OeeTracker", "Period", "Window", "window_busy"]

from dataclasses import asdict, dataclass, field
from typing import Any

from edge_agent.compute.calendar import NS, Calendar, hour_start_ns
from edge_agent.config_models import MachineConfig
from edge_agent.records import Kind, Record
from edge_agent.timefmt import iso_utc

STOPS = ("idle", "down")
HOUR = 3600 * NS
UNCLASSIFIED = "unclassified"  # the losses of stops nobody has given a reason yet


@dataclass
class Period:
    state: str
    reason: str | None  # a configured reason's text; None: unclassified (or running)
    category: str | None  # the reason's category (breakdown, setup, ...), for down periods
    start_ns: int
    reason_code: str | None = None  # what the PLC gave, even when no reason is configured for it


@dataclass
class Window:
    kind: str  # "shift" or "hour"
    shift: str | None
    start_ns: int
    end_ns: int
    busy: list[tuple[int, int]]
    run_s: float = 0.0
    micro_s: float = 0.0
    down_s: float = 0.0
    setup_s: float = 0.0
    idle_s: float = 0.0
    unknown_s: float = 0.0
    planned_s: float = 0.0
    total: int = 0
    good: int = 0
    reject: int = 0
    startup_rejects: int = 0
    failures: int = 0
    micro_stops: int = 0
    reasons: dict[str, float] = field(default_factory=dict)
    manual_rejects: int = 0  # parts counted good by the PLC that an operator found bad

    @property
    def key(self) -> tuple[str, int]:
        return self.kind, self.start_ns

    def busy_seconds(self, start_ns: int, end_ns: int) -> float:
        total = 0
        for a, b in self.busy:
            lo, hi = max(a, start_ns), min(b, end_ns)
            if hi > lo:
                total += hi - lo
        return total / NS

    def contains(self, t_ns: int) -> bool:
        return self.start_ns <= t_ns < self.end_ns


class OeeTracker:
    """Windows, periods and counters of one machine; driven by the engine in time order."""

    def __init__(self, name: str, config: MachineConfig, calendar: Calendar | None) -> None:
        self.name = name
        self.config = config
        self.calendar = calendar
        self.zone = calendar.zone if calendar is not None else None
        self.micro_ns = int(config.micro_stop_s * NS)
        self.windows: list[Window] = []  # open, or ended and waiting for the straddling period
        self.period: Period | None = None
        self.clock_ns: int | None = None
        self.next_running_ns: int | None = None
        self.counters: dict[str, float] = {}  # role (total/good/reject) -> last raw value
        self.last_stop_end_ns: int | None = None
        # A counter reading stamped exactly at a window's end counts parts made before that
        # instant: windows ending at the instant being ingested stay open until time moves on.
        self.holding_ns: int | None = None
        self._hour_seen: int | None = None
        self._boundary_ns: int | None = None
        self._boundary_from = 0

    # ------------------------------------------------------------------ time and windows

    def next_event_ns(self) -> int | None:
        """The next instant at which something happens without a new sample."""
        assert self.clock_ns is not None
        t = self.clock_ns
        candidates = [self._next_boundary(t)]
        candidates += [w.end_ns for w in self.windows if w.end_ns > t]
        if self.next_running_ns is not None:
            candidates.append(self.next_running_ns)
        p = self.period
        if p is not None and p.state in STOPS and any(w.end_ns <= t for w in self.windows):
            candidates.append(p.start_ns + self.micro_ns)
        future = [c for c in candidates if c > t]
        return min(future) if future else None

    def _next_boundary(self, t: int) -> int:
        """The next hour or calendar boundary after t: computed once per boundary, not per sample."""
        if self._boundary_ns is None or self._boundary_ns <= t or t < self._boundary_from:
            boundary = hour_start_ns(t, self.zone) + 3600 * NS
            if self.calendar is not None:
                later = self.calendar.boundaries(t, t + 2 * 86400 * NS)
                if later:
                    boundary = min(boundary, later[0])
            self._boundary_ns, self._boundary_from = boundary, t
        return self._boundary_ns

    def step_to(self, t_ns: int) -> list[Record]:
        """Move the clock to t_ns (an event instant or a sample time); final and running records."""
        if self.clock_ns is None:
            self._start(t_ns)
        crossed = self._boundary_ns is None or t_ns >= self._boundary_ns
        self.clock_ns = t_ns
        if crossed:  # windows open only at hour and calendar boundaries
            self._open_windows(t_ns)
            self._next_boundary(t_ns)
        records = self._finalize_ready(t_ns)
        if self.next_running_ns is not None and t_ns >= self.next_running_ns:
            records += [self._record(w, t_ns, final=False) for w in self._running_windows()]
            interval = int(self.config.oee_interval_s * NS)
            self.next_running_ns = t_ns - t_ns % interval + interval
        return records

    def skip_to(self, t_ns: int) -> list[Record]:
        """Jump the clock to t_ns without walking the windows in between (see ComputeEngine.skip).

        Open windows close with the current period (unknown, after the engine marked the gap)
        up to their end; new windows open at t_ns and count the same period from their start.
        """
        if self.clock_ns is None or t_ns <= self.clock_ns:
            return self.step_to(t_ns)
        self.clock_ns = t_ns
        records = self._finalize_ready(t_ns)
        self._boundary_ns = None
        self._open_windows(t_ns)
        self._next_boundary(t_ns)
        interval = int(self.config.oee_interval_s * NS)
        self.next_running_ns = t_ns - t_ns % interval + interval
        return records

    def _start(self, t_ns: int) -> None:
        """First instant seen: time before it inside the current windows had no data."""
        self.clock_ns = t_ns
        self._open_windows(t_ns)
        starts = [w.start_ns for w in self.windows]
        begin = min(starts) if starts else t_ns
        self.period = Period("unknown", None, None, begin)
        interval = int(self.config.oee_interval_s * NS)
        self.next_running_ns = t_ns - t_ns % interval + interval

    def _open_windows(self, t_ns: int) -> None:
        have = {w.key for w in self.windows}
        hour = hour_start_ns(t_ns, self.zone)
        if ("hour", hour) not in have and hour != self._hour_seen:
            self._hour_seen = hour  # checked once per hour, not once per sample
            window = self._hour_window(hour)
            if window.busy:  # an hour outside every shift has nothing to measure
                self.windows.append(window)
        if self.calendar is not None:
            for shift in self.calendar.shifts_overlapping(t_ns, t_ns + 1):
                if ("shift", shift.start_ns) not in have:
                    self.windows.append(
                        Window("shift", shift.name, shift.start_ns, shift.end_ns, shift.busy())
                    )

    def _hour_window(self, start_ns: int) -> Window:
        names = []
        if self.calendar is not None:
            names = [s.name for s in self.calendar.shifts_overlapping(start_ns, start_ns + HOUR)]
        busy = window_busy(self.calendar, "hour", start_ns)
        return Window("hour", names[0] if names else None, start_ns, start_ns + HOUR, busy)

    def _running_windows(self) -> list[Window]:
        """The open shift and the open hour: both are charted while they run (a plant's hourly
        board fills bar by bar), not only once they close."""
        t = self.clock_ns
        return [w for w in self.windows if t is not None and w.contains(t)]

    # ------------------------------------------------------------------ periods

    def change_state(
        self,
        t_ns: int,
        state: str,
        reason: str | None,
        category: str | None,
        reason_code: str | None = None,
    ) -> list[Record]:
        """The machine's state changed at t_ns: close the period before it.

        `reason` is the text of a configured reason (None for a stop the PLC gave no known reason
        for: unclassified, until an operator classifies it).
        """
        records: list[Record] = []
        p = self.period
        assert p is not None, "change_state before the first step_to"
        if t_ns == p.start_ns:  # two changes at one instant: the first lasted no time at all
            self.period = Period(state, reason, category, t_ns, reason_code)
            return self._finalize_ready(t_ns)
        cls = self._classify(p, t_ns)
        for w in self.windows:
            self._add(w, p, cls, p.start_ns, t_ns)
        if p.state in STOPS and cls != "micro":
            records.append(self._downtime_record(p, t_ns))
            if state == "running":
                self.last_stop_end_ns = t_ns
        self.period = Period(state, reason, category, t_ns, reason_code)
        return records + self._finalize_ready(t_ns)

    def _classify(self, p: Period, end_ns: int) -> str:
        if p.state in STOPS and end_ns - p.start_ns < self.micro_ns:
            return "micro"
        return p.state

    def _add(self, w: Window, p: Period, cls: str, start_ns: int, end_ns: int) -> None:
        seconds = w.busy_seconds(start_ns, end_ns)
        starts_here = w.contains(p.start_ns)
        if cls == "micro" and starts_here:
            w.micro_stops += 1
        if cls == "down" and p.category in (None, "breakdown") and starts_here:
            w.failures += 1  # MTBF and MTTR are about breakdowns, not setups or waiting
        if seconds <= 0:
            return
        if cls == "running":
            w.run_s += seconds
        elif cls == "micro":
            w.run_s += seconds
            w.micro_s += seconds
        elif cls == "down":
            w.down_s += seconds
            if p.category == "setup":
                w.setup_s += seconds
            reason = p.reason or UNCLASSIFIED
            w.reasons[reason] = w.reasons.get(reason, 0.0) + seconds
        elif cls == "idle":
            w.idle_s += seconds
            # An idle machine that should produce is a loss too: without a reason, unclassified.
            reason = p.reason or UNCLASSIFIED
            w.reasons[reason] = w.reasons.get(reason, 0.0) + seconds
        elif cls == "unknown":
            w.unknown_s += seconds
        elif cls == "planned":
            w.planned_s += seconds

    def _finalize_ready(self, t_ns: int) -> list[Record]:
        records = []
        p = self.period
        for w in [w for w in self.windows if w.end_ns <= t_ns and w.end_ns != self.holding_ns]:
            if p is not None and p.start_ns < w.end_ns:
                if p.state in STOPS and t_ns - p.start_ns < self.micro_ns:
                    continue  # not yet known whether the stop across the end is a micro-stop
                self._add(w, p, self._classify_open(p, t_ns), p.start_ns, w.end_ns)
            self.windows.remove(w)
            records.append(self._record(w, max(t_ns, w.end_ns), final=True))
        return records

    def _classify_open(self, p: Period, now_ns: int) -> str:
        """An open period's class as far as is known at now_ns (micro while still short)."""
        return "micro" if p.state in STOPS and now_ns - p.start_ns < self.micro_ns else p.state

    # ------------------------------------------------------------------ counters

    def count(self, t_ns: int, role: str, value: float) -> None:
        """A counter reading: its delta since the last one goes to the windows (start, end] holding t_ns.

        The parts were made before the reading, so a reading stamped exactly at a window's end
        belongs to the window that ends, not to the one that starts.
        """
        last = self.counters.get(role)
        self.counters[role] = value
        if last is None:
            return
        delta = value - last
        if delta < 0:
            modulus = self.config.counters.modulus if self.config.counters else None
            delta = delta + modulus if modulus else value  # a wrap, or a reset to zero
        delta = round(delta)
        if delta == 0:
            return
        startup = (
            self.last_stop_end_ns is not None
            and t_ns - self.last_stop_end_ns < self.config.startup_s * NS
        )
        for w in self.windows:
            if not w.start_ns < t_ns <= w.end_ns:
                continue
            if role == "total":
                w.total += delta
            elif role == "good":
                w.good += delta
            else:
                w.reject += delta
                if startup:
                    w.startup_rejects += delta

    # ------------------------------------------------------------------ records

    def _downtime_record(self, p: Period, end_ns: int) -> Record:
        body = {
            "machine": self.name,
            "state": p.state,
            "reason": p.reason,
            "reason_code": p.reason_code,
            "category": p.category if p.state == "down" else None,
            "classified_by": "plc" if p.reason is not None else None,
            "start": iso_utc(p.start_ns),
            "end": iso_utc(end_ns),
            "duration_s": round((end_ns - p.start_ns) / NS, 3),
        }
        return Record(Kind.DOWNTIME, self.name, end_ns, body)

    def _record(self, w: Window, now_ns: int, *, final: bool) -> Record:
        figures = self._figures(w, now_ns, final)
        body: dict[str, Any] = {
            "machine": self.name,
            "window": w.kind,
            "shift": w.shift,
            "start": iso_utc(w.start_ns),
            "end": iso_utc(w.end_ns),
            "final": final,
            **figures,
        }
        return Record(Kind.OEE, self.name, now_ns, body)

    def _figures(self, w: Window, now_ns: int, final: bool) -> dict[str, Any]:
        acc = Window(
            **{k: v for k, v in asdict(w).items()}
        )  # a copy: running figures add the open period
        p = self.period
        if not final and p is not None:
            self._add(acc, p, self._classify_open(p, now_ns), p.start_ns, min(now_ns, w.end_ns))
        elapsed_end = w.end_ns if final else min(now_ns, w.end_ns)
        busy = acc.busy_seconds(w.start_ns, elapsed_end) - acc.planned_s
        good = acc.good if self._counts_good() else acc.total - acc.reject
        good = max(0, good - acc.manual_rejects)
        reject = acc.total - good
        ideal = self.config.ideal_cycle_time_s
        availability = acc.run_s / busy if busy > 0 else None
        # Without a reading of the total counter the parts made are unknown, not zero.
        counted = "total" in self.counters
        performance = ideal * acc.total / acc.run_s if acc.run_s > 0 and counted else None
        quality = good / acc.total if acc.total > 0 else None
        oee = ideal * good / busy if busy > 0 else None
        breakdown_s = acc.down_s - acc.setup_s
        startup = min(acc.startup_rejects, reject)
        figures: dict[str, Any] = {
            "planned_busy_time_s": _r(busy),
            "run_time_s": _r(acc.run_s),
            "down_time_s": _r(acc.down_s),
            "idle_time_s": _r(acc.idle_s),
            "unknown_time_s": _r(acc.unknown_s),
            "planned_stop_time_s": _r(acc.planned_s),
            "availability": _ratio(availability),
            "performance": _ratio(performance),
            "quality": _ratio(quality),
            "oee": _ratio(oee),
            "total_count": acc.total,
            "good_count": good,
            "reject_count": reject,
            "failures": acc.failures,
            "mtbf_s": _r(acc.run_s / acc.failures) if acc.failures else None,
            "mttr_s": _r(breakdown_s / acc.failures) if acc.failures else None,
            "micro_stops": acc.micro_stops,
            "ideal_cycle_time_s": ideal,
            "losses_by_reason_s": {k: _r(v) for k, v in sorted(acc.reasons.items())},
            "six_big_losses_s": {
                "breakdowns": _r(breakdown_s),
                "setup_adjustments": _r(acc.setup_s),
                "small_stops": _r(acc.micro_s),
                "reduced_speed": _r(acc.run_s - acc.micro_s - ideal * acc.total),
                "startup_rejects": _r(ideal * startup),
                "production_rejects": _r(ideal * (reject - startup)),
            },
        }
        if performance is not None and performance > 1.0:
            # ISO 22400 allows it; it means the ideal cycle time is set too slow.
            figures["warning"] = (
                "performance above 1: ideal_cycle_time_s is longer than the real cycle"
            )
        return figures

    def _counts_good(self) -> bool:
        return self.config.counters is not None and self.config.counters.good is not None

    # ------------------------------------------------------------------ corrections

    def reclassify(self, start_ns: int, end_ns: int, old: str, new: str) -> list[Window]:
        """A stop [start, end) was given a reason: move its loss in the open windows it touches.

        The time was lost either way: availability does not change, only what it is put down to.
        The old reason keeps its key (at 0 s if nothing is left), so a rewrite of the window
        overwrites its earlier figure wherever it was stored.
        """
        touched = []
        for w in self.windows:
            seconds = w.busy_seconds(start_ns, end_ns)
            if seconds <= 0:
                continue
            w.reasons[old] = max(0.0, w.reasons.get(old, 0.0) - seconds)
            w.reasons[new] = w.reasons.get(new, 0.0) + seconds
            touched.append(w)
        return touched

    def add_rejects(self, t_ns: int, count: int) -> list[Window]:
        """Parts made before t_ns were found bad after the PLC counted them: the open windows
        holding t_ns count them as rejects."""
        touched = self.windows_holding(t_ns)
        for w in touched:
            w.manual_rejects += count
        return touched

    def windows_holding(self, t_ns: int) -> list[Window]:
        """The open windows a part made just before t_ns counts in."""
        return [w for w in self.windows if w.start_ns < t_ns <= w.end_ns]

    def running_records(self, windows: list[Window]) -> list[Record]:
        """The running figures of `windows` now (after a correction)."""
        assert self.clock_ns is not None
        return [self._record(w, self.clock_ns, final=False) for w in windows]

    # ------------------------------------------------------------------ persistence

    def to_state(self) -> dict[str, Any]:
        return {
            "windows": [asdict(w) for w in self.windows],
            "period": asdict(self.period) if self.period else None,
            "clock_ns": self.clock_ns,
            "next_running_ns": self.next_running_ns,
            "counters": self.counters,
            "last_stop_end_ns": self.last_stop_end_ns,
            "holding_ns": self.holding_ns,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.windows = [
            Window(**{**w, "busy": [tuple(b) for b in w["busy"]]}) for w in state["windows"]
        ]
        self.period = Period(**state["period"]) if state["period"] else None
        self.clock_ns = state["clock_ns"]
        self.next_running_ns = state["next_running_ns"]
        self.counters = dict(state["counters"])
        self.last_stop_end_ns = state["last_stop_end_ns"]
        self.holding_ns = state.get("holding_ns")


def window_busy(calendar: Calendar | None, kind: str, start_ns: int) -> list[tuple[int, int]]:
    """The planned busy intervals of the window of `kind` (shift or hour) that starts at start_ns.

    The same intervals the tracker measured the window over: a correction made later (an
    operator's reason for a stop) counts the stop's time in them the same way.
    """
    if kind == "shift":
        if calendar is None:
            return []
        for shift in calendar.shifts_overlapping(start_ns, start_ns + 1):
            if shift.start_ns == start_ns:
                return shift.busy()
        return []
    end_ns = start_ns + HOUR
    if calendar is None:
        return [(start_ns, end_ns)]
    busy = [
        (max(a, start_ns), min(b, end_ns))
        for shift in calendar.shifts_overlapping(start_ns, end_ns)
        for a, b in shift.busy()
        if a < end_ns and b > start_ns
    ]
    return sorted(busy)


def _r(seconds: float) -> float:
    return round(seconds, 3)


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
