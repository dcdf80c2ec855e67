"""What a driver's folder tells the rest of the agent about itself (see drivers/__init__.py)."""

from __future__ import annotations

__all__ = [
    "TEXT_TYPES",
    "DeviceCheck",
    "DriverPlugin",
    "HealthAlarm",
    "HealthCheck",
    "Loc",
    "SimulatedPress",
]

import argparse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.base import Driver


@dataclass(frozen=True)
class HealthAlarm:
    """A system alarm's text: in English, and as a key with arguments for the page's languages."""

    detail: str
    detail_key: str
    detail_args: dict[str, str] = field(default_factory=dict)


# A periodic look at what only the driver knows (an OPC UA certificate running out): given this
# driver's configured devices and the agent's key folder, the system alarms that should be active
# now, by alarm id (each starting with the plugin's `health_prefix`). The agent raises them, and
# returns those of the prefix that are no longer wanted with `health_cleared`.
HealthCheck = Callable[[dict[str, Any], Path], dict[str, HealthAlarm]]

Loc = tuple[str | int, ...]  # a place in the configuration file: ("devices", "press1", "tags", …)

# A check of one device's settings at load time, beyond what its model checks alone: given the
# device's place in the file and its config, (place, message) for each finding.
DeviceCheck = Callable[[Loc, Any], list[tuple[Loc, str]]]

# Declared tag types whose values are text, not numbers, whatever the driver calls them.
TEXT_TYPES = frozenset({"string", "wstring", "char"})


def _device_decides(_tag: Any) -> str | None:
    return None


@dataclass(frozen=True)
class SimulatedPress:
    """`edge-agent simulate --<name>-port P`: the simulated press served over this protocol."""

    protocol: str  # for --help: "also serve a press over <protocol> on this port"
    press_map: str  # where its values are, for --help (the README has it too)
    # (press model, host, port) -> (how to stop it, where it is, for people). Imports the
    # protocol's server only when called. OSError when the port cannot be had.
    serve: Callable[[Any, str, int], Awaitable[tuple[Callable[[], Awaitable[None]], str]]]


@dataclass(frozen=True)
class DriverPlugin:
    name: str  # the `driver:` of a device
    title: str  # for people: "Modbus", "Siemens S7"
    device_config: type[Any]  # its pydantic model, with `driver: Literal[name]`
    # Sections of the generated configuration reference: (title, model), after the device's own.
    reference: Sequence[tuple[str, type[Any]]]
    # (device name, its config, agent_id=, pki=) -> Driver; imports the protocol library itself.
    create: Callable[..., Driver]
    # `edge-agent <name> …` subcommands: adds them to the parser's subparsers.
    add_commands: Callable[[argparse._SubParsersAction[Any]], None] | None = None
    health: HealthCheck | None = None
    health_prefix: str = ""
    health_cleared: HealthAlarm | None = None
    problems: DeviceCheck | None = None  # errors: the file is refused
    warnings: DeviceCheck | None = None  # valid but to be fixed (a password sent readable)
    # The type a tag's settings give its values ("real", "string"); None where the device decides
    # (OPC UA). A replayed CSV is checked against it.
    tag_type: Callable[[Any], str | None] = _device_decides
    simulator: SimulatedPress | None = None
