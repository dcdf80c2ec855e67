"""MELSEC device addresses as integrators write them (`D100`, `W1A`, `X1F`, `D100.3`) and back.

The device table follows the binary device codes of the MELSEC Communication Protocol Reference
Manual (SH-080008, "Devices" table; the same codes, two bytes wide, in the iQ-R form). Each device
is numbered in the radix that manual gives it: hexadecimal for X, Y, B, W, SB, SW, DX, DY and ZR,
decimal for the rest. iQ-F (FX5) numbers X and Y in octal, as GX Works3 shows them; the wire
carries the linear index either way (X17 on an FX5 is input 15, X1F on a Q is input 31).
"""

from __future__ import annotations

__all__ = [
    "DEVICES",
    "SERIES",
    "Address",
    "Device",
    "Series",
    "format_address",
    "max_number",
    "parse_address",
    "radix_of",
]

from dataclasses import dataclass
from typing import Literal

Series = Literal["q", "iqr", "iqf"]
SERIES: tuple[Series, ...] = ("q", "iqr", "iqf")


@dataclass(frozen=True, slots=True)
class Device:
    """One kind of device memory: its name, binary device code, unit and numbering."""

    name: str
    code: int
    bits: bool  # a bit device (X, M, ...) rather than a word device (D, W, ...)
    radix: int  # as written by people and in the manual's table; see radix_of for iQ-F X/Y
    meaning: str


def _table(*rows: tuple[str, int, bool, int, str]) -> dict[str, Device]:
    return {
        name: Device(name, code, bits, radix, meaning) for name, code, bits, radix, meaning in rows
    }


DEVICES: dict[str, Device] = _table(
    # bit devices
    ("X", 0x9C, True, 16, "input"),
    ("Y", 0x9D, True, 16, "output"),
    ("M", 0x90, True, 10, "internal relay"),
    ("L", 0x92, True, 10, "latch relay"),
    ("F", 0x93, True, 10, "annunciator"),
    ("V", 0x94, True, 10, "edge relay"),
    ("B", 0xA0, True, 16, "link relay"),
    ("S", 0x98, True, 10, "step relay"),
    ("SM", 0x91, True, 10, "special relay"),
    ("SB", 0xA1, True, 16, "link special relay"),
    ("DX", 0xA2, True, 16, "direct input"),
    ("DY", 0xA3, True, 16, "direct output"),
    ("TS", 0xC1, True, 10, "timer contact"),
    ("TC", 0xC0, True, 10, "timer coil"),
    ("SS", 0xC7, True, 10, "retentive timer contact"),
    ("SC", 0xC6, True, 10, "retentive timer coil"),
    ("CS", 0xC4, True, 10, "counter contact"),
    ("CC", 0xC3, True, 10, "counter coil"),
    # word devices
    ("D", 0xA8, False, 10, "data register"),
    ("W", 0xB4, False, 16, "link register"),
    ("R", 0xAF, False, 10, "file register"),
    ("ZR", 0xB0, False, 16, "file register, serial numbering"),
    ("SD", 0xA9, False, 10, "special register"),
    ("SW", 0xB5, False, 16, "link special register"),
    ("Z", 0xCC, False, 10, "index register"),
    ("TN", 0xC2, False, 10, "timer current value"),
    ("SN", 0xC8, False, 10, "retentive timer current value"),
    ("CN", 0xC5, False, 10, "counter current value"),
)
# GX Works3 (iQ-R, iQ-F) names the retentive timer ST; GX Works2 (Q, L) names it SS/SC/SN.
_ALIASES = {"STS": "SS", "STC": "SC", "STN": "SN"}
# Longest first, so SM is tried before S and DX before D.
_PREFIXES = sorted([*DEVICES, *_ALIASES], key=len, reverse=True)
_DIGITS = {8: "01234567", 10: "0123456789", 16: "0123456789ABCDEF"}
_RADIX_NAMES = {8: "octal", 10: "decimal", 16: "hexadecimal"}
_FORMS = (
    "a device and its number, e.g. D100, W1A, ZR1F00, M10, X1F, SM400, TN5, or a bit of a "
    "word device, e.g. D100.3 or D100.F (bit 0-F)"
)


