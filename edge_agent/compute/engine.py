"""The compute core as the agent and `replay` drive it: batches and time in, records out.

Time only moves forward. Before a batch is applied, `advance` walks through every instant between
the previous time and the batch's where something happens without a sample: a shift or break
starts or ends, an hour ends, a window's last stop is classified, a running figure is due. So the
live agent and `replay` over the same samples produce the same records.
"""

from __future__ import annotations

__all__ = ["ComputeEngine"]

from typing import Any

from edge_agent.compute.alarms import AlarmManager, CommandError
from edge_agent.compute.calendar import Calendar
from edge_agent.compute.oee import OeeTracker
from edge_agent.compute.state import MachineState, StateTracker
from edge_agent.compute.tags import TagTable
from edge_agent.config_models import AgentFile
from edge_agent.records import Record
from edge_agent.samples import Quality, SampleBatch

_ALARMS = "\x00alarms"  # marks alarm events due at a batch's instant (no machine has this name)


class ComputeEngine:
    def __init__(self, config: AgentFile) -> None:
        self.config = config
        self.tags = TagTable()
        calendars = {name: Calendar(c) for name, c in config.calendars.items()}
        self.calendars: dict[str, Calendar | None] = {}
        self.machines: dict[str, StateTracker] = {}
        self.oee: dict[str, OeeTracker] = {}
        self._by_device: dict[str, list[str]] = {}
        # device -> (machine, role, tag, device.tag)
        self._counters: dict[str, list[tuple[str, str, str, str]]] = {}
        for name, machine in config.machines.items():
            calendar = calendars[machine.calendar] if machine.calendar else None
            self.calendars[name] = calendar
            self.machines[name] = tracker = StateTracker(name, machine)
            self.oee[name] = OeeTracker(name, machine, calendar)
            for device in tracker.devices:
                self._by_device.setdefault(device, []).append(name)
            if machine.counters is not None:
                for role in ("total", "good", "reject"):
                    ref = getattr(machine.counters, role)
                    if ref is not None:
                        device, tag = ref.split(".", 1)
                        self._counters.setdefault(device, []).append((name, role, tag, ref))
        self.alarms = AlarmManager(config)
        self.clock_ns: int | None = None

    def evaluates(self, device: str) -> bool:
        """Whether a value of `device` can change a machine, a counter or an alarm (else it is
        only kept in the tag table, where rules and the local page find it)."""
        return device in self._by_device or device in self._counters or self.alarms.watches(device)

    def ingest(self, batch: SampleBatch) -> list[Record]:
        """Take one poll's values at its time; return the records they cause."""
        # Boundaries at exactly this instant are evaluated after the batch is applied, so a break
        # that ends as the machine starts gives one state change, not a zero-length one.
        records, due = self._advance(batch.ts_ns, inclusive=False)
        now = self.clock_ns if self.clock_ns is not None else batch.ts_ns
        self.tags.ingest(batch)
        for name in due.difference({_ALARMS}).union(self._by_device.get(batch.device, ())):
            records += self._evaluate(name, now)
        records += self.alarms.on_batch(batch.device, self.tags, now)
        if _ALARMS in due:
            records += self.alarms.step_to(now)
        for name, role, tag, ref in self._counters.get(batch.device, ()):
            # Through the tag table, which holds no NaN or infinity (bad values there).
            if tag in batch.values and self.tags.usable(ref):
                value = self.tags.value(ref)
                if isinstance(value, int | float):
                    self.oee[name].count(self.clock_ns or batch.ts_ns, role, float(value))
        return records

    def next_event_ns(self) -> int | None:
        """The next instant at which time alone makes something happen (see `advance`), or None.

        A window that ends at the instant of the last sample is held open until time moves past
        it (see `ingest`): then its end is due at once.
        """
        events = []
        for oee in self.oee.values():
            if oee.clock_ns is None:
                continue
            held = oee.holding_ns
            if held is not None and any(w.end_ns == held for w in oee.windows):
                events.append(held + 1)
            if (event := oee.next_event_ns()) is not None:
                events.append(event)
        if (event := self.alarms.next_event_ns()) is not None:
            events.append(event)
        return min(events) if events else None

    def advance(self, t_ns: int) -> list[Record]:
        """Move time to t_ns, through every boundary on the way and at t_ns."""
        records, _ = self._advance(t_ns, inclusive=True)
        return records

    def _advance(self, t_ns: int, *, inclusive: bool) -> tuple[list[Record], set[str]]:
        if self.clock_ns is not None and t_ns < self.clock_ns:
            t_ns = self.clock_ns  # a late sample: its time is taken as now, never back in time
        records: list[Record] = []
        due: set[str] = set()
        for oee in self.oee.values():
            held = oee.holding_ns
            if held is not None and (t_ns > held or inclusive):
                oee.holding_ns = None  # time moves past the instant: its windows can close
                records += oee.step_to(held)
            if not inclusive:
                oee.holding_ns = t_ns
        for name, oee in self.oee.items():
            if oee.clock_ns is None:
                records += oee.step_to(t_ns)
                continue
            while (event := oee.next_event_ns()) is not None and event <= t_ns:
                if event == t_ns and not inclusive:
                    due.add(name)
                    break
                records += oee.step_to(event)
                records += self._evaluate(name, event)
            records += oee.step_to(t_ns)
        while (event := self.alarms.next_event_ns()) is not None and event <= t_ns:
            if event == t_ns and not inclusive:
                due.add(_ALARMS)
                break
            records += self.alarms.step_to(event)
        self.clock_ns = t_ns
        return records, due

    def command(self, payload: dict[str, Any], t_ns: int) -> tuple[list[Record], str | None]:
        """An operator's alarm command at t_ns: the records it causes, and why it was refused.

        Time is moved to t_ns first, and what that produced (an on-delay that ran out, a shelf
        that expired) is returned whether or not the command is accepted: a refused command
        changes no alarm, but it must not swallow what time did.
        """
        records = self.advance(t_ns)
        try:
            records += self.alarms.command(self.clock_ns or t_ns, payload)
        except CommandError as exc:
            return records, str(exc)
        return records, None

    def _evaluate(self, name: str, t_ns: int) -> list[Record]:
        calendar = self.calendars[name]
        planned = calendar.planned_reason(t_ns) if calendar is not None else None
        tracker = self.machines[name]
        record = tracker.update(self.tags, t_ns, planned=planned)
        if record is None:
            return []
        current = tracker.current
        assert current is not None
        oee = self.oee[name]
        if oee.clock_ns is None:
            oee.step_to(t_ns)
        return [record, *self._change(name, t_ns, current)]

    def _change(self, name: str, t_ns: int, current: MachineState) -> list[Record]:
        """Tell the OEE tracker a new state; a stop's reason only when one is configured for it."""
        reason, category = current.reason, None
        if current.state in ("down", "idle"):
            configured = self.machines[name].config.reasons.get(current.reason_code or "")
            reason = configured.text if configured else None  # else unclassified
            if current.state == "down":
                category = configured.category if configured else "breakdown"
        return self.oee[name].change_state(
            t_ns, current.state, reason, category, current.reason_code
        )

    # ------------------------------------------------------------------ persistence

    def to_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this engine is (JSON-able)."""
        return {
            "version": 1,
            "clock_ns": self.clock_ns,
            "values": self.tags.values,
            "quality": {
                d: {t: q.value for t, q in qs.items()} for d, qs in self.tags.quality.items()
            },
            "machines": {
                name: {
                    "state": _state_dict(self.machines[name].current),
                    "oee": self.oee[name].to_state(),
                }
                for name in self.machines
            },
            "alarms": self.alarms.to_state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from `to_state`; machines the saved state does not know start fresh."""
        self.clock_ns = state["clock_ns"]
        self.tags.values = {d: dict(v) for d, v in state["values"].items()}
        self.tags.quality = {
            d: {t: Quality(q) for t, q in qs.items()} for d, qs in state["quality"].items()
        }
        for name, saved in state["machines"].items():
            if name not in self.machines:
                continue
            current = saved["state"]
            self.machines[name].current = MachineState(**current) if current else None
            self.oee[name].restore(saved["oee"])
        self.alarms.restore(state.get("alarms", {}))

    def skip(self, t_ns: int) -> list[Record]:
        """Time jumped from the engine's clock to t_ns with nothing observed in between.

        That span is unknown: each open window gets it as unknown time up to its end (or t_ns)
        and closes; windows that lay wholly inside the jump are not made up. Bounded work,
        whether the jump is a minute or a month.
        """
        if self.clock_ns is None or t_ns <= self.clock_ns:
            return self.advance(t_ns)
        records = self.mark_gap(self.clock_ns)
        for oee in self.oee.values():
            records += oee.skip_to(t_ns)
        records += self.alarms.step_to(t_ns)
        self.clock_ns = t_ns
        return records

    def restart_windows(self, t_ns: int) -> list[Record]:
        """The clock was set back by more than a window: OEE windows start again at t_ns.

        The windows in progress cannot be continued from a time before they were last measured;
        their time from the window's start to t_ns is unknown. Machine states and alarms go on.
        """
        for name, machine in self.config.machines.items():
            self.oee[name] = OeeTracker(name, machine, self.calendars[name])
        self.clock_ns = t_ns
        records: list[Record] = []
        for name, oee in self.oee.items():
            records += oee.step_to(t_ns)
            current = self.machines[name].current
            if current is not None:
                records += self._change(name, t_ns, current)
        return records

    def mark_gap(self, from_ns: int) -> list[Record]:
        """The agent was not running since from_ns: that time is unknown, not what was last seen."""
        records = self.advance(from_ns)
        for device in self.tags.quality:
            for tag in self.tags.quality[device]:
                self.tags.quality[device][tag] = Quality.BAD
        for name in self.machines:
            records += self._evaluate(name, from_ns)
        return records


def _state_dict(state: MachineState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "state": state.state,
        "reason": state.reason,
        "reason_code": state.reason_code,
        "since_ns": state.since_ns,
    }
