"""Load-time checks of a Modbus device that its models cannot make one tag at a time."""

from __future__ import annotations

__all__ = ["device_problems"]

from drivers.modbus.config import ModbusDeviceConfig
from drivers.plugin import Loc


def device_problems(base: Loc, device: ModbusDeviceConfig) -> list[tuple[Loc, str]]:
    """Tags outside the 1..65536 address space of their addressing, or longer than a request."""
    problems: list[tuple[Loc, str]] = []
    for name, tag in device.tags.items():
        loc = (*base, "tags", name, "address")
        if tag.address < device.addressing:
            problems.append(
                (loc, f"address {tag.address} does not exist with addressing 1 (the first is 1)")
            )
        limit = device.max_registers_per_request if tag.table in ("holding", "input") else None
        if limit is not None and tag.size > limit:
            problems.append(
                (
                    (*base, "tags", name),
                    f"spans {tag.size} registers; max_registers_per_request is {limit}",
                )
            )
        if tag.address - device.addressing + tag.size > 65536:
            problems.append(
                (loc, f"the tag runs past address 65535 ({tag.size} registers from {tag.address})")
            )
    return problems
