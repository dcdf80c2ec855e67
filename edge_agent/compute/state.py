"""Machine state from tag rules: running, idle, down (with a reason), planned, unknown.

Precedence: planned > unknown > down > running > idle. `unknown` means a tag the rules read has
bad quality or no data yet: a dead link is never mistaken for a stopped machine, or a running one.
Every change yields one `state` record that also closes the period before it.
"""

from __future__ import annotations

__all__ = ["MachineState", "StateTracker"]

import logging
from dataclasses import dataclass

from edge_agent.compute.expression import Expression
from edge_agent.compute.tags import TagTable
from edge_agent.config_models import MachineConfig
from edge_agent.records import Kind, Record
from edge_agent.samples import Value
from edge_agent.timefmt import iso_utc

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MachineState:
    state: str
    reason: str | None
    reason_code: str | None
    since_ns: int


class StateTracker:
    """The state of one machine; `update` is called with the tag table whenever its tags change."""

    def __init__(self, name: str, config: MachineConfig) -> None:
        self.name = name
        self.config = config
        self.running = Expression(config.state.running)
        self.fault = Expression(config.state.fault) if config.state.fault else None
        self.planned = Expression(config.state.planned) if config.state.planned else None
        self.refs = set(self.running.refs)
        for rule in (self.fault, self.planned):
            if rule is not None:
                self.refs |= rule.refs
        self.devices = {ref.split(".", 1)[0] for ref in self.refs}
        if config.state.reason:
            self.devices.add(config.state.reason.split(".", 1)[0])
        self.current: MachineState | None = None
        self._eval_error: str | None = None
        self._inputs = sorted(self.refs | ({config.state.reason} if config.state.reason else set()))
        self._last_inputs: tuple[object, ...] | None = None

    def update(self, tags: TagTable, now_ns: int, *, planned: str | None = None) -> Record | None:
        """The state record if the state changed at `now_ns`, else None.

        `planned` is the calendar's reason when `now_ns` lies in planned downtime (a break).
        """
        inputs = (planned, *(tags.reading(ref) for ref in self._inputs))
        if inputs == self._last_inputs and self.current is not None:
            return None  # nothing the rules read has changed: neither has the state
        self._last_inputs = inputs
        state, reason, code = self._classify(tags, planned)
        current = self.current
        if current is not None and (current.state, current.reason, current.reason_code) == (
            state,
            reason,
            code,
        ):
            return None
        self.current = MachineState(state, reason, code, now_ns)
        body: dict[str, object] = {
            "machine": self.name,
            "state": state,
            "reason": reason,
            "reason_code": code,
            "since": iso_utc(now_ns),
            "ended": None,
        }
        if current is not None:
            body["ended"] = {
                "state": current.state,
                "reason": current.reason,
                "start": iso_utc(current.since_ns),
                "end": iso_utc(now_ns),
                "duration_s": round((now_ns - current.since_ns) / 1e9, 3),
            }
        return Record(Kind.STATE, self.name, now_ns, body)

    def _classify(self, tags: TagTable, planned: str | None) -> tuple[str, str | None, str | None]:
        if planned is not None:
            return "planned", planned, None
        if self.planned is not None and self._holds(self.planned, tags):
            return "planned", "planned stop", None
        if not all(tags.usable(ref) for ref in self.refs):
            return "unknown", None, None
        try:
            faulted = bool(self.fault.evaluate(tags.values)) if self.fault else False
            running = bool(self.running.evaluate(tags.values))
        except Exception as exc:  # a rule that cannot be evaluated on these values, e.g. str < int
            self._report(f"{type(exc).__name__}: {exc}")
            return "unknown", None, None
        self._report(None)
        if faulted:
            code = self._reason_code(tags)
            reason = self.config.reasons.get(code) if code is not None else None
            text = reason.text if reason else (f"fault {code}" if code is not None else "fault")
            return "down", text, code
        return ("running", None, None) if running else ("idle", None, None)

    def _holds(self, rule: Expression, tags: TagTable) -> bool:
        if not all(tags.usable(ref) for ref in rule.refs):
            return False
        try:
            return bool(rule.evaluate(tags.values))
        except Exception:
            return False

    def _reason_code(self, tags: TagTable) -> str | None:
        ref = self.config.state.reason
        if ref is None or not tags.usable(ref):
            return None
        return _code_text(tags.value(ref))

    def _report(self, error: str | None) -> None:
        if error != self._eval_error:
            if error:
                _log.error(
                    "machine %s: state rules cannot be evaluated (%s); state is unknown",
                    self.name,
                    error,
                )
            else:
                _log.info("machine %s: state rules evaluate again", self.name)
            self._eval_error = error


def _code_text(value: Value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return str(int(value))
    return str(value)
