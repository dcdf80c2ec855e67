"""The read job and its answer byte by byte, and S7 bytes to values; frames written out by hand."""

from __future__ import annotations

import math
import struct

import pytest

from drivers.s7.address import locate
from drivers.s7.codec import DecodeError, decode, encode
from drivers.s7.plan import ReadItem
from drivers.s7.wire import (
    MalformedAnswer,
    RefusedRequest,
    item_failure,
    parse_read_answer,
    read_request,
)

DB1_2_4 = ReadItem(0, "DB", 1, 2, 4)
M_10_3 = ReadItem(1, "M", 0, 10, 3)
I_64_2 = ReadItem(2, "I", 0, 64, 2)


def test_read_request_bytes() -> None:
    frame = read_request(7, [DB1_2_4, M_10_3])
    assert frame.hex(" ") == (
        # header: protocol 32, job, reserved, reference 7, 26 bytes of parameter, no data
        "32 01 00 00 00 07 00 1a 00 00 "
        # read variable, 2 items
        "04 02 "
        # S7ANY: BYTE, 4 of them, DB 1, area 84, bit address 2 * 8 = 16
        "12 0a 10 02 00 04 00 01 84 00 00 10 "
        # S7ANY: BYTE, 3 of them, DB 0, area 83 (M), bit address 80
        "12 0a 10 02 00 03 00 00 83 00 00 50"
    )


def answer(reference: int, *items: bytes, error: int = 0, count: int | None = None) -> bytes:
    data = b"".join(items)
    parameter = bytes([0x04, len(items) if count is None else count])
    header = struct.pack(">BBHHHHH", 0x32, 3, 0, reference, len(parameter), len(data), error)
    return header + parameter + data


def ok(data: bytes, fill: bool = False) -> bytes:
    return struct.pack(">BBH", 0xFF, 0x04, len(data) * 8) + data + (b"\x00" if fill else b"")


def failed(code: int) -> bytes:
    return struct.pack(">BBH", code, 0x00, 0)


def test_answer_with_every_item_read_and_a_fill_byte() -> None:
    frame = answer(7, ok(b"\x00\x00\x00\x2a"), ok(b"\x01\x02\x03", fill=True), ok(b"\x6c\x00"))
    results = parse_read_answer(frame, 7, [DB1_2_4, M_10_3, I_64_2])
    assert [(r.code, r.data) for r in results] == [
        (0xFF, b"\x00\x00\x00\x2a"),
        (0xFF, b"\x01\x02\x03"),
        (0xFF, b"\x6c\x00"),
    ]


def test_answer_with_failed_items_keeps_each_code() -> None:
    frame = answer(9, failed(0x0A), ok(b"\x01\x02\x03", fill=True), failed(0x05))
    results = parse_read_answer(frame, 9, [DB1_2_4, M_10_3, I_64_2])
    assert [r.code for r in results] == [0x0A, 0xFF, 0x05]
    assert [r.ok for r in results] == [False, True, False]
    assert results[1].data == b"\x01\x02\x03"


def test_octet_string_lengths_count_bytes() -> None:
    item = struct.pack(">BBH", 0xFF, 0x09, 4) + b"abcd"  # transport size 9: length in bytes
    assert parse_read_answer(answer(1, item), 1, [DB1_2_4])[0].data == b"abcd"


def test_a_fill_byte_after_the_last_odd_item_is_tolerated() -> None:
    frame = answer(3, ok(b"\x01\x02\x03", fill=True))
    assert parse_read_answer(frame, 3, [M_10_3])[0].data == b"\x01\x02\x03"


def test_refused_request() -> None:
    header = struct.pack(">BBHHHHH", 0x32, 3, 0, 4, 0, 0, 0x8104)
    with pytest.raises(RefusedRequest, match="PUT/GET is not permitted") as exc:
        parse_read_answer(header, 4, [DB1_2_4])
    assert exc.value.code == 0x8104
    header = struct.pack(">BBHHHHH", 0x32, 2, 0, 4, 0, 0, 0x8500)
    with pytest.raises(RefusedRequest, match="does not fit its PDU size"):
        parse_read_answer(header, 4, [DB1_2_4])


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\x32\x03\x00", "shorter than its header"),
        (answer(8, ok(b"\x00\x00\x00\x01")), "answer to request 8, expected 7"),
        (b"\x72" + answer(7, ok(b"\x00\x00\x00\x01"))[1:], "not an S7 answer"),
        (answer(7, ok(b"\x00\x00\x00\x01")) + b"\x00", "do not add up"),
        (answer(7, ok(b"\x00\x00\x00\x01"), count=2), "with 2 items, asked 0x04 with 1"),
        (answer(7, ok(b"\x00\x01")), "item 1 carries 2 bytes, asked 4"),
        (answer(7, ok(b"\x00\x00\x00\x01")[:6]), "item 1 is cut off"),
        (answer(7, count=1), "the answer ends before item 1 of 1"),
        (answer(7, ok(bytes(4)), b"\x00\x00", count=1), "2 bytes after the last item"),
        (answer(7, struct.pack(">BBH", 0xFF, 0x42, 32) + bytes(4)), "unknown transport size"),
    ],
)
def test_malformed_answers(frame: bytes, message: str) -> None:
    with pytest.raises(MalformedAnswer, match=message):
        parse_read_answer(frame, 7, [DB1_2_4])


