"""Mitsubishi MELSEC PLCs over the MC protocol (SLMP), 3E binary frame on TCP: read-only."""

from __future__ import annotations

__all__ = ["PLUGIN", "McDeviceConfig", "McTagConfig"]

from typing import Any

from drivers.base import Driver
from drivers.mc.config import McDeviceConfig, McTagConfig
from drivers.plugin import DriverPlugin


def _create(name: str, config: Any, **_context: Any) -> Driver:
    from drivers.mc.driver import McDriver

    return McDriver(name, config)


PLUGIN = DriverPlugin(
    name="mc",
    title="Mitsubishi MC protocol",
    device_config=McDeviceConfig,
    reference=(("devices.<name>.tags.<name> (mc)", McTagConfig),),
    create=_create,
    tag_type=lambda tag: tag.value_type,
)
