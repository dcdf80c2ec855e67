"""Protocol drivers, looked up by the `driver:` name of a device in the configuration."""

from __future__ import annotations

__all__ = ["DRIVERS", "create_driver"]

from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.base import Driver


def _modbus(name: str, config: Any, **_context: Any) -> Driver:
    from drivers.modbus import ModbusDriver

    return ModbusDriver(name, config)


def _opcua(name: str, config: Any, *, agent_id: str, pki: Path, **_context: Any) -> Driver:
    from drivers.opcua import OpcUaDriver

    return OpcUaDriver(name, config, agent_id=agent_id, pki=pki)


# Adding a protocol: one module in drivers/ and one line here.
DRIVERS: dict[str, Callable[..., Driver]] = {
    "modbus": _modbus,
    "opcua": _opcua,
}


def create_driver(name: str, config: Any, *, agent_id: str, pki: Path) -> Driver:
    """The driver for one configured device; an unknown driver name says which ones exist."""
    try:
        factory = DRIVERS[config.driver]
    except KeyError:
        known = ", ".join(sorted(DRIVERS))
        raise ValueError(
            f"device {name}: unknown driver {config.driver!r} (known: {known})"
        ) from None
    return factory(name, config, agent_id=agent_id, pki=pki)
