"""Modbus TCP, RTU on a serial line and RTU framed over TCP (pymodbus), read-only."""

from __future__ import annotations

__all__ = ["PLUGIN"]

from typing import Any

from drivers.base import Driver
from drivers.modbus.checks import device_problems
from drivers.modbus.config import ModbusDeviceConfig, ModbusTagConfig
from drivers.plugin import DriverPlugin


def _create(name: str, config: Any, **_context: Any) -> Driver:
    from drivers.modbus.driver import ModbusDriver

    return ModbusDriver(name, config)


PLUGIN = DriverPlugin(
    name="modbus",
    title="Modbus",
    device_config=ModbusDeviceConfig,
    reference=(("devices.<name>.tags.<name> (modbus)", ModbusTagConfig),),
    create=_create,
    problems=device_problems,
    tag_type=lambda tag: tag.type,
)
