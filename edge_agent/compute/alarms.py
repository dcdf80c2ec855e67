"""Alarms on the ISA-18.2 / IEC 62682 model: states, acknowledgement, shelving, delays, floods.

An alarm wraps one detector. The detector says whether its condition holds; the alarm applies the
on- and off-delays, and keeps the operator's side: acknowledged or not, shelved until when,
suppressed by design (`suppress_when`), out of service. States:

    normal, unack_active, ack_active, unack_rtn, shelved, suppressed, out_of_service

Activating makes an alarm unacknowledged; acknowledging an active alarm makes it ack_active, a
returned one normal; an acknowledged alarm that clears goes to normal.

Hiding an alarm always has a reason and an end: `shelve` for at most 7 days, `out_of_service` for
`agent.out_of_service_default_h` unless told otherwise and at most `agent.out_of_service_max_days`.
An alarm still active when it comes back (by command or at expiry) must be seen again: it is
unacknowledged.
"""

from __future__ import annotations

__all__ = ["AlarmManager", "CommandError"]

import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import Any, TypeGuard

from edge_agent.compute.detectors import (
    Detector,
    RunHoursDetector,
    Verdict,
    has_non_finite,
    make_detector,
)
from edge_agent.compute.expression import Expression
from edge_agent.compute.tags import TagTable
from edge_agent.config_models import AgentFile, AlarmConfig, AlarmFloodConfig, SystemAlarmConfig
from edge_agent.records import Kind, Record
from edge_agent.timefmt import iso_utc

_log = logging.getLogger(__name__)

NS = 1_000_000_000
SEVERITY = {"low": 250, "medium": 500, "high": 750, "urgent": 1000}  # OPC UA Part 9, 1..1000
COMMANDS = ("ack", "shelve", "unshelve", "reset", "out_of_service", "in_service")
SHELVE_MAX_S = 7 * 86400
REASON_MAX = 200  # characters of a shelve or out_of_service reason


class CommandError(ValueError):
    """A command that cannot be carried out; nothing was changed."""


@dataclass(frozen=True, slots=True)
class ServiceLimits:
    """How long out_of_service lasts when no duration is given, and at most (agent settings)."""

    default_s: float = 24 * 3600.0
    max_s: float = 30 * 86400.0


