"""Protocol drivers, looked up by the `driver:` name of a device in the configuration."""

from __future__ import annotations

__all__ = ["DRIVERS", "create_driver"]

from collections.abc import Callable
from typing import Any

from drivers.base import Driver


def _modbus(name: str, config: Any) -> Driver:
    from drivers.modbus import ModbusDriver

    return ModbusDriver(name, config)


# Adding a protocol: one module in drivers/ and one line here.
DRIVERS: dict[str, Callable[[str, Any], Driver]] = {
    "modbus": _modbus,
}


def create_driver(name: str, config: Any) -> Driver:
    """The driver for one configured device; an unknown driver name says which ones exist."""
    try:
        factory = DRIVERS[config.driver]
    except KeyError:
        known = ", ".join(sorted(DRIVERS))
        raise ValueError(
            f"device {name}: unknown driver {config.driver!r} (known: {known})"
        ) from None
    return factory(name, config)