def test_failures_say_what_to_do() -> None:
    assert (
        item_failure(0x0A, "DB", 9) == "DB9 does not exist in the CPU (0x0A): check the DB number"
    )
    out_of_range = item_failure(0x05, "DB", 1)
    assert "address out of range (0x05): the area is shorter than this read" in out_of_range
    assert "untick 'Optimized block access'" in out_of_range
    assert "tick 'Permit access with PUT/GET communication" in out_of_range
    assert item_failure(0x03, "DB", 1).startswith("access denied (0x03): the DB is optimized")
    assert item_failure(0x0A, "M", 0) == "object does not exist (0x0A)"
    assert item_failure(0x42, "M", 0) == "item error 0x42"


# ------------------------------------------------------------------------------------ the codec

VALUES = [
    # (address, type, length, bytes as the CPU holds them, value)
    ("DB1.DBX0.0", None, None, b"\x01", True),
    ("DB1.DBX0.1", None, None, b"\xfd", False),
    ("DB1.DBX0.7", None, None, b"\x80", True),
    ("DB1.DBB0", None, None, b"\xc8", 200),
    ("DB1.DBB0", "usint", None, b"\xc8", 200),
    ("DB1.DBB0", "sint", None, b"\xc8", -56),
    ("DB1.DBB0", "char", None, b"Z", "Z"),
    ("DB1.DBW0", None, None, b"\xfb\x2e", -1234),
    ("DB1.DBW0", "uint", None, b"\xbe\xef", 48879),
    ("DB1.DBW0", "word", None, b"\xbe\xef", 48879),
    ("DB1.DBD0", "dint", None, b"\xf8\xa4\x32\xeb", -123456789),
    ("DB1.DBD0", "udint", None, b"\xee\x6b\x28\x00", 4000000000),
    ("DB1.DBD0", "dword", None, b"\xee\x6b\x28\x00", 4000000000),
    ("DB1.DBD0", "real", None, b"\x41\xcc\x00\x00", 25.5),
    ("DB1.DBD0", "time", None, b"\xff\xfe\x9e\x7c", -90.5),  # T#-1M30S500MS
    # The S7-1500's 64-bit types, from a byte address (bytes written out by hand, big-endian).
    ("DB1.DBB8", "lreal", None, b"\x40\x09\x21\xfb\x54\x44\x2d\x18", 3.141592653589793),
    ("DB1.DBB8", "lint", None, b"\xff\xff\xff\x00\x00\x00\x00\x00", -(2**40)),
    ("DB1.DBB8", "ulint", None, b"\xff" * 8, 2**64 - 1),
    ("DB1.DBB8", "lword", None, b"\x80" + b"\x00" * 7, 2**63),
    ("DB1.DBB8", "ltime", None, b"\x00\x00\x00\x00\x59\x68\x2f\x00", 1.5),  # LT#1S500MS
    ("DB1.DBS0", None, 10, b"\x0a\x07Press 1\x00\x00\x00", "Press 1"),
    ("DB1.DBS0", None, 4, b"\x04\x00\x00\x00\x00\x00", ""),
    ("DB1.DBS0", None, 6, b"\x06\x04Gr\xfc\xdf\x00\x00", "Grüß"),  # Latin-1
    (
        "DB1.DBB0",
        "wstring",
        4,
        b"\x00\x04\x00\x04" + "冲床P2".encode("utf-16-be"),
        "冲床P2",
    ),
]


@pytest.mark.parametrize(("address", "type_", "length", "raw", "value"), VALUES)
def test_decode_and_encode(
    address: str, type_: str | None, length: int | None, raw: bytes, value: object
) -> None:
    location = locate(address, type_, length)
    assert decode(location, raw) == value
    if location.type != "bool":  # other bits of a bool's byte are not the bool's
        assert decode(location, encode(location, value)) == value  # type: ignore[arg-type]


def test_scale_and_offset() -> None:
    location = locate("DB1.DBW0")
    assert decode(location, struct.pack(">h", 215), 0.1, 1.0) == pytest.approx(22.5)
    assert encode(location, 22.5, 0.1, 1.0) == struct.pack(">h", 215)


def test_a_string_declared_longer_in_the_plc_is_cut_at_the_tag_length() -> None:
    raw = b"\x14\x06abcdef"  # STRING[20] holding 'abcdef', the tag reads 4 characters
    assert decode(locate("DB1.DBS0", None, 4), raw) == "abcd"


@pytest.mark.parametrize(
    ("address", "type_", "length", "raw", "message"),
    [
        ("DB1.DBD0", "real", None, struct.pack(">f", math.nan), "real is nan"),
        ("DB1.DBD0", "real", None, struct.pack(">f", -math.inf), "real is -inf"),
        ("DB1.DBS0", None, 4, b"\x04\x09abcd", "header says 9 characters in a STRING\\[4\\]"),
        ("DB1.DBB0", "wstring", 1, b"\x00\x01\x00\x02\x00a", "in a WSTRING\\[1\\]"),
    ],
)
def test_values_that_cannot_be(
    address: str, type_: str | None, length: int | None, raw: bytes, message: str
) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(locate(address, type_, length), raw)
