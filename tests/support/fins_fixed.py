"""A simulated Omron PLC with fixed, known memory: words written out literally, as a CJ holds them.

Each tag states its address and type and the value a correct driver must decode; the words are not
computed by our codec. 32-bit values have their low word at the lower address (CJ/CS/NJ order).
"""

from __future__ import annotations

import math

from drivers.fins.sim import FinsMemory

# name -> (tag config as in YAML, expected decoded value)
FIXED_TAGS: dict[str, tuple[dict[str, object], object]] = {
    "i16": ({"address": "D0"}, -1234),
    "u16_raw": ({"address": "D0", "type": "uint16"}, 0xFB2E),
    "u32": ({"address": "D1", "type": "uint32"}, 123456789),
    "f32": ({"address": "D3", "type": "float32"}, 3.5),
    "f64": ({"address": "D5", "type": "float64"}, math.pi),
    "bcd": ({"address": "D9", "type": "bcd16"}, 1234),
    "bcd_long": ({"address": "D10", "type": "bcd32"}, 12345678),
    "name": ({"address": "D12", "type": "string", "length": 8}, "PRESS-01"),
    "i32": ({"address": "D16", "type": "int32"}, -53507),
    "scaled": ({"address": "D18", "type": "uint16", "scale": 0.1, "offset": -20}, 80.0),
    "d_bit0": ({"address": "D20.00"}, True),
    "d_bit1": ({"address": "D20.01"}, False),
    "d_bit15": ({"address": "D20.15"}, True),
    "run": ({"address": "CIO0.00"}, True),
    "door": ({"address": "CIO0.01"}, False),
    "cio_bit2": ({"address": "0.02"}, True),
    "cio_word": ({"address": "CIO100", "type": "uint16"}, 0x1234),
    "w_bit": ({"address": "W20.15"}, True),
    "h_bit": ({"address": "H5.00"}, True),
    "h_word": ({"address": "H6"}, -1),
    "a_word": ({"address": "A100", "type": "uint16"}, 258),
    "em_real": ({"address": "E0_100", "type": "float32"}, -12.25),
    "timer": ({"address": "T5", "type": "bcd16"}, 150),
    "counter": ({"address": "C7", "type": "bcd16"}, 42),
}

WORDS: dict[str, list[int]] = {
    "D0": [0xFB2E, 0xCD15, 0x075B, 0x0000, 0x4060, 0x2D18, 0x5444, 0x21FB, 0x4009, 0x1234],
    "D10": [0x5678, 0x1234, 0x5052, 0x4553, 0x532D, 0x3031, 0x2EFD, 0xFFFF, 0x03E8, 0x0000],
    "D20": [0x8001],
    "D200": [0x12AF],  # not BCD
    "CIO0": [0x0005],
    "CIO100": [0x1234],
    "W20": [0x8000],
    "H5": [0x0001, 0xFFFF],
    "A100": [0x0102],
    "E0_100": [0x0000, 0xC144],
    "T5": [0x0150],
    "C7": [0x0042],
}


def fixed_memory() -> FinsMemory:
    memory = FinsMemory()
    for address, values in WORDS.items():
        memory.write(address, b"".join(v.to_bytes(2, "big") for v in values))
    return memory
