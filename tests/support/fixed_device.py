"""A device with fixed, known register values: the same words the independent Node.js peer serves.

Each tag states its Modbus address and type and the value a correct driver must decode; the
register words are written out literally (as a PLC would hold them), not computed by our codec.
"""

from __future__ import annotations

from drivers.sim.image import RegisterImage

# name -> (tag config as in YAML, expected decoded value)
FIXED_TAGS: dict[str, tuple[dict[str, object], object]] = {
    "coil0": ({"table": "coil", "address": 0, "type": "bool"}, True),
    "coil1": ({"table": "coil", "address": 1, "type": "bool"}, False),
    "coil7": ({"table": "coil", "address": 7, "type": "bool"}, True),
    "di1": ({"table": "discrete_input", "address": 1, "type": "bool"}, True),
    "di2": ({"table": "discrete_input", "address": 2, "type": "bool"}, False),
    "i16": ({"table": "holding", "address": 0, "type": "int16"}, -1234),
    "u16_raw": ({"table": "holding", "address": 0, "type": "uint16"}, 0xFB2E),
    "u32_abcd": ({"table": "holding", "address": 1, "type": "uint32"}, 123456789),
    "f32_abcd": ({"table": "holding", "address": 3, "type": "float32"}, 3.5),
    "f32_cdab": (
        {"table": "holding", "address": 5, "type": "float32", "byte_order": "CDAB"},
        -12.25,
    ),
    "u32_badc": (
        {"table": "holding", "address": 7, "type": "uint32", "byte_order": "BADC"},
        123456789,
    ),
    "f64_pi": ({"table": "holding", "address": 10, "type": "float64"}, 3.141592653589793),
    "name": ({"table": "holding", "address": 20, "type": "string", "length": 8}, "PRESS-01"),
    "bit0": ({"table": "holding", "address": 30, "type": "bool", "bit": 0}, True),
    "bit1": ({"table": "holding", "address": 30, "type": "bool", "bit": 1}, False),
    "bit2": ({"table": "holding", "address": 30, "type": "bool", "bit": 2}, True),
    "ir0_scaled": (
        {"table": "input", "address": 0, "type": "uint16", "scale": 0.1, "offset": -20},
        80.0,
    ),
    "ir_u32": ({"table": "input", "address": 1, "type": "uint32"}, 100000),
    "ir_f32": ({"table": "input", "address": 3, "type": "float32"}, 25.0),
}

COILS = [1, 0, 1, 1, 0, 0, 0, 1]
DISCRETE_INPUTS = [0, 1, 0, 1, 1, 0, 1, 0]
HOLDING = {
    0: 0xFB2E,
    1: 0x075B,
    2: 0xCD15,
    3: 0x4060,
    4: 0x0000,
    5: 0x0000,
    6: 0xC144,
    7: 0x5B07,
    8: 0x15CD,
    10: 0x4009,
    11: 0x21FB,
    12: 0x5444,
    13: 0x2D18,
    20: 0x5052,
    21: 0x4553,
    22: 0x532D,
    23: 0x3031,
    30: 0x0005,
}
INPUT = {0: 1000, 1: 0x0001, 2: 0x86A0, 3: 0x41C8, 4: 0x0000}


def fixed_image() -> RegisterImage:
    image = RegisterImage(size=64)
    for address, bit in enumerate(COILS):
        image.set("coil", address, bit)
    for address, bit in enumerate(DISCRETE_INPUTS):
        image.set("discrete_input", address, bit)
    for address, word in HOLDING.items():
        image.set_u16("holding", address, word)
    for address, word in INPUT.items():
        image.set_u16("input", address, word)
    return image


def device_yaml(name: str, port: int, *, poll_interval_s: float = 0.2, extra: str = "") -> str:
    """A device block for a config file reading every fixed tag."""
    lines = [
        f"  {name}:",
        "    driver: modbus",
        "    host: 127.0.0.1",
        f"    port: {port}",
        f"    poll_interval_s: {poll_interval_s}",
        "    timeout_s: 1",
        *([f"    {extra}"] if extra else []),
        "    tags:",
    ]
    for tag, (spec, _) in FIXED_TAGS.items():
        inner = ", ".join(f"{k}: {v}" for k, v in spec.items())
        lines.append(f"      {tag}: {{{inner}}}")
    return "\n".join(lines) + "\n"
