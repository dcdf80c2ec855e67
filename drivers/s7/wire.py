"""The S7 "read variable" job and its answer, as bytes, written from the protocol description.

Only reads: function 0x04 with byte-sized items (transport size BYTE, the address in bits), one
answer item per requested item, each with its own return code. python-snap7 carries the PDUs
(ISO-on-TCP connection, PDU negotiation); building and checking them here keeps every item's
return code, which the library's multi-read turns into one exception for the whole request.
"""

from __future__ import annotations

__all__ = [
    "ItemResult",
    "MalformedAnswer",
    "RefusedRequest",
    "item_failure",
    "parse_read_answer",
    "read_request",
    "refusal",
]

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from drivers.s7.plan import ReadItem

_PROTOCOL_ID = 0x32
_JOB = 0x01
_ACK = 0x02
_ACK_DATA = 0x03
_READ_VAR = 0x04
_ANY_POINTER = (0x12, 0x0A, 0x10)  # variable specification, length 10, syntax S7ANY
_TRANSPORT_BYTE = 0x02
_SUCCESS = 0xFF
# Answer transport sizes whose length field counts bits; the others count bytes.
_LENGTH_IN_BITS = {0x03, 0x04, 0x05}
_LENGTH_IN_BYTES = {0x06, 0x07, 0x09}

_PUT_GET = (
    "in TIA Portal untick 'Optimized block access' in the DB's properties and tick "
    "'Permit access with PUT/GET communication from remote partner' in the CPU's protection settings"
)
_ITEM_FAILURES = {
    0x01: "hardware fault (0x01)",
    0x03: f"access denied (0x03): the DB is optimized or PUT/GET is not permitted: {_PUT_GET}",
    0x05: (
        "address out of range (0x05): the area is shorter than this read; on an S7-1200/1500 "
        f"also: the DB is optimized or PUT/GET is not permitted: {_PUT_GET}"
    ),
    0x06: "data type not supported (0x06)",
    0x07: "data type inconsistent (0x07)",
    0x0A: "object does not exist (0x0A)",
}
_REFUSALS = {
    0x8104: (
        "the CPU refused the read (0x8104): PUT/GET is not permitted: in TIA Portal tick "
        "'Permit access with PUT/GET communication from remote partner' in the CPU's "
        "protection settings"
    ),
    0x8500: "the CPU refused the read (0x8500): the request does not fit its PDU size",
}


class MalformedAnswer(Exception):
    """The answer cannot be the answer to the request sent; nothing in it can be trusted."""


class RefusedRequest(Exception):
    """The CPU refused the whole request (an error class in the answer's header)."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(refusal(code))


@dataclass(frozen=True, slots=True)
class ItemResult:
    """The answer to one item: its return code (0xFF success) and, on success, its bytes."""

    code: int
    data: bytes = b""

    @property
    def ok(self) -> bool:
        return self.code == _SUCCESS


def read_request(sequence: int, items: Sequence[ReadItem]) -> bytes:
    """The job PDU reading `items`, with the PDU reference `sequence` (0-65535)."""
    parameter = bytearray((_READ_VAR, len(items)))
    for item in items:
        parameter += bytes(_ANY_POINTER)
        parameter += struct.pack(">BHHB", _TRANSPORT_BYTE, item.size, item.db, item.area_code)
        parameter += (item.start * 8).to_bytes(3, "big")  # a bit address
    header = struct.pack(">BBHHHH", _PROTOCOL_ID, _JOB, 0, sequence, len(parameter), 0)
    return header + parameter


def parse_read_answer(pdu: bytes, sequence: int, items: Sequence[ReadItem]) -> list[ItemResult]:
    """One result per item; MalformedAnswer for what does not match, RefusedRequest for an error."""
    if len(pdu) < 12:
        raise MalformedAnswer(f"an answer of {len(pdu)} bytes is shorter than its header")
    protocol, kind, _, reference, parameter_length, data_length, error_class, error_code = (
        struct.unpack_from(">BBHHHHBB", pdu)
    )
    if protocol != _PROTOCOL_ID or kind not in (_ACK, _ACK_DATA):
        raise MalformedAnswer(f"not an S7 answer (protocol {protocol:#04x}, type {kind})")
    if reference != sequence:
        raise MalformedAnswer(f"answer to request {reference}, expected {sequence}")
    if error_class or error_code:  # whatever follows the header, the request was refused
        raise RefusedRequest(error_class << 8 | error_code)
    if 12 + parameter_length + data_length != len(pdu):
        raise MalformedAnswer("the lengths in the header do not add up to the answer's size")
    function, count = struct.unpack_from(">BB", pdu, 12) if parameter_length >= 2 else (0, 0)
    if parameter_length != 2 or function != _READ_VAR or count != len(items):
        raise MalformedAnswer(
            f"answer for function {function:#04x} with {count} items, "
            f"asked {_READ_VAR:#04x} with {len(items)}"
        )
    return _items(pdu[14:], items)


def _items(data: bytes, items: Sequence[ReadItem]) -> list[ItemResult]:
    results: list[ItemResult] = []
    at = 0
    for i, item in enumerate(items):
        if at + 4 > len(data):
            raise MalformedAnswer(f"the answer ends before item {i + 1} of {len(items)}")
        code, transport, length = struct.unpack_from(">BBH", data, at)
        at += 4
        if code != _SUCCESS:
            results.append(ItemResult(code))
            continue
        size = _data_size(transport, length)
        if size != item.size:
            raise MalformedAnswer(f"item {i + 1} carries {size} bytes, asked {item.size}")
        if at + size > len(data):
            raise MalformedAnswer(f"item {i + 1} is cut off")
        results.append(ItemResult(code, bytes(data[at : at + size])))
        at += size
        if size % 2 and i < len(items) - 1:
            at += 1  # fill byte: the next item starts at an even offset
    extra = len(data) - at
    # Some devices pad after an odd last item too; a fill byte is harmless, more is not.
    if extra and not (extra == 1 and results[-1].ok and len(results[-1].data) % 2):
        raise MalformedAnswer(f"{extra} bytes after the last item")
    return results


def _data_size(transport: int, length: int) -> int:
    if transport in _LENGTH_IN_BITS:
        return length // 8
    if transport in _LENGTH_IN_BYTES:
        return length
    raise MalformedAnswer(f"unknown transport size {transport:#04x}")


def item_failure(code: int, area: str, db: int) -> str:
    """What a failed item's return code means, and what to do about it."""
    if code == 0x0A and area == "DB":
        return f"DB{db} does not exist in the CPU (0x0A): check the DB number"
    return _ITEM_FAILURES.get(code, f"item error {code:#04x}")


def refusal(code: int) -> str:
    """What an error in the answer's header means."""
    return _REFUSALS.get(
        code, f"the CPU refused the read (error class {code >> 8:#04x}, code {code & 0xFF:#04x})"
    )
