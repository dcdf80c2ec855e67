"""What FINS end codes and FINS/TCP error codes mean, in words a person can act on (W227, W421)."""

from __future__ import annotations

__all__ = ["describe_end_code", "describe_tcp_error", "is_link_failure"]

# main/sub code (flags masked) -> meaning. The most common ones; others are named by number.
_END_CODES = {
    0x0001: "service cancelled",
    0x0101: "local node not in network",
    0x0102: "token timeout",
    0x0103: "retries failed",
    0x0104: "too many send frames",
    0x0105: "node address range error",
    0x0106: "node address duplication",
    0x0201: "destination node not in network (check dest_node and dest_network)",
    0x0202: "no such unit (check dest_unit)",
    0x0203: "third node not in network",
    0x0204: "destination node busy",
    0x0205: "response timeout (the destination did not answer the unit)",
    0x0301: "communications controller error",
    0x0302: "CPU unit error",
    0x0303: "controller error",
    0x0304: "unit number error",
    0x0401: "undefined command (not supported by this unit)",
    0x0402: "not supported by this model or version",
    0x0501: "destination address setting error",
    0x0502: "no routing tables (needed for dest_network)",
    0x0503: "routing table error",
    0x0504: "too many relays",
    0x1001: "command too long",
    0x1002: "command too short",
    0x1003: "number of elements and data do not match",
    0x1004: "command format error",
    0x1005: "header error",
    0x1101: "no such area in this PLC",
    0x1102: "access size error",
    0x1103: "address range error (the first word is beyond the area)",
    0x1104: "address range exceeded (the read runs past the end of the area)",
    0x1106: "program missing",
    0x1109: "relational error",
    0x110A: "duplicate data access",
    0x110B: "response too long (lower max_words_per_request)",
    0x110C: "parameter error",
    0x2002: "protected (memory protection is on in the PLC)",
    0x2003: "table missing",
    0x2004: "data missing",
    0x2005: "program missing",
    0x2006: "file missing",
    0x2007: "data mismatch",
    0x2101: "read-only",
    0x2102: "protected",
    0x2201: "not possible during execution",
    0x2202: "not possible while running",
    0x2203: "wrong PLC mode (program)",
    0x2204: "wrong PLC mode (debug)",
    0x2205: "wrong PLC mode (monitor)",
    0x2206: "wrong PLC mode (run)",
    0x2301: "file device missing",
    0x2302: "memory missing",
    0x2303: "clock missing",
    0x2401: "table missing",
    0x2502: "memory error",
    0x2503: "I/O setting error",
    0x2601: "no protection",
    0x2602: "incorrect password",
    0x2604: "protected",
    0x2605: "service already executing",
    0x2606: "service stopped",
    0x2607: "no execution right",
    0x3001: "no access right",
    0x4001: "service aborted",
}

# Main codes 01 (local node), 02 (destination node), 03 (controller) and 05 (routing): nothing
# on this path can be read, so the device is down rather than the data of one request.
_LINK_MAIN_CODES = {0x01, 0x02, 0x03, 0x05}

_TCP_ERRORS = {
    0x01: "the header is not 'FINS'",
    0x02: "the data length is too long",
    0x03: "the command is not supported",
    0x20: "all connections are in use",
    0x21: "the specified node is already connected (src_node in use by another client)",
    0x22: "access to a protected node from an IP address the PLC does not allow",
    0x23: "the client node address is out of range (src_node)",
    0x24: "the client and the server use the same node address (change src_node)",
    0x25: "all node addresses available for allocation are in use",
}


def describe_end_code(end_code: int, relay_error: bool = False) -> str:
    """'end code 1103 address range error (...)', with flags already masked off."""
    meaning = _END_CODES.get(end_code, "see the FINS Commands Reference Manual")
    relay = " from a relay node" if relay_error else ""
    return f"end code {end_code:04X}{relay} {meaning}"


def is_link_failure(end_code: int) -> bool:
    return end_code >> 8 in _LINK_MAIN_CODES


def describe_tcp_error(code: int) -> str:
    return f"FINS/TCP error {code:08X}: {_TCP_ERRORS.get(code, 'unknown error code')}"
