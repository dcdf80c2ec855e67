"""S7 bytes to values and back: one table of types. S7 is big-endian throughout.

TIME (signed milliseconds) and LTIME (signed nanoseconds) are read as seconds, a float:
T#1M30S500MS is 90.5. STRING is one byte a character (Latin-1 unless the tag names another code
page) after its two header bytes (declared maximum, actual length); WSTRING is UTF-16 after two
header words. A header that cannot be right (an actual length above the maximum) is an error for that tag,
not a value: it usually means the address or the type is wrong.
"""

from __future__ import annotations

__all__ = ["DecodeError", "decode", "encode"]

import math
import struct

from drivers.s7.address import S7Location
from edge_agent.samples import Value

# type -> struct code of its bytes
_NUMBERS: dict[str, str] = {
    "byte": "B",
    "usint": "B",
    "sint": "b",
    "int": "h",
    "uint": "H",
    "word": "H",
    "dint": "i",
    "udint": "I",
    "dword": "I",
    "real": "f",
    "time": "i",
    "lint": "q",
    "ulint": "Q",
    "lword": "Q",
    "lreal": "d",
    "ltime": "q",
}
_STRUCTS = {name: struct.Struct(">" + code) for name, code in _NUMBERS.items()}


class DecodeError(ValueError):
    """The bytes cannot be a value of the tag's type; the message says why."""


def decode(
    location: S7Location,
    data: bytes,
    scale: float = 1.0,
    offset: float = 0.0,
    encoding: str = "latin-1",
) -> Value:
    """The tag's value from exactly its bytes (`location.size` of them); `encoding` for STRING
    and CHAR (the S7 types are one byte a character, in whatever code page the writer used)."""
    kind = location.type
    if kind == "bool":
        return bool((data[0] >> (location.bit or 0)) & 1)
    if kind == "char":
        return data[:1].decode(encoding, errors="replace")
    if kind == "string":
        return _string(data, location.length or 0, encoding)
    if kind == "wstring":
        return _wstring(data, location.length or 0)
    (number,) = _STRUCTS[kind].unpack(data)
    if kind == "time":
        number = number / 1000.0
    elif kind == "ltime":
        number = number / 1e9  # nanoseconds
    elif kind in ("real", "lreal") and not math.isfinite(number):
        raise DecodeError(f"{kind} is {number}")
    if scale != 1.0 or offset != 0.0:
        number = number * scale + offset
        if not math.isfinite(number):
            raise DecodeError(f"{kind} scaled is {number}")
    return number  # type: ignore[no-any-return]


def _string(data: bytes, length: int, encoding: str) -> str:
    declared, actual = data[0], data[1]
    if actual > declared:
        raise DecodeError(
            f"STRING header says {actual} characters in a STRING[{declared}]: "
            "is there a STRING at this address?"
        )
    return data[2 : 2 + min(actual, length)].decode(encoding, errors="replace")


def _wstring(data: bytes, length: int) -> str:
    declared, actual = struct.unpack_from(">HH", data)
    if actual > declared:
        raise DecodeError(
            f"WSTRING header says {actual} characters in a WSTRING[{declared}]: "
            "is there a WSTRING at this address?"
        )
    return data[4 : 4 + 2 * min(actual, length)].decode("utf-16-be", errors="replace")


def encode(location: S7Location, value: Value, scale: float = 1.0, offset: float = 0.0) -> bytes:
    """Bytes that decode to `value` (for a bool: its byte with only that bit set).

    For simulators and tests; the agent itself never writes to a PLC.
    """
    kind = location.type
    if kind == "bool":
        return bytes([int(bool(value)) << (location.bit or 0)])
    if kind == "char":
        return str(value).encode("latin-1")[:1].ljust(1, b"\x00")
    length = location.length or 0
    if kind == "string":
        text = str(value).encode("latin-1")[:length]
        return bytes([length, len(text)]) + text.ljust(length, b"\x00")
    if kind == "wstring":
        body = str(value).encode("utf-16-be")[: 2 * length]
        return struct.pack(">HH", length, len(body) // 2) + body.ljust(2 * length, b"\x00")
    number = float(value) if isinstance(value, int | float) else 0.0
    if scale != 1.0 or offset != 0.0:
        number = (number - offset) / scale
    if kind == "time":
        return _STRUCTS[kind].pack(round(number * 1000))
    if kind == "ltime":
        return _STRUCTS[kind].pack(round(number * 1e9))
    if kind in ("real", "lreal"):
        return _STRUCTS[kind].pack(number)
    whole = value if isinstance(value, int) and scale == 1.0 and offset == 0.0 else round(number)
    return _STRUCTS[kind].pack(whole)
