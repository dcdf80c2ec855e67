"""Omron addresses as integrators write them (D100, CIO10.01, W20, E0_100, T5) and their FINS codes.

Memory area codes for word access are those of the CS/CJ/CP/NJ family (FINS Commands Reference
Manual W227, CJ2 CPU manual W342): CIO B0, W B1, H B2, A B3, D 82, timer/counter present values
89 (counters from 8000 hex), EM banks 0-F A0-AF and banks 10-18 hex 60-68. Bits are read as the
words that hold them, so only word codes are ever sent.

Word limits are those of the largest CPUs of the family (CJ2H): a smaller CPU answers a word past
its own end with end code 1103, which the driver reports for the tags of that request.
"""

from __future__ import annotations

__all__ = ["ADDRESS_FORMS", "Area", "FinsAddress", "parse_address"]

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Area:
    """One memory area: how people write it, its FINS word code, and its size in words."""

    prefix: str  # as written before the word number: "D", "CIO", "E0_", "T"
    name: str  # for messages: "DM", "EM bank 0", "timer PV"
    code: int  # FINS memory area code for word access
    words: int
    base: int = 0  # added to the word number on the wire (counters start at 8000 hex)
    bits: bool = True  # whether a bit of a word may be addressed (.00-.15)

    def describe(self, first: int, count: int) -> str:
        """'D100-D109' for messages."""
        last = first + count - 1
        return (
            f"{self.prefix}{first}" if count == 1 else f"{self.prefix}{first}-{self.prefix}{last}"
        )


_CIO = Area("CIO", "CIO", 0xB0, 6144)
_AREAS: dict[str, Area] = {
    "CIO": _CIO,
    "": _CIO,  # a bare number is a CIO word, as CX-Programmer shows it
    "W": Area("W", "work area (W)", 0xB1, 512),
    "WR": Area("W", "work area (W)", 0xB1, 512),
    "H": Area("H", "holding area (H)", 0xB2, 1536),
    "HR": Area("H", "holding area (H)", 0xB2, 1536),
    "A": Area("A", "auxiliary area (A)", 0xB3, 11536),
    "AR": Area("A", "auxiliary area (A)", 0xB3, 11536),
    "D": Area("D", "DM", 0x82, 32768),
    "DM": Area("D", "DM", 0x82, 32768),
    "T": Area("T", "timer PV", 0x89, 4096, bits=False),
    "TIM": Area("T", "timer PV", 0x89, 4096, bits=False),
    "C": Area("C", "counter PV", 0x89, 4096, base=0x8000, bits=False),
    "CNT": Area("C", "counter PV", 0x89, 4096, base=0x8000, bits=False),
}
_EM_BANKS = 0x19  # banks 0 to 18 hex (CJ2H); CS/CJ1 have 0 to C


def _em_bank(bank: int) -> Area:
    code = 0xA0 + bank if bank < 0x10 else 0x60 + bank - 0x10
    return Area(f"E{bank:X}_", f"EM bank {bank:X}", code, 32768)


ADDRESS_FORMS = (
    "D100 (DM), CIO10 or 10 (CIO), W20, H5, A100, E0_100 (EM bank 0, bank in hex), "
    "T5 / C5 (timer / counter present value); a bit with two digits .00-.15: CIO10.01, W20.15, "
    "D100.03"
)

_PATTERN = re.compile(
    r"(?:(?P<area>CIO|DM|D|WR|W|HR|H|AR|A|TIM|T|CNT|C)|EM?(?P<bank>[0-9A-F]{1,2})_)?"
    r"(?P<word>\d{1,5})(?:\.(?P<bit>\d+))?",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class FinsAddress:
    area: Area
    word: int
    bit: int | None = None

    def __str__(self) -> str:
        bit = "" if self.bit is None else f".{self.bit:02d}"
        return f"{self.area.prefix}{self.word}{bit}"


@lru_cache(maxsize=4096)
def parse_address(text: str) -> FinsAddress:
    """The address `text` names; ValueError naming it and the accepted forms otherwise."""
    found = _PATTERN.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not an Omron address: write {ADDRESS_FORMS}")
    if found["bank"] is not None:
        bank = int(found["bank"], 16)
        if bank >= _EM_BANKS:
            raise ValueError(f"{text!r}: EM banks are 0 to 18 (hex), as in E0_100 or E18_5")
        area = _em_bank(bank)
    else:
        area = _AREAS[(found["area"] or "").upper()]
    word = int(found["word"])
    if word >= area.words:
        raise ValueError(
            f"{text!r}: the {area.name} ends at {area.prefix}{area.words - 1} "
            f"(the largest CPUs; smaller ones end earlier)"
        )
    return FinsAddress(area, word, _bit(text, area, found["bit"]))


def _bit(text: str, area: Area, digits: str | None) -> int | None:
    if digits is None:
        return None
    if not area.bits:
        raise ValueError(
            f"{text!r}: a {area.name} is read as a word; its completion flag cannot be read here"
        )
    if len(digits) != 2 or int(digits) > 15:
        raise ValueError(
            f"{text!r}: Omron writes a bit with two digits from .00 to .15 "
            f"(bit 1 of CIO10 is CIO10.01, bit 10 is CIO10.10)"
        )
    return int(digits)