def radix_of(device: Device, series: Series) -> int:
    """How the device's numbers are written on this series (only iQ-F X/Y differ: octal)."""
    if series == "iqf" and device.name in ("X", "Y"):
        return 8
    return device.radix


def max_number(series: Series) -> int:
    """The largest device number the 3E frame can carry: 3 bytes, or 4 in the iQ-R form."""
    return 0xFFFFFFFF if series == "iqr" else 0xFFFFFF


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed address: the device, its number (the linear index sent on the wire), a bit."""

    device: Device
    number: int
    bit: int | None = None  # bit 0-15 of a word device

    @property
    def word(self) -> int:
        """Index of the 16-bit word that holds this address (bit devices: 16 points a word)."""
        return self.number // 16 if self.device.bits else self.number

    @property
    def bit_in_word(self) -> int | None:
        """Which bit of that word, for a bit device or a `.b` address; None for a whole word."""
        return self.number % 16 if self.device.bits else self.bit


def parse_address(text: str, series: Series = "q") -> Address:
    """The address `text` names on `series`; ValueError naming it and the accepted forms."""
    cleaned = text.strip().upper()
    body, dot, bit_text = cleaned.partition(".")
    if body in DEVICES or body in _ALIASES:
        raise ValueError(
            f"{text!r} is not an address: the device number is missing; write {_FORMS}"
        )
    matches = [p for p in _PREFIXES if body.startswith(p) and len(body) > len(p)]
    if not matches:
        raise ValueError(f"{text!r} is not an address: unknown device; write {_FORMS}")
    problem = ""
    for prefix in matches:
        device = DEVICES[_ALIASES.get(prefix, prefix)]
        digits, radix = body[len(prefix) :], radix_of(device, series)
        if all(c in _DIGITS[radix] for c in digits):
            return _checked(text, device, int(digits, radix), dot, bit_text, series)
        problem = problem or (
            f"{device.name} ({device.meaning}) is numbered in {_RADIX_NAMES[radix]}"
            f"{' on ' + series if radix != device.radix else ''}, and {digits!r} is not"
        )
    raise ValueError(f"{text!r} is not an address: {problem}; write {_FORMS}")


def _checked(
    text: str, device: Device, number: int, dot: str, bit_text: str, series: Series
) -> Address:
    if number > max_number(series):
        raise ValueError(
            f"{text!r} is out of range: device numbers go up to "
            f"{format_address(device, max_number(series), series)} in the {series} frame"
        )
    if not dot:
        return Address(device, number)
    if device.bits:
        raise ValueError(
            f"{text!r}: '.bit' selects a bit of a word device; {device.name} is a bit device "
            "already, write it without '.'"
        )
    bit = _bit(bit_text)
    if bit is None:
        raise ValueError(
            f"{text!r}: the bit after '.' is 0-F (hexadecimal, or 10-15); write {_FORMS}"
        )
    return Address(device, number, bit)


def _bit(text: str) -> int | None:
    if len(text) == 1 and text in _DIGITS[16]:
        return int(text, 16)
    if len(text) == 2 and text.isdigit() and 10 <= int(text) <= 15:
        return int(text)
    return None


def format_address(
    device: Device, number: int, series: Series = "q", bit: int | None = None
) -> str:
    """The address as people write it: `D100`, `X1F` (or `X37` on iQ-F), `D100.A`."""
    radix = radix_of(device, series)
    digits = {8: f"{number:o}", 10: f"{number}", 16: f"{number:X}"}[radix]
    return f"{device.name}{digits}" + ("" if bit is None else f".{bit:X}")
