"""Omron memory words to values and back.

FINS sends each word high byte first. Values of two or four words are stored low word first on
CJ/CS/NJ (a DINT in D100-D101 has its low 16 bits in D100), and so are BCD doubles. Strings keep
their first character in the high byte of the first word, as the PLC's string instructions do.
"""

from __future__ import annotations

__all__ = ["RequestDecoder", "decode", "encode"]

import math
import struct
from collections.abc import Mapping, Sequence

from drivers.fins.config import FinsTagConfig
from drivers.text import plain_text
from edge_agent.samples import Value

_NUMBERS = {
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "float32": "f",
    "float64": "d",
}


def decode(tag: FinsTagConfig, data: bytes) -> Value:
    """The tag's value from its words as they came off the wire; ValueError if not BCD."""
    if tag.type == "bool":
        word = int.from_bytes(data[:2], "big")
        return bool((word >> (tag.location.bit or 0)) & 1)
    if tag.type == "string":
        return plain_text(data[: tag.length], tag.encoding or "utf-8")
    raw = _value_order(data, tag.word_order)
    number: int | float
    if tag.type in ("bcd16", "bcd32"):
        number = _from_bcd(raw)
    else:
        (number,) = struct.unpack(f">{_NUMBERS[tag.type]}", raw)
    if tag.scale != 1.0 or tag.offset != 0.0:
        return number * tag.scale + tag.offset
    return number


def encode(tag: FinsTagConfig, value: Value) -> bytes:
    """Words that decode to `value` (scale and offset undone); for simulators and tests."""
    if tag.type == "bool":
        return (int(bool(value)) << (tag.location.bit or 0)).to_bytes(2, "big")
    if tag.type == "string":
        return str(value).encode("utf-8")[: tag.length].ljust(tag.words * 2, b"\x00")
    number: float = value if isinstance(value, int | float) else 0.0
    if tag.scale != 1.0 or tag.offset != 0.0:
        number = (number - tag.offset) / tag.scale
    if tag.type in ("bcd16", "bcd32"):
        raw = _to_bcd(round(number), tag.words * 2)
    elif tag.type in ("float32", "float64"):
        raw = struct.pack(f">{_NUMBERS[tag.type]}", number)
    else:
        raw = struct.pack(f">{_NUMBERS[tag.type]}", round(number))
    return _value_order(raw, tag.word_order)


class RequestDecoder:
    """Every tag of one memory area read, decoded from the answer's data at its word offset."""

    def __init__(
        self, tags: Sequence[tuple[str, int]], config: Mapping[str, FinsTagConfig]
    ) -> None:
        self._tags = [
            (name, config[name], offset * 2, (offset + config[name].words) * 2)
            for name, offset in tags
        ]

    def decode(
        self, data: bytes, values: dict[str, Value], failed: dict[str, str], where: str
    ) -> None:
        """Values into `values`; a tag whose words hold no valid value into `failed` instead."""
        for name, tag, start, end in self._tags:
            try:
                value = decode(tag, data[start:end])
            except ValueError as exc:
                failed[name] = f"{where}: {tag.address} {exc}"
                continue
            if isinstance(value, float) and not math.isfinite(value):
                # NaN or infinity: nothing a chart or a rule can use, and not valid JSON.
                failed[name] = f"{where}: {tag.address} {tag.type} is {value}"
                continue
            values[name] = value


def _value_order(data: bytes, word_order: str) -> bytes:
    """Between wire order and big-endian value order (reversing words is its own inverse)."""
    if word_order == "high_first" or len(data) <= 2:
        return data
    return b"".join(data[i : i + 2] for i in range(len(data) - 2, -1, -2))


def _from_bcd(raw: bytes) -> int:
    digits = raw.hex()
    if not digits.isdigit():
        raise ValueError(f"is not BCD (0x{digits.upper()})")
    return int(digits)


def _to_bcd(number: int, size: int) -> bytes:
    if not 0 <= number < 10 ** (size * 2):
        raise ValueError(f"{number} does not fit in {size * 2} BCD digits")
    return bytes.fromhex(f"{number:0{size * 2}d}")
