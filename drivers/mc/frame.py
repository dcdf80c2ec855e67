"""The 3E binary frame of the MC protocol (SLMP), read side only: one batch read and its answer.

From the MELSEC Communication Protocol Reference Manual (SH-080008): every field little-endian.

    request   50 00 | network | PC | module I/O (2) | station | length (2) | monitoring timer (2)
              | command 0401 (2) | subcommand (2) | head device number (3, or 4 in the iQ-R form)
              | device code (1, or 2 in the iQ-R form) | number of points (2)
    response  D0 00 | network | PC | module I/O (2) | station | length (2) | end code (2) | data

`length` counts the bytes after it. On end code 0 the data of a word-unit read is two bytes a
point, low byte first; otherwise up to nine bytes of error information follow (who answered, and
the command it refused), which the driver does not need.
"""

from __future__ import annotations

__all__ = [
    "BATCH_READ",
    "END_CODES",
    "HEADER_SIZE",
    "LINK_END_CODES",
    "REQUEST_SUBHEADER",
    "RESPONSE_SUBHEADER",
    "FrameError",
    "Route",
    "batch_read",
    "describe_end_code",
    "read_header",
    "split_body",
]

import struct
from dataclasses import dataclass

from drivers.mc.address import Series

REQUEST_SUBHEADER = b"\x50\x00"
RESPONSE_SUBHEADER = b"\xd0\x00"
BATCH_READ = 0x0401
HEADER_SIZE = 9  # subheader, route (5 bytes) and the length field
_ROUTE = struct.Struct("<BBHB")
_IQR_DEVICE = struct.Struct("<IH")  # 4-byte device number, 2-byte device code
_Q_DEVICE = struct.Struct("<I")  # 3-byte device number, then the 1-byte code in the top byte
_ERROR_INFO_MAX = 9  # network, PC, module I/O, station, command, subcommand

# Subcommands of batch read: word units / bit units; the iQ-R form has 4-byte device numbers
# and 2-byte device codes.
_SUBCOMMAND = {
    ("q", False): 0x0000,
    ("q", True): 0x0001,
    ("iqr", False): 0x0002,
    ("iqr", True): 0x0003,
}

# The end codes a read can meet (SH-080008, "Error codes"), in words that say what to change.
END_CODES: dict[int, str] = {
    0xC050: "the PLC's port expects ASCII code: set its communication data code to binary",
    0xC051: "too many bit points in one read",
    0xC052: "too many words in one read: lower max_words_per_request",
    0xC053: "too many points in one random read",
    0xC054: "too many points in one random read",
    0xC056: "read past the last address of the device (check the address and the PLC's device sizes)",
    0xC058: "request length does not match its data after ASCII conversion",
    0xC059: "command or subcommand not supported by this CPU (check series: iqr only for iQ-R)",
    0xC05B: "the CPU cannot read this device",
    0xC05C: "request refused (a device this CPU does not have?)",
    0xC05E: "the Ethernet module got no answer from the CPU within the monitoring timer",
    0xC05F: "the target cannot execute this request (check network_no, pc_no, module_io, module_station)",
    0xC061: "request length does not match its data",
    0xC070: "the target does not support this device extension",
    0xC0B5: "the CPU cannot handle this data",
    0x4030: "the CPU does not have this device",
    0x4031: "device number outside the CPU's range (or a device the CPU cannot access)",
    0x4032: "this device cannot be read this way",
}
# The PLC's Ethernet module answered, but for a CPU that did not: the device is down, not the data.
LINK_END_CODES = frozenset({0xC05E})


class FrameError(Exception):
    """What arrived is not a 3E binary answer to what was asked: the connection is unusable."""


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes: network and PC number, request destination module I/O and station."""

    network_no: int = 0
    pc_no: int = 0xFF
    module_io: int = 0x03FF
    module_station: int = 0

    def pack(self) -> bytes:
        return _ROUTE.pack(self.network_no, self.pc_no, self.module_io, self.module_station)


def batch_read(
    route: Route,
    monitoring_timer: int,
    device_code: int,
    head: int,
    points: int,
    *,
    series: Series = "q",
    bit_units: bool = False,
) -> bytes:
    """A complete batch read request (command 0401) for `points` words (or bits) from `head`."""
    iqr = series == "iqr"
    subcommand = _SUBCOMMAND[("iqr" if iqr else "q", bit_units)]
    device = (
        _IQR_DEVICE.pack(head, device_code) if iqr else _Q_DEVICE.pack(head | device_code << 24)
    )
    body = struct.pack("<HHH", monitoring_timer, BATCH_READ, subcommand) + device
    body += struct.pack("<H", points)
    return REQUEST_SUBHEADER + route.pack() + struct.pack("<H", len(body)) + body


def read_header(header: bytes, expected_data: int) -> int:
    """The length of the body that follows a 9-byte response header; FrameError if not one.

    A length that fits neither a good answer (`expected_data` bytes after the end code) nor an
    error answer is refused before its body is waited for. The route echoed in the header is not
    compared with the request's: with one request in flight it tells nothing new, and devices
    that speak the MC protocol besides MELSEC (gateways, other makers' PLCs) do not all echo it.
    """
    if header[:2] != RESPONSE_SUBHEADER:
        raise FrameError(
            f"not a 3E binary answer (subheader {header[:2].hex(' ')}, expected d0 00)"
        )
    (length,) = struct.unpack_from("<H", header, 7)
    if length < 2:
        raise FrameError(f"an answer of {length} bytes has no end code")
    if length > 2 + max(expected_data, _ERROR_INFO_MAX):
        raise FrameError(f"an answer of {length} bytes to a read of {expected_data} bytes")
    return int(length)


def split_body(body: bytes, expected_data: int) -> tuple[int, bytes]:
    """End code and data of a response body; FrameError when its size fits neither outcome."""
    (end_code,) = struct.unpack_from("<H", body)
    data = body[2:]
    if end_code == 0 and len(data) != expected_data:
        raise FrameError(f"answer holds {len(data)} data bytes, expected {expected_data}")
    if end_code != 0 and len(data) > _ERROR_INFO_MAX:
        raise FrameError(
            f"error answer (end code 0x{end_code:04X}) with {len(data)} bytes of detail"
        )
    return end_code, data


def describe_end_code(end_code: int) -> str:
    """'end code 0xC056: read past the last address ...' for a person to act on."""
    return f"end code 0x{end_code:04X}: {END_CODES.get(end_code, 'refused by the PLC (see its manual)')}"
