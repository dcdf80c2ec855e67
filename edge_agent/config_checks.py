"""Checks of a configuration that one model cannot make alone, run after it validated.

References between sections (a machine's tags, a calendar, an alarm's machine), and each driver's
and sink's own checks (tags against their device, secrets that would cross the network readable).
"""

from __future__ import annotations

__all__ = ["check_semantics", "plaintext_warnings"]

import difflib
from typing import Any

from drivers import plugin
from drivers.plugin import Loc
from edge_agent.compute.expression import Expression, ExpressionError
from edge_agent.config_models import AgentFile
from edge_agent.sinks import sink_problems, sink_warnings

# ---------------------------------------------------------------------------------- references


def check_semantics(config: AgentFile) -> list[tuple[Loc, str]]:
    """What one model cannot see alone: references between sections, tags against their device."""
    tags = {f"{d}.{t}" for d, device in config.devices.items() for t in device.tags}
    problems: list[tuple[Loc, str]] = []
    for name, device in config.devices.items():
        check = plugin(device.driver).problems
        if check is not None:
            problems += check(("devices", name), device)

    def need_tag(loc: Loc, ref: str) -> None:
        if ref not in tags:
            problems.append((loc, _unknown("tag", ref, tags)))

    def need_rule(loc: Loc, text: str | None) -> None:
        if text is None:
            return
        try:
            refs = Expression(text).refs
        except ExpressionError as exc:
            problems.append((loc, str(exc)))
            return
        for ref in sorted(refs):
            need_tag(loc, ref)

    for name, machine in config.machines.items():
        base: Loc = ("machines", name)
        if machine.calendar is not None and machine.calendar not in config.calendars:
            problems.append(
                ((*base, "calendar"), _unknown("calendar", machine.calendar, config.calendars))
            )
        for field in ("running", "fault", "planned"):
            need_rule((*base, "state", field), getattr(machine.state, field))
        if machine.state.reason is not None:
            need_tag((*base, "state", "reason"), machine.state.reason)
        if machine.counters is not None:
            for field in ("total", "good", "reject"):
                ref = getattr(machine.counters, field)
                if ref is not None:
                    need_tag((*base, "counters", field), ref)
    for index, alarm in enumerate(config.alarms):
        if hasattr(alarm, "tag"):
            need_tag(("alarms", index, "tag"), alarm.tag)
        need_rule(("alarms", index, "suppress_when"), alarm.suppress_when)
        need_rule(("alarms", index, "when"), alarm.when)
        need_rule(("alarms", index, "running"), getattr(alarm, "running", None))
        if alarm.machine is not None and alarm.machine not in config.machines:
            problems.append(
                (("alarms", index, "machine"), _unknown("machine", alarm.machine, config.machines))
            )
    ids = [alarm.id for alarm in config.alarms]
    for index, alarm in enumerate(config.alarms):
        if ids.index(alarm.id) != index:
            problems.append((("alarms", index, "id"), f"alarm id '{alarm.id}' is used twice"))
    problems += sink_problems(config)
    return problems


def plaintext_warnings(config: AgentFile) -> list[tuple[Loc, str]]:
    """Passwords and tokens that would cross the network readable: valid, but to be fixed."""
    warnings: list[tuple[Loc, str]] = sink_warnings(config)
    for name, device in config.devices.items():
        check = plugin(device.driver).warnings
        if check is not None:
            warnings += check(("devices", name), device)
    return warnings


def _unknown(what: str, name: str, known: Any) -> str:
    names = sorted(known)
    guess = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if guess:
        return f"unknown {what} '{name}'; did you mean '{guess[0]}'?"
    listed = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
    return f"unknown {what} '{name}'" + (
        f" (defined: {listed})" if names else f" (no {what}s are defined)"
    )
