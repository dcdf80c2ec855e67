"""Every Modbus type and byte order against register words written out by hand.

The words are what a PLC holds; they were derived from the IEEE 754 / two's-complement encodings
of the values (e.g. 3.5f = 0x40600000), not produced by the codec under test.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.codec import RequestDecoder, decode, encode
from drivers.modbus.config import ModbusTagConfig


def tag(**kw: object) -> ModbusTagConfig:
    return ModbusTagConfig.model_validate({"address": 0, **kw})


CASES = [
    # type, byte_order, words, value
    ("int16", "ABCD", [0xFB2E], -1234),
    ("int16", "CDAB", [0xFB2E], -1234),  # one word: word order does not apply
    ("int16", "BADC", [0x2EFB], -1234),
    ("int16", "DCBA", [0x2EFB], -1234),
    ("uint16", "ABCD", [0xFB2E], 64302),
    ("uint16", "BADC", [0x2EFB], 64302),
    ("int32", "ABCD", [0xFFFE, 0x1DC0], -123456),
    ("int32", "CDAB", [0x1DC0, 0xFFFE], -123456),
    ("int32", "BADC", [0xFEFF, 0xC01D], -123456),
    ("int32", "DCBA", [0xC01D, 0xFEFF], -123456),
    ("uint32", "ABCD", [0x075B, 0xCD15], 123456789),
    ("uint32", "CDAB", [0xCD15, 0x075B], 123456789),
    ("uint32", "BADC", [0x5B07, 0x15CD], 123456789),
    ("uint32", "DCBA", [0x15CD, 0x5B07], 123456789),
    ("float32", "ABCD", [0x4060, 0x0000], 3.5),
    ("float32", "CDAB", [0x0000, 0x4060], 3.5),
    ("float32", "BADC", [0x6040, 0x0000], 3.5),
    ("float32", "DCBA", [0x0000, 0x6040], 3.5),
    ("float32", "ABCD", [0xC144, 0x0000], -12.25),
    ("int64", "ABCD", [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE], -2),
    ("int64", "DCBA", [0xFEFF, 0xFFFF, 0xFFFF, 0xFFFF], -2),
    ("uint64", "ABCD", [0x0123, 0x4567, 0x89AB, 0xCDEF], 0x0123456789ABCDEF),
    ("uint64", "CDAB", [0xCDEF, 0x89AB, 0x4567, 0x0123], 0x0123456789ABCDEF),
    ("uint64", "BADC", [0x2301, 0x6745, 0xAB89, 0xEFCD], 0x0123456789ABCDEF),
    ("uint64", "DCBA", [0xEFCD, 0xAB89, 0x6745, 0x2301], 0x0123456789ABCDEF),
    ("float64", "ABCD", [0x4009, 0x21FB, 0x5444, 0x2D18], math.pi),
    ("float64", "CDAB", [0x2D18, 0x5444, 0x21FB, 0x4009], math.pi),
    ("float64", "DCBA", [0x182D, 0x4454, 0xFB21, 0x0940], math.pi),
    ("float64", "BADC", [0x0940, 0xFB21, 0x4454, 0x182D], math.pi),
]


@pytest.mark.parametrize(("type_", "order", "words", "value"), CASES)
def test_decode_known_words(type_: str, order: str, words: list[int], value: object) -> None:
    assert decode(tag(type=type_, byte_order=order), words) == value


@pytest.mark.parametrize(("type_", "order", "words", "value"), CASES)
def test_encode_gives_the_same_words(
    type_: str, order: str, words: list[int], value: object
) -> None:
    assert encode(tag(type=type_, byte_order=order), value) == words  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("order", "words"),
    [("ABCD", [0x5052, 0x4553, 0x532D, 0x3031]), ("BADC", [0x5250, 0x5345, 0x2D53, 0x3130])],
)
def test_string_in_both_byte_orders(order: str, words: list[int]) -> None:
    assert decode(tag(type="string", length=8, byte_order=order), words) == "PRESS-01"


def test_string_stops_at_padding_and_odd_length() -> None:
    # "AB", then "C" with a NUL pad: length 3 reads three bytes, and trailing NULs are dropped.
    assert decode(tag(type="string", length=3), [0x4142, 0x4300]) == "ABC"
    assert decode(tag(type="string", length=6), [0x4142, 0x0000, 0x0000]) == "AB"


@pytest.mark.parametrize("bit", range(16))
def test_single_bits_of_a_register(bit: int) -> None:
    word = 0b1010_0101_1100_0011
    assert decode(tag(type="bool", bit=bit), [word]) is bool((word >> bit) & 1)


def test_scale_and_offset() -> None:
    # 0x0960 = 2400 tenths of a degree, offset -40: 200.0
    assert decode(tag(type="uint16", scale=0.1, offset=-40), [0x0960]) == pytest.approx(200.0)
    assert decode(tag(type="int16", scale=0.01), [0xFF9C]) == pytest.approx(-1.0)


@given(
    st.sampled_from(
        ["int32", "uint32", "int64", "uint64", "float32", "float64", "int16", "uint16"]
    ),
    st.sampled_from(["ABCD", "DCBA", "BADC", "CDAB"]),
    st.data(),
)
def test_round_trip_every_type_and_order(type_: str, order: str, data: st.DataObject) -> None:
    t = tag(type=type_, byte_order=order)
    bits = {"16": 16, "32": 32, "64": 64}[type_[-2:]]
    if type_.startswith("float"):
        value = data.draw(st.floats(allow_nan=False, allow_infinity=False, width=bits))
    elif type_.startswith("u"):
        value = data.draw(st.integers(0, 2**bits - 1))
    else:
        value = data.draw(st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
    words = encode(t, value)
    assert len(words) == t.size
    assert all(0 <= w <= 0xFFFF for w in words)
    assert decode(t, words) == value


_NUMBER_TYPES = ["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]


@st.composite
def register_tags(draw: st.DrawFn) -> tuple[dict[str, ModbusTagConfig], list[int]]:
    """Tags of every kind over one read of up to 40 registers, overlapping ones too."""
    count = draw(st.integers(4, 40))
    words = draw(st.lists(st.integers(0, 0xFFFF), min_size=count, max_size=count))
    tags: dict[str, ModbusTagConfig] = {}
    for i in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["number", "number", "number", "bool", "string"]))
        if kind == "bool":
            t = tag(type="bool", bit=draw(st.integers(0, 15)))
        elif kind == "string":
            t = tag(type="string", length=draw(st.integers(1, 6)), byte_order="BADC")
        else:
            t = tag(
                type=draw(st.sampled_from(_NUMBER_TYPES)),
                byte_order=draw(st.sampled_from(["ABCD", "ABCD", "CDAB", "BADC", "DCBA"])),
                scale=draw(st.sampled_from([1.0, 1.0, 0.1, -2.5, 1e308])),
                offset=draw(st.sampled_from([0.0, 0.0, 40.0])),
            )
        address = draw(st.integers(0, count - t.size))
        tags[f"t{i}"] = t.model_copy(update={"address": address})
    return tags, words


@given(register_tags())
def test_a_whole_read_decodes_as_each_tag_alone(
    case: tuple[dict[str, ModbusTagConfig], list[int]],
) -> None:
    tags, words = case
    values: dict[str, object] = {}
    failed: dict[str, str] = {}
    RequestDecoder(len(words), [(n, t.address) for n, t in tags.items()], tags).decode(
        words, values, failed, "holding 0-9"
    )
    assert set(values) | set(failed) == set(tags)
    assert not set(values) & set(failed)
    for name, t in tags.items():
        alone = decode(t, words[t.address : t.address + t.size])
        if isinstance(alone, float) and not math.isfinite(alone):
            assert failed[name] == f"holding 0-9: {t.type} is {alone}"
        else:
            assert values[name] == alone, name
