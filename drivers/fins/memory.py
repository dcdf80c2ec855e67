"""The memory of a simulated Omron CPU: word areas by FINS area code, answering reads as a PLC does.

Sizes follow a CJ2M (the A area only to A959): CIO 6144 words, W 512, H 1536, A 960, DM 32768,
timer and counter present values 4096 each, and `em_banks` EM banks of 32768 words. A read past an
area's end answers end code 1104, one starting beyond it 1103, one of an area the CPU lacks 1101
(W227).
"""

from __future__ import annotations

__all__ = ["FinsMemory"]

from dataclasses import dataclass

from drivers.fins.address import parse_address


@dataclass
class _Segment:
    code: int
    first: int
    data: bytearray

    @property
    def words(self) -> int:
        return len(self.data) // 2


class FinsMemory:
    """Word areas of a simulated CJ2 CPU, addressed by FINS word area code and word."""

    def __init__(self, em_banks: int = 3) -> None:
        sizes = [(0xB0, 0, 6144), (0xB1, 0, 512), (0xB2, 0, 1536), (0xB3, 0, 960)]
        sizes += [(0x82, 0, 32768), (0x89, 0, 4096), (0x89, 0x8000, 4096)]
        sizes += [(0xA0 + bank, 0, 32768) for bank in range(em_banks)]
        self.segments = [
            _Segment(code, first, bytearray(words * 2)) for code, first, words in sizes
        ]

    def write(self, address: str, data: bytes) -> None:
        """Words (big-endian, as on the wire) at an address as people write it: 'D100'."""
        where = parse_address(address)
        segment, end_code = self._segment(
            where.area.code, where.area.base + where.word, len(data) // 2
        )
        if segment is None:
            raise ValueError(f"{address}: not served (end code {end_code:04X})")
        start = (where.area.base + where.word - segment.first) * 2
        segment.data[start : start + len(data)] = data

    def set_bit(self, address: str, value: bool) -> None:
        where = parse_address(address)
        if where.bit is None:
            raise ValueError(f"{address} is not a bit")
        word = int.from_bytes(
            self.read_words(where.area.code, where.area.base + where.word, 1)[1], "big"
        )
        word = word | (1 << where.bit) if value else word & ~(1 << where.bit)
        self.write(f"{where.area.prefix}{where.word}", word.to_bytes(2, "big"))

    def read_words(self, code: int, first: int, count: int) -> tuple[int, bytes]:
        """(end code, data) of a word read as the PLC answers it."""
        segment, end_code = self._segment(code, first, count)
        if segment is None:
            return end_code, b""
        start = (first - segment.first) * 2
        return 0, bytes(segment.data[start : start + count * 2])

    def _segment(self, code: int, first: int, count: int) -> tuple[_Segment | None, int]:
        candidates = [s for s in self.segments if s.code == code]
        if not candidates:
            return None, 0x1101  # no such area
        for segment in candidates:
            if segment.first <= first < segment.first + segment.words:
                if first + count > segment.first + segment.words:
                    return None, 0x1104  # runs past the end
                return segment, 0
        return None, 0x1103  # first word beyond the area
