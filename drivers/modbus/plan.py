"""Merge a device's tags into the fewest Modbus read requests.

Within one table, tags sorted by address are taken greedily into a request while the next tag
starts no more than `max_gap` unused addresses after what is already covered and the request stays
within `max_count`. Feasibility passes to every contiguous sub-run, so greedy is minimal
(an exchange argument; the unit tests check it against exhaustive search).
"""

from __future__ import annotations

__all__ = ["ReadRequest", "TagSpan", "plan_requests"]

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TagSpan:
    """Where one tag lives: table, first wire address, and how many registers (or bits)."""

    name: str
    table: str
    start: int
    count: int


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One read: a table, a wire address range, and the tags inside it with their offsets."""

    table: str
    start: int
    count: int
    tags: tuple[tuple[str, int], ...]

    def describe(self) -> str:
        return f"{self.table} {self.start}-{self.start + self.count - 1}"


def plan_requests(
    spans: Iterable[TagSpan], *, max_gap: int, max_count: int, table: str
) -> list[ReadRequest]:
    """Requests covering every span of one table; raises ValueError if a span cannot fit."""
    ordered = sorted((s for s in spans if s.table == table), key=lambda s: (s.start, s.count))
    requests: list[ReadRequest] = []
    group: list[TagSpan] = []
    start = end = 0  # end is one past the last covered address
    for span in ordered:
        if span.count > max_count:
            raise ValueError(
                f"tag {span.name} needs {span.count} addresses; one request holds {max_count}"
            )
        span_end = span.start + span.count
        if group and span.start - end <= max_gap and max(end, span_end) - start <= max_count:
            group.append(span)
            end = max(end, span_end)
            continue
        if group:
            requests.append(_request(table, start, end, group))
        group, start, end = [span], span.start, span_end
    if group:
        requests.append(_request(table, start, end, group))
    return requests


def _request(table: str, start: int, end: int, group: list[TagSpan]) -> ReadRequest:
    return ReadRequest(table, start, end - start, tuple((s.name, s.start - start) for s in group))
