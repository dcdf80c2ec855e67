"""MELSEC addresses, the 3E request frame, the word codec and the configuration: no sockets."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from drivers.mc.address import DEVICES, SERIES, format_address, max_number, parse_address
from drivers.mc.codec import RequestDecoder, decode, encode
from drivers.mc.config import McDeviceConfig, McTagConfig
from drivers.mc.frame import Route, batch_read, describe_end_code
from drivers.mc.plan import build_plan, tag_bits


@pytest.mark.parametrize(
    ("text", "series", "device", "number", "bit"),
    [
        ("D100", "q", "D", 100, None),
        ("d100", "q", "D", 100, None),
        (" D100 ", "q", "D", 100, None),
        ("W1A", "q", "W", 0x1A, None),
        ("R0", "q", "R", 0, None),
        ("ZR1F00", "q", "ZR", 0x1F00, None),  # hexadecimal, as SH-080008's device table
        ("SD203", "q", "SD", 203, None),
        ("SW1F", "q", "SW", 0x1F, None),
        ("TN5", "q", "TN", 5, None),
        ("CN199", "q", "CN", 199, None),
        ("STN3", "iqr", "SN", 3, None),  # GX Works3's name for the retentive timer
        ("SN3", "q", "SN", 3, None),
        ("Z9", "q", "Z", 9, None),
        ("M10", "q", "M", 10, None),
        ("X1F", "q", "X", 31, None),
        ("Y0", "q", "Y", 0, None),
        ("X1F", "iqr", "X", 31, None),
        ("X17", "iqf", "X", 15, None),  # octal on FX5
        ("Y20", "iqf", "Y", 16, None),
        ("B1A", "q", "B", 26, None),
        ("BA", "q", "B", 10, None),  # B and a hexadecimal digit, not a device "BA"
        ("L5", "q", "L", 5, None),
        ("F0", "q", "F", 0, None),
        ("SM400", "q", "SM", 400, None),
        ("SB1F", "q", "SB", 31, None),
        ("S10", "q", "S", 10, None),
        ("DX10", "q", "DX", 16, None),
        ("DY0", "q", "DY", 0, None),
        ("TS3", "q", "TS", 3, None),
        ("CC3", "q", "CC", 3, None),
        ("D100.3", "q", "D", 100, 3),
        ("D100.F", "q", "D", 100, 15),
        ("D100.f", "q", "D", 100, 15),
        ("D100.15", "q", "D", 100, 15),
        ("W1A.A", "q", "W", 26, 10),
        ("D16777215", "q", "D", 0xFFFFFF, None),
        ("D4294967295", "iqr", "D", 0xFFFFFFFF, None),
    ],
)
def test_addresses(text: str, series: Any, device: str, number: int, bit: int | None) -> None:
    address = parse_address(text, series)
    assert (address.device.name, address.number, address.bit) == (device, number, bit)


@pytest.mark.parametrize(
    ("text", "series", "message"),
    [
        ("Q100", "q", "'Q100' is not an address: unknown device; write a device and its number"),
        ("100", "q", "unknown device"),
        ("", "q", "unknown device"),
        ("D", "q", "the device number is missing"),
        ("D1F", "q", "D \\(data register\\) is numbered in decimal, and '1F' is not"),
        ("M1A", "q", "M \\(internal relay\\) is numbered in decimal, and '1A' is not"),
        ("XG", "q", "X \\(input\\) is numbered in hexadecimal, and 'G' is not"),
        ("X18", "iqf", "X \\(input\\) is numbered in octal on iqf, and '18' is not"),
        ("D-1", "q", "numbered in decimal"),
        ("D 100", "q", "numbered in decimal"),
        ("D16777216", "q", "'D16777216' is out of range: device numbers go up to D16777215"),
        ("W1000000", "q", "up to WFFFFFF"),
        ("D4294967296", "iqr", "up to D4294967295"),
        ("D100.16", "q", "the bit after '.' is 0-F"),
        ("D100.", "q", "the bit after '.' is 0-F"),
        ("D100.1.2", "q", "the bit after '.' is 0-F"),
        ("M10.1", "q", "M is a bit device already, write it without '.'"),
    ],
)
def test_bad_addresses_name_themselves_and_the_forms(text: str, series: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_address(text, series)
    assert repr(text) in str(info.value)


@given(
    st.sampled_from(list(DEVICES.values())),
    st.sampled_from(SERIES),
    st.integers(min_value=0, max_value=0xFFFFFFFF),
    st.one_of(st.none(), st.integers(min_value=0, max_value=15)),
)
def test_format_then_parse_is_the_same_address(
    device: Any, series: Any, number: int, bit: Any
) -> None:
    number %= max_number(series) + 1
    bit = None if device.bits else bit
    text = format_address(device, number, series, bit)
    address = parse_address(text, series)
    assert (address.device, address.number, address.bit) == (device, number, bit)


# --------------------------------------------------------------------------------------- frames


def test_batch_read_frame_as_in_the_manual() -> None:
    # SH-080008's example: D100 to D102 in word units, monitoring timer 10H, to the local CPU.
    frame = batch_read(Route(), 0x10, 0xA8, 100, 3)
    assert frame == bytes.fromhex("5000 00 ff ff03 00 0c00 1000 0104 0000 640000 a8 0300")


def test_batch_read_frame_iqr_form() -> None:
    frame = batch_read(Route(), 0x10, 0xA8, 100, 3, series="iqr")
    assert frame == bytes.fromhex("5000 00 ff ff03 00 0e00 1000 0104 0200 64000000 a800 0300")


def test_batch_read_frame_bit_units_and_route() -> None:
    frame = batch_read(Route(1, 2, 0x03E0, 3), 4, 0x9C, 0x1F0, 8, bit_units=True)
    assert frame == bytes.fromhex("5000 01 02 e003 03 0c00 0400 0104 0100 f00100 9c 0800")


def test_end_codes_read_as_advice() -> None:
    assert describe_end_code(0xC056).startswith("end code 0xC056: read past the last address")
    assert describe_end_code(0xC059).endswith("(check series: iqr only for iQ-R)")
    assert describe_end_code(0x1234) == "end code 0x1234: refused by the PLC (see its manual)"


# ---------------------------------------------------------------------------------------- codec


def tag(**kw: Any) -> McTagConfig:
    return McTagConfig.model_validate({"address": "D0", **kw})


@pytest.mark.parametrize(
    ("spec", "words", "value"),
    [
        ({}, [0xFB2E], -1234),
        ({"type": "uint16"}, [0xFB2E], 64302),
        ({"type": "int32"}, [0x86A0, 0x0001], 100000),  # low word first, as DMOV K100000 D0
        ({"type": "uint32"}, [0x2800, 0xEE6B], 4000000000),
        ({"type": "float32"}, [0x0000, 0x4060], 3.5),
        ({"type": "float32"}, [0x0000, 0xC148], -12.5),
        ({"type": "float64"}, [0x2D18, 0x5444, 0x21FB, 0x4009], math.pi),
        ({"type": "string", "length": 4}, [0x4241, 0x4443], "ABCD"),  # low byte first
        ({"type": "string", "length": 3}, [0x4241, 0x4443], "ABC"),
        ({"type": "string", "length": 4}, [0x0041, 0x4443], "A"),  # ends at the first NUL
        ({"type": "uint16", "scale": 0.1, "offset": -20}, [800], 60.0),
        ({"address": "D0.0"}, [0x8001], True),
        ({"address": "D0.1"}, [0x8001], False),
        ({"address": "D0.F"}, [0x8001], True),
    ],
)
def test_decode_known_words(spec: dict[str, Any], words: list[int], value: object) -> None:
    config = tag(**spec)
    data = struct.pack(f"<{len(words)}H", *words)
    assert decode(config, data, config.parsed("q").bit_in_word or 0) == value
    if config.value_type not in ("bool", "string"):
        assert encode(config, value) == words


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_int32_round_trip(number: int) -> None:
    config = tag(type="int32")
    assert decode(config, struct.pack("<2H", *encode(config, number))) == number


@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_float64_round_trip(number: float) -> None:
    config = tag(type="float64")
    assert decode(config, struct.pack("<4H", *encode(config, number))) == number


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20))
def test_string_round_trip(text: str) -> None:
    config = tag(type="string", length=20)
    words = encode(config, text)
    assert len(words) == 10
    assert decode(config, struct.pack("<10H", *words)) == text


def test_request_decoder_agrees_with_decode_for_overlaps_and_gaps() -> None:
    config = {
        "whole": tag(type="int32"),
        "low": tag(type="uint16"),  # overlaps "whole"
        "bit": tag(address="D1.F"),
        "far": tag(address="D9", type="int16", scale=2.0),
        "text": tag(address="D4", type="string", length=3),
    }
    words = [0x86A0, 0x8001, 0, 0, 0x4241, 0x0043, 0, 0, 0, 0xFFFF]
    data = struct.pack("<10H", *words)
    offsets = [("whole", 0), ("low", 0), ("bit", 1), ("far", 9), ("text", 4)]
    values: dict[str, object] = {}
    failed: dict[str, str] = {}
    RequestDecoder(offsets, config, {"bit": 15}).decode(data, values, failed, "D0-D9")  # type: ignore[arg-type]
    assert failed == {}
    assert values == {"whole": -2147383648, "low": 0x86A0, "bit": True, "far": -2.0, "text": "ABC"}


# --------------------------------------------------------------------------------------- config


def config(**kw: Any) -> McDeviceConfig:
    return McDeviceConfig.model_validate({"driver": "mc", "host": "plc", **kw})


def test_defaults() -> None:
    device = config(tags={"a": {"address": "D0"}})
    assert (device.port, device.series, device.network_no, device.pc_no) == (5000, "q", 0, 0xFF)
    assert (device.module_io, device.module_station) == (0x03FF, 0)
    assert device.timer_units == 3  # 750 ms: the module's C05E comes before a 1 s timeout
    assert config(tags={"a": {"address": "D0"}}, timeout_s=0.1).timer_units == 1
    assert config(tags={"a": {"address": "D0"}}, timeout_s=12).timer_units == 47
    assert (
        config(tags={"a": {"address": "D0"}}, monitoring_timer=40, timeout_s=12).timer_units == 40
    )
    assert device.tags["a"].value_type == "int16"
    assert config(tags={"a": {"address": "M0"}}).tags["a"].value_type == "bool"


@pytest.mark.parametrize(
    ("tags", "extra", "message"),
    [
        ({"a": {"address": "D1F"}}, {}, "'D1F' is not an address: D .* is numbered in decimal"),
        ({"a": {"address": "M0", "type": "int16"}}, {}, "M0 is a bit device: its type is bool"),
        ({"a": {"address": "D0.1", "type": "uint16"}}, {}, "D0.1 is one bit of a word"),
        ({"a": {"address": "D0", "type": "bool"}}, {}, "needs a bit: D0.0 to D0.F"),
        ({"a": {"address": "D0", "type": "string"}}, {}, "type string needs 'length'"),
        ({"a": {"address": "D0", "length": 4}}, {}, "'length' goes with type string only"),
        ({"a": {"address": "M0", "scale": 2}}, {}, "'scale' and 'offset' apply to numbers"),
        ({"a": {"address": "X18"}}, {"series": "iqf"}, "tag a: 'X18' .* octal on iqf"),
        ({"a": {"address": "D99999999"}}, {}, "tag a: 'D99999999' is out of range"),
        ({"a": {"address": "D16777215", "type": "int32"}}, {}, "tag a .* runs past D16777215"),
        (
            {"a": {"address": "D0", "type": "string", "length": 200}},
            {"max_words_per_request": 64},
            "tag a spans 100 words; max_words_per_request is 64",
        ),
        ({"a": {"address": "D0"}}, {"max_words_per_request": 961}, "less than or equal to 960"),
        (
            {"a": {"address": "D0"}},
            {"monitoring_timer": 4},
            r"monitoring_timer 4 \(1 s\) is not shorter than timeout_s \(1 s\): .* at most 3",
        ),
        (
            {"a": {"address": "D0"}},
            {"monitoring_timer": 1, "timeout_s": 0.2},
            r"monitoring_timer 1 \(0.25 s\) .* raise timeout_s above 0.25",
        ),
        ({}, {}, "at least 1 item"),
    ],
)
def test_config_errors(tags: dict[str, Any], extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(tags=tags, **extra)


def test_iqr_accepts_four_byte_numbers() -> None:
    assert config(series="iqr", tags={"a": {"address": "D99999999"}})


# --------------------------------------------------------------------------------------- plan


def test_plan_merges_per_device_in_words() -> None:
    device = config(
        tags={
            "m0": {"address": "M0"},
            "m15": {"address": "M15"},
            "m16": {"address": "M16"},
            "m500": {"address": "M500"},  # word 31: within the default gap of 128 words
            "x1f": {"address": "X1F"},
            "d0": {"address": "D0", "type": "float32"},
            "d1b": {"address": "D1.3"},
            "d130": {"address": "D130"},  # 128 unused words after D1: read across them
            "d400": {"address": "D400"},  # 269 after D130: a request of its own
            "w10": {"address": "W10"},
        },
    )
    plan = build_plan(device)
    assert [(r.text, r.head, r.words) for r in plan] == [
        ("X10-X1F", 0x10, 1),
        ("M0-M511", 0, 32),
        ("D0-D130", 0, 131),
        ("D400", 400, 1),
        ("W10", 0x10, 1),
    ]
    assert dict(plan[1].tags) == {"m0": 0, "m15": 0, "m16": 1, "m500": 31}
    assert tag_bits(device) == {"m0": 0, "m15": 15, "m16": 0, "m500": 4, "x1f": 15, "d1b": 3}
    # the frame of each request is ready: M0, 32 words, word units
    assert plan[1].frame.endswith(bytes.fromhex("0104 0000 000000 90 2000"))


def test_plan_in_octal_names_on_iqf() -> None:
    device = config(series="iqf", tags={"x": {"address": "X17"}, "y": {"address": "Y20"}})
    assert [r.text for r in build_plan(device)] == ["X0-X17", "Y20-Y37"]
