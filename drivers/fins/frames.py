"""FINS frames (W227) and the FINS/TCP envelope (W421), built and taken apart; no I/O here.

A FINS frame is a 10-byte header (ICF RSV GCT DNA DA1 DA2 SNA SA1 SA2 SID), a 2-byte command code
(MRC SRC) and its parameters; a response repeats the command code and adds a 2-byte end code
before its data. FINS/TCP wraps each frame as "FINS", a length (bytes after the length field), a
command (0 client node address, 1 server node address, 2 FINS frame, 3 frame send error) and an
error code, all 32-bit big-endian.
"""

from __future__ import annotations

__all__ = [
    "MEMORY_AREA_READ",
    "TCP_CLIENT_NODE",
    "TCP_FRAME",
    "TCP_FRAME_ERROR",
    "TCP_SERVER_NODE",
    "FinsHeader",
    "FinsResponse",
    "MalformedFrame",
    "TcpFrame",
    "memory_area_read",
    "parse_command",
    "parse_response",
    "parse_tcp_header",
    "tcp_frame",
]

import struct
from dataclasses import dataclass

MEMORY_AREA_READ = 0x0101
HEADER_SIZE = 10
ICF_COMMAND = 0x80  # bit 7: always 1 ("gateway used"); bit 6: 0 command; bit 0: 0 answer wanted
ICF_RESPONSE = 0x40
GCT = 0x02  # bridges a frame may cross, as W227 recommends

TCP_MAGIC = b"FINS"
TCP_CLIENT_NODE = 0  # client -> server: node address request (0: the server chooses)
TCP_SERVER_NODE = 1  # server -> client: client's and server's node addresses
TCP_FRAME = 2
TCP_FRAME_ERROR = 3
TCP_HEADER_SIZE = 16
TCP_MAX_LENGTH = 8 + 2048  # command and error code, then a FINS frame (at most 2,012 bytes)

_HEADER = struct.Struct(">10B")
_TCP_HEADER = struct.Struct(">4sIII")


class MalformedFrame(ValueError):
    """Bytes that are not a FINS (or FINS/TCP) frame of the expected kind."""


@dataclass(frozen=True, slots=True)
class FinsHeader:
    """Where a frame goes and where it comes from; `sid` pairs a response with its command."""

    dna: int
    da1: int
    da2: int
    sna: int
    sa1: int
    sa2: int
    sid: int = 0

    def command(self, code: int, parameters: bytes) -> bytes:
        header = _HEADER.pack(
            ICF_COMMAND,
            0,
            GCT,
            self.dna,
            self.da1,
            self.da2,
            self.sna,
            self.sa1,
            self.sa2,
            self.sid,
        )
        return header + code.to_bytes(2, "big") + parameters

    def response(self, code: int, end_code: int, data: bytes = b"") -> bytes:
        """The answer to a command with this header: addresses swapped, same SID."""
        header = _HEADER.pack(
            ICF_COMMAND | ICF_RESPONSE,
            0,
            GCT,
            self.sna,
            self.sa1,
            self.sa2,
            self.dna,
            self.da1,
            self.da2,
            self.sid,
        )
        return header + code.to_bytes(2, "big") + end_code.to_bytes(2, "big") + data


def memory_area_read(area_code: int, first_word: int, words: int) -> bytes:
    """Parameters of command 0101 for `words` words (bit position 00: word access)."""
    return struct.pack(">BHBH", area_code, first_word, 0, words)


@dataclass(frozen=True, slots=True)
class FinsResponse:
    header: FinsHeader  # as received: the responder is sna/sa1/sa2
    code: int  # command code it answers (MRC SRC)
    end_code: int  # MRES SRES as received, flags included
    data: bytes

    @property
    def main_sub(self) -> int:
        """The end code without the relay error (bit 15) and CPU error flags (bits 6 and 7)."""
        return self.end_code & 0x7F3F

    @property
    def relay_error(self) -> bool:
        return bool(self.end_code & 0x8000)

    @property
    def fatal_cpu_error(self) -> bool:
        return bool(self.end_code & 0x0080)

    @property
    def non_fatal_cpu_error(self) -> bool:
        return bool(self.end_code & 0x0040)


def parse_command(frame: bytes) -> tuple[FinsHeader, int, bytes]:
    """Header, command code and parameters of a command frame (for simulators)."""
    if len(frame) < HEADER_SIZE + 2:
        raise MalformedFrame(f"{len(frame)} bytes: shorter than a FINS command")
    icf, _, _, dna, da1, da2, sna, sa1, sa2, sid = _HEADER.unpack_from(frame)
    if icf & ICF_RESPONSE:
        raise MalformedFrame(f"ICF {icf:02X}: a response, not a command")
    code = int.from_bytes(frame[10:12], "big")
    return FinsHeader(dna, da1, da2, sna, sa1, sa2, sid), code, frame[12:]


def parse_response(frame: bytes) -> FinsResponse:
    if len(frame) < HEADER_SIZE + 4:
        raise MalformedFrame(f"{len(frame)} bytes: shorter than a FINS response")
    icf, _, _, dna, da1, da2, sna, sa1, sa2, sid = _HEADER.unpack_from(frame)
    if not icf & ICF_RESPONSE:
        raise MalformedFrame(f"ICF {icf:02X}: a command, not a response")
    code, end_code = struct.unpack_from(">HH", frame, HEADER_SIZE)
    return FinsResponse(
        FinsHeader(dna, da1, da2, sna, sa1, sa2, sid), code, end_code, frame[HEADER_SIZE + 4 :]
    )


@dataclass(frozen=True, slots=True)
class TcpFrame:
    command: int
    error_code: int
    length: int  # bytes after the length field: 8 plus the payload


def tcp_frame(command: int, payload: bytes, error_code: int = 0) -> bytes:
    return _TCP_HEADER.pack(TCP_MAGIC, 8 + len(payload), command, error_code) + payload


def parse_tcp_header(header: bytes) -> TcpFrame:
    """The first 16 bytes of a FINS/TCP frame; the payload is `length - 8` bytes after them."""
    magic, length, command, error_code = _TCP_HEADER.unpack(header)
    if magic != TCP_MAGIC:
        raise MalformedFrame(f"FINS/TCP header starts with {magic!r}, not b'FINS'")
    if not 8 <= length <= TCP_MAX_LENGTH:
        raise MalformedFrame(f"FINS/TCP length {length} out of range (8 to {TCP_MAX_LENGTH})")
    return TcpFrame(command, error_code, length)
