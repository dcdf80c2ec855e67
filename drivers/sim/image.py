"""A Modbus register image: four tables of a simulated device, written by models, read by a server."""

from __future__ import annotations

__all__ = ["RegisterImage"]

import struct
from dataclasses import dataclass, field

TABLES = ("coil", "discrete_input", "holding", "input")


@dataclass
class RegisterImage:
    """Addresses 0..size-1 of every table; bit tables hold 0/1, register tables 16-bit words."""

    size: int = 256
    tables: dict[str, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.tables = {name: [0] * self.size for name in TABLES}

    def set(self, table: str, address: int, value: bool | int) -> None:
        self.tables[table][address] = int(value)

    def set_words(self, table: str, address: int, words: list[int]) -> None:
        self.tables[table][address : address + len(words)] = words

    def set_u16(self, table: str, address: int, value: int) -> None:
        self.tables[table][address] = value & 0xFFFF

    def set_u32(self, table: str, address: int, value: int) -> None:
        self.set_words(
            table, address, list(struct.unpack(">2H", struct.pack(">I", value & 0xFFFFFFFF)))
        )

    def set_f32(self, table: str, address: int, value: float) -> None:
        self.set_words(table, address, list(struct.unpack(">2H", struct.pack(">f", value))))