class Alarm:
    def __init__(self, config: AlarmConfig | SystemAlarmConfig, detector: Detector) -> None:
        self.config = config
        self.detector = detector
        self.suppress_rule = Expression(config.suppress_when) if config.suppress_when else None
        self.when_rule = Expression(config.when) if config.when else None
        self.raw = False  # the detector's verdict, before delays
        self.raw_since_ns = 0
        self.active = False
        self.acked = True
        self.shelved_until_ns: int | None = None
        self.shelve_reason: str | None = None
        self.suppressed = False
        self.out_of_service = False
        self.out_of_service_until_ns: int | None = None
        self.out_of_service_reason: str | None = None
        self.level: str | None = None
        self.value: float | None = None
        self.statistic: float | None = None
        self.detail: str | None = None
        self.detail_key: str | None = None  # the detail for a page to translate (detectors.py)
        self.detail_args: dict[str, Any] = {}
        self.activated_ns: int | None = None  # when it last became active
        self.since_ns: int | None = None  # when `state` last changed, as announced
        self.since_state: str | None = None
        self.published: tuple[Any, ...] | None = None  # what the last record said

    @property
    def state(self) -> str:
        if self.out_of_service:
            return "out_of_service"
        if self.shelved_until_ns is not None:
            return "shelved"
        if self.suppressed:
            return "suppressed"
        if self.active:
            return "ack_active" if self.acked else "unack_active"
        return "normal" if self.acked else "unack_rtn"

    def judge(self, t_ns: int, verdict: Verdict, value: float | None) -> None:
        self.value = value
        self.statistic = verdict.statistic
        self.detail = verdict.detail
        self.detail_key, self.detail_args = verdict.detail_key, verdict.detail_args
        if verdict.active != self.raw:
            self.raw, self.raw_since_ns = verdict.active, t_ns
        if verdict.active:
            self.level = verdict.level
        self.settle(t_ns)

    def hold_off(self, t_ns: int) -> None:
        """Outside the alarm's operating condition (`when`): a condition still waiting out its
        on-delay is not known to last, so the delay starts again once samples are judged again.
        Else one chance excursion just before a stop would become an alarm during the stop."""
        if self.raw and not self.active:
            self.raw, self.raw_since_ns = False, t_ns

    @property
    def reason(self) -> str | None:
        """Why the alarm is hidden now (out of service first, as in `state`)."""
        if self.out_of_service:
            return self.out_of_service_reason
        return self.shelve_reason if self.shelved_until_ns is not None else None

    def settle(self, t_ns: int) -> None:
        """Apply the delays: the raw condition becomes the alarm's once it has held long enough."""
        if self.shelved_until_ns is not None and t_ns >= self.shelved_until_ns:
            self.shelved_until_ns = self.shelve_reason = None
            if self.active:
                self.acked = False  # back from the shelf still active: it must be seen again
        until = self.out_of_service_until_ns
        if self.out_of_service and until is not None and t_ns >= until:
            self.out_of_service = False
            self.out_of_service_until_ns = self.out_of_service_reason = None
            if self.active:
                self.acked = False  # back in service still active: it must be seen again
        if self.raw == self.active:
            return
        delay = self.config.on_delay_s if self.raw else self.config.off_delay_s
        if t_ns - self.raw_since_ns >= delay * NS:
            self.active = self.raw
            if self.active:
                self.acked = False
                self.activated_ns = t_ns

    def next_event_ns(self) -> int | None:
        events = []
        if self.raw != self.active:
            delay = self.config.on_delay_s if self.raw else self.config.off_delay_s
            events.append(self.raw_since_ns + round(delay * NS))
        if self.shelved_until_ns is not None:
            events.append(self.shelved_until_ns)
        if self.out_of_service and self.out_of_service_until_ns is not None:
            events.append(self.out_of_service_until_ns)
        if (
            isinstance(self.detector, RunHoursDetector)
            and (due := self.detector.due_ns()) is not None
        ):
            events.append(due)
        return min(events) if events else None

    def command(
        self, t_ns: int, name: str, args: dict[str, Any], service: ServiceLimits = ServiceLimits()
    ) -> None:
        if name == "ack":
            if self.acked:
                raise CommandError(
                    f"alarm {self.config.id} has nothing to acknowledge (state {self.state})"
                )
            self.acked = True
        elif name == "shelve":
            duration = args.get("duration_s")
            if not _is_number(duration) or not 0 < duration <= SHELVE_MAX_S:
                raise CommandError("shelve needs duration_s, from 1 s to 7 days, and a reason")
            reason = _reason(name, args)
            self.shelved_until_ns = t_ns + round(duration * NS)
            self.shelve_reason = reason
        elif name == "unshelve":
            if self.shelved_until_ns is None:
                raise CommandError(f"alarm {self.config.id} is not shelved")
            self.shelved_until_ns = t_ns
            self.settle(t_ns)
        elif name == "reset":
            if self.config.type not in ("run_hours", "cycles", "cusum"):
                raise CommandError(
                    f"reset applies to run_hours, cycles and cusum alarms, not {self.config.type}"
                )
            self.detector.reset()
            if self.config.type != "cusum":
                self.value = self.statistic = 0.0  # the counter starts again from zero
            self.raw = self.active = False
            self.raw_since_ns = t_ns
            self.level = None
        elif name == "out_of_service":
            duration = args.get("duration_s", service.default_s)
            if not _is_number(duration) or not 0 < duration <= service.max_s:
                raise CommandError(
                    f"out_of_service takes duration_s up to {service.max_s / 86400:g} days "
                    f"(default {service.default_s / 3600:g} h), and needs a reason"
                )
            reason = _reason(name, args)
            self.out_of_service = True
            self.out_of_service_until_ns = t_ns + round(duration * NS)
            self.out_of_service_reason = reason
        elif name == "in_service":
            if not self.out_of_service:
                raise CommandError(f"alarm {self.config.id} is not out of service")
            self.out_of_service_until_ns = t_ns
            self.settle(t_ns)
        else:
            raise CommandError(f"unknown command {name!r}; known: {', '.join(COMMANDS)}")

    def record(self, t_ns: int, event: str) -> Record | None:
        """The alarm's record if anything people see has changed since the last one."""
        c = self.config
        if self.state != self.since_state:
            self.since_state, self.since_ns = self.state, t_ns
        announced = self.state in (
            "unack_active",
            "ack_active",
        )  # behind a shelf, levels are not news
        seen = (
            self.state,
            self.level if announced else None,
            self.shelved_until_ns,
            self.out_of_service_until_ns,
        )
        if seen == self.published and event == "change":
            return None
        self.published = seen
        priority = c.priority
        if c.type == "vibration_zone" and self.level == "C":
            priority = c.alert_priority  # type: ignore[union-attr]
        message = c.message or f"{c.id}: {self.detail or c.type}"
        body: dict[str, Any] = {
            "id": c.id,
            "type": c.type,
            "tag": getattr(c, "tag", None),
            "machine": c.machine,
            "state": self.state,
            "event": event,
            "priority": priority,
            "severity": SEVERITY[priority],
            "active": self.active,
            "acked": self.acked,
            "level": self.level if self.active else None,
            "value": self.value,
            "statistic": self.statistic,
            "message": message,
            "shelved_until": iso_utc(self.shelved_until_ns) if self.shelved_until_ns else None,
            "suppressed": self.suppressed,
            "out_of_service": self.out_of_service,
            "out_of_service_until": (
                iso_utc(self.out_of_service_until_ns) if self.out_of_service_until_ns else None
            ),
            "reason": self.reason,
            "detail": self.detail,
            "detail_key": self.detail_key,
            "detail_args": self.detail_args,
        }
        return Record(Kind.ALARM, c.id, t_ns, body)

    def to_state(self) -> dict[str, Any]:
        keep = (
            "raw",
            "raw_since_ns",
            "active",
            "acked",
            "shelved_until_ns",
            "shelve_reason",
            "suppressed",
            "out_of_service",
            "out_of_service_until_ns",
            "out_of_service_reason",
            "level",
            "value",
            "statistic",
            "detail",
            "detail_key",
            "detail_args",
            "activated_ns",
            "since_ns",
            "since_state",
        )
        state = {k: getattr(self, k) for k in keep}
        state["published"] = list(self.published) if self.published else None
        state["detector"] = self.detector.to_state()
        return state

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from `to_state`. A detector state holding NaN or infinity (an older version
        could save one) is not restored: that detector starts afresh, the rest is kept."""
        for key, value in state.items():
            if key == "detector":
                try:
                    self.detector.restore(value)
                except ValueError as exc:
                    _log.warning(
                        "alarm %s: %s (saved by an older version?); not restored, it starts afresh",
                        self.config.id,
                        exc,
                    )
            elif key == "published":
                self.published = tuple(value) if value else None
            elif key in ("value", "statistic"):
                setattr(self, key, _finite_or_none(value))
            else:
                setattr(self, key, value)


class AlarmManager:
    """Every configured alarm, fed by the engine in time order; also the flood guard."""

    def __init__(self, config: AgentFile) -> None:
        self.alarms: dict[str, Alarm] = {}
        self._by_device: dict[str, list[str]] = {}
        for alarm_config in config.alarms:
            tag_ref = getattr(alarm_config, "tag", None)
            bool_tag = False
            if tag_ref:
                device, tag = tag_ref.split(".", 1)
                bool_tag = getattr(config.devices[device].tags[tag], "type", None) == "bool"
            alarm = Alarm(alarm_config, make_detector(alarm_config, bool_tag=bool_tag))
            self.alarms[alarm_config.id] = alarm
            for device in self._devices_of(alarm):
                self._by_device.setdefault(device, []).append(alarm_config.id)
        self.flood = FloodGuard(config.alarm_flood)
        self.service = ServiceLimits(
            default_s=config.agent.out_of_service_default_h * 3600,
            max_s=config.agent.out_of_service_max_days * 86400,
        )
        # Restored from a state saved before out_of_service had an end: it gets the default
        # duration from the first instant time moves on (restore itself is not told the time).
        self._undated: list[Alarm] = []
        self._running = {
            a.config.id: Expression(a.config.running)  # type: ignore[union-attr]
            for a in self.alarms.values()
            if a.config.type == "run_hours"
        }

    @staticmethod
    def _devices_of(alarm: Alarm) -> set[str]:
        refs: set[str] = set()
        if tag := getattr(alarm.config, "tag", None):
            refs.add(tag)
        for rule in (alarm.suppress_rule, alarm.when_rule):
            if rule is not None:
                refs |= rule.refs
        if running := getattr(alarm.config, "running", None):
            refs |= Expression(running).refs
        return {ref.split(".", 1)[0] for ref in refs}

    def watches(self, device: str) -> bool:
        return device in self._by_device

    def on_batch(self, device: str, tags: TagTable, t_ns: int) -> list[Record]:
        records = self._date_restored(t_ns)
        for alarm_id in self._by_device.get(device, ()):
            alarm = self.alarms[alarm_id]
            condition = self._judge(alarm, tags, t_ns)
            if condition is not None:
                records.append(condition)
            records += self._announce(alarm, t_ns)
        return self.flood.filter(records, t_ns)

    def _judge(self, alarm: Alarm, tags: TagTable, t_ns: int) -> Record | None:
        """Feed the alarm's detector; returns a condition record when the detector reports one."""
        alarm.suppressed = _holds(alarm.suppress_rule, tags) if alarm.suppress_rule else False
        if alarm.when_rule is not None and not _holds(alarm.when_rule, tags):
            alarm.hold_off(t_ns)
            return None  # outside its operating condition a sample is not judged
        if alarm.config.type == "run_hours":
            running = _holds(self._running[alarm.config.id], tags)
            verdict = alarm.detector.update(t_ns, 1.0 if running else 0.0)
            alarm.judge(t_ns, verdict, verdict.statistic)
            return None
        ref = alarm.config.tag  # type: ignore[union-attr]
        if not tags.usable(ref):
            return None  # no new judgement on a bad or missing value: the alarm keeps its state
        value = tags.value(ref)
        if not isinstance(value, int | float) or not math.isfinite(value):
            return None  # NaN or infinity: no judgement either (the tag table makes them bad)
        number = float(value)
        verdict = alarm.detector.update(t_ns, number)
        alarm.judge(t_ns, verdict, number)
        return (
            _condition_record(alarm, t_ns, verdict.condition)
            if verdict.condition is not None
            else None
        )

    def _announce(self, alarm: Alarm, t_ns: int, event: str = "change") -> list[Record]:
        records = []
        before = alarm.published
        record = alarm.record(t_ns, event)
        if record is not None:
            activated = record.body["state"] == "unack_active" and (
                before is None or before[0] != "unack_active"
            )
            records.append(record)
            if activated:
                self.flood.activation(t_ns)
        return records

    def system(
        self,
        alarm_id: str,
        t_ns: int,
        *,
        active: bool,
        detail: str,
        priority: str = "high",
        detail_key: str | None = None,
        detail_args: dict[str, Any] | None = None,
    ) -> list[Record]:
        """Raise or clear an alarm the agent sets about itself; it is acknowledged like any other.

        `detail` is English; `detail_key` and `detail_args` say the same for a page to translate
        (the keys are listed in detectors.py)."""
        alarm = self.alarms.get(alarm_id)
        if alarm is None:
            if not active:
                return []
            config = SystemAlarmConfig(
                id=alarm_id, type="system", priority=priority, message=detail
            )
            alarm = self.alarms[alarm_id] = Alarm(config, Detector())
        records = self._date_restored(t_ns)
        verdict = Verdict(
            active,
            "system" if active else None,
            None,
            detail,
            detail_key=detail_key,
            detail_args=detail_args or {},
        )
        alarm.judge(t_ns, verdict, None)
        return self.flood.filter(records + self._announce(alarm, t_ns), t_ns)

    def next_event_ns(self) -> int | None:
        events = [e for a in self.alarms.values() if (e := a.next_event_ns()) is not None]
        if (flood_end := self.flood.next_event_ns()) is not None:
            events.append(flood_end)
        return min(events) if events else None

    def step_to(self, t_ns: int) -> list[Record]:
        """Time passed: delays expire, shelves and out of service run out, running hours count,
        floods end."""
        records = self._date_restored(t_ns)
        for alarm in self.alarms.values():
            if isinstance(alarm.detector, RunHoursDetector):
                verdict = alarm.detector.advance(t_ns)
                alarm.judge(t_ns, verdict, verdict.statistic)
            else:
                alarm.settle(t_ns)
            records += self._announce(alarm, t_ns)
        return self.flood.filter(records, t_ns)

    def command(self, t_ns: int, payload: dict[str, Any]) -> list[Record]:
        """Carry out an operator's command; raises CommandError (changing nothing) when it cannot.

        `user` is who the path the command came by verified (a login, a token, the MQTT topic of
        a role the broker checked); `declared_user` a name the sender gave, kept apart from it.
        """
        name, alarm_id = payload.get("command"), payload.get("id")
        if not isinstance(name, str) or not isinstance(alarm_id, str):
            raise CommandError(
                'a command is {"command": "ack", "id": "<alarm id>"} (shelve adds "duration_s" '
                'and "reason")'
            )
        alarm = self.alarms.get(alarm_id)
        if alarm is None:
            known = ", ".join(sorted(self.alarms)) or "none"
            raise CommandError(f"unknown alarm {alarm_id!r} (configured: {known})")
        alarm.command(t_ns, name, payload, self.service)
        records = self._date_restored(t_ns)
        user, declared = payload.get("user"), payload.get("declared_user")
        _log.info(
            "alarm %s: %s by %s%s%s",
            alarm_id,
            name,
            user or "an unnamed user",
            f" (who says they are {declared!r})" if declared else "",
            f"; reason: {payload['reason'].strip()}"
            if name in ("shelve", "out_of_service")
            else "",
        )
        for record in self._announce(alarm, t_ns, event=name):
            record.body.update(user=user, declared_user=declared)
            records.append(record)
        return self.flood.filter(records, t_ns)

    def _date_restored(self, t_ns: int) -> list[Record]:
        """Give an end to out_of_service restored without one (see `restore`), from t_ns."""
        if not self._undated:
            return []
        records: list[Record] = []
        for alarm in self._undated:
            if alarm.out_of_service and alarm.out_of_service_until_ns is None:
                alarm.out_of_service_until_ns = t_ns + round(self.service.default_s * NS)
                _log.warning(
                    "alarm %s was out of service without an end (saved by an older version): "
                    "it returns to service at %s unless an engineer says otherwise",
                    alarm.config.id,
                    iso_utc(alarm.out_of_service_until_ns),
                )
                records += self._announce(alarm, t_ns)
        self._undated = []
        return records

    def states(self) -> list[dict[str, Any]]:
        """Every alarm as the page shows it; times as ISO 8601 UTC, or None."""
        return [_state_entry(a) for a in self.alarms.values()]

    def to_state(self) -> dict[str, Any]:
        return {
            "alarms": {k: a.to_state() for k, a in self.alarms.items()},
            "flood": self.flood.to_state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        for alarm_id, saved in state.get("alarms", {}).items():
            if alarm_id in self.alarms:
                self.alarms[alarm_id].restore(saved)
        self._undated = [
            a
            for a in self.alarms.values()
            if a.out_of_service and a.out_of_service_until_ns is None
        ]
        self.flood.restore(state.get("flood", {}))


class FloodGuard:
    """More than max_activations within window_s: one flood record, and alarm events held back.

    While the flood lasts, the latest record of each alarm is kept; when it ends (the window no
    longer holds too many activations) one record per alarm brings every retained state up to date.
    """

    def __init__(self, config: AlarmFloodConfig) -> None:
        self.config = config
        self.activations: deque[int] = deque()
        self.flooding_since_ns: int | None = None
        self.held: dict[str, Record] = {}
        self.held_count = 0

    def activation(self, t_ns: int) -> None:
        self.activations.append(t_ns)

    def _prune(self, t_ns: int) -> None:
        while self.activations and self.activations[0] <= t_ns - self.config.window_s * NS:
            self.activations.popleft()

    def next_event_ns(self) -> int | None:
        if self.flooding_since_ns is None or not self.activations:
            return None
        return self.activations[0] + round(self.config.window_s * NS)

    def filter(self, records: list[Record], t_ns: int) -> list[Record]:
        self._prune(t_ns)
        out: list[Record] = []
        flooded = len(self.activations) > self.config.max_activations
        if flooded and self.flooding_since_ns is None:
            self.flooding_since_ns = t_ns
            out.append(self._record(t_ns, "begin"))
        for record in records:
            if self.flooding_since_ns is not None and record.kind == "alarm":
                self.held[record.key] = record
                self.held_count += 1
            else:
                out.append(record)
        if self.flooding_since_ns is not None and not flooded:
            out.append(self._record(t_ns, "end"))
            out += list(self.held.values())
            self.flooding_since_ns, self.held, self.held_count = None, {}, 0
        return out

    def _record(self, t_ns: int, phase: str) -> Record:
        body = {
            "phase": phase,
            "activations": len(self.activations),
            "window_s": self.config.window_s,
            "max_activations": self.config.max_activations,
            "since": iso_utc(self.flooding_since_ns or t_ns),
            "held_records": self.held_count,
        }
        return Record(Kind.ALARM_FLOOD, "flood", t_ns, body)

    def to_state(self) -> dict[str, Any]:
        # Held records are part of the state: a restart during a flood must not lose them.
        held = {key: [r.kind, r.key, r.ts_ns, r.body] for key, r in self.held.items()}
        return {
            "activations": list(self.activations),
            "flooding_since_ns": self.flooding_since_ns,
            "held": held,
            "held_count": self.held_count,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.activations = deque(state.get("activations", []))
        self.flooding_since_ns = state.get("flooding_since_ns")
        self.held = {}
        for key, (kind, record_key, ts_ns, body) in state.get("held", {}).items():
            if has_non_finite(body):  # saved by an older version: the number is unknown
                body = {k: _finite_or_none(v) for k, v in body.items()}
            self.held[key] = Record(Kind(kind), record_key, ts_ns, body)
        self.held_count = state.get("held_count", 0)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _reason(command: str, args: dict[str, Any]) -> str:
    """The reason a command hides an alarm: required, one line, at most REASON_MAX characters."""
    reason = args.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise CommandError(f"{command} needs a reason (who asked, why: a work order, a fault)")
    reason = reason.strip()
    if len(reason) > REASON_MAX or not reason.isprintable():
        raise CommandError(f"a reason is one line of at most {REASON_MAX} characters")
    return reason


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _holds(rule: Expression | None, tags: TagTable) -> bool:
    if rule is None or not all(tags.usable(ref) for ref in rule.refs):
        return False
    try:
        return bool(rule.evaluate(tags.values))
    except Exception:  # a rule that cannot be evaluated on these values does not hold
        return False


def _iso_or_none(t_ns: int | None) -> str | None:
    return iso_utc(t_ns) if t_ns is not None else None


def _state_entry(a: Alarm) -> dict[str, Any]:
    c = a.config
    return {
        "id": c.id,
        "type": c.type,
        "display_name": c.display_name or c.id,
        "tag": getattr(c, "tag", None),  # the page shows the value with this tag's unit
        "state": a.state,
        "priority": c.priority,
        "level": a.level if a.active else None,
        "value": a.value,
        "message": c.message,
        "detail": a.detail,
        "detail_key": a.detail_key,
        "detail_args": a.detail_args,
        "machine": c.machine,
        "activated": _iso_or_none(a.activated_ns),
        "since": _iso_or_none(a.since_ns),
        "shelved_until": _iso_or_none(a.shelved_until_ns),
        "out_of_service_until": _iso_or_none(
            a.out_of_service_until_ns if a.out_of_service else None
        ),
        "reason": a.reason,
    }


def _condition_record(alarm: Alarm, t_ns: int, condition: dict[str, Any]) -> Record:
    c = alarm.config
    body = {
        "id": c.id,
        "type": c.type,
        "tag": getattr(c, "tag", None),
        "machine": c.machine,
        "value": alarm.value,
        **condition,
    }
    return Record(Kind.CONDITION, c.id, t_ns, body)
