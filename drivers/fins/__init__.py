"""Omron PLCs over FINS/UDP and FINS/TCP (read-only): configuration, driver and simulator."""

from __future__ import annotations

__all__ = ["PLUGIN", "FinsDeviceConfig", "FinsTagConfig"]

from typing import Any

from drivers.base import Driver
from drivers.fins.config import FinsDeviceConfig, FinsTagConfig
from drivers.plugin import DriverPlugin


def _create(name: str, config: Any, **_context: Any) -> Driver:
    from drivers.fins.driver import FinsDriver

    return FinsDriver(name, config)


PLUGIN = DriverPlugin(
    name="fins",
    title="Omron FINS",
    device_config=FinsDeviceConfig,
    reference=(("devices.<name>.tags.<name> (fins)", FinsTagConfig),),
    create=_create,
    tag_type=lambda tag: tag.type,
)
