"""Protocol drivers: one folder each (drivers/<name>/), registered below in one line.

A driver's folder holds its configuration models (config.py), its driver, its simulator and what
else only it needs; its `__init__.py` describes it as a `DriverPlugin`. The configuration schema,
the generated reference, the command line and the agent's periodic checks are built from
`PLUGINS`, so adding a protocol touches nothing outside its folder but the line below.
Importing this package loads no protocol library: only the configuration models.
"""

from __future__ import annotations

__all__ = ["PLUGINS", "DriverPlugin", "create_driver", "device_config_union", "plugin"]

import functools
import importlib
from pathlib import Path
from typing import Any

from drivers.base import Driver
from drivers.plugin import DriverPlugin

# Adding a protocol: its folder, and its name here (the order of the docs and of `--help`).
_FOLDERS = ("modbus", "opcua", "s7", "mc", "fins")

PLUGINS: tuple[DriverPlugin, ...] = tuple(
    importlib.import_module(f"drivers.{folder}").PLUGIN for folder in _FOLDERS
)


def device_config_union() -> Any:
    """The union of every driver's device model, for `devices.<name>` (told apart by `driver:`)."""
    union: Any = PLUGINS[0].device_config
    for p in PLUGINS[1:]:
        union = union | p.device_config
    return union


@functools.cache
def _by_name() -> dict[str, DriverPlugin]:
    return {p.name: p for p in PLUGINS}


def plugin(name: str) -> DriverPlugin:
    """The plugin of a `driver:` name; an unknown one says which exist."""
    try:
        return _by_name()[name]
    except KeyError:
        known = ", ".join(sorted(_by_name()))
        raise ValueError(f"unknown driver {name!r} (known: {known})") from None


def create_driver(name: str, config: Any, *, agent_id: str, pki: Path) -> Driver:
    """The driver for one configured device."""
    try:
        found = plugin(config.driver)
    except ValueError as exc:
        raise ValueError(f"device {name}: {exc}") from None
    return found.create(name, config, agent_id=agent_id, pki=pki)
