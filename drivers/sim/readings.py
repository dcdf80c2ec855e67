"""What a configured device reads from a simulated press, without a socket or a clock.

For the demo's history and for tests that drive the compute core with simulated presses: a Modbus
device's tags are decoded from the press's register image at their addresses, as the driver does;
an OPC UA device's tags are the press's nodes (`Press.<Name>`, see opcua_press.LIVE). Every tag is
checked when the reader is made, so a configuration reading something the simulator does not serve
fails before any time is simulated.
"""

from __future__ import annotations

__all__ = ["PressReader", "press_reader"]

import re
from collections.abc import Callable
from typing import cast

from drivers.modbus.codec import decode
from drivers.modbus.config import ModbusDeviceConfig, ModbusTagConfig
from drivers.opcua.config import OpcUaDeviceConfig
from drivers.sim.image import RegisterImage
from drivers.sim.press import PressModel
from edge_agent.config_models import DeviceConfig
from edge_agent.samples import Value

PressReader = Callable[[PressModel], dict[str, Value]]

_BIT_TABLES = ("coil", "discrete_input")
_NODE = re.compile(r"(?:^|;)s=Press\.(\w+)$")


def press_reader(name: str, device: DeviceConfig) -> PressReader:
    """A function giving the values `device` reads from a press now (its tags' names as keys)."""
    if isinstance(device, ModbusDeviceConfig):
        return _modbus_reader(device)
    if isinstance(device, OpcUaDeviceConfig):
        return _opcua_reader(name, device)
    raise ValueError(f"device {name}: the simulated press is not served over {device.driver}")


def _modbus_reader(device: ModbusDeviceConfig) -> PressReader:
    image = RegisterImage()
    tags = list(device.tags.items())

    def read(press: PressModel) -> dict[str, Value]:
        press.write(image)
        return {name: _decoded(image, tag) for name, tag in tags}

    return read


def _decoded(image: RegisterImage, tag: ModbusTagConfig) -> Value:
    words = image.tables[tag.table][tag.address : tag.address + tag.size]
    return bool(words[0]) if tag.table in _BIT_TABLES else decode(tag, words)


def _opcua_reader(name: str, device: OpcUaDeviceConfig) -> PressReader:
    from drivers.sim.opcua_press import LIVE  # asyncua is imported only for an OPC UA press

    readings_of: dict[str, str] = {}
    for tag_name, tag in device.tags.items():
        found = _NODE.search(tag.node or "")
        if found is None or found.group(1) not in LIVE:
            served = ", ".join(f"Press.{node}" for node in LIVE)
            raise ValueError(
                f"device {name}, tag {tag_name}: the simulated press serves only {served}"
            )
        readings_of[tag_name] = LIVE[found.group(1)][0]

    def read(press: PressModel) -> dict[str, Value]:
        readings = cast(dict[str, Value], press.readings())
        return {tag_name: readings[reading] for tag_name, reading in readings_of.items()}

    return read
