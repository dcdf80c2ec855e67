"""S7 addresses as integrators write them (DB1.DBW2, MW20, I0.0, EW64 …) and the types they hold.

`locate(address, type, length)` turns a tag's address and type into where its bytes are: the memory
area, the DB number, the first byte, how many bytes, and the bit for bit addresses. Everything a
person can get wrong raises ValueError naming the address and what would be accepted; the config
loader adds the file and line.
"""

from __future__ import annotations

__all__ = [
    "ACCEPTED_FORMS",
    "AREA_CODES",
    "S7Location",
    "S7Type",
    "locate",
    "parse_address",
]

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, get_args

S7Type = Literal[
    "bool",
    "byte",
    "usint",
    "sint",
    "char",
    "int",
    "uint",
    "word",
    "dint",
    "udint",
    "dword",
    "real",
    "time",
    "lint",
    "ulint",
    "lword",
    "lreal",
    "ltime",
    "string",
    "wstring",
]
TYPES: tuple[str, ...] = get_args(S7Type)

# Area codes of the S7 ANY pointer; E and A are the German names of inputs and outputs, and the
# V memory of an S7-200 (SMART) or a LOGO! is DB1 on the wire.
AREA_CODES = {"I": 0x81, "Q": 0x82, "M": 0x83, "DB": 0x84}
_AREA_ALIASES = {"E": "I", "A": "Q", "I": "I", "Q": "Q", "M": "M"}

# Types that fit each width letter; the first is the default (D has none: DINT and REAL are
# both common in double words, so a wrong guess would give plausible-looking nonsense). The
# 64-bit types of an S7-1500 have no width letter of their own: they start at a byte address,
# as TIA Portal shows them (offset 8.0, LReal), like strings.
_LONG = ("lint", "ulint", "lword", "lreal", "ltime")
_TYPES_OF_WIDTH: dict[str, tuple[str, ...]] = {
    "X": ("bool",),
    "B": ("byte", "usint", "sint", "char", *_LONG, "string", "wstring"),
    "W": ("int", "uint", "word"),
    "D": ("dint", "udint", "dword", "real", "time"),
    "S": ("string", "wstring"),
}
_DEFAULT_OF_WIDTH = {"X": "bool", "B": "byte", "W": "int", "S": "string"}
_WIDTH_NAMES = {
    "X": "a bit",
    "B": "a byte",
    "W": "a word (2 bytes)",
    "D": "a double word (4 bytes)",
    "S": "a string",
}
_FIXED_SIZES = {"X": 1, "B": 1, "W": 2, "D": 4}
_STRING_MAX = {"string": 254, "wstring": 16382}

MAX_BYTE = 65535
ACCEPTED_FORMS = (
    "DB1.DBX0.0, DB1.DBB2, DB1.DBW2, DB1.DBD4, DB1.DBS10 (string); M10.1, MB10, MW20, MD30; "
    "I0.0, IB0, IW64, ID0 (or E0.0, EB0, EW64, ED0); Q0.0, QB0, QW0, QD0 (or A0.0, AB0, AW0, AD0); "
    "V10.0, VB10, VW10, VD10 (S7-200/LOGO! V memory, which is DB1)"
)

