"""Modbus register words to values and back: one table of types, one function for byte orders."""

from __future__ import annotations

__all__ = ["RequestDecoder", "decode", "encode", "register_count"]

import math
import struct
from collections.abc import Mapping, Sequence

from drivers.modbus.config import ModbusTagConfig
from drivers.nonfinite import refuse_nonfinite
from drivers.text import plain_text
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


class RequestDecoder:
    """Every tag of one register read decoded at once.

    The plain numbers (big-endian word order, no overlap with another tag) come out of one
    precompiled `struct` over the whole answer, with pad bytes for the gaps: one C call instead of
    a pack and an unpack per tag, which is most of the driver's work per poll at high rates.
    Other tags (bits of a register, strings, swapped byte orders, overlaps) go through `decode`.
    """

    def __init__(
        self, count: int, tags: Sequence[tuple[str, int]], config: Mapping[str, ModbusTagConfig]
    ) -> None:
        self._words = struct.Struct(f">{count}H")
        fields: list[str] = []
        names: list[str] = []
        scaled: list[tuple[int, float, float]] = []
        floats: list[int] = []  # float tags, and any tag a float scale or offset makes one
        slow: list[tuple[str, ModbusTagConfig, int]] = []
        end = 0  # byte after the last plain number so far
        for name, offset in sorted(tags, key=lambda t: t[1]):
            tag = config[name]
            # CDAB swaps words: within one word it is ABCD.
            order = "ABCD" if tag.size == 1 and tag.byte_order == "CDAB" else tag.byte_order
            plain = tag.type in _NUMBERS and order == "ABCD"
            if not plain or offset * 2 < end:
                slow.append((name, tag, offset))
                continue
            if offset * 2 > end:
                fields.append(f"{offset * 2 - end}x")
            code = _NUMBERS[tag.type][0]
            fields.append(code)
            is_scaled = tag.scale != 1.0 or tag.offset != 0.0
            if is_scaled:
                scaled.append((len(names), tag.scale, tag.offset))
            if code in "fd" or is_scaled:
                floats.append(len(names))
            names.append(name)
            end = (offset + tag.size) * 2
        self._plain = struct.Struct(">" + "".join(fields))
        self._names = tuple(names)
        self._types = tuple(config[name].type for name in names)
        self._scaled = scaled
        self._floats = floats
        self._slow = slow

    def decode(
        self, words: Sequence[int], values: dict[str, Value], failed: dict[str, str], where: str
    ) -> None:
        """Values into `values`; a float that is NaN or infinite into `failed` instead."""
        raw = self._words.pack(*words[: self._words.size // 2])
        numbers: list[Value] | tuple[Value, ...] = self._plain.unpack_from(raw)
        if self._scaled:
            numbers = list(numbers)
            for i, scale, offset in self._scaled:
                numbers[i] = numbers[i] * scale + offset  # type: ignore[operator]
        values.update(zip(self._names, numbers, strict=True))
        for i in self._floats:
            value = numbers[i]
            if not math.isfinite(value):  # type: ignore[arg-type]
                refuse_nonfinite(self._names[i], self._types[i], value, values, failed, where)
        for name, tag, offset in self._slow:
            value = decode(tag, words[offset : offset + tag.size])
            values[name] = value
            if isinstance(value, float) and not math.isfinite(value):
                refuse_nonfinite(name, tag.type, value, values, failed, where)


def register_count(tag: ModbusTagConfig) -> int:
    """How many 16-bit registers (or bits, on bit tables) the tag occupies."""
    return tag.size


def decode(tag: ModbusTagConfig, words: Sequence[int]) -> Value:
    """The tag's value from its registers as they came off the wire (first register first)."""
    if tag.type == "bool":
        return bool((words[0] >> (tag.bit or 0)) & 1)
    raw = _reorder(struct.pack(f">{len(words)}H", *words), tag.byte_order)
    if tag.type == "string":
        return plain_text(raw[: tag.length], tag.encoding or "utf-8")
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
