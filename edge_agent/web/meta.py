"""`GET /api/meta`: what the page needs to know of the configuration to show it to people.

Names people read (display names, reasons with their categories, shifts), each machine's time
zone and OEE window. Nothing secret: no addresses, credentials or file paths.
"""

from __future__ import annotations

__all__ = ["meta", "read_meta"]

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from edge_agent.config_models import REASON_CATEGORIES, AgentFile


def meta(config: AgentFile) -> dict[str, Any]:
    machines = []
    for name, machine in config.machines.items():
        calendar = config.calendars[machine.calendar] if machine.calendar else None
        machines.append(
            {
                "id": name,
                "display_name": machine.display_name or name,
                "calendar": machine.calendar,
                "timezone": calendar.timezone if calendar else "UTC",
                "window": "shift" if calendar else "hour",
                "ideal_cycle_time_s": machine.ideal_cycle_time_s,
                "reasons": [
                    {"code": code, "text": r.text, "category": r.category}
                    for code, r in machine.reasons.items()
                ],
                "shifts": [
                    {"name": s.name, "display_name": s.display_name or s.name}
                    for s in (calendar.shifts if calendar else [])
                ],
            }
        )
    devices = [
        {
            "id": name,
            "display_name": device.display_name or name,
            "tags": [
                {
                    "id": tag,
                    "display_name": t.display_name or tag,
                    "unit": getattr(t, "unit", None),
                }
                for tag, t in device.tags.items()
            ],
        }
        for name, device in config.devices.items()
    ]
    alarms = [
        {
            "id": a.id,
            "display_name": a.display_name or a.id,
            "machine": a.machine,
            "message": a.message,
            "priority": a.priority,
            "type": a.type,
        }
        for a in config.alarms
    ]
    return {
        "agent": {"id": config.agent.id, "language": config.agent.language},
        "machines": machines,
        "devices": devices,
        "alarms": alarms,
        "categories": list(REASON_CATEGORIES),
    }


def read_meta(
    config: AgentFile,
) -> Callable[[Mapping[str, str]], Coroutine[Any, Any, dict[str, Any]]]:
    """The route's handler: the answer is made once, the configuration does not change."""
    answer = meta(config)

    async def read(_params: Mapping[str, str]) -> dict[str, Any]:
        return answer

    return read