_DB = re.compile(r"DB(\d+)\.DB([XBWDS])(\d+)(?:\.(\d+))?")
_AREA = re.compile(r"([MIEQAV])([XBWD]?)(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, slots=True)
class S7Address:
    """An address as parsed: area ('DB', 'M', 'I', 'Q'), DB number, byte, bit and width letter."""

    area: str
    db: int
    byte: int
    bit: int | None
    width: str


@dataclass(frozen=True, slots=True)
class S7Location:
    """Where a tag's bytes are and how to read them."""

    area: str  # "DB", "M", "I" or "Q"
    db: int  # 0 outside DBs
    start: int  # first byte
    size: int  # bytes
    bit: int | None  # for bool
    type: str
    length: int | None  # declared maximum of a string, in characters

    @property
    def area_code(self) -> int:
        return AREA_CODES[self.area]


def parse_address(text: str) -> S7Address:
    """The parts of an S7 address; ValueError with the accepted forms if it is not one."""
    # STEP 7 writes "DB1.DBX 0.0" and "MW 10", TIA Portal "%DB1.DBX0.0" and "%MW10"; a space
    # between two digits ("MW1 0") is a typing slip, not a number to join.
    if re.search(r"\d\s+\d", text):
        raise ValueError(f"{text!r}: a space inside a number; write it without one")
    compact = re.sub(r"\s+", "", text).upper().removeprefix("%")
    if found := _DB.fullmatch(compact):
        db_text, width, byte_text, bit_text = found.groups()
        db = int(db_text)
        if db == 0:
            raise ValueError(f"{text!r}: there is no DB0, DB numbers start at 1")
        if db > 65535:
            raise ValueError(f"{text!r}: DB numbers go up to 65535")
        return _checked(text, "DB", db, width, byte_text, bit_text)
    if found := _AREA.fullmatch(compact):
        letter, width, byte_text, bit_text = found.groups()
        if letter == "V":  # S7-200 (SMART) and LOGO! V memory
            if not width and bit_text is None:
                raise ValueError(
                    f"{text!r} is ambiguous: write VB{byte_text} for the byte or "
                    f"V{byte_text}.0 for a bit"
                )
            return _checked(text, "DB", 1, width or "X", byte_text, bit_text)
        return _checked(text, _AREA_ALIASES[letter], 0, width or "X", byte_text, bit_text)
    raise ValueError(f"{text!r} is not an S7 address; write one of: {ACCEPTED_FORMS}")


def _checked(
    text: str, area: str, db: int, width: str, byte_text: str, bit_text: str | None
) -> S7Address:
    byte = int(byte_text)
    if byte > MAX_BYTE:
        raise ValueError(f"{text!r}: byte {byte} is beyond {MAX_BYTE}")
    if width == "X":
        if bit_text is None:
            raise ValueError(f"{text!r} names a bit: add its number 0-7, e.g. {text.strip()}.0")
        bit = int(bit_text)
        if bit > 7:
            raise ValueError(f"{text!r}: bit {bit} does not exist, a byte has bits 0-7")
        return S7Address(area, db, byte, bit, width)
    address = S7Address(area, db, byte, None, width)
    if bit_text is not None:
        bit_form = _example(address, "X").removesuffix(".0") + f".{bit_text}"
        raise ValueError(
            f"{text!r}: a bit number goes with bit addresses only, such as {bit_form}; "
            f"S7 is big-endian: bit n (0-7) of the word at byte {byte} is in byte {byte + 1}"
        )
    return address


@lru_cache(maxsize=4096)
def locate(text: str, type_: str | None = None, length: int | None = None) -> S7Location:
    """Where the tag at `text` of `type_` is; ValueError if the two do not fit together."""
    address = parse_address(text)
    width = address.width
    allowed = _TYPES_OF_WIDTH[width]
    if type_ is None:
        if width not in _DEFAULT_OF_WIDTH:
            raise ValueError(
                f"{text!r} is a double word: say what it holds with type: "
                f"{', '.join(allowed)} (DINT and REAL are both common in D addresses)"
            )
        type_ = _DEFAULT_OF_WIDTH[width]
    if type_ not in TYPES:
        raise ValueError(f"type {type_!r} is not an S7 type; write one of: {', '.join(TYPES)}")
    if type_ not in allowed:
        raise ValueError(_misfit(text, address, type_))
    size = _size(text, type_, width, length)
    return S7Location(
        address.area, address.db, address.byte, size, address.bit, type_, _length(type_, length)
    )


def _size(text: str, type_: str, width: str, length: int | None) -> int:
    if type_ not in _STRING_MAX:
        if length is not None:
            raise ValueError(f"'length' goes with types string and wstring, not with {type_}")
        return 8 if type_ in _LONG else _FIXED_SIZES[width]
    maximum = _STRING_MAX[type_]
    if length is None:
        raise ValueError(
            f"{text!r}: type {type_} needs 'length', its declared maximum in characters "
            f"(20 for {type_.upper()}[20]; 254 for a plain {type_.upper()})"
        )
    if not 1 <= length <= maximum:
        raise ValueError(f"{text!r}: a {type_} holds 1 to {maximum} characters, not {length}")
    # STRING: max and actual length, one byte each; WSTRING: the same as two words.
    return 2 + length if type_ == "string" else 4 + 2 * length


def _length(type_: str, length: int | None) -> int | None:
    return length if type_ in _STRING_MAX else None


def _misfit(text: str, address: S7Address, type_: str) -> str:
    width = address.width
    allowed = ", ".join(_TYPES_OF_WIDTH[width])
    message = (
        f"type {type_} does not fit {text!r}, which is {_WIDTH_NAMES[width]}: "
        f"types for it are {allowed}"
    )
    for other, types in _TYPES_OF_WIDTH.items():
        if type_ in types and other != "S":
            return f"{message}; type {type_} needs {_example(address, other)}"
    return message


def _example(address: S7Address, width: str) -> str:
    bit = ".0" if width == "X" else ""
    if address.area == "DB":
        return f"DB{address.db}.DB{width}{address.byte}{bit}"
    letter = "" if width == "X" else width
    return f"{address.area}{letter}{address.byte}{bit}"
