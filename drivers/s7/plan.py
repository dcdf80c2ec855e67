"""Merge a device's tags into few S7 read items, and pack the items into few requests.

Two steps, because the second depends on the PDU size the CPU negotiates at each connect:

1. `merge_ranges` (once, from the configuration): within one area (one DB, or M, I, Q), tags sorted
   by address join a range while the next starts at most `max_gap` unused bytes after what the
   range covers. Reading a few unused bytes costs less than another item (12 bytes of request and
   4 of answer) and keeps requests few.
2. `pack_requests` (at each connect): ranges are cut into items no larger than one answer can
   carry (PDU - 18 bytes, rounded down to even: 222 at PDU 240, 942 at 960), and the items go
   first-fit into requests whose request and answer both fit the PDU, at most 20 items each. A
   STRING[254] on a CPU with PDU 240 is two items; their bytes are joined before decoding.
"""

from __future__ import annotations

__all__ = [
    "MAX_ITEMS",
    "ReadItem",
    "ReadRange",
    "ReadRequest",
    "TagSpan",
    "answer_bytes",
    "item_capacity",
    "merge_ranges",
    "pack_requests",
    "request_bytes",
]

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from drivers.s7.address import AREA_CODES

# Sizes from the S7 protocol: a job header is 10 bytes, an answer header 12 (it adds the error
# class and code); the read parameter is the function code and the item count, then 12 bytes of
# address per item in the request and a 4-byte item header in the answer, whose data is padded
# to an even length unless it is the last item.
_REQUEST_HEADER = 10
_ANSWER_HEADER = 12
_PARAMETER = 2
_ITEM_ADDRESS = 12
_ITEM_HEADER = 4
# S7-300 CPUs fit 19 items into PDU 240; larger PDUs would allow more, but 20 is what CPUs and
# gateways are known to take in one request.
MAX_ITEMS = 20
_AREA_ORDER = {"DB": 0, "M": 1, "I": 2, "Q": 3}


@dataclass(frozen=True, slots=True)
class TagSpan:
    """Where one tag's bytes are."""

    name: str
    area: str
    db: int
    start: int
    size: int


@dataclass(frozen=True, slots=True)
class ReadRange:
    """Contiguous bytes of one area read together, and the tags inside with their offsets."""

    area: str
    db: int
    start: int
    size: int
    tags: tuple[tuple[str, int], ...]

    def describe(self) -> str:
        where = f"DB{self.db}" if self.area == "DB" else self.area
        if self.size == 1:
            return f"{where} byte {self.start}"
        return f"{where} bytes {self.start}-{self.start + self.size - 1}"


@dataclass(frozen=True, slots=True)
class ReadItem:
    """One item of a read request: a range, or a piece of one too large for one answer."""

    range_index: int
    area: str
    db: int
    start: int
    size: int

    @property
    def area_code(self) -> int:
        return AREA_CODES[self.area]


@dataclass(frozen=True, slots=True)
class ReadRequest:
    items: tuple[ReadItem, ...]


def merge_ranges(spans: Iterable[TagSpan], *, max_gap: int) -> list[ReadRange]:
    """Ranges covering every span, area by area in a fixed order (DBs by number, M, I, Q)."""
    ordered = sorted(spans, key=lambda s: (_AREA_ORDER[s.area], s.db, s.start, s.size))
    ranges: list[ReadRange] = []
    group: list[TagSpan] = []
    end = 0  # one past the last covered byte
    for span in ordered:
        same_area = bool(group) and (span.area, span.db) == (group[0].area, group[0].db)
        if same_area and span.start - end <= max_gap:
            group.append(span)
            end = max(end, span.start + span.size)
            continue
        if group:
            ranges.append(_range(group, end))
        group, end = [span], span.start + span.size
    if group:
        ranges.append(_range(group, end))
    return ranges


def _range(group: list[TagSpan], end: int) -> ReadRange:
    first = group[0]
    tags = tuple((s.name, s.start - first.start) for s in group)
    return ReadRange(first.area, first.db, first.start, end - first.start, tags)


def item_capacity(pdu_size: int) -> int:
    """The most data bytes one item can carry at this PDU size (even, so padding never matters)."""
    return (pdu_size - _ANSWER_HEADER - _PARAMETER - _ITEM_HEADER) & ~1


def pack_requests(
    ranges: Sequence[ReadRange], pdu_size: int, max_items: int = MAX_ITEMS
) -> list[ReadRequest]:
    """Requests that read every range; ValueError for a PDU too small to carry any data."""
    capacity = item_capacity(pdu_size)
    items_per_request = min(max_items, (pdu_size - _REQUEST_HEADER - _PARAMETER) // _ITEM_ADDRESS)
    if capacity < 2 or items_per_request < 1:
        raise ValueError(f"a PDU of {pdu_size} bytes is too small to read with")
    bins: list[list[ReadItem]] = []
    answers: list[int] = []  # answer bytes per bin, counting padding after every item
    for index, read_range in enumerate(ranges):
        for item in _pieces(index, read_range, capacity):
            cost = _ITEM_HEADER + item.size + item.size % 2
            for i, items in enumerate(bins):
                if len(items) < items_per_request and answers[i] + cost <= pdu_size:
                    items.append(item)
                    answers[i] += cost
                    break
            else:
                bins.append([item])
                answers.append(_ANSWER_HEADER + _PARAMETER + cost)
    return [ReadRequest(tuple(items)) for items in bins]


def _pieces(index: int, read_range: ReadRange, capacity: int) -> Iterable[ReadItem]:
    end = read_range.start + read_range.size
    for start in range(read_range.start, end, capacity):
        size = min(capacity, end - start)
        yield ReadItem(index, read_range.area, read_range.db, start, size)


def request_bytes(request: ReadRequest) -> int:
    """Length of the request PDU."""
    return _REQUEST_HEADER + _PARAMETER + _ITEM_ADDRESS * len(request.items)


def answer_bytes(request: ReadRequest) -> int:
    """Length of the answer PDU when every item succeeds."""
    total = _ANSWER_HEADER + _PARAMETER
    for i, item in enumerate(request.items):
        last = i == len(request.items) - 1
        total += _ITEM_HEADER + item.size + (0 if last else item.size % 2)
    return total
