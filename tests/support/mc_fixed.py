"""A MELSEC PLC with fixed, known device memory, for our simulator and the independent peer alike.

The words are written out literally, as the PLC would hold them (low word first for 32- and
64-bit values, low byte first in each word), not computed by our codec. Bit devices are packed
16 points a word: point n is bit n % 16 of word n // 16.
"""

from __future__ import annotations

# device -> {word index: word}; the sizes (in words) of the memory served are in SIZES.
WORDS: dict[str, dict[int, int]] = {
    "D": {
        0: 0xFB2E,  # int16 -1234, uint16 64302
        1: 0xCD15,  # D1-D2 int32 123456789 = 0x075BCD15, low word first
        2: 0x075B,
        3: 0x0000,  # D3-D4 float32 3.5 = 0x40600000
        4: 0x4060,
        5: 0xFFFE,  # D5-D6 int32 -2
        6: 0xFFFF,
        10: 0x2D18,  # D10-D13 float64 pi = 0x400921FB54442D18
        11: 0x5444,
        12: 0x21FB,
        13: 0x4009,
        20: 0x5250,  # "PRESS-01": 'P' in the low byte of D20, 'R' in its high byte
        21: 0x5345,
        22: 0x2D53,
        23: 0x3130,
        30: 0x8005,  # bits 0, 2 and 15
        40: 800,  # 800 * 0.1 - 20 = 60.0
        50: 0x2800,  # D50-D51 uint32 4000000000 = 0xEE6B2800
        51: 0xEE6B,
        60: 0x0000,  # D60-D61 float32 NaN = 0x7FC00000
        61: 0x7FC0,
    },
    "W": {0x1A: 0x1234},
    "R": {5: 99},
    "ZR": {0x10: 7},
    "TN": {5: 42},
    "CN": {3: 17},
    "SD": {100: 5},
    "M": {0: 1 << 10, 6: 1 << 4},  # M10, M100
    "X": {1: 1 << 15},  # X1F
    "Y": {0: 1},  # Y0
    "B": {1: 1 << 10},  # B1A
    "L": {0: 1 << 5},  # L5
    "SM": {25: 1},  # SM400
}
SIZES = {"D": 1024, "W": 64, "R": 64, "ZR": 64, "TN": 16, "CN": 16, "SD": 256}
SIZES.update({"M": 16, "X": 8, "Y": 8, "B": 8, "L": 8, "SM": 64})

# name -> (tag config as in YAML, expected value)
FIXED_TAGS: dict[str, tuple[dict[str, object], object]] = {
    "i16": ({"address": "D0"}, -1234),
    "u16": ({"address": "D0", "type": "uint16"}, 64302),
    "i32": ({"address": "D1", "type": "int32"}, 123456789),
    "f32": ({"address": "D3", "type": "float32"}, 3.5),
    "neg32": ({"address": "D5", "type": "int32"}, -2),
    "f64": ({"address": "D10", "type": "float64"}, 3.141592653589793),
    "name": ({"address": "D20", "type": "string", "length": 8}, "PRESS-01"),
    "name_short": ({"address": "D20", "type": "string", "length": 5}, "PRESS"),
    "bit0": ({"address": "D30.0"}, True),
    "bit1": ({"address": "D30.1"}, False),
    "bit2": ({"address": "D30.2", "type": "bool"}, True),
    "bit15": ({"address": "D30.F"}, True),
    "scaled": ({"address": "D40", "type": "uint16", "scale": 0.1, "offset": -20}, 60.0),
    "u32": ({"address": "D50", "type": "uint32"}, 4000000000),
    "link_word": ({"address": "W1A"}, 0x1234),
    "file_reg": ({"address": "R5"}, 99),
    "zr": ({"address": "ZR10"}, 7),
    "timer": ({"address": "TN5"}, 42),
    "counter": ({"address": "CN3"}, 17),
    "special_reg": ({"address": "SD100"}, 5),
    "m10": ({"address": "M10"}, True),
    "m11": ({"address": "M11"}, False),
    "m100": ({"address": "M100"}, True),
    "x1f": ({"address": "X1F"}, True),
    "x0": ({"address": "X0"}, False),
    "y0": ({"address": "Y0"}, True),
    "b1a": ({"address": "B1A"}, True),
    "l5": ({"address": "L5"}, True),
    "sm400": ({"address": "SM400"}, True),
}
EXPECTED = {name: value for name, (_, value) in FIXED_TAGS.items()}
TAGS = {name: spec for name, (spec, _) in FIXED_TAGS.items()}


def memory() -> dict[str, list[int]]:
    """Device memory for our simulator: every device of SIZES, the known words in place."""
    image = {device: [0] * size for device, size in SIZES.items()}
    for device, words in WORDS.items():
        for index, word in words.items():
            image[device][index] = word
    return image
