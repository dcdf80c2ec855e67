"""Words to values and FINS frames, against bytes written out literally (as a CJ holds and sends them).

Memory words are given as the PLC holds them (D100, D101, ... each high byte first on the wire);
a 32-bit value has its low word in the lower address, as CX-Programmer shows a DINT or REAL.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.fins.codec import RequestDecoder, decode, encode
from drivers.fins.config import FinsTagConfig
from drivers.fins.end_codes import describe_end_code, describe_tcp_error, is_link_failure
from drivers.fins.frames import (
    FinsHeader,
    MalformedFrame,
    memory_area_read,
    parse_command,
    parse_response,
    parse_tcp_header,
    tcp_frame,
)


def tag(address: str = "D100", **kw: object) -> FinsTagConfig:
    return FinsTagConfig.model_validate({"address": address, **kw})


def words(*values: int) -> bytes:
    return b"".join(v.to_bytes(2, "big") for v in values)


# (tag fields, memory words from the first one, value)
CASES: list[tuple[dict[str, object], bytes, object]] = [
    ({"type": "int16"}, words(0xFB2E), -1234),
    ({"type": "uint16"}, words(0xFB2E), 64302),
    ({"type": "int32"}, words(0x2EFD, 0xFFFF), -53507),  # D100 low word, D101 high word
    ({"type": "uint32"}, words(0xCD15, 0x075B), 123456789),
    ({"type": "uint32", "word_order": "high_first"}, words(0x075B, 0xCD15), 123456789),
    ({"type": "float32"}, words(0x0000, 0x4060), 3.5),
    ({"type": "float32"}, words(0x0000, 0xC144), -12.25),
    ({"type": "float64"}, words(0x2D18, 0x5444, 0x21FB, 0x4009), math.pi),
    ({"type": "bcd16"}, words(0x1234), 1234),
    ({"type": "bcd16"}, words(0x0009), 9),
    ({"type": "bcd32"}, words(0x5678, 0x1234), 12345678),
    ({"type": "bcd16", "scale": 0.1}, words(0x0250), 25.0),
    ({"type": "uint16", "scale": 0.1, "offset": -20}, words(1000), 80.0),
    ({"type": "string", "length": 8}, words(0x5052, 0x4553, 0x532D, 0x3031), "PRESS-01"),
    ({"type": "string", "length": 5}, words(0x4142, 0x4300, 0x0000), "ABC"),
    ({"type": "string", "length": 3}, words(0x4142, 0x4344), "ABC"),
    # "AB" moved over "ABCXYZ": what follows its NUL is left from before, not part of it.
    ({"type": "string", "length": 8}, words(0x4142, 0x0000, 0x5859, 0x5A00), "AB"),
]


@pytest.mark.parametrize(("fields", "data", "value"), CASES)
def test_known_words(fields: dict[str, object], data: bytes, value: object) -> None:
    config = FinsTagConfig.model_validate({"address": "D100", **fields})
    assert decode(config, data) == pytest.approx(value) if isinstance(value, float) else value
    if fields.get("type") != "string" or value == "PRESS-01":
        assert encode(config, value) == data  # type: ignore[arg-type]


@pytest.mark.parametrize(("address", "bit_set"), [("CIO10.00", True), ("CIO10.01", False)])
def test_bits_of_a_word(address: str, bit_set: bool) -> None:
    assert decode(tag(address), words(0b0101)) is bit_set
    assert decode(tag("W3.15"), words(0x8000)) is True
    assert decode(tag("W3.14"), words(0x8000)) is False


def test_bcd_with_a_digit_above_nine_is_refused() -> None:
    with pytest.raises(ValueError, match=r"is not BCD \(0x12AF\)"):
        decode(tag(type="bcd16"), words(0x12AF))


def test_request_decoder_marks_bad_values_failed_and_keeps_the_rest() -> None:
    config = {
        "count": tag("D0", type="bcd16"),
        "temp": tag("D1", type="float32"),
        "broken": tag("D3", type="bcd16"),
        "flag": tag("D3.15"),
    }
    decoder = RequestDecoder([("count", 0), ("temp", 1), ("broken", 3), ("flag", 3)], config)
    values: dict[str, object] = {}
    failed: dict[str, str] = {}
    decoder.decode(words(0x0042, 0x0000, 0x7FC0, 0xF000), values, failed, "D0-D3")  # type: ignore[arg-type]
    assert values == {"count": 42, "flag": True}
    assert failed == {
        "temp": "D0-D3: D1 float32 is nan",
        "broken": "D0-D3: D3 is not BCD (0xF000)",
    }


numbers = st.sampled_from(
    [
        ("int16", st.integers(-(2**15), 2**15 - 1)),
        ("uint16", st.integers(0, 2**16 - 1)),
        ("int32", st.integers(-(2**31), 2**31 - 1)),
        ("uint32", st.integers(0, 2**32 - 1)),
        ("bcd16", st.integers(0, 9999)),
        ("bcd32", st.integers(0, 99999999)),
        ("float64", st.floats(allow_nan=False, allow_infinity=False)),
    ]
)


@given(data=st.data(), kind=numbers, order=st.sampled_from(["low_first", "high_first"]))
def test_every_number_round_trips(data: st.DataObject, kind: tuple, order: str) -> None:
    name, strategy = kind
    value = data.draw(strategy)
    config = tag(type=name, word_order=order)
    raw = encode(config, value)
    assert len(raw) == config.words * 2
    assert decode(config, raw) == value


# ------------------------------------------------------------------------------------ frames


def test_memory_area_read_command_bytes() -> None:
    header = FinsHeader(dna=0, da1=10, da2=0, sna=0, sa1=25, sa2=0, sid=7)
    frame = header.command(0x0101, memory_area_read(0x82, 100, 3))
    # ICF RSV GCT DNA DA1 DA2 SNA SA1 SA2 SID | MRC SRC | area, word (2), bit, count (2)
    assert frame.hex(" ") == "80 00 02 00 0a 00 00 19 00 07 01 01 82 00 64 00 00 03"
    assert parse_command(frame) == (header, 0x0101, bytes.fromhex("820064000003"))


def test_response_bytes_and_end_code_flags() -> None:
    raw = bytes.fromhex("c0 00 02 00 19 00 00 0a 00 07 01 01 00 40 12 34".replace(" ", ""))
    response = parse_response(raw)
    assert response.header.sid == 7 and response.header.sa1 == 10
    assert response.code == 0x0101 and response.data == bytes.fromhex("1234")
    # 0040: normal completion while the CPU has a non-fatal error: the data is good.
    assert response.main_sub == 0 and response.non_fatal_cpu_error
    assert not response.fatal_cpu_error and not response.relay_error
    relayed = parse_response(raw[:12] + bytes.fromhex("91 03".replace(" ", "")))
    assert relayed.main_sub == 0x1103 and relayed.relay_error
    header = FinsHeader(dna=0, da1=10, da2=0, sna=0, sa1=25, sa2=0, sid=7)
    # addresses swapped (the answer goes back to node 25 from node 10), same SID
    answer = "c0 00 02 00 19 00 00 0a 00 07 01 01 11 03"
    assert header.response(0x0101, 0x1103).hex(" ") == answer


@pytest.mark.parametrize(
    "frame", [b"", bytes(13), bytes.fromhex("800002000019000a0007010100001234")]
)
def test_not_a_response(frame: bytes) -> None:
    with pytest.raises(MalformedFrame):
        parse_response(frame)


def test_fins_tcp_envelope() -> None:
    # Node address request of a client that lets the PLC choose (W421): length 12, command 0.
    assert tcp_frame(0, bytes(4)).hex() == "46494e530000000c000000000000000000000000"
    header = parse_tcp_header(bytes.fromhex("46494e5300000010000000010000000000000000")[:16])
    assert (header.command, header.error_code, header.length) == (1, 0, 16)
    with pytest.raises(MalformedFrame, match="not b'FINS'"):
        parse_tcp_header(b"HTTP/1.1 200 OK\r\n"[:16])
    with pytest.raises(MalformedFrame, match="out of range"):
        parse_tcp_header(bytes.fromhex("46494e53ffffffff0000000200000000"))


def test_end_code_texts() -> None:
    assert describe_end_code(0x1103) == (
        "end code 1103 address range error (the first word is beyond the area)"
    )
    assert describe_end_code(0x2002, relay_error=True).startswith("end code 2002 from a relay node")
    assert "FINS Commands Reference Manual" in describe_end_code(0x7777)
    assert is_link_failure(0x0201) and is_link_failure(0x0205) and is_link_failure(0x0502)
    assert not is_link_failure(0x1103) and not is_link_failure(0x0401)
    assert describe_tcp_error(0x24) == (
        "FINS/TCP error 00000024: the client and the server use the same node address "
        "(change src_node)"
    )
