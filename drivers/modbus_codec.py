"""Modbus register words to values and back: one table of types, one function for byte orders."""

from __future__ import annotations

__all__ = ["decode", "encode", "register_count"]

import struct
from collections.abc import Sequence

from edge_agent.config_models import ModbusTagConfig
from edge_agent.samples import Value

# type -> (struct code, registers)
_NUMBERS: dict[str, tuple[str, int]] = {
    "int16": ("h", 1),
    "uint16": ("H", 1),
    "int32": ("i", 2),
    "uint32": ("I", 2),
    "int64": ("q", 4),
    "uint64": ("Q", 4),
    "float32": ("f", 2),
    "float64": ("d", 4),
}


def register_count(tag: ModbusTagConfig) -> int:
    """How many 16-bit registers (or bits, on bit tables) the tag occupies."""
    return tag.size


def decode(tag: ModbusTagConfig, words: Sequence[int]) -> Value:
    """The tag's value from its registers as they came off the wire (first register first)."""
    if tag.type == "bool":
        return bool((words[0] >> (tag.bit or 0)) & 1)
    raw = _reorder(struct.pack(f">{len(words)}H", *words), tag.byte_order)
    if tag.type == "string":
        return raw[: tag.length].rstrip(b"\x00 ").decode("utf-8", errors="replace")
    code, _ = _NUMBERS[tag.type]
    (number,) = struct.unpack(f">{code}", raw)
    if tag.scale != 1.0 or tag.offset != 0.0:
        return number * tag.scale + tag.offset
    return number


def encode(tag: ModbusTagConfig, value: Value) -> list[int]:
    """Registers that decode to `value` (scale and offset undone); used by simulators and tests."""
    if tag.type == "bool":
        return [int(bool(value)) << (tag.bit or 0)]
    if tag.type == "string":
        text = str(value).encode("utf-8")[: tag.length].ljust(register_count(tag) * 2, b"\x00")
        raw = text
    else:
        code, _ = _NUMBERS[tag.type]
        number: float | int = value if isinstance(value, int | float) else 0  # type: ignore[assignment]
        if tag.scale != 1.0 or tag.offset != 0.0:
            number = (number - tag.offset) / tag.scale
        if code not in "fd":
            number = round(number)  # whole numbers stay exact: no detour through float
        raw = struct.pack(f">{code}", number)
    wire = _reorder(raw, tag.byte_order)
    return list(struct.unpack(f">{len(wire) // 2}H", wire))


def _reorder(data: bytes, byte_order: str) -> bytes:
    """Between wire order and big-endian value order; each order is its own inverse.

    ABCD: as is. DCBA: every byte reversed. BADC: the two bytes of each word swapped. CDAB: the
    words reversed, bytes within each word kept (for 16-bit values CDAB is ABCD, DCBA is BADC).
    """
    if byte_order == "ABCD":
        return data
    if byte_order == "DCBA":
        return data[::-1]
    swapped = bytearray(data)
    swapped[0::2], swapped[1::2] = data[1::2], data[0::2]
    if byte_order == "BADC":
        return bytes(swapped)
    return bytes(swapped[::-1])  # CDAB: reverse all, then swap back within words
