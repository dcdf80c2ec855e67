"""MELSEC words to values and back.

MELSEC is little-endian throughout: each word goes low byte first, and a 32- or 64-bit value
keeps its low word at the lower device number (DMOV K100000 D0 puts 0x86A0 in D0 and 0x0001 in
D1). So the bytes of a word-unit answer are the value's bytes in little-endian order, and a
string's characters come in order, the first in the low byte of the first word.
"""

from __future__ import annotations

__all__ = ["RequestDecoder", "decode", "encode"]

import math
import struct
from collections.abc import Mapping, Sequence

from drivers.mc.config import McTagConfig, tag_words
from drivers.nonfinite import refuse_nonfinite
from drivers.text import plain_text
from edge_agent.samples import Value

_CODES = {
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "float32": "f",
    "float64": "d",
}


class RequestDecoder:
    """Every tag of one word-unit read decoded at once.

    Numbers come out of one precompiled `struct` over the whole answer, with pad bytes for the
    gaps; bits, strings and numbers that overlap another number are decoded one by one.
    """

    def __init__(
        self,
        tags: Sequence[tuple[str, int]],
        config: Mapping[str, McTagConfig],
        bits: Mapping[str, int],
    ) -> None:
        fields: list[str] = []
        names: list[str] = []
        scaled: list[tuple[int, float, float]] = []
        floats: list[int] = []  # float tags, and any tag a float scale or offset makes one
        self._bits: list[tuple[str, int, int]] = []  # name, byte offset, bit
        self._slow: list[tuple[str, McTagConfig, int]] = []
        end = 0  # byte after the last number so far
        for name, offset in sorted(tags, key=lambda t: t[1]):
            tag = config[name]
            kind = tag.value_type
            if kind == "bool":
                self._bits.append((name, offset * 2, bits[name]))
                continue
            if kind == "string" or offset * 2 < end:
                self._slow.append((name, tag, offset))
                continue
            if offset * 2 > end:
                fields.append(f"{offset * 2 - end}x")
            fields.append(_CODES[kind])
            if tag.scale != 1.0 or tag.offset != 0.0:
                scaled.append((len(names), tag.scale, tag.offset))
                floats.append(len(names))
            elif kind.startswith("float"):
                floats.append(len(names))
            names.append(name)
            end = (offset + tag_words(tag)) * 2
        self._numbers = struct.Struct("<" + "".join(fields))
        self._names = tuple(names)
        self._types = tuple(config[name].value_type for name in names)
        self._scaled = scaled
        self._floats = floats

    def decode(
        self, data: bytes, values: dict[str, Value], failed: dict[str, str], where: str
    ) -> None:
        """Values into `values`; a float that is NaN or infinite into `failed` instead."""
        numbers: list[Value] | tuple[Value, ...] = self._numbers.unpack_from(data)
        if self._scaled:
            numbers = list(numbers)
            for i, scale, offset in self._scaled:
                numbers[i] = numbers[i] * scale + offset  # type: ignore[operator]
        values.update(zip(self._names, numbers, strict=True))
        for i in self._floats:
            if not math.isfinite(numbers[i]):  # type: ignore[arg-type]
                refuse_nonfinite(self._names[i], self._types[i], numbers[i], values, failed, where)
        for name, at, bit in self._bits:
            values[name] = bool(data[at + bit // 8] >> (bit % 8) & 1)
        for name, tag, offset in self._slow:
            value = decode(tag, data[offset * 2 : (offset + tag_words(tag)) * 2])
            values[name] = value
            if isinstance(value, float) and not math.isfinite(value):
                refuse_nonfinite(name, tag.value_type, value, values, failed, where)


def decode(tag: McTagConfig, data: bytes, bit: int = 0) -> Value:
    """The tag's value from its words as they came off the wire; `bit` for bool tags."""
    kind = tag.value_type
    if kind == "bool":
        return bool(int.from_bytes(data[:2], "little") >> bit & 1)
    if kind == "string":
        return plain_text(data[: tag.length], tag.encoding or "utf-8")
    (number,) = struct.unpack_from("<" + _CODES[kind], data)
    if tag.scale != 1.0 or tag.offset != 0.0:
        return number * tag.scale + tag.offset  # type: ignore[no-any-return]
    return number  # type: ignore[no-any-return]


def encode(tag: McTagConfig, value: Value, bit: int = 0) -> list[int]:
    """Words that decode to `value` (scale and offset undone); for simulators and tests.

    A bool gives the one word with only its bit set.
    """
    kind = tag.value_type
    if kind == "bool":
        return [int(bool(value)) << bit]
    if kind == "string":
        raw = str(value).encode("utf-8")[: tag.length].ljust(tag_words(tag) * 2, b"\x00")
    else:
        number: float | int = value if isinstance(value, int | float) else 0
        if tag.scale != 1.0 or tag.offset != 0.0:
            number = (number - tag.offset) / tag.scale
        if kind.startswith("int") or kind.startswith("uint"):
            number = round(number)  # whole numbers stay exact: no detour through float
        raw = struct.pack("<" + _CODES[kind], number)
    return list(struct.unpack(f"<{len(raw) // 2}H", raw))
